//! Signals in one place (nextest's `signal.rs`): SIGINT, SIGTERM and SIGQUIT stop the running
//! command (on every host); SIGINT then ends an unattended run `interrupted` after its cleanup,
//! SIGTERM and SIGQUIT any run, interactive too (a shutdown waits for nobody). SIGHUP (the
//! terminal or the jump-host session went away) stops the command too, but leaves the trail
//! open, without cleanup or seal, for `resume`. At a prompt, only SIGINT asks whether to abort.
//! SIGPIPE is ignored (Rust's default): a closed stderr never stops a run, whose record is the
//! trail. The executor reacts to one `State`, never to signals themselves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

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

    fn code(self) -> u8 {
        self as u8 + 1
    }

    fn from_code(code: u8) -> Option<Signal> {
        [Signal::Interrupt, Signal::Terminate, Signal::Quit, Signal::Hangup]
            .get(usize::from(code).checked_sub(1)?)
            .copied()
    }
}

/// What has arrived so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// SIGINT, SIGTERM and SIGQUIT received.
    pub stops: u64,
    /// The latest of them.
    pub last: Option<Signal>,
    /// SIGHUP received.
    pub hangup: bool,
}

// Counted in the signal handler itself, not by a task: a prompt blocks the run's one thread,
// and must know at once why its read was interrupted (issue 23).
static STOPS: AtomicU64 = AtomicU64::new(0);
static INTERRUPTS: AtomicU64 = AtomicU64::new(0);
static LAST: AtomicU8 = AtomicU8::new(0);
static HANGUP: AtomicBool = AtomicBool::new(false);
/// The first SIGTERM or SIGQUIT: it ends the run, interactive or not.
static TERMINATED: AtomicU8 = AtomicU8::new(0);

/// Ctrl-C pressed at a prompt: the prompt handled it (it asks whether to abort), so it must
/// not also stop the next command when the signal reaches the listener late.
static AT_PROMPT: AtomicU64 = AtomicU64::new(0);

/// Counts a Ctrl-C that a prompt has dealt with.
pub(crate) fn consumed_at_prompt() {
    AT_PROMPT.fetch_add(1, Ordering::SeqCst);
}

impl State {
    /// Stops not dealt with by a prompt: the ones a running command must obey.
    pub(crate) fn effective_stops(&self) -> u64 {
        self.stops.saturating_sub(AT_PROMPT.load(Ordering::SeqCst))
    }
}

/// What has arrived, as of now.
pub(crate) fn now() -> State {
    State {
        stops: STOPS.load(Ordering::SeqCst),
        last: Signal::from_code(LAST.load(Ordering::SeqCst)),
        hangup: HANGUP.load(Ordering::SeqCst),
    }
}

/// The SIGTERM or SIGQUIT that ends the run, if one came: nobody is asked anything after it
/// (a shutdown does not wait for a human); the run's cleanup runs and it is sealed.
pub(crate) fn terminated() -> Option<Signal> {
    Signal::from_code(TERMINATED.load(Ordering::SeqCst))
}

/// SIGINTs received so far: a prompt tells Ctrl-C from other signals with it.
pub(crate) fn interrupts() -> u64 {
    INTERRUPTS.load(Ordering::SeqCst)
}

/// Whether the terminal hung up (SIGHUP).
pub(crate) fn hung_up() -> bool {
    HANGUP.load(Ordering::SeqCst)
}

fn received(signal: Signal) {
    // Only atomics: this runs in the signal handler.
    match signal {
        Signal::Hangup => HANGUP.store(true, Ordering::SeqCst),
        other => {
            STOPS.fetch_add(1, Ordering::SeqCst);
            if other == Signal::Interrupt {
                INTERRUPTS.fetch_add(1, Ordering::SeqCst);
            }
            LAST.store(other.code(), Ordering::SeqCst);
            if other != Signal::Interrupt {
                let _ = TERMINATED.compare_exchange(0, other.code(), Ordering::SeqCst, Ordering::SeqCst);
            }
        }
    }
}

/// Wakes a prompt's `poll` (EINTR): its handler does nothing.
const NUDGE: libc::c_int = libc::SIGUSR2;

fn install_handlers() -> Result<(), String> {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        // The nudge's first: the guard must never send it unhandled (it would kill).
        let handlers: [(libc::c_int, Option<Signal>); 5] = [
            (NUDGE, None),
            (libc::SIGINT, Some(Signal::Interrupt)),
            (libc::SIGTERM, Some(Signal::Terminate)),
            (libc::SIGQUIT, Some(Signal::Quit)),
            (libc::SIGHUP, Some(Signal::Hangup)),
        ];
        for (number, signal) in handlers {
            // SAFETY: the action only touches atomics, which is async-signal-safe.
            let registered = unsafe {
                signal_hook_registry::register(number, move || {
                    if let Some(signal) = signal {
                        received(signal);
                    }
                })
            };
            registered.map_err(|e| format!("cannot listen for signals: {e}"))?;
        }
        Ok(())
    });
    installed.clone()
}

/// From here on these signals no longer kill the process: they update the `State` the
/// executor watches (a change is sent on the channel; `now()` reads it). `Err`: why not.
pub(crate) fn listen() -> Result<watch::Receiver<State>, String> {
    install_handlers()?;
    let install = |kind| signal(kind).map_err(|e| format!("cannot listen for signals: {e}"));
    let (mut int, mut term, mut quit, mut hup) = (
        install(SignalKind::interrupt())?,
        install(SignalKind::terminate())?,
        install(SignalKind::quit())?,
        install(SignalKind::hangup())?,
    );
    let (state, receiver) = watch::channel(now());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(()) = int.recv() => {}
                Some(()) = term.recv() => {}
                Some(()) = quit.recv() => {}
                Some(()) = hup.recv() => {}
                else => break,
            }
            state.send_modify(|s| *s = now());
        }
    });
    Ok(receiver)
}

/// While a prompt waits for a key, a SIGHUP, SIGTERM or SIGQUIT must end the wait. The
/// signal interrupts the prompt's `poll` only when it reaches that thread while it blocks;
/// it may come just before, or reach another thread. So, while one is pending and the prompt
/// lasts, a thread nudges the prompt's thread every 50 ms.
pub(crate) struct PromptGuard {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PromptGuard {
    pub(crate) fn start() -> PromptGuard {
        // SAFETY: pthread_self has no preconditions.
        let prompt = unsafe { libc::pthread_self() };
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("prompt-guard".into())
            .spawn(move || {
                while !stopped.load(Ordering::SeqCst) {
                    // Unparked when the prompt ends, so an answer never waits for a tick.
                    std::thread::park_timeout(Duration::from_millis(50));
                    if (hung_up() || terminated().is_some()) && !stopped.load(Ordering::SeqCst) {
                        // SAFETY: the prompt's thread lives until this thread is joined.
                        unsafe { libc::pthread_kill(prompt, NUDGE) };
                    }
                }
            })
            .ok();
        PromptGuard { stop, thread }
    }
}

impl Drop for PromptGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
