//! From events to a `Review`, one event at a time: the file is streamed, never held whole, so
//! a run of 100,000 steps reviews in bounded memory. Each step visit spans from its `step
//! presented` to the next one; inside it, time is split into wait (until the first start),
//! exec (while a command runs) and after (the rest).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use super::{
    Answer, ApprovalRow, Attempt, CLOCK_JUMP_MS, ClockJump, Decision, DeviationRow, Edit, Gap, Integrity,
    Note, OverTarget, Review, StepVisit, TimeSplit, text,
};
use crate::error::Error;

/// The members of an event the review reads; everything else is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Line {
    pub seq: u64,
    pub ts: String,
    pub mono_ms: u64,
    pub run: String,
    pub event: String,
    pub operator: String,
    pub step: Option<String>,
    pub host: Option<String>,
    // run started
    pub runbook: Option<String>,
    pub title: Option<String>,
    pub file_sha256: Option<String>,
    pub mode: Option<String>,
    pub targets: Option<IndexMap<String, String>>,
    pub rto_ms: Option<u64>,
    pub since_offset_ms: Option<u64>,
    pub inputs: Option<Value>,
    // run started, run resumed
    pub unattended: Option<bool>,
    // step presented / started / finished
    pub position: Option<u64>,
    pub kind: Option<String>,
    pub target_ms: Option<u64>,
    pub command: Option<String>,
    pub attempt: Option<u64>,
    pub outcome: Option<String>,
    pub exit: Option<i64>,
    pub duration_ms: Option<u64>,
    pub reason: Option<String>,
    // answer, note, edit, decision
    pub question: Option<String>,
    pub answer: Option<String>,
    pub text: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub label: Option<String>,
    pub goto: Option<String>,
    // run finished
    pub message: Option<String>,
    pub within_rto: Option<bool>,
    pub verdict: Option<SealVerdict>,
    pub hash: Option<String>,
    pub signature: Option<Value>,
    // run started: who (design §12)
    pub account: Option<AccountField>,
    pub machine: Option<String>,
    pub signing_key: Option<String>,
    pub unsigned: Option<String>,
    // target connected
    pub host_key: Option<String>,
    // deviation
    pub allowed: Option<bool>,
    pub detail: Option<String>,
    // shell opened / closed
    pub shell: Option<u64>,
    pub from: Option<String>,
    pub cols: Option<u64>,
    pub rows: Option<u64>,
    pub output_file: Option<String>,
    pub output: Option<OutputField>,
    // approval requested / approval / approval refused
    pub quorum: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub principal: Option<String>,
    pub key: Option<String>,
    pub decision: Option<String>,
    pub why: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutputField {
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccountField {
    pub uid: u32,
    pub login: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SealVerdict {
    pub pass: bool,
    pub reason: String,
}

/// The members every event has: what is kept of a line whose own fields do not read as the
/// review expects (a newer writer), so one odd event cannot hide the rest of the run.
#[derive(Deserialize)]
struct Common {
    seq: u64,
    ts: String,
    mono_ms: u64,
    #[serde(default)]
    run: String,
    event: String,
    #[serde(default)]
    operator: String,
    step: Option<String>,
    host: Option<String>,
}

fn decode(bytes: &[u8]) -> Option<Line> {
    if let Ok(line) = serde_json::from_slice::<Line>(bytes) {
        return Some(line);
    }
    let c: Common = serde_json::from_slice(bytes).ok()?;
    Some(Line {
        seq: c.seq,
        ts: c.ts,
        mono_ms: c.mono_ms,
        run: c.run,
        event: c.event,
        operator: c.operator,
        step: c.step,
        host: c.host,
        ..Line::default()
    })
}

/// Streams the first `count` lines of `path` (those that verified) into a review.
pub(super) fn read_lines(
    path: &Path,
    count: u64,
    display: &str,
    integrity: Integrity,
) -> Result<Review, Error> {
    let read_error = |e: std::io::Error| Error::runtime(format!("cannot read `{}`: {e}", path.display()));
    let mut reader = BufReader::new(File::open(path).map_err(read_error)?);
    let mut builder = Builder::new(display, integrity);
    let mut buf = Vec::new();
    for _ in 0..count {
        buf.clear();
        // A last line without its newline is torn (a crash): never part of the chain.
        if reader.read_until(b'\n', &mut buf).map_err(read_error)? == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        match decode(buf.trim_ascii_end()) {
            Some(line) => builder.feed(line),
            None => builder.r.unreadable += 1,
        }
    }
    Ok(builder.finish())
}

/// A review from events already in memory (JSON objects as in the audit file), e.g. from
/// `audit::read_events`.
pub fn from_events(events: Vec<Value>, path: &str, integrity: Integrity) -> Review {
    let mut builder = Builder::new(path, integrity);
    for event in events {
        match serde_json::to_vec(&event).ok().and_then(|b| decode(&b)) {
            Some(line) => builder.feed(line),
            None => builder.r.unreadable += 1,
        }
    }
    builder.finish()
}

/// The visits that took longer than their target, worst first: each visit with its time.
fn over_target<'a>(visits: impl Iterator<Item = (&'a StepVisit, u64)>) -> Vec<OverTarget> {
    let mut over: Vec<OverTarget> = visits
        .enumerate()
        .filter_map(|(i, (v, took_ms))| {
            let target_ms = v.target_ms?;
            (took_ms > target_ms).then(|| OverTarget {
                visit: i,
                step: v.step.clone(),
                took_ms,
                target_ms,
                over_ms: took_ms - target_ms,
            })
        })
        .collect();
    over.sort_by_key(|o| (std::cmp::Reverse(o.over_ms), o.visit));
    over
}

