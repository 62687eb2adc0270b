//! Notifications (design §15): a listener of the Sink, beside the audit trail and the screen.
//! It turns events into notices (`runbook.run.started`, `runbook.step.failed`, ...), renders
//! them for each channel (CloudEvents, Slack, PagerDuty) and hands them to that channel's
//! sender thread (`queue.rs`) without ever waiting on the network. A timer thread
//! (`deadline.rs`) sends the RTO warning, the breach and the escalation when the RTO clock
//! passes them, whatever the run is doing (a long command, a prompt).
//!
//! Every delivery ends as a record: the Sink chains those that are done before the seal
//! (`notification` events); the last ones go to `<run-id>/notifications.jsonl`.

pub(crate) mod cloudevents;
mod config;
mod deadline;
pub(crate) mod pagerduty;
mod queue;
pub(crate) mod slack;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::book::runbook::Outcome;
use crate::events::{Event, RunOutcome, StepOutcome};

pub(crate) use config::{Channel, Format, NotifyEntry, Setup, shown_url};

/// What a notice is about: its CloudEvents `type` is `runbook.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    RunStarted,
    StepFailed,
    RtoWarning,
    RtoBreached,
    ApprovalNeeded,
    EscalationDue,
    RunFinished,
    /// An unattended run refused by the policy (design §20): it never started.
    RunRefused,
}

impl Kind {
    pub(crate) const ALL: [Kind; 8] = [
        Kind::RunStarted,
        Kind::StepFailed,
        Kind::RtoWarning,
        Kind::RtoBreached,
        Kind::ApprovalNeeded,
        Kind::EscalationDue,
        Kind::RunFinished,
        Kind::RunRefused,
    ];

    /// The CloudEvents `type`.
    pub(crate) fn ce_type(self) -> &'static str {
        match self {
            Kind::RunStarted => "runbook.run.started",
            Kind::StepFailed => "runbook.step.failed",
            Kind::RtoWarning => "runbook.rto.warning",
            Kind::RtoBreached => "runbook.rto.breached",
            Kind::ApprovalNeeded => "runbook.approval.needed",
            Kind::EscalationDue => "runbook.escalation.due",
            Kind::RunFinished => "runbook.run.finished",
            Kind::RunRefused => "runbook.run.refused",
        }
    }

    /// The short name of the inventory's `events:` (`rto.breached`).
    pub(crate) fn name(self) -> &'static str {
        &self.ce_type()["runbook.".len()..]
    }

    /// `rto.breached` or `runbook.rto.breached`.
    pub(crate) fn parse(text: &str) -> Option<Kind> {
        let short = text.strip_prefix("runbook.").unwrap_or(text);
        Kind::ALL.into_iter().find(|k| k.name() == short)
    }

    pub(crate) fn parse_ce_type(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.ce_type() == text)
    }
}

/// The run a notice is about: the same for every notice of a run.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    pub run_id: String,
    pub runbook: String,
    pub title: String,
    pub mode: &'static str,
    pub operator: String,
    pub machine: String,
}

/// One thing to tell the channels.
#[derive(Debug, Clone)]
pub(crate) struct Notice {
    pub kind: Kind,
    /// Unique within the run: the CloudEvents `id` is `<run-id>.<n>`.
    pub n: u64,
    pub time: chrono::DateTime<chrono::Utc>,
    pub run: Arc<RunInfo>,
    /// The step it is about, if any (the CloudEvents `subject`).
    pub step: Option<String>,
    /// One line for people (Slack's text, PagerDuty's summary).
    pub summary: String,
    /// What happened, as data (the CloudEvents `data`, PagerDuty's `custom_details`).
    pub data: Map<String, Value>,
    /// PagerDuty: `trigger` or `resolve`; `None`: not sent to PagerDuty.
    pub page: Option<Page>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Page {
    Trigger,
    Resolve,
}

impl Notice {
    pub(crate) fn id(&self) -> String {
        format!("{}.{}", self.run.run_id, self.n)
    }
}

/// What the trail gets: one event per delivery (`Record::Notification`) or escalation
/// (`Record::EscalationDue`), recorded when it is over.
pub(crate) use crate::audit::record::Record;

/// The RTO clock of the run as this process sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunClock {
    /// When this process launched the run.
    pub launched: Instant,
    /// RTO already spent at `launched` (`--since`, or a resumed run's time so far).
    pub since_offset: Duration,
    pub rto: Duration,
}

