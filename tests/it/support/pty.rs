//! Driving the real binary in a pseudo-terminal, as a person at a keyboard would.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rexpect::session::{PtySession, spawn_with_options};

use super::cmd::bin;

/// Arrow down, as a terminal sends it.
pub const DOWN: &str = "\x1b[B";

/// `runbook ARGS... --audit-dir AUDIT` in a pty, with colours on, no agent and no catalog from
/// the developer's shell; output is read with the escape sequences stripped.
pub fn spawn(args: &[&str], audit: &Path) -> PtySession {
    let mut command = Command::new(bin());
    command
        .args(args)
        .arg("--audit-dir")
        .arg(audit)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("RUNBOOK_PATH")
        .env_remove("RUNBOOK_SIGNING_KEY")
        .env_remove("SSH_AUTH_SOCK")
        .env("USER", "tester");
    let options = rexpect::reader::Options::new()
        .timeout_ms(Some(20_000))
        .strip_ansi_escape_codes(true);
    spawn_with_options(command, options).expect("the binary starts in a pty")
}

/// Sends keys once the prompt is reading: keys typed before it switches the terminal to raw
/// mode are flushed away, as they would be for a person typing ahead.
pub fn keys(session: &mut PtySession, keys: &str) {
    std::thread::sleep(Duration::from_millis(300));
    session.send(keys).unwrap();
    session.flush().unwrap();
}

/// The exit code of the session's process.
pub fn wait_exit(session: &mut PtySession) -> i32 {
    match session.process_mut().wait().unwrap() {
        nix::sys::wait::WaitStatus::Exited(_, code) => code,
        other => panic!("unexpected end: {other:?}"),
    }
}

/// Whether a process whose command line holds `pattern` runs (`pgrep -f`).
pub fn pgrep(pattern: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
