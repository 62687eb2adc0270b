//! `runbook history` over an audit dir of real runs: one line each, newest first, filtered by
//! runbook, mode and date, and the same as JSON.

use serde_json::Value;

use crate::support::cmd::{root, runbook};
use crate::support::runs::{drill, unattended};

#[test]
fn history_lists_runs_newest_first_and_filters_them() {
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dir = audit.path().to_str().unwrap();
    let first = drill(audit.path(), scratch.path());
    let failing = unattended(
        "run",
        &root().join("tests/data/run/failing.yaml"),
        &[],
        audit.path(),
        3,
    );
    let last = drill(audit.path(), scratch.path());
    let id = |p: &std::path::Path| p.file_stem().unwrap().to_str().unwrap().to_string();

    let out = runbook(["history", "--audit-dir", dir]).expect_code(0).stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("  date (UTC)") && lines[0].contains("verdict"),
        "{out}"
    );
    assert!(
        lines[1].ends_with(&id(&last)) && lines[3].ends_with(&id(&first)),
        "newest first:\n{out}"
    );
    assert!(
        lines[2].contains(" failing ")
            && lines[2].contains(" incident ")
            && lines[2].contains(" escalated ")
            && lines[2].contains("NOT RESOLVED"),
        "{out}"
    );
    assert!(
        lines[1].contains(" review-drill ")
            && lines[1].contains(" drill ")
            && lines[1].contains(" tester ")
            && lines[1].contains(" 1m ")
            && lines[1].contains(" PASS "),
        "{out}"
    );

    let json = |args: &[&str]| -> Vec<Value> {
        let out = runbook(["history", "--audit-dir", dir, "--json"])
            .args(args)
            .expect_code(0)
            .stdout;
        serde_json::from_str::<Vec<Value>>(&out).unwrap()
    };
    let runs = |values: Vec<Value>| -> Vec<String> {
        values
            .iter()
            .map(|v| v["run"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(runs(json(&[])), [id(&last), id(&failing), id(&first)]);
    assert_eq!(runs(json(&["--runbook", "failing"])), [id(&failing)]);
    assert_eq!(runs(json(&["--mode", "drill"])), [id(&last), id(&first)]);
    assert_eq!(runs(json(&["--mode", "incident"])), [id(&failing)]);
    assert_eq!(json(&["--since", "2999-01-01"]), Vec::<Value>::new());
    assert_eq!(json(&["--since", "2000-01-01T00:00:00Z"]).len(), 3);
    let entry = &json(&["--runbook", "failing"])[0];
    for key in [
        "run",
        "path",
        "date",
        "runbook",
        "mode",
        "operators",
        "total_ms",
        "rto_ms",
        "outcome",
        "verdict",
    ] {
        assert!(entry.get(key).is_some(), "no `{key}` in {entry}");
    }
    assert_eq!(entry["rto_ms"], 60000);

    let bad = runbook(["history", "--audit-dir", dir, "--since", "yesterday"]).expect_code(2);
    assert!(
        bad.stderr.contains("--since `yesterday` is not a date"),
        "{}",
        bad.stderr
    );
}

#[test]
fn history_flags_incomplete_and_tampered_runs() {
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dir = audit.path().to_str().unwrap();
    // One run cut short (a crash), another with one byte changed (a tamperer).
    let cut = drill(audit.path(), scratch.path());
    let text = std::fs::read_to_string(&cut).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&cut, lines[..6].join("\n") + "\n").unwrap();
    let file = drill(audit.path(), scratch.path());
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replacen("\"mode\":\"drill\"", "\"mode\":\"drill \"", 1),
    )
    .unwrap();
    let out = runbook(["history", "--audit-dir", dir, "--json"]).expect_code(0);
    let runs: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    let verdicts: Vec<&str> = runs.iter().map(|r| r["verdict"].as_str().unwrap()).collect();
    assert!(
        verdicts.contains(&"TAMPERED") && verdicts.contains(&"INCOMPLETE"),
        "{verdicts:?}"
    );
}

#[test]
fn an_empty_audit_dir_says_so() {
    let audit = tempfile::tempdir().unwrap();
    let out = runbook(["history", "--audit-dir", audit.path().to_str().unwrap()]).expect_code(0);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("no runs in"), "{}", out.stderr);
}

/// Regression: an empty trail (left by older versions when the disk was full at the first
/// line) showed as a ghost row. It is no run: not listed, and not worth a warning.
#[test]
fn history_ignores_an_empty_trail() {
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let real = drill(audit.path(), scratch.path());
    std::fs::write(audit.path().join("20260101T000000Z-ghost-abcd.jsonl"), "").unwrap();
    let out = runbook(["history", "--audit-dir"])
        .arg(audit.path())
        .expect_code(0);
    assert_eq!(out.stderr, "");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(lines[1].ends_with(real.file_stem().unwrap().to_str().unwrap()));
    assert!(!out.stdout.contains("ghost"), "{}", out.stdout);
}
