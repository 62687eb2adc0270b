//! Rebuilding an interrupted run from its audit trail (design §6): where the walk was, what the
//! variables held, how many attempts each step had, and whether a step was cut off mid-flight.
//! Only what the trail says is believed; a step started but never finished is *unknown*.

use std::collections::HashMap;
use std::time::Duration;

use crate::audit::record::{Common, Line, Record};
use crate::book::runbook::{Outcome, Runbook, StepKind};
use crate::engine::executor::{Continue, CutOff, End};
use crate::error::Error;
use crate::events::{Mode, RunOutcome};
use chrono::{DateTime, Utc};
use indexmap::IndexMap;

/// What the trail of an interrupted run holds.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub run_id: String,
    pub file_sha256: String,
    pub mode: Mode,
    /// name → value as recorded (`***` for secrets)
    pub inputs: IndexMap<String, String>,
    pub started_at: DateTime<Utc>,
    /// RTO already spent when the run started (`--since`).
    pub since_offset: Duration,
    pub allow_prod: bool,
    /// The operator of the last event before the interruption.
    pub operator: String,
    pub last_ts: DateTime<Utc>,
    /// name → value as recorded (`***` for secret-derived captures)
    pub captures: IndexMap<String, String>,
    pub attempts: HashMap<String, u32>,
    /// The deviations recorded so far: the verdict counts them all.
    pub deviations: Vec<crate::events::Deviation>,
    pub continue_at: Continue,
}

fn ts(event: &Common) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(&event.ts)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Error::runtime(format!("event seq {} has no valid `ts`", event.seq)))
}

/// Whether a step's recorded outcome lets the walk go on.
fn ok(outcome: &str) -> bool {
    matches!(outcome, "ok" | "skipped" | "marked done")
}

/// The fleet a host's event belongs to, when it is one host of a fleet step.
fn fleet_of(record: &Record) -> Option<&str> {
    match record {
        Record::StepStarted(s) => s.fleet.as_deref(),
        Record::StepFinished(f) => f.fleet.as_deref(),
        _ => None,
    }
}

/// The main runbook's step an event is about: `call/sub` belongs to the call step `call`.
fn top_level(step: &str) -> (&str, bool) {
    match step.split_once('/') {
        Some((top, _)) => (top, true),
        None => (step, false),
    }
}

/// Where the walk stood, event by event.
#[derive(Debug, Clone, Default)]
enum Position {
    #[default]
    NotStarted,
    Presented(String),
    Started {
        step: String,
        ts: String,
        host: String,
        pgid: Option<i32>,
        /// A fleet step: the hosts' progress (`host` is the fleet's label).
        fleet: Option<crate::engine::executor::FleetProgress>,
    },
    Finished {
        step: String,
        ok: bool,
    },
    Decided(String),
}

/// What the fold over the records keeps.
#[derive(Default)]
struct Walk {
    position: Position,
    captures: IndexMap<String, String>,
    attempts: HashMap<String, u32>,
    walk_end: Option<End>,
    cleaned: Vec<String>,
    deviations: Vec<crate::events::Deviation>,
    last_started: Option<Position>,
    /// A cleanup step started and not (yet) finished.
    cut: Option<CutOff>,
}

