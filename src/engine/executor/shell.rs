//! The Shell choice of a step's prompts (design §17): where it is offered (never unattended,
//! not with `--no-shell`, not where the runbook or the inventory host says `shell: false`),
//! which host it opens on (one of a fleet's, chosen), and its record: `shell opened` before
//! the session, `shell closed` with the recording's size and SHA-256 after it.

use std::collections::HashMap;
use std::time::Instant;

use super::Executor;
use crate::book::runbook::{Runbook, Step, StepKind};
use crate::error::Error;
use crate::events::{Event, OutputRecord};
use crate::secrets::escape::value as esc;
use crate::shell::record::{Cast, Header};
use crate::shell::{self, Context, Place};
use crate::transport::Transport;

/// Where a step's shell may open.
struct Where {
    /// The step's host label: one host, or a fleet.
    label: String,
    /// Its hosts, each with why a shell is refused there (the inventory's `shell: false`).
    hosts: Vec<(String, Option<String>)>,
}

impl Executor {
    /// The runbooks a step id goes through, the main one first: `call-step/step` is a step of
    /// the runbook `call-step` calls.
    pub(super) fn runbooks_of(&self, id: &str) -> Vec<&Runbook> {
        let mut chain = vec![&self.plan.main.runbook];
        let mut parts: Vec<&str> = id.split('/').collect();
        parts.pop();
        for part in parts {
            let current = chain[chain.len() - 1];
            let called = current
                .steps
                .iter()
                .find(|s| s.id() == part)
                .and_then(|s| match s.kind() {
                    Some(StepKind::Call(target)) => self.plan.called.get(target),
                    _ => None,
                });
            match called {
                Some(loaded) => chain.push(&loaded.runbook),
                None => break,
            }
        }
        chain
    }

    /// Where the shell of step `id` would open, or why none is offered at all.
    fn shell_where(&self, id: &str, step: &Step) -> Result<Where, String> {
        if !self.operator.is_interactive() {
            return Err("an unattended run (--yes) never opens a shell".into());
        }
        if self.no_shell {
            return Err("this run was started with --no-shell".into());
        }
        let chain = self.runbooks_of(id);
        if let Some(runbook) = chain.iter().find(|r| r.shell == Some(false)) {
            return Err(format!("the runbook `{}` says `shell: false`", runbook.id()));
        }
        let runbook = chain[chain.len() - 1];
        let label = self.plan.host(runbook.id(), runbook.step_target(step));
        let hosts: Vec<(String, Option<String>)> = self
            .plan
            .members(&label)
            .into_iter()
            .map(|h| {
                let refused = self
                    .plan
                    .no_shell
                    .contains(&h)
                    .then(|| format!("the inventory says `shell: false` for {h}"));
                (h, refused)
            })
            .collect();
        if hosts.iter().all(|(_, refused)| refused.is_some()) {
            let why = match hosts.as_slice() {
                [(_, Some(why))] => why.clone(),
                _ => format!("the inventory says `shell: false` for every host of {label}"),
            };
            return Err(why);
        }
        Ok(Where { label, hosts })
    }

    /// The words of the Shell choice at step `id`'s prompts; `None`: not offered there.
    pub(super) fn shell_choice(&self, id: &str, step: &Step) -> Option<String> {
        let w = self.shell_where(id, step).ok()?;
        Some(match w.hosts.as_slice() {
            [(host, _)] if host == "local" => "Open a shell on this machine (its output is recorded)".into(),
            [(host, _)] => format!("Open a shell on {host} (its output is recorded)"),
            _ => format!("Open a shell on a host of {} (its output is recorded)", w.label),
        })
    }

