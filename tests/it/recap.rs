//! The recap a hand-off begins with (issue 25, item 8): after `runbook resume`, the colleague
//! who takes over reads what already happened (each step visit with its outcome and time, the
//! decisions, notes and deviations the previous operator left) before the question about the
//! step whose outcome is unknown, in local `HH:MM`, as `runbook review` counts it.

use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::support::cmd::runbook;
use crate::support::pty::{DOWN, keys, pgrep, spawn_env, wait_exit};
use crate::support::trail::audit_files;

/// A time zone 5 h 30 min east of UTC, as a POSIX TZ string (no tzdata needed): local `HH:MM`
/// differs from UTC's in hours and minutes, so a UTC time passed off as local shows.
const TZ: &str = "<+0530>-05:30";

fn book(dir: &std::path::Path, marker: &str) -> std::path::PathBuf {
    let book = dir.join("handoff.yaml");
    std::fs::write(
        &book,
        format!(
            "version: 1\nid: handoff\ntitle: Hand-off\nrto: 10m\nsteps:\n  - id: check\n    title: Check the service\n    run: echo checked\n  - id: logs\n    title: Read the logs\n    run: echo logs\n  - id: decide\n    title: Restart or roll back?\n    choose:\n      - {{label: Restart it, goto: restart}}\n      - {{label: Roll back, goto: done}}\n  - id: restart\n    title: Restart the service\n    run: echo restarting; sleep {marker}\n  - id: done\n    title: Done\n    end: resolved\n"
        ),
    )
    .unwrap();
    book
}

/// `HH:MM` in the test's zone of an RTO-clock offset of the review.
fn local(review: &Value, offset_ms: u64) -> String {
    let start: DateTime<FixedOffset> = review["clock_start"].as_str().unwrap().parse().unwrap();
    let zone = FixedOffset::east_opt(5 * 3600 + 30 * 60).unwrap();
    (start + chrono::Duration::milliseconds(offset_ms as i64))
        .with_timezone(&zone)
        .format("%H:%M")
        .to_string()
}

/// rexpect hands the output over one byte per `char`: the text as the terminal shows it.
fn utf8(bytes_as_chars: &str) -> String {
    let bytes: Vec<u8> = bytes_as_chars.chars().map(|c| c as u32 as u8).collect();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_hand_off_resume_recaps_what_happened_before_asking_about_the_unknown_step() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let marker = "41.5251";
    let book = book(dir.path(), marker);
    let env = [("TZ", TZ)];

    // alice: a note at `check`, then runs it; skips `logs`; decides; hangs up in `restart`.
    let mut s = spawn_env(
        &["run", book.to_str().unwrap(), "--operator", "alice"],
        audit.path(),
        &env,
    );
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(4))); // Add a note
    s.exp_string("Note").unwrap();
    keys(&mut s, "disk at 91% on /var\r");
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r"); // Run it
    s.exp_string("Read the logs").unwrap();
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{DOWN}\r")); // Skip it
    s.exp_string("Restart or roll back?").unwrap();
    keys(&mut s, "\r"); // Restart it
    s.exp_string("Restart the service").unwrap();
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("restarting").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pgrep(&format!("sleep {marker}")) {
        assert!(Instant::now() < deadline, "the step's command never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.process_mut().signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    assert_eq!(wait_exit(&mut s), 129);
    let trail = audit_files(audit.path()).pop().unwrap();

    // What `runbook review` says of the trail as bob finds it.
    let review = runbook(["review", "--format", "json"])
        .arg(&trail)
        .expect_code(0)
        .stdout;
    let review: Value = serde_json::from_str(&review).unwrap();
    let review = review["runs"][0].clone();
    let visits = review["steps"].as_array().unwrap();
    let steps: Vec<&str> = visits.iter().map(|v| v["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["check", "logs", "decide", "restart"], "{review}");
    let at = |i: usize| local(&review, visits[i]["start_ms"].as_u64().unwrap());
    let took = |i: usize| runbook::testing::review::fmt_ms(visits[i]["took_ms"].as_u64().unwrap());
    let events: Vec<Value> = std::fs::read_to_string(&trail)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let event_at = |kind: &str, step: &str| {
        let e = events
            .iter()
            .find(|e| e["event"] == kind && e["step"] == step)
            .unwrap_or_else(|| panic!("no `{kind}` of `{step}`"));
        local(&review, e["mono_ms"].as_u64().unwrap())
    };
    let restart_started = events
        .iter()
        .find(|e| e["event"] == "step started" && e["step"] == "restart")
        .unwrap()["ts"]
        .as_str()
        .unwrap()
        .to_string();

    // bob takes over.
    let mut s = spawn_env(
        &["resume", trail.to_str().unwrap(), "--operator", "bob"],
        audit.path(),
        &env,
    );
    // The question (the header says "never finished" too).
    let before = utf8(&s.exp_string("never finished: its outcome is unknown").unwrap());
    let lines: Vec<&str> = before
        .lines()
        .map(|l| l.trim_end_matches('\r').trim_end())
        .collect();
    let from = lines
        .iter()
        .position(|l| l.trim_start().starts_with("What happened before"))
        .unwrap_or_else(|| panic!("no recap before the question:\n{before}"));
    let recap: Vec<&str> = lines[from..]
        .iter()
        .copied()
        .take_while(|l| !l.is_empty())
        .collect();
    // One line per visit (time, step, outcome, took), then what people left, with who.
    let visit =
        |i: usize, outcome: &str| format!("    {}  {:<7}  {outcome:<30}  {}", at(i), steps[i], took(i));
    let left =
        |kind: &str, step: &str, text: &str| format!("    {}  {step:<7}  {text}", event_at(kind, step));
    let expected = vec![
        "  What happened before (alice):".to_string(),
        visit(0, "ok"),
        visit(1, "skipped"),
        visit(2, "decided \"Restart it\" → restart"),
        visit(3, "cut off: outcome unknown"),
        "  Decisions, notes and deviations:".to_string(),
        left("note", "check", "note by alice: disk at 91% on /var"),
        left(
            "deviation",
            "logs",
            "deviation by alice: skipped (skipped before it ran)",
        ),
        left(
            "decision",
            "decide",
            "decision by alice: \"Restart it\" → restart",
        ),
    ];
    assert_eq!(recap, expected, "the screen before the question:\n{before}");
    // Local HH:MM everywhere, the question included; never the trail's RFC 3339 stamp.
    let day = &restart_started[..11];
    assert!(!before.contains(day), "a raw RFC 3339 stamp ({day}…):\n{before}");
    let started_local = local(&review, visits[3]["attempts"][0]["start_ms"].as_u64().unwrap());
    assert!(
        before.contains(&format!("step `restart` started at {started_local} on local")),
        "{before}"
    );
    keys(&mut s, &format!("{DOWN}\r")); // Mark it done (it did finish)
    // `logs` was skipped and `restart` marked done: nothing verified the end.
    s.exp_string("End the incident as resolved, unverified?").unwrap();
    keys(&mut s, "y\r");
    s.exp_string("run resolved (unverified)").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
}
