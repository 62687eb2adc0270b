//! Guards (design §20): each guard's check polled on a thread of its own (its own runtime, its
//! own SSH master to the guard's host: a prompt or a step never delays a poll, and a step's
//! connection never carries a check), from the first step until the walk ends. Only changes
//! reach the walk, as events on a channel the executor drains at each step boundary and while
//! a command runs. A check that cannot run (no connection, a lost one, past `every`) fails.
//!
//! A guard on a fleet role is polled on each of its hosts (a poll per host, each with its own
//! count and connection); its events name the host.
//!
//! A trip diverts the walk: unattended, the running step is stopped on every host (recorded as
//! a timeout) and the walk goes to `goto`; interactively, the next prompt offers "Divert to
//! `goto`", preselected. A rehearsal's guards are stubbed (`script.rs`) and reach the walk
//! the same way.

use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::Executor;
use crate::book::guard::Guard;
use crate::error::Error;
use crate::events::{Event, GuardChange, GuardChanged, StepOutcome};
use crate::inventory::Binding;
use crate::transport::{CancellationToken, Chunk, CommandSpec, Ending, SshOptions, Transport};
use crate::vars::Vars;

pub(crate) mod script;

/// The guards being polled.
pub(crate) struct Guards {
    rx: UnboundedReceiver<Event>,
    poller: Poller,
}

enum Poller {
    /// For real, on a thread of its own.
    Thread {
        stop: CancellationToken,
        thread: Option<std::thread::JoinHandle<()>>,
    },
    /// A rehearsal's, as the walk's virtual clock moves.
    Scripted(std::sync::Arc<script::Script>),
}

/// A guard that tripped and has not diverted the walk yet.
#[derive(Debug, Clone)]
pub(crate) struct Trip {
    pub guard: String,
    pub goto: String,
}

/// One guard, resolved: where its check runs and with which variables.
struct Poll {
    id: String,
    host: String,
    binding: Binding,
    spec: CommandSpec,
    every: Duration,
    failures: u32,
    goto: String,
    /// A failing check's stderr may echo a secret it was given: masked before it is recorded.
    masker: crate::mask::Masker,
}

impl Guards {
    fn start(polls: Vec<Poll>, ssh: SshOptions) -> Guards {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("guards".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    return;
                };
                runtime.block_on(futures::future::join_all(
                    polls
                        .into_iter()
                        .map(|p| poll(p, &ssh, tx.clone(), stopped.clone())),
                ));
            })
            .ok();
        Guards {
            rx,
            poller: Poller::Thread { stop, thread },
        }
    }

    /// Stops polling: a check under way is cut, its master closed.
    fn stop(mut self) {
        match &mut self.poller {
            Poller::Thread { stop, thread } => {
                stop.cancel();
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
            Poller::Scripted(script) => script.stop(),
        }
    }

    /// A rehearsal's polls due by now are evaluated (a real poller's arrive on their own).
    fn catch_up(&self) {
        if let Poller::Scripted(script) = &self.poller {
            script.catch_up();
        }
    }
}

/// The host a stubbed guard's events name: its role's (a fleet's first; a case stubs the guard,
/// not each host).
fn guard_host(plan: &crate::plan::Plan, g: &Guard) -> String {
    let runbook = &plan.main.runbook;
    let label = plan.host(runbook.id(), runbook.guard_target(g));
    plan.members(&label).into_iter().next().unwrap_or(label)
}

