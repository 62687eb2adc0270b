//! Signals an incident brings, in a real pseudo-terminal: the terminal closing (SIGHUP) stops
//! the command, here or on the host, and leaves the trail open for `resume` without running
//! the cleanup; a Ctrl-C at a prompt asks before it aborts, and an abort runs the cleanup.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::cmd::runbook;
use crate::support::pty::{Closable, keys, pgrep, pid_of, spawn, wait_exit, wait_exit_within, wait_reading};
use crate::support::sshd::Sshd;
use crate::support::trail::audit_files;

#[track_caller]
fn wait_gone(pattern: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while pgrep(pattern) {
        assert!(Instant::now() < deadline, "`{pattern}` is still running");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A runbook whose step sleeps (`sleep SECS`, an odd number that names it for pgrep) the first
/// time only, so that a resume finishes it, and whose cleanup leaves a mark.
fn sleeper(dir: &Path, secs: &str, target: bool) -> std::path::PathBuf {
    let flag = dir.join("ran-once");
    let cleaned = dir.join("cleaned");
    let book = dir.join("hup.yaml");
    let targets = if target { "targets:\n  app: {}\n" } else { "" };
    std::fs::write(
        &book,
        format!(
            "version: 1\nid: hup\ntitle: Hangup\nrto: 5m\n{targets}steps:\n  - id: slow\n    title: Slow\n    idempotent: true\n    run: if [ -e {flag} ]; then echo again; exit 0; fi; touch {flag}; echo started; sleep {secs}\n  - id: done\n    title: Done\n    end: resolved\ncleanup:\n  - id: tidy\n    title: Tidy\n    target: local\n    run: touch {cleaned}\n",
            flag = flag.display(),
            cleaned = cleaned.display()
        ),
    )
    .unwrap();
    book
}

fn hangup_during_a_step(args: &[&str], audit: &Path, dir: &Path, secs: &str) {
    let mut s = spawn(args, audit);
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("started").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pgrep(&format!("sleep {secs}")) {
        assert!(Instant::now() < deadline, "the step's command never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.process_mut().signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    assert_eq!(wait_exit(&mut s), 129);
    wait_gone(&format!("sleep {secs}"));
    assert!(!dir.join("cleaned").exists(), "no cleanup after a hangup");
    let trail = audit_files(audit).pop().unwrap();
    let text = std::fs::read_to_string(&trail).unwrap();
    assert!(text.contains("\"event\":\"hangup\""), "{text}");
    assert!(!text.contains("\"event\":\"run finished\""), "not sealed: {text}");
    runbook(["audit", "verify"]).arg(&trail).expect_code(4);
}

#[test]
fn sighup_stops_the_local_command_and_leaves_the_trail_open_for_resume() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "31.6061", false);
    hangup_during_a_step(
        &["run", book.to_str().unwrap()],
        audit.path(),
        dir.path(),
        "31.6061",
    );
    let trail = audit_files(audit.path()).pop().unwrap();
    // Resume continues: the idempotent step runs again, then the cleanup, then the seal.
    runbook(["resume", trail.to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit.path())
        .expect_code(0);
    assert!(dir.path().join("cleaned").exists());
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
}

#[test]
fn sighup_stops_the_remote_command_too() {
    let sshd = Sshd::start();
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "31.7071", true);
    let target = format!("app={}", sshd.dest());
    let ssh = sshd.ssh_args();
    let mut args = vec!["run", book.to_str().unwrap(), "--target", &target];
    args.extend(ssh.iter().map(String::as_str));
    // The step runs on the host (its flag there is the same file: one machine).
    hangup_during_a_step(&args, audit.path(), dir.path(), "31.7071");
}

#[test]
fn ctrl_c_at_a_prompt_asks_and_an_abort_runs_the_cleanup() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "32.8081", false);
    let mut s = spawn(&["run", book.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.send_control('c').unwrap();
    s.exp_string("Ctrl-C: abort the run?").unwrap();
    keys(&mut s, "n\r");
    // A reflex is forgiven: the same prompt again, and nothing ran.
    s.exp_string("What now?").unwrap();
    assert!(!dir.path().join("ran-once").exists());
    std::thread::sleep(Duration::from_millis(300));
    s.send_control('c').unwrap();
    s.exp_string("Ctrl-C: abort the run?").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.send_control('c').unwrap();
    s.exp_string("run aborted").unwrap();
    assert_eq!(wait_exit(&mut s), 3);
    assert!(dir.path().join("cleaned").exists(), "the abort ran the cleanup");
    let trail = audit_files(audit.path()).pop().unwrap();
    let text = std::fs::read_to_string(&trail).unwrap();
    assert!(text.contains("\"outcome\":\"aborted\""), "{text}");
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
    runbook(["resume", trail.to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit.path())
        .expect_code(2);
}

/// The trail a hangup leaves: a `hangup` event, no seal, no cleanup run, and `audit verify`
/// says incomplete (exit 4). Returns the trail.
#[track_caller]
fn left_open(audit: &Path, dir: &Path) -> std::path::PathBuf {
    assert!(!dir.join("cleaned").exists(), "no cleanup after a hangup");
    let trail = audit_files(audit).pop().unwrap();
    let text = std::fs::read_to_string(&trail).unwrap();
    assert!(text.contains("\"event\":\"hangup\""), "{text}");
    assert!(!text.contains("\"event\":\"run finished\""), "not sealed: {text}");
    assert!(!text.contains("aborted"), "nobody aborted: {text}");
    runbook(["audit", "verify"]).arg(&trail).expect_code(4);
    trail
}

/// The trail a SIGTERM leaves: cleanup run, sealed `interrupted` naming SIGTERM.
#[track_caller]
fn sealed_interrupted_by_sigterm(audit: &Path, dir: &Path) -> Vec<serde_json::Value> {
    assert!(dir.join("cleaned").exists(), "the cleanup ran");
    let trail = audit_files(audit).pop().unwrap();
    let events = crate::support::trail::events(&trail);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "run finished", "{events:#?}");
    assert_eq!(last["outcome"], "interrupted", "{last}");
    let message = last["message"].as_str().unwrap();
    assert!(message.contains("SIGTERM"), "{message}");
    assert!(!message.contains("Ctrl-C"), "{message}");
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
    events
}

/// Issue 23 item 5: the terminal closed (its pty master) while a prompt waits. Every write
/// to it fails (EIO): the run must still exit 129, nothing on the way out needing it.
#[test]
fn a_terminal_closed_at_a_prompt_exits_129_and_leaves_the_trail_open() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "0.9091", false);
    let mut s = Closable::spawn(&["run", book.to_str().unwrap()], audit.path());
    s.expect("What now?");
    s.close();
    assert_eq!(
        s.wait_exit(Duration::from_secs(20)),
        129,
        "129, not a panic (101)"
    );
    let trail = left_open(audit.path(), dir.path());
    assert!(!dir.path().join("ran-once").exists(), "the step never ran");
    runbook(["resume", trail.to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit.path())
        .expect_code(0);
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
}

/// Issue 23 item 5, while a command runs: it is stopped, and the run exits 129.
#[test]
fn a_terminal_closed_during_a_command_stops_it_and_exits_129() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "33.9191", false);
    let mut s = Closable::spawn(&["run", book.to_str().unwrap()], audit.path());
    s.expect("What now?");
    s.send("\r");
    s.expect("started");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pgrep("sleep 33.9191") {
        assert!(Instant::now() < deadline, "the step's command never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.close();
    assert_eq!(
        s.wait_exit(Duration::from_secs(20)),
        129,
        "129, not a panic (101)"
    );
    wait_gone("sleep 33.9191");
    let trail = left_open(audit.path(), dir.path());
    runbook(["resume", trail.to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit.path())
        .expect_code(0);
    assert!(dir.path().join("cleaned").exists());
}

/// Issue 23 item 6: SIGHUP at a prompt (the terminal still there) is not a Ctrl-C: no "abort
/// the run?", but a hangup: the trail open, exit 129, and the run resumable.
#[test]
fn sighup_at_a_prompt_is_a_hangup_not_a_ctrl_c() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "0.1011", false);
    let mut s = spawn(&["run", book.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    s.process_mut().signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    assert_eq!(wait_exit_within(&mut s, Duration::from_secs(20)), 129);
    let rest = s.exp_eof().unwrap_or_default();
    assert!(!rest.contains("abort the run"), "{rest}");
    let trail = left_open(audit.path(), dir.path());
    runbook(["resume", trail.to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit.path())
        .expect_code(0);
    assert!(dir.path().join("cleaned").exists());
}

/// Issue 23 item 6, the second half: a SIGHUP while "abort the run?" waits is not the
/// second Ctrl-C that aborts: nothing is sealed `aborted`, the trail stays open.
#[test]
fn sighup_at_the_abort_question_is_a_hangup_not_an_abort() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "0.2021", false);
    let mut s = spawn(&["run", book.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.send_control('c').unwrap();
    s.exp_string("Ctrl-C: abort the run?").unwrap();
    s.process_mut().signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    assert_eq!(wait_exit_within(&mut s, Duration::from_secs(20)), 129);
    let rest = s.exp_eof().unwrap_or_default();
    assert!(!rest.contains("run aborted"), "{rest}");
    left_open(audit.path(), dir.path());
}

/// Issue 23 item 7: SIGTERM (`kill`, `systemctl stop`, a shutdown) at a prompt ends an
/// interactive run as it ends an unattended one: cleanup, sealed `interrupted`, exit 130,
/// without waiting for anybody, and named SIGTERM on screen and in the trail.
#[test]
fn sigterm_at_a_prompt_ends_the_run_interrupted_after_its_cleanup() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "0.3031", false);
    let mut s = spawn(&["run", book.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    s.process_mut().signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(wait_exit_within(&mut s, Duration::from_secs(20)), 130);
    let rest = s.exp_eof().unwrap_or_default();
    assert!(rest.contains("SIGTERM"), "{rest}");
    assert!(!rest.contains("Ctrl-C"), "{rest}");
    assert!(!rest.contains("What now?"), "no menu after SIGTERM: {rest}");
    assert!(!dir.path().join("ran-once").exists(), "the step never ran");
    sealed_interrupted_by_sigterm(audit.path(), dir.path());
}

/// Issue 23 item 7, while a command runs: it is stopped, and then no menu waits: the run
/// ends `interrupted` after its cleanup, exit 130.
#[test]
fn sigterm_during_a_command_stops_it_and_ends_the_run_interrupted() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "34.4041", false);
    let mut s = spawn(&["run", book.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("started").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pgrep("sleep 34.4041") {
        assert!(Instant::now() < deadline, "the step's command never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.process_mut().signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(wait_exit_within(&mut s, Duration::from_secs(20)), 130);
    wait_gone("sleep 34.4041");
    let rest = s.exp_eof().unwrap_or_default();
    assert!(rest.contains("SIGTERM"), "{rest}");
    assert!(!rest.contains("What now?"), "no menu after SIGTERM: {rest}");
    let events = sealed_interrupted_by_sigterm(audit.path(), dir.path());
    assert!(
        events.iter().any(|e| e["event"] == "step finished"
            && e["step"] == "slow"
            && e["reason"] == "stopped by SIGTERM"),
        "{events:#?}"
    );
}

/// Issue 23 item 7, while a failed step waits to retry: the wait ends, no menu follows, and
/// the end names SIGTERM.
#[test]
fn sigterm_while_a_step_waits_to_retry_ends_the_run_interrupted() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cleaned = dir.path().join("cleaned");
    let book = dir.path().join("retry.yaml");
    std::fs::write(
        &book,
        format!(
            "version: 1\nid: retry\ntitle: Retry\nrto: 5m\nsteps:\n  - id: flaky\n    title: Flaky\n    run: exit 1\n    retry: {{attempts: 2, delay: 5m}}\n  - id: done\n    title: Done\n    end: resolved\ncleanup:\n  - id: tidy\n    title: Tidy\n    run: touch {}\n",
            cleaned.display()
        ),
    )
    .unwrap();
    let mut s = spawn(&["run", book.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("retrying in").unwrap();
    s.process_mut().signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(wait_exit_within(&mut s, Duration::from_secs(20)), 130);
    let rest = s.exp_eof().unwrap_or_default();
    assert!(!rest.contains("What now?"), "no menu after SIGTERM: {rest}");
    let events = sealed_interrupted_by_sigterm(audit.path(), dir.path());
    let message = events.last().unwrap()["message"].as_str().unwrap();
    assert!(message.contains("waited to retry"), "{message}");
}

/// SIGQUIT means what SIGTERM means (the table in docs/running.md), named as itself.
#[test]
fn sigquit_at_a_prompt_ends_the_run_interrupted_naming_it() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "0.5051", false);
    let mut s = spawn(&["run", book.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    s.process_mut().signal(nix::sys::signal::Signal::SIGQUIT).unwrap();
    assert_eq!(wait_exit_within(&mut s, Duration::from_secs(20)), 130);
    assert!(dir.path().join("cleaned").exists(), "the cleanup ran");
    let trail = audit_files(audit.path()).pop().unwrap();
    let events = crate::support::trail::events(&trail);
    let last = events.last().unwrap();
    assert_eq!(last["outcome"], "interrupted", "{last}");
    assert_eq!(last["message"], "interrupted by SIGQUIT at a prompt", "{last}");
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
}

/// A Ctrl-C stops the command and the menu asks what next, as before; a SIGTERM at that menu
/// then ends the run, named SIGTERM, not Ctrl-C (the latest signal by count is the SIGINT
/// the prompt's library raises for every interrupted read).
#[test]
fn sigterm_at_the_menu_after_a_ctrl_c_ends_the_run_named_sigterm() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "34.6061", false);
    let mut s = spawn(&["run", book.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("started").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pgrep("sleep 34.6061") {
        assert!(Instant::now() < deadline, "the step's command never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.send_control('c').unwrap();
    s.exp_string("The step did not succeed. What now?").unwrap();
    s.process_mut().signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(wait_exit_within(&mut s, Duration::from_secs(20)), 130);
    let events = sealed_interrupted_by_sigterm(audit.path(), dir.path());
    assert_eq!(
        events.last().unwrap()["message"],
        "interrupted by SIGTERM at a prompt"
    );
}

/// Issue 23 item 6's cause, in general: any signal that interrupts a prompt's read was taken
/// for Ctrl-C. A child ending (SIGCHLD, which the runtime handles) or a stray SIGUSR2 must
/// leave the prompt as it was: no "abort the run?", and the next key still answers it.
#[test]
fn a_stray_signal_at_a_prompt_is_not_a_ctrl_c() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "0.7071", false);
    let mut s = spawn(&["run", book.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    let pid = pid_of(audit.path());
    for signal in [
        nix::sys::signal::Signal::SIGCHLD,
        nix::sys::signal::Signal::SIGUSR2,
    ] {
        wait_reading(pid);
        s.process_mut().signal(signal).unwrap();
    }
    keys(&mut s, "\r");
    let before = s.exp_string("run resolved").unwrap_or_else(|e| {
        panic!("{e}; the screen:\n{}", s.screen().contents());
    });
    assert!(!before.contains("abort the run"), "{before}");
    assert_eq!(wait_exit(&mut s), 0);
}

/// A SIGINT sent to the process (`kill -INT`) at a prompt is Ctrl-C, as the key is: it asks.
#[test]
fn sigint_sent_at_a_prompt_asks_as_the_key_does() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "0.8081", false);
    let mut s = spawn(&["run", book.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    wait_reading(pid_of(audit.path()));
    s.process_mut().signal(nix::sys::signal::Signal::SIGINT).unwrap();
    s.exp_string("Ctrl-C: abort the run?").unwrap();
    keys(&mut s, "y\r");
    s.exp_string("run aborted").unwrap();
    assert_eq!(wait_exit(&mut s), 3);
    assert!(dir.path().join("cleaned").exists(), "the abort ran the cleanup");
}

/// Issue 23 item 5 over SSH: the terminal closed while the command runs on the host. The
/// remote command is stopped, the masters closed, and nothing on the way out needs the
/// terminal: exit 129, the trail open.
#[test]
fn a_terminal_closed_during_a_remote_command_stops_it_and_exits_129() {
    let sshd = Sshd::start();
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = sleeper(dir.path(), "33.9292", true);
    let target = format!("app={}", sshd.dest());
    let ssh = sshd.ssh_args();
    let mut args = vec!["run", book.to_str().unwrap(), "--target", &target];
    args.extend(ssh.iter().map(String::as_str));
    let mut s = Closable::spawn(&args, audit.path());
    s.expect("What now?");
    s.send("\r");
    s.expect("started");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pgrep("sleep 33.9292") {
        assert!(Instant::now() < deadline, "the step's command never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.close();
    assert_eq!(
        s.wait_exit(Duration::from_secs(20)),
        129,
        "129, not a panic (101)"
    );
    wait_gone("sleep 33.9292");
    left_open(audit.path(), dir.path());
}

/// A run waiting at a prompt that reads a secret (the capture of a step run by hand that
/// received one).
fn at_a_secret_prompt(audit: &Path, dir: &Path) -> crate::support::pty::Session {
    let book = dir.join("secret.yaml");
    std::fs::write(
        &book,
        format!(
            "version: 1\nid: secret\ntitle: Secret\nrto: 5m\ninputs:\n  token: {{secret: true}}\nsteps:\n  - id: check\n    title: Check\n    idempotent: true\n    run: test -n \"$token\" && echo ok\n    capture: status\n  - id: done\n    title: Done\n    end: resolved\ncleanup:\n  - id: tidy\n    title: Tidy\n    run: touch {}\n",
            dir.join("cleaned").display()
        ),
    )
    .unwrap();
    let mut s = spawn(
        &["run", book.to_str().unwrap(), "--set", "token=tok-s3cr3t"],
        audit,
    );
    s.exp_string("What now?").unwrap();
    // Run it, Skip, Edit, then By hand.
    keys(&mut s, &format!("{}\r", crate::support::pty::DOWN.repeat(3)));
    s.exp_string("How did it go?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("which the step captures").unwrap();
    s
}

/// Issue 23 item 7 at a prompt that reads a secret: it read a whole line with the echo off,
/// and a SIGTERM there waited for Enter.
#[test]
fn sigterm_at_a_secret_prompt_ends_the_run_interrupted() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut s = at_a_secret_prompt(audit.path(), dir.path());
    s.process_mut().signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(wait_exit_within(&mut s, Duration::from_secs(20)), 130);
    sealed_interrupted_by_sigterm(audit.path(), dir.path());
}

/// Issue 23 item 6 at a prompt that reads a secret: a hangup, not a wait for Enter.
#[test]
fn sighup_at_a_secret_prompt_is_a_hangup() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut s = at_a_secret_prompt(audit.path(), dir.path());
    s.process_mut().signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    assert_eq!(wait_exit_within(&mut s, Duration::from_secs(20)), 129);
    left_open(audit.path(), dir.path());
}
