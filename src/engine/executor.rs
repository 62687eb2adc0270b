//! Walks a runbook's graph one step at a time: asks the operator (or the answers given in
//! advance), runs commands over their transport, follows `next`, `on_failure` and decisions,
//! and emits an event for everything. It prints nothing itself.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::book::runbook::{Outcome, Runbook, Step, StepKind};
use crate::error::Error;
use crate::events::{
    Deviation, DeviationKind, Event, Mode, OutputRecord, RunFinished, RunOutcome, StepFinished, StepOutcome,
    StepPresented,
};
use crate::listen::sink::Sink;
use crate::plan::Plan;
use crate::prompt::Operator;
use crate::transport::{SshOptions, Transport};
use crate::vars::Vars;

/// How many times one step may be entered before the run is stopped as a loop.
const MAX_VISITS: usize = 100;
/// How much of a step's stdout and stderr is kept in memory for `expect` and `capture`.
const KEEP_BYTES: usize = 1024 * 1024;

mod approving;
mod asking;
mod command;
pub(crate) mod guarding;
mod hosts;
mod judge;
mod output;
mod rails;
mod shell;
mod unverified;
pub(crate) use rails::{Rails, ResolvedWatch};
mod verdict;

pub(crate) use verdict::deviated;
mod progress;
pub(crate) use progress::FleetProgress;
pub use verdict::verdict;

/// Everything a walk needs, shared by the main run and its sub-runs.
pub(crate) struct Executor {
    /// The step whose approval was just denied or timed out: until one is granted, it is run
    /// neither by the tool nor by hand, skipped nor marked done (issue 24).
    pub unapproved: Option<String>,
    /// Shared: the walk reads its runbooks while it acts, and `runbook test` walks one plan
    /// many times.
    pub plan: std::sync::Arc<Plan>,
    pub mode: Mode,
    pub operator: Box<dyn Operator>,
    pub sink: Sink,
    /// Connected transports by host label.
    pub transports: HashMap<String, Transport>,
    /// When the RTO clock started, as an `Instant` (earlier than launch with `--since`).
    pub launched: Instant,
    pub since_offset: Duration,
    pub rto: Duration,
    /// To reconnect after a lost connection.
    pub ssh: SshOptions,
    /// Attempts so far, by step id (a resumed run starts from the trail's counts).
    pub attempts: HashMap<String, u32>,
    /// The signals received (`signals::listen`): a running command is stopped at once;
    /// unattended, a stop then ends the run `interrupted` at the next step boundary; a
    /// hangup ends it there, open.
    pub signals: tokio::sync::watch::Receiver<crate::signals::State>,
    /// Stops already acted on between steps.
    pub handled_stops: u64,
    /// The cleanup runs: a SIGTERM that ended the walk does not stop its commands.
    pub cleaning: bool,
    /// Steps that did not go as written, in order (a resumed run starts from the trail's).
    pub deviations: Vec<Deviation>,
    /// Masks what the operator types (notes, edits, commands run by hand) before it is
    /// recorded: the secrets of the step at hand, in every form (`Vars::masker`).
    pub typed: crate::mask::Masker,
    /// At most this many hosts of a fleet run a command at once (`--forks`).
    pub forks: usize,
    /// The two-person rule: where requests go, whose signatures count (design §15).
    pub approvals: crate::approval::Config,
    /// A resumed fleet step re-runs on these hosts only (step id, hosts): not on those that
    /// had succeeded.
    pub rerun: Option<(String, Vec<String>)>,
    /// `--no-shell` (or recorded so at the start of a resumed run): no shell at the prompts.
    pub no_shell: bool,
    /// The variables as the step at hand saw them when it was presented: what a shell opened
    /// at its prompts exports (never its secrets) and masks.
    pub shell_vars: Vars,
    /// The steps presented so far (ids as recorded; a resumed run starts from those the trail
    /// shows started): *Go to* marks them.
    pub presented: std::collections::HashSet<String>,
    /// What may stop or divert the walk from outside: a resolved alert, guards (design §20).
    pub rails: Rails,
}

