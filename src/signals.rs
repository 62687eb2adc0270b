//! Signals in one place (nextest's `signal.rs`): SIGINT, SIGTERM and SIGQUIT stop the running
//! command (on every host) and, unattended, end the run `interrupted` after its cleanup;
//! SIGHUP (the terminal or the jump-host session went away) stops the command too, but leaves
//! the trail open, without cleanup or seal, for `resume`. SIGPIPE is ignored (Rust's default):
//! a closed stderr never stops a run, whose record is the trail. The executor reacts to one
//! `State`, never to signals themselves.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::error::Error;

/// A signal the run reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
    Quit,
    Hangup,
}

impl Signal {
    /// How the operator names it in messages.
    pub fn word(self) -> &'static str {
        match self {
            Signal::Interrupt => "Ctrl-C",
            Signal::Terminate => "SIGTERM",
            Signal::Quit => "SIGQUIT",
            Signal::Hangup => "SIGHUP",
        }
    }
}

/// What has arrived so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State {
    /// SIGINT, SIGTERM and SIGQUIT received.
    pub stops: u64,
    /// The latest of them.
    pub last: Option<Signal>,
    /// SIGHUP received.
    pub hangup: bool,
}

/// Ctrl-C pressed at a prompt: the prompt handled it (it asks whether to abort), so it must
/// not also stop the next command when the signal reaches the listener late.
static AT_PROMPT: AtomicU64 = AtomicU64::new(0);

/// Counts a Ctrl-C that a prompt has dealt with.
pub fn consumed_at_prompt() {
    AT_PROMPT.fetch_add(1, Ordering::SeqCst);
}

impl State {
    /// Stops not dealt with by a prompt: the ones a running command must obey.
    pub fn effective_stops(&self) -> u64 {
        self.stops.saturating_sub(AT_PROMPT.load(Ordering::SeqCst))
    }
}

/// From here on these signals no longer kill the process: they update the `State` the
/// executor watches.
pub fn listen() -> Result<watch::Receiver<State>, Error> {
    let install = |kind| signal(kind).map_err(|e| Error::runtime(format!("cannot listen for signals: {e}")));
    let (mut int, mut term, mut quit, mut hup) = (
        install(SignalKind::interrupt())?,
        install(SignalKind::terminate())?,
        install(SignalKind::quit())?,
        install(SignalKind::hangup())?,
    );
    let (state, receiver) = watch::channel(State::default());
    tokio::spawn(async move {
        loop {
            let got = tokio::select! {
                Some(()) = int.recv() => Signal::Interrupt,
                Some(()) = term.recv() => Signal::Terminate,
                Some(()) = quit.recv() => Signal::Quit,
                Some(()) = hup.recv() => Signal::Hangup,
                else => break,
            };
            state.send_modify(|s| match got {
                Signal::Hangup => s.hangup = true,
                other => {
                    s.stops += 1;
                    s.last = Some(other);
                }
            });
        }
    });
    Ok(receiver)
}