/// The review of a run kept as its trail is written (issue 25: the end of a run said a step
/// took 22 s, its review 40.5 s). The terminal and the seal count each step's time and what
/// went over its target with this code, the code of `runbook review`.
pub struct Tally(Builder);

impl Default for Tally {
    fn default() -> Tally {
        Tally(Builder::new("", Integrity::Incomplete { torn_tail: false }))
    }
}

impl Tally {
    /// The lines of a trail so far (a resumed run's), then those written from here on.
    pub fn of_file(path: &Path) -> Tally {
        let mut tally = Tally::default();
        if let Ok(file) = File::open(path) {
            let mut reader = BufReader::new(file);
            let mut buf = Vec::new();
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) && buf.last() == Some(&b'\n') {
                tally.feed(&buf);
                buf.clear();
            }
        }
        tally
    }

    /// One line of the trail, as written.
    pub fn feed(&mut self, line: &[u8]) {
        if let Some(line) = decode(line.trim_ascii_end()) {
            self.0.feed(line);
        }
    }

    /// The time of `step`'s visit so far (to the last line), in milliseconds, when it is the
    /// visit going on.
    pub fn visit_ms(&self, step: &str) -> Option<u64> {
        let (index, _) = self.0.current.as_ref()?;
        let v = &self.0.r.steps[*index];
        (v.step == step).then(|| self.0.last_at.saturating_sub(v.start_ms))
    }

    /// Every visit over its target, worst first, the one going on counted to the last line.
    pub fn over_target(&self) -> Vec<OverTarget> {
        let open = self.0.current.as_ref().map(|(i, _)| *i);
        let last_at = self.0.last_at;
        over_target(self.0.r.steps.iter().enumerate().map(|(i, v)| {
            let took = if Some(i) == open {
                last_at.saturating_sub(v.start_ms)
            } else {
                v.took_ms
            };
            (v, took)
        }))
    }
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
    seal: Option<Line>,
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

/// Each host's time in a step whose attempts ran on several hosts (a fleet), in the order
/// the hosts first started; empty for a step on one host.
fn host_times(attempts: &[Attempt]) -> Vec<super::HostTime> {
    let mut hosts: Vec<super::HostTime> = Vec::new();
    for a in attempts {
        let Some(host) = a.host.as_ref() else { continue };
        match hosts.iter_mut().find(|h| *h.host == **host) {
            Some(h) => {
                h.exec_ms += a.exec_ms;
                h.outcome = a.outcome.clone();
                h.attempts += 1;
            }
            None => hosts.push(super::HostTime {
                host: host.to_string(),
                start_ms: a.start_ms,
                exec_ms: a.exec_ms,
                outcome: a.outcome.clone(),
                attempts: 1,
            }),
        }
    }
    if hosts.len() < 2 {
        hosts.clear();
    }
    hosts
}

