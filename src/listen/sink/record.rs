//! The one writer of the trail: each recorded `Event` becomes its `Record` (the typed trail,
//! `audit::record`), which the log serialises. What a record holds, and in which order, is
//! declared there; here is only what of an event is kept.

use crate::audit::AuditLog;
use crate::audit::record::{self as r, Record};
use crate::error::Error;
use crate::events::Event;

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

fn output(o: &crate::events::OutputRecord, tail: bool) -> r::Output {
    r::Output {
        path: o.path.clone(),
        size: o.size,
        sha256: o.sha256.clone(),
        tail: tail.then(|| o.tail.clone()),
    }
}

/// The account, machine and signing key of `run started` and `run resumed`.
struct Who {
    account: Option<r::Account>,
    machine: Option<String>,
    signing_key: Option<String>,
    unsigned: Option<String>,
}

fn who(who: &crate::events::Who) -> Who {
    Who {
        account: Some(r::Account {
            uid: who.account.uid,
            login: who.account.login.clone(),
        }),
        machine: Some(who.machine.clone()),
        signing_key: who.signed_by.as_ref().map(|(key, _)| key.clone()),
        unsigned: who.unsigned.clone(),
    }
}

pub(super) fn record(audit: &mut AuditLog, event: &Event) -> Result<(), Error> {
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
            who: w,
            alert,
            unattended,
            ..
        } => {
            let w = who(w);
            let started = r::RunStarted {
                runbook: runbook.clone(),
                title: title.clone(),
                file: file.clone(),
                file_sha256: file_sha256.clone(),
                mode: mode.as_str().into(),
                targets: targets.clone(),
                inputs: inputs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().into()))
                    .collect(),
                rto_ms: ms(*rto),
                since_offset_ms: ms(*since_offset),
                // Always written, true or false: a trail without it predates the field.
                unattended: Some(*unattended),
                start_at: start_at.clone(),
                allow_prod: *allow_prod,
                no_shell: *no_shell,
                accept_new_host_keys: *accept_new_host_keys,
                account: w.account,
                machine: w.machine,
                signing_key: w.signing_key,
                unsigned: w.unsigned,
                alert: alert.clone(),
            };
            audit.append_record(&Record::RunStarted(started), None, None, true)?;
        }
        Event::TargetConnected {
            role,
            host,
            host_key_added,
            host_key,
            client_key,
            reconnected,
        } => {
            let connected = r::TargetConnected {
                role: role.clone(),
                host_key: host_key.clone(),
                client_key: client_key.clone(),
                host_key_added: host_key_added.clone(),
                reconnected: *reconnected,
            };
            audit.append_record(&Record::TargetConnected(connected), None, Some(host), false)?;
        }
        Event::StepPresented(p) => {
            let presented = r::StepPresented {
                position: Some(p.position as u64),
                total: Some(p.total as u64),
                title: p.title.clone(),
                kind: p.kind.to_string(),
                target_ms: p.target.map(ms),
            };
            let (step, host) = (Some(p.step.as_str()), Some(p.host.as_str()));
            audit.append_record(&Record::StepPresented(presented), step, host, false)?;
        }
        Event::Answer {
            step,
            question,
            answer,
        } => {
            let answer = r::Answer {
                question: question.clone(),
                answer: answer.clone(),
            };
            audit.append_record(&Record::Answer(answer), step.as_deref(), None, false)?;
        }
        Event::Note { step, text } => {
            let note = r::Note { text: text.clone() };
            audit.append_record(&Record::Note(note), step.as_deref(), None, false)?;
        }
        Event::Edit { step, before, after } => {
            let edit = r::Edit {
                before: before.clone(),
                after: after.clone(),
            };
            audit.append_record(&Record::Edit(edit), Some(step), None, false)?;
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
            let started = r::StepStarted {
                command: command.clone(),
                attempt: Some(u64::from(*attempt)),
                target_ms: target.map(ms),
                timeout_ms: timeout.map(ms),
                output_file,
                secrets: secrets.clone(),
                declassify: *declassify,
                fleet: fleet.clone(),
            };
            // Durable: the record of what is about to run must survive a crash of this process.
            audit.append_record(&Record::StepStarted(started), Some(step), Some(host), true)?;
        }
        Event::Output { .. }
        | Event::Heartbeat { .. }
        | Event::Briefing(_)
        | Event::Retrying { .. }
        | Event::Notice(_) => {}
        Event::LeaseShared { path, host, with } => {
            let shared = r::LeaseShared {
                lock: path.clone(),
                with: with.clone(),
            };
            audit.append_record(&Record::LeaseShared(shared), None, Some(host), true)?;
        }
        Event::LockTaken {
            path,
            how,
            previous,
            stopped,
        } => {
            let lock = r::Lock {
                lock: path.clone(),
                how: how.to_string(),
                previous: previous.clone(),
                stopped: stopped.clone(),
            };
            let record = if *how == "broken" {
                Record::LockBroken(lock)
            } else {
                Record::LockTaken(lock)
            };
            audit.append_record(&record, None, None, true)?;
        }
        Event::RunResumed {
            operator,
            previous_operator,
            who: w,
            gap,
            from,
            unattended,
            ..
        } => {
            let w = who(w);
            let resumed = r::RunResumed {
                previous_operator: previous_operator.clone(),
                hand_off: operator != previous_operator,
                gap_ms: ms(*gap),
                from: from.clone(),
                unattended: Some(*unattended),
                account: w.account,
                machine: w.machine,
                signing_key: w.signing_key,
                unsigned: w.unsigned,
                signature_error: None,
            };
            audit.append_signed(&Record::RunResumed(resumed), None, None)?;
        }
        Event::RemoteProcess {
            step,
            host,
            attempt,
            pgid,
        } => {
            let process = r::RemoteProcess {
                attempt: u64::from(*attempt),
                pgid: Some(i64::from(*pgid)),
            };
            // Not fsynced: written, it survives a crash of this process; the step's own
            // durable events bracket it (one fsync less per remote step).
            audit.append_record(&Record::RemoteProcess(process), Some(step), Some(host), false)?;
        }
        Event::RemoteGroupChecked(e) => {
            let (step, host, pgid, alive, stopped) = (&e.step, &e.host, &e.pgid, &e.alive, &e.stopped);
            let checked = r::RemoteGroupChecked {
                pgid: i64::from(*pgid),
                alive: *alive,
                stopped: *stopped,
            };
            audit.append_record(&Record::RemoteGroupChecked(checked), Some(step), Some(host), true)?;
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
            let opened = r::ShellOpened {
                shell: u64::from(*number),
                from: from.to_string(),
                cols: u64::from(*cols),
                rows: u64::from(*rows),
                // Named before it exists, as a step's output file: a crash in the session
                // leaves a trail that still accounts for it.
                output_file: recording.clone(),
            };
            audit.append_record(&Record::ShellOpened(opened), Some(step), Some(host), true)?;
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
            let closed = r::ShellClosed {
                shell: u64::from(*number),
                duration_ms: Some(ms(*duration)),
                cols: u64::from(*cols),
                rows: u64::from(*rows),
                resizes: u64::from(*resizes),
                exit: exit.map(i64::from),
                reason: reason.clone(),
                output: recording.as_ref().map(|o| output(o, false)),
            };
            audit.append_record(&Record::ShellClosed(closed), Some(step), Some(host), true)?;
            audit.checkpoint_if_due()?;
        }
        Event::Hangup { reason } => {
            let hangup = r::Hangup {
                reason: reason.clone(),
            };
            audit.append_record(&Record::Hangup(hangup), None, None, true)?;
        }
        Event::Deviation(d) => {
            let deviation = r::Deviation {
                kind: d.kind.as_str().into(),
                allowed: d.kind.allowed(),
                detail: d.detail.clone(),
            };
            audit.append_record(&Record::Deviation(deviation), Some(&d.step), None, false)?;
        }
        Event::WalkEnded { outcome, message } => {
            let ended = r::WalkEnded {
                outcome: outcome.as_str().into(),
                message: message.clone(),
            };
            audit.append_record(&Record::WalkEnded(ended), None, None, true)?;
        }
        Event::StepFinished(f) => {
            let finished = r::StepFinished {
                outcome: Some(f.outcome.as_str().into()),
                exit: f.exit.map(i64::from),
                attempt: Some(u64::from(f.attempt)),
                duration_ms: Some(ms(f.duration)),
                target_ms: f.target.map(ms),
                over_target: f.target.map(|t| f.duration > t),
                reason: f.reason.clone(),
                capture: (f.capture.as_ref()).map(|(name, value)| r::Capture {
                    name: name.clone(),
                    value: value.clone(),
                }),
                output: f.output.as_ref().map(|o| output(o, true)),
                fleet: f.fleet.clone(),
            };
            // Soon rather than now: the next durable event (the next step's start, before its
            // command runs) carries it anyway, and the run need not wait for the disk here.
            let (step, host) = (Some(f.step.as_str()), Some(f.host.as_str()));
            audit.append_record(&Record::StepFinished(finished), step, host, false)?;
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
            let requested = r::ApprovalRequested {
                request: request.clone(),
                request_sha256: request_sha256.clone(),
                quorum: Some(u64::from(*quorum)),
                timeout_ms: Some(ms(*timeout)),
            };
            audit.append_record(&Record::ApprovalRequested(requested), Some(step), None, true)?;
        }
        Event::Approval(a) => {
            let approval = r::Approval {
                principal: Some(a.principal.clone()),
                key: Some(a.key.clone()),
                decision: if a.approve { "approve" } else { "deny" }.into(),
                reason: a.reason.clone(),
                file: a.file.clone(),
            };
            audit.append_record(&Record::Approval(approval), Some(&a.step), None, true)?;
        }
        Event::ApprovalRefused { step, file, why } => {
            let refused = r::ApprovalRefused {
                file: file.clone(),
                why: Some(why.clone()),
            };
            audit.append_record(&Record::ApprovalRefused(refused), Some(step), None, true)?;
        }
        Event::FleetFinished(f) => {
            let finished = r::FleetFinished {
                outcome: f.outcome.as_str().into(),
                attempt: u64::from(f.attempt),
                duration_ms: ms(f.duration),
                target_ms: f.target.map(ms),
                hosts_ok: f.ok.clone(),
                hosts_failed: (f.failed.iter())
                    .map(|(h, o)| r::FailedHost {
                        host: h.clone(),
                        outcome: o.as_str().into(),
                    })
                    .collect(),
                hosts_not_started: f.not_started.clone(),
                host_ms: f.times.iter().map(|(h, d)| (h.clone(), ms(*d))).collect(),
            };
            let (step, fleet) = (Some(f.step.as_str()), Some(f.fleet.as_str()));
            audit.append_record(&Record::FleetFinished(finished), step, fleet, true)?;
        }
        Event::Decision { step, label, goto } => {
            let decision = r::Decision {
                label: label.clone(),
                goto: goto.clone(),
            };
            audit.append_record(&Record::Decision(decision), Some(step), None, false)?;
        }
        Event::RunFinished(f) => {
            let seal = r::RunFinished {
                outcome: Some(f.outcome.as_str().into()),
                message: f.message.clone(),
                duration_ms: Some(ms(f.elapsed)),
                rto_ms: Some(ms(f.rto)),
                within_rto: Some(f.elapsed <= f.rto),
                verdict: f.verdict.as_ref().map(|v| r::Verdict {
                    pass: v.pass,
                    reason: v.reason.clone(),
                }),
                over_target: (f.over_target.iter())
                    .map(|(step, took, target)| r::OverTarget {
                        step: step.clone(),
                        duration_ms: ms(*took),
                        target_ms: ms(*target),
                    })
                    .collect(),
                deviations: (f.deviations.iter())
                    .map(|d| r::SealDeviation {
                        step: d.step.clone(),
                        kind: d.kind.as_str().into(),
                        allowed: d.kind.allowed(),
                        detail: d.detail.clone(),
                    })
                    .collect(),
                // The log's to fill in.
                events: 0,
                head: String::new(),
                signature_error: None,
            };
            audit.seal_record(seal)?;
        }
        Event::HandedOff { step, note } => {
            let handed = r::HandedOff { note: note.clone() };
            // Durable: the colleague's resume starts from it.
            audit.append_record(&Record::HandedOff(handed), step.as_deref(), None, true)?;
        }
        Event::MirrorLost {
            audit_host, reason, ..
        } => {
            let lost = r::MirrorLost {
                audit_host: audit_host.clone(),
                reason: reason.clone(),
            };
            audit.append_record(&Record::MirrorLost(lost), None, None, false)?;
        }
        Event::Guard(changed) => {
            let g = r::Guard {
                guard: changed.guard.clone(),
                failures: changed.failures,
                reason: changed.reason.clone(),
                goto: changed.goto.clone(),
            };
            let (change, host) = (&changed.change, &changed.host);
            let record = match change {
                crate::events::GuardChange::Failing => Record::GuardFailing(g),
                crate::events::GuardChange::Tripped => Record::GuardTripped(g),
                crate::events::GuardChange::Recovered => Record::GuardRecovered(g),
            };
            // A trip changes where the walk goes: on disk before it does.
            let durable = *change == crate::events::GuardChange::Tripped;
            audit.append_record(&record, None, Some(host), durable)?;
        }
        Event::AlertResolved { fingerprint, before } => {
            let resolved = r::AlertResolved {
                fingerprint: fingerprint.clone(),
            };
            audit.append_record(&Record::AlertResolved(resolved), before.as_deref(), None, true)?;
        }
        Event::MirrorCaughtUp {
            audit_host,
            bytes,
            files,
        } => {
            let caught = r::MirrorCaughtUp {
                audit_host: audit_host.clone(),
                bytes: *bytes,
                files: *files,
            };
            audit.append_record(&Record::MirrorCaughtUp(caught), None, None, false)?;
        }
    }
    Ok(())
}
