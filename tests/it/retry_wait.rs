//! Issue 25, item 2: Ctrl-C during a retry wait, on a terminal. It was ignored (`^C` echoed,
//! the next attempts still ran, nothing recorded): five minutes trapped with `attempts: 30,
//! delay: 10s`. Now it ends the retries at once, is recorded, and asks what next.

use std::time::{Duration, Instant};

use crate::support::pty::{keys, spawn};
use crate::support::trail::{audit_files, events};

const BOOK: &str = r#"version: 1
id: retrywait
title: Retry wait
rto: 5m
steps:
  - id: verify-health
    title: Verify health
    run: echo not yet; exit 7
    retry: {attempts: 5, delay: 20s}
  - id: done
    title: Done
    end: resolved
"#;

#[test]
fn ctrl_c_in_a_retry_wait_stops_the_retries_and_asks_what_next() {
    let dir = tempfile::tempdir().unwrap();
    let audit = tempfile::tempdir().unwrap();
    let file = dir.path().join("retry.yaml");
    std::fs::write(&file, BOOK).unwrap();
    let mut s = spawn(&["run", file.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r"); // Run it
    s.exp_string("retrying in 20s").unwrap();
    let pressed = Instant::now();
    s.send("\x03").unwrap();
    s.flush().unwrap();
    // The failure menu, well before the 20 s wait would have ended.
    s.exp_string("Retry").unwrap();
    assert!(
        pressed.elapsed() < Duration::from_secs(10),
        "the wait went on after Ctrl-C: {:?}",
        pressed.elapsed()
    );
    let trail = audit_files(audit.path()).pop().unwrap();
    let all = events(&trail);
    let started = all
        .iter()
        .filter(|e| e["event"] == "step started" && e["step"] == "verify-health")
        .count();
    assert_eq!(started, 1, "no attempt ran after Ctrl-C");
    let answer = all
        .iter()
        .find(|e| e["event"] == "answer" && e["question"] == "retry wait")
        .unwrap_or_else(|| panic!("the stop is recorded: {all:?}"));
    assert_eq!(answer["answer"], "stopped by Ctrl-C before attempt 2 of 5");
    let _ = s.process_mut().exit();
}
