//! The steps where the operator decides: decisions, confirmations, manual steps, what to do
//! after a failure, a step left unknown by a crash, and sub-runs (`call`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{End, Executor, Next, Place};
use crate::book::runbook::{ChooseOption, Confirm, Outcome, Step};
use crate::error::Error;
use crate::events::{DeviationKind, Event, RunOutcome, StepFinished, StepOutcome};
use crate::prompt::{AfterFailure, FailureChoices, GotoStep, Report};
use crate::vars::{MASK, Vars};

/// The `capture` of a step run by hand: the variable the operator's answer goes into.
pub(super) struct Capture<'a> {
    pub name: String,
    /// The step received a secret: what it printed (and so its capture) may hold it.
    pub secret: bool,
    pub vars: &'a mut Vars,
}

impl Executor {
    /// A step that started before a crash and never finished: re-run it, mark it, or abort.
    /// `None`: re-run it. Unattended, pre-flight has made sure it is idempotent. In the
    /// `cleanup`, marked failed is `Next::Failure` (nothing more to decide) and an abort ends
    /// this step only (`Next::Stop`), as everywhere in the cleanup.
    pub(super) async fn unknown(
        &mut self,
        step: &Step,
        started: &str,
        host: &str,
        pgid: Option<i32>,
        fleet: Option<&crate::engine::executor::FleetProgress>,
        cleanup: bool,
    ) -> Result<Option<Next>, Error> {
        let id = step.id().to_string();
        if let Some(pgid) = pgid {
            self.check_group(&id, host, pgid).await?;
        }
        // Local `HH:MM`, as every time the operator reads; the trail has the stamp.
        let started = crate::listen::ui::local_time::stamp(started);
        let mut question =
            format!("step `{id}` started at {started} on {host} and never finished: its outcome is unknown");
        if let Some(progress) = fleet {
            // Leftovers first: a re-run must never run beside the first instance.
            for (member, group) in &progress.unknown {
                if let Some(pgid) = group {
                    self.check_group(&id, member, *pgid).await?;
                }
            }
            let members = self.plan.members(host);
            question = format!(
                "step `{id}` started at {started} on {host} and never finished ({}): re-running it runs it where it did not succeed",
                progress.describe(&members)
            );
            self.rerun = Some((id.clone(), progress.rerun(&members)));
        }
        let (choice, aborted) = loop {
            let choice = self.operator.unknown_step(&question, step.idempotent)?;
            let answer = match choice {
                Some(crate::prompt::Report::Done) => "marked done",
                Some(crate::prompt::Report::Failed) => "marked failed",
                Some(crate::prompt::Report::Skip) => "re-run",
                None => "abort",
            };
            self.answered(&id, question.clone(), answer)?;
            if choice.is_some() {
                break (choice, None);
            }
            if let Some(end) =
                self.abort_confirmed(&id, format!("aborted by the operator at the unknown step `{id}`"))?
            {
                break (None, Some(end));
            }
        };
        if !matches!(choice, Some(crate::prompt::Report::Skip)) {
            self.rerun = None;
        }
        // Marked by the operator: nothing ran, so no output, exit code or time.
        let marked = |this: &mut Self, outcome| {
            let reason = Some("unknown after a crash; marked by the operator".to_string());
            this.finish(&id, host, outcome, None, 0, Duration::ZERO, None, reason, None)
        };
        Ok(match choice {
            Some(crate::prompt::Report::Skip) => None,
            Some(crate::prompt::Report::Done) => {
                self.deviate(
                    &id,
                    DeviationKind::MarkedDone,
                    Some("its outcome was unknown after a crash".into()),
                )?;
                marked(self, StepOutcome::MarkedDone)?;
                Some(Next::Success)
            }
            Some(crate::prompt::Report::Failed) => {
                marked(self, StepOutcome::Failed)?;
                if cleanup {
                    Some(Next::Failure)
                } else {
                    Some(self.after_failure(&id, step)?)
                }
            }
            None => aborted.map(Next::Stop),
        })
    }

