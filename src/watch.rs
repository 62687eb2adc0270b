//! `runbook watch` (design §19): follows a run's trail as it grows, read-only, and shows each
//! record as the operator's screen words it, until the seal. The bytes come from a `Source`
//! (the local file, or the trail on the audit host: `remote.rs`); the lines are checked against the hash chain
//! as they come, so a watcher never shows a record the trail would not vouch for.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::audit::ChainFollower;
use crate::audit::record::{Line, Record};
use crate::error::{Error, exit};

mod remote;
mod screen;
pub(crate) mod source;

pub(crate) use remote::Remote;
use screen::Screen;
pub(crate) use source::{LocalFile, Source};

/// How long a source is waited on at a time: the status line ticks and Ctrl-C is noticed at
/// this pace.
const TICK: Duration = Duration::from_millis(200);

pub(crate) struct Options {
    /// The first `no event for N s` after this much quiet, then one every `quiet_every`
    /// (quiet counted from the last line's time when the watch began, from its arrival after).
    pub quiet_after: Duration,
    pub quiet_every: Duration,
    /// Keep a ticking status line under the records (a terminal).
    pub status_line: bool,
}

/// Why watching ended, short of an error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The seal was read (and holds).
    Sealed,
    /// `stop` was set (Ctrl-C).
    Interrupted,
}

/// Follows the trail of run `run` from `source`, writing to `out` until the seal or `stop`.
/// `Err`: the trail is tampered with, shrank, was replaced, or cannot be read.
pub(crate) fn follow(
    source: &mut dyn Source,
    run: &str,
    options: &Options,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> Result<End, Error> {
    let mut view = View {
        screen: Screen::default(),
        chain: ChainFollower::new(run),
        name: source.name(),
        options,
        out,
        status: None,
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut last_event = Instant::now();
    let mut next_notice = options.quiet_after;
    let mut caught_up = false;
    // Quiet before `last_event`: the age of what was there when the watch began.
    let mut quiet_before = Duration::ZERO;
    loop {
        if stop.load(Ordering::SeqCst) {
            view.clear_status()?;
            return Ok(End::Interrupted);
        }
        let next = source.next(TICK).inspect_err(|_| {
            let _ = view.clear_status();
        })?;
        match next {
            source::Next::Bytes(bytes) => {
                pending.extend_from_slice(&bytes);
                let mut start = 0;
                while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
                    let line = &pending[start..start + end];
                    start += end + 1;
                    if view.line(line)? {
                        // Whatever follows the seal, already there, breaks the chain.
                        let mut rest = pending[start..].to_vec();
                        if let Ok(source::Next::Bytes(more)) = source.next(Duration::ZERO) {
                            rest.extend_from_slice(&more);
                        }
                        if let Some(after) = rest.split(|b| *b == b'\n').find(|l| !l.is_empty()) {
                            view.line(after)?;
                        }
                        return Ok(End::Sealed);
                    }
                }
                pending.drain(..start);
                if start > 0 {
                    last_event = Instant::now();
                    quiet_before = Duration::ZERO;
                    next_notice = options.quiet_after;
                }
            }
            source::Next::Idle => {
                // A seal whose newline never comes still seals (as `verify` has it); any other
                // line without its newline is still being written: waited for.
                let seal = !pending.is_empty()
                    && Line::decode(&pending).is_some_and(|l| matches!(l.record, Record::RunFinished(_)));
                if seal && view.chain.clone().check(&pending).is_ok() && view.line(&pending)? {
                    return Ok(End::Sealed);
                }
                // What was there when the watch began counts from when it was written: a run
                // quiet for ten minutes says so at once, not thirty seconds later.
                if !caught_up {
                    caught_up = true;
                    let age = view
                        .screen
                        .last_at
                        .map(|at| (Utc::now() - at).to_std().unwrap_or_default())
                        .unwrap_or_default();
                    quiet_before = age.saturating_sub(last_event.elapsed());
                }
                let quiet = quiet_before + last_event.elapsed();
                if quiet >= next_notice {
                    let budget = view
                        .screen
                        .budget(Utc::now())
                        .map(|b| format!(" ({b})"))
                        .unwrap_or_default();
                    view.print(&[format!(
                        "{} no event for {} s{budget}",
                        chrono::Local::now().format("%H:%M:%S"),
                        quiet.as_secs()
                    )])?;
                    next_notice = quiet + options.quiet_every;
                }
            }
        }
        view.tick(quiet_before + last_event.elapsed())?;
    }
}

/// The lines checked, shown, and the status line under them.
struct View<'a> {
    screen: Screen,
    chain: ChainFollower,
    name: String,
    options: &'a Options,
    out: &'a mut dyn Write,
    /// The status line on screen now, if any.
    status: Option<String>,
}

impl View<'_> {
    /// One whole line of the trail: checked, then shown. `true`: it was the seal.
    fn line(&mut self, bytes: &[u8]) -> Result<bool, Error> {
        if let Err(broken) = self.chain.check(bytes) {
            self.clear_status()?;
            return Err(Error::runtime(format!(
                "`{}` was tampered with at seq {} (line {}): {}; stopped watching",
                self.name, broken.seq, broken.line, broken.reason
            )));
        }
        let Some(line) = Line::decode(bytes) else {
            return Ok(false);
        };
        let lines = self.screen.render(&line);
        self.print(&lines)?;
        Ok(self.chain.sealed())
    }

    fn print(&mut self, lines: &[String]) -> Result<(), Error> {
        if lines.is_empty() {
            return Ok(());
        }
        self.clear_status()?;
        let mut text = lines.join("\n");
        text.push('\n');
        self.write(text.as_bytes())
    }

    /// Redraws the status line when what it says changed (once a second at most).
    fn tick(&mut self, quiet: Duration) -> Result<(), Error> {
        if !self.options.status_line || self.chain.sealed() {
            return Ok(());
        }
        let Some(budget) = self.screen.budget(Utc::now()) else {
            return Ok(());
        };
        let text = format!("⏱ {budget} · last event {} s ago", quiet.as_secs());
        if self.status.as_deref() != Some(text.as_str()) {
            self.write(format!("\r\x1b[2K{text}").as_bytes())?;
            self.status = Some(text);
        }
        Ok(())
    }

    fn clear_status(&mut self) -> Result<(), Error> {
        if self.status.take().is_some() {
            self.write(b"\r\x1b[2K")?;
        }
        Ok(())
    }

    /// A closed stdout (`runbook watch last | head`) ends the watch quietly, with success.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        match self.out.write_all(bytes).and_then(|()| self.out.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::Exit(exit::OK)),
            Err(e) => Err(Error::runtime(format!("cannot write to stdout: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests;