impl RunClock {
    pub(crate) fn elapsed(&self) -> Duration {
        self.launched.elapsed() + self.since_offset
    }

    /// The instant the RTO clock reads `at` (now, when that is past).
    pub(crate) fn instant_of(&self, at: Duration) -> Instant {
        match at.checked_sub(self.since_offset) {
            Some(after_launch) => self.launched + after_launch,
            None => Instant::now(),
        }
    }
}

/// State shared by the listener and the timer thread: numbering notices and handing them to
/// the channels.
pub(crate) struct Dispatch {
    run: Arc<RunInfo>,
    clock: RunClock,
    next: std::sync::atomic::AtomicU64,
    queue: queue::Queue,
    records: Sender<Record>,
    /// Says a loud line to the operator now, from the timer's thread (the terminal's).
    banner: Banner,
}

/// A loud line on the operator's screen, from any thread: given by whoever draws the screen,
/// so that notifications need not know the terminal.
pub(crate) type Banner = Arc<dyn Fn(&str) + Send + Sync>;

impl Dispatch {
    pub(crate) fn notice(
        &self,
        kind: Kind,
        step: Option<String>,
        summary: String,
        mut data: Map<String, Value>,
        page: Option<Page>,
    ) -> Notice {
        let mut common = Map::new();
        common.insert("run".into(), json!(self.run.run_id));
        common.insert("runbook".into(), json!(self.run.runbook));
        common.insert("title".into(), json!(self.run.title));
        common.insert("mode".into(), json!(self.run.mode));
        common.insert("operator".into(), json!(self.run.operator));
        common.insert("machine".into(), json!(self.run.machine));
        common.insert("rto_ms".into(), json!(self.clock.rto.as_millis() as u64));
        common.insert(
            "elapsed_ms".into(),
            json!(self.clock.elapsed().as_millis() as u64),
        );
        common.append(&mut data);
        Notice {
            kind,
            n: self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
            time: chrono::Utc::now(),
            run: self.run.clone(),
            step,
            summary,
            data: common,
            page,
        }
    }

    pub(crate) fn send(&self, notice: Notice) {
        self.queue.enqueue(&notice, &self.records);
    }

    /// The run as a summary names it: `Title (runbook-id)`.
    fn run_named(&self) -> String {
        format!("{} ({})", self.run.title, self.run.runbook)
    }

    /// A step failed for good (failed, timed out or lost), on one host or a fleet: a page.
    /// `what` is the summary after "step `id` OUTCOME "; `data` adds the host's (or the
    /// fleet's) fields to the step's.
    fn step_failed(
        &self,
        step: &str,
        outcome: StepOutcome,
        attempt: u32,
        duration: Duration,
        what: String,
        mut data: Map<String, Value>,
    ) {
        let summary = format!("step `{step}` {} {what}", outcome.as_str());
        let mut all = Map::from_iter([
            ("step".to_string(), json!(step)),
            ("outcome".to_string(), json!(outcome.as_str())),
            ("attempt".to_string(), json!(attempt)),
            ("duration_ms".to_string(), ms(duration)),
        ]);
        all.append(&mut data);
        self.send(self.notice(
            Kind::StepFailed,
            Some(step.to_string()),
            summary,
            all,
            Some(Page::Trigger),
        ));
    }
}

/// The listener: events in, notices out, records back.
pub(crate) struct Notifier {
    dispatch: Arc<Dispatch>,
    records: Receiver<Record>,
    /// Attempts each step gets, from its presentation: a failed attempt that will be retried
    /// is no failure of the step yet.
    attempts: HashMap<String, u32>,
    timer: Option<deadline::Timer>,
    timeout: Duration,
    finished: bool,
}

fn ms(d: Duration) -> Value {
    json!(d.as_millis() as u64)
}

impl Notifier {
    /// Starts the senders and the timer of the RTO deadlines. `already`: notices a resumed
    /// run's trail shows were sent (not sent twice).
    pub(crate) fn start(setup: Setup, run: RunInfo, clock: RunClock, banner: Banner) -> Notifier {
        let (records_tx, records) = std::sync::mpsc::channel();
        let dispatch = Arc::new(Dispatch {
            run: Arc::new(run),
            clock,
            next: std::sync::atomic::AtomicU64::new(setup.sent_before),
            queue: queue::Queue::start(setup.channels),
            records: records_tx,
            banner,
        });
        let timer = deadline::Timer::start(dispatch.clone(), setup.escalate.clone(), &setup.already);
        Notifier {
            dispatch,
            records,
            attempts: HashMap::new(),
            timer: Some(timer),
            timeout: setup.timeout,
            finished: false,
        }
    }