/// How a walk ended.
#[derive(Debug, Clone)]
pub struct End {
    pub outcome: RunOutcome,
    pub message: Option<String>,
}

impl End {
    fn aborted(message: impl Into<String>) -> End {
        End {
            outcome: RunOutcome::Aborted,
            message: Some(message.into()),
        }
    }

    fn interrupted(message: impl Into<String>) -> End {
        End {
            outcome: RunOutcome::Interrupted,
            message: Some(message.into()),
        }
    }

    fn failed(message: impl Into<String>) -> End {
        End {
            outcome: RunOutcome::Ended(Outcome::Failed),
            message: Some(message.into()),
        }
    }
}

/// Where a run begins: fresh (at `--start-at` or the first step), or where a crashed one stopped.
#[derive(Debug, Clone)]
pub(crate) enum Start {
    Fresh(Option<String>),
    Resume(Continue),
}

/// Where a resumed run goes on, rebuilt from its audit trail (`resume.rs`).
#[derive(Debug, Clone)]
pub(crate) enum Continue {
    /// Present this step again: nothing of it had started.
    Step(String),
    /// This step started and never finished: its outcome is unknown.
    Unknown {
        step: String,
        started: String,
        host: String,
        /// Its remote process group, when the trail recorded one: it may still be running.
        pgid: Option<i32>,
        /// A fleet step: what each host got to (`host` is then the fleet's label).
        fleet: Option<FleetProgress>,
    },
    /// This step failed: decide what next (unattended: follow `on_failure`).
    AfterFailure(String),
    /// The walk had ended: run what remains of the cleanup, then seal.
    Cleanup {
        end: End,
        done: Vec<String>,
        /// A cleanup step started and never finished: unknown, as a step of the walk would be.
        cut: Option<CutOff>,
    },
}

/// A step whose start is recorded and whose end is not.
#[derive(Debug, Clone)]
pub(crate) struct CutOff {
    pub step: String,
    pub started: String,
    pub host: String,
    pub pgid: Option<i32>,
    pub fleet: Option<FleetProgress>,
}

/// Where to go after a step.
enum Next {
    Success,
    Failure,
    Goto(String),
    Stop(End),
    /// A fleet step again, on these of its hosts only (the ones that did not succeed).
    RetryHosts(Vec<String>),
}

/// A step's identity in events: `step` or `call-step/step` in a sub-run.
struct Place<'a> {
    runbook: &'a Runbook,
    prefix: String,
}

impl Place<'_> {
    fn id(&self, step: &Step) -> String {
        format!("{}{}", self.prefix, step.id())
    }
}

impl Executor {
    pub(crate) fn elapsed(&self) -> Duration {
        self.launched.elapsed() + self.since_offset
    }

    /// A stop signal not yet acted on, unattended (on a terminal, prompts deal with Ctrl-C);
    /// a SIGTERM or SIGQUIT, interactive or not: a shutdown waits for nobody.
    fn interrupted(&mut self) -> bool {
        (self.stop_pending() && !self.operator.is_interactive()) || crate::signals::terminated().is_some()
    }

    /// A stop signal (Ctrl-C, SIGTERM, SIGQUIT) not yet acted on; from now on it is.
    fn stop_pending(&mut self) -> bool {
        let stops = crate::signals::now().effective_stops();
        let pending = stops > self.handled_stops;
        self.handled_stops = stops;
        pending
    }

