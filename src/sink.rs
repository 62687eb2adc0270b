//! Where the executor's events go: first the audit trail (so nothing is shown that is not
//! recorded, and a step's start is on disk before its command runs), then the notifications
//! (`notify`), then the terminal. Deliveries that are over are chained before each event.

use serde_json::{Map, Value, json};

use crate::audit::AuditLog;
use crate::error::Error;
use crate::events::Event;
use crate::notify::{Notifier, Record};
use crate::ui::Ui;

pub struct Sink {
    pub ui: Ui,
    pub audit: Option<AuditLog>,
    /// The notifications listener (design §15), when any channel is configured.
    pub notify: Option<Notifier>,
    /// The traces listener (design §15), when an OTLP endpoint is configured.
    pub traces: Option<crate::otlp::Traces>,
    /// The run's review so far, fed every line of the trail: the step times and the steps
    /// over target that the terminal and the seal show are those of `runbook review`.
    pub tally: crate::review::Tally,
}

fn ms(d: std::time::Duration) -> Value {
    json!(d.as_millis() as u64)
}

impl Sink {
    /// Records an event without showing it (what the operator need not see as it happens).
    pub fn record_only(&mut self, event: &Event) -> Result<(), Error> {
        self.chain_deliveries()?;
        if let Some(audit) = self.audit.as_mut() {
            record(audit, event)?;
        }
        self.tally_written();
        Ok(())
    }

    /// Records then shows one event. A failure to record stops the run: an unrecorded command
    /// must never run.
    pub fn emit(&mut self, event: &Event) -> Result<(), Error> {
        self.chain_deliveries()?;
        self.tally_written();
        // The seal records the steps over target as the trail so far counts them.
        let sealing = matches!(event, Event::RunFinished { .. }).then(|| self.timed(event));
        if let Some(audit) = self.audit.as_mut() {
            record(audit, sealing.as_ref().unwrap_or(event))?;
        }
        self.tally_written();
        // The listeners get the times as the review of the trail, this line included, counts.
        let timed = match event {
            Event::StepFinished { .. } | Event::FleetFinished { .. } | Event::RunFinished { .. } => {
                Some(self.timed(event))
            }
            _ => None,
        };
        let event = timed.as_ref().unwrap_or(event);
        if let Some(notify) = self.notify.as_mut() {
            let head = self
                .audit
                .as_ref()
                .map(|a| a.head().to_string())
                .unwrap_or_default();
            notify.handle(event, &head);
        }
        if let Some(traces) = self.traces.as_mut() {
            traces.handle(event);
        }
        self.ui.handle(event);
        Ok(())
    }

    /// Feeds the tally what the trail got since.
    fn tally_written(&mut self) {
        if let Some(audit) = self.audit.as_mut() {
            for line in audit.take_written() {
                self.tally.feed(line.as_bytes());
            }
        }
    }

    /// `event` with the tally's times: a finished step's visit so far, the run's steps over
    /// their target.
    fn timed(&self, event: &Event) -> Event {
        let ms = std::time::Duration::from_millis;
        let mut event = event.clone();
        match &mut event {
            Event::StepFinished { step, visit, .. } | Event::FleetFinished { step, visit, .. } => {
                *visit = self.tally.visit_ms(step).map(ms);
            }
            Event::RunFinished { over_target, .. } => {
                *over_target = self
                    .tally
                    .over_target()
                    .into_iter()
                    .map(|o| (o.step, ms(o.took_ms), ms(o.target_ms)))
                    .collect();
            }
            _ => {}
        }
        event
    }

    /// Shows an event without recording it: a command's output as it comes, heartbeats,
    /// notices. The executor reaches the terminal only through events.
    pub fn show(&mut self, event: &Event) {
        self.ui.handle(event);
    }

    /// Durable events from here to `release_syncs` share one fsync (`AuditLog::hold_syncs`).
    pub fn hold_syncs(&mut self) {
        if let Some(audit) = self.audit.as_mut() {
            audit.hold_syncs();
        }
    }

    /// The one fsync of the durable events since `hold_syncs`.
    pub fn release_syncs(&mut self) -> Result<(), Error> {
        match self.audit.as_mut() {
            Some(audit) => audit.release_syncs(),
            None => Ok(()),
        }
    }

