//! Where the executor's events go: first the audit trail (so nothing is shown that is not
//! recorded, and a step's start is on disk before its command runs), then the notifications
//! (`notify`), then the terminal. Deliveries that are over are chained before each event.

use crate::audit::AuditLog;
use crate::error::Error;
use crate::events::{Event, FleetFinished, RunFinished, StepFinished};
use crate::listen::notify::{Notifier, Record};
use crate::listen::ui::Ui;

mod record;
use record::record;

pub(crate) struct Sink {
    pub ui: Ui,
    pub audit: Option<AuditLog>,
    /// The notifications listener (design §15), when any channel is configured.
    pub notify: Option<Notifier>,
    /// The traces listener (design §15), when an OTLP endpoint is configured.
    pub traces: Option<crate::listen::otlp::Traces>,
    /// The run's review so far, fed every line of the trail: the step times and the steps
    /// over target that the terminal and the seal show are those of `runbook review`.
    pub tally: crate::review::Tally,
    /// The team's audit host (design §19), fed every line of the trail as the tally is.
    pub mirror: Option<crate::listen::mirror::Mirror>,
    /// What a test case judges (`runbook test`): set only on a stubbed walk.
    pub tap: Option<crate::listen::tap::Tap>,
}

impl Sink {
    /// Records an event without showing it (what the operator need not see as it happens).
    pub(crate) fn record_only(&mut self, event: &Event) -> Result<(), Error> {
        self.chain_deliveries()?;
        if let Some(audit) = self.audit.as_mut() {
            record(audit, event)?;
        }
        self.tally_written();
        self.mirror_news()?;
        Ok(())
    }