impl Walk {
    /// One record more.
    fn fold(&mut self, line: &Line, is_cleanup: &dyn Fn(&str) -> bool) {
        let (c, record) = (&line.common, &line.record);
        let step = c.step.as_deref().unwrap_or("");
        match record {
            Record::WalkEnded(w) => {
                self.walk_end = Some(End {
                    outcome: outcome_of(&w.outcome),
                    message: w.message.clone(),
                });
                return;
            }
            // The terminal hung up and the running command was stopped part-way: what it did
            // is unknown, as after a crash.
            Record::Hangup(_) => {
                if let (Position::Finished { ok: false, .. }, Some(started)) =
                    (&self.position, &self.last_started)
                {
                    self.position = started.clone();
                }
                return;
            }
            // Nothing runs at a hand-off: a manual step (or one run by hand) whose report was
            // still to come is presented again to whoever takes over, not made unknown.
            Record::HandedOff(_) => {
                if let Position::Started {
                    step: s, fleet: None, ..
                } = &self.position
                    && c.step.as_deref() == Some(s.as_str())
                {
                    self.position = Position::Presented(s.clone());
                }
                return;
            }
            _ => {}
        }
        if step.is_empty() {
            return;
        }
        if let Record::Deviation(d) = record
            && let Some(k) = crate::events::DeviationKind::parse(&d.kind)
        {
            self.deviations.push(crate::events::Deviation {
                step: step.to_string(),
                kind: k,
                detail: d.detail.clone(),
            });
        }
        if let Record::StepStarted(started) = record
            && let Some(n) = started.attempt
        {
            let count = self.attempts.entry(step.to_string()).or_insert(0);
            *count = (*count).max(n as u32);
        }
        if self.walk_end.is_some() {
            if is_cleanup(step) {
                cleanup_event(&mut self.cut, &mut self.cleaned, line, step);
            }
            return;
        }
        let (top, inside_call) = top_level(step);
        if inside_call {
            return;
        }
        let position = &mut self.position;
        // One host of a fleet step: the step stays started until `fleet step finished`.
        if let Some(label) = fleet_of(record) {
            let host = c.host.clone().unwrap_or_default();
            let same = matches!(&position, Position::Started { step: s, fleet: Some(_), .. } if s == top);
            if !same && matches!(record, Record::StepStarted(_)) {
                *position = Position::Started {
                    step: top.to_string(),
                    ts: c.ts.clone(),
                    host: label.to_string(),
                    pgid: None,
                    fleet: Some(Default::default()),
                };
            }
            if let Position::Started { fleet: Some(p), .. } = position {
                // A lost host keeps the process group its start recorded: it may still run.
                let group = p.unknown.iter().find(|(h, _)| *h == host).and_then(|(_, g)| *g);
                p.unknown.retain(|(h, _)| *h != host);
                p.finished.retain(|(h, _)| *h != host);
                match record {
                    Record::StepStarted(_) => p.unknown.push((host, None)),
                    Record::StepFinished(f) if f.outcome.as_deref() == Some("lost") => {
                        p.unknown.push((host, group))
                    }
                    Record::StepFinished(f) => {
                        p.finished.push((host, ok(f.outcome.as_deref().unwrap_or(""))))
                    }
                    _ => {}
                }
            }
            self.last_started = Some(position.clone());
            return;
        }
        match record {
            // A host lost mid-step left the step unknown there, not failed: it stays started.
            Record::FleetFinished(f)
                if f.outcome == "lost"
                    && matches!(&position, Position::Started { step: s, fleet: Some(_), .. } if s == top) => {
            }
            Record::FleetFinished(f) => {
                *position = Position::Finished {
                    step: top.to_string(),
                    ok: f.outcome == "ok",
                };
            }
            Record::StepPresented(_) => *position = Position::Presented(top.to_string()),
            Record::StepStarted(_) => {
                *position = Position::Started {
                    step: top.to_string(),
                    ts: c.ts.clone(),
                    host: c.host.clone().unwrap_or_default(),
                    pgid: None,
                    fleet: None,
                };
                self.last_started = Some(position.clone());
            }
            Record::RemoteProcess(r) => {
                let group = r.pgid.map(|p| p as i32);
                match position {
                    Position::Started { fleet: Some(p), .. } => {
                        let host = c.host.as_deref().unwrap_or("");
                        if let Some(entry) = p.unknown.iter_mut().find(|(h, _)| h == host) {
                            entry.1 = group;
                        }
                    }
                    Position::Started { pgid, .. } => *pgid = group,
                    _ => {}
                }
                self.last_started = Some(position.clone());
            }
            // A lost step's outcome is unknown: as if it had never finished.
            Record::StepFinished(f) if f.outcome.as_deref() == Some("lost") => {}
            Record::StepFinished(f) => {
                if let Some(capture) = &f.capture {
                    self.captures.insert(capture.name.clone(), capture.value.clone());
                }
                // A retry attempt that failed is followed by another start; only the last counts.
                *position = Position::Finished {
                    step: top.to_string(),
                    ok: ok(f.outcome.as_deref().unwrap_or("")),
                };
            }
            Record::Decision(d) => *position = Position::Decided(d.goto.clone()),
            _ => {}
        }
    }
}

/// Rebuilds the run from its records (already verified: the chain holds): a fold over them.
pub(crate) fn rebuild(lines: &[Line], runbook: &Runbook) -> Result<Recorded, Error> {
    let (first, started) = match lines.first() {
        Some(Line {
            common,
            record: Record::RunStarted(started),
        }) => (common, started),
        _ => {
            return Err(Error::runtime(
                "the trail does not begin with a `run started` event",
            ));
        }
    };
    let last = lines.last().map_or(first, |l| &l.common);
    let is_cleanup = |id: &str| runbook.cleanup.iter().any(|s| s.id() == id);
    let mut walk = Walk::default();
    for line in lines {
        walk.fold(line, &is_cleanup);
    }
    let Walk {
        position,
        captures,
        attempts,
        walk_end,
        mut cleaned,
        deviations,
        cut,
        ..
    } = walk;

    let continue_at = match walk_end {
        Some(end) => {
            // A retry cut off is not done, whatever an earlier attempt recorded.
            if let Some(c) = &cut {
                cleaned.retain(|s| *s != c.step);
            }
            Continue::Cleanup {
                end,
                done: cleaned,
                cut,
            }
        }
        None => match position {
            Position::NotStarted => Continue::Step(started.start_at.clone().unwrap_or_else(|| {
                runbook
                    .steps
                    .first()
                    .map(|s| s.id().to_string())
                    .unwrap_or_default()
            })),
            Position::Presented(step) => Continue::Step(step),
            Position::Started {
                step,
                ts,
                host,
                pgid,
                fleet,
            } => Continue::Unknown {
                step,
                started: ts,
                host,
                pgid,
                fleet,
            },
            Position::Decided(goto) => Continue::Step(goto),
            Position::Finished { step, ok: false } => Continue::AfterFailure(step),
            Position::Finished { step, ok: true } => match next_after(runbook, &step) {
                Some(next) => Continue::Step(next),
                None => Continue::Cleanup {
                    end: End {
                        outcome: RunOutcome::Ended(Outcome::Failed),
                        message: Some("the run fell off the last step".into()),
                    },
                    done: Vec::new(),
                    cut: None,
                },
            },
        },
    };
    Ok(Recorded {
        run_id: first.run.clone(),
        file_sha256: started.file_sha256.clone(),
        mode: if started.mode == "drill" {
            Mode::Drill
        } else {
            Mode::Incident
        },
        inputs: started
            .inputs
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect(),
        started_at: ts(first)?,
        since_offset: Duration::from_millis(started.since_offset_ms),
        allow_prod: started.allow_prod,
        operator: last.operator.clone(),
        last_ts: ts(last)?,
        captures,
        attempts,
        deviations,
        continue_at,
    })
}

