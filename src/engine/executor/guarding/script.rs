//! A rehearsal's guards (`runbook test`, design §21): nothing is polled for real. Each guard a
//! case stubs is failing from the moment a step is entered (and healthy again from another),
//! and is "polled" every `every` of the walk's virtual time, from its start, exactly as the
//! real poller counts: `failing` at the first failure, `tripped` at `failures` in a row,
//! `recovered` at a pass after failures. The polls due are evaluated when the virtual clock
//! moves past them: at a step boundary, and over the span of each stubbed command (the stub
//! transport asks, as a `Watcher`), so a trip lands in the step it would have landed in.
//!
//! Unattended, the first trip stops the command running at that moment (the executor cancels
//! it on hearing of the trip, and records a timeout); interactively it stops nothing, and the
//! next boundary offers the divert.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::events::{Event, GuardChange, GuardChanged};
use crate::plan::Plan;
use crate::transport::{Clock, Watcher};

/// What a test case says of one guard.
#[derive(Debug, Clone)]
pub(crate) struct GuardStub {
    pub guard: String,
    /// Its check fails from when this step (`CALL-STEP/STEP` in a sub-run) is first entered.
    pub fails_from: String,
    /// ... and passes again from when this one is first entered after that.
    pub recovers_from: Option<String>,
}

/// The stubbed guards of one walk.
pub(crate) struct Script {
    clock: Clock,
    /// Unattended: the first trip stops the running command.
    stops: bool,
    tx: UnboundedSender<Event>,
    state: Mutex<State>,
}

struct State {
    guards: Vec<Simulated>,
    /// The walk ended: no more polls.
    stopped: bool,
    /// A guard tripped already (only the first trip of a run can divert it).
    tripped: bool,
}

struct Simulated {
    id: String,
    host: String,
    goto: String,
    every: Duration,
    threshold: u32,
    /// Polls evaluated so far: the next one is due at `polls × every`.
    polls: u32,
    failures: u32,
    fails_from: String,
    recovers_from: Option<String>,
    /// When its health changed, in order: (from, failing).
    changes: Vec<(Duration, bool)>,
}

impl Simulated {
    fn due(&self) -> Duration {
        self.every.saturating_mul(self.polls)
    }

    fn failing_at(&self, at: Duration) -> bool {
        self.changes
            .iter()
            .rev()
            .find(|(from, _)| *from <= at)
            .is_some_and(|(_, failing)| *failing)
    }
}

impl Script {
    /// The guards of `plan`'s main runbook that `stubs` name (the others always pass, so they
    /// never say anything), and the `Guards` the executor drains.
    pub(crate) fn start(
        plan: &Plan,
        stubs: &[GuardStub],
        clock: Clock,
        unattended: bool,
    ) -> (super::Guards, Arc<Script>) {
        let runbook = &plan.main.runbook;
        let guards = stubs
            .iter()
            .filter_map(|stub| {
                let g = runbook.guards.iter().find(|g| g.id.value == stub.guard)?;
                Some(Simulated {
                    id: stub.guard.clone(),
                    host: super::guard_host(plan, g),
                    goto: g.goto.value.clone(),
                    every: g.every(),
                    threshold: g.failures(),
                    polls: 0,
                    failures: 0,
                    fails_from: stub.fails_from.clone(),
                    recovers_from: stub.recovers_from.clone(),
                    changes: Vec::new(),
                })
            })
            .collect();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let script = Arc::new(Script {
            clock,
            stops: unattended,
            tx,
            state: Mutex::new(State {
                guards,
                stopped: false,
                tripped: false,
            }),
        });
        let guards = super::Guards {
            rx,
            poller: super::Poller::Scripted(script.clone()),
        };
        (guards, script)
    }

    /// Step `step` is entered now: a guard failing from it starts failing, one recovering
    /// from it passes again.
    pub(crate) fn entered(&self, step: &str) {
        let now = self.clock.now();
        let Ok(mut state) = self.state.lock() else { return };
        if state.stopped {
            return;
        }
        for g in &mut state.guards {
            match g.changes.last() {
                None if g.fails_from == step => g.changes.push((now, true)),
                Some((_, true)) if g.recovers_from.as_deref() == Some(step) => g.changes.push((now, false)),
                _ => {}
            }
        }
    }

    /// Evaluates the polls due before now (a step boundary).
    pub(crate) fn catch_up(&self) {
        let _ = self.advance(self.clock.now());
    }

    /// The walk ended: what was due before now is polled, then nothing more.
    pub(crate) fn stop(&self) {
        self.catch_up();
        if let Ok(mut state) = self.state.lock() {
            state.stopped = true;
        }
    }

    /// Evaluates every poll due before `limit`, in time order (guards in the runbook's order
    /// at the same instant), sending the changes. Unattended, the first trip ends it there:
    /// when it came.
    fn advance(&self, limit: Duration) -> Option<Duration> {
        let Ok(mut state) = self.state.lock() else {
            return None;
        };
        while !state.stopped {
            let (i, at) = state
                .guards
                .iter()
                .enumerate()
                .map(|(i, g)| (i, g.due()))
                .filter(|(_, at)| *at < limit)
                .min_by_key(|(_, at)| *at)?;
            let g = &mut state.guards[i];
            g.polls = g.polls.saturating_add(1);
            let failing = g.failing_at(at);
            let change = |change, failures, reason| {
                Event::Guard(GuardChanged {
                    guard: g.id.clone(),
                    change,
                    host: g.host.clone(),
                    failures,
                    reason,
                    goto: g.goto.clone(),
                })
            };
            let mut tripped = false;
            if failing {
                g.failures = g.failures.saturating_add(1);
                let reason = Some(format!("stubbed: failing from `{}`", g.fails_from));
                if g.failures == 1 {
                    let _ = self.tx.send(change(GuardChange::Failing, 1, reason.clone()));
                }
                if g.failures == g.threshold {
                    let _ = self.tx.send(change(GuardChange::Tripped, g.failures, reason));
                    tripped = true;
                }
            } else {
                if g.failures > 0 {
                    let _ = self.tx.send(change(GuardChange::Recovered, 0, None));
                }
                g.failures = 0;
            }
            if tripped && !state.tripped {
                state.tripped = true;
                if self.stops {
                    return Some(at);
                }
            }
        }
        None
    }
}

impl Watcher for Script {
    /// The polls due while a command runs from `start` for `took`; unattended, a trip among
    /// them (or one before it that nothing acted on yet) stops it.
    fn during(&self, start: Duration, took: Duration) -> Option<Duration> {
        self.advance(start + took).map(|at| at.saturating_sub(start))
    }
}
