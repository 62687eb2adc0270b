//! One attempt of a `run` step on its hosts: one host, or a fleet (design §13) in rolling
//! batches, at most `--forks` at once, until the failure budget is spent. Each host's start is
//! recorded (and fsynced, a wave of starts together) before its command is sent, its output
//! streams to its own file and to the terminal prefixed with its name, and its finish is
//! recorded as it comes; a fleet's
//! attempt ends with one `fleet step finished` event. A stop (Ctrl-C, SIGTERM, hangup) or an
//! output that cannot be written stops the command on every host.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::output::OutputPaths;
use super::{Executor, KEEP_BYTES};
use crate::book::runbook::Step;
use crate::error::Error;
use crate::events::{Event, FleetFinished, OutputRecord, StepFinished, StepOutcome, Stream};
use crate::transport::{Chunk, CommandSpec, Ending, Job, Transport, TransportError};
use crate::vars::Vars;

/// How often a running command is said to be still running, in plain mode.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// How one host's attempt ended.
pub(super) struct HostEnd {
    pub host: String,
    pub outcome: StepOutcome,
    /// `capture`: name, value, secret.
    pub capture: Option<(String, String, bool)>,
    pub pgid: Option<i32>,
    pub duration: Duration,
    /// The exit code and why it did not succeed, as recorded.
    pub exit: Option<i32>,
    pub reason: Option<String>,
}

impl HostEnd {
    /// How it ended, in a few words for a list of hosts: `ok`, `failed: exit 1`, `timed out`.
    pub(super) fn state(&self) -> String {
        match (self.outcome, self.exit, self.reason.as_deref()) {
            (StepOutcome::Ok, _, _) => "ok".into(),
            (StepOutcome::Failed, Some(code), Some("exit code not expected")) => {
                format!("failed: exit {code}")
            }
            (StepOutcome::Failed, _, Some(why)) => format!("failed: {why}"),
            (StepOutcome::TimedOut, _, _) => "timed out".into(),
            (StepOutcome::Cancelled, _, _) => "stopped".into(),
            (StepOutcome::Lost, _, _) => "lost: outcome unknown".into(),
            (other, _, _) => other.as_str().into(),
        }
    }
}

/// One attempt on every host it was started on.
pub(super) struct HostsRun {
    pub ended: Vec<HostEnd>,
    pub not_started: Vec<String>,
}

impl HostsRun {
    pub(super) fn outcome(&self) -> StepOutcome {
        let worst = |o: StepOutcome| match o {
            StepOutcome::Lost => 4,
            StepOutcome::Cancelled => 3,
            StepOutcome::TimedOut => 2,
            StepOutcome::Ok => 0,
            _ => 1,
        };
        let ended = self.ended.iter().map(|e| e.outcome).max_by_key(|o| worst(*o));
        match ended {
            Some(StepOutcome::Ok) if self.not_started.is_empty() => StepOutcome::Ok,
            // Nothing left to run (a resumed fleet step whose hosts had all succeeded).
            None if self.not_started.is_empty() => StepOutcome::Ok,
            Some(StepOutcome::Ok) | None => StepOutcome::Failed,
            Some(other) => other,
        }
    }

    pub(super) fn failed(&self) -> Vec<String> {
        self.ended
            .iter()
            .filter(|e| e.outcome != StepOutcome::Ok)
            .map(|e| e.host.clone())
            .chain(self.not_started.iter().cloned())
            .collect()
    }
}

/// A host's command in flight.
struct Running {
    host: String,
    paths: OutputPaths,
    started: Instant,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    pgid: Option<i32>,
}

/// What a step's command needs on every host, resolved once.
struct Prepared {
    spec: CommandSpec,
    secret_output: bool,
    secrets: Vec<String>,
    target: Option<Duration>,
    masker: crate::mask::Masker,
}