    /// The operator chose Shell at step `id`'s prompt (`from`: which one): opens it, records
    /// it, and comes back. A shell that cannot open says why, and the prompt comes back.
    /// `states`: after a fleet step failed, how each host's attempt ended: the picker shows
    /// it and preselects the first host that did not succeed.
    pub(super) fn open_shell(
        &mut self,
        id: &str,
        step: &Step,
        from: &'static str,
        states: Option<&HashMap<String, String>>,
    ) -> Result<(), Error> {
        let vars = self.shell_vars.clone();
        let w = match self.shell_where(id, step) {
            Ok(w) => w,
            Err(why) => {
                self.sink
                    .show(&Event::Notice(format!("    no shell here: {why}")));
                return Ok(());
            }
        };
        let host = if w.hosts.len() == 1 {
            w.hosts[0].clone()
        } else {
            let state = |h: &String| states.and_then(|s| s.get(h));
            let shown: Vec<String> = w
                .hosts
                .iter()
                .map(|(h, refused)| {
                    let mut notes: Vec<String> = state(h).map(|s| esc(s).into_owned()).into_iter().collect();
                    if refused.is_some() {
                        notes.push("shell: false in the inventory".into());
                    }
                    if notes.is_empty() {
                        h.clone()
                    } else {
                        format!("{h} ({})", notes.join("; "))
                    }
                })
                .collect();
            // The host to look at is one that did not succeed: the first that opens a
            // shell, else the first of them.
            let failed = |h: &String| state(h).is_some_and(|s| s != "ok");
            let first = w
                .hosts
                .iter()
                .position(|(h, refused)| failed(h) && refused.is_none())
                .or_else(|| w.hosts.iter().position(|(h, _)| failed(h)))
                .unwrap_or(0);
            match self.operator.shell_host(&shown, first)? {
                Some(i) => w.hosts[i].clone(),
                None => return Ok(()),
            }
        };
        let (host, refused) = host;
        if let Some(why) = refused {
            self.sink
                .show(&Event::Notice(format!("    no shell on {host}: {why}")));
            return Ok(());
        }
        let Some(audit) = self.sink.audit.as_ref() else {
            self.sink
                .ui
                .say("    no shell: there is no audit trail to record it in");
            return Ok(());
        };
        let run_id = audit.run_id().to_string();
        let number = audit.next_shell_number();
        let recording = audit.shell_recording_name(number);
        let shown_path = audit
            .path()
            .parent()
            .map(|d| d.join(&recording).display().to_string())
            .unwrap_or_else(|| recording.clone());
        let place = match self.transports.get(&host) {
            Some(Transport::Ssh(ssh)) => Place::Ssh {
                control_socket: ssh.control_socket(),
            },
            Some(Transport::Local(_) | Transport::Stub(_)) => Place::Local,
            None => {
                self.sink
                    .ui
                    .say(&format!("    no shell on {host}: it has no connection now"));
                return Ok(());
            }
        };
        // The run's variables without its secrets: what a step would see, less what only the
        // steps that name a secret get.
        let context = Context {
            run_id: &run_id,
            step: id,
            host: &host,
            number,
            vars: vars
                .iter()
                .filter(|(_, v)| !v.secret)
                .map(|(k, v)| (k.clone(), v.text.clone()))
                .collect(),
            timeout: self.ssh.connect_timeout,
        };
        let prepared = match shell::prepare(&place, &context) {
            Ok(p) => p,
            Err(why) => {
                self.sink
                    .ui
                    .say(&format!("    cannot open a shell on {host}: {why}"));
                return Ok(());
            }
        };
        let size = shell::terminal_size();
        self.emit(Event::ShellOpened {
            step: id.to_string(),
            host: host.clone(),
            number,
            from,
            cols: size.cols,
            rows: size.rows,
            recording: recording.clone(),
            shown_path: shown_path.clone(),
        })?;
        let started = Instant::now();
        let Some(audit) = self.sink.audit.as_ref() else {
            return Ok(());
        };
        let file = audit.shell_recording(number)?;
        let header = Header {
            timestamp: chrono::Utc::now().timestamp(),
            term: std::env::var("TERM").unwrap_or_default(),
            shell: prepared.shell.clone(),
            title: format!("runbook {run_id} step {id} on {host}"),
        };
        let mut cast = Cast::start(file, vars.masker(), size, &header, started)?;
        let ended = shell::run(&prepared, &mut cast, size);
        drop(prepared);
        let summary = cast.finish()?;
        let duration = started.elapsed();
        let (exit, reason, end_size, resizes, hangup, failed) = match ended {
            Ok(e) => {
                let reason = if let Some(e) = &e.recording_failed {
                    Some(format!("the recording could not be written: {e}"))
                } else if let Some(signal) = e.stopped.filter(|_| !e.hangup) {
                    Some(format!("hung up: the run was stopped by {}", signal.word()))
                } else if e.hangup {
                    Some("the terminal went away (hangup)".to_string())
                } else {
                    None
                };
                (e.code, reason, e.size, e.resizes, e.hangup, e.recording_failed)
            }
            Err(e) => (
                None,
                Some(format!("the shell could not start: {e}")),
                size,
                0,
                false,
                None,
            ),
        };
        self.emit(Event::ShellClosed {
            step: id.to_string(),
            host: host.clone(),
            number,
            duration,
            cols: end_size.cols,
            rows: end_size.rows,
            resizes,
            exit,
            reason,
            recording: Some(OutputRecord {
                path: summary.path,
                size: summary.size,
                sha256: summary.sha256,
                tail: String::new(),
            }),
            shown_path,
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if hangup {
            return Err(Error::Hangup(format!(
                "the terminal hung up during the shell on {host}: the run stopped, its trail is open"
            )));
        }
        Ok(())
    }
}
