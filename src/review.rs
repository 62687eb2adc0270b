//! `runbook review` and `runbook history` (design §7): what a run's audit file says about where
//! the time went. One `Review` is built per audit file, from its events alone (nothing is
//! re-run or re-read from the runbook), then rendered as text, Markdown, JSON or HTML. Several
//! reviews make a comparison; many make the history.
//!
//! Time is on the RTO clock: every offset is milliseconds since the clock started (the
//! detection time with `--since`, else the launch), taken from `mono_ms`, never from `ts`.

mod build;
pub(crate) mod compare;
pub(crate) mod evidence;
pub(crate) mod history;
pub(crate) mod html;
pub(crate) mod json;
pub(crate) mod markdown;
pub(crate) mod model;
mod svg;
pub(crate) mod text;

use std::borrow::Cow;
use std::path::Path;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::Serialize;

use crate::audit::{self, Status};
use crate::error::Error;

#[cfg(test)]
pub(crate) use build::from_events;
pub(crate) use build::{Tally, from_lines};
pub(crate) use compare::Comparison;

/// The version of the JSON document `--format json` prints (`docs/review.md`).
pub(crate) const SCHEMA: &str = "runbook-review/1";

/// Wall clock and monotonic deltas may disagree by this much before it is called a clock jump.
pub(crate) const CLOCK_JUMP_MS: i64 = 5_000;

/// What the hash chain says about the file the review was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(crate) enum Integrity {
    /// Every line chains and the run finished: the review is complete.
    IntactSealed,
    /// Every line chains but there is no seal: the run crashed or is still going.
    Incomplete { torn_tail: bool },
    /// The chain breaks at `seq` (1-based `line`); the review covers the lines before it only.
    Tampered { seq: u64, line: usize, reason: String },
}

/// One run, as its audit file tells it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Review {
    pub run: String,
    pub path: String,
    pub integrity: Integrity,
    /// Events the review is built from (the verified ones).
    pub events: u64,
    pub runbook: String,
    pub title: String,
    pub file_sha256: String,
    /// `drill` or `incident`.
    pub mode: String,
    /// `interactive` (someone answered at a terminal, at the start or at a resume),
    /// `unattended` (every walk of the run had `--yes`: nobody was asked), or `unknown` (the
    /// trail predates the `unattended` field of `run started`).
    pub kind: String,
    /// The runbook's inputs as `run started` recorded them (secrets masked: `***`).
    pub inputs: IndexMap<String, String>,
    /// Everyone who was at the keyboard, in order (more than one after a hand-off).
    pub operators: Vec<String>,
    /// role → host.
    pub targets: IndexMap<String, String>,
    /// When the RTO clock started (the detection time with `--since`).
    pub clock_start: Option<DateTime<Utc>>,
    /// When the tool was launched (the `run started` event).
    pub launched: Option<DateTime<Utc>>,
    /// The last event's time (`run finished` when sealed).
    pub end: Option<DateTime<Utc>>,
    /// `resolved`, `escalated`, `failed`, `aborted`, ...; `None` when the run has no seal.
    pub outcome: Option<String>,
    pub message: Option<String>,
    /// RTO clock at the end (at the last event when incomplete).
    pub total_ms: u64,
    pub rto_ms: u64,
    /// `PASS`, `FAIL` (drills), `WITHIN RTO`, `OVER RTO` (incidents), `INCOMPLETE`, `TAMPERED`.
    pub verdict: String,
    pub verdict_reason: Option<String>,
    pub steps: Vec<StepVisit>,
    pub time: TimeSplit,
    pub gaps: Vec<Gap>,
    pub clock_jumps: Vec<ClockJump>,
    /// The visits that took longer than their target, worst first.
    pub over_target: Vec<OverTarget>,
    /// Notes not tied to a step.
    pub notes: Vec<Note>,
    /// Every step that did not go as written, in order (design §12).
    pub deviations: Vec<DeviationRow>,
    /// The two-person rule at work (design §15): each request, approval, denial and signature
    /// that did not count, in order.
    pub approvals: Vec<ApprovalRow>,
    /// The head of the trail: the seal's hash when sealed, else the last event's.
    pub head: Option<String>,
    /// How the trail is signed, in words: `signed by SHA256:…`, `UNSIGNED: …`.
    pub signed: String,
    /// The OS account and machine of the run's start (`run started`).
    pub account: Option<String>,
    pub machine: Option<String>,
    /// host → accepted host key (`ssh-ed25519 SHA256:…`).
    pub host_keys: IndexMap<String, String>,
    /// Each hand-off (design §19), in order: who stopped the run where, when, and their note.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hand_offs: Vec<HandOffRow>,
    /// Each guard's changes and a resolved alert (design §20), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<model::GuardRow>,
    /// Lines that did not read as events (only in a file that fails its chain).
    #[serde(skip)]
    pub(crate) unreadable: u64,
}

