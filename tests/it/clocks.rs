//! What the operator reads at 3 a.m. tells the truth about time and place: the RTO budget
//! ticks at every prompt (a screen read twice, a second apart, differs), a breach is loud and a
//! missed RTO never ends in green, a step's timeout and retries are said before it runs and
//! each attempt is numbered, and the header says where each target really goes.

use std::time::{Duration, Instant};

use crate::support::cmd::runbook;
use crate::support::pty::{self, ROWS, keys, wait_exit};

fn book(dir: &std::path::Path, text: &str) -> String {
    let file = dir.join("book.yaml");
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

/// The last row of the screen, as a person sees it.
fn bottom_row(session: &pty::Session) -> String {
    let screen = session.screen();
    screen
        .rows(0, pty::COLS)
        .nth(usize::from(ROWS) - 1)
        .unwrap_or_default()
}

#[test]
fn the_rto_budget_ticks_on_the_last_line_while_a_prompt_waits() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = book(
        dir.path(),
        "version: 1\nid: tick\ntitle: Tick\nrto: 5m\nsteps:\n  - id: act\n    title: Act\n    run: echo acted\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    let mut s = pty::spawn(&["run", &file], audit.path());
    s.exp_string("What now?").unwrap();
    let budget = regex::Regex::new(r"⏱ 4m5[0-9]s of the 5m RTO left").unwrap();
    let mut first = String::new();
    crate::support::wait::until(Duration::from_secs(5), "the budget on the last row", || {
        first = bottom_row(&s);
        budget.is_match(&first)
    });
    let read_at = Instant::now();
    let mut second = String::new();
    crate::support::wait::until(Duration::from_secs(5), "the budget ticking", || {
        second = bottom_row(&s);
        second != first
    });
    assert!(budget.is_match(&second), "{second:?}");
    assert!(
        read_at.elapsed() < Duration::from_millis(1500),
        "it moved only after {:?}",
        read_at.elapsed()
    );
    // The prompt itself is intact above it, and answering it goes on as usual.
    assert!(s.screen().contents().contains("What now?"));
    keys(&mut s, "\r");
    s.exp_string("acted").unwrap();
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
    // The row is given back: the terminal's scroll region is whole again.
    let screen = s.screen();
    assert!(!bottom_row(&s).contains("RTO left"), "{}", screen.contents());
}

#[test]
fn a_breach_is_loud_and_a_late_resolution_is_not_green() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = book(
        dir.path(),
        "version: 1\nid: late\ntitle: Late\nrto: 1s\nsteps:\n  - id: slow\n    title: Slow\n    run: sleep 1.5\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    let mut s = pty::spawn(&["run", &file, "--yes"], audit.path());
    s.exp_string("RTO BREACHED").unwrap();
    s.exp_string("RTO MISSED").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
    let screen = s.screen();
    let (row, line) = screen
        .rows(0, pty::COLS)
        .enumerate()
        .find(|(_, l)| l.starts_with("run resolved"))
        .expect("the end line");
    assert!(line.contains("over the 1s RTO"), "{line}");
    let col = "run ".len() as u16;
    let cell = screen.cell(row as u16, col).unwrap();
    assert_eq!(cell.contents(), "r");
    assert_ne!(
        cell.fgcolor(),
        vt100::Color::Idx(2),
        "a run that missed its RTO ends in green"
    );
}

#[test]
fn the_timeout_and_retries_are_said_before_the_step_and_each_attempt_is_numbered() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = book(
        dir.path(),
        "version: 1\nid: flaky\ntitle: Flaky\nrto: 5m\nsteps:\n  - id: flaky\n    title: Flaky\n    run: exit 1\n    timeout: 30s\n    retry: {attempts: 3, delay: 1s}\n    on_failure: broken\n  - id: done\n    title: Done\n    end: resolved\n  - id: broken\n    title: Broken\n    end: failed\n",
    );
    let out = runbook(["run", "--yes", "--audit-dir"])
        .arg(audit.path())
        .arg(&file)
        .env("TERM", "dumb")
        .expect_code(3);
    let err = &out.stderr;
    let policy = err
        .find("killed after 30s · up to 3 attempts, 1s apart")
        .expect(err);
    let started = err.find("flaky: started on local").expect(err);
    assert!(policy < started, "the policy comes before the step runs: {err}");
    assert!(
        err.contains("flaky: attempt 1/3 failed; retrying in 1s (attempt 2/3)"),
        "{err}"
    );
    assert!(err.contains("flaky: started on local (attempt 2/3)"), "{err}");
    assert!(err.contains("flaky: started on local (attempt 3/3)"), "{err}");
    assert!(!err.contains("(attempt 4"), "{err}");
}

#[test]
fn an_edit_goes_through_the_operators_editor() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = book(
        dir.path(),
        "version: 1\nid: ed\ntitle: Ed\nrto: 5m\nsteps:\n  - id: act\n    title: Act\n    run: |\n      echo first line\n      echo BEFORE\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    // A scripted editor, as `$EDITOR FILE` is run: it rewrites the command's second line.
    let editor = dir.path().join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/BEFORE/AFTER/' \"$1\"\n").unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut command = std::process::Command::new(crate::support::cmd::bin());
    command
        .args(["run", &file, "--audit-dir"])
        .arg(audit.path())
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("VISUAL")
        .env("EDITOR", &editor);
    let mut s = pty::start(command);
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{}\r", pty::DOWN.repeat(2)));
    s.exp_string("+ echo AFTER").unwrap();
    s.exp_string("Run the edited command?").unwrap();
    keys(&mut s, &format!("{}\r", pty::DOWN)); // Yes, run it as edited
    s.exp_string("edited command").unwrap();
    s.exp_string("AFTER").unwrap();
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
    let trail =
        std::fs::read_to_string(crate::support::trail::audit_files(audit.path()).pop().unwrap()).unwrap();
    let edit: serde_json::Value = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "edit")
        .expect("an edit event");
    assert_eq!(edit["after"], "echo first line\necho AFTER\n".trim_end());
}
