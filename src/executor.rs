//! Walks a runbook's graph one step at a time: asks the operator (or the answers given in
//! advance), runs commands over their transport, follows `next`, `on_failure` and decisions,
//! and emits an event for everything. It prints nothing itself.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::events::StepOutcome;
use crate::events::{Event, Mode, OutputRecord, RunOutcome, Stream, Verdict};
use crate::inventory::Binding;
use crate::mask::Masker;
use crate::plan::Plan;
use crate::prompt::{AfterFailure, Before, Operator, Report};
use crate::runbook::{ChooseOption, Confirm, Outcome, Runbook, Step, StepKind};
use crate::sink::Sink;
use crate::transport::{Chunk, CommandSpec, Ending, SshOptions, Transport};
use crate::vars::Vars;

/// How many times one step may be entered before the run is stopped as a loop.
const MAX_VISITS: usize = 100;
/// How much of a step's stdout and stderr is kept in memory for `expect` and `capture`.
const KEEP_BYTES: usize = 1024 * 1024;

/// Everything a walk needs, shared by the main run and its sub-runs.
pub struct Executor {
    pub plan: Plan,
    pub mode: Mode,
    pub operator: Operator,
    pub sink: Sink,
    /// Connected transports by host label.
    pub transports: HashMap<String, Transport>,
    /// When the RTO clock started, as an `Instant` (earlier than launch with `--since`).
    pub launched: Instant,
    pub since_offset: Duration,
    pub rto: Duration,
    pub over_target: Vec<(String, Duration, Duration)>,
    /// To reconnect after a lost connection.
    pub ssh: SshOptions,
    /// Attempts so far, by step id (a resumed run starts from the trail's counts).
    pub attempts: HashMap<String, u32>,
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

    fn failed(message: impl Into<String>) -> End {
        End {
            outcome: RunOutcome::Ended(Outcome::Failed),
            message: Some(message.into()),
        }
    }
}

/// Where a run begins: fresh (at `--start-at` or the first step), or where a crashed one stopped.
#[derive(Debug, Clone)]
pub enum Start {
    Fresh(Option<String>),
    Resume(Continue),
}

/// Where a resumed run goes on, rebuilt from its audit trail (`resume.rs`).
#[derive(Debug, Clone)]
pub enum Continue {
    /// Present this step again: nothing of it had started.
    Step(String),
    /// This step started and never finished: its outcome is unknown.
    Unknown {
        step: String,
        started: String,
        host: String,
    },
    /// This step failed: decide what next (unattended: follow `on_failure`).
    AfterFailure(String),
    /// The walk had ended: run what remains of the cleanup, then seal.
    Cleanup { end: End, done: Vec<String> },
}

/// Where to go after a step.
enum Next {
    Success,
    Failure,
    Goto(String),
    Stop(End),
}

/// One attempt of a command.
struct Attempt {
    outcome: StepOutcome,
    /// The variable set from stdout, when the step has `capture` and succeeded: name, value, secret.
    capture: Option<(String, String, bool)>,
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
    pub fn elapsed(&self) -> Duration {
        self.launched.elapsed() + self.since_offset
    }

    fn emit(&mut self, event: Event) -> Result<(), Error> {
        self.sink.emit(&event)
    }