/// `env`: whether a transport will read the environment (a stub never does, so a rehearsal
/// does not build one per step).
fn prepare(step: &Step, id: &str, attempt: u32, command: &str, vars: &Vars, env: bool) -> Prepared {
    let uses: Vec<String> = step.uses.iter().map(|u| u.value.clone()).collect();
    let secrets = vars.secrets_for(command, &uses);
    let env = if env {
        let (mut env, _) = vars.env_for(command, &uses);
        env.retain(|(k, _)| !k.is_empty());
        env
    } else {
        Vec::new()
    };
    let received = !secrets.is_empty();
    Prepared {
        spec: CommandSpec {
            command: command.to_string(),
            env,
            timeout: step.timeout.as_ref().and_then(|d| d.get()),
            step: id.to_string(),
            attempt,
        },
        // Its output may hold a secret it received, in forms no masker knows (`rev`, a hash):
        // its stdout is hidden and its captures are secret, unless it declares otherwise.
        secret_output: received && !step.declassify,
        secrets,
        target: step.rto.as_ref().and_then(|d| d.get()),
        masker: vars.masker(),
    }
}

/// Runs one host's command, passing its output on tagged with the host's index.
async fn run_one(
    index: usize,
    transport: &Transport,
    spec: &CommandSpec,
    out: mpsc::Sender<(usize, Chunk)>,
    cancel: CancellationToken,
    recorded: crate::audit::Recorded,
) -> (usize, Result<Ending, TransportError>) {
    let (tx, mut rx) = mpsc::channel::<Chunk>(64);
    let run = transport.run_after(Job {
        spec,
        out: tx,
        cancel,
        recorded,
    });
    tokio::pin!(run);
    loop {
        tokio::select! {
            biased;
            Some(chunk) = rx.recv() => {
                let _ = out.send((index, chunk)).await;
            }
            ending = &mut run => {
                while let Ok(chunk) = rx.try_recv() {
                    let _ = out.send((index, chunk)).await;
                }
                return (index, ending);
            }
        }
    }
}