    /// Records then shows one event. A failure to record stops the run: an unrecorded command
    /// must never run.
    pub(crate) fn emit(&mut self, event: &Event) -> Result<(), Error> {
        self.chain_deliveries()?;
        self.tally_written();
        // The seal records the steps over target as the trail so far counts them.
        let sealing = matches!(event, Event::RunFinished(_)).then(|| self.timed(event));
        if let (Some(_), Some(mirror)) = (&sealing, &self.mirror) {
            mirror.settle(crate::listen::mirror::SETTLE_WAIT);
            self.mirror_news()?;
        }
        if let Some(audit) = self.audit.as_mut() {
            record(audit, sealing.as_ref().unwrap_or(event))?;
        }
        self.tally_written();
        // After the event: a trail's opening (`run started`) stays its first line.
        self.mirror_news()?;
        // The listeners get the times as the review of the trail, this line included, counts.
        let timed = match event {
            Event::StepFinished(_) | Event::FleetFinished(_) | Event::RunFinished(_) => {
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
        if let Some(tap) = self.tap.as_mut() {
            tap.handle(event);
        }
        self.ui.handle(event);
        Ok(())
    }

    /// Feeds the tally and the mirror what the trail got since.
    fn tally_written(&mut self) {
        if let Some(audit) = self.audit.as_mut() {
            let written = audit.take_written();
            for line in &written {
                self.tally.feed(line.as_bytes());
            }
            if let Some(mirror) = &self.mirror {
                mirror.lines(audit.size(), written);
            }
        }
    }

    /// Records what befell the mirror since the event before (`mirror lost`, `mirror caught
    /// up`): the loss was said loudly when it happened, the catching up is shown now.
    fn mirror_news(&mut self) -> Result<(), Error> {
        let Some(mirror) = &self.mirror else {
            return Ok(());
        };
        if self.audit.as_ref().is_none_or(|a| a.is_sealed()) {
            return Ok(());
        }
        let audit_host = mirror.host().to_string();
        for news in mirror.news() {
            let event = match news {
                crate::listen::mirror::News::Lost { reason } => Event::MirrorLost {
                    audit_host: audit_host.clone(),
                    reason,
                },
                crate::listen::mirror::News::CaughtUp { bytes, files } => Event::MirrorCaughtUp {
                    audit_host: audit_host.clone(),
                    bytes,
                    files,
                },
            };
            if let Some(audit) = self.audit.as_mut() {
                record(audit, &event)?;
            }
            self.tally_written();
            self.ui.handle(&event);
        }
        Ok(())
    }

    /// At the end of the run: what is left sent to the audit host (`mirror::FINISH_WAIT`).
    pub(crate) fn close_mirror(&mut self) {
        let Some(mirror) = self.mirror.take() else {
            return;
        };
        let host = mirror.host().to_string();
        if let Err(why) = mirror.finish(crate::listen::mirror::FINISH_WAIT) {
            crate::stderr::ewriteln!(
                "runbook: warning: the audit host {host} does not have all of this run ({why}); the local trail is whole: copy it there by hand"
            );
        }
    }

    /// `event` with the tally's times: a finished step's visit so far, the run's steps over
    /// their target.
    fn timed(&self, event: &Event) -> Event {
        let ms = std::time::Duration::from_millis;
        let mut event = event.clone();
        match &mut event {
            Event::StepFinished(StepFinished { step, visit, .. })
            | Event::FleetFinished(FleetFinished { step, visit, .. }) => {
                *visit = self.tally.visit_ms(step).map(ms);
            }
            Event::RunFinished(RunFinished { over_target, .. }) => {
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
    pub(crate) fn show(&mut self, event: &Event) {
        self.ui.handle(event);
    }

    /// Durable events from here to `release_syncs` share one fsync (`AuditLog::hold_syncs`).
    pub(crate) fn hold_syncs(&mut self) {
        if let Some(audit) = self.audit.as_mut() {
            audit.hold_syncs();
        }
    }

    /// The one fsync of the durable events since `hold_syncs`.
    pub(crate) fn release_syncs(&mut self) -> Result<(), Error> {
        match self.audit.as_mut() {
            Some(audit) => audit.release_syncs(),
            None => Ok(()),
        }
    }

    /// The fsync of the durable events since `hold_syncs`, left to the audit's fsync thread:
    /// what resolves once it is done (`AuditLog::release_syncs_later`).
    /// With an audit host, it resolves once that host acknowledged them too (bounded).
    pub(crate) fn release_syncs_later(&mut self) -> Result<crate::audit::Recorded, Error> {
        let Some(audit) = self.audit.as_mut() else {
            return Ok(crate::audit::Recorded::done());
        };
        let recorded = audit.release_syncs_later()?;
        Ok(match &self.mirror {
            Some(mirror) => recorded.and_acknowledged(mirror.acknowledged(audit.size())),
            None => recorded,
        })
    }

    /// The hook of the two-person rule: a step waits for approvals (design §15).
    pub(crate) fn approval_needed(&mut self, step: &str, host: &str, request: &str, quorum: u32) {
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
    pub(crate) fn close_notifications(&mut self, timeout: std::time::Duration) -> usize {
        // The trace export runs beside the notifications' flush, within the same bound.
        let deadline = std::time::Instant::now() + timeout;
        let exporting = self.traces.take().map(|traces| {
            std::thread::spawn(move || {
                if let Some(why) = traces.finish(timeout) {
                    crate::stderr::ewriteln!("runbook: warning: the trace was not exported: {why}");
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
            .filter(|r| matches!(r, Record::Notification(n) if n.outcome != "delivered"))
            .count();
        if let Some(audit) = self.audit.as_mut() {
            if audit.is_sealed() {
                let run = audit.run_id().to_string();
                let lines: String = records
                    .iter()
                    .map(|r| crate::listen::notify::record_line(&run, r))
                    .collect();
                if !lines.is_empty()
                    && let Err(e) = audit.write_after_seal("notifications.jsonl", lines.as_bytes())
                {
                    crate::stderr::ewriteln!(
                        "runbook: warning: the deliveries after the seal are not recorded: {e}"
                    );
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
    audit.append_record(r, None, None, matches!(r, Record::EscalationDue(_)))?;
    Ok(())
}