/// One event of a cleanup step, after the walk ended: done once it finished (on a fleet,
/// once `fleet step finished`), cut off while only its start (or a host's) is recorded.
fn cleanup_event(cut: &mut Option<CutOff>, cleaned: &mut Vec<String>, line: &Line, step: &str) {
    let host = line.common.host.clone().unwrap_or_default();
    let fleet = fleet_of(&line.record);
    match &line.record {
        Record::StepStarted(_) => {
            if cut.as_ref().is_none_or(|c| c.step != step) {
                *cut = Some(CutOff {
                    step: step.to_string(),
                    started: line.common.ts.clone(),
                    host: fleet.unwrap_or(&host).to_string(),
                    pgid: None,
                    fleet: fleet.map(|_| Default::default()),
                });
            }
            if let Some(CutOff { fleet: Some(p), .. }) = cut {
                p.unknown.retain(|(h, _)| *h != host);
                p.finished.retain(|(h, _)| *h != host);
                p.unknown.push((host, None));
            }
        }
        Record::RemoteProcess(r) => {
            let group = r.pgid.map(|p| p as i32);
            match cut {
                Some(CutOff { fleet: Some(p), .. }) => {
                    if let Some(entry) = p.unknown.iter_mut().find(|(h, _)| *h == host) {
                        entry.1 = group;
                    }
                }
                Some(c) => c.pgid = group,
                None => {}
            }
        }
        Record::StepFinished(f) if fleet.is_some() => {
            if let Some(CutOff { fleet: Some(p), .. }) = cut {
                p.unknown.retain(|(h, _)| *h != host);
                p.finished.push((host, ok(f.outcome.as_deref().unwrap_or(""))));
            }
        }
        Record::StepFinished(_) | Record::FleetFinished(_) => {
            cleaned.push(step.to_string());
            *cut = None;
        }
        _ => {}
    }
}

/// The step after a successful one: its `next`, else the next in the list.
fn next_after(runbook: &Runbook, id: &str) -> Option<String> {
    let index = runbook.step_index(id)?;
    let step = &runbook.steps[index];
    if matches!(step.kind(), Some(StepKind::End(_))) {
        return None;
    }
    match &step.next {
        Some(next) => Some(next.value.clone()),
        None => runbook.steps.get(index + 1).map(|s| s.id().to_string()),
    }
}

fn outcome_of(text: &str) -> RunOutcome {
    match text {
        "resolved" => RunOutcome::Ended(Outcome::Resolved),
        "escalated" => RunOutcome::Ended(Outcome::Escalated),
        "aborted" => RunOutcome::Aborted,
        "interrupted" => RunOutcome::Interrupted,
        "lost" => RunOutcome::Lost,
        _ => RunOutcome::Ended(Outcome::Failed),
    }
}

/// Where the walk goes on, in words, for the operator and the `run resumed` event; `time`
/// words a recorded RFC 3339 stamp (as is for the trail, local `HH:MM` for the operator).
pub(crate) fn describe(at: &Continue, time: impl Fn(&str) -> String) -> String {
    match at {
        Continue::Step(step) => format!("at step `{step}`"),
        Continue::Unknown {
            step, started, host, ..
        } => {
            format!(
                "at step `{step}`, started at {} on {host} and never finished (outcome unknown)",
                time(started)
            )
        }
        Continue::AfterFailure(step) => format!("after the failure of step `{step}`"),
        Continue::Cleanup {
            end, cut: Some(c), ..
        } => format!(
            "in the cleanup, after the run ended {}, at step `{}`, started at {} on {} and never finished (outcome unknown)",
            end.outcome.as_str(),
            c.step,
            time(&c.started),
            c.host
        ),
        Continue::Cleanup { end, .. } => {
            format!("in the cleanup, after the run ended {}", end.outcome.as_str())
        }
    }
}
