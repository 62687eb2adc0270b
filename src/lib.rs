//! `runbook`: walk incident runbooks, time them against their RTO, keep a tamper-evident trail.
//!
//! Everything is private to the crate (`unreachable_pub` is on): the binary calls [`main`], and
//! the integration tests and the bench generator reach the few parts they drive directly
//! through [`testing`].

mod alert;
mod approval;
mod audit;
mod book;
mod cases;
mod cli;
mod cmd;
mod diagnostic;
mod duration;
mod engine;
mod error;
mod events;
mod fleet;
mod identity;
mod import;
mod inventory;
mod lease;
mod listen;
mod lock;
mod mask;
mod output;
mod plan;
mod prompt;
mod render;
mod review;
mod script;
mod secrets;
mod shell;
mod signals;
mod stderr;
mod team;
mod transport;
mod unattended;
mod vars;
mod watch;

/// The whole program: answers a shell asking for completions, else parses argv, runs the
/// command and maps its error to an exit code.
pub fn main() -> std::process::ExitCode {
    use clap::Parser as _;
    // A shell asking for completions (the script of `runbook completions SHELL`) is answered
    // here, and the process ends.
    cmd::completions::answer_shell();
    let cli = cli::Cli::parse();
    match cmd::execute(cli) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(error) => {
            let message = error.to_string();
            if !message.is_empty() {
                stderr::ewriteln!("runbook: error: {message}");
            }
            std::process::ExitCode::from(error.exit_code())
        }
    }
}

/// What the integration tests (`tests/it`) and the bench helpers in `examples/` drive directly,
/// below the command line: the trail's writer and records, locks and leases, transports.
#[doc(hidden)]
pub mod testing {
    pub mod audit {
        pub use crate::audit::record::{Line, Record};
        pub use crate::audit::{
            AuditLog, GENESIS, Status, event_hash, new_run_id, read_events, sha256_hex, verify,
        };
    }
    pub mod duration {
        pub use crate::duration::PATTERN;
    }
    pub mod events {
        pub use crate::events::RunOutcome;
    }
    pub mod executor {
        pub use crate::engine::executor::{End, verdict};
    }
    pub mod inventory {
        pub use crate::inventory::{Binding, Inventory};
    }
    pub mod lease {
        pub use crate::lease::{Lease, LeaseError, take};
    }
    pub mod lock {
        pub use crate::lock::{Holder, LockError, RunLock, Taken, acquire, lock_path};
    }
    pub mod mask {
        pub use crate::mask::Masker;
    }
    pub mod parse {
        pub use crate::book::parse::Source;
    }
    pub mod review {
        pub use crate::review::fmt_ms;
    }
    pub mod runbook {
        pub use crate::book::runbook::{Outcome, Runbook};
    }
    pub mod script {
        pub use crate::script::shell_quote;
    }
    pub mod transport {
        pub use crate::transport::{
            CancellationToken, Chunk, CommandSpec, ConnectError, Ending, Ssh, SshOptions, Transport,
            canonical, wire_form,
        };
    }
    pub mod validate {
        pub use crate::book::validate::{parse, validate};
    }
}
