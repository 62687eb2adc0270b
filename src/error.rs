//! The error type every command returns, and the exit codes of design §9 in one place.

/// Exit codes (design §9).
pub(crate) mod exit {
    /// Success; `run`/`resume` ended `resolved`; `drill` PASS.
    pub(crate) const OK: u8 = 0;
    /// Runtime error (I/O, connection lost for good); `audit verify`: tampered.
    pub(crate) const RUNTIME: u8 = 1;
    /// Usage, validation or pre-flight error: nothing was executed.
    pub(crate) const USAGE: u8 = 2;
    /// Ended `escalated` or `failed`, or aborted by the operator.
    pub(crate) const NOT_RESOLVED: u8 = 3;
    /// `drill`: resolved but over the RTO; `audit verify`: incomplete (no seal).
    pub(crate) const OVER_RTO_OR_INCOMPLETE: u8 = 4;
    /// `drills`: a drill is overdue (no PASS within its `drill.every`, or never).
    pub(crate) const OVERDUE: u8 = 5;
    /// Interrupted by a signal.
    pub(crate) const INTERRUPTED: u8 = 130;
    /// The terminal hung up (SIGHUP): the trail is left open for `resume`.
    pub(crate) const HANGUP: u8 = 129;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments, a runbook that does not validate, a failed pre-flight: nothing ran.
    #[error("{0}")]
    Usage(String),
    /// Something failed at run time (I/O, a connection lost for good).
    #[error("{0}")]
    Runtime(String),
    /// The message has been printed already; exit with this code.
    #[error("")]
    Exit(u8),
    /// The operator aborted at a prompt (Ctrl-C, then yes or a second Ctrl-C): the run's
    /// cleanup runs and the trail is sealed `aborted`.
    #[error("aborted by the operator")]
    Aborted,
    /// The terminal went away (SIGHUP, or a prompt whose terminal is gone): stop, record it,
    /// and leave the trail open for `resume`.
    #[error("{0}")]
    Hangup(String),
    /// SIGTERM or SIGQUIT at a prompt: the run ends `interrupted` after its cleanup, as
    /// unattended (nobody is asked: a shutdown does not wait).
    #[error("interrupted by {}", .0.word())]
    Stopped(crate::signals::Signal),
    /// A connection was lost mid-step with nobody there to decide: the trail is left open.
    #[error("{0}")]
    Lost(String),
    /// The operator handed the run off at a prompt (design §19): nothing runs, the trail is
    /// left open with a `handed off` event, and a colleague resumes it.
    #[error("handed off")]
    HandedOff(HandOff),
}

/// A hand-off asked for at a prompt: the operator's note (may be empty) and the step it was
/// asked at (filled in by the walk, which knows where it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandOff {
    pub note: String,
    pub step: Option<String>,
}

impl Error {
    /// A hand-off that does not say its step yet is at `step`.
    pub(crate) fn handed_off_at(self, step: &str) -> Error {
        match self {
            Error::HandedOff(HandOff { note, step: None }) => Error::HandedOff(HandOff {
                note,
                step: Some(step.to_string()),
            }),
            other => other,
        }
    }
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }

    pub fn runtime(message: impl Into<String>) -> Self {
        Error::Runtime(message.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Runtime(_) => exit::RUNTIME,
            Error::Exit(code) => *code,
            Error::Aborted => exit::NOT_RESOLVED,
            Error::Hangup(_) => exit::HANGUP,
            Error::Stopped(_) => exit::INTERRUPTED,
            Error::Lost(_) => exit::RUNTIME,
            // Stopped on purpose, for a colleague to go on: a success of its own (design §19).
            Error::HandedOff(_) => exit::OK,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Runtime(e.to_string())
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
