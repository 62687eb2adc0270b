//! Delivery: one sender thread per channel, each fed by a bounded queue, so a slow or dead
//! receiver delays only its own channel, never a step (the listener's `try_send` never waits)
//! and never another channel. Each delivery is tried up to `ATTEMPTS` times with backoff on a
//! connection error, a timeout, a 5xx, 408 or 429; another 4xx is final. The HTTP client is
//! `ureq` (blocking, on these threads): prompts block the run's own thread, so a sender there
//! would stall while the operator reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Channel, Format, Notice, Record};
use crate::audit::record::{self, Notification};

/// Deliveries waiting per channel; more are dropped (and recorded as such).
pub(super) const QUEUE_LEN: usize = 64;
/// Tries of one delivery, the first included.
pub(super) const ATTEMPTS: u32 = 4;
/// The pause before the second try; doubled before each next one (0.5 s, 1 s, 2 s).
pub(super) const BACKOFF: Duration = Duration::from_millis(500);
/// The longest one try may take, connecting included.
pub(super) const TRY_TIMEOUT: Duration = Duration::from_secs(5);
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

struct Job {
    key: u64,
    body: Vec<u8>,
    content_type: &'static str,
}

/// What a pending delivery is, to record it when it never ends: its record, the outcome yet
/// to be filled in.
#[derive(Clone)]
struct Pending {
    notification: Notification,
    queued: Instant,
}

struct Worker {
    channel: Arc<Channel>,
    tx: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// Deliveries enqueued and not yet recorded, and the exit deadline once closing.
#[derive(Default)]
struct Shared {
    pending: HashMap<u64, Pending>,
    /// Set at exit: tries are cut to it and none starts after it.
    deadline: Option<Instant>,
    /// Past the deadline: what is still pending was recorded as abandoned.
    abandoned: bool,
}

pub(crate) struct Queue {
    workers: Mutex<Vec<Worker>>,
    shared: Arc<Mutex<Shared>>,
    next_key: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Queue {
    pub(crate) fn start(channels: Vec<Channel>) -> Queue {
        let workers = channels
            .into_iter()
            .map(|c| Worker {
                channel: Arc::new(c),
                tx: None,
                thread: None,
            })
            .collect();
        Queue {
            workers: Mutex::new(workers),
            shared: Arc::new(Mutex::new(Shared::default())),
            next_key: AtomicU64::new(0),
        }
    }

    /// Renders the notice for every channel that wants it and queues it there; never waits.
    pub(crate) fn enqueue(&self, notice: &Notice, records: &Sender<Record>) {
        let mut workers = lock(&self.workers);
        for worker in workers.iter_mut() {
            let channel = worker.channel.clone();
            if !channel.wants(notice.kind) {
                continue;
            }
            let (body, content_type) = match channel.format {
                Format::CloudEvents => (
                    super::cloudevents::render(notice),
                    super::cloudevents::CONTENT_TYPE,
                ),
                Format::Slack => (super::slack::render(notice), super::slack::CONTENT_TYPE),
                Format::PagerDuty => {
                    match super::pagerduty::render(notice, channel.routing_key.as_deref().unwrap_or("")) {
                        Some(body) => (body, super::pagerduty::CONTENT_TYPE),
                        None => continue,
                    }
                }
            };
            let key = self.next_key.fetch_add(1, Ordering::Relaxed);
            let pagerduty = channel.format == Format::PagerDuty;
            let notification = Notification {
                kind: notice.kind.ce_type().to_string(),
                id: notice.id(),
                subject: notice.step.clone(),
                channel: channel.shown.clone(),
                format: channel.format.as_str().to_string(),
                dedup_key: pagerduty.then(|| notice.run.run_id.clone()),
                event_action: pagerduty
                    .then(|| body["event_action"].as_str().unwrap_or_default().to_string()),
                ..Notification::default()
            };
            let pending = Pending {
                notification,
                queued: Instant::now(),
            };
            {
                let mut shared = lock(&self.shared);
                if shared.abandoned {
                    return;
                }
                shared.pending.insert(key, pending);
            }
            let job = Job {
                key,
                body: body.to_string().into_bytes(),
                content_type,
            };
            let tx = worker.tx.get_or_insert_with(|| {
                let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_LEN);
                let (channel, shared, records) = (channel.clone(), self.shared.clone(), records.clone());
                worker.thread = std::thread::Builder::new()
                    .name("notify".into())
                    .spawn(move || work(&channel, rx, &shared, &records))
                    .ok();
                tx
            });
            if let Err(e) = tx.try_send(job) {
                let why = match e {
                    TrySendError::Full(_) => format!("dropped: {QUEUE_LEN} deliveries already waiting"),
                    TrySendError::Disconnected(_) => "dropped: the sender thread is gone".to_string(),
                };
                if let Some(p) = lock(&self.shared).pending.remove(&key) {
                    let _ = records.send(outcome_record(p, "dropped", &[], Some(why)));
                }
            }
        }
    }