    /// The deliveries (and escalations) that are over since the last call, for the trail.
    pub(crate) fn drain(&mut self) -> Vec<Record> {
        self.records.try_iter().collect()
    }

    /// Hears one event (after it is recorded: `head` is the trail's head with it).
    pub(crate) fn handle(&mut self, event: &Event, head: &str) {
        let d = &self.dispatch;
        match event {
            Event::RunStarted { targets, alert, .. } => {
                let summary = format!(
                    "{} started: {}, {} by {}, RTO {}",
                    d.run.mode,
                    d.run_named(),
                    d.run.run_id,
                    d.run.operator,
                    crate::duration::format(d.clock.rto)
                );
                let mut data = Map::from_iter([("targets".to_string(), json!(targets))]);
                if let Some(alert) = alert {
                    data.insert("alert".into(), alert.clone());
                }
                d.send(d.notice(Kind::RunStarted, None, summary, data, None));
            }
            Event::StepPresented(p) => {
                if let Some((attempts, _)) = p.retry {
                    self.attempts.insert(p.step.clone(), attempts);
                }
            }
            Event::StepFinished(f) if f.fleet.is_none() => {
                // A lost attempt is never retried: it fails the step now.
                let lost = matches!(f.outcome, StepOutcome::Lost);
                if !failure(f.outcome) || (self.retried(&f.step, f.attempt) && !lost) {
                    return;
                }
                let (host, attempt) = (&f.host, f.attempt);
                let mut what = format!("on {host} (attempt {attempt}) in {}", d.run_named());
                if let Some(r) = &f.reason {
                    what.push_str(&format!(": {r}"));
                }
                let data = Map::from_iter([
                    ("host".to_string(), json!(host)),
                    ("exit".to_string(), json!(f.exit)),
                    ("reason".to_string(), json!(f.reason)),
                ]);
                d.step_failed(&f.step, f.outcome, attempt, f.duration, what, data);
            }
            Event::FleetFinished(e) => {
                let (step, fleet, outcome, attempt, duration, failed) =
                    (&e.step, &e.fleet, &e.outcome, &e.attempt, &e.duration, &e.failed);
                if !failure(*outcome) || self.retried(step, *attempt) {
                    return;
                }
                let hosts: Vec<String> = failed.iter().map(|(h, _)| h.clone()).collect();
                let what = format!("on {fleet} (failed on {}) in {}", hosts.join(", "), d.run_named());
                let data = Map::from_iter([
                    ("host".to_string(), json!(fleet)),
                    ("hosts_failed".to_string(), json!(hosts)),
                ]);
                d.step_failed(step, *outcome, *attempt, *duration, what, data);
            }
            Event::RunFinished(e) => {
                let (outcome, message, elapsed, rto, verdict) =
                    (&e.outcome, &e.message, &e.elapsed, &e.rto, &e.verdict);
                // The deadlines are moot once the run is over.
                if let Some(timer) = self.timer.take() {
                    timer.stop();
                }
                self.finished = true;
                let within = elapsed <= rto;
                let mut summary = format!(
                    "{} {} ended {} in {}, {} the {} RTO",
                    d.run.mode,
                    d.run_named(),
                    outcome.as_str(),
                    crate::duration::format_elapsed(*elapsed),
                    if within { "within" } else { "over" },
                    crate::duration::format(*rto)
                );
                if let Some(v) = verdict {
                    summary.push_str(&format!(
                        ": {} ({})",
                        if v.pass { "PASS" } else { "FAIL" },
                        v.reason
                    ));
                }
                summary.push_str(&format!("; trail head {head}"));
                let page = match outcome {
                    RunOutcome::Ended(Outcome::Resolved) => Some(Page::Resolve),
                    RunOutcome::Ended(_) => Some(Page::Trigger),
                    _ => None,
                };
                let data = Map::from_iter([
                    ("outcome".to_string(), json!(outcome.as_str())),
                    ("message".to_string(), json!(message)),
                    ("duration_ms".to_string(), ms(*elapsed)),
                    ("within_rto".to_string(), json!(within)),
                    (
                        "verdict".to_string(),
                        verdict
                            .as_ref()
                            .map(|v| json!({"pass": v.pass, "reason": v.reason}))
                            .unwrap_or(Value::Null),
                    ),
                    ("head".to_string(), json!(head)),
                ]);
                d.send(d.notice(Kind::RunFinished, None, summary, data, page));
            }
            _ => {}
        }
    }

