//! The run's clocks (time spent of the RTO, the current step's time), shared by the spinner,
//! the status line of prompts and the status lines themselves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use console::style;

use crate::duration::format as fmt_duration;

#[derive(Clone)]
pub(crate) struct Clock {
    pub(super) run_start: Instant,
    /// Milliseconds of RTO already spent before this process took over (`--since`, or the
    /// time a resumed run had already run).
    pub(super) offset_ms: u64,
    pub(super) rto_ms: u64,
    pub(super) step_start: Arc<AtomicU64>,
    pub(super) step_target_ms: Arc<AtomicU64>,
}

/// How much of the RTO is spent: what colour the clocks take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Spent {
    Under,
    /// 80% or more: the notifications of design §15 call this the warning.
    Warning,
    Breached,
}

impl Clock {
    pub(crate) fn new(rto: Duration, offset: Duration) -> Clock {
        Clock {
            run_start: Instant::now(),
            offset_ms: offset.as_millis() as u64,
            rto_ms: rto.as_millis() as u64,
            step_start: Arc::new(AtomicU64::new(0)),
            step_target_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(crate) fn rto(&self) -> Duration {
        Duration::from_millis(self.rto_ms)
    }

    pub(crate) fn run_elapsed(&self) -> Duration {
        self.run_start.elapsed() + Duration::from_millis(self.offset_ms)
    }

    pub(crate) fn step_elapsed(&self) -> Duration {
        let started = Duration::from_millis(self.step_start.load(Ordering::Relaxed));
        self.run_start.elapsed().saturating_sub(started)
    }

    pub(crate) fn step_started(&self, target: Option<Duration>) {
        self.step_start
            .store(self.run_start.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.step_target_ms.store(
            target.map(|t| t.as_millis() as u64).unwrap_or(0),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn spent(&self) -> Spent {
        let (run, rto) = (self.run_elapsed(), self.rto());
        if run > rto {
            Spent::Breached
        } else if run.as_millis() * 5 >= rto.as_millis() * 4 {
            Spent::Warning
        } else {
            Spent::Under
        }
    }

    /// `4m12s of the 15m RTO left`, or `RTO 15m exceeded by 1m02s`.
    pub(crate) fn budget(&self) -> String {
        let (run, rto) = (self.run_elapsed(), self.rto());
        if run <= rto {
            format!(
                "{} of the {} RTO left",
                super::fmt_secs(rto - run),
                fmt_duration(rto)
            )
        } else {
            format!(
                "RTO {} exceeded by {}",
                fmt_duration(rto),
                super::fmt_secs(run - rto)
            )
        }
    }

    /// The budget in its colour: plain under 80%, yellow after, red and flagged once breached.
    pub(crate) fn budget_styled(&self) -> String {
        let text = self.budget();
        match self.spent() {
            Spent::Under => text,
            Spent::Warning => style(text).yellow().bold().to_string(),
            Spent::Breached => style(format!("⚠ {text}")).red().bold().to_string(),
        }
    }
}

/// The clock of the run, once it started: the UI sets it, prompts read it to tick their
/// status line. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct SharedClock(Arc<OnceLock<Clock>>);

impl SharedClock {
    pub(crate) fn set(&self, clock: Clock) {
        let _ = self.0.set(clock);
    }

    pub(crate) fn get(&self) -> Option<&Clock> {
        self.0.get()
    }
}

impl std::fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedClock")
    }
}