/// The run handed off at a step's prompt, for a colleague to resume (`handed off`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HandOffRow {
    pub at_ms: u64,
    /// The wall-clock time it was recorded.
    pub at: Option<DateTime<Utc>>,
    pub step: Option<String>,
    /// Who handed it off.
    pub operator: String,
    pub note: Option<String>,
}

/// A string that repeats on every step (kinds, outcomes, `local`): the known values are
/// shared, not allocated once per step, which keeps a 100,000-step review small.
pub(crate) type Text = Cow<'static, str>;

/// The shared copy of `value` when it is a common one.
pub(crate) fn text(value: &str) -> Text {
    const COMMON: [&str; 15] = [
        "run",
        "manual",
        "choose",
        "call",
        "end",
        "ok",
        "failed",
        "timeout",
        "cancelled",
        "lost",
        "skipped",
        "marked done",
        "unfinished",
        "local",
        "?",
    ];
    match COMMON.iter().find(|c| **c == value) {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(value.to_string()),
    }
}

/// One visit of a step: from being presented to the next step being presented. A step the
/// run came back to (a retry chosen after a failure, a loop) has several visits.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StepVisit {
    pub step: String,
    pub title: String,
    /// `run`, `manual`, `choose`, `call`, `end`, ...
    pub kind: Text,
    pub host: Option<Text>,
    pub position: Option<u64>,
    /// RTO-clock offset of `step presented`.
    pub start_ms: u64,
    /// Presented → first started: the human's share (all of the visit when nothing started).
    pub wait_ms: u64,
    /// Started → finished, attempts (and hosts running at once) counted once: the machine's share.
    pub exec_ms: u64,
    /// The rest of the visit: retry delays, deciding after a failure, moving on.
    pub after_ms: u64,
    /// wait + exec + after: what is held against the target.
    pub took_ms: u64,
    pub target_ms: Option<u64>,
    /// took − target (negative: under).
    pub over_ms: Option<i64>,
    /// The last attempt's outcome (the worst host's, on several hosts); `unfinished` when it
    /// started and the file ends (or the run was resumed) before it finished.
    pub outcome: Option<Text>,
    pub exit: Option<i64>,
    pub attempts: Vec<Attempt>,
    /// Manual steps and commands run by hand: their exec is an operator's work.
    pub by_hand: bool,
    pub notes: Vec<Note>,
    pub decisions: Vec<Decision>,
    pub edits: Vec<Edit>,
    pub answers: Vec<Answer>,
    /// A fleet step (attempts on several hosts): each host's time, in the fleet's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostTime>,
    /// Shells the operator opened at this step's prompts (design §17): human time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shells: Vec<ShellSession>,
}

/// A shell session opened at a step's prompt, and its recording.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ShellSession {
    /// Its number in the run: `runbook replay RUN <number>`.
    pub number: u64,
    pub host: String,
    /// `before running` or `after failure`.
    pub from: String,
    /// When it opened, on the RTO clock, and how long it lasted (0 when never closed).
    pub at_ms: u64,
    pub ms: u64,
    /// The window size it opened with.
    pub cols: u64,
    pub rows: u64,
    /// The recording, relative to the audit dir, and its size and SHA-256 (`None`: the run
    /// stopped before the shell was closed).
    pub recording: String,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
}

