//! What a watcher reads: each record of the trail as a few plain lines, worded as the
//! operator's screen words them (`[2/5] restart: ok (exit 0) in 1.2s`). Every value from the
//! trail is escaped: a command, an output tail or a note never drives the watcher's terminal.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Local, Utc};

use crate::audit::record::{Line, Record, RunFinished, StepFinished, StepStarted};
use crate::duration::format as fmt_duration;
use crate::listen::ui::fmt_secs;
use crate::secrets::escape::value as esc;

/// What the screen knows of the run so far: enough to word later records and tick the clock.
#[derive(Default)]
pub(crate) struct Screen {
    /// When the RTO clock started: the first `run started`'s stamp less its `--since` offset.
    pub(super) clock_start: Option<DateTime<Utc>>,
    pub(super) rto: Option<Duration>,
    /// `(who, when)` of an `escalation due`.
    pub(super) escalated: Option<(String, DateTime<Utc>)>,
    /// When the last record shown was written.
    pub(super) last_at: Option<DateTime<Utc>>,
    /// `[3/9]` of each step presented, by step id.
    positions: HashMap<String, String>,
}

const INDENT: &str = "    ";

impl Screen {
    /// The lines of one record, each after the local time it was written; none for records a
    /// watcher has no use for (locks taken, checkpoints, process groups).
    pub(crate) fn render(&mut self, line: &Line) -> Vec<String> {
        let at = parse_ts(&line.common.ts);
        self.last_at = at.or(self.last_at);
        let stamp = at
            .map(|t| t.with_timezone(&Local).format("%H:%M:%S").to_string())
            .unwrap_or_else(|| esc(&line.common.ts).into_owned());
        let step = line.common.step.as_deref().map(esc).unwrap_or_default();
        let host = line.common.host.as_deref().map(esc).unwrap_or_default();
        let pos = line
            .common
            .step
            .as_ref()
            .and_then(|s| self.positions.get(s))
            .map(|p| format!("{p} "))
            .unwrap_or_default();
        let mut out: Vec<String> = Vec::new();
        match &line.record {
            Record::RunStarted(r) => {
                if self.clock_start.is_none() {
                    self.clock_start =
                        at.map(|t| t - chrono::Duration::milliseconds(r.since_offset_ms as i64));
                }
                let rto = Duration::from_millis(r.rto_ms);
                self.rto = Some(rto);
                out.push(format!(
                    "{} ({}) · {} · RTO {}",
                    esc(&r.title),
                    esc(&r.runbook),
                    esc(&r.mode),
                    fmt_duration(rto)
                ));
                out.push(format!(
                    "  run {} by {}{}",
                    esc(&line.common.run),
                    esc(&line.common.operator),
                    if r.unattended == Some(true) {
                        ", unattended"
                    } else {
                        ""
                    }
                ));
                for (role, dest) in &r.targets {
                    out.push(format!("  target {}: {}", esc(role), esc(dest)));
                }
                if r.since_offset_ms > 0 {
                    out.push(format!(
                        "  the RTO clock started {} before the run",
                        fmt_secs(Duration::from_millis(r.since_offset_ms))
                    ));
                }
                let inputs: Vec<String> = r
                    .inputs
                    .iter()
                    .map(|(k, v)| match v.as_str() {
                        Some(s) => format!("{}={}", esc(k), esc(s)),
                        None => format!("{}={}", esc(k), esc(&v.to_string())),
                    })
                    .collect();
                if !inputs.is_empty() {
                    out.push(format!("  inputs: {}", inputs.join(" ")));
                }
            }
            Record::RunResumed(r) => {
                out.push(String::new());
                out.push(format!(
                    "run {} by {}{} after a gap of {}",
                    if r.hand_off {
                        "handed off, resumed"
                    } else {
                        "resumed"
                    },
                    esc(&line.common.operator),
                    if r.hand_off {
                        format!(" (from {})", esc(&r.previous_operator))
                    } else {
                        String::new()
                    },
                    fmt_secs(Duration::from_millis(r.gap_ms))
                ));
            }
            Record::TargetConnected(r) => out.push(format!(
                "  {} {}{}",
                if r.reconnected {
                    "reconnected to"
                } else {
                    "connected to"
                },
                esc(&r.role),
                if host == r.role.as_str() {
                    String::new()
                } else {
                    format!(" ({host})")
                }
            )),
            Record::LockBroken(r) => out.push(format!("  lock broken: {}", esc(&r.lock))),
            Record::StepPresented(r) => {
                let p = match (r.position, r.total) {
                    (Some(p), Some(t)) => format!("[{p}/{t}]"),
                    _ => String::from("[-]"),
                };
                if let Some(id) = &line.common.step {
                    self.positions.insert(id.clone(), p.clone());
                }
                let target = r
                    .target_ms
                    .map(|t| format!(", target {}", fmt_duration(Duration::from_millis(t))))
                    .unwrap_or_default();
                let on = if r.kind == "end" {
                    String::from("end")
                } else {
                    format!("on {host}")
                };
                out.push(String::new());
                out.push(format!("{p} {} ({step}, {on}{target})", esc(&r.title)));
            }
            Record::StepStarted(r) => out.extend(started(&pos, &step, &host, r)),
            Record::StepFinished(r) => out.extend(finished(&pos, &step, &host, r)),
            Record::FleetFinished(r) => {
                let total = r.hosts_ok.len() + r.hosts_failed.len() + r.hosts_not_started.len();
                out.push(format!(
                    "{pos}{step}: {} on {}/{total} hosts in {}",
                    esc(&r.outcome),
                    r.hosts_ok.len(),
                    fmt_secs(Duration::from_millis(r.duration_ms))
                ));
                for failed in &r.hosts_failed {
                    out.push(format!("{INDENT}{}: {}", esc(&failed.host), esc(&failed.outcome)));
                }
            }
            Record::Answer(r) => out.push(format!(
                "{INDENT}answer: {} → {}",
                esc(&r.question),
                esc(&r.answer)
            )),
            Record::Decision(r) => {
                out.push(format!("{INDENT}decision: {} → {}", esc(&r.label), esc(&r.goto)))
            }
            Record::Note(r) => {
                let by = esc(&line.common.operator);
                for (i, text) in r.text.lines().enumerate() {
                    let head = if i == 0 {
                        format!("note by {by}: ")
                    } else {
                        "  ".into()
                    };
                    out.push(format!("{INDENT}{head}{}", esc(text)));
                }
            }
            Record::Edit(r) => {
                out.push(format!(
                    "{INDENT}command edited by {}:",
                    esc(&line.common.operator)
                ));
                out.extend(r.before.lines().map(|l| format!("{INDENT}- {}", esc(l))));
                out.extend(r.after.lines().map(|l| format!("{INDENT}+ {}", esc(l))));
            }
            Record::Deviation(r) => out.push(format!(
                "{INDENT}deviation ({}): {}{}",
                if r.allowed { "allowed" } else { "not allowed" },
                esc(&r.kind),
                r.detail
                    .as_deref()
                    .map(|d| format!(": {}", esc(d)))
                    .unwrap_or_default()
            )),
            Record::ApprovalRequested(r) => out.push(format!(
                "{INDENT}waiting for {} approval{}",
                r.quorum.unwrap_or(1),
                if r.quorum.unwrap_or(1) == 1 { "" } else { "s" }
            )),
            Record::Approval(r) => out.push(format!(
                "{INDENT}{} by {}{}",
                if r.decision == "approve" {
                    "approved"
                } else {
                    "denied"
                },
                esc(r.principal.as_deref().unwrap_or("an unknown key")),
                r.reason
                    .as_deref()
                    .map(|why| format!(": {}", esc(why)))
                    .unwrap_or_default()
            )),
            Record::ApprovalRefused(r) => out.push(format!(
                "{INDENT}approval refused: {}",
                esc(r.why.as_deref().unwrap_or(&r.file))
            )),
            Record::ShellOpened(r) => out.push(format!(
                "{INDENT}shell {} opened on {host} ({}x{})",
                r.shell, r.cols, r.rows
            )),
            Record::ShellClosed(r) => out.push(format!(
                "{INDENT}shell {} closed{}",
                r.shell,
                r.duration_ms
                    .map(|ms| format!(" after {}", fmt_secs(Duration::from_millis(ms))))
                    .unwrap_or_default()
            )),
            Record::Hangup(r) => out.push(format!(
                "the operator's terminal hung up ({}): the run stopped, to be resumed",
                esc(&r.reason)
            )),
            Record::WalkEnded(r) => out.push(format!(
                "walk ended: {}{}",
                esc(&r.outcome),
                r.message
                    .as_deref()
                    .map(|m| format!(": {}", esc(m)))
                    .unwrap_or_default()
            )),
            Record::EscalationDue(r) => {
                if let Some(at) = at {
                    self.escalated = Some((r.to.clone(), at));
                }
                out.push(format!(
                    "ESCALATION DUE: not resolved within {}: call {}",
                    fmt_duration(Duration::from_millis(r.after_ms)),
                    esc(&r.to)
                ));
            }
            Record::Notification(r) => out.push(format!(
                "{INDENT}notification to {}: {}",
                esc(&r.channel),
                esc(&r.outcome)
            )),
            Record::Recovery(r) => out.push(format!(
                "  a torn line {} ({} bytes) was set aside",
                r.torn_line, r.bytes
            )),
            Record::HandedOff(r) => out.push(format!(
                "HANDED OFF by {} at {}{}: the run waits for `runbook resume`",
                esc(&line.common.operator),
                if step.is_empty() {
                    "a prompt".to_string()
                } else {
                    format!("step {step}")
                },
                r.note
                    .as_deref()
                    .map(|n| format!(" ({})", esc(n)))
                    .unwrap_or_default()
            )),
            Record::MirrorLost(r) => out.push(format!(
                "the audit host {} is not taking the trail ({}): the run goes on, the mirror retries",
                esc(&r.audit_host),
                esc(&r.reason)
            )),
            Record::MirrorCaughtUp(r) => out.push(format!(
                "the audit host {} caught up ({} bytes, {} files)",
                esc(&r.audit_host),
                r.bytes,
                r.files
            )),
            Record::GuardFailing(r) => out.push(format!(
                "guard {} failing on {} ({} in a row){}",
                esc(&r.guard),
                host,
                r.failures,
                r.reason
                    .as_deref()
                    .map(|x| format!(": {}", esc(x)))
                    .unwrap_or_default()
            )),
            Record::GuardTripped(r) => out.push(format!(
                "GUARD TRIPPED: {} failed {} times in a row on {}: divert to {}",
                esc(&r.guard),
                r.failures,
                host,
                esc(&r.goto)
            )),
            Record::GuardRecovered(r) => out.push(format!("guard {} recovered on {}", esc(&r.guard), host)),
            Record::AlertResolved(r) => out.push(format!(
                "ALERT RESOLVED: {}: the run stops at this step boundary",
                esc(&r.fingerprint)
            )),
            Record::RunFinished(r) => out.extend(sealed(r, &line.common.operator)),
            Record::LockTaken(_)
            | Record::LeaseShared(_)
            | Record::RemoteProcess(_)
            | Record::RemoteGroupChecked(_)
            | Record::OutputRecovered(_)
            | Record::Checkpoint(_) => {}
            // A newer writer's event: named, never hidden.
            Record::Unknown => out.push(format!("{INDENT}{}", esc(&line.common.event))),
        }
        out.into_iter()
            .map(|text| {
                if text.is_empty() {
                    text
                } else {
                    format!("{stamp} {text}")
                }
            })
            .collect()
    }

