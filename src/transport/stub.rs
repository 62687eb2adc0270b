//! A transport where nothing runs (`runbook test`, design §21): each command's ending, output
//! and duration are the ones a test case scripted for its step and attempt. Its time is
//! virtual: the stubbed `took` is added to a counter, never slept, so a case of a 15-minute
//! runbook is judged against its RTO in microseconds. A `Watcher` (a rehearsal's guards) is
//! told each command's span of virtual time, and may stop it part-way, as a guard that trips
//! stops an unattended run's step.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Chunk, Ending, Job, TransportError, emit};

/// What one attempt of a step's command did, as a test case says it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reply {
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

/// How long an unlisted attempt takes: a command that returns at once would make every RTO
/// trivially met.
pub(crate) const DEFAULT_TOOK: Duration = Duration::from_secs(1);

impl Reply {
    /// A step no case scripted: exit 0, no output, 1 s.
    pub(crate) fn unlisted() -> Reply {
        Reply {
            took: DEFAULT_TOOK,
            ..Reply::default()
        }
    }
}

/// A rehearsal's virtual time: what the stubbed commands took, plus the (paused) runtime's
/// own time since the walk began (retries' delays).
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    /// Virtual milliseconds spent in commands.
    spent_ms: Arc<AtomicU64>,
    origin: tokio::time::Instant,
}

impl Clock {
    /// Starts at zero now (call it on the walk's runtime, whose clock is paused).
    pub(crate) fn start() -> Clock {
        Clock {
            spent_ms: Arc::new(AtomicU64::new(0)),
            origin: tokio::time::Instant::now(),
        }
    }

    /// Virtual time since the walk began.
    pub(crate) fn now(&self) -> Duration {
        Duration::from_millis(self.spent_ms.load(Ordering::Relaxed)) + self.origin.elapsed()
    }

    fn add(&self, d: Duration) {
        self.spent_ms
            .fetch_add(d.as_millis().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }
}

/// Told of each command's span of virtual time before it is replied to (the guards of a
/// rehearsal poll in between).
pub(crate) trait Watcher: Send + Sync {
    /// A command runs from `start` for `took`: how far into it it is stopped from outside, if
    /// it is (the executor then cancels it).
    fn during(&self, start: Duration, took: Duration) -> Option<Duration>;
}

/// The scripted replies by step id (`call-step/step` in a sub-run), one per attempt; the last
/// one repeats when a step is attempted more often than the case lists.
#[derive(Clone)]
pub struct Stub {
    replies: Arc<HashMap<String, Vec<Reply>>>,
    clock: Clock,
    watcher: Option<Arc<dyn Watcher>>,
}

impl std::fmt::Debug for Stub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stub")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Stub {
    pub(crate) fn new(
        replies: HashMap<String, Vec<Reply>>,
        clock: Clock,
        watcher: Option<Arc<dyn Watcher>>,
    ) -> Stub {
        Stub {
            replies: Arc::new(replies),
            clock,
            watcher,
        }
    }

    /// The reply for attempt `attempt` (from 1) of `step`.
    pub(crate) fn reply(&self, step: &str, attempt: u32) -> Reply {
        match self.replies.get(step) {
            Some(list) if !list.is_empty() => {
                let index = (attempt.max(1) as usize - 1).min(list.len() - 1);
                list[index].clone()
            }
            _ => Reply::unlisted(),
        }
    }

    pub async fn run(&self, job: Job<'_>) -> Result<Ending, TransportError> {
        let (spec, out, cancel, recorded) = (job.spec, job.out, job.cancel, job.recorded);
        tokio::select! {
            on_disk = recorded.wait() => on_disk.map_err(TransportError::NotRecorded)?,
            () = cancel.cancelled() => return Ok(Ending::Cancelled),
        }
        let reply = self.reply(&spec.step, spec.attempt);
        // Past its timeout a real command is killed: so is this one, at the timeout.
        let (took, timed_out) = match spec.timeout {
            Some(limit) if reply.took > limit => (limit, true),
            _ => (reply.took, false),
        };
        let start = self.clock.now();
        let mut left = took;
        if let Some(at) = self.watcher.as_ref().and_then(|w| w.during(start, took)) {
            let at = at.min(took);
            self.clock.add(at);
            left = took - at;
            // The executor heard of the trip and cancels: the command ends there. Were it not
            // to, the command runs on to its end in the runtime's (paused) time.
            if tokio::time::timeout(left, cancel.cancelled()).await.is_ok() {
                return Ok(Ending::Cancelled);
            }
            left = Duration::ZERO;
        }
        if timed_out {
            self.clock.add(left);
            return Ok(Ending::TimedOut);
        }
        emit(&out, Chunk::Stdout(reply.stdout.into_bytes())).await;
        emit(&out, Chunk::Stderr(reply.stderr.into_bytes())).await;
        self.clock.add(left);
        Ok(Ending::Exited(reply.exit))
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::super::CommandSpec;
    use super::*;
    use crate::audit::Recorded;

    #[test]
    fn each_attempt_gets_its_reply_and_the_last_one_repeats() {
        let fail = Reply {
            exit: 7,
            ..Reply::unlisted()
        };
        let ok = Reply {
            stdout: "ok".into(),
            ..Reply::unlisted()
        };
        let stub = Stub::new(
            HashMap::from([("verify".to_string(), vec![fail.clone(), ok.clone()])]),
            Clock::start(),
            None,
        );
        assert_eq!(stub.reply("verify", 1), fail);
        assert_eq!(stub.reply("verify", 2), ok);
        assert_eq!(stub.reply("verify", 5), ok);
        assert_eq!(stub.reply("other", 1), Reply::unlisted());
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_longer_than_the_timeout_times_out_at_the_timeout() {
        let slow = Reply {
            took: Duration::from_secs(90),
            ..Reply::default()
        };
        let clock = Clock::start();
        let stub = Stub::new(
            HashMap::from([("s".to_string(), vec![slow])]),
            clock.clone(),
            None,
        );
        let spec = CommandSpec {
            command: "true".into(),
            env: Vec::new(),
            timeout: Some(Duration::from_secs(30)),
            step: "s".into(),
            attempt: 1,
        };
        let (tx, _rx) = tokio::sync::mpsc::channel(4);
        let ending = stub
            .run(Job {
                spec: &spec,
                out: tx,
                cancel: CancellationToken::new(),
                recorded: Recorded::done(),
            })
            .await
            .unwrap();
        assert_eq!(ending, Ending::TimedOut);
        assert_eq!(clock.now(), Duration::from_secs(30));
    }
}
