//! The two-person rule at a step (design §15): its request written, then the wait for enough
//! approvals by other people, a denial, a timeout, or a stop. Only this process writes the
//! trail: each answer found beside the request is checked, then recorded here.

use std::time::{Duration, Instant};

use super::Executor;
use crate::approval::{DEFAULT_TIMEOUT, REQUEST_KIND, Request, RequestHost, Rule, Waiting};
use crate::book::runbook::Step;
use crate::error::Error;
use crate::events::{Answer, Event};
use crate::inventory::Binding;
use crate::vars::Vars;

/// How long a stop waits for a request under way to be written, to take it off again.
const ASK_AFTER_STOP: Duration = Duration::from_secs(5);

/// How often the spool is looked at while a step waits.
const POLL: Duration = Duration::from_millis(250);

impl Executor {
    /// What `step` on `hosts` needs before it runs: its own `approve:`, or, for a confirmed
    /// step, one approval when a host of the inventory says `approve: destructive`.
    pub(super) fn approval_rule(&self, step: &Step, hosts: &[String]) -> Option<Rule> {
        if self.approvals.assumed {
            return None;
        }
        if let Some(a) = &step.approve {
            return Some(Rule {
                quorum: a.quorum.max(1),
                timeout: a
                    .timeout
                    .as_ref()
                    .and_then(|d| d.get())
                    .unwrap_or(DEFAULT_TIMEOUT),
            });
        }
        let destructive = hosts.iter().any(|h| {
            matches!(
                self.plan.bindings.get(h),
                Some(Binding::Ssh { approve: true, .. })
            )
        });
        (destructive && step.confirmation().is_some()).then_some(Rule {
            quorum: 1,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Waits for `rule` on the step; `Ok(None)`: approved, `Ok(Some(why))`: it must not run.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn approved(
        &mut self,
        id: &str,
        step: &Step,
        hosts: &[String],
        command: &str,
        vars: &Vars,
        rule: Rule,
    ) -> Result<Option<String>, Error> {
        let uses: Vec<String> = step.uses.iter().map(|u| u.value.clone()).collect();
        let (env, _) = vars.env_for(command, &uses);
        let (mut shown, mut secrets) = (indexmap::IndexMap::new(), Vec::new());
        for (name, value) in env {
            if vars.get(&name).is_some_and(|v| v.secret) {
                secrets.push(name);
            } else {
                shown.insert(name, value);
            }
        }
        let account = crate::identity::Account::current();
        let request = Request {
            kind: REQUEST_KIND.into(),
            run: vars.get("run_id").map(|v| v.text.clone()).unwrap_or_default(),
            runbook: self.plan.main.runbook.id().to_string(),
            step: id.to_string(),
            title: vars.interpolate(&step.title),
            operator: vars.get("operator").map(|v| v.text.clone()).unwrap_or_default(),
            account: account
                .login
                .clone()
                .unwrap_or_else(|| format!("uid {}", account.uid)),
            machine: crate::identity::machine(),
            requested_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            quorum: rule.quorum,
            timeout_ms: rule.timeout.as_millis() as u64,
            hosts: hosts
                .iter()
                .map(|h| RequestHost {
                    host: h.clone(),
                    host_key: self
                        .transports
                        .get(h)
                        .and_then(|t| t.host_key())
                        .map(str::to_string),
                })
                .collect(),
            script: self.typed.mask_str(command),
            env: shown,
            secrets,
        };
        let attempt = self.attempts.get(id).copied().unwrap_or(0) + 1;
        // From here on a stop counts, also one that comes while the request is being written
        // (an exchange with the audit host takes a moment).
        let mut signals = self.signals.clone();
        signals.borrow_and_update();
        let baseline = crate::signals::now().effective_stops();
        // Kept until the wait ends: while it lasts, `runbook approve` knows the run waits.
        // Written to the audit host, it may take a while: a stop is heard meanwhile.
        let approvals = self.approvals.clone();
        let asking = approvals.ask(&request, attempt);
        tokio::pin!(asking);
        let asked = loop {
            tokio::select! {
                asked = &mut asking => break asked?,
                Ok(()) = signals.changed() => {
                    self.hangup()?;
                    signals.borrow_and_update();
                    if stopped(baseline) {
                        // The request may be there already: taken off again (within a bound),
                        // so that nobody is offered what no run waits for.
                        if let Ok(Ok(Ok((waiting, _)))) = tokio::time::timeout(ASK_AFTER_STOP, &mut asking).await {
                            waiting.end().await;
                        }
                        return Ok(Some(format!("stopped by {} while waiting for approval", self.stop_word())));
                    }
                }
            }
        };
        let (waiting, bytes) = match asked {
            Ok(asked) => asked,
            Err(why) => return Ok(Some(why)),
        };
        let shown = waiting.shown();
        self.emit(Event::ApprovalRequested {
            step: id.into(),
            request: shown.clone(),
            request_sha256: crate::audit::sha256_hex(&bytes),
            quorum: rule.quorum,
            timeout: rule.timeout,
        })?;
        // The channel hears that a second person is needed (`runbook.approval.needed`).
        self.sink
            .approval_needed(id, &hosts.join(","), &shown, rule.quorum);
        let stops = Stops { signals, baseline };
        let waited = self.wait_for_answers(id, rule, &waiting, &bytes, stops).await;
        waiting.end().await;
        waited
    }

    /// Looks at the answers beside the request until the quorum, a denial, the timeout or a
    /// stop; each answer recorded as it is found.
    async fn wait_for_answers(
        &mut self,
        id: &str,
        rule: Rule,
        waiting: &Waiting,
        bytes: &[u8],
        stops: Stops,
    ) -> Result<Option<String>, Error> {
        let Stops {
            mut signals,
            baseline,
        } = stops;
        let path = waiting.request().to_path_buf();
        let deadline = Instant::now() + rule.timeout;
        let mut seen: Vec<std::path::PathBuf> = Vec::new();
        // The approvals that count: one per person (principal) and per key.
        let mut approvers: Vec<(String, String, std::path::PathBuf)> = Vec::new();
        // Said once while the audit host cannot be read, and once when it can again.
        let mut unreachable = false;
        loop {
            let (answers, refused) = self.approvals.answers(&path, bytes, &seen);
            for r in refused {
                if seen.contains(&r.file) {
                    continue;
                }
                seen.push(r.file.clone());
                self.emit(Event::ApprovalRefused {
                    step: id.into(),
                    file: waiting.shown_file(&r.file),
                    why: r.why,
                })?;
            }
            for a in answers {
                if seen.contains(&a.file) {
                    continue;
                }
                seen.push(a.file.clone());
                // One person, one approval, whatever number of keys or signatures they give:
                // a repeat is recorded as not counted, never as a second approval. (A denial
                // always counts: anyone may stop the step.)
                if a.approve
                    && let Some(why) = already(&approvers, &a.principal, &a.key)
                {
                    self.emit(Event::ApprovalRefused {
                        step: id.into(),
                        file: waiting.shown_file(&a.file),
                        why,
                    })?;
                    continue;
                }
                self.emit(Event::Approval(Answer {
                    step: id.into(),
                    principal: a.principal.clone(),
                    key: a.key.clone(),
                    approve: a.approve,
                    reason: a.reason.clone(),
                    file: waiting.shown_file(&a.file),
                }))?;
                if !a.approve {
                    return Ok(Some(format!(
                        "denied by {}: {}",
                        a.principal,
                        a.reason.unwrap_or_default()
                    )));
                }
                approvers.push((a.principal, a.key, a.file));
            }
            if approvers.len() >= rule.quorum as usize {
                return Ok(None);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Some(format!(
                    "not approved within {} ({} of {} approvals)",
                    crate::duration::format(rule.timeout),
                    approvers.len(),
                    rule.quorum
                )));
            }
            let stopped = tokio::select! {
                refreshed = async {
                    tokio::time::sleep(POLL.min(deadline - now)).await;
                    // No look begun at the deadline: the answers are checked once more first.
                    match deadline.saturating_duration_since(Instant::now()) {
                        left if left.is_zero() => Ok(Ok(())),
                        left => tokio::time::timeout(left, waiting.refresh()).await,
                    }
                } => {
                    match refreshed {
                        Ok(Err(why)) if !unreachable => {
                            unreachable = true;
                            self.emit(Event::Notice(format!(
                                "the audit host cannot be read ({why}): still waiting; answers written there are seen once it can be"
                            )))?;
                        }
                        Ok(Ok(())) if unreachable => {
                            unreachable = false;
                            self.emit(Event::Notice("the audit host can be read again: still waiting for approval".into()))?;
                        }
                        _ => {}
                    }
                    false
                }
                Ok(()) = signals.changed() => {
                    self.hangup()?;
                    signals.borrow_and_update();
                    stopped(baseline)
                }
            };
            if stopped {
                return Ok(Some(format!(
                    "stopped by {} while waiting for approval",
                    self.stop_word()
                )));
            }
        }
    }
}

/// The signals as they were when the step began to ask: a stop after that ends the wait.
struct Stops {
    signals: tokio::sync::watch::Receiver<crate::signals::State>,
    baseline: u64,
}

/// Whether the operator stopped the wait (Ctrl-C, SIGTERM) since `baseline`.
fn stopped(baseline: u64) -> bool {
    crate::signals::now().effective_stops() > baseline || crate::signals::terminated().is_some()
}

/// Why an approval by `principal` with `key` does not count, when one by the same person or
/// with the same key already does.
fn already(counted: &[(String, String, std::path::PathBuf)], principal: &str, key: &str) -> Option<String> {
    counted.iter().find_map(|(p, k, file)| {
        let file = file.file_name().unwrap_or_default().to_string_lossy();
        if p == principal {
            Some(format!(
                "{principal} approved already ({file}): one person counts once, whatever number of keys or signatures"
            ))
        } else if k == key {
            Some(format!("key {key} approved already, as {p} ({file}): one key counts once"))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_or_a_key_counts_once() {
        let counted = [(
            "alice".to_string(),
            "SHA256:a".to_string(),
            "/s/r.json.sig".into(),
        )];
        assert_eq!(already(&counted, "bob", "SHA256:b"), None);
        let again = already(&counted, "alice", "SHA256:a2").unwrap();
        assert!(
            again.starts_with("alice approved already (r.json.sig)"),
            "{again}"
        );
        // The same key under another principal of the approvers file is still alice's.
        let same_key = already(&counted, "alice-ops", "SHA256:a").unwrap();
        assert!(
            same_key.starts_with("key SHA256:a approved already, as alice"),
            "{same_key}"
        );
    }
}
