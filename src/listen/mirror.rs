//! The team's audit host (design §19), a listener of the trail: every line the audit writer
//! wrote, byte for byte, appended to `PATH/<run-id>.jsonl` there, each output file copied into
//! `PATH/<run-id>/` once closed, in the trail's order (the seal last). It runs on a thread of
//! its own with its own connection, and never stops the run: a step's start waits for its
//! acknowledgement at most `ANSWER_WAIT`; lost, it says so once, retries, and on reconnect
//! sends what was missed from the local trail (the primary).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use crate::transport::{AuditHost, SshOptions};

mod link;
mod worker;

/// How long a run's start waits for the audit host's first answer before it goes on without.
const FIRST_CONTACT_WAIT: Duration = Duration::from_secs(3);

/// How long a run's end waits for the audit host to take what is left.
pub(crate) const FINISH_WAIT: Duration = Duration::from_secs(10);

/// How long the seal waits for the mirror to settle (`Mirror::settle`).
pub(crate) const SETTLE_WAIT: Duration = Duration::from_secs(3);

/// What the sink records as it comes (`mirror lost`, `mirror caught up`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum News {
    Lost { reason: String },
    CaughtUp { bytes: u64, files: u64 },
}

enum Msg {
    /// Trail lines, ending at byte `end` of the local trail.
    Lines { end: u64, bytes: Vec<u8> },
    /// Answered once everything before it is dealt with (sent, or the host found away).
    Settle(std::sync::mpsc::Sender<()>),
    /// The run is over: send what is left, within the bound, then say how it went.
    Finish {
        by: Instant,
        done: std::sync::mpsc::Sender<Result<(), String>>,
    },
}

/// A run's mirror when it has an audit host: started, and its first contact awaited (bounded),
/// or nothing but a warning when even its thread cannot start.
pub(crate) async fn begin(
    host: Option<AuditHost>,
    ssh: &SshOptions,
    run_id: &str,
    audit_dir: &std::path::Path,
    shout: fn(&str),
) -> Option<Mirror> {
    let started = Mirror::start(
        host?,
        ssh.clone(),
        run_id.to_string(),
        audit_dir.to_path_buf(),
        Arc::new(shout),
    );
    let mut mirror = started
        .map_err(|e| crate::stderr::ewriteln!("runbook: warning: no audit host: {e}"))
        .ok()?;
    mirror.greet().await;
    Some(mirror)
}

pub(crate) struct Mirror {
    host: AuditHost,
    feed: mpsc::UnboundedSender<Msg>,
    /// The bytes of the trail the audit host holds (`u64::MAX` while lost).
    held: watch::Receiver<u64>,
    news: std::sync::mpsc::Receiver<News>,
    first: Option<oneshot::Receiver<Result<(), String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Mirror {
    /// Starts connecting at once, on a thread of its own; `audit_dir` holds the local trail.
    /// `shout` says a loud line on the terminal from that thread (`ui::shout`).
    pub(crate) fn start(
        host: AuditHost,
        ssh: SshOptions,
        run_id: String,
        audit_dir: PathBuf,
        shout: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Mirror, String> {
        let (feed, inbox) = mpsc::unbounded_channel();
        let (held_tx, held) = watch::channel(0u64);
        let (news_tx, news) = std::sync::mpsc::channel();
        let (first_tx, first) = oneshot::channel();
        let worker = worker::Worker::new(worker::Setup {
            host: host.clone(),
            ssh,
            run_id,
            audit_dir,
            held: held_tx,
            news: news_tx,
            first: Some(first_tx),
            shout,
        });
        let thread = std::thread::Builder::new()
            .name("audit-mirror".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    return;
                };
                runtime.block_on(worker.run(inbox));
            })
            .map_err(|e| format!("cannot start the mirror's thread: {e}"))?;
        Ok(Mirror {
            host,
            feed,
            held,
            news,
            first: Some(first),
            thread: Some(thread),
        })
    }

    /// Waits (at most `FIRST_CONTACT_WAIT`) for the first contact, and says once when the
    /// audit host cannot be reached: the run starts anyway.
    async fn greet(&mut self) {
        let why = match tokio::time::timeout(FIRST_CONTACT_WAIT, self.first_contact()).await {
            Ok(Ok(())) => return,
            Ok(Err(why)) => why,
            Err(_) => format!("no answer within {} s", FIRST_CONTACT_WAIT.as_secs()),
        };
        crate::stderr::ewriteln!(
            "runbook: warning: the audit host {} cannot be reached ({why}): the run starts anyway; its trail is kept here and sent there once it can be",
            self.host
        );
    }

    pub(crate) fn host(&self) -> &AuditHost {
        &self.host
    }

    /// The outcome of the first connection (once).
    async fn first_contact(&mut self) -> Result<(), String> {
        match self.first.take() {
            Some(first) => first
                .await
                .unwrap_or_else(|_| Err("the mirror's thread ended".into())),
            None => Ok(()),
        }
    }

    /// Lines the audit writer wrote, the last ending at byte `end` of the trail.
    pub(crate) fn lines(&self, end: u64, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        let bytes = lines.concat().into_bytes();
        let _ = self.feed.send(Msg::Lines { end, bytes });
    }

    /// What resolves once the audit host holds the trail up to byte `end` (bounded).
    pub(crate) fn acknowledged(&self, end: u64) -> crate::audit::Acknowledged {
        crate::audit::Acknowledged {
            held: self.held.clone(),
            want: end,
            within: link::ANSWER_WAIT,
        }
    }

    /// Waits (at most `within`) until what was given so far is sent or found unsendable: the
    /// seal then records how the mirror stands, a catching up under way included.
    pub(crate) fn settle(&self, within: Duration) {
        let (done, settled) = std::sync::mpsc::channel();
        if self.feed.send(Msg::Settle(done)).is_ok() {
            let _ = settled.recv_timeout(within);
        }
    }

    /// What happened since the last call, for the trail.
    pub(crate) fn news(&self) -> Vec<News> {
        self.news.try_iter().collect()
    }

    /// Sends what is left (the seal last) and ends the connection, waiting at most `within`;
    /// the error says what the audit host's copy lacks.
    pub(crate) fn finish(mut self, within: Duration) -> Result<(), String> {
        let (done, outcome) = std::sync::mpsc::channel();
        let by = Instant::now() + within;
        let sent = self.feed.send(Msg::Finish { by, done }).is_ok();
        let result = if sent {
            outcome
                .recv_timeout(within + Duration::from_secs(3))
                .unwrap_or_else(|_| Err("it did not answer in time".into()))
        } else {
            Err("the mirror's thread ended".into())
        };
        if result.is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
        result
    }
}