    /// `4m12s of the 15m RTO left`, ticking while the run is quiet; `None` before the header.
    pub(crate) fn budget(&self, now: DateTime<Utc>) -> Option<String> {
        let (start, rto) = (self.clock_start?, self.rto?);
        let run = (now - start).to_std().unwrap_or_default();
        let mut text = if run <= rto {
            format!("{} of the {} RTO left", fmt_secs(rto - run), fmt_duration(rto))
        } else {
            format!("RTO {} exceeded by {}", fmt_duration(rto), fmt_secs(run - rto))
        };
        if let Some((to, at)) = &self.escalated {
            let since = (now - *at).to_std().unwrap_or_default();
            text.push_str(&format!(
                " · escalation due {} ago: call {}",
                fmt_secs(since),
                esc(to)
            ));
        }
        Some(text)
    }
}

fn started(pos: &str, step: &str, host: &str, r: &StepStarted) -> Vec<String> {
    let attempt = match r.attempt {
        Some(n) if n > 1 => format!(" (attempt {n})"),
        _ => String::new(),
    };
    let mut out = vec![format!("{pos}{step}: started on {host}{attempt}")];
    out.extend(r.command.lines().map(|l| format!("{INDENT}│ {}", esc(l))));
    out
}

fn finished(pos: &str, step: &str, host: &str, r: &StepFinished) -> Vec<String> {
    let outcome = esc(r.outcome.as_deref().unwrap_or("finished"));
    let exit = r.exit.map(|e| format!(" (exit {e})")).unwrap_or_default();
    let took = r
        .duration_ms
        .map(|ms| format!(" in {}", fmt_secs(Duration::from_millis(ms))))
        .unwrap_or_default();
    let on = if host.is_empty() {
        String::new()
    } else {
        format!(" on {host}")
    };
    let over = if r.over_target == Some(true) {
        ", over its target"
    } else {
        ""
    };
    let mut out = vec![format!("{pos}{step}: {outcome}{exit}{on}{took}{over}")];
    if let Some(why) = &r.reason {
        out.push(format!("{INDENT}{}", esc(why)));
    }
    if let Some(c) = &r.capture {
        out.push(format!("{INDENT}captured {} = {}", esc(&c.name), esc(&c.value)));
    }
    // The tail as the trail holds it (masked when it was written); every control character
    // shown escaped, line by line.
    if let Some(output) = &r.output
        && let Some(tail) = output.tail.as_deref().filter(|t| !t.is_empty())
    {
        if output.size > tail.len() as u64 {
            out.push(format!(
                "{INDENT}… last {} of {} bytes of output:",
                tail.len(),
                output.size
            ));
        }
        out.extend(tail.lines().map(|l| format!("{INDENT}┆ {}", esc(l))));
    }
    out
}

