//! `runbook`: walk incident runbooks, time them against their RTO, keep a tamper-evident trail.

/// `eprintln!` that cannot panic: when the terminal went away (EIO) or stderr is closed, the
/// line is lost, never the process or its exit code (issue 23: the trail is the record).
#[macro_export]
macro_rules! ewriteln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that cannot panic (see `ewriteln!`).
#[macro_export]
macro_rules! ewrite {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

pub mod alert;
pub mod approval;
pub mod audit;
pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod diagnostic;
pub mod dry_run;
pub mod duration;
pub mod error;
pub mod events;
pub mod executor;
pub mod fleet;
pub mod graph;
pub mod identity;
pub mod inventory;
pub mod keys;
pub mod launch;
pub mod lease;
pub mod lock;
pub mod mask;
pub mod notify;
pub mod otlp;
pub mod output;
pub mod parse;
pub mod plan;
pub mod preflight;
pub mod prompt;
pub mod render;
pub mod resume;
pub mod review;
pub mod runbook;
pub mod script;
pub mod secrets;
pub mod shell;
pub mod signals;
pub mod sink;
pub mod transport;
pub mod ui;
pub mod validate;
pub mod vars;