    /// Walks the main runbook (fresh or resumed), then its cleanup, and seals the trail.
    pub async fn run(&mut self, vars: &mut Vars, start: Start) -> Result<End, Error> {
        let runbook = self.plan.main.runbook.clone();
        let (walked, cleaned) = match start {
            Start::Fresh(start_at) => (
                self.walk(&runbook, vars, "", start_at.as_deref(), None).await,
                Vec::new(),
            ),
            Start::Resume(Continue::Cleanup { end, done }) => (Ok(end), done),
            Start::Resume(resume) => (
                self.walk(&runbook, vars, "", None, Some(resume)).await,
                Vec::new(),
            ),
        };
        let end = match walked {
            Ok(end) => end,
            Err(Error::Exit(crate::error::exit::INTERRUPTED)) => End {
                outcome: RunOutcome::Interrupted,
                message: Some("interrupted by Ctrl-C".into()),
            },
            Err(e) => return Err(e),
        };
        if cleaned.is_empty() {
            self.emit(Event::WalkEnded {
                outcome: end.outcome,
                message: end.message.clone(),
            })?;
        }
        self.cleanup(&runbook, vars, &cleaned).await?;
        let elapsed = self.elapsed();
        let verdict = (self.mode == Mode::Drill).then(|| verdict(&end, elapsed, self.rto));
        self.emit(Event::RunFinished {
            outcome: end.outcome,
            message: end.message.clone(),
            elapsed,
            rto: self.rto,
            verdict,
            over_target: self.over_target.clone(),
        })?;
        Ok(end)
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
                visits[index] += 1;
                if visits[index] > MAX_VISITS {
                    return Ok(End::failed(format!(
                        "step `{}` was entered {MAX_VISITS} times; stopping what looks like an endless loop",
                        step.id()
                    )));
                }
                let next = match resume.take() {
                    Some(Continue::AfterFailure(_)) => self.after_failure(step.id(), step)?,
                    Some(Continue::Unknown { started, host, .. }) => {
                        match self.unknown(step, &started, &host)? {
                            Some(next) => next,
                            None => self.step(&place, index, vars).await?,
                        }
                    }
                    _ => self.step(&place, index, vars).await?,
                };
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
                };
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
        let runbook = place.runbook;
        let step = &runbook.steps[index];
        let id = place.id(step);
        let host = self.host_of(runbook, step);
        let kind = step
            .kind()
            .ok_or_else(|| Error::runtime(format!("step `{id}` has no single kind")))?;
        let body = match kind {
            StepKind::Run(cmd) => Some(cmd.to_string()),
            StepKind::Manual(text) => Some(vars.interpolate(text)),
            StepKind::Call(target) => Some(format!("runs the runbook `{target}`")),
            StepKind::Choose(_) | StepKind::End(_) => None,
        };
        self.emit(Event::StepPresented {
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
            vars: vars.masked(),
            target: step.rto.as_ref().and_then(|d| d.get()),
        })?;
        match kind {
            StepKind::End(outcome) => Ok(Next::Stop(End {
                outcome: RunOutcome::Ended(outcome),
                message: step.message.as_deref().map(|m| vars.interpolate(m)),
            })),
            StepKind::Choose(options) => self.decide(&id, options, vars),
            StepKind::Manual(_) => self.manual(&id, step, &host, vars),
            StepKind::Call(target) => self.call(&id, step, &host, target, vars).await,
            StepKind::Run(command) => self.run_step(&id, step, &host, command, vars).await,
        }
    }

    /// A step that started before a crash and never finished: re-run it, mark it, or abort.
    /// `None`: re-run it. Unattended, pre-flight has made sure it is idempotent.
    fn unknown(&mut self, step: &Step, started: &str, host: &str) -> Result<Option<Next>, Error> {
        let id = step.id().to_string();
        let question =
            format!("step `{id}` started at {started} on {host} and never finished: its outcome is unknown");
        let choice = self.operator.unknown_step(&question, step.idempotent)?;
        let answer = match choice {
            Some(crate::prompt::Report::Done) => "marked done",
            Some(crate::prompt::Report::Failed) => "marked failed",
            Some(crate::prompt::Report::Skip) => "re-run",
            None => "abort",
        };
        self.emit(Event::Answer {
            step: Some(id.clone()),
            question,
            answer: answer.into(),
        })?;
        let reason = Some("unknown after a crash; marked by the operator".to_string());
        Ok(match choice {
            Some(crate::prompt::Report::Skip) => None,
            Some(crate::prompt::Report::Done) => {
                self.finish(
                    &id,
                    host,
                    StepOutcome::MarkedDone,
                    None,
                    0,
                    Duration::ZERO,
                    None,
                    reason,
                    None,
                )?;
                Some(Next::Success)
            }
            Some(crate::prompt::Report::Failed) => {
                self.finish(
                    &id,
                    host,
                    StepOutcome::Failed,
                    None,
                    0,
                    Duration::ZERO,
                    None,
                    reason,
                    None,
                )?;
                Some(self.after_failure(&id, step)?)
            }
            None => Some(Next::Stop(End::aborted(format!(
                "aborted by the operator at the unknown step `{id}`"
            )))),
        })
    }

    fn decide(&mut self, id: &str, options: &[ChooseOption], vars: &Vars) -> Result<Next, Error> {
        let labels: Vec<(String, String)> = options
            .iter()
            .map(|o| (vars.interpolate(&o.label), o.goto.value.clone()))
            .collect();
        let holds = |o: &ChooseOption| match &o.when {
            None => false,
            Some(when) => {
                let value = vars.get(&when.var.value).map(|v| v.text.as_str()).unwrap_or("");
                match (&when.equals, &when.matches) {
                    (Some(equals), _) => value == equals,
                    (None, Some(re)) => regex::Regex::new(&re.value).is_ok_and(|re| re.is_match(value)),
                    (None, None) => false,
                }
            }
        };
        let preselected = options
            .iter()
            .position(holds)
            .or_else(|| options.iter().position(|o| o.when.is_none()));
        let Some(choice) = self.operator.choose(id, &labels, preselected)? else {
            return Ok(Next::Stop(End::failed(format!(
                "decision `{id}`: no option applies and no answer was given (--answer {id}=LABEL)"
            ))));
        };
        let (label, goto) = labels[choice].clone();
        self.emit(Event::Decision {
            step: id.to_string(),
            label,
            goto: goto.clone(),
        })?;
        Ok(Next::Goto(goto))
    }

    /// Asks for the step's confirmation, if it has one. `false`: not confirmed.
    fn confirmed(&mut self, id: &str, step: &Step, vars: &Vars) -> Result<bool, Error> {
        match step.confirmation() {
            None => Ok(true),
            Some(Confirm::YesNo(_)) => {
                let question = format!("Go ahead with `{id}`?");
                let yes = self.operator.confirm(&question)?;
                self.emit(Event::Answer {
                    step: Some(id.into()),
                    question,
                    answer: yes_no(yes).into(),
                })?;
                Ok(yes)
            }
            Some(Confirm::Phrase(phrase)) => {
                let expected = vars.interpolate_clear(phrase);
                for _ in 0..3 {
                    let typed = self.operator.type_phrase(id, &expected)?;
                    let ok = typed.as_deref() == Some(expected.as_str());
                    let shown = match &typed {
                        Some(t) if ok => vars.interpolate(phrase),
                        Some(t) if t.is_empty() => "(cancelled)".to_string(),
                        Some(_) => "(wrong phrase)".to_string(),
                        None => "(no answer)".to_string(),
                    };
                    self.emit(Event::Answer {
                        step: Some(id.into()),
                        question: format!("type `{}` to go ahead", vars.interpolate(phrase)),
                        answer: shown,
                    })?;
                    if ok {
                        return Ok(true);
                    }
                    if !self.operator.is_interactive() || typed.as_deref().is_some_and(str::is_empty) {
                        return Ok(false);
                    }
                    self.sink
                        .ui
                        .say("    the phrase does not match; try again, or leave it empty to cancel");
                }
                Ok(false)
            }
        }
    }

    fn manual(&mut self, id: &str, step: &Step, host: &str, vars: &Vars) -> Result<Next, Error> {
        if !self.confirmed(id, step, vars)? {
            return self.not_confirmed(id, step);
        }
        self.report_by_hand(id, step, host, None)
    }

    /// A manual step, or a command the operator ran in their own shell: record what they report.
    fn report_by_hand(
        &mut self,
        id: &str,
        step: &Step,
        host: &str,
        command: Option<String>,
    ) -> Result<Next, Error> {
        let started = Instant::now();
        let target = step.rto.as_ref().and_then(|d| d.get());
        self.emit(Event::StepStarted {
            step: id.into(),
            host: host.into(),
            command: command.unwrap_or_else(|| "(manual)".into()),
            attempt: 1,
            target,
            timeout: None,
            spinner: false,
        })?;
        let report = self.operator.report(id)?;
        let answer = match report {
            Some(Report::Done) => "done",
            Some(Report::Skip) => "skip",
            Some(Report::Failed) => "failed",
            None => "abort",
        };
        self.emit(Event::Answer {
            step: Some(id.into()),
            question: "how did it go?".into(),
            answer: answer.into(),
        })?;
        let outcome = match report {
            Some(Report::Done) => StepOutcome::Ok,
            Some(Report::Skip) => StepOutcome::Skipped,
            Some(Report::Failed) | None => StepOutcome::Failed,
        };
        self.finish(id, host, outcome, None, 1, started.elapsed(), target, None, None)?;
        Ok(match report {
            None => Next::Stop(End::aborted(format!("aborted by the operator at `{id}`"))),
            Some(Report::Failed) => self.after_failure(id, step)?,
            _ => Next::Success,
        })
    }

    fn not_confirmed(&mut self, id: &str, step: &Step) -> Result<Next, Error> {
        self.finish(
            id,
            "-",
            StepOutcome::Skipped,
            None,
            0,
            Duration::ZERO,
            None,
            Some("not confirmed".into()),
            None,
        )?;
        if self.operator.is_interactive() {
            self.after_failure(id, step)
        } else {
            Ok(Next::Stop(End::aborted(format!(
                "step `{id}` needs a typed confirmation and the answer given does not match"
            ))))
        }
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
        if let Some(t) = target.filter(|t| duration > *t) {
            self.over_target.push((id.to_string(), duration, t));
        }
        self.emit(Event::StepFinished {
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
        })
    }

    /// What to do after a failure: the operator decides, or unattended, `on_failure`.
    fn after_failure(&mut self, id: &str, step: &Step) -> Result<Next, Error> {
        if !self.operator.is_interactive() {
            return Ok(Next::Failure);
        }
        let ids: Vec<String> = self
            .plan
            .main
            .runbook
            .steps
            .iter()
            .map(|s| s.id().to_string())
            .collect();
        loop {
            let choice = self
                .operator
                .after_failure(step.on_failure.as_ref().map(|s| s.value.as_str()), &ids)?;
            let answer = format!("{choice:?}").to_lowercase();
            self.emit(Event::Answer {
                step: Some(id.into()),
                question: "after failure".into(),
                answer,
            })?;
            return Ok(match choice {
                AfterFailure::Retry => Next::Goto(step.id().to_string()),
                AfterFailure::Skip | AfterFailure::MarkDone => Next::Success,
                AfterFailure::Goto(target) => Next::Goto(target),
                AfterFailure::FollowOnFailure => Next::Failure,
                AfterFailure::Note(text) => {
                    self.emit(Event::Note {
                        step: Some(id.into()),
                        text,
                    })?;
                    continue;
                }
                AfterFailure::Abort => Next::Stop(End::aborted(format!(
                    "aborted by the operator after `{id}` failed"
                ))),
            });
        }
    }

    async fn call(
        &mut self,
        id: &str,
        step: &Step,
        host: &str,
        target: &str,
        vars: &Vars,
    ) -> Result<Next, Error> {
        if !self.confirmed(id, step, vars)? {
            return self.not_confirmed(id, step);
        }
        let called = self
            .plan
            .called
            .get(target)
            .map(|l| l.runbook.clone())
            .ok_or_else(|| Error::runtime(format!("step `{id}` calls `{target}`, which was not loaded")))?;
        let mut sub_vars = self.plan.sub_run_vars(&called, step, vars)?;
        let started = Instant::now();
        let rto = step.rto.as_ref().and_then(|d| d.get());
        self.emit(Event::StepStarted {
            step: id.into(),
            host: host.into(),
            command: format!("call {target}"),
            attempt: 1,
            target: rto,
            timeout: None,
            spinner: false,
        })?;
        let end = self
            .walk(&called, &mut sub_vars, &format!("{id}/"), None, None)
            .await?;
        let outcome = if end.outcome == RunOutcome::Ended(Outcome::Resolved) {
            StepOutcome::Ok
        } else {
            StepOutcome::Failed
        };
        let reason = Some(format!("sub-run ended {}", end.outcome.as_str()));
        self.finish(id, host, outcome, None, 1, started.elapsed(), rto, reason, None)?;
        match end.outcome {
            RunOutcome::Ended(Outcome::Resolved) => Ok(Next::Success),
            RunOutcome::Aborted | RunOutcome::Interrupted | RunOutcome::Lost => Ok(Next::Stop(end)),
            RunOutcome::Ended(_) => self.after_failure(id, step),
        }
    }

    async fn run_step(
        &mut self,
        id: &str,
        step: &Step,
        host: &str,
        command: &str,
        vars: &mut Vars,
    ) -> Result<Next, Error> {
        let mut command = command.to_string();
        loop {
            match self.operator.before_run(&command)? {
                Before::Run => break,
                Before::Skip => {
                    self.emit(Event::Answer {
                        step: Some(id.into()),
                        question: "before running".into(),
                        answer: "skip".into(),
                    })?;
                    self.finish(
                        id,
                        host,
                        StepOutcome::Skipped,
                        None,
                        0,
                        Duration::ZERO,
                        None,
                        None,
                        None,
                    )?;
                    return Ok(Next::Success);
                }
                Before::Edit(edited) => {
                    let masker = Masker::new(vars.secrets());
                    self.emit(Event::Edit {
                        step: id.into(),
                        before: masker.mask_str(&command),
                        after: masker.mask_str(&edited),
                    })?;
                    command = edited;
                }
                Before::ByHand => {
                    if !self.confirmed(id, step, vars)? {
                        return self.not_confirmed(id, step);
                    }
                    self.sink.ui.say(&by_hand_script(vars, &command));
                    return self.report_by_hand(id, step, host, Some(format!("(by hand) {command}")));
                }
                Before::Note(text) => self.emit(Event::Note {
                    step: Some(id.into()),
                    text,
                })?,
                Before::Abort => {
                    self.emit(Event::Answer {
                        step: Some(id.into()),
                        question: "before running".into(),
                        answer: "abort".into(),
                    })?;
                    return Ok(Next::Stop(End::aborted(format!(
                        "aborted by the operator at `{id}`"
                    ))));
                }
            }
        }
        if !self.confirmed(id, step, vars)? {
            return self.not_confirmed(id, step);
        }
        let attempts = step.retry.as_ref().map(|r| r.attempts.max(1)).unwrap_or(1);
        let delay = step
            .retry
            .as_ref()
            .and_then(|r| r.delay.as_ref())
            .and_then(|d| d.get())
            .unwrap_or_default();
        let target = step.rto.as_ref().and_then(|d| d.get());
        let started = Instant::now();
        for attempt in 1..=attempts {
            let result = self.attempt(id, step, host, &command, vars).await?;
            let last =
                attempt == attempts || matches!(result.outcome, StepOutcome::Cancelled | StepOutcome::Lost);
            if result.outcome == StepOutcome::Ok || last {
                // The step's time is the whole of its attempts: that is what the RTO pays for.
                let duration = started.elapsed();
                if result.outcome == StepOutcome::Ok {
                    if let Some((name, text, secret)) = result.capture {
                        vars.set(&name, text, secret);
                    }
                    if let Some(t) = target.filter(|t| duration > *t) {
                        self.over_target.push((id.to_string(), duration, t));
                    }
                    return Ok(Next::Success);
                }
                if let Some(t) = target.filter(|t| duration > *t) {
                    self.over_target.push((id.to_string(), duration, t));
                }
                return match result.outcome {
                    StepOutcome::Lost if !self.operator.is_interactive() => Ok(Next::Stop(End {
                        outcome: RunOutcome::Lost,
                        message: Some(format!(
                            "the connection to {host} was lost during `{id}`: its outcome is unknown; check the host, then resume"
                        )),
                    })),
                    StepOutcome::Cancelled if !self.operator.is_interactive() => Ok(Next::Stop(End {
                        outcome: RunOutcome::Interrupted,
                        message: Some(format!("interrupted by Ctrl-C during `{id}`")),
                    })),
                    _ => self.after_failure(id, step),
                };
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
        unreachable!("the last attempt always returns")
    }

    /// Runs the command once, streaming its output, and judges it against `expect`.
    async fn attempt(
        &mut self,
        id: &str,
        step: &Step,
        host: &str,
        command: &str,
        vars: &Vars,
    ) -> Result<Attempt, Error> {
        // Numbered across retries, revisits and resumes: each attempt has its own output file.
        let attempt = {
            let count = self.attempts.entry(id.to_string()).or_insert(0);
            *count += 1;
            *count
        };
        // Lent out of the map while the step runs, so events can be emitted meanwhile.
        let transport = self
            .transports
            .remove(host)
            .ok_or_else(|| Error::runtime(format!("no connection to `{host}` (step `{id}`)")))?;
        let result = self
            .attempt_on(&transport, id, step, host, command, vars, attempt)
            .await;
        let lost = matches!(&result, Ok(a) if a.outcome == StepOutcome::Lost);
        let transport = if lost {
            self.reconnect(host, transport).await?
        } else {
            transport
        };
        self.transports.insert(host.to_string(), transport);
        result
    }

    /// After a lost connection: a fresh one when the host answers again, so the operator's
    /// retry (or the cleanup) has somewhere to run. The old one is kept when it cannot be had.
    async fn reconnect(&mut self, host: &str, old: Transport) -> Result<Transport, Error> {
        if old.is_alive().await {
            return Ok(old);
        }
        let Some(Binding::Ssh { dest, .. }) = self.plan.bindings.get(host).cloned() else {
            return Ok(old);
        };
        match Transport::connect(&dest, &self.ssh).await {
            Ok(fresh) => {
                old.close().await;
                self.emit(Event::TargetConnected {
                    role: String::new(),
                    host: host.to_string(),
                    host_key_added: None,
                    reconnected: true,
                })?;
                Ok(fresh)
            }
            Err(e) => {
                self.sink
                    .ui
                    .say(&format!("    cannot reconnect to {host}: {}", e.reason));
                Ok(old)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt_on(
        &mut self,
        transport: &Transport,
        id: &str,
        step: &Step,
        host: &str,
        command: &str,
        vars: &Vars,
        attempt: u32,
    ) -> Result<Attempt, Error> {
        let mut env = vars.env();
        env.retain(|(k, _)| !k.is_empty());
        let timeout = step.timeout.as_ref().and_then(|d| d.get());
        let target = step.rto.as_ref().and_then(|d| d.get());
        let spec = CommandSpec {
            command: command.to_string(),
            env,
            timeout,
        };
        let mut masker = Masker::new(vars.secrets());
        let mut recorder = match self.sink.audit.as_ref() {
            Some(audit) => Some(audit.output(&id.replace('/', "__"), attempt)?.in_background()),
            None => None,
        };
        self.emit(Event::StepStarted {
            step: id.into(),
            host: host.into(),
            command: masker.mask_str(command),
            attempt,
            target,
            timeout,
            spinner: true,
        })?;
        let started = Instant::now();
        let (tx, mut rx) = mpsc::channel::<Chunk>(64);
        let cancel = CancellationToken::new();
        let run = transport.run(&spec, tx, cancel.clone());
        tokio::pin!(run);
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
        let mut ui = std::mem::take(&mut self.sink.ui);
        let mut show =
            |stream: Stream, bytes: Vec<u8>, recorder: &mut Option<crate::audit::BackgroundRecorder>| {
                if bytes.is_empty() {
                    return;
                }
                let event = Event::Output { stream, bytes };
                ui.handle(&event);
                if let (Some(r), Event::Output { bytes, .. }) = (recorder.as_mut(), event) {
                    r.write(bytes);
                }
            };
        let ending = loop {
            tokio::select! {
                ending = &mut run => {
                    while let Ok(chunk) = rx.try_recv() {
                        let (stream, bytes) = split(chunk, &mut stdout, &mut stderr);
                        show(stream, masker.push_owned(bytes), &mut recorder);
                    }
                    break ending;
                }
                Some(chunk) = rx.recv() => {
                    let (stream, bytes) = split(chunk, &mut stdout, &mut stderr);
                    show(stream, masker.push_owned(bytes), &mut recorder);
                }
                _ = &mut ctrl_c, if !cancel.is_cancelled() => {
                    cancel.cancel();
                }
            }
        };
        show(Stream::Stdout, masker.finish(), &mut recorder);
        self.sink.ui = ui;
        let duration = started.elapsed();
        let output = match recorder {
            Some(r) => {
                let s = r.finish()?;
                Some(OutputRecord {
                    path: s.path,
                    size: s.size,
                    sha256: s.sha256,
                    tail: s.tail,
                })
            }
            None => None,
        };
        let ending = ending.map_err(|e| Error::runtime(format!("step `{id}` on {host}: {e}")))?;
        let (outcome, exit, reason) = judge(step, &ending, &stdout, &stderr);
        let capture = step
            .capture
            .as_ref()
            .filter(|_| outcome == StepOutcome::Ok)
            .map(|name| {
                let text = String::from_utf8_lossy(&stdout).trim().to_string();
                (name.value.clone(), text, vars.mentions_secret(command))
            });
        self.emit(Event::StepFinished {
            step: id.into(),
            host: host.into(),
            outcome,
            exit,
            attempt,
            duration,
            target,
            reason,
            output,
            capture: capture.as_ref().map(|(name, text, secret)| {
                (
                    name.clone(),
                    if *secret {
                        crate::vars::MASK.to_string()
                    } else {
                        text.clone()
                    },
                )
            }),
        })?;
        Ok(Attempt { outcome, capture })
    }

    /// Runs the cleanup steps in order, whatever happened; their failures are recorded, not fatal.
    async fn cleanup(&mut self, runbook: &Runbook, vars: &mut Vars, done: &[String]) -> Result<(), Error> {
        for (index, step) in runbook.cleanup.iter().enumerate() {
            let id = step.id().to_string();
            if done.contains(&id) {
                continue;
            }
            let host = self.host_of(runbook, step);
            self.emit(Event::StepPresented {
                step: id.clone(),
                position: index + 1,
                total: runbook.cleanup.len(),
                title: format!("cleanup: {}", vars.interpolate(&step.title)),
                kind: step.kind().map(|k| k.name()).unwrap_or("run"),
                host: host.clone(),
                notes: step.notes.as_deref().map(|n| vars.interpolate(n)),
                links: Vec::new(),
                body: step
                    .run
                    .as_ref()
                    .map(|r| r.value.clone())
                    .or_else(|| step.manual.as_ref().map(|m| vars.interpolate(&m.value))),
                vars: vars.masked(),
                target: step.rto.as_ref().and_then(|d| d.get()),
            })?;
            match step.kind() {
                Some(StepKind::Run(command)) => {
                    let command = command.to_string();
                    let attempts = step.retry.as_ref().map(|r| r.attempts.max(1)).unwrap_or(1);
                    for _ in 1..=attempts {
                        let result = self.attempt(&id, step, &host, &command, vars).await?;
                        if result.outcome == StepOutcome::Ok || result.outcome == StepOutcome::Lost {
                            break;
                        }
                    }
                }
                Some(StepKind::Manual(_)) => {
                    let report = if self.operator.is_interactive() || self.operator_has_answer(&id) {
                        self.operator.report(&id)?
                    } else {
                        Some(Report::Skip)
                    };
                    let outcome = match report {
                        Some(Report::Done) => StepOutcome::Ok,
                        Some(Report::Skip) => StepOutcome::Skipped,
                        _ => StepOutcome::Failed,
                    };
                    self.finish(&id, &host, outcome, None, 1, Duration::ZERO, None, None, None)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn operator_has_answer(&self, id: &str) -> bool {
        matches!(&self.operator, Operator::Unattended(a) if a.get(id).is_some())
    }
}

fn split(chunk: Chunk, stdout: &mut Vec<u8>, stderr: &mut Vec<u8>) -> (Stream, Vec<u8>) {
    let (stream, bytes, keep) = match chunk {
        Chunk::Stdout(b) => (Stream::Stdout, b, stdout),
        Chunk::Stderr(b) => (Stream::Stderr, b, stderr),
    };
    let room = KEEP_BYTES.saturating_sub(keep.len());
    keep.extend_from_slice(&bytes[..bytes.len().min(room)]);
    (stream, bytes)
}

/// A step's outcome from how its command ended and what `expect` asks.
fn judge(
    step: &Step,
    ending: &Ending,
    stdout: &[u8],
    stderr: &[u8],
) -> (StepOutcome, Option<i32>, Option<String>) {
    let code = match ending {
        Ending::Exited(code) => *code,
        Ending::Signaled(sig) => return (StepOutcome::Failed, None, Some(format!("killed by signal {sig}"))),
        Ending::TimedOut => {
            let limit = step
                .timeout
                .as_ref()
                .and_then(|d| d.get())
                .map(crate::duration::format)
                .unwrap_or_default();
            return (
                StepOutcome::TimedOut,
                None,
                Some(format!("killed at its {limit} timeout")),
            );
        }
        Ending::Cancelled => return (StepOutcome::Cancelled, None, Some("stopped with Ctrl-C".into())),
        Ending::Lost(why) => {
            return (
                StepOutcome::Lost,
                None,
                Some(format!("connection lost: {why}; outcome unknown")),
            );
        }
    };
    let expect = step.expect.clone().unwrap_or_default();
    let exit_ok = match &expect.exit {
        Some(codes) => codes.accepts(code),
        None => code == 0,
    };
    if !exit_ok {
        return (
            StepOutcome::Failed,
            Some(code),
            Some("exit code not expected".into()),
        );
    }
    for (name, pattern, text) in [
        ("stdout", &expect.stdout, stdout),
        ("stderr", &expect.stderr, stderr),
    ] {
        if let Some(pattern) = pattern {
            // Without its trailing newline, so `^[0-9]+$` matches what `psql -tA` prints.
            let text = String::from_utf8_lossy(text);
            let text = text.trim_end_matches(['\n', '\r']);
            let matched = regex::Regex::new(&pattern.value).is_ok_and(|re| re.is_match(text));
            if !matched {
                return (
                    StepOutcome::Failed,
                    Some(code),
                    Some(format!("{name} does not match `{}`", pattern.value)),
                );
            }
        }
    }
    (StepOutcome::Ok, Some(code), None)
}

fn yes_no(yes: bool) -> &'static str {
    if yes { "yes" } else { "no" }
}

/// The exact command with its variables exported, for the operator's own shell. Secret values
/// are never printed: the script reads them without echo instead.
fn by_hand_script(vars: &Vars, command: &str) -> String {
    let mut out = String::from("    Run this in your shell, then report how it went:\n\n");
    for (name, value) in vars.iter() {
        if value.secret {
            out.push_str(&format!(
                "    printf '{name}: ' >&2; IFS= read -rs {name}; echo >&2; export {name}\n"
            ));
        } else {
            out.push_str(&format!(
                "    export {name}={}\n",
                crate::script::shell_quote(&value.text)
            ));
        }
    }
    for line in command.lines() {
        out.push_str(&format!("    {line}\n"));
    }
    out
}

/// PASS when the run ended resolved within the RTO; otherwise FAIL with the reason.
pub fn verdict(end: &End, elapsed: Duration, rto: Duration) -> Verdict {
    let took = crate::ui::fmt_secs(elapsed);
    let rto_text = crate::duration::format(rto);
    match end.outcome {
        RunOutcome::Ended(Outcome::Resolved) if elapsed <= rto => Verdict {
            pass: true,
            reason: format!("resolved in {took}, within the {rto_text} RTO"),
        },
        RunOutcome::Ended(Outcome::Resolved) => Verdict {
            pass: false,
            reason: format!(
                "resolved in {took}, over the {rto_text} RTO by {}",
                crate::ui::fmt_secs(elapsed - rto)
            ),
        },
        other => Verdict {
            pass: false,
            reason: format!("the run ended {} after {took}", other.as_str()),
        },
    }
}