    /// The fsync of the durable events since `hold_syncs`, left to the audit's fsync thread:
    /// what resolves once it is done (`AuditLog::release_syncs_later`).
    pub fn release_syncs_later(&mut self) -> Result<crate::audit::Recorded, Error> {
        match self.audit.as_mut() {
            Some(audit) => audit.release_syncs_later(),
            None => Ok(crate::audit::Recorded::done()),
        }
    }

    /// The hook of the two-person rule: a step waits for approvals (design §15).
    pub fn approval_needed(&mut self, step: &str, host: &str, request: &str, quorum: u32) {
        if let Some(notify) = self.notify.as_mut() {
            notify.approval_needed(step, host, request, quorum);
        }
    }

    /// Chains the deliveries (and escalations) that are over, before the event at hand.
    fn chain_deliveries(&mut self) -> Result<(), Error> {
        let (Some(notify), Some(audit)) = (self.notify.as_mut(), self.audit.as_mut()) else {
            return Ok(());
        };
        if audit.is_sealed() {
            return Ok(());
        }
        for r in notify.drain() {
            chain_record(audit, &r)?;
        }
        Ok(())
    }

    /// At exit: waits at most `timeout` (`--notify-timeout`) for pending deliveries and the
    /// trace export. Deliveries over after the seal go to `<run-id>/notifications.jsonl`; on a
    /// trail left open (a stopped run), into the chain. Returns how many were not delivered.
    pub fn close_notifications(&mut self, timeout: std::time::Duration) -> usize {
        // The trace export runs beside the notifications' flush, within the same bound.
        let deadline = std::time::Instant::now() + timeout;
        let exporting = self.traces.take().map(|traces| {
            std::thread::spawn(move || {
                if let Some(why) = traces.finish(timeout) {
                    crate::ewriteln!("runbook: warning: the trace was not exported: {why}");
                }
            })
        });
        let undelivered = self.flush_notifications();
        if let Some(thread) = exporting {
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        undelivered
    }

    fn flush_notifications(&mut self) -> usize {
        let Some(notify) = self.notify.take() else {
            return 0;
        };
        let records = notify.finish();
        let undelivered = records
            .iter()
            .filter(|r| r.event == "notification" && r.fields.get("outcome") != Some(&json!("delivered")))
            .count();
        if let Some(audit) = self.audit.as_mut() {
            if audit.is_sealed() {
                let run = audit.run_id().to_string();
                let lines: String = records
                    .iter()
                    .map(|r| crate::notify::record_line(&run, r))
                    .collect();
                if !lines.is_empty()
                    && let Err(e) = audit.write_after_seal("notifications.jsonl", lines.as_bytes())
                {
                    crate::ewriteln!("runbook: warning: the deliveries after the seal are not recorded: {e}");
                }
            } else {
                for r in &records {
                    if chain_record(audit, r).is_err() {
                        break;
                    }
                }
            }
        }
        undelivered
    }
}

fn chain_record(audit: &mut AuditLog, r: &Record) -> Result<(), Error> {
    audit.append(r.event, None, None, r.fields.clone(), r.event == "escalation due")?;
    Ok(())
}

fn fields(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The account, machine and signing key of `run started` and `run resumed`.
fn who_fields(who: &crate::events::Who) -> Map<String, Value> {
    fields(vec![
        (
            "account",
            json!({"uid": who.account.uid, "login": who.account.login}),
        ),
        ("machine", json!(who.machine)),
        (
            "signing_key",
            who.signed_by
                .as_ref()
                .map(|(key, _)| json!(key))
                .unwrap_or(Value::Null),
        ),
        (
            "unsigned",
            who.unsigned.as_ref().map(|why| json!(why)).unwrap_or(Value::Null),
        ),
    ])
}

fn record(audit: &mut AuditLog, event: &Event) -> Result<(), Error> {
    match event {
        Event::RunStarted {
            runbook,
            title,
            file,
            file_sha256,
            mode,
            targets,
            inputs,
            rto,
            since_offset,
            allow_prod,
            accept_new_host_keys,
            start_at,
            no_shell,
            who,
            alert,
            unattended,
            ..
        } => {
            let f = fields(vec![
                ("runbook", json!(runbook)),
                ("title", json!(title)),
                ("file", json!(file)),
                ("file_sha256", json!(file_sha256)),
                ("mode", json!(mode.as_str())),
                ("targets", json!(targets)),
                ("inputs", json!(inputs)),
                ("rto_ms", ms(*rto)),
                ("since_offset_ms", ms(*since_offset)),
                // Always written, true or false: a trail without it predates the field.
                ("unattended", json!(unattended)),
                (
                    "start_at",
                    start_at.as_ref().map(|s| json!(s)).unwrap_or(Value::Null),
                ),
                ("allow_prod", if *allow_prod { json!(true) } else { Value::Null }),
                ("no_shell", if *no_shell { json!(true) } else { Value::Null }),
                (
                    "accept_new_host_keys",
                    if *accept_new_host_keys {
                        json!(true)
                    } else {
                        Value::Null
                    },
                ),
            ]);
            let mut f = f;
            f.extend(who_fields(who));
            if let Some(alert) = alert {
                f.insert("alert".into(), alert.clone());
            }
            audit.append("run started", None, None, f, true)?;
        }
        Event::TargetConnected {
            role,
            host,
            host_key_added,
            host_key,
            client_key,
            reconnected,
        } => {
            let f = fields(vec![
                ("role", json!(role)),
                (
                    "host_key",
                    host_key.as_ref().map(|k| json!(k)).unwrap_or(Value::Null),
                ),
                (
                    "client_key",
                    client_key.as_ref().map(|k| json!(k)).unwrap_or(Value::Null),
                ),
                (
                    "host_key_added",
                    host_key_added.as_ref().map(|k| json!(k)).unwrap_or(Value::Null),
                ),
                (
                    "reconnected",
                    if *reconnected { json!(true) } else { Value::Null },
                ),
            ]);
            audit.append("target connected", None, Some(host), f, false)?;
        }
        Event::StepPresented {
            step,
            position,
            total,
            title,
            kind,
            host,
            target,
            ..
        } => {
            let f = fields(vec![
                ("position", json!(position)),
                ("total", json!(total)),
                ("title", json!(title)),
                ("kind", json!(kind)),
                ("target_ms", target.map(ms).unwrap_or(Value::Null)),
            ]);
            audit.append("step presented", Some(step), Some(host), f, false)?;
        }
        Event::Answer {
            step,
            question,
            answer,
        } => {
            let f = fields(vec![("question", json!(question)), ("answer", json!(answer))]);
            audit.append("answer", step.as_deref(), None, f, false)?;
        }
        Event::Note { step, text } => {
            audit.append(
                "note",
                step.as_deref(),
                None,
                fields(vec![("text", json!(text))]),
                false,
            )?;
        }
        Event::Edit { step, before, after } => {
            let f = fields(vec![("before", json!(before)), ("after", json!(after))]);
            audit.append("edit", Some(step), None, f, false)?;
        }
        Event::StepStarted {
            step,
            host,
            command,
            attempt,
            target,
            timeout,
            spinner,
            secrets,
            declassify,
            fleet,
        } => {
            // A command's output file, named before it exists: a crash in between leaves
            // a trail that still accounts for it.
            let output_file =
                spinner.then(|| audit.output_name(step, *attempt, fleet.as_ref().map(|_| host.as_str())));
            let f = fields(vec![
                ("command", json!(command)),
                ("attempt", json!(attempt)),
                ("target_ms", target.map(ms).unwrap_or(Value::Null)),
                ("timeout_ms", timeout.map(ms).unwrap_or(Value::Null)),
                (
                    "output_file",
                    output_file.map(|o| json!(o)).unwrap_or(Value::Null),
                ),
                (
                    "secrets",
                    if secrets.is_empty() {
                        Value::Null
                    } else {
                        json!(secrets)
                    },
                ),
                ("declassify", if *declassify { json!(true) } else { Value::Null }),
                ("fleet", fleet.as_ref().map(|f| json!(f)).unwrap_or(Value::Null)),
            ]);
            // Durable: the record of what is about to run must survive a crash of this process.
            audit.append("step started", Some(step), Some(host), f, true)?;
        }
        Event::Output { .. }
        | Event::Heartbeat { .. }
        | Event::Briefing(_)
        | Event::Retrying { .. }
        | Event::Notice(_) => {}
        Event::LeaseShared { path, host, with } => {
            let f = fields(vec![("lock", json!(path)), ("with", json!(with))]);
            audit.append("lease shared", None, Some(host), f, true)?;
        }
        Event::LockTaken {
            path,
            how,
            previous,
            stopped,
        } => {
            let event = if *how == "broken" {
                "lock broken"
            } else {
                "lock taken"
            };
            let f = fields(vec![
                ("lock", json!(path)),
                ("how", json!(how)),
                (
                    "previous",
                    previous.as_ref().map(|h| json!(h)).unwrap_or(Value::Null),
                ),
                (
                    "stopped",
                    if stopped.is_empty() {
                        Value::Null
                    } else {
                        json!(stopped)
                    },
                ),
            ]);
            audit.append(event, None, None, f, true)?;
        }
        Event::RunResumed {
            operator,
            previous_operator,
            who,
            gap,
            from,
            unattended,
            ..
        } => {
            let mut f = fields(vec![
                ("previous_operator", json!(previous_operator)),
                ("hand_off", json!(operator != previous_operator)),
                ("gap_ms", ms(*gap)),
                ("from", json!(from)),
                ("unattended", json!(unattended)),
            ]);
            f.extend(who_fields(who));
            audit.append_signed("run resumed", None, None, f)?;
        }
        Event::RemoteProcess {
            step,
            host,
            attempt,
            pgid,
        } => {
            let f = fields(vec![("attempt", json!(attempt)), ("pgid", json!(pgid))]);
            // Not fsynced: written, it survives a crash of this process; the step's own
            // durable events bracket it (one fsync less per remote step).
            audit.append("remote process", Some(step), Some(host), f, false)?;
        }
        Event::RemoteGroupChecked {
            step,
            host,
            pgid,
            alive,
            stopped,
        } => {
            let f = fields(vec![
                ("pgid", json!(pgid)),
                ("alive", json!(alive)),
                ("stopped", json!(stopped)),
            ]);
            audit.append("remote group checked", Some(step), Some(host), f, true)?;
        }
        Event::ShellOpened {
            step,
            host,
            number,
            from,
            cols,
            rows,
            recording,
            ..
        } => {
            let f = fields(vec![
                ("shell", json!(number)),
                ("from", json!(from)),
                ("cols", json!(cols)),
                ("rows", json!(rows)),
                // Named before it exists, as a step's output file: a crash in the session
                // leaves a trail that still accounts for it.
                ("output_file", json!(recording)),
            ]);
            audit.append("shell opened", Some(step), Some(host), f, true)?;
        }
        Event::ShellClosed {
            step,
            host,
            number,
            duration,
            cols,
            rows,
            resizes,
            exit,
            reason,
            recording,
            ..
        } => {
            let f = fields(vec![
                ("shell", json!(number)),
                ("duration_ms", ms(*duration)),
                ("cols", json!(cols)),
                ("rows", json!(rows)),
                ("resizes", json!(resizes)),
                ("exit", exit.map(|c| json!(c)).unwrap_or(Value::Null)),
                ("reason", reason.as_ref().map(|r| json!(r)).unwrap_or(Value::Null)),
                (
                    "output",
                    recording
                        .as_ref()
                        .map(|o| json!({"path": o.path, "size": o.size, "sha256": o.sha256}))
                        .unwrap_or(Value::Null),
                ),
            ]);
            audit.append("shell closed", Some(step), Some(host), f, true)?;
            audit.checkpoint_if_due()?;
        }
        Event::Hangup { reason } => {
            audit.append(
                "hangup",
                None,
                None,
                fields(vec![("reason", json!(reason))]),
                true,
            )?;
        }
        Event::Deviation(d) => {
            let f = fields(vec![
                ("kind", json!(d.kind.as_str())),
                ("allowed", json!(d.kind.allowed())),
                (
                    "detail",
                    d.detail.as_ref().map(|t| json!(t)).unwrap_or(Value::Null),
                ),
            ]);
            audit.append("deviation", Some(&d.step), None, f, false)?;
        }
        Event::WalkEnded { outcome, message } => {
            let f = fields(vec![
                ("outcome", json!(outcome.as_str())),
                (
                    "message",
                    message.as_ref().map(|m| json!(m)).unwrap_or(Value::Null),
                ),
            ]);
            audit.append("walk ended", None, None, f, true)?;
        }
        Event::StepFinished {
            step,
            host,
            outcome,
            exit,
            attempt,
            duration,
            target,
            reason,
            output,
            capture,
            fleet,
            visit: _,
        } => {
            let over = target.map(|t| json!(*duration > t)).unwrap_or(Value::Null);
            let f = fields(vec![
                ("outcome", json!(outcome.as_str())),
                ("exit", exit.map(|c| json!(c)).unwrap_or(Value::Null)),
                ("attempt", json!(attempt)),
                ("duration_ms", ms(*duration)),
                ("target_ms", target.map(ms).unwrap_or(Value::Null)),
                ("over_target", over),
                ("reason", reason.as_ref().map(|r| json!(r)).unwrap_or(Value::Null)),
                (
                    "capture",
                    capture
                        .as_ref()
                        .map(|(name, value)| json!({"name": name, "value": value}))
                        .unwrap_or(Value::Null),
                ),
                (
                    "output",
                    output
                        .as_ref()
                        .map(|o| json!({"path": o.path, "size": o.size, "sha256": o.sha256, "tail": o.tail}))
                        .unwrap_or(Value::Null),
                ),
                ("fleet", fleet.as_ref().map(|f| json!(f)).unwrap_or(Value::Null)),
            ]);
            // Soon rather than now: the next durable event (the next step's start, before its
            // command runs) carries it anyway, and the run need not wait for the disk here.
            audit.append("step finished", Some(step), Some(host), f, false)?;
            audit.sync_soon()?;
            audit.checkpoint_if_due()?;
        }
        Event::ApprovalRequested {
            step,
            request,
            request_sha256,
            quorum,
            timeout,
        } => {
            let f = fields(vec![
                ("request", json!(request)),
                ("request_sha256", json!(request_sha256)),
                ("quorum", json!(quorum)),
                ("timeout_ms", ms(*timeout)),
            ]);
            audit.append("approval requested", Some(step), None, f, true)?;
        }
        Event::Approval {
            step,
            principal,
            key,
            approve,
            reason,
            file,
        } => {
            let f = fields(vec![
                ("principal", json!(principal)),
                ("key", json!(key)),
                ("decision", json!(if *approve { "approve" } else { "deny" })),
                ("reason", reason.as_ref().map(|r| json!(r)).unwrap_or(Value::Null)),
                ("file", json!(file)),
            ]);
            audit.append("approval", Some(step), None, f, true)?;
        }
        Event::ApprovalRefused { step, file, why } => {
            let f = fields(vec![("file", json!(file)), ("why", json!(why))]);
            audit.append("approval refused", Some(step), None, f, true)?;
        }
        Event::FleetFinished {
            step,
            fleet,
            outcome,
            attempt,
            duration,
            target,
            ok,
            failed,
            not_started,
            times,
            visit: _,
        } => {
            let f = fields(vec![
                ("outcome", json!(outcome.as_str())),
                ("attempt", json!(attempt)),
                ("duration_ms", ms(*duration)),
                ("target_ms", target.map(ms).unwrap_or(Value::Null)),
                ("hosts_ok", json!(ok)),
                (
                    "hosts_failed",
                    json!(
                        failed
                            .iter()
                            .map(|(h, o)| json!({"host": h, "outcome": o.as_str()}))
                            .collect::<Vec<_>>()
                    ),
                ),
                ("hosts_not_started", json!(not_started)),
                (
                    "host_ms",
                    Value::Object(times.iter().map(|(h, d)| (h.clone(), ms(*d))).collect()),
                ),
            ]);
            audit.append("fleet step finished", Some(step), Some(fleet), f, true)?;
        }
        Event::Decision { step, label, goto } => {
            let f = fields(vec![("label", json!(label)), ("goto", json!(goto))]);
            audit.append("decision", Some(step), None, f, false)?;
        }
        Event::RunFinished {
            outcome,
            message,
            elapsed,
            rto,
            verdict,
            over_target,
            deviations,
        } => {
            let f = fields(vec![
                ("outcome", json!(outcome.as_str())),
                ("message", message.as_ref().map(|m| json!(m)).unwrap_or(Value::Null)),
                ("duration_ms", ms(*elapsed)),
                ("rto_ms", ms(*rto)),
                ("within_rto", json!(elapsed <= rto)),
                (
                    "verdict",
                    verdict
                        .as_ref()
                        .map(|v| json!({"pass": v.pass, "reason": v.reason}))
                        .unwrap_or(Value::Null),
                ),
                (
                    "over_target",
                    json!(
                        over_target
                            .iter()
                            .map(|(s, took, target)| json!({"step": s, "duration_ms": took.as_millis() as u64, "target_ms": target.as_millis() as u64}))
                            .collect::<Vec<_>>()
                    ),
                ),
                (
                    "deviations",
                    json!(
                        deviations
                            .iter()
                            .map(|d| json!({"step": d.step, "kind": d.kind.as_str(), "allowed": d.kind.allowed(), "detail": d.detail}))
                            .collect::<Vec<_>>()
                    ),
                ),
            ]);
            audit.seal(f)?;
        }
    }
    Ok(())
}