fn sealed(r: &RunFinished, operator: &str) -> Vec<String> {
    let outcome = esc(r.outcome.as_deref().unwrap_or("finished"));
    let took = r
        .duration_ms
        .map(|ms| format!(" after {}", fmt_secs(Duration::from_millis(ms))))
        .unwrap_or_default();
    let rto = match (r.rto_ms, r.within_rto) {
        (Some(rto), Some(within)) => format!(
            " (RTO {}: {})",
            fmt_duration(Duration::from_millis(rto)),
            if within { "within" } else { "OVER" }
        ),
        _ => String::new(),
    };
    let mut out = vec![
        String::new(),
        format!("run {outcome}{took}{rto}, sealed by {}", esc(operator)),
    ];
    if let Some(message) = &r.message {
        out.push(format!("  {}", esc(message)));
    }
    if let Some(v) = &r.verdict {
        out.push(format!(
            "  verdict: {}{}",
            if v.pass { "PASS" } else { "FAIL" },
            if v.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", esc(&v.reason))
            }
        ));
    }
    for o in &r.over_target {
        out.push(format!(
            "  over target: {} took {} (target {})",
            esc(&o.step),
            fmt_secs(Duration::from_millis(o.duration_ms)),
            fmt_duration(Duration::from_millis(o.target_ms))
        ));
    }
    for d in &r.deviations {
        out.push(format!(
            "  deviation at {}: {}{}",
            esc(&d.step),
            esc(&d.kind),
            if d.allowed { " (allowed)" } else { "" }
        ));
    }
    out
}

fn parse_ts(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