/// One host of a fleet step (design §13).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HostTime {
    pub host: String,
    /// Its first start, on the RTO clock.
    pub start_ms: u64,
    /// Its attempts' execution, summed.
    pub exec_ms: u64,
    /// Its last attempt's outcome.
    pub outcome: Text,
    pub attempts: usize,
}

impl StepVisit {
    /// A fleet step's slowest and fastest host and the spread between them.
    pub(crate) fn spread(&self) -> Option<(&HostTime, &HostTime, u64)> {
        let slowest = self.hosts.iter().max_by_key(|h| h.exec_ms)?;
        let fastest = self.hosts.iter().min_by_key(|h| h.exec_ms)?;
        Some((slowest, fastest, slowest.exec_ms - fastest.exec_ms))
    }
}

/// A step that did not go as written.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeviationRow {
    pub at_ms: u64,
    pub step: String,
    /// `skipped`, `marked done after a failure`, `failed and passed over`, `cleanup failed`,
    /// `run by hand`, `edited`.
    pub kind: String,
    /// Whether a drill may still PASS with it.
    pub allowed: bool,
    pub detail: Option<String>,
    /// Who was at the keyboard (the recap of a hand-off names them).
    #[serde(skip)]
    pub operator: String,
}

/// One word of the two-person rule about a step: who, when, and why.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ApprovalRow {
    pub at_ms: u64,
    /// The wall-clock time it was recorded.
    pub at: Option<DateTime<Utc>>,
    pub step: String,
    /// `requested`, `approved`, `denied` or `not counted`.
    pub decision: String,
    /// The approver's name in the approvers file (`approved`, `denied`).
    pub by: Option<String>,
    /// The approver's key fingerprint.
    pub key: Option<String>,
    /// A denial's reason, or why a signature did not count.
    pub reason: Option<String>,
    /// A request's quorum and how long it waits.
    pub quorum: Option<u64>,
    pub timeout_ms: Option<u64>,
}

