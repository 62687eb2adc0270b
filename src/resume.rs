//! Rebuilding an interrupted run from its audit trail (design §6): where the walk was, what the
//! variables held, how many attempts each step had, and whether a step was cut off mid-flight.
//! Only what the trail says is believed; a step started but never finished is *unknown*.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::Value;

use crate::error::Error;
use crate::events::{Mode, RunOutcome};
use crate::executor::{Continue, CutOff, End};
use crate::runbook::{Outcome, Runbook, StepKind};

/// What the trail of an interrupted run holds.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub run_id: String,
    pub file: String,
    pub file_sha256: String,
    pub mode: Mode,
    /// role → host label
    pub targets: IndexMap<String, String>,
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

fn text<'a>(event: &'a Value, key: &str) -> &'a str {
    event[key].as_str().unwrap_or("")
}

fn ts(event: &Value) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(text(event, "ts"))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Error::runtime(format!("event seq {} has no valid `ts`", event["seq"])))
}

fn map(event: &Value, key: &str) -> IndexMap<String, String> {
    event[key]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The main runbook's step an event is about: `call/sub` belongs to the call step `call`.
fn top_level(step: &str) -> (&str, bool) {
    match step.split_once('/') {
        Some((top, _)) => (top, true),
        None => (step, false),
    }
}

/// Where the walk stood, event by event.
#[derive(Debug, Clone)]
enum Position {
    NotStarted,
    Presented(String),
    Started {
        step: String,
        ts: String,
        host: String,
        pgid: Option<i32>,
        /// A fleet step: the hosts' progress (`host` is the fleet's label).
        fleet: Option<crate::executor::FleetProgress>,
    },
    Finished {
        step: String,
        ok: bool,
    },
    Decided(String),
}

/// Rebuilds the run from its events (already verified: the chain holds).
pub fn rebuild(events: &[Value], runbook: &Runbook) -> Result<Recorded, Error> {
    let first = events
        .first()
        .filter(|e| text(e, "event") == "run started")
        .ok_or_else(|| Error::runtime("the trail does not begin with a `run started` event"))?;
    let last = events.last().unwrap_or(first);
    let mut position = Position::NotStarted;
    let mut captures = IndexMap::new();
    let mut attempts: HashMap<String, u32> = HashMap::new();
    let mut walk_end: Option<End> = None;
    let mut cleaned: Vec<String> = Vec::new();
    let mut deviations = Vec::new();
    let mut last_started: Option<Position> = None;
    // A cleanup step started and not (yet) finished.
    let mut cut: Option<CutOff> = None;
    let is_cleanup = |id: &str| runbook.cleanup.iter().any(|s| s.id() == id);

    for event in events {
        let kind = text(event, "event");
        let step = text(event, "step");
        if kind == "walk ended" {
            walk_end = Some(End {
                outcome: outcome_of(text(event, "outcome")),
                message: event["message"].as_str().map(String::from),
            });
            continue;
        }
        // The terminal hung up and the running command was stopped part-way: what it did is
        // unknown, as after a crash.
        if kind == "hangup" {
            if let (Position::Finished { ok: false, .. }, Some(started)) = (&position, &last_started) {
                position = started.clone();
            }
            continue;
        }
        if step.is_empty() {
            continue;
        }
        if kind == "deviation"
            && let Some(k) = crate::events::DeviationKind::parse(text(event, "kind"))
        {
            deviations.push(crate::events::Deviation {
                step: step.to_string(),
                kind: k,
                detail: event["detail"].as_str().map(String::from),
            });
        }
        if let Some(n) = event["attempt"].as_u64().filter(|_| kind == "step started") {
            let count = attempts.entry(step.to_string()).or_insert(0);
            *count = (*count).max(n as u32);
        }
        if walk_end.is_some() {
            if is_cleanup(step) {
                cleanup_event(&mut cut, &mut cleaned, event, kind, step);
            }
            continue;
        }
        let (top, inside_call) = top_level(step);
        if inside_call {
            continue;
        }
        // One host of a fleet step: the step stays started until `fleet step finished`.
        if let Some(label) = event["fleet"].as_str() {
            let host = text(event, "host").to_string();
            let same = matches!(&position, Position::Started { step: s, fleet: Some(_), .. } if s == top);
            if !same && kind == "step started" {
                position = Position::Started {
                    step: top.to_string(),
                    ts: text(event, "ts").to_string(),
                    host: label.to_string(),
                    pgid: None,
                    fleet: Some(Default::default()),
                };
            }
            if let Position::Started { fleet: Some(p), .. } = &mut position {
                // A lost host keeps the process group its start recorded: it may still run.
                let group = p.unknown.iter().find(|(h, _)| *h == host).and_then(|(_, g)| *g);
                p.unknown.retain(|(h, _)| *h != host);
                p.finished.retain(|(h, _)| *h != host);
                match kind {
                    "step started" => p.unknown.push((host, None)),
                    "step finished" if text(event, "outcome") == "lost" => p.unknown.push((host, group)),
                    "step finished" => {
                        let ok = matches!(text(event, "outcome"), "ok" | "skipped" | "marked done");
                        p.finished.push((host, ok));
                    }
                    _ => {}
                }
            }
            last_started = Some(position.clone());
            continue;
        }
        match kind {
            // A host lost mid-step left the step unknown there, not failed: it stays started.
            "fleet step finished"
                if text(event, "outcome") == "lost"
                    && matches!(&position, Position::Started { step: s, fleet: Some(_), .. } if s == top) => {
            }
            "fleet step finished" => {
                position = Position::Finished {
                    step: top.to_string(),
                    ok: text(event, "outcome") == "ok",
                };
            }
            "step presented" => position = Position::Presented(top.to_string()),
            "step started" => {
                position = Position::Started {
                    step: top.to_string(),
                    ts: text(event, "ts").to_string(),
                    host: text(event, "host").to_string(),
                    pgid: None,
                    fleet: None,
                };
                last_started = Some(position.clone());
            }
            "remote process" => {
                let group = event["pgid"].as_i64().map(|p| p as i32);
                match &mut position {
                    Position::Started { fleet: Some(p), .. } => {
                        let host = text(event, "host");
                        if let Some(entry) = p.unknown.iter_mut().find(|(h, _)| h == host) {
                            entry.1 = group;
                        }
                    }
                    Position::Started { pgid, .. } => *pgid = group,
                    _ => {}
                }
                last_started = Some(position.clone());
            }
            // A lost step's outcome is unknown: as if it had never finished.
            "step finished" if text(event, "outcome") == "lost" => {}
            "step finished" => {
                let outcome = text(event, "outcome");
                if let Some(capture) = event["capture"].as_object() {
                    let name = capture.get("name").and_then(Value::as_str).unwrap_or("");
                    let value = capture.get("value").and_then(Value::as_str).unwrap_or("");
                    captures.insert(name.to_string(), value.to_string());
                }
                // A retry attempt that failed is followed by another start; only the last counts.
                position = Position::Finished {
                    step: top.to_string(),
                    ok: matches!(outcome, "ok" | "skipped" | "marked done"),
                };
            }
            "decision" => position = Position::Decided(text(event, "goto").to_string()),
            _ => {}
        }
    }

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
            Position::NotStarted => {
                let start = first["start_at"].as_str().map(String::from);
                Continue::Step(start.unwrap_or_else(|| {
                    runbook
                        .steps
                        .first()
                        .map(|s| s.id().to_string())
                        .unwrap_or_default()
                }))
            }
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
        run_id: text(first, "run").to_string(),
        file: text(first, "file").to_string(),
        file_sha256: text(first, "file_sha256").to_string(),
        mode: if text(first, "mode") == "drill" {
            Mode::Drill
        } else {
            Mode::Incident
        },
        targets: map(first, "targets"),
        inputs: map(first, "inputs"),
        started_at: ts(first)?,
        since_offset: Duration::from_millis(first["since_offset_ms"].as_u64().unwrap_or(0)),
        allow_prod: first["allow_prod"].as_bool().unwrap_or(false),
        operator: text(last, "operator").to_string(),
        last_ts: ts(last)?,
        captures,
        attempts,
        deviations,
        continue_at,
    })
}

/// One event of a cleanup step, after the walk ended: done once it finished (on a fleet,
/// once `fleet step finished`), cut off while only its start (or a host's) is recorded.
fn cleanup_event(cut: &mut Option<CutOff>, cleaned: &mut Vec<String>, event: &Value, kind: &str, step: &str) {
    let host = text(event, "host").to_string();
    let fleet = event["fleet"].as_str();
    match kind {
        "step started" => {
            if cut.as_ref().is_none_or(|c| c.step != step) {
                *cut = Some(CutOff {
                    step: step.to_string(),
                    started: text(event, "ts").to_string(),
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
        "remote process" => {
            let group = event["pgid"].as_i64().map(|p| p as i32);
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
        "step finished" if fleet.is_some() => {
            if let Some(CutOff { fleet: Some(p), .. }) = cut {
                p.unknown.retain(|(h, _)| *h != host);
                let ok = matches!(text(event, "outcome"), "ok" | "skipped" | "marked done");
                p.finished.push((host, ok));
            }
        }
        "step finished" | "fleet step finished" => {
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
pub fn describe(at: &Continue, time: impl Fn(&str) -> String) -> String {
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
