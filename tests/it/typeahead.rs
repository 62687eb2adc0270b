//! Issue 25, item 1: keys typed ahead answered prompts the operator had not seen: `Enter
//! Enter` at step 1 ran step 2 before it was drawn. Whatever is pending when a prompt opens is
//! flushed; only keys typed at that prompt answer it.

use std::time::Duration;

use crate::support::pty::{keys, spawn, wait_exit};
use crate::support::trail::{audit_files, events};

const BOOK: &str = r#"version: 1
id: typeahead
title: Typeahead
rto: 5m
steps:
  - id: one
    title: Step one
    run: sleep 1; echo one
  - id: two
    title: Step two
    run: echo two
  - id: done
    title: Done
    end: resolved
"#;

#[test]
fn enter_enter_at_step_one_does_not_run_step_two_unseen() {
    let dir = tempfile::tempdir().unwrap();
    let audit = tempfile::tempdir().unwrap();
    let file = dir.path().join("typeahead.yaml");
    std::fs::write(&file, BOOK).unwrap();
    let mut s = spawn(&["run", file.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    // Two Enters at once, and more while step one runs.
    keys(&mut s, "\r\r");
    std::thread::sleep(Duration::from_millis(100));
    s.send("\r\r").unwrap();
    s.flush().unwrap();
    s.exp_string("one: ok").unwrap();
    s.exp_string("Step two").unwrap();
    s.exp_string("What now?").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let trail = audit_files(audit.path()).pop().unwrap();
    let started: Vec<String> = events(&trail)
        .iter()
        .filter(|e| e["event"] == "step started")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(started, ["one"], "step two ran on keys typed before it was shown");
    keys(&mut s, "\r");
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
}