    /// The word for the stop signal: the SIGTERM or SIGQUIT that ends the run, else the
    /// latest one (`Ctrl-C`).
    fn stop_word(&self) -> &'static str {
        crate::signals::terminated()
            .or(crate::signals::now().last)
            .map_or("a signal", |s| s.word())
    }

    /// The terminal went away: the walk stops here, the trail stays open.
    fn hangup(&self) -> Result<(), Error> {
        if crate::signals::hung_up() {
            return Err(Error::Hangup(
                "the terminal hung up (SIGHUP): the run stopped, its trail is open".into(),
            ));
        }
        Ok(())
    }

    /// Sleeps, unless a stop signal comes first (on a terminal too: a retry wait is no
    /// prompt). True when stopped.
    async fn pause(&mut self, delay: Duration) -> Result<bool, Error> {
        let mut signals = self.signals.clone();
        let until = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return Ok(false),
                Ok(()) = signals.changed() => {
                    self.hangup()?;
                    if self.stop_pending() {
                        return Ok(true);
                    }
                }
            }
        }
    }

    fn emit(&mut self, event: Event) -> Result<(), Error> {
        self.sink.emit(&event)
    }

    /// Walks the main runbook (fresh or resumed), then its cleanup, and seals the trail.
    pub(crate) async fn run(&mut self, vars: &mut Vars, start: Start) -> Result<End, Error> {
        let plan = self.plan.clone();
        let runbook = &plan.main.runbook;
        // Resumed in the cleanup: the walk's end is recorded already.
        let in_cleanup = matches!(start, Start::Resume(Continue::Cleanup { .. }));
        if !in_cleanup {
            self.start_guards(vars);
        }
        let (walked, cleaned, cut) = match start {
            Start::Fresh(start_at) => (
                self.walk(runbook, vars, "", start_at.as_deref(), None).await,
                Vec::new(),
                None,
            ),
            Start::Resume(Continue::Cleanup { end, done, cut }) => (Ok(end), done, cut),
            Start::Resume(resume) => (
                self.walk(runbook, vars, "", None, Some(resume)).await,
                Vec::new(),
                None,
            ),
        };
        // The walk is over: the cleanup is not guarded.
        self.stop_guards()?;
        let end = match walked {
            Ok(end) => end,
            Err(Error::Aborted) => End::aborted("aborted by the operator (Ctrl-C at a prompt)"),
            Err(Error::Stopped(signal)) => {
                End::interrupted(format!("interrupted by {} at a prompt", signal.word()))
            }
            Err(Error::Hangup(reason)) => {
                self.emit(Event::Hangup {
                    reason: reason.clone(),
                })?;
                return Err(Error::Hangup(reason));
            }
            Err(Error::HandedOff(handoff)) => return Err(self.handed_off(handoff)),
            Err(e) => return Err(e),
        };
        if !in_cleanup {
            self.emit(Event::WalkEnded {
                outcome: end.outcome,
                message: end.message.clone(),
            })?;
        }
        if let Err(e) = self.cleanup(runbook, vars, &cleaned, cut).await {
            // The terminal went away during the cleanup: recorded, and the trail stays open
            // so that `resume` finishes the cleanup.
            if let Error::Hangup(reason) = &e {
                self.emit(Event::Hangup {
                    reason: reason.clone(),
                })?;
            }
            // Handed off at a manual cleanup step: the colleague's resume finishes the cleanup.
            if let Error::HandedOff(handoff) = e {
                return Err(self.handed_off(handoff));
            }
            return Err(e);
        }
        let elapsed = self.elapsed();
        let verdict = (self.mode == Mode::Drill).then(|| verdict(&end, elapsed, self.rto, &self.deviations));
        self.emit(Event::RunFinished(RunFinished {
            outcome: end.outcome,
            message: end.message.clone(),
            elapsed,
            rto: self.rto,
            verdict,
            over_target: Vec::new(),
            deviations: self.deviations.clone(),
        }))?;
        Ok(end)
    }

    /// The operator handed the run off (design §19): recorded (the note masked as every note
    /// is), and the trail stays open. Returns the error that ends this process's walk.
    fn handed_off(&mut self, handoff: crate::error::HandOff) -> Error {
        let note = self.typed.mask_str(&handoff.note);
        let event = Event::HandedOff {
            step: handoff.step.clone(),
            note: Some(note).filter(|n| !n.is_empty()),
        };
        match self.emit(event) {
            Ok(()) => Error::HandedOff(handoff),
            Err(e) => e,
        }
    }

    /// Records that a step did not go as written.
    fn deviate(&mut self, step: &str, kind: DeviationKind, detail: Option<String>) -> Result<(), Error> {
        let deviation = Deviation {
            step: step.to_string(),
            kind,
            detail,
        };
        self.deviations.push(deviation.clone());
        self.emit(Event::Deviation(deviation))
    }

    /// Walks one runbook's graph; a sub-run (`call`) is a walk with a prefix.
    fn walk<'a>(
        &'a mut self,
        runbook: &'a Runbook,
        vars: &'a mut Vars,
        prefix: &'a str,
        start_at: Option<&'a str>,
        mut resume: Option<Continue>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<End, Error>> + 'a>> {
        Box::pin(async move {
            let place = Place {
                runbook,
                prefix: prefix.to_string(),
            };
            let resume_at = match &resume {
                Some(
                    Continue::Step(id) | Continue::AfterFailure(id) | Continue::Unknown { step: id, .. },
                ) => Some(id.as_str()),
                _ => None,
            };
            let mut index = match resume_at.or(start_at) {
                Some(id) => runbook.step_index(id).ok_or_else(|| {
                    Error::usage(format!("--start-at: no step `{id}` in `{}`", runbook.id()))
                })?,
                None => 0,
            };
            let mut visits = vec![0usize; runbook.steps.len()];
            loop {
                let Some(step) = runbook.steps.get(index) else {
                    return Ok(End::failed(
                        "the run fell off the last step (the runbook does not validate)",
                    ));
                };
                self.hangup()?;
                if self.interrupted() {
                    return Ok(End::interrupted(format!(
                        "interrupted by {} before `{}`",
                        self.stop_word(),
                        place.id(step)
                    )));
                }
                match self.boundary(runbook, prefix, step.id())? {
                    rails::Boundary::Go => {}
                    rails::Boundary::End(end) => return Ok(end),
                    rails::Boundary::Divert(to) => {
                        index = to;
                        continue;
                    }
                }
                self.guard_entering(&place.id(step));
                visits[index] += 1;
                if visits[index] > MAX_VISITS {
                    return Ok(End::failed(format!(
                        "step `{}` was entered {MAX_VISITS} times; stopping what looks like an endless loop",
                        step.id()
                    )));
                }
                let deviations_before = self.deviations.len();
                let went = match resume.take() {
                    Some(Continue::AfterFailure(_)) => self.after_failure(step.id(), step),
                    Some(Continue::Unknown {
                        started,
                        host,
                        pgid,
                        fleet,
                        ..
                    }) => match self
                        .unknown(step, &started, &host, pgid, fleet.as_ref(), false)
                        .await
                    {
                        Ok(Some(next)) => Ok(next),
                        Ok(None) => self.step(&place, index, vars).await,
                        Err(e) => Err(e),
                    },
                    _ => self.step(&place, index, vars).await,
                };
                // A hand-off asked at any of this step's prompts is a hand-off at this step.
                let next = went.map_err(|e| e.handed_off_at(&place.id(step)))?;
                if !matches!(next, Next::Stop(_)) {
                    match self.after_step(runbook, prefix, &place.id(step))? {
                        rails::Boundary::Go => {}
                        rails::Boundary::End(end) => return Ok(end),
                        rails::Boundary::Divert(to) => {
                            index = to;
                            continue;
                        }
                    }
                }
                let target = match next {
                    Next::Stop(end) => return Ok(end),
                    Next::Success => match &step.next {
                        Some(next) => next.value.clone(),
                        None => match runbook.steps.get(index + 1) {
                            Some(s) => s.id().to_string(),
                            None => return Ok(End::failed("the run fell off the last step")),
                        },
                    },
                    Next::Failure => match &step.on_failure {
                        Some(target) => target.value.clone(),
                        None => return Ok(End::failed(format!("step `{}` failed", place.id(step)))),
                    },
                    Next::Goto(id) => id,
                    Next::RetryHosts(_) => step.id().to_string(),
                };
                let target = self.unverified_end(runbook, step, &target, &place, deviations_before)?;
                index = runbook.step_index(&target).ok_or_else(|| {
                    Error::runtime(format!("step `{target}` does not exist in `{}`", runbook.id()))
                })?;
            }
        })
    }

    fn host_of(&self, runbook: &Runbook, step: &Step) -> String {
        let role = runbook.step_target(step);
        self.plan.host(runbook.id(), role)
    }

    /// Presents one step, acts on it, and says where to go.
    async fn step(&mut self, place: &Place<'_>, index: usize, vars: &mut Vars) -> Result<Next, Error> {
        self.typed = vars.masker();
        self.shell_vars = vars.clone();
        let runbook = place.runbook;
        let step = &runbook.steps[index];
        let id = place.id(step);
        let host = self.host_of(runbook, step);
        let kind = step
            .kind()
            .ok_or_else(|| Error::runtime(format!("step `{id}` has no single kind")))?;
        let body = match kind {
            // A command may spell a secret out (a pasted token): shown masked like output.
            StepKind::Run(cmd) => Some(self.typed.mask_str(cmd)),
            StepKind::Manual(text) => Some(vars.interpolate(text)),
            StepKind::Call(target) => Some(format!("runs the runbook `{target}`")),
            StepKind::Choose(_) | StepKind::End(_) => None,
        };
        self.presented.insert(id.clone());
        self.emit(Event::StepPresented(StepPresented {
            step: id.clone(),
            position: index + 1,
            total: runbook.steps.len(),
            title: vars.interpolate(&step.title),
            kind: kind.name(),
            host: host.clone(),
            notes: step.notes.as_deref().map(|n| vars.interpolate(n)),
            links: step
                .links
                .iter()
                .map(|l| (l.title.clone(), l.url.clone()))
                .collect(),
            body,
            vars: vars.clone(),
            target: step.rto.as_ref().and_then(|d| d.get()),
            timeout: step.timeout.as_ref().and_then(|d| d.get()),
            retry: Some(step.attempts()),
            approve: matches!(kind, StepKind::Run(_))
                .then(|| self.approval_rule(step, &self.plan.members(&host)))
                .flatten()
                .map(|rule| (rule.quorum, rule.timeout)),
        }))?;
        // `--answer STEP=handoff`: the run stops at this step, as a hand-off at its prompt.
        if crate::plan::answers::hands_off(step, self.operator.answer(&id)) {
            return Err(Error::HandedOff(crate::error::HandOff {
                note: String::new(),
                step: Some(id),
            }));
        }
        match kind {
            StepKind::End(outcome) => Ok(Next::Stop(End {
                outcome: RunOutcome::Ended(outcome),
                message: step.message.as_deref().map(|m| vars.interpolate(m)),
            })),
            StepKind::Choose(options) => self.decide(&id, options, vars, place),
            StepKind::Manual(_) => self.manual(&id, step, &host, vars),
            StepKind::Call(target) => self.call(&id, step, &host, target, vars).await,
            StepKind::Run(command) => self.run_step(&id, step, &host, command, vars).await,
        }
    }

    /// Records the operator's `answer` to `question` at step `id`.
    fn answered(
        &mut self,
        id: &str,
        question: impl Into<String>,
        answer: impl Into<String>,
    ) -> Result<(), Error> {
        self.emit(Event::Answer {
            step: Some(id.into()),
            question: question.into(),
            answer: answer.into(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        id: &str,
        host: &str,
        outcome: StepOutcome,
        exit: Option<i32>,
        attempt: u32,
        duration: Duration,
        target: Option<Duration>,
        reason: Option<String>,
        output: Option<OutputRecord>,
    ) -> Result<(), Error> {
        self.emit(Event::StepFinished(StepFinished {
            step: id.into(),
            host: host.into(),
            outcome,
            exit,
            attempt,
            duration,
            target,
            reason,
            output,
            capture: None,
            fleet: None,
            visit: None,
        }))
    }
}