/// Polls one guard until stopped, sending only its changes.
async fn poll(p: Poll, ssh: &SshOptions, tx: UnboundedSender<Event>, stop: CancellationToken) {
    let mut transport: Option<Transport> = None;
    let mut failures = 0u32;
    let mut tick = tokio::time::interval(p.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let change = |change, failures, reason: Option<String>| {
        Event::Guard(GuardChanged {
            guard: p.id.clone(),
            change,
            host: p.host.clone(),
            failures,
            reason,
            goto: p.goto.clone(),
        })
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let checked = tokio::select! {
            _ = stop.cancelled() => break,
            checked = check(&p, ssh, &mut transport) => checked,
        };
        match checked {
            Ok(()) => {
                if failures > 0 {
                    let _ = tx.send(change(GuardChange::Recovered, 0, None));
                }
                failures = 0;
            }
            Err(reason) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    let _ = tx.send(change(GuardChange::Failing, 1, Some(reason.clone())));
                }
                if failures == p.failures {
                    let _ = tx.send(change(GuardChange::Tripped, failures, Some(reason)));
                }
            }
        }
    }
    drop_master(transport).await;
}

/// One check: `Err` says why it failed (its exit code, no answer in time, no connection).
async fn check(p: &Poll, ssh: &SshOptions, transport: &mut Option<Transport>) -> Result<(), String> {
    if transport.is_none() {
        *transport = Some(match &p.binding {
            Binding::Local => Transport::local(),
            Binding::Ssh { dest, .. } => {
                match tokio::time::timeout(p.every.max(ssh.connect_timeout), Transport::connect(dest, ssh))
                    .await
                {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => return Err(format!("cannot connect: {}", e.reason)),
                    Err(_) => return Err("cannot connect: no answer in time".into()),
                }
            }
        });
    }
    let (ending, last_err) = {
        let Some(t) = transport.as_ref() else {
            return Err("no connection".into());
        };
        let (out, mut rx) = tokio::sync::mpsc::channel::<Chunk>(16);
        let run = t.run(&p.spec, out, CancellationToken::new());
        tokio::pin!(run);
        // The check's output is not kept (a health check's body is no record): only the last
        // line of stderr, to say why it failed.
        let mut last_err = String::new();
        // A session that never opens (a master whose host went away) is no answer either.
        let limit = tokio::time::sleep(check_limit(p.every) * 2 + crate::transport::GRACE);
        tokio::pin!(limit);
        let ending = loop {
            tokio::select! {
                _ = &mut limit => break Ok(Ending::Lost("no answer from the host".into())),
                Some(chunk) = rx.recv() => {
                    if let Chunk::Stderr(b) = chunk
                        && let Some(line) = String::from_utf8_lossy(&b).lines().rev().find(|l| !l.trim().is_empty())
                    {
                        last_err = line.chars().take(200).collect();
                    }
                }
                ending = &mut run => break ending,
            }
        };
        (ending, last_err)
    };
    let why = |what: String| {
        if last_err.is_empty() {
            what
        } else {
            format!(
                "{what}: {}",
                crate::secrets::escape::value(&p.masker.mask_str(&last_err))
            )
        }
    };
    match ending {
        Ok(Ending::Exited(0)) => Ok(()),
        Ok(Ending::Exited(code)) => Err(why(format!("exit {code}"))),
        Ok(Ending::Signaled(sig)) => Err(format!("killed by signal {sig}")),
        Ok(Ending::TimedOut) => Err(format!(
            "no answer within {}",
            crate::duration::format(check_limit(p.every))
        )),
        Ok(Ending::Cancelled) => Err("stopped".into()),
        Ok(Ending::Lost(why)) => {
            drop_master(transport.take()).await;
            Err(format!("connection lost: {why}"))
        }
        Err(e) => {
            drop_master(transport.take()).await;
            Err(e.to_string())
        }
    }
}

/// How long one check may take: its period, but never less than 5 s (a busy host or network
/// is not yet an unhealthy service).
fn check_limit(every: Duration) -> Duration {
    every.max(Duration::from_secs(5))
}

/// Closes a master that may be dead, without waiting on it for long: the next check connects
/// anew.
async fn drop_master(transport: Option<Transport>) {
    if let Some(t) = transport {
        let _ = tokio::time::timeout(Duration::from_secs(2), t.close()).await;
    }
}

