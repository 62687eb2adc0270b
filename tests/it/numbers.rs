//! Issue 25, item 7: "the numbers disagree". The end of a run said `recent-logs took 22s`,
//! its review 40.5 s and three more steps over target; attempt counters ran on across
//! re-entries. The terminal, the seal and every review now count a step's time one way (from
//! being presented to the next step, the operator's reading included), by the same code.

use std::time::Duration;

use crate::support::pty::{keys, spawn};
use crate::support::trail::{audit_files, events};

const BOOK: &str = r#"version: 1
id: numbers
title: Numbers
rto: 5m
steps:
  - id: read-first
    title: A quick command, read slowly
    run: sleep 0.2
    rto: 1s
  - id: flaky
    title: Fails once
    run: test -e "$FLAG" || { touch "$FLAG"; exit 1; }
    rto: 1m
  - id: done
    title: Done
    end: resolved
"#;

/// `fmt_secs` of the terminal: tenths below ten seconds.
fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

#[test]
fn the_end_summary_the_seal_and_the_review_agree_on_what_went_over_target() {
    let dir = tempfile::tempdir().unwrap();
    let audit = tempfile::tempdir().unwrap();
    let file = dir.path().join("numbers.yaml");
    std::fs::write(&file, BOOK).unwrap();
    let flag = dir.path().join("flag");
    let book = BOOK.replace("\"$FLAG\"", &format!("'{}'", flag.display()));
    std::fs::write(&file, book).unwrap();
    let mut s = spawn(&["run", file.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    // The operator reads for a second and a half: the command itself takes 0.2 s.
    std::thread::sleep(Duration::from_millis(1500));
    keys(&mut s, "\r"); // Run it
    let (_, finished) = s.exp_regex(r"read-first: ok[^\r\n]*").unwrap();
    assert!(
        finished.contains("over its 1s target"),
        "the finish line holds the step's time, not the command's, to its target: {finished}"
    );
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r"); // Run it: fails
    s.exp_string("The step did not succeed. What now?").unwrap();
    keys(&mut s, "\r"); // Retry: the step is presented again
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r"); // Run it
    let (_, again) = s.exp_regex(r"flaky[^:]*: ok[^\r\n]*").unwrap();
    // The trail numbers it attempt 2 of the run; on screen it is this visit's first.
    assert!(!again.contains("attempt 2"), "{again}");
    let summary = s.exp_eof().unwrap();
    let shown: Vec<String> = summary
        .lines()
        .filter_map(|l| l.trim().strip_prefix("over target: "))
        .map(str::to_string)
        .collect();

    let trail = audit_files(audit.path()).pop().unwrap();
    let review = crate::support::cmd::runbook(["review", "--format", "json"])
        .arg(&trail)
        .expect_code(0);
    let review: serde_json::Value = serde_json::from_str(&review.stdout).unwrap();
    let run = &review["runs"][0];
    let over = run["over_target"].as_array().unwrap();
    assert!(
        over.iter().any(|o| o["step"] == "read-first"),
        "the review holds read-first over target: {run}"
    );
    let expected: Vec<String> = over
        .iter()
        .map(|o| {
            format!(
                "{} took {} (target {})",
                o["step"].as_str().unwrap(),
                secs(o["took_ms"].as_u64().unwrap()),
                "1s"
            )
        })
        .collect();
    assert_eq!(shown, expected, "the terminal's end summary: {summary}");
    // The seal says the same steps, with the same times.
    let all = events(&trail);
    let seal = all.last().unwrap();
    let sealed: Vec<(String, u64)> = seal["over_target"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["step"].as_str().unwrap().to_string(),
                o["duration_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    let reviewed: Vec<(String, u64)> = over
        .iter()
        .map(|o| {
            (
                o["step"].as_str().unwrap().to_string(),
                o["took_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sealed.iter().map(|s| &s.0).collect::<Vec<_>>(),
        reviewed.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    for ((_, a), (_, b)) in sealed.iter().zip(&reviewed) {
        assert!(a.abs_diff(*b) <= 50, "seal {sealed:?} review {reviewed:?}");
    }
    // Attempts: each visit of the flaky step ran once (the second after the first failed):
    // counted per visit, never `2 (0 failed)`.
    let visits: Vec<usize> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["step"] == "flaky")
        .map(|v| v["attempts"].as_array().unwrap().len())
        .collect();
    assert_eq!(visits, [1, 1]);
    let text = crate::support::cmd::runbook(["review"])
        .arg(&trail)
        .expect_code(0);
    let rows: Vec<&str> = text.stdout.lines().filter(|l| l.contains(" flaky ")).collect();
    assert_eq!(rows.len(), 2, "{}", text.stdout);
    for row in rows {
        assert!(!row.contains("failed)"), "{row}");
    }
}