impl Executor {
    /// One attempt of `command` on `hosts` (one host, or some of the hosts of the fleet
    /// `fleet`), numbered `attempt`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_on(
        &mut self,
        transports: &[(String, Transport)],
        id: &str,
        step: &Step,
        fleet: Option<&str>,
        command: &str,
        vars: &Vars,
        attempt: u32,
    ) -> Result<HostsRun, Error> {
        let env = !transports.iter().all(|(_, t)| matches!(t, Transport::Stub(_)));
        let prepared = prepare(step, id, attempt, command, vars, env);
        let total = transports.len();
        let budget = crate::fleet::budget(step.max_failures, total);
        let mut batches: VecDeque<std::ops::Range<usize>> = match fleet {
            Some(_) => crate::fleet::batches(total, step.batch).into(),
            None => std::iter::once(0..total).collect(),
        };
        let forks = if fleet.is_some() { self.forks.max(1) } else { 1 };
        let started = Instant::now();
        let (tx, mut rx) = mpsc::channel::<(usize, Chunk)>(256);
        let cancel = CancellationToken::new();
        let mut running: Vec<Option<Running>> = (0..total).map(|_| None).collect();
        let mut flight = FuturesUnordered::new();
        let mut queue: VecDeque<usize> = batches.pop_front().map(|b| b.collect()).unwrap_or_default();
        let mut ended: Vec<HostEnd> = Vec::new();
        let mut times: Vec<(String, Duration)> = Vec::new();
        let mut failures = 0usize;
        let mut stopping = false;
        // Signals from before this command were dealt with at the step boundary (or ended the
        // walk, and this is the cleanup): only new ones stop it.
        let mut signals = self.signals.clone();
        signals.borrow_and_update();
        let baseline = crate::signals::now().effective_stops();
        // A SIGTERM or SIGQUIT ends the walk (interactive too) but not its cleanup.
        let cleaning = self.cleaning;
        let must_stop = move || {
            let state = crate::signals::now();
            state.hangup
                || state.effective_stops() > baseline
                || (!cleaning && crate::signals::terminated().is_some())
        };
        let mut check = tokio::time::interval(Duration::from_millis(200));
        // A guard that trips stops an unattended step on every host (design §20).
        let mut guard_rx = self.lend_guard_rx();
        let unattended = !self.guards_ask();
        // One wake-up per 10 s: plain mode prints it, and either checks the RTO for a breach.
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

        loop {
            // Start what the forks, the batch and the budget allow: every start on disk before
            // its command is sent, the wave's starts in one fsync, which runs while the
            // commands' sessions open (`Transport::run_after`).
            let mut wave = Vec::new();
            while !stopping && flight.len() + wave.len() < forks {
                let Some(index) = queue.pop_front() else {
                    break;
                };
                wave.push(index);
            }
            // Only for a wave: made at every turn of the loop, it cost a channel each.
            let mut recorded = None;
            if !wave.is_empty() {
                self.sink.hold_syncs();
                let started = wave.iter().try_for_each(|&index| {
                    self.emit(Event::StepStarted {
                        step: id.into(),
                        host: transports[index].0.clone(),
                        command: prepared.masker.mask_str(command),
                        attempt,
                        target: prepared.target,
                        timeout: prepared.spec.timeout,
                        spinner: true,
                        secrets: prepared.secrets.clone(),
                        declassify: step.declassify,
                        fleet: fleet.map(str::to_string),
                    })
                });
                // Released whatever happened.
                let synced = self.sink.release_syncs_later();
                started?;
                recorded = Some(synced?);
            }
            for index in wave {
                let (host, transport) = &transports[index];
                // Only now: a crash before the start event leaves no output file that a
                // resume, which counts attempts from start events, would collide with.
                let recorder = match self.sink.audit.as_ref() {
                    Some(audit) => Some(
                        audit
                            .output(id, attempt, fleet.map(|_| host.as_str()))?
                            .in_background(),
                    ),
                    None => None,
                };
                let mut paths = OutputPaths::new(prepared.masker.clone(), recorder, prepared.secret_output);
                if fleet.is_some() {
                    paths.prefix(host);
                }
                running[index] = Some(Running {
                    host: host.clone(),
                    paths,
                    started: Instant::now(),
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    pgid: None,
                });
                flight.push(run_one(
                    index,
                    transport,
                    &prepared.spec,
                    tx.clone(),
                    cancel.child_token(),
                    recorded.clone().unwrap_or_else(crate::audit::Recorded::done),
                ));
            }
            if flight.is_empty() {
                // The batch is done: the next one rolls only while the budget holds.
                match batches.pop_front() {
                    Some(next) if !stopping && failures <= budget => {
                        queue = next.collect();
                        continue;
                    }
                    Some(next) => queue.extend(next),
                    None => {}
                }
                // What never started: the rest of this batch and every batch after it.
                queue.extend(batches.drain(..).flatten());
                break;
            }
            tokio::select! {
                Some((index, chunk)) = rx.recv() => {
                    self.take_chunk(id, attempt, &mut running[index], chunk)?;
                }
                Some((index, ending)) = flight.next() => {
                    // Everything it printed is in the channel already: show it before its end.
                    while let Ok((i, chunk)) = rx.try_recv() {
                        self.take_chunk(id, attempt, &mut running[i], chunk)?;
                    }
                    let Some(run) = running[index].take() else { continue };
                    let end = self.host_finished(id, step, fleet, attempt, &prepared, run, ending)?;
                    times.push((end.host.clone(), end.duration));
                    if end.outcome != StepOutcome::Ok {
                        failures += 1;
                        // Over budget: what has not started never will.
                        if fleet.is_some() && failures > budget {
                            stopping = true;
                        }
                    }
                    ended.push(end);
                }
                _ = beat.tick() => {
                    let elapsed = started.elapsed();
                    self.sink.show(&Event::Heartbeat {
                        step: id.to_string(),
                        elapsed,
                        target: prepared.target,
                    });
                }
                // A record that cannot be written (a full disk): stop rather than run on
                // unrecorded; the run then stops with the write's error.
                _ = check.tick(), if !cancel.is_cancelled() => {
                    // Also a signal that came before this command began (between the check at
                    // the step's start and here): it is not a change the channel reports.
                    let tripped = unattended && !cleaning && self.rails.trip.is_some();
                    if running.iter().flatten().any(|r| r.paths.failed()) || must_stop() || tripped {
                        stopping = true;
                        cancel.cancel();
                    }
                }
                Some(event) = Self::next_guard_event(&mut guard_rx) => {
                    self.take_guard_event(event)?;
                    if unattended && !cleaning && self.rails.trip.is_some() && !cancel.is_cancelled() {
                        stopping = true;
                        cancel.cancel();
                    }
                }
                Ok(()) = signals.changed(), if !cancel.is_cancelled() => {
                    signals.borrow_and_update();
                    if must_stop() {
                        stopping = true;
                        cancel.cancel();
                    }
                }
            }
        }
        drop(flight);
        self.return_guard_rx(guard_rx);
        let not_started: Vec<String> = queue.into_iter().map(|i| transports[i].0.clone()).collect();
        let run = HostsRun { ended, not_started };
        if let Some(fleet) = fleet {
            // In the fleet's order, not the order they finished in.
            let order = |h: &String| transports.iter().position(|(t, _)| t == h);
            times.sort_by_key(|(h, _)| order(h));
            let mut ok: Vec<String> = run
                .ended
                .iter()
                .filter(|e| e.outcome == StepOutcome::Ok)
                .map(|e| e.host.clone())
                .collect();
            ok.sort_by_key(&order);
            let mut failed: Vec<(String, StepOutcome)> = run
                .ended
                .iter()
                .filter(|e| e.outcome != StepOutcome::Ok)
                .map(|e| (e.host.clone(), e.outcome))
                .collect();
            failed.sort_by_key(|(h, _)| order(h));
            self.emit(Event::FleetFinished(FleetFinished {
                step: id.into(),
                fleet: fleet.to_string(),
                outcome: run.outcome(),
                attempt,
                duration: started.elapsed(),
                target: prepared.target,
                ok,
                failed,
                not_started: run.not_started.clone(),
                times,
                visit: None,
            }))?;
        }
        Ok(run)
    }

    /// Output of one host: kept for `expect`/`capture`, masked to its file and the screen. The
    /// remote process group, once known, is recorded at once: after a crash, it is what
    /// resume can stop.
    fn take_chunk(
        &mut self,
        id: &str,
        attempt: u32,
        running: &mut Option<Running>,
        chunk: Chunk,
    ) -> Result<(), Error> {
        let Some(run) = running.as_mut() else {
            return Ok(());
        };
        let (stream, bytes, keep) = match chunk {
            Chunk::Group(pgid) => {
                run.pgid = Some(pgid);
                return self.sink.record_only(&Event::RemoteProcess {
                    step: id.to_string(),
                    host: run.host.clone(),
                    attempt,
                    pgid,
                });
            }
            Chunk::Stdout(b) => (Stream::Stdout, b, &mut run.stdout),
            Chunk::Stderr(b) => (Stream::Stderr, b, &mut run.stderr),
        };
        let room = KEEP_BYTES.saturating_sub(keep.len());
        keep.extend_from_slice(&bytes[..bytes.len().min(room)]);
        run.paths.push(&mut self.sink, stream, bytes);
        Ok(())
    }

    /// A host's command ended: its output file closed, judged against `expect`, recorded.
    #[allow(clippy::too_many_arguments)]
    fn host_finished(
        &mut self,
        id: &str,
        step: &Step,
        fleet: Option<&str>,
        attempt: u32,
        prepared: &Prepared,
        mut run: Running,
        ending: Result<Ending, TransportError>,
    ) -> Result<HostEnd, Error> {
        let recorder = run.paths.finish(&mut self.sink);
        let duration = run.started.elapsed();
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
        let host = run.host.clone();
        let ending = ending.map_err(|e| Error::runtime(format!("step `{id}` on {host}: {e}")))?;
        let stop_word = if crate::signals::hung_up() {
            "SIGHUP (the terminal hung up)"
        } else {
            self.stop_word()
        };
        let (outcome, exit, reason) = self.guard_stopped(super::judge::judge(
            step,
            &ending,
            &run.stdout,
            &run.stderr,
            stop_word,
        ));
        let capture = step
            .capture
            .as_ref()
            .filter(|_| outcome == StepOutcome::Ok)
            .map(|name| {
                let text = String::from_utf8_lossy(&run.stdout).trim().to_string();
                (name.value.clone(), text, prepared.secret_output)
            });
        self.emit(Event::StepFinished(StepFinished {
            step: id.into(),
            host: host.clone(),
            outcome,
            exit,
            attempt,
            duration,
            target: prepared.target,
            reason: reason.clone(),
            output,
            capture: capture.as_ref().map(|(name, text, secret)| {
                let shown = if *secret {
                    crate::vars::MASK.to_string()
                } else {
                    text.clone()
                };
                (name.clone(), shown)
            }),
            fleet: fleet.map(str::to_string),
            visit: None,
        }))?;
        Ok(HostEnd {
            host,
            outcome,
            capture,
            pgid: run.pgid,
            duration,
            exit,
            reason,
        })
    }
}