/// A run is interactive when any of its walks (its start, each resume) had someone to ask,
/// unattended when every one had `--yes`, unknown when a walk predates the record of it.
fn kind(walks: &[Option<bool>]) -> &'static str {
    if walks.contains(&Some(false)) {
        "interactive"
    } else if !walks.is_empty() && walks.iter().all(|w| *w == Some(true)) {
        "unattended"
    } else {
        "unknown"
    }
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

    fn feed(&mut self, e: Line) {
        let r = &mut self.r;
        r.events += 1;
        if r.run.is_empty() {
            r.run = e.run.clone();
        }
        if !e.operator.is_empty() && !r.operators.contains(&e.operator) {
            r.operators.push(e.operator.clone());
        }
        let ts = parse_ts(&e.ts);
        if e.event == "run started" {
            self.since = e.since_offset_ms.unwrap_or(0);
        }
        let at = e.mono_ms + self.since;
        if let Some((prev_ts, prev_mono)) = self.prev
            && let (Some(prev_ts), Some(ts)) = (prev_ts, ts)
        {
            let wall = (ts - prev_ts).num_milliseconds();
            let mono = e.mono_ms as i64 - prev_mono as i64;
            if (wall - mono).abs() > CLOCK_JUMP_MS {
                self.r.clock_jumps.push(ClockJump {
                    seq: e.seq,
                    at_ms: at,
                    skew_ms: wall - mono,
                });
            }
        }
        let prev_at = self.last_at;
        self.prev = Some((ts, e.mono_ms));
        // What a resume writes about the crash (a torn line set aside, a cut-off output
        // recorded) happens at the resume: the crash gap runs from the last event before it.
        if !matches!(e.event.as_str(), "recovery" | "output recovered") {
            self.last_at = at;
        }
        if ts.is_some() {
            self.r.end = ts;
        }
        if e.hash.is_some() {
            self.r.head = e.hash.clone();
        }
        // The first word about a step after a resume (the unknown step's question, its
        // outcome as marked) opens a visit of it from the resume on.
        if let (Some(since), None, Some(step)) = (self.resumed_at, &self.current, e.step.as_deref())
            && matches!(
                e.event.as_str(),
                "answer" | "note" | "step finished" | "remote group checked"
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
        match e.event.as_str() {
            "run started" => self.run_started(&e, ts),
            "target connected" => {
                if let (Some(host), Some(key)) = (&e.host, &e.host_key) {
                    self.r.host_keys.insert(host.clone(), key.clone());
                }
            }
            "deviation" => self.r.deviations.push(DeviationRow {
                at_ms: at,
                step: e.step.clone().unwrap_or_default(),
                kind: e.kind.clone().unwrap_or_default(),
                allowed: e.allowed.unwrap_or(false),
                detail: e.detail.clone(),
                operator: e.operator.clone(),
            }),
            "approval requested" | "approval" | "approval refused" => {
                let decision = match (e.event.as_str(), e.decision.as_deref()) {
                    ("approval requested", _) => "requested",
                    ("approval", Some("deny")) => "denied",
                    ("approval", _) => "approved",
                    _ => "not counted",
                };
                self.r.approvals.push(ApprovalRow {
                    at_ms: at,
                    at: ts,
                    step: e.step.clone().unwrap_or_default(),
                    decision: decision.into(),
                    by: e.principal.clone(),
                    key: e.key.clone(),
                    reason: e.reason.clone().or_else(|| e.why.clone()),
                    quorum: e.quorum,
                    timeout_ms: e.timeout_ms,
                });
            }
            "step presented" => {
                self.close(at);
                self.open(&e, at);
            }
            "step started" => self.step_started(&e, at),
            "shell opened" => {
                let recording = e.output_file.clone().unwrap_or_default();
                let shell = super::ShellSession {
                    number: e.shell.unwrap_or(0),
                    host: e.host.clone().unwrap_or_default(),
                    from: e.from.clone().unwrap_or_default(),
                    at_ms: at,
                    ms: 0,
                    cols: e.cols.unwrap_or(0),
                    rows: e.rows.unwrap_or(0),
                    recording,
                    bytes: None,
                    sha256: None,
                };
                if let Some(v) = self.visit_of(e.step.as_deref()) {
                    v.shells.push(shell);
                }
            }
            "shell closed" => {
                let number = e.shell.unwrap_or(0);
                if let Some(v) = self.visit_of(e.step.as_deref())
                    && let Some(s) = v.shells.iter_mut().rev().find(|s| s.number == number)
                {
                    s.ms = e.duration_ms.unwrap_or(at.saturating_sub(s.at_ms));
                    if let Some(o) = &e.output {
                        s.bytes = Some(o.size);
                        s.sha256 = Some(o.sha256.clone());
                    }
                }
            }
            "step finished" => self.step_finished(&e, at),
            "note" => {
                let note = Note {
                    at_ms: at,
                    operator: e.operator.clone(),
                    text: e.text.clone().unwrap_or_default(),
                };
                match self.visit_of(e.step.as_deref()) {
                    Some(v) => v.notes.push(note),
                    None => self.r.notes.push(note),
                }
            }
            "edit" => {
                let edit = Edit {
                    at_ms: at,
                    operator: e.operator.clone(),
                    before: e.before.clone().unwrap_or_default(),
                    after: e.after.clone().unwrap_or_default(),
                };
                if let Some(v) = self.visit_of(e.step.as_deref()) {
                    v.edits.push(edit);
                }
            }
            "answer" => {
                let answer = Answer {
                    at_ms: at,
                    question: e.question.clone().unwrap_or_default(),
                    answer: e.answer.clone().unwrap_or_default(),
                };
                if let Some(v) = self.visit_of(e.step.as_deref()) {
                    v.answers.push(answer);
                }
            }
            "decision" => {
                let decision = Decision {
                    at_ms: at,
                    label: e.label.clone().unwrap_or_default(),
                    goto: e.goto.clone().unwrap_or_default(),
                    operator: e.operator.clone(),
                };
                if let Some(v) = self.visit_of(e.step.as_deref()) {
                    v.decisions.push(decision);
                }
            }
            "run resumed" => {
                self.walks.push(e.unattended);
                // From the last event before the crash to the resume, nobody was at it: the
                // step in progress ends at the crash, and the time in between is a gap.
                self.close(prev_at);
                self.resume_gaps.push(Gap {
                    kind: "crash_until_resume".into(),
                    start_ms: prev_at,
                    ms: at.saturating_sub(prev_at),
                });
                self.resumed_at = Some(at);
            }
            "run finished" => {
                self.close(at);
                self.sealed_total = e.duration_ms;
                self.seal = Some(e);
            }
            _ => {}
        }
    }

    fn run_started(&mut self, e: &Line, ts: Option<DateTime<Utc>>) {
        let r = &mut self.r;
        r.runbook = e.runbook.clone().unwrap_or_default();
        r.title = e.title.clone().unwrap_or_default();
        r.file_sha256 = e.file_sha256.clone().unwrap_or_default();
        r.mode = e.mode.clone().unwrap_or_default();
        r.targets = e.targets.clone().unwrap_or_default();
        r.inputs = match &e.inputs {
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect(),
            _ => IndexMap::new(),
        };
        self.walks.push(e.unattended);
        r.rto_ms = e.rto_ms.unwrap_or(0);
        r.launched = ts;
        r.account = e.account.as_ref().map(|a| match &a.login {
            Some(login) => format!("{login} (uid {})", a.uid),
            None => format!("uid {}", a.uid),
        });
        r.machine = e.machine.clone();
        r.signed = match (&e.signing_key, &e.unsigned) {
            (Some(key), _) => format!("signed by {key}"),
            (None, Some(why)) => format!("UNSIGNED: {why}"),
            (None, None) => "UNSIGNED (recorded before signing existed)".into(),
        };
        r.clock_start = ts.map(|t| t - chrono::Duration::milliseconds((e.mono_ms + self.since) as i64));
    }

    fn open(&mut self, e: &Line, at: u64) {
        // The first step after a resume: from the resume on (its pre-flight and prompts).
        let at = self.resumed_at.take().map_or(at, |since| since.min(at));
        let kind = text(e.kind.as_deref().unwrap_or_default());
        self.r.steps.push(StepVisit {
            step: e.step.clone().unwrap_or_default(),
            title: e.title.clone().unwrap_or_default(),
            by_hand: kind == "manual",
            kind,
            host: e.host.as_deref().map(text),
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
    fn visit_of(&mut self, step: Option<&str>) -> Option<&mut StepVisit> {
        let step = step?;
        if let Some((index, _)) = &self.current
            && self.r.steps[*index].step == step
        {
            return Some(&mut self.r.steps[*index]);
        }
        self.r.steps.iter_mut().rev().find(|v| v.step == step)
    }

    fn step_started(&mut self, e: &Line, at: u64) {
        let step = e.step.clone().unwrap_or_default();
        let is_current = matches!(&self.current, Some((i, _)) if self.r.steps[*i].step == step);
        if !is_current {
            // Started without being presented (a resumed re-run): a visit of its own.
            self.close(at);
            self.open(e, at);
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
        let command = e.command.as_deref().unwrap_or_default();
        if command.starts_with("(by hand)") || command.starts_with("(manual)") {
            v.by_hand = true;
        }
        if v.target_ms.is_none() {
            v.target_ms = e.target_ms;
        }
        v.attempts.push(Attempt {
            attempt: e.attempt.unwrap_or(1),
            host: e.host.as_deref().map(text),
            start_ms: at,
            exec_ms: 0,
            outcome: text("unfinished"),
            exit: None,
            reason: None,
        });
    }

    fn step_finished(&mut self, e: &Line, at: u64) {
        let step = e.step.as_deref().unwrap_or_default();
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
        let host = e.host.as_deref().map(text);
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
            a.reason = e.reason.clone();
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

    fn finish(mut self) -> Review {
        self.close(self.last_at);
        let seal = self.seal.take();
        let mut r = self.r;
        r.kind = kind(&self.walks).into();
        r.total_ms = self.sealed_total.unwrap_or(self.last_at);
        if let Some(seal) = &seal {
            if seal.signature.is_none() && r.signed.starts_with("signed") {
                r.signed = format!("{}; but the seal is UNSIGNED", r.signed);
            }
            r.outcome = seal.outcome.clone();
            r.message = seal.message.clone();
            if let Some(rto) = seal.rto_ms {
                r.rto_ms = rto;
            }
        }
        for v in &mut r.steps {
            v.hosts = host_times(&v.attempts);
        }
        // Where the time went.
        let mut covered = 0u64;
        for v in &r.steps {
            covered += v.took_ms;
            if v.by_hand {
                r.time.human_ms += v.wait_ms + v.exec_ms;
            } else {
                r.time.human_ms += v.wait_ms;
                r.time.machine_ms += v.exec_ms;
            }
            r.time.between_ms += v.after_ms;
            // A shell after the step started (after a failure) is in its `after`: it is the
            // operator's time. One before is in its wait already.
            let started = v.start_ms + v.wait_ms;
            let shell_after: u64 = v.shells.iter().filter(|s| s.at_ms >= started).map(|s| s.ms).sum();
            let moved = shell_after.min(v.after_ms);
            r.time.human_ms += moved;
            r.time.between_ms -= moved;
        }
        r.time.gaps_ms = r.total_ms.saturating_sub(covered);
        let first = r.steps.first().map_or(r.total_ms, |v| v.start_ms);
        if first > 0 {
            r.gaps.push(Gap {
                kind: "before_first_step".into(),
                start_ms: 0,
                ms: first,
            });
        }
        r.gaps.append(&mut self.resume_gaps);
        let listed: u64 = r.gaps.iter().map(|g| g.ms).sum();
        let rest = r.time.gaps_ms.saturating_sub(listed);
        if rest > 0 {
            let end_of_steps = r.steps.last().map_or(0, |v| v.start_ms + v.took_ms);
            r.gaps.push(Gap {
                kind: "after_last_step".into(),
                start_ms: end_of_steps,
                ms: rest,
            });
        }
        r.over_target = over_target(r.steps.iter().map(|v| (v, v.took_ms)));
        let within = r.total_ms <= r.rto_ms;
        (r.verdict, r.verdict_reason) = match (&r.integrity, &seal) {
            (Integrity::Tampered { .. }, _) => ("TAMPERED".into(), None),
            (_, None) => (
                "INCOMPLETE".into(),
                Some(format!(
                    "no seal: the run stopped {} into the RTO clock",
                    super::fmt_total(r.total_ms)
                )),
            ),
            (_, Some(seal)) => match &seal.verdict {
                Some(v) => (
                    if v.pass { "PASS" } else { "FAIL" }.into(),
                    Some(v.reason.clone()),
                ),
                None if r.outcome.as_deref() != Some("resolved") => (
                    "NOT RESOLVED".into(),
                    Some(format!("ended {}", r.outcome.as_deref().unwrap_or("?"))),
                ),
                None if within => ("WITHIN RTO".into(), None),
                None => (
                    "OVER RTO".into(),
                    Some(format!(
                        "{} over the {} RTO",
                        super::fmt_total(r.total_ms - r.rto_ms),
                        super::fmt_rto(r.rto_ms)
                    )),
                ),
            },
        };
        r
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(seq: u64, ts: &str, mono: u64, event: &str, extra: Value) -> Value {
        let mut v = json!({"v": 1, "seq": seq, "ts": ts, "mono_ms": mono, "run": "r", "event": event, "operator": "alice"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    }

    /// The wall clock stepped 1 h forward between two events 2 s apart: a clock jump, and the
    /// durations still come from `mono_ms`.
    #[test]
    fn a_wall_clock_jump_is_reported_and_does_not_change_durations() {
        let events = vec![
            event(
                0,
                "2026-11-22T03:00:00.000Z",
                0,
                "run started",
                json!({"runbook": "x", "mode": "drill", "rto_ms": 60000, "since_offset_ms": 1000}),
            ),
            event(
                1,
                "2026-11-22T03:00:00.000Z",
                0,
                "step presented",
                json!({"step": "a", "target_ms": 1000}),
            ),
            event(
                2,
                "2026-11-22T03:00:01.000Z",
                1000,
                "step started",
                json!({"step": "a", "attempt": 1}),
            ),
            event(
                3,
                "2026-11-22T04:00:03.000Z",
                3000,
                "step finished",
                json!({"step": "a", "attempt": 1, "outcome": "ok", "duration_ms": 2000}),
            ),
        ];
        let r = from_events(events, "x.jsonl", Integrity::Incomplete { torn_tail: false });
        assert_eq!(r.clock_jumps.len(), 1);
        assert_eq!(r.clock_jumps[0].seq, 3);
        assert_eq!(r.clock_jumps[0].skew_ms, 3_600_000);
        let a = &r.steps[0];
        // On the RTO clock (started 1 s before launch by --since).
        assert_eq!(
            (a.start_ms, a.wait_ms, a.exec_ms, a.took_ms),
            (1000, 1000, 2000, 3000)
        );
        assert_eq!(a.over_ms, Some(2000));
        assert_eq!(r.total_ms, 4000);
        assert_eq!(r.time.gaps_ms, 1000, "the --since second before launch");
        assert_eq!(r.verdict, "INCOMPLETE");
        assert_eq!(r.clock_start.unwrap().to_rfc3339(), "2026-11-22T02:59:59+00:00");
    }

    /// Two hosts running the same attempt at once: exec is the time anything ran, not the sum,
    /// and one failing host makes the step fail.
    #[test]
    fn parallel_hosts_count_once_and_the_worst_outcome_wins() {
        let events = vec![
            event(
                0,
                "2026-11-22T03:00:00.000Z",
                0,
                "step presented",
                json!({"step": "a"}),
            ),
            event(
                1,
                "2026-11-22T03:00:00.000Z",
                0,
                "step started",
                json!({"step": "a", "host": "web1", "attempt": 1}),
            ),
            event(
                2,
                "2026-11-22T03:00:00.000Z",
                0,
                "step started",
                json!({"step": "a", "host": "web2", "attempt": 1}),
            ),
            event(
                3,
                "2026-11-22T03:00:01.000Z",
                1000,
                "step finished",
                json!({"step": "a", "host": "web2", "attempt": 1, "outcome": "failed", "exit": 2}),
            ),
            event(
                4,
                "2026-11-22T03:00:02.000Z",
                2000,
                "step finished",
                json!({"step": "a", "host": "web1", "attempt": 1, "outcome": "ok", "exit": 0}),
            ),
        ];
        let r = from_events(events, "x.jsonl", Integrity::Incomplete { torn_tail: false });
        let a = &r.steps[0];
        assert_eq!(a.exec_ms, 2000);
        assert_eq!((a.outcome.as_deref(), a.exit), (Some("failed"), Some(2)));
    }

    /// A `call` step's visit ends when its runbook's first step is presented; its attempt,
    /// finished 41 s later, is drawn and counted within the visit, as the table shows it.
    #[test]
    fn a_call_keeps_its_attempt_within_its_visit() {
        let t = "2026-11-22T03:00:00.000Z";
        let events = vec![
            event(
                0,
                t,
                0,
                "step presented",
                json!({"step": "call-it", "kind": "call"}),
            ),
            event(1, t, 1, "step started", json!({"step": "call-it", "attempt": 1})),
            event(2, t, 2, "step presented", json!({"step": "inner", "kind": "run"})),
            event(
                3,
                t,
                41_000,
                "step presented",
                json!({"step": "back", "kind": "run"}),
            ),
            event(
                4,
                t,
                41_001,
                "step finished",
                json!({"step": "call-it", "attempt": 1, "outcome": "ok", "exit": 0, "duration_ms": 41_000}),
            ),
        ];
        let r = from_events(events, "x.jsonl", Integrity::Incomplete { torn_tail: false });
        let call = &r.steps[0];
        assert_eq!(call.took_ms, 2);
        assert_eq!(call.outcome.as_deref(), Some("ok"));
        let attempt = &call.attempts[0];
        assert!(
            attempt.start_ms + attempt.exec_ms <= call.start_ms + call.took_ms,
            "{attempt:?} past the visit's end ({} ms)",
            call.took_ms
        );
    }

    /// A run's kind comes from `unattended` of its start and every resume: a resume by a
    /// person makes an unattended start interactive; a trail without the field is unknown.
    #[test]
    fn the_kind_of_a_run_counts_every_walk_of_it() {
        let start = |unattended: Option<bool>| {
            let mut extra = json!({"runbook": "x", "mode": "drill", "rto_ms": 60000});
            if let Some(u) = unattended {
                extra["unattended"] = u.into();
            }
            event(0, "2026-11-22T03:00:00.000Z", 0, "run started", extra)
        };
        let resumed = |unattended: bool| {
            event(
                1,
                "2026-11-22T03:10:00.000Z",
                0,
                "run resumed",
                json!({"unattended": unattended}),
            )
        };
        let kind = |events: Vec<Value>| {
            from_events(events, "x.jsonl", Integrity::Incomplete { torn_tail: false }).kind
        };
        assert_eq!(kind(vec![start(Some(true))]), "unattended");
        assert_eq!(kind(vec![start(Some(false))]), "interactive");
        assert_eq!(kind(vec![start(Some(true)), resumed(true)]), "unattended");
        assert_eq!(kind(vec![start(Some(true)), resumed(false)]), "interactive");
        assert_eq!(kind(vec![start(None)]), "unknown");
        assert_eq!(kind(vec![start(None), resumed(true)]), "unknown");
    }
}
