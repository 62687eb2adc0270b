//! Aborting is confirmed and explained, and "mark it done" explained, in a real
//! pseudo-terminal: Up from "Run it" wraps to "Abort the run", so one reflex must not end an
//! incident run, and a step marked done by hand is the operator's word the trail must keep.

use crate::support::pty::{self, keys, wait_exit};

const UP: &str = "\x1b[A";
use crate::support::pty::DOWN;
use crate::support::trail::last_run_events as events;

fn spawn(book: &str, audit: &std::path::Path, dir: &std::path::Path) -> pty::Session {
    let file = dir.join("book.yaml");
    std::fs::write(&file, book).unwrap();
    pty::spawn(&["run", file.to_str().unwrap()], audit)
}

fn book(run: &str) -> String {
    format!(
        "version: 1\nid: ab\ntitle: Ab\nrto: 5m\nsteps:\n  - id: act\n    title: Act\n    run: {run}\n  - id: done\n    title: Done\n    end: resolved\n"
    )
}

/// Regression: Up then Enter in the before-run menu aborted the run at once.
#[test]
fn abort_before_a_step_is_confirmed_and_its_reason_recorded() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ran = dir.path().join("ran");
    let mut s = spawn(
        &book(&format!("touch {}", ran.display())),
        audit.path(),
        dir.path(),
    );
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{UP}\r")); // wraps to "Abort the run"
    s.exp_string("Abort the run? Its cleanup runs").unwrap();
    keys(&mut s, "\r"); // Enter alone is no
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{UP}\r"));
    s.exp_string("Abort the run? Its cleanup runs").unwrap();
    keys(&mut s, "y\r");
    s.exp_string("Why abort? (recorded in the trail)").unwrap();
    keys(&mut s, "wrong host paged\r");
    s.exp_string("run aborted").unwrap();
    s.exp_string("aborted by the operator at `act`: wrong host paged")
        .unwrap();
    assert_eq!(wait_exit(&mut s), 3);
    assert!(!ran.exists(), "the step never ran");
    let events = events(audit.path());
    let confirmations: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "answer" && e["question"] == "abort the run?")
        .map(|e| e["answer"].as_str().unwrap())
        .collect();
    assert_eq!(confirmations, ["no", "yes"]);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "note" && e["step"] == "act" && e["text"] == "wrong host paged"),
        "{events:#?}"
    );
    let last = events.last().unwrap();
    assert_eq!(last["outcome"], "aborted");
    assert_eq!(
        last["message"],
        "aborted by the operator at `act`: wrong host paged"
    );
}

#[test]
fn abort_from_a_manual_report_is_confirmed_too() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let manual = "version: 1\nid: ab\ntitle: Ab\nrto: 5m\nsteps:\n  - id: look\n    title: Look\n    manual: Look.\n  - id: done\n    title: Done\n    end: resolved\n";
    let mut s = spawn(manual, audit.path(), dir.path());
    s.exp_string("How did it go?").unwrap();
    keys(&mut s, &format!("{UP}\r")); // Done, Skip, Failed, Abort: Up wraps to Abort
    s.exp_string("Abort the run?").unwrap();
    keys(&mut s, "y\r");
    s.exp_string("Why abort?").unwrap();
    keys(&mut s, "dashboard down\r");
    s.exp_string("aborted by the operator at `look`: dashboard down")
        .unwrap();
    assert_eq!(wait_exit(&mut s), 3);
}

#[test]
fn marking_a_failed_step_done_asks_why_and_records_it() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut s = spawn(&book("exit 7"), audit.path(), dir.path());
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r"); // Run it
    s.exp_string("The step did not succeed. What now?").unwrap();
    // Retry, Skip, Go to, Mark it done: the fourth item.
    keys(&mut s, &format!("{}\r", DOWN.repeat(3)));
    s.exp_string("Why is it done?").unwrap();
    keys(&mut s, "restarted it from the console\r");
    // `done` is the resolved end and nothing after `act` checks it (issue 25, item 3).
    s.exp_string("End the incident as resolved, unverified?").unwrap();
    keys(&mut s, "y\r");
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
    let events = events(audit.path());
    assert!(
        events.iter().any(|e| e["event"] == "note"
            && e["step"] == "act"
            && e["text"] == "restarted it from the console"),
        "{events:#?}"
    );
    let deviations = &events.last().unwrap()["deviations"];
    assert!(
        deviations.to_string().contains("restarted it from the console"),
        "{deviations}"
    );
}
