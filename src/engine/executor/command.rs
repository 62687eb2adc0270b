//! The steps where a command runs: the operator's last word before it, retries, streaming
//! output through the masker to the terminal and the audit trail, `expect`, `capture`,
//! reconnecting after a lost connection, and the cleanup.

use std::collections::HashMap;
use std::time::Duration;

use super::hosts::HostsRun;
use super::{End, Executor, Next};
use crate::book::runbook::{Runbook, Step, StepKind};
use crate::error::Error;
use crate::events::{DeviationKind, Event, RemoteGroupChecked, RunOutcome, StepOutcome, StepPresented};
use crate::inventory::Binding;
use crate::prompt::{Before, Report};
use crate::transport::Transport;
use crate::vars::Vars;

mod by_hand;
use by_hand::by_hand_script;

impl Executor {
    pub(super) async fn run_step(
        &mut self,
        id: &str,
        step: &Step,
        host: &str,
        command: &str,
        vars: &mut Vars,
    ) -> Result<Next, Error> {
        let mut command = command.to_string();
        loop {
            let shell = self.shell_choice(id, step);
            let masker = vars.masker();
            let mask = |text: &str| masker.mask_str(text);
            match self.operator.before_run(&command, shell.as_deref(), &mask)? {
                Before::Shell => self.open_shell(id, step, "before running", None)?,
                Before::Run => break,
                Before::Skip => {
                    self.answered(id, "before running", "skip")?;
                    self.deviate(id, DeviationKind::Skipped, Some("skipped before it ran".into()))?;
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
                Before::Edit { command: edited, run } => {
                    self.emit(Event::Edit {
                        step: id.into(),
                        before: masker.mask_str(&command),
                        after: masker.mask_str(&edited),
                    })?;
                    if !self
                        .deviations
                        .iter()
                        .any(|d| d.step == id && d.kind == DeviationKind::Edited)
                    {
                        self.deviate(id, DeviationKind::Edited, None)?;
                    }
                    command = edited;
                    // Confirmed after its diff: it runs now, not after another "Run it".
                    if run {
                        break;
                    }
                }
                Before::ByHand => {
                    if !self.confirmed(id, step, vars)? {
                        return self.not_confirmed(id, step);
                    }
                    // By hand or not, a step of the two-person rule runs only once approved.
                    if let Some(refused) = self.approval(id, step, host, &command, vars).await? {
                        return refused;
                    }
                    let place = self.by_hand_place(host);
                    self.sink
                        .show(&Event::Notice(by_hand_script(vars, &command, &place)));
                    self.deviate(id, DeviationKind::ByHand, None)?;
                    let shown = self.typed.mask_str(&command);
                    let capture = step.capture.as_ref().map(|name| {
                        let uses: Vec<String> = step.uses.iter().map(|u| u.value.clone()).collect();
                        let (_, received) = vars.env_for(&command, &uses);
                        super::asking::Capture {
                            name: name.value.clone(),
                            secret: received && !step.declassify,
                            vars: &mut *vars,
                        }
                    });
                    return self.report_by_hand(id, step, host, Some(format!("(by hand) {shown}")), capture);
                }
                Before::Note(text) => self.emit(Event::Note {
                    step: Some(id.into()),
                    text: self.typed.mask_str(&text),
                })?,
                Before::Abort => {
                    self.answered(id, "before running", "abort")?;
                    if let Some(end) =
                        self.abort_confirmed(id, format!("aborted by the operator at `{id}`"))?
                    {
                        return Ok(Next::Stop(end));
                    }
                }
            }
        }
        if !self.confirmed(id, step, vars)? {
            return self.not_confirmed(id, step);
        }
        if let Some(refused) = self.approval(id, step, host, &command, vars).await? {
            return refused;
        }
        let members = self.plan.members(host);
        let mut hosts = match self.rerun.take() {
            Some((step, again)) if step == id => again,
            _ => members.clone(),
        };
        // A fleet's captures by host, across retries: `capture_from` picks one at the end.
        let mut captures: HashMap<String, (String, String, bool)> = HashMap::new();
        // How each host's last attempt ended: the shell picker shows it, the failed first.
        let mut states: HashMap<String, String> = HashMap::new();
        let (attempts, delay) = step.attempts();
        let mut attempt = 1;
        loop {
            let result = self.attempt(id, step, host, &hosts, &command, vars).await?;
            // A hangup stopped the command: nobody is there to decide, nothing more runs.
            self.hangup()?;
            // A guard tripped (unattended): no retry, no decision; the walk diverts.
            if self.trip_pending()? {
                return Ok(Next::Failure);
            }
            for end in &result.ended {
                if let Some(capture) = &end.capture {
                    captures.insert(end.host.clone(), capture.clone());
                }
                states.insert(end.host.clone(), end.state());
            }
            for host in &result.not_started {
                states.insert(host.clone(), "not started".into());
            }
            let outcome = result.outcome();
            let last = attempt >= attempts || matches!(outcome, StepOutcome::Cancelled | StepOutcome::Lost);
            if outcome != StepOutcome::Ok && !last {
                attempt += 1;
                // Retried where it failed: the hosts that succeeded are done.
                hosts = result.failed();
                self.emit(Event::Retrying {
                    step: id.into(),
                    next: attempt,
                    of: attempts,
                    delay,
                })?;
                if delay.is_zero() || !self.pause(delay).await? {
                    continue;
                }
                // Unattended, or a SIGTERM/SIGQUIT (a shutdown waits for nobody): the run ends.
                if !self.operator.is_interactive() || crate::signals::terminated().is_some() {
                    return Ok(Next::Stop(End::interrupted(format!(
                        "interrupted by {} while `{id}` waited to retry",
                        self.stop_word()
                    ))));
                }
                // On a terminal the stop ends the retries, not the run: what next is asked,
                // as after a command stopped by Ctrl-C (issue 25: the wait ignored it).
                self.answered(
                    id,
                    "retry wait",
                    format!(
                        "stopped by {} before attempt {attempt} of {attempts}",
                        self.stop_word()
                    ),
                )?;
            }
            if outcome == StepOutcome::Ok {
                let from = match step.capture_from.as_ref().map(|f| f.value.as_str()) {
                    Some("first") | None => members.iter().find(|m| captures.contains_key(*m)),
                    Some(named) => members.iter().find(|m| m.as_str() == named),
                };
                if let Some((name, text, secret)) = from.and_then(|h| captures.remove(h)) {
                    vars.set(&name, text, secret);
                }
                return Ok(Next::Success);
            }
            let failed = result.failed();
            let next = match outcome {
                // Unattended, nobody can decide what a lost step did: the run stops here
                // with its trail open, and `resume` (or a person) takes it from there.
                StepOutcome::Lost if !self.operator.is_interactive() => {
                    return Err(Error::Lost(format!(
                        "the connection to {} was lost during `{id}`: its outcome is unknown",
                        failed.join(", ")
                    )));
                }
                StepOutcome::Cancelled
                    if !self.operator.is_interactive() || crate::signals::terminated().is_some() =>
                {
                    Next::Stop(End {
                        outcome: RunOutcome::Interrupted,
                        message: Some(format!("interrupted by {} during `{id}`", self.stop_word())),
                    })
                }
                _ if members.len() > 1 => self.after_fleet_failure(id, step, &failed, &states)?,
                _ => self.after_failure(id, step)?,
            };
            match next {
                // The operator's choice: again, on the hosts that did not succeed only.
                Next::RetryHosts(again) => {
                    hosts = again;
                    attempt = 1;
                }
                next => return Ok(next),
            }
        }
    }

    /// One attempt of the step's command on `hosts` (its one host, or hosts of its fleet).
    pub(super) async fn attempt(
        &mut self,
        id: &str,
        step: &Step,
        label: &str,
        hosts: &[String],
        command: &str,
        vars: &Vars,
    ) -> Result<HostsRun, Error> {
        // Numbered across retries, revisits and resumes: each attempt has its own output file.
        let attempt = {
            let count = self.attempts.entry(id.to_string()).or_insert(0);
            *count += 1;
            *count
        };
        let fleet = self.plan.fleets.contains_key(label).then_some(label);
        // Lent out of the map while the step runs, so events can be emitted meanwhile.
        let mut lent = Vec::new();
        for host in hosts {
            match self.transports.remove(host) {
                Some(t) => lent.push((host.clone(), t)),
                None => {
                    self.transports.extend(lent);
                    return Err(Error::runtime(format!("no connection to `{host}` (step `{id}`)")));
                }
            }
        }
        let result = self.run_on(&lent, id, step, fleet, command, vars, attempt).await;
        let lost: Vec<(String, Option<i32>)> = match &result {
            Ok(run) => run
                .ended
                .iter()
                .filter(|e| e.outcome == StepOutcome::Lost)
                .map(|e| (e.host.clone(), e.pgid))
                .collect(),
            Err(_) => Vec::new(),
        };
        for (host, transport) in lent {
            let transport = if lost.iter().any(|(h, _)| *h == host) {
                self.reconnect(&host, transport).await?
            } else {
                transport
            };
            self.transports.insert(host, transport);
        }
        for (host, pgid) in lost {
            if let Some(pgid) = pgid {
                self.check_group(id, &host, pgid).await?;
            }
        }
        result
    }

    /// After a lost connection, or at the resume of a step cut off by a crash: says whether
    /// the step's remote process group still runs on the host, and stops it (unattended) or
    /// offers to, so that a retry never runs beside the first instance.
    pub(super) async fn check_group(&mut self, id: &str, host: &str, pgid: i32) -> Result<(), Error> {
        let Some(transport) = self.transports.get(host) else {
            return Ok(());
        };
        if !transport.is_alive().await {
            return Ok(());
        }
        let alive = transport.group_alive(pgid).await;
        let stop = alive
            && (!self.operator.is_interactive()
                || self.operator.confirm(&format!(
                    "The command of `{id}` is still running on {host} (process group {pgid}). Stop it?"
                ))?);
        if stop && let Some(transport) = self.transports.get(host) {
            transport.stop_group(pgid).await;
        }
        self.emit(Event::RemoteGroupChecked(RemoteGroupChecked {
            step: id.to_string(),
            host: host.to_string(),
            pgid,
            alive,
            stopped: stop,
        }))
    }

    /// After a lost connection: a fresh one when the host answers again, so the operator's
    /// retry (or the cleanup) has somewhere to run. The old one is kept when it cannot be had.
    pub(super) async fn reconnect(&mut self, host: &str, old: Transport) -> Result<Transport, Error> {
        if old.is_alive().await {
            return Ok(old);
        }
        let Some(Binding::Ssh { dest, .. }) = self.plan.bindings.get(host).cloned() else {
            return Ok(old);
        };
        // The wait can last a whole --connect-timeout: the operator is told what it is.
        self.sink.show(&Event::Notice(format!(
            "    connection to {host} lost: reconnecting (giving up after {})...",
            crate::duration::format(self.ssh.connect_timeout)
        )));
        match Transport::connect(&dest, &self.ssh).await {
            Ok(fresh) => {
                old.close().await;
                self.emit(Event::TargetConnected {
                    role: String::new(),
                    host: host.to_string(),
                    host_key_added: fresh.host_key_added().map(str::to_string),
                    host_key: fresh.host_key().map(str::to_string),
                    client_key: None,
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

    /// Runs the cleanup steps in order, whatever happened; their failures are recorded, not fatal.
    pub(super) async fn cleanup(
        &mut self,
        runbook: &Runbook,
        vars: &mut Vars,
        done: &[String],
        mut cut: Option<super::CutOff>,
    ) -> Result<(), Error> {
        self.cleaning = true;
        for (index, step) in runbook.cleanup.iter().enumerate() {
            let id = step.id().to_string();
            if done.contains(&id) {
                continue;
            }
            let host = self.host_of(runbook, step);
            self.emit(Event::StepPresented(StepPresented {
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
                    .map(|r| vars.masker().mask_str(&r.value))
                    .or_else(|| step.manual.as_ref().map(|m| vars.interpolate(&m.value))),
                vars: vars.clone(),
                target: step.rto.as_ref().and_then(|d| d.get()),
                timeout: step.timeout.as_ref().and_then(|d| d.get()),
                retry: Some(step.attempts()),
                approve: step
                    .run
                    .is_some()
                    .then(|| self.approval_rule(step, &self.plan.members(&host)))
                    .flatten()
                    .map(|rule| (rule.quorum, rule.timeout)),
            }))?;
            // Cut off by a crash: unknown, as a step of the walk (design §6), never re-run blindly.
            if let Some(c) = cut.take_if(|c| c.step == id) {
                let known = self
                    .unknown(step, &c.started, &c.host, c.pgid, c.fleet.as_ref(), true)
                    .await?;
                match known {
                    None => {}
                    Some(Next::Success) => continue,
                    Some(Next::Stop(_)) => {
                        let why = "unknown after a crash; not re-run: the operator aborted";
                        self.deviate(&id, DeviationKind::CleanupFailed, Some(why.into()))?;
                        continue;
                    }
                    Some(_) => {
                        let why = StepOutcome::Failed.as_str().into();
                        self.deviate(&id, DeviationKind::CleanupFailed, Some(why))?;
                        continue;
                    }
                }
            }
            match step.kind() {
                Some(StepKind::Run(command)) => {
                    let command = command.to_string();
                    let (attempts, _) = step.attempts();
                    let mut outcome = StepOutcome::Failed;
                    // A fleet step cut off goes again where it did not succeed only.
                    let mut hosts = match self.rerun.take() {
                        Some((step, again)) if step == id => again,
                        _ => self.plan.members(&host),
                    };
                    for _ in 1..=attempts {
                        let run = self.attempt(&id, step, &host, &hosts, &command, vars).await?;
                        outcome = run.outcome();
                        if outcome == StepOutcome::Ok || outcome == StepOutcome::Lost {
                            break;
                        }
                        hosts = run.failed();
                    }
                    if outcome != StepOutcome::Ok {
                        self.deviate(&id, DeviationKind::CleanupFailed, Some(outcome.as_str().into()))?;
                    }
                }
                Some(StepKind::Manual(_)) => {
                    // After a SIGTERM nobody is asked: as unattended.
                    let asked = self.operator.is_interactive() && crate::signals::terminated().is_none();
                    let report = if asked || self.operator_has_answer(&id) {
                        // An abort asked for during the cleanup ends this step, not the seal;
                        // so does a SIGTERM while it is asked.
                        match self.operator.report(&id) {
                            Err(Error::Aborted | Error::Stopped(_)) => None,
                            other => other.map_err(|e| e.handed_off_at(&id))?,
                        }
                    } else {
                        Some(Report::Skip)
                    };
                    let outcome = match report {
                        Some(Report::Done) => StepOutcome::Ok,
                        Some(Report::Skip) => StepOutcome::Skipped,
                        _ => StepOutcome::Failed,
                    };
                    self.finish(&id, &host, outcome, None, 1, Duration::ZERO, None, None, None)?;
                    if outcome != StepOutcome::Ok {
                        self.deviate(&id, DeviationKind::CleanupFailed, Some(outcome.as_str().into()))?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub(super) fn operator_has_answer(&self, id: &str) -> bool {
        self.operator.answer(id).is_some()
    }
}

impl Executor {
    /// The two-person rule, before anything runs (by the tool or by hand) and for every host:
    /// `Some(next)` when the step must not run (denied, unanswered, stopped): it failed, and
    /// until an approval comes the choices are a new request, another step, or abort.
    async fn approval(
        &mut self,
        id: &str,
        step: &Step,
        host: &str,
        command: &str,
        vars: &Vars,
    ) -> Result<Option<Result<Next, Error>>, Error> {
        let members = self.plan.members(host);
        let Some(rule) = self.approval_rule(step, &members) else {
            return Ok(None);
        };
        let Some(why) = self.approved(id, step, &members, command, vars, rule).await? else {
            self.unapproved = None;
            return Ok(None);
        };
        self.finish(
            id,
            host,
            StepOutcome::Failed,
            None,
            0,
            Duration::ZERO,
            None,
            Some(why),
            None,
        )?;
        self.unapproved = Some(id.to_string());
        Ok(Some(self.after_failure(id, step)))
    }
}