    /// The hook of the two-person rule (design §15): a step waits for approvals. Call it once
    /// the request file is written; `request` is its path.
    pub(crate) fn approval_needed(&mut self, step: &str, host: &str, request: &str, quorum: u32) {
        let d = &self.dispatch;
        let summary = format!(
            "approval needed: step `{step}` on {host} of {} waits for {quorum} approval{}: runbook approve {request}",
            d.run_named(),
            if quorum == 1 { "" } else { "s" }
        );
        let data = Map::from_iter([
            ("step".to_string(), json!(step)),
            ("host".to_string(), json!(host)),
            ("request".to_string(), json!(request)),
            ("quorum".to_string(), json!(quorum)),
        ]);
        d.send(d.notice(Kind::ApprovalNeeded, Some(step.to_string()), summary, data, None));
    }

    /// At exit: stops the timer, waits at most `--notify-timeout` for what is pending, and
    /// returns every record not drained yet (abandoned deliveries included).
    pub(crate) fn finish(mut self) -> Vec<Record> {
        if let Some(timer) = self.timer.take() {
            timer.stop();
        }
        let deadline = Instant::now() + self.timeout;
        self.dispatch.queue.close(deadline);
        let mut records: Vec<Record> = self.records.try_iter().collect();
        records.extend(self.dispatch.queue.abandon_pending());
        records.extend(self.records.try_iter());
        records
    }

    /// Whether this failed attempt of `step` is to be retried (so no failure of the step yet).
    fn retried(&self, step: &str, attempt: u32) -> bool {
        attempt < self.attempts.get(step).copied().unwrap_or(1)
    }
}

/// One notice for a run that never started (a refusal): sent on the channels' own threads,
/// waited for at most `--notify-timeout`; returns what became of each delivery.
pub(crate) fn send_alone(
    setup: Setup,
    run: RunInfo,
    kind: Kind,
    summary: String,
    data: Map<String, Value>,
) -> Vec<Record> {
    let (records_tx, records) = std::sync::mpsc::channel();
    let dispatch = Dispatch {
        run: Arc::new(run),
        clock: RunClock {
            launched: Instant::now(),
            since_offset: Duration::ZERO,
            rto: Duration::ZERO,
        },
        next: std::sync::atomic::AtomicU64::new(setup.sent_before),
        queue: queue::Queue::start(setup.channels),
        records: records_tx,
        banner: Arc::new(|_: &str| {}),
    };
    dispatch.send(dispatch.notice(kind, None, summary, data, None));
    dispatch.queue.close(Instant::now() + setup.timeout);
    let mut done: Vec<Record> = records.try_iter().collect();
    done.extend(dispatch.queue.abandon_pending());
    done
}

/// A step outcome that is worth telling the channel (a Ctrl-C is the operator's own doing).
fn failure(outcome: StepOutcome) -> bool {
    matches!(
        outcome,
        StepOutcome::Failed | StepOutcome::TimedOut | StepOutcome::Lost
    )
}

/// The notices a trail shows were sent already (resume): by their CloudEvents type, and
/// `escalation due`; and how many deliveries it records (the next notice's number follows).
pub(crate) fn already_sent(events: &[crate::audit::record::Line]) -> (HashSet<Kind>, u64) {
    let mut sent = HashSet::new();
    let mut count = 0;
    for e in events {
        match &e.record {
            Record::Notification(n) => {
                count += 1;
                if let Some(kind) = Kind::parse_ce_type(&n.kind) {
                    sent.insert(kind);
                }
            }
            Record::EscalationDue(_) => {
                sent.insert(Kind::EscalationDue);
            }
            _ => {}
        }
    }
    (sent, count)
}

/// A record as one line of `notifications.jsonl` (after the seal, so unchained).
pub(crate) fn record_line(run: &str, record: &Record) -> String {
    let json = |v: &str| Value::from(v).to_string();
    // Members as in the trail, after `ts`, `run` and `event`; a record always serialises.
    let members = crate::audit::record::members(record).unwrap_or_default();
    format!(
        "{{\"ts\":{},\"run\":{},\"event\":{}{members}}}\n",
        json(&timestamp(chrono::Utc::now())),
        json(run),
        json(record.name())
    )
}

/// UTC, RFC 3339, milliseconds, `Z`, as the trail writes its `ts`.
pub(crate) fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
