//! From events to a `Review`, one event at a time: the file is streamed, never held whole, so
//! a run of 100,000 steps reviews in bounded memory. Each step visit spans from its `step
//! presented` to the next one; inside it, time is split into wait (until the first start),
//! exec (while a command runs) and after (the rest).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::Value;

use super::{
    Answer, ApprovalRow, Attempt, CLOCK_JUMP_MS, ClockJump, Decision, DeviationRow, Edit, Gap, Integrity,
    Note, Review, StepVisit, TimeSplit, model::GuardRow as G, text,
};
use crate::audit::record::{self, Common, Line, Record};
use crate::error::Error;

mod finish;
mod tally;
pub(crate) use tally::Tally;

/// Streams the first `count` lines of `path` (those that verified) into a review.
pub(super) fn read_lines(
    path: &Path,
    count: u64,
    display: &str,
    integrity: Integrity,
) -> Result<Review, Error> {
    let read_error = |e: std::io::Error| Error::runtime(format!("cannot read `{}`: {e}", path.display()));
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path).map_err(read_error)?);
    let mut builder = Builder::new(display, integrity);
    let mut buf = Vec::new();
    for _ in 0..count {
        buf.clear();
        // A last line without its newline is torn (a crash): never part of the chain.
        if reader.read_until(b'\n', &mut buf).map_err(read_error)? == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        match Line::decode(buf.trim_ascii_end()) {
            Some(line) => builder.feed(line),
            None => builder.r.unreadable += 1,
        }
    }
    Ok(builder.finish())
}

/// A review from events already in memory (JSON objects as in the audit file), e.g. from
/// `audit::read_events` (unit tests).
#[cfg(test)]
pub(crate) fn from_events(events: Vec<Value>, path: &str, integrity: Integrity) -> Review {
    let mut builder = Builder::new(path, integrity);
    for event in events {
        match Line::from_value(&event) {
            Some(line) => builder.feed(line),
            None => builder.r.unreadable += 1,
        }
    }
    builder.finish()
}

/// A review from records already read (`audit::record::read`).
pub(crate) fn from_lines(lines: impl IntoIterator<Item = Line>, path: &str, integrity: Integrity) -> Review {
    let mut builder = Builder::new(path, integrity);
    for line in lines {
        builder.feed(line);
    }
    builder.finish()
}

/// What a visit opens with: its `step presented`, or a `step started` that was not.
#[derive(Default)]
struct Opening {
    title: String,
    kind: String,
    position: Option<u64>,
    target_ms: Option<u64>,
}

/// What is open while a visit goes on.
#[derive(Default)]
struct Open {
    first_start: Option<u64>,
    /// Attempts running now (several hosts at once), and since when one has been.
    running: u32,
    running_since: u64,
}

struct Builder {
    r: Review,
    since: u64,
    sealed_total: Option<u64>,
    /// The seal, and whether it is signed.
    seal: Option<(record::RunFinished, bool)>,
    prev: Option<(Option<DateTime<Utc>>, u64)>,
    last_at: u64,
    current: Option<(usize, Open)>,
    /// Gaps that are not before the first step: (kind, start, ms).
    resume_gaps: Vec<Gap>,
    /// When the run was resumed, until the first step after it opens: the questions asked
    /// at a resume (an unknown step) are the operator's time on that step, not a gap.
    resumed_at: Option<u64>,
    /// `unattended` of `run started` and of each `run resumed`, in order.
    walks: Vec<Option<bool>>,
}

