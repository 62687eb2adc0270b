//! `runbook watch RUN|last`: follows a run as it goes, read-only (design §19): from the local
//! audit dir, or with `--audit-host` (or `RUNBOOK_AUDIT_HOST`) from the team's audit host over
//! SSH. The following itself is `crate::watch`'s.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::cli::WatchArgs;
use crate::cli::config::Config;
use crate::error::{Error, Result, exit};
use crate::watch::{End, LocalFile, Options, Remote, Source, follow};

/// After the first `no event for N s`, one more every this long of quiet.
const QUIET_EVERY: Duration = Duration::from_secs(60);

pub(super) fn execute(config: &Config, args: &WatchArgs) -> Result<u8> {
    // A path is a local file, whatever the audit host; the inventory's `audit_host` is not
    // read: a watch follows the audit host only when told so (flag or environment).
    let is_path = args.run.contains('/');
    let (mut source, run): (Box<dyn Source>, String) = match &config.audit_host {
        Some(host) if !is_path => {
            let (remote, run) = Remote::open(host, &args.ssh.options(), &args.run)?;
            (Box::new(remote), run)
        }
        _ => {
            let path = crate::audit::resolve_run(&config.audit_dir, &args.run)?;
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let run = file_name.strip_suffix(".jsonl").unwrap_or(&file_name).to_string();
            (Box::new(LocalFile::open(&path)?), run)
        }
    };
    let stop = interrupted()?;
    let term_ok = std::env::var("TERM").is_ok_and(|t| !t.is_empty() && t != "dumb");
    let options = Options {
        quiet_after: args.quiet_after,
        quiet_every: QUIET_EVERY,
        status_line: std::io::stdout().is_terminal() && term_ok,
    };
    let mut out = std::io::stdout().lock();
    let ended = follow(source.as_mut(), &run, &options, &stop, &mut out).map_err(|e| source.explain(e));
    // Hangs up on the audit host (its tail ended) before saying how it went.
    drop(source);
    match ended? {
        End::Sealed => Ok(exit::OK),
        End::Interrupted => {
            crate::stderr::ewriteln!("runbook: stopped watching {run} (Ctrl-C); the run itself goes on");
            Ok(exit::INTERRUPTED)
        }
    }
}

/// Set by SIGINT from here on, instead of the process being killed: the watch ends with 130
/// once its status line is cleared. Only SIGINT: a SIGTERM still ends it at once.
fn interrupted() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    // SAFETY: the action only stores to an atomic, which is async-signal-safe.
    unsafe { signal_hook_registry::register(libc::SIGINT, move || set.store(true, Ordering::SeqCst)) }
        .map_err(|e| Error::runtime(format!("cannot listen for Ctrl-C: {e}")))?;
    Ok(flag)
}
