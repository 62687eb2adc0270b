//! Issue 25, item 3: one keypress ended an incident as resolved. *Skip it* on a failing check
//! whose `next` is the `resolved` end printed `run resolved` in green with nothing verified.
//! Now the operator is asked once; no presents the step again, yes is recorded and the run
//! ends `resolved (unverified)`, never in green.

use crate::support::pty::{DOWN, keys, spawn, wait_exit};
use crate::support::trail::{audit_files, events};

const BOOK: &str = r#"version: 1
id: unverified
title: Unverified
rto: 5m
steps:
  - id: verify-health
    title: Verify health
    run: exit 1
    next: done
  - id: done
    title: The API is healthy
    end: resolved
"#;

#[test]
fn skipping_the_last_check_before_a_resolved_end_asks_and_says_unverified() {
    let dir = tempfile::tempdir().unwrap();
    let audit = tempfile::tempdir().unwrap();
    let file = dir.path().join("unverified.yaml");
    std::fs::write(&file, BOOK).unwrap();
    let mut s = spawn(&["run", file.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{DOWN}\r")); // Skip it
    s.exp_string("End the incident as resolved, unverified?").unwrap();
    keys(&mut s, "n\r");
    // Not ended: the step is presented again.
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{DOWN}\r")); // Skip it, again
    s.exp_string("End the incident as resolved, unverified?").unwrap();
    keys(&mut s, "y\r");
    s.exp_string("run resolved (unverified)").unwrap();
    s.exp_string("resolved without verifying").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
    let trail = audit_files(audit.path()).pop().unwrap();
    let all = events(&trail);
    let unverified: Vec<_> = all
        .iter()
        .filter(|e| e["event"] == "deviation" && e["kind"] == "resolved without verifying")
        .collect();
    assert_eq!(unverified.len(), 1, "{all:?}");
    assert_eq!(unverified[0]["step"], "verify-health");
    let review = crate::support::cmd::runbook(["review", "--format", "md"])
        .arg(&trail)
        .expect_code(0);
    assert!(
        review.stdout.contains("resolved without verifying"),
        "{}",
        review.stdout
    );
}

/// A sub-run's `resolved` end returns to its caller, which still checks: skipping there asks
/// nothing, and the run goes on to the caller's next step.
#[test]
fn a_skip_before_a_sub_runs_resolved_end_asks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let audit = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.yaml"),
        "version: 1\nid: outer\ntitle: Outer\nrto: 5m\nsteps:\n  - id: fix\n    title: Fix\n    call: inner\n  - id: verify\n    title: Verify it\n    run: echo verified\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("inner.yaml"),
        "version: 1\nid: inner\ntitle: Inner\nrto: 5m\nsteps:\n  - id: restart\n    title: Restart\n    run: exit 1\n    next: ok\n  - id: ok\n    title: Ok\n    end: resolved\n",
    )
    .unwrap();
    let mut s = spawn(
        &["--dir", dir.path().to_str().unwrap(), "run", "outer"],
        audit.path(),
    );
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{DOWN}\r")); // Skip `restart` in the sub-run
    let shown = s.exp_string("Verify it").unwrap();
    assert!(!shown.contains("unverified?"), "{shown}");
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r"); // Run the caller's check
    let end = s.exp_string("run resolved").unwrap();
    assert!(!end.contains("unverified?"), "{end}");
    assert_eq!(wait_exit(&mut s), 0);
}