impl ApprovalRow {
    /// `approved by bob (SHA256:…)`, `DENIED by bob: deploy freeze`, `approval requested
    /// (1 approval, waits 15m)`: one line for every format.
    pub(crate) fn words(&self) -> String {
        let by = self.by.as_deref().unwrap_or("?");
        let key = self.key.as_deref().map(|k| format!(" ({k})")).unwrap_or_default();
        let reason = self.reason.as_deref().unwrap_or("");
        match self.decision.as_str() {
            "requested" => {
                let quorum = self.quorum.unwrap_or(1);
                let people = if quorum == 1 {
                    "1 approval".to_string()
                } else {
                    format!("{quorum} approvals")
                };
                let waits = self
                    .timeout_ms
                    .map(|t| {
                        format!(
                            ", waits {}",
                            crate::duration::format(std::time::Duration::from_millis(t))
                        )
                    })
                    .unwrap_or_default();
                format!("approval requested ({people}{waits})")
            }
            "approved" => format!("approved by {by}{key}"),
            "denied" => format!("DENIED by {by}{key}: {reason}"),
            _ => format!("signature not counted: {reason}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Attempt {
    pub attempt: u64,
    pub host: Option<Text>,
    pub start_ms: u64,
    pub exec_ms: u64,
    pub outcome: Text,
    pub exit: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Note {
    pub at_ms: u64,
    pub operator: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Decision {
    pub at_ms: u64,
    pub label: String,
    pub goto: String,
    /// Who decided (the recap of a hand-off names them).
    #[serde(skip)]
    pub operator: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Edit {
    pub at_ms: u64,
    pub operator: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Answer {
    pub at_ms: u64,
    pub question: String,
    pub answer: String,
}

/// Where the run's time went; the four parts add up to `total_ms`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct TimeSplit {
    /// Waiting for a person: Σ wait, plus the exec of manual and by-hand steps, plus the
    /// shells opened after a step started (those before it are in its wait already).
    pub human_ms: u64,
    /// Commands running: Σ exec of the other steps.
    pub machine_ms: u64,
    /// Σ after: retry delays, decisions after failures, the tool moving on.
    pub between_ms: u64,
    /// Time no step covers: before the first step, a crash until the resume, after the last.
    pub gaps_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Gap {
    /// `before_first_step`, `crash_until_resume`, `hand_off_until_resume`, `after_last_step`.
    pub kind: String,
    pub start_ms: u64,
    pub ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct OverTarget {
    /// Index into `steps`.
    pub visit: usize,
    pub step: String,
    pub took_ms: u64,
    pub target_ms: u64,
    pub over_ms: u64,
}

/// Consecutive events whose `ts` and `mono_ms` deltas disagree by more than 5 s: the wall
/// clock was changed (NTP step, suspend) or the machine changed at a resume.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClockJump {
    /// The seq of the later event.
    pub seq: u64,
    pub at_ms: u64,
    /// Wall-clock delta minus monotonic delta.
    pub skew_ms: i64,
}

impl Review {
    /// The wall-clock time of an RTO-clock offset.
    pub(crate) fn at(&self, offset_ms: u64) -> Option<DateTime<Utc>> {
        self.clock_start
            .map(|start| start + chrono::Duration::milliseconds(offset_ms as i64))
    }

    /// The builder saw lines it could not read: only a tampered file has those.
    fn tampered_lines(&self) -> bool {
        self.unreadable > 0
    }

    /// Sets what the chain says, and the verdict that follows from it.
    fn set_integrity(&mut self, integrity: Integrity) {
        if let Integrity::Tampered { .. } = integrity {
            self.verdict = "TAMPERED".into();
            self.verdict_reason = None;
        } else if self.outcome.is_none() {
            self.verdict = "INCOMPLETE".into();
        }
        self.integrity = integrity;
    }

    pub(crate) fn sealed(&self) -> bool {
        self.integrity == Integrity::IntactSealed
    }

    pub(crate) fn tampered(&self) -> bool {
        matches!(self.integrity, Integrity::Tampered { .. })
    }

    /// The first lines of every format for a file that is not intact and sealed.
    pub(crate) fn integrity_warning(&self) -> Option<String> {
        match &self.integrity {
            Integrity::IntactSealed => None,
            Integrity::Tampered { seq, line, reason } => Some(format!(
                "TAMPERED: {} fails its hash chain at seq {seq} (line {line}): {reason}. \
                 This review covers only the {} events before it; nothing after can be trusted.",
                self.path, self.events
            )),
            Integrity::Incomplete { torn_tail } => Some(format!(
                "INCOMPLETE: {} has no seal (the run crashed or is still going); \
                 this review covers its {} events{}.",
                self.path,
                self.events,
                if *torn_tail {
                    " and leaves out a torn last line"
                } else {
                    ""
                }
            )),
        }
    }
}

/// Verifies the audit file at `path` and builds its review from the events that verify: all of
/// them for an intact or incomplete file, the prefix before the break for a tampered one.
///
/// The chain is checked on one thread while the review is built on another, from the same
/// bytes; when the two disagree on the lines to trust (a tampered file, a run still writing),
/// the review is built again from exactly the verified lines.
pub(crate) fn load(path: &Path) -> Result<Review, Error> {
    let display = path.display().to_string();
    let (verification, built) = std::thread::scope(|scope| {
        let verifying = scope.spawn(|| audit::verify_chain(path));
        let built = build::read_lines(path, u64::MAX, &display, Integrity::IntactSealed);
        let verification = verifying
            .join()
            .unwrap_or_else(|_| Err(Error::runtime(format!("verifying `{display}` failed"))));
        (verification, built)
    });
    let verification = verification?;
    let integrity = match &verification.status {
        Status::IntactSealed => Integrity::IntactSealed,
        Status::Incomplete => Integrity::Incomplete {
            torn_tail: verification.torn_tail.is_some(),
        },
        Status::Tampered { seq, line, reason } => Integrity::Tampered {
            seq: *seq,
            line: *line,
            reason: reason.clone(),
        },
    };
    let mut review = match built {
        Ok(review) if review.events == verification.events && !review.tampered_lines() => review,
        _ => build::read_lines(path, verification.events, &display, integrity.clone())?,
    };
    review.set_integrity(integrity);
    // The seal's signature (the last one) is checked here; every one, and against an
    // allowed_signers file, by `runbook audit verify`.
    if let Some(last) = verification.signatures.last() {
        use crate::audit::sign::{Against, check};
        if let Err(why) = check(&last.signature, last.hash.as_bytes(), Against::ItsOwnKey) {
            review.signed = format!("BAD SIGNATURE on seq {}: {why}", last.seq);
        }
    }
    Ok(review)
}

/// `1h2m3s`, `2m05s`, `4.2s`, `350ms`: short and precise enough for a postmortem.
/// The "over target" table's rows (step, took, target, over, wait, exec), worst first, shared
/// by the Markdown and HTML renderers; `step` formats the step's name for the format.
pub(crate) fn over_target_rows(r: &Review, step: impl Fn(&str) -> String) -> Vec<Vec<String>> {
    r.over_target
        .iter()
        .map(|o| {
            let v = &r.steps[o.visit];
            vec![
                format!("{}. {}", o.visit + 1, step(&o.step)),
                fmt_ms(o.took_ms),
                fmt_ms(o.target_ms),
                fmt_signed(o.over_ms as i64),
                fmt_ms(v.wait_ms),
                fmt_ms(v.exec_ms),
            ]
        })
        .collect()
}

pub fn fmt_ms(ms: u64) -> String {
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    let secs = (ms + 500) / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, s) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{m}m{s:02}s"),
        (_, _) => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// A run's total (or part of one against the RTO) worded as its verdict words it (`resolved
/// in 1m12s`): the same number must read the same on both lines of a review.
pub(crate) fn fmt_total(ms: u64) -> String {
    crate::duration::format_elapsed(std::time::Duration::from_millis(ms))
}

/// An RTO as the runbook writes it and the verdict says it: `5m`, `1h`, `1m30s`.
pub(crate) fn fmt_rto(ms: u64) -> String {
    crate::duration::format(std::time::Duration::from_millis(ms))
}

/// `03:02:13`: the wall-clock time (UTC, as every time of a review) of an RTO-clock offset;
/// `?` when the run has no clock start.
pub(crate) fn fmt_clock(r: &Review, offset_ms: u64) -> String {
    r.at(offset_ms)
        .map_or_else(|| "?".to_string(), |t| t.format("%H:%M:%S").to_string())
}

/// `42% of 1m` style share of the total.
pub(crate) fn share(part: u64, total: u64) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / total as f64)
    }
}

/// `+1.2s` / `-30.0s`: over (+) or under (−) a target.
pub(crate) fn fmt_signed(ms: i64) -> String {
    if ms >= 0 {
        format!("+{}", fmt_ms(ms as u64))
    } else {
        format!("-{}", fmt_ms(ms.unsigned_abs()))
    }
}

/// `2026-11-22 03:02:11Z`: wall-clock times in reports, to the second.
pub(crate) fn fmt_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "?".to_string(), |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_ms(350), "350ms");
        assert_eq!(fmt_ms(4_210), "4.2s");
        assert_eq!(fmt_ms(125_400), "2m05s");
        assert_eq!(fmt_ms(3_723_000), "1h02m03s");
        assert_eq!(fmt_ms(60_000), "1m");
        assert_eq!(fmt_signed(-30_000), "-30.0s");
    }
}