fn parse_ts(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Builder {
    fn new(path: &str, integrity: Integrity) -> Builder {
        Builder {
            r: Review {
                run: String::new(),
                path: path.to_string(),
                integrity,
                events: 0,
                runbook: String::new(),
                title: String::new(),
                file_sha256: String::new(),
                mode: String::new(),
                kind: String::new(),
                inputs: IndexMap::new(),
                operators: Vec::new(),
                targets: IndexMap::new(),
                clock_start: None,
                launched: None,
                end: None,
                outcome: None,
                message: None,
                total_ms: 0,
                rto_ms: 0,
                verdict: String::new(),
                verdict_reason: None,
                steps: Vec::new(),
                time: TimeSplit::default(),
                gaps: Vec::new(),
                clock_jumps: Vec::new(),
                over_target: Vec::new(),
                notes: Vec::new(),
                deviations: Vec::new(),
                approvals: Vec::new(),
                head: None,
                signed: String::new(),
                account: None,
                machine: None,
                host_keys: IndexMap::new(),
                hand_offs: Vec::new(),
                guards: Vec::new(),
                unreadable: 0,
            },
            since: 0,
            sealed_total: None,
            seal: None,
            prev: None,
            last_at: 0,
            current: None,
            resume_gaps: Vec::new(),
            resumed_at: None,
            walks: Vec::new(),
        }
    }

    fn feed(&mut self, line: Line) {
        let Line { common: c, record } = line;
        let r = &mut self.r;
        r.events += 1;
        if r.run.is_empty() {
            r.run = c.run.clone();
        }
        if !c.operator.is_empty() && !r.operators.contains(&c.operator) {
            r.operators.push(c.operator.clone());
        }
        let ts = parse_ts(&c.ts);
        if let Record::RunStarted(started) = &record {
            self.since = started.since_offset_ms;
        }
        let at = c.mono_ms + self.since;
        if let Some((prev_ts, prev_mono)) = self.prev
            && let (Some(prev_ts), Some(ts)) = (prev_ts, ts)
        {
            let wall = (ts - prev_ts).num_milliseconds();
            let mono = c.mono_ms as i64 - prev_mono as i64;
            if (wall - mono).abs() > CLOCK_JUMP_MS {
                self.r.clock_jumps.push(ClockJump {
                    seq: c.seq,
                    at_ms: at,
                    skew_ms: wall - mono,
                });
            }
        }
        let prev_at = self.last_at;
        self.prev = Some((ts, c.mono_ms));
        // What a resume writes about the crash (a torn line set aside, a cut-off output
        // recorded) happens at the resume: the crash gap runs from the last event before it.
        if !matches!(record, Record::Recovery(_) | Record::OutputRecovered(_)) {
            self.last_at = at;
        }
        if ts.is_some() {
            self.r.end = ts;
        }
        if c.hash.is_some() {
            self.r.head = c.hash.clone();
        }
        // The first word about a step after a resume (the unknown step's question, its
        // outcome as marked) opens a visit of it from the resume on.
        if let (Some(since), None, Some(step)) = (self.resumed_at, &self.current, c.step.as_deref())
            && matches!(
                record,
                Record::Answer(_) | Record::Note(_) | Record::StepFinished(_) | Record::RemoteGroupChecked(_)
            )
            && let Some(last) = self.r.steps.iter().rposition(|v| v.step == step)
        {
            self.resumed_at = None;
            let mut visit = self.r.steps[last].clone();
            visit.start_ms = since;
            visit.wait_ms = 0;
            visit.exec_ms = 0;
            visit.after_ms = 0;
            visit.took_ms = 0;
            visit.over_ms = None;
            visit.outcome = None;
            visit.exit = None;
            visit.attempts.clear();
            visit.notes.clear();
            visit.decisions.clear();
            visit.edits.clear();
            visit.answers.clear();
            visit.shells.clear();
            self.r.steps.push(visit);
            self.current = Some((self.r.steps.len() - 1, Open::default()));
        }
        let step = || c.step.clone().unwrap_or_default();
        let approval = |decision: &str| ApprovalRow {
            at_ms: at,
            at: ts,
            step: step(),
            decision: decision.into(),
            by: None,
            key: None,
            reason: None,
            quorum: None,
            timeout_ms: None,
        };
        match record {
            Record::RunStarted(started) => self.run_started(&c, started, ts),
            Record::HandedOff(h) => self.r.hand_offs.push(super::HandOffRow {
                at_ms: at,
                at: ts,
                step: c.step.clone(),
                operator: c.operator.clone(),
                note: h.note,
            }),
            Record::TargetConnected(t) => {
                if let (Some(host), Some(key)) = (&c.host, t.host_key) {
                    self.r.host_keys.insert(host.clone(), key);
                }
            }
            Record::Deviation(d) => self.r.deviations.push(DeviationRow {
                at_ms: at,
                step: step(),
                kind: d.kind,
                allowed: d.allowed,
                detail: d.detail,
                operator: c.operator.clone(),
            }),
            Record::ApprovalRequested(a) => self.r.approvals.push(ApprovalRow {
                quorum: a.quorum,
                timeout_ms: a.timeout_ms,
                ..approval("requested")
            }),
            Record::Approval(a) => self.r.approvals.push(ApprovalRow {
                by: a.principal,
                key: a.key,
                reason: a.reason,
                ..approval(if a.decision == "deny" {
                    "denied"
                } else {
                    "approved"
                })
            }),
            Record::ApprovalRefused(a) => self.r.approvals.push(ApprovalRow {
                reason: a.why,
                ..approval("not counted")
            }),
            Record::StepPresented(p) => {
                self.close(at);
                let opening = Opening {
                    title: p.title,
                    kind: p.kind,
                    position: p.position,
                    target_ms: p.target_ms,
                };
                self.open(&c, opening, at);
            }
            Record::StepStarted(started) => self.step_started(&c, &started, at),
            Record::ShellOpened(o) => {
                let shell = super::ShellSession {
                    number: o.shell,
                    host: c.host.clone().unwrap_or_default(),
                    from: o.from,
                    at_ms: at,
                    ms: 0,
                    cols: o.cols,
                    rows: o.rows,
                    recording: o.output_file,
                    bytes: None,
                    sha256: None,
                };
                self.at_visit(&c, |v| v.shells.push(shell));
            }
            Record::ShellClosed(closed) => {
                if let Some(v) = self.visit_of(c.step.as_deref())
                    && let Some(s) = v.shells.iter_mut().rev().find(|s| s.number == closed.shell)
                {
                    s.ms = closed.duration_ms.unwrap_or(at.saturating_sub(s.at_ms));
                    if let Some(o) = closed.output {
                        s.bytes = Some(o.size);
                        s.sha256 = Some(o.sha256);
                    }
                }
            }
            Record::StepFinished(finished) => self.step_finished(&c, finished, at),
            Record::Note(n) => {
                let note = Note {
                    at_ms: at,
                    operator: c.operator.clone(),
                    text: n.text,
                };
                match self.visit_of(c.step.as_deref()) {
                    Some(v) => v.notes.push(note),
                    None => self.r.notes.push(note),
                }
            }
            // What happened at a step belongs to its latest visit.
            Record::Edit(e) => self.at_visit(&c, |v| {
                v.edits.push(Edit {
                    at_ms: at,
                    operator: c.operator.clone(),
                    before: e.before,
                    after: e.after,
                })
            }),
            Record::Answer(a) => self.at_visit(&c, |v| {
                v.answers.push(Answer {
                    at_ms: at,
                    question: a.question,
                    answer: a.answer,
                })
            }),
            Record::Decision(d) => self.at_visit(&c, |v| {
                v.decisions.push(Decision {
                    at_ms: at,
                    label: d.label,
                    goto: d.goto,
                    operator: c.operator.clone(),
                })
            }),
            Record::RunResumed(resumed) => {
                self.walks.push(resumed.unattended);
                // From the last event before the crash (or hand-off, since the last resume) to
                // the resume, nobody was at it: the step in progress ends there, then a gap.
                self.close(prev_at);
                let since = self.resume_gaps.last().map_or(0, |g| g.start_ms + g.ms);
                let kind = match self.r.hand_offs.last() {
                    Some(h) if h.at_ms >= since => "hand_off_until_resume",
                    _ => "crash_until_resume",
                };
                self.resume_gaps.push(Gap {
                    kind: kind.into(),
                    start_ms: prev_at,
                    ms: at.saturating_sub(prev_at),
                });
                self.resumed_at = Some(at);
            }
            Record::RunFinished(seal) => {
                self.close(at);
                self.sealed_total = seal.duration_ms;
                self.seal = Some((seal, c.signature.is_some()));
            }
            other => self.r.guards.extend(G::of(other, c.host, at, ts)),
        }
    }

    fn run_started(&mut self, c: &Common, e: record::RunStarted, ts: Option<DateTime<Utc>>) {
        let r = &mut self.r;
        r.runbook = e.runbook;
        r.title = e.title;
        r.file_sha256 = e.file_sha256;
        r.mode = e.mode;
        r.targets = e.targets;
        r.inputs = e
            .inputs
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect();
        self.walks.push(e.unattended);
        r.rto_ms = e.rto_ms;
        r.launched = ts;
        r.account = e.account.as_ref().map(|a| match &a.login {
            Some(login) => format!("{login} (uid {})", a.uid),
            None => format!("uid {}", a.uid),
        });
        r.machine = e.machine;
        r.signed = match (&e.signing_key, &e.unsigned) {
            (Some(key), _) => format!("signed by {key}"),
            (None, Some(why)) => format!("UNSIGNED: {why}"),
            (None, None) => "UNSIGNED (recorded before signing existed)".into(),
        };
        r.clock_start = ts.map(|t| t - chrono::Duration::milliseconds((c.mono_ms + self.since) as i64));
    }

    fn open(&mut self, c: &Common, e: Opening, at: u64) {
        // The first step after a resume: from the resume on (its pre-flight and prompts).
        let at = self.resumed_at.take().map_or(at, |since| since.min(at));
        let kind = text(&e.kind);
        self.r.steps.push(StepVisit {
            step: c.step.clone().unwrap_or_default(),
            title: e.title,
            by_hand: kind == "manual",
            kind,
            host: c.host.as_deref().map(text),
            position: e.position,
            start_ms: at,
            wait_ms: 0,
            exec_ms: 0,
            after_ms: 0,
            took_ms: 0,
            target_ms: e.target_ms,
            over_ms: None,
            outcome: None,
            exit: None,
            attempts: Vec::new(),
            notes: Vec::new(),
            decisions: Vec::new(),
            edits: Vec::new(),
            answers: Vec::new(),
            hosts: Vec::new(),
            shells: Vec::new(),
        });
        self.current = Some((self.r.steps.len() - 1, Open::default()));
    }

    /// Ends the open visit at `at` (RTO clock): what still runs is unfinished.
    fn close(&mut self, at: u64) {
        let Some((index, open)) = self.current.take() else {
            return;
        };
        let v = &mut self.r.steps[index];
        let at = at.max(v.start_ms);
        if open.running > 0 {
            v.exec_ms += at.saturating_sub(open.running_since);
            for a in v.attempts.iter_mut().filter(|a| a.outcome == "unfinished") {
                a.exec_ms = at.saturating_sub(a.start_ms);
            }
            v.outcome = Some(text("unfinished"));
        }
        let span = at - v.start_ms;
        v.wait_ms = open
            .first_start
            .map_or(span, |f| f.saturating_sub(v.start_ms).min(span));
        v.exec_ms = v.exec_ms.min(span - v.wait_ms);
        v.after_ms = span - v.wait_ms - v.exec_ms;
        v.took_ms = span;
        v.over_ms = v.target_ms.map(|t| span as i64 - t as i64);
    }

    /// The visit an event about `step` belongs to: the open one when it is that step's, else
    /// that step's latest.
    fn at_visit(&mut self, c: &Common, add: impl FnOnce(&mut StepVisit)) {
        if let Some(v) = self.visit_of(c.step.as_deref()) {
            add(v);
        }
    }

    fn visit_of(&mut self, step: Option<&str>) -> Option<&mut StepVisit> {
        let step = step?;
        if let Some((index, _)) = &self.current
            && self.r.steps[*index].step == step
        {
            return Some(&mut self.r.steps[*index]);
        }
        self.r.steps.iter_mut().rev().find(|v| v.step == step)
    }

    fn step_started(&mut self, c: &Common, e: &record::StepStarted, at: u64) {
        let step = c.step.clone().unwrap_or_default();
        let is_current = matches!(&self.current, Some((i, _)) if self.r.steps[*i].step == step);
        if !is_current {
            // Started without being presented (a resumed re-run): a visit of its own.
            self.close(at);
            let opening = Opening {
                target_ms: e.target_ms,
                ..Opening::default()
            };
            self.open(c, opening, at);
        }
        let Some((index, open)) = self.current.as_mut() else {
            return;
        };
        let v = &mut self.r.steps[*index];
        open.first_start.get_or_insert(at);
        if open.running == 0 {
            open.running_since = at;
        }
        open.running += 1;
        let command = e.command.as_str();
        if command.starts_with("(by hand)") || command.starts_with("(manual)") {
            v.by_hand = true;
        }
        if v.target_ms.is_none() {
            v.target_ms = e.target_ms;
        }
        // Most steps have one attempt: room for exactly one, not the four a first push
        // makes (100,000 steps: 34 MB of a review's peak).
        if v.attempts.is_empty() {
            v.attempts.reserve_exact(1);
        }
        v.attempts.push(Attempt {
            attempt: e.attempt.unwrap_or(1),
            host: c.host.as_deref().map(text),
            start_ms: at,
            exec_ms: 0,
            outcome: text("unfinished"),
            exit: None,
            reason: None,
        });
    }

    fn step_finished(&mut self, c: &Common, e: record::StepFinished, at: u64) {
        let step = c.step.as_deref().unwrap_or_default();
        let current = match &mut self.current {
            Some((i, open)) if self.r.steps[*i].step == step => Some((*i, open)),
            _ => None,
        };
        let (index, open) = match current {
            Some((i, open)) => (i, Some(open)),
            None => match self.r.steps.iter().rposition(|v| v.step == step) {
                Some(i) => (i, None),
                None => return,
            },
        };
        let v = &mut self.r.steps[index];
        let outcome = text(e.outcome.as_deref().unwrap_or("?"));
        let host = c.host.as_deref().map(text);
        let attempt = e.attempt.unwrap_or(0);
        let found = v
            .attempts
            .iter_mut()
            .rev()
            .find(|a| a.outcome == "unfinished" && a.attempt == attempt && a.host == host);
        // A visit already closed (a `call`, whose runbook's steps came in between) keeps its
        // attempt within it: the timeline draws what the table counts (issue 25: `1ms` in the
        // table, a 41 s bar in the timeline). The steps of the called runbook hold the rest.
        let closed_at = open.is_none().then_some(v.start_ms + v.took_ms);
        if let Some(a) = found {
            let ran = e.duration_ms.unwrap_or(at.saturating_sub(a.start_ms));
            a.exec_ms = match closed_at {
                Some(end) => ran.min(end.saturating_sub(a.start_ms)),
                None => ran,
            };
            a.outcome = outcome.clone();
            a.exit = e.exit;
            a.reason = e.reason;
            if let Some(open) = open {
                open.running = open.running.saturating_sub(1);
                if open.running == 0 {
                    v.exec_ms += at.saturating_sub(open.running_since);
                }
            }
        }
        // On several hosts the step fails when one does: keep the first failure of an attempt.
        let worse_kept = v
            .attempts
            .iter()
            .any(|a| a.attempt == attempt && a.host != host && !matches!(&*a.outcome, "ok" | "unfinished"));
        if !worse_kept {
            v.outcome = Some(outcome);
            v.exit = e.exit;
        }
    }
}

#[cfg(test)]
mod tests;