impl Executor {
    /// Starts polling the main runbook's guards (none: nothing to do).
    pub(super) fn start_guards(&mut self, vars: &Vars) {
        // A rehearsal's are in place already (scripted). Checked before the runbook is
        // copied: a walk of a runbook without guards copies nothing.
        if self.plan.main.runbook.guards.is_empty() || self.rails.guards.is_some() {
            return;
        }
        // A guard on a fleet role is polled on every host of it, each on its own session with
        // its own count: any host failing `failures` times in a row trips it, naming the host.
        let runbook = self.plan.main.runbook.clone();
        let polls = runbook
            .guards
            .iter()
            .flat_map(|g: &Guard| {
                let label = self.plan.host(runbook.id(), runbook.guard_target(g));
                let (mut env, _) = vars.env_for(&g.run.value, &[]);
                env.retain(|(k, _)| !k.is_empty());
                self.plan
                    .members(&label)
                    .into_iter()
                    .map(|host| {
                        let binding = self.plan.bindings.get(&host).cloned().unwrap_or(Binding::Local);
                        Poll {
                            id: g.id.value.clone(),
                            host,
                            binding,
                            spec: CommandSpec {
                                command: g.run.value.clone(),
                                env: env.clone(),
                                timeout: Some(check_limit(g.every())),
                                // A guard's check is nobody's step (a rehearsal's guards are scripted).
                                step: format!("guard:{}", g.id.value),
                                attempt: 1,
                            },
                            every: g.every(),
                            failures: g.failures(),
                            goto: g.goto.value.clone(),
                            masker: vars.masker(),
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        self.rails.guards = Some(Guards::start(polls, self.ssh.clone()));
    }

    /// Stops them: the walk ended (the cleanup is not guarded). What they said before is
    /// recorded first.
    pub(super) fn stop_guards(&mut self) -> Result<(), Error> {
        if let Some(guards) = self.rails.guards.take() {
            let mut rx = guards_rx_and_stop(guards);
            while let Ok(event) = rx.try_recv() {
                self.emit(event)?;
            }
        }
        self.rails.trip = None;
        Ok(())
    }

    /// Records what the guards said since the last look; a trip is kept for the walk.
    pub(super) fn guard_news(&mut self) -> Result<bool, Error> {
        let mut tripped = false;
        if let Some(guards) = &self.rails.guards {
            guards.catch_up();
        }
        loop {
            let Some(guards) = self.rails.guards.as_mut() else {
                return Ok(tripped);
            };
            let Ok(event) = guards.rx.try_recv() else {
                return Ok(tripped);
            };
            self.take_guard_event(event.clone())?;
            tripped |= matches!(&event, Event::Guard(g) if g.change == GuardChange::Tripped);
        }
    }

    /// Records one guard event; a trip is kept, a recovery before the walk acted on the trip
    /// leaves it standing (the walk still diverts: a rollback is never undone by a flap).
    pub(super) fn take_guard_event(&mut self, event: Event) -> Result<(), Error> {
        if let Event::Guard(g) = &event
            && g.change == GuardChange::Tripped
            && self.rails.trip.is_none()
            && !self.rails.diverted
        {
            self.rails.trip = Some(Trip {
                guard: g.guard.clone(),
                goto: g.goto.clone(),
            });
        }
        self.emit(event)
    }

    /// The next guard event while a command runs (never, without guards).
    pub(super) async fn next_guard_event(rx: &mut Option<UnboundedReceiver<Event>>) -> Option<Event> {
        match rx {
            Some(rx) => rx.recv().await,
            None => std::future::pending().await,
        }
    }

    /// Lends the guards' receiver to a command's loop (the loop borrows `self` otherwise).
    pub(super) fn lend_guard_rx(&mut self) -> Option<UnboundedReceiver<Event>> {
        let guards = self.rails.guards.as_mut()?;
        let (_, empty) = tokio::sync::mpsc::unbounded_channel();
        Some(std::mem::replace(&mut guards.rx, empty))
    }

    pub(super) fn return_guard_rx(&mut self, rx: Option<UnboundedReceiver<Event>>) {
        if let (Some(guards), Some(rx)) = (self.rails.guards.as_mut(), rx) {
            guards.rx = rx;
        }
    }

    /// Unattended, a pending trip diverts the walk now: where to go.
    pub(super) fn divert_unattended(&mut self) -> Option<String> {
        if self.guards_ask() {
            return None;
        }
        let trip = self.rails.trip.take()?;
        self.rails.diverted = true;
        Some(trip.goto)
    }

    /// At a step boundary of the main walk, before presenting `next`: a pending trip diverts
    /// (unattended) or is offered, preselected (interactively). `Some(step)`: go there instead.
    pub(super) fn guard_boundary(&mut self, next: &str) -> Result<Option<String>, Error> {
        self.guard_news()?;
        if let Some(goto) = self.divert_unattended() {
            return Ok(Some(goto).filter(|g| g != next));
        }
        let Some(trip) = self.rails.trip.take() else {
            return Ok(None);
        };
        self.rails.diverted = true;
        if trip.goto == next {
            return Ok(None);
        }
        let labels = [
            (format!("Divert to `{}`", trip.goto), trip.goto.clone()),
            (format!("Go on with `{next}`"), next.to_string()),
        ];
        let question = format!("guard `{}` tripped", trip.guard);
        let choice = match &self.rails.asked {
            // A rehearsal: the case's answer (unlisted: the preselected divert).
            Some(asked) => Some(if asked.get(&trip.guard).copied().unwrap_or(true) {
                0
            } else {
                1
            }),
            None => self.operator.choose(next, &labels, Some(0), true)?,
        };
        let divert = choice == Some(0);
        self.answered(
            next,
            question,
            if divert {
                labels[0].0.clone()
            } else {
                labels[1].0.clone()
            },
        )?;
        Ok(divert.then_some(trip.goto))
    }

    /// A host's command stopped because a guard tripped: recorded as a timeout, naming it.
    pub(super) fn guard_stopped(
        &self,
        judged: (StepOutcome, Option<i32>, Option<String>),
    ) -> (StepOutcome, Option<i32>, Option<String>) {
        match (&self.rails.trip, judged.0) {
            (Some(trip), StepOutcome::Cancelled) if !self.guards_ask() => (
                StepOutcome::TimedOut,
                None,
                Some(format!(
                    "stopped: guard `{}` tripped, the run diverts to `{}`",
                    trip.guard, trip.goto
                )),
            ),
            _ => judged,
        }
    }

    /// Unattended, a guard tripped and the walk has not diverted yet (news read first).
    pub(super) fn trip_pending(&mut self) -> Result<bool, Error> {
        self.guard_news()?;
        Ok(self.rails.trip.is_some() && !self.guards_ask())
    }

    /// A trip is offered at the next boundary (an operator at a terminal, or a rehearsal of
    /// one), rather than stopping the running step and diverting at once.
    pub(super) fn guards_ask(&self) -> bool {
        self.operator.is_interactive() || self.rails.asked.is_some()
    }

    /// The walk enters step `id` (`CALL-STEP/STEP` in a sub-run): a rehearsal's stubbed guards
    /// may start or stop failing here.
    pub(super) fn guard_entering(&self, id: &str) {
        if let Some(Guards {
            poller: Poller::Scripted(script),
            ..
        }) = &self.rails.guards
        {
            script.entered(id);
        }
    }

    /// The index of `goto` in the main runbook (validated: it exists).
    pub(super) fn divert_to(
        &mut self,
        runbook: &crate::book::runbook::Runbook,
        goto: &str,
    ) -> Result<usize, Error> {
        runbook
            .step_index(goto)
            .ok_or_else(|| Error::runtime(format!("a guard goes to `{goto}`, no step of `{}`", runbook.id())))
    }
}

fn guards_rx_and_stop(mut guards: Guards) -> UnboundedReceiver<Event> {
    let (_, empty) = tokio::sync::mpsc::unbounded_channel();
    let rx = std::mem::replace(&mut guards.rx, empty);
    guards.stop();
    rx
}