    /// At exit: no more deliveries; waits for the senders until `deadline` at most.
    pub(crate) fn close(&self, deadline: Instant) {
        lock(&self.shared).deadline = Some(deadline);
        let threads: Vec<JoinHandle<()>> = {
            let mut workers = lock(&self.workers);
            workers
                .iter_mut()
                .filter_map(|w| {
                    w.tx = None;
                    w.thread.take()
                })
                .collect()
        };
        for thread in threads {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// What is still pending after `close`: recorded as abandoned (the senders that finish
    /// later record nothing more).
    pub(crate) fn abandon_pending(&self) -> Vec<Record> {
        let mut shared = lock(&self.shared);
        shared.abandoned = true;
        let mut pending: Vec<(u64, Pending)> = shared.pending.drain().collect();
        pending.sort_by_key(|(k, _)| *k);
        pending
            .into_iter()
            .map(|(_, p)| {
                outcome_record(
                    p,
                    "abandoned",
                    &[],
                    Some("still pending when --notify-timeout ran out at exit".into()),
                )
            })
            .collect()
    }
}

/// One try's result.
#[derive(Debug, Clone)]
struct Try {
    status: Option<u16>,
    error: Option<String>,
    ms: u64,
}

fn outcome_record(p: Pending, outcome: &str, tries: &[Try], error: Option<String>) -> Record {
    Record::Notification(Notification {
        outcome: outcome.to_string(),
        attempts: tries.len() as u64,
        status: tries.last().and_then(|t| t.status),
        error: tries.last().and_then(|t| t.error.clone()),
        reason: error,
        tries: tries
            .iter()
            .map(|t| record::Try {
                status: t.status,
                error: t.error.clone(),
                ms: t.ms,
            })
            .collect(),
        took_ms: p.queued.elapsed().as_millis() as u64,
        at: super::timestamp(chrono::Utc::now()),
        ..p.notification
    })
}

fn work(channel: &Channel, rx: Receiver<Job>, shared: &Mutex<Shared>, records: &Sender<Record>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(TRY_TIMEOUT))
        .max_redirects(0)
        .user_agent(concat!("runbook/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    while let Ok(job) = rx.recv() {
        let mut tries: Vec<Try> = Vec::new();
        let mut delay = BACKOFF;
        let mut cut: Option<String> = None;
        let outcome = loop {
            let deadline = lock(shared).deadline;
            let budget = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(TRY_TIMEOUT),
                    _ => {
                        cut = Some("--notify-timeout ran out at exit".into());
                        break "abandoned";
                    }
                },
                None => TRY_TIMEOUT,
            };
            let t = post(&agent, channel, &job, budget);
            let retry = match (t.status, &t.error) {
                (Some(s), _) if (200..300).contains(&s) => {
                    tries.push(t);
                    break "delivered";
                }
                (Some(s), _) => s >= 500 || s == 408 || s == 429,
                (None, _) => true,
            };
            tries.push(t);
            if !retry || tries.len() as u32 >= ATTEMPTS {
                break "failed";
            }
            let wake = Instant::now() + delay;
            if let Some(d) = lock(shared).deadline
                && wake >= d
            {
                cut = Some("--notify-timeout ran out at exit before the next try".into());
                break "abandoned";
            }
            std::thread::sleep(delay);
            delay *= 2;
        };
        let mut state = lock(shared);
        if state.abandoned {
            return;
        }
        if let Some(p) = state.pending.remove(&job.key) {
            let _ = records.send(outcome_record(p, outcome, &tries, cut));
        }
    }
}

/// One POST; what came back, in words that never hold the URL.
fn post(agent: &ureq::Agent, channel: &Channel, job: &Job, budget: Duration) -> Try {
    let started = Instant::now();
    let result = agent
        .post(&channel.url)
        .config()
        .timeout_global(Some(budget))
        .build()
        .header("Content-Type", job.content_type)
        .send(&job.body[..]);
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(response) => Try {
            status: Some(response.status().as_u16()),
            error: None,
            ms,
        },
        Err(e) => Try {
            status: None,
            error: Some(words(&e)),
            ms,
        },
    }
}

/// An error in plain words, without any part of the URL (it is a credential).
fn words(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "no answer in time".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::ConnectionReset => "connection reset".into(),
            std::io::ErrorKind::TimedOut => "no answer in time".into(),
            std::io::ErrorKind::UnexpectedEof => "connection closed before an answer".into(),
            kind => format!("I/O error ({kind})"),
        },
        ureq::Error::Protocol(_) => "not an HTTP answer".into(),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS error".into(),
        ureq::Error::BadUri(_) => "bad URL".into(),
        _ => "delivery failed".into(),
    }
}