    pub(super) fn decide(
        &mut self,
        id: &str,
        options: &[ChooseOption],
        vars: &Vars,
        place: &Place<'_>,
    ) -> Result<Next, Error> {
        let labels: Vec<(String, String)> = options
            .iter()
            .map(|o| (vars.interpolate(&o.label), o.goto.value.clone()))
            .collect();
        // A `when` on a variable that is not set cannot be judged: it does not hold.
        let holds = |o: &ChooseOption| match &o.when {
            None => false,
            Some(when) => match vars.get(&when.var.value).map(|v| v.text.as_str()) {
                None => false,
                Some(value) => match (&when.equals, &when.matches) {
                    (Some(equals), _) => value == equals,
                    (None, Some(re)) => crate::book::patterns::is_match(&re.value, value),
                    (None, None) => false,
                },
            },
        };
        let preselected = options
            .iter()
            .position(holds)
            .or_else(|| options.iter().position(|o| o.when.is_none()));
        let mut unset: Vec<&str> = Vec::new();
        for o in options {
            if let Some(when) = &o.when
                && vars.get(&when.var.value).is_none()
                && !unset.contains(&when.var.value.as_str())
            {
                unset.push(&when.var.value);
            }
        }
        // Interactively, a preselected option is advice; advice from a variable nobody set
        // (its step skipped, or run by hand) would be a guess. Say why, and preselect nothing.
        if self.operator.is_interactive() {
            for var in &unset {
                let why = self.why_unset(var, place);
                self.sink.show(&Event::Notice(format!(
                    "    `{var}` is not set: {why}, so no option is preselected"
                )));
            }
        }
        let judged = unset.is_empty();
        let Some(choice) = self.operator.choose(id, &labels, preselected, judged)? else {
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

    /// The operator chose to abort at `id`: confirmed, and why, both recorded; the reason ends
    /// the `ended` message too. `None`: they thought better of it and the menu comes back.
    pub(super) fn abort_confirmed(&mut self, id: &str, ended: String) -> Result<Option<End>, Error> {
        let reason = self.operator.abort_reason()?;
        if self.operator.is_interactive() {
            self.answered(id, "abort the run?", yes_no(reason.is_some()))?;
        }
        Ok(match reason {
            None => None,
            Some(reason) if reason.is_empty() => Some(End::aborted(ended)),
            Some(reason) => {
                let reason = self.note_reason(id, &reason)?;
                Some(End::aborted(format!("{ended}: {reason}")))
            }
        })
    }

    /// Records the reason the operator gave, as a note of the step.
    fn note_reason(&mut self, id: &str, reason: &str) -> Result<String, Error> {
        let text = self.typed.mask_str(reason);
        self.emit(Event::Note {
            step: Some(id.into()),
            text: text.clone(),
        })?;
        Ok(text)
    }

    /// Why a variable a decision needs is not set, from the step that captures it.
    fn why_unset(&self, var: &str, place: &Place<'_>) -> String {
        let Some(step) = place
            .runbook
            .steps
            .iter()
            .find(|s| s.capture.as_ref().is_some_and(|c| c.value == var))
        else {
            return format!("no step of `{}` captures it", place.runbook.id());
        };
        let id = place.id(step);
        let what = match self
            .deviations
            .iter()
            .rev()
            .find(|d| d.step == id)
            .map(|d| d.kind)
        {
            Some(DeviationKind::Skipped) => "was skipped",
            Some(DeviationKind::MarkedDone) => "failed and was marked done",
            Some(DeviationKind::PassedOver) => "failed and was passed over",
            Some(DeviationKind::ByHand) => "was run by hand",
            _ => "has not succeeded",
        };
        format!("the step that captures it (`{id}`) {what}")
    }

    /// Asks for the step's confirmation, if it has one. `false`: not confirmed.
    pub(super) fn confirmed(&mut self, id: &str, step: &Step, vars: &Vars) -> Result<bool, Error> {
        match step.confirmation() {
            None => Ok(true),
            Some(Confirm::YesNo(_)) => {
                let question = format!("Go ahead with `{id}`?");
                let yes = self.operator.confirm(&question)?;
                self.answered(id, question, yes_no(yes))?;
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
                    self.answered(
                        id,
                        format!("type `{}` to go ahead", vars.interpolate(phrase)),
                        shown,
                    )?;
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

    pub(super) fn manual(&mut self, id: &str, step: &Step, host: &str, vars: &Vars) -> Result<Next, Error> {
        if !self.confirmed(id, step, vars)? {
            return self.not_confirmed(id, step);
        }
        self.report_by_hand(id, step, host, None, None)
    }

    /// A step that runs nothing timed here (done by hand, or a `call`) starts: its first attempt,
    /// no timeout, no spinner, no secrets. Its time target (`rto`) comes back.
    fn started_here(
        &mut self,
        id: &str,
        step: &Step,
        host: &str,
        command: String,
    ) -> Result<Option<Duration>, Error> {
        let target = step.rto.as_ref().and_then(|d| d.get());
        self.emit(Event::StepStarted {
            step: id.into(),
            host: host.into(),
            command,
            attempt: 1,
            target,
            timeout: None,
            spinner: false,
            secrets: Vec::new(),
            declassify: false,
            fleet: None,
        })?;
        Ok(target)
    }

    /// A manual step, or a command the operator ran in their own shell: record what they report.
    pub(super) fn report_by_hand(
        &mut self,
        id: &str,
        step: &Step,
        host: &str,
        command: Option<String>,
        capture: Option<Capture<'_>>,
    ) -> Result<Next, Error> {
        let started = Instant::now();
        let target = self.started_here(id, step, host, command.unwrap_or_else(|| "(manual)".into()))?;
        let (report, aborted) = loop {
            let report = self.operator.report(id)?;
            let answer = match report {
                Some(Report::Done) => "done",
                Some(Report::Skip) => "skip",
                Some(Report::Failed) => "failed",
                None => "abort",
            };
            self.answered(id, "how did it go?", answer)?;
            if report.is_some() || !self.operator.is_interactive() {
                break (report, None);
            }
            if let Some(end) = self.abort_confirmed(id, format!("aborted by the operator at `{id}`"))? {
                break (None, Some(end));
            }
        };
        let outcome = match report {
            Some(Report::Done) => StepOutcome::Ok,
            Some(Report::Skip) => StepOutcome::Skipped,
            Some(Report::Failed) | None => StepOutcome::Failed,
        };
        // The command's stdout never reached us: what it captured, the operator types in, or
        // the next decision would judge its `when` on a variable that is not there.
        let captured = match capture {
            Some(c) if outcome == StepOutcome::Ok => {
                let text = self.operator.captured(&c.name, c.secret)?;
                let shown = if c.secret { MASK.to_string() } else { text.clone() };
                self.answered(
                    id,
                    format!("value of `{}` (captured by hand)", c.name),
                    shown.clone(),
                )?;
                c.vars.set(&c.name, text, c.secret);
                Some((c.name, shown))
            }
            _ => None,
        };
        let duration = started.elapsed();
        self.emit(Event::StepFinished(StepFinished {
            step: id.into(),
            host: host.into(),
            outcome,
            exit: None,
            attempt: 1,
            duration,
            target,
            reason: None,
            output: None,
            capture: captured,
            fleet: None,
            visit: None,
        }))?;
        if report == Some(Report::Skip) {
            self.deviate(id, DeviationKind::Skipped, Some("reported skipped".into()))?;
        }
        Ok(match report {
            None => Next::Stop(
                aborted.unwrap_or_else(|| End::aborted(format!("aborted by the operator at `{id}`"))),
            ),
            Some(Report::Failed) => self.after_failure(id, step)?,
            _ => Next::Success,
        })
    }

    pub(super) fn not_confirmed(&mut self, id: &str, step: &Step) -> Result<Next, Error> {
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

    /// What to do after a failure: the operator decides, or unattended, `on_failure`.
    pub(super) fn after_failure(&mut self, id: &str, step: &Step) -> Result<Next, Error> {
        self.after_failure_on(id, step, None)
    }

    /// The same after a fleet step failed on `failed` hosts: one more choice, retrying them only.
    pub(super) fn after_fleet_failure(
        &mut self,
        id: &str,
        step: &Step,
        failed: &[String],
        states: &HashMap<String, String>,
    ) -> Result<Next, Error> {
        self.after_failure_on(id, step, Some((failed, states)))
    }

    /// The steps *Go to* offers after step `id` failed: those of its own runbook (a called
    /// runbook's, in a sub-run), each marked where the run has been.
    fn goto_steps(&self, id: &str) -> Vec<GotoStep> {
        let chain = self.runbooks_of(id);
        let runbook = chain[chain.len() - 1];
        let prefix = id
            .rsplit_once('/')
            .map_or(String::new(), |(p, _)| format!("{p}/"));
        runbook
            .steps
            .iter()
            .map(|s| {
                let full = format!("{prefix}{}", s.id());
                GotoStep {
                    id: s.id().to_string(),
                    title: self.shell_vars.interpolate(&s.title),
                    here: full == id,
                    visited: self.presented.contains(&full),
                }
            })
            .collect()
    }

    /// `fleet`: the hosts that did not succeed, and how each host's last attempt ended.
    fn after_failure_on(
        &mut self,
        id: &str,
        step: &Step,
        fleet: Option<(&[String], &HashMap<String, String>)>,
    ) -> Result<Next, Error> {
        let failed = fleet.map(|(failed, _)| failed);
        if !self.operator.is_interactive() {
            return Ok(Next::Failure);
        }
        let steps = self.goto_steps(id);
        let shell = self.shell_choice(id, step);
        loop {
            let choice = self.operator.after_failure(&FailureChoices {
                on_failure: step.on_failure.as_ref().map(|s| s.value.as_str()),
                steps: &steps,
                failed_hosts: failed,
                shell: shell.as_deref(),
                approval_refused: self.unapproved.as_deref() == Some(id),
            })?;
            let answer = match &choice {
                AfterFailure::Retry => "retry".to_string(),
                AfterFailure::RetryFailedHosts => "retry the failed hosts".to_string(),
                AfterFailure::Skip => "skip".to_string(),
                AfterFailure::Goto(target) => format!("go to {target}"),
                AfterFailure::FollowOnFailure => "follow on_failure".to_string(),
                AfterFailure::MarkDone => "mark done".to_string(),
                AfterFailure::Note(_) => "note".to_string(),
                AfterFailure::Abort => "abort".to_string(),
                AfterFailure::Shell => "open a shell".to_string(),
            };
            self.answered(id, "after failure", answer)?;
            if choice == AfterFailure::Abort {
                match self.abort_confirmed(id, format!("aborted by the operator after `{id}` failed"))? {
                    Some(end) => return Ok(Next::Stop(end)),
                    None => continue,
                }
            }
            match &choice {
                AfterFailure::Skip => self.deviate(
                    id,
                    DeviationKind::PassedOver,
                    Some("skipped after it failed".into()),
                )?,
                AfterFailure::Goto(target) if target != step.id() => self.deviate(
                    id,
                    DeviationKind::PassedOver,
                    Some(format!("went to `{target}` after it failed")),
                )?,
                AfterFailure::MarkDone => {
                    // Done by hand is a claim the trail cannot check: it keeps the operator's word.
                    let why = self
                        .operator
                        .reason("Why is it done? (what you did; recorded in the trail)")?;
                    let why = self.note_reason(id, &why)?;
                    self.deviate(id, DeviationKind::MarkedDone, Some(why))?
                }
                _ => {}
            }
            return Ok(match choice {
                AfterFailure::Retry => Next::Goto(step.id().to_string()),
                AfterFailure::RetryFailedHosts => Next::RetryHosts(failed.unwrap_or_default().to_vec()),
                AfterFailure::Skip | AfterFailure::MarkDone => Next::Success,
                AfterFailure::Goto(target) => Next::Goto(target),
                AfterFailure::FollowOnFailure => Next::Failure,
                AfterFailure::Note(text) => {
                    self.emit(Event::Note {
                        step: Some(id.into()),
                        text: self.typed.mask_str(&text),
                    })?;
                    continue;
                }
                AfterFailure::Abort => unreachable!("an abort returned above"),
                AfterFailure::Shell => {
                    self.open_shell(id, step, "after failure", fleet.map(|(_, states)| states))?;
                    continue;
                }
            });
        }
    }

    pub(super) async fn call(
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
        let plan = self.plan.clone();
        let called =
            plan.called.get(target).map(|l| &l.runbook).ok_or_else(|| {
                Error::runtime(format!("step `{id}` calls `{target}`, which was not loaded"))
            })?;
        let mut sub_vars = self.plan.sub_run_vars(called, step, vars)?;
        let started = Instant::now();
        let rto = self.started_here(id, step, host, format!("call {target}"))?;
        let end = self
            .walk(called, &mut sub_vars, &format!("{id}/"), None, None)
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
}

fn yes_no(yes: bool) -> &'static str {
    if yes { "yes" } else { "no" }
}
