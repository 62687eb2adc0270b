//! The steps where a command runs: the operator's last word before it, retries, streaming
//! output through the masker to the terminal and the audit trail, `expect`, `capture`,
//! reconnecting after a lost connection, and the cleanup.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Attempt, End, Executor, KEEP_BYTES, Next};
use crate::error::Error;
use crate::events::{DeviationKind, Event, OutputRecord, RunOutcome, StepOutcome, Stream};
use crate::inventory::Binding;
use crate::prompt::{Before, Operator, Report};
use crate::runbook::{Runbook, Step, StepKind};
use crate::transport::{Chunk, CommandSpec, Ending, Transport};
use crate::vars::Vars;

/// How often a running command is said to be still running, in plain mode.
const HEARTBEAT: Duration = Duration::from_secs(10);

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
            match self.operator.before_run(&command)? {
                Before::Run => break,
                Before::Skip => {
                    self.emit(Event::Answer {
                        step: Some(id.into()),
                        question: "before running".into(),
                        answer: "skip".into(),
                    })?;
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
                Before::Edit(edited) => {
                    let masker = vars.masker();
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
                }
                Before::ByHand => {
                    if !self.confirmed(id, step, vars)? {
                        return self.not_confirmed(id, step);
                    }
                    self.sink.ui.say(&by_hand_script(vars, &command));
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
                    self.emit(Event::Answer {
                        step: Some(id.into()),
                        question: "before running".into(),
                        answer: "abort".into(),
                    })?;
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
        let (attempts, delay) = step.attempts();
        let target = step.rto.as_ref().and_then(|d| d.get());
        let started = Instant::now();
        for attempt in 1..=attempts {
            let result = self.attempt(id, step, host, &command, vars).await?;
            // A hangup stopped the command: nobody is there to decide, nothing more runs.
            self.hangup()?;
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
                    // Unattended, nobody can decide what a lost step did: the run stops here
                    // with its trail open, and `resume` (or a person) takes it from there.
                    StepOutcome::Lost if !self.operator.is_interactive() => Err(Error::Lost(format!(
                        "the connection to {host} was lost during `{id}`: its outcome is unknown"
                    ))),
                    StepOutcome::Cancelled if !self.operator.is_interactive() => Ok(Next::Stop(End {
                        outcome: RunOutcome::Interrupted,
                        message: Some(format!("interrupted by {} during `{id}`", self.stop_word())),
                    })),
                    _ => self.after_failure(id, step),
                };
            }
            self.emit(Event::Retrying {
                step: id.into(),
                next: attempt + 1,
                of: attempts,
                delay,
            })?;
            if !delay.is_zero() && self.pause(delay).await? {
                return Ok(Next::Stop(End::interrupted(format!(
                    "interrupted while `{id}` waited to retry"
                ))));
            }
        }
        unreachable!("the last attempt always returns")
    }

    /// Runs the command once, streaming its output, and judges it against `expect`.
    pub(super) async fn attempt(
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
        if let (true, Ok(Attempt { pgid: Some(pgid), .. })) = (lost, &result) {
            self.check_group(id, host, *pgid).await?;
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
        self.emit(Event::RemoteGroupChecked {
            step: id.to_string(),
            host: host.to_string(),
            pgid,
            alive,
            stopped: stop,
        })
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

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn attempt_on(
        &mut self,
        transport: &Transport,
        id: &str,
        step: &Step,
        host: &str,
        command: &str,
        vars: &Vars,
        attempt: u32,
    ) -> Result<Attempt, Error> {
        let uses: Vec<String> = step.uses.iter().map(|u| u.value.clone()).collect();
        let (mut env, received) = vars.env_for(command, &uses);
        env.retain(|(k, _)| !k.is_empty());
        // Its output may hold a secret it received, in forms no masker knows (`rev`, a hash):
        // its stdout is hidden and its captures are secret, unless it declares otherwise.
        let secret_output = received && !step.declassify;
        let secrets: Vec<String> = env
            .iter()
            .filter(|(name, _)| vars.get(name).is_some_and(|v| v.secret))
            .map(|(name, _)| name.clone())
            .collect();
        let timeout = step.timeout.as_ref().and_then(|d| d.get());
        let target = step.rto.as_ref().and_then(|d| d.get());
        let spec = CommandSpec {
            command: command.to_string(),
            env,
            timeout,
        };
        let masker = vars.masker();
        self.emit(Event::StepStarted {
            step: id.into(),
            host: host.into(),
            command: masker.mask_str(command),
            attempt,
            target,
            timeout,
            spinner: true,
            secrets,
            declassify: step.declassify,
        })?;
        // Only now: a crash before the start event leaves no output file that a resume, which
        // counts attempts from start events, would collide with.
        let recorder = match self.sink.audit.as_ref() {
            Some(audit) => Some(audit.output(id, attempt)?.in_background()),
            None => None,
        };
        let mut paths = super::output::OutputPaths::new(masker, recorder, secret_output);
        let started = Instant::now();
        let (tx, mut rx) = mpsc::channel::<Chunk>(64);
        let cancel = CancellationToken::new();
        let run = transport.run(&spec, tx, cancel.clone());
        tokio::pin!(run);
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        // Signals from before this command were dealt with at the step boundary (or ended the
        // walk, and this is the cleanup): only new ones stop it.
        let mut signals = self.signals.clone();
        let baseline = signals.borrow_and_update().effective_stops();
        let mut pgid = None;
        let mut ui = std::mem::take(&mut self.sink.ui);
        let mut groups = Vec::new();
        let mut check = tokio::time::interval(Duration::from_millis(200));
        // One wake-up per 10 s: plain mode prints it, and either checks the RTO for a breach.
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let ending = loop {
            tokio::select! {
                _ = beat.tick() => {
                    ui.handle(&Event::Heartbeat {
                        step: id.to_string(),
                        elapsed: started.elapsed(),
                        target,
                    });
                    continue;
                }
                ending = &mut run => {
                    while let Ok(chunk) = rx.try_recv() {
                        if let Some((stream, bytes)) = split(chunk, &mut stdout, &mut stderr) {
                            paths.push(&mut ui, stream, bytes);
                        }
                    }
                    break ending;
                }
                Some(chunk) = rx.recv() => {
                    if let Chunk::Group(g) = chunk {
                        groups.push(g);
                        continue;
                    }
                    if let Some((stream, bytes)) = split(chunk, &mut stdout, &mut stderr) {
                        paths.push(&mut ui, stream, bytes);
                    }
                }
                // Its record cannot be written (a full disk): stop it rather than let it run
                // on unrecorded; the run then stops with the write's error.
                _ = check.tick(), if !cancel.is_cancelled() => {
                    if paths.failed() {
                        cancel.cancel();
                    }
                }
                Ok(()) = signals.changed(), if !cancel.is_cancelled() => {
                    let state = *signals.borrow_and_update();
                    if state.hangup || state.effective_stops() > baseline {
                        cancel.cancel();
                    }
                }
            }
            // Recorded as soon as it is known: after a crash, it is what resume can stop.
            for g in groups.drain(..) {
                pgid = Some(g);
                self.sink.record_only(&Event::RemoteProcess {
                    step: id.to_string(),
                    host: host.to_string(),
                    attempt,
                    pgid: g,
                })?;
            }
        };
        let recorder = paths.finish(&mut ui);
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
        let stop_word = if self.signals.borrow().hangup {
            "SIGHUP (the terminal hung up)"
        } else {
            self.stop_word()
        };
        let (outcome, exit, reason) = judge(step, &ending, &stdout, &stderr, stop_word);
        let capture = step
            .capture
            .as_ref()
            .filter(|_| outcome == StepOutcome::Ok)
            .map(|name| {
                let text = String::from_utf8_lossy(&stdout).trim().to_string();
                (name.value.clone(), text, secret_output)
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
        Ok(Attempt {
            outcome,
            capture,
            pgid,
        })
    }

    /// Runs the cleanup steps in order, whatever happened; their failures are recorded, not fatal.
    pub(super) async fn cleanup(
        &mut self,
        runbook: &Runbook,
        vars: &mut Vars,
        done: &[String],
    ) -> Result<(), Error> {
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
                    .map(|r| vars.masker().mask_str(&r.value))
                    .or_else(|| step.manual.as_ref().map(|m| vars.interpolate(&m.value))),
                vars: vars.masked(),
                target: step.rto.as_ref().and_then(|d| d.get()),
                timeout: step.timeout.as_ref().and_then(|d| d.get()),
                retry: Some(step.attempts()),
            })?;
            match step.kind() {
                Some(StepKind::Run(command)) => {
                    let command = command.to_string();
                    let (attempts, _) = step.attempts();
                    let mut outcome = StepOutcome::Failed;
                    for _ in 1..=attempts {
                        outcome = self.attempt(&id, step, &host, &command, vars).await?.outcome;
                        if outcome == StepOutcome::Ok || outcome == StepOutcome::Lost {
                            break;
                        }
                    }
                    if outcome != StepOutcome::Ok {
                        self.deviate(&id, DeviationKind::CleanupFailed, Some(outcome.as_str().into()))?;
                    }
                }
                Some(StepKind::Manual(_)) => {
                    let report = if self.operator.is_interactive() || self.operator_has_answer(&id) {
                        // An abort asked for during the cleanup ends this step, not the seal.
                        match self.operator.report(&id) {
                            Err(Error::Aborted) => None,
                            other => other?,
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
        matches!(&self.operator, Operator::Unattended(a) if a.get(id).is_some())
    }
}

/// Output keeps its first `KEEP_BYTES` per stream for `expect` and `capture`.
fn split(chunk: Chunk, stdout: &mut Vec<u8>, stderr: &mut Vec<u8>) -> Option<(Stream, Vec<u8>)> {
    let (stream, bytes, keep) = match chunk {
        Chunk::Stdout(b) => (Stream::Stdout, b, stdout),
        Chunk::Stderr(b) => (Stream::Stderr, b, stderr),
        Chunk::Group(_) => return None,
    };
    let room = KEEP_BYTES.saturating_sub(keep.len());
    keep.extend_from_slice(&bytes[..bytes.len().min(room)]);
    Some((stream, bytes))
}

/// A step's outcome from how its command ended and what `expect` asks.
fn judge(
    step: &Step,
    ending: &Ending,
    stdout: &[u8],
    stderr: &[u8],
    stop_word: &str,
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
        Ending::Cancelled => {
            return (
                StepOutcome::Cancelled,
                None,
                Some(format!("stopped by {stop_word}")),
            );
        }
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

/// The exact command with its variables, for the operator to paste into their own shell. It
/// is one POSIX subshell: the parser reads it whole before anything runs (so a secret's `read`
/// does not swallow the lines pasted after it), nothing stays exported in the operator's shell,
/// and an `exit` in the command leaves only the subshell. Secret values are never printed: the
/// script reads them without echo (`stty -echo` first, so the prompt means echo is off), in a
/// form dash has too. Unindented, so a heredoc's terminator still ends it.
fn by_hand_script(vars: &Vars, command: &str) -> String {
    let mut out = String::from(
        "    Paste this into your shell, then report how it went (one subshell: nothing stays\n    exported in your shell, and an `exit` leaves only the subshell):\n\n(\n",
    );
    for (name, value) in vars.iter() {
        if value.secret {
            out.push_str(&format!(
                "stty -echo; printf '%s: ' {name} >&2; IFS= read -r {name}; stty echo; echo >&2; export {name}\n"
            ));
        } else {
            out.push_str(&format!(
                "{name}={}; export {name}\n",
                crate::script::shell_quote(&value.text)
            ));
        }
    }
    for line in command.lines() {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(")\n");
    out
}
