//! The RTO deadlines, on their own thread: 80% of the RTO (the warning), 100% (the breach)
//! and the runbook's `escalate.after`. Each is sent when the RTO clock passes it, whatever the
//! run is doing: a command that prints nothing for minutes, a prompt the operator is reading.
//! The escalation is also said loudly on the screen and recorded (`escalation due`).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Map, json};

use super::{Dispatch, Kind, Page, Record};

pub(crate) struct Timer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

struct Deadline {
    kind: Kind,
    /// RTO-clock time it falls at.
    at: Duration,
}

impl Timer {
    pub(crate) fn start(
        dispatch: Arc<Dispatch>,
        escalate: Option<(Duration, String)>,
        already: &HashSet<Kind>,
    ) -> Timer {
        let rto = dispatch.clock.rto;
        let mut deadlines = vec![
            Deadline {
                kind: Kind::RtoWarning,
                at: rto * 4 / 5,
            },
            Deadline {
                kind: Kind::RtoBreached,
                at: rto,
            },
        ];
        if let Some((after, _)) = &escalate {
            deadlines.push(Deadline {
                kind: Kind::EscalationDue,
                at: *after,
            });
        }
        deadlines.retain(|d| !already.contains(&d.kind) && !rto.is_zero());
        deadlines.sort_by_key(|d| d.at);
        let (stop, stopped) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("rto-deadlines".into())
            .spawn(move || run(&dispatch, deadlines, escalate, &stopped))
            .ok();
        Timer {
            stop: Some(stop),
            thread,
        }
    }

    /// The run is over: no deadline fires any more.
    pub(crate) fn stop(mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    dispatch: &Dispatch,
    deadlines: Vec<Deadline>,
    escalate: Option<(Duration, String)>,
    stopped: &Receiver<()>,
) {
    let clock = dispatch.clock;
    for deadline in deadlines {
        let when = clock.instant_of(deadline.at);
        let wait = when.saturating_duration_since(Instant::now());
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            // Stopped (or the run is gone): no more deadlines.
            _ => return,
        }
        fire(dispatch, deadline.kind, escalate.as_ref());
    }
}

fn fire(d: &Dispatch, kind: Kind, escalate: Option<&(Duration, String)>) {
    let rto = d.clock.rto;
    let rto_text = crate::duration::format(rto);
    let elapsed = d.clock.elapsed();
    let what = format!("{} ({}), run {}", d.run.title, d.run.runbook, d.run.run_id);
    let ms = |x: Duration| json!(x.as_millis() as u64);
    let (summary, data, page) = match kind {
        Kind::RtoWarning => (
            format!(
                "80% of the {rto_text} RTO is spent ({} left): {what}",
                crate::duration::format_elapsed(rto.saturating_sub(elapsed))
            ),
            Map::from_iter([
                ("spent_ms".to_string(), ms(elapsed)),
                ("left_ms".to_string(), ms(rto.saturating_sub(elapsed))),
            ]),
            None,
        ),
        Kind::RtoBreached => (
            format!("RTO breached: the {rto_text} RTO is spent and the run is not over: {what}"),
            Map::from_iter([("over_ms".to_string(), ms(elapsed.saturating_sub(rto)))]),
            Some(Page::Trigger),
        ),
        Kind::EscalationDue => {
            let (after, to) = escalate.cloned().unwrap_or_default();
            let after_text = crate::duration::format(after);
            let line = format!(
                "⚠⚠ ESCALATE NOW: not resolved {after_text} into the incident: call {}",
                crate::secrets::escape::value(&to)
            );
            (d.banner)(&line);
            let _ = d
                .records
                .send(Record::EscalationDue(crate::audit::record::EscalationDue {
                    after_ms: after.as_millis() as u64,
                    to: to.clone(),
                    elapsed_ms: elapsed.as_millis() as u64,
                    at: super::timestamp(chrono::Utc::now()),
                }));
            (
                format!("escalation due: not resolved {after_text} into the incident: call {to}: {what}"),
                Map::from_iter([("after_ms".to_string(), ms(after)), ("to".to_string(), json!(to))]),
                None,
            )
        }
        _ => return,
    };
    d.send(d.notice(kind, None, summary, data, page));
}
