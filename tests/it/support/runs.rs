//! Real runs for the review and history tests: an unattended drill with a failure, a retry and
//! an over-target step; the same runbook driven in a pseudo-terminal with a note and an edit;
//! and a re-timed copy of an audit file (a valid chain, deterministic times) for snapshots.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::cmd::{bin, root, runbook};

/// The runbook of these tests.
pub fn review_yaml() -> PathBuf {
    root().join("tests/data/review/review.yaml")
}

pub use super::trail::audit_files;

/// The one file of `after` that is not in `before`.
#[track_caller]
fn new_file(before: &[PathBuf], dir: &Path) -> PathBuf {
    let mut fresh: Vec<PathBuf> = audit_files(dir)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(fresh.len(), 1, "expected one new audit file in {}", dir.display());
    fresh.pop().unwrap()
}

/// `runbook drill|run FILE --yes ...`, returning the audit file it wrote.
#[track_caller]
pub fn unattended(command: &str, file: &Path, extra: &[&str], audit: &Path, code: i32) -> PathBuf {
    let before = audit_files(audit);
    runbook([
        command,
        file.to_str().unwrap(),
        "--yes",
        "--audit-dir",
        audit.to_str().unwrap(),
    ])
    .args(extra)
    .expect_code(code);
    new_file(&before, audit)
}

/// The review drill, unattended: PASS, with a failed step, a retry and an over-target step.
pub fn drill(audit: &Path, scratch: &Path) -> PathBuf {
    let set = format!("state_dir={}", scratch.display());
    unattended("drill", &review_yaml(), &["--set", &set], audit, 0)
}

fn keys(session: &mut super::pty::Session, keys: &str) {
    std::thread::sleep(Duration::from_millis(300));
    session.send(keys).unwrap();
    session.flush().unwrap();
}

const DOWN: &str = "\x1b[B";

/// The review drill run by a person in a pseudo-terminal: a note and an edit before `slow`,
/// `flaky` retried by its policy, `broken` sent to `on_failure` by hand, the decision confirmed.
/// (Not "Retry" after a failure: the executor then reuses attempt 1 and its output file exists.)
pub fn interactive(audit: &Path, scratch: &Path) -> PathBuf {
    let before = audit_files(audit);
    let mut command = Command::new(bin());
    command
        .args(["run", review_yaml().to_str().unwrap(), "--audit-dir"])
        .arg(audit)
        .arg("--set")
        .arg(format!("state_dir={}", scratch.display()))
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("RUNBOOK_PATH")
        .env_remove("RUNBOOK_SIGNING_KEY")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RUNBOOK_OPERATOR")
        .env("USER", "tester");
    let mut s = super::pty::start(command);
    let at = |s: &mut super::pty::Session, title: &str, prompt: &str, send: &str| {
        if !title.is_empty() {
            s.exp_string(title).unwrap();
        }
        s.exp_string(prompt).unwrap();
        keys(s, send);
    };
    at(&mut s, "Prepare the scratch directory", "What now?", "\r");
    at(
        &mut s,
        "Slower than its target",
        "What now?",
        &format!("{}\r", DOWN.repeat(4)),
    );
    at(&mut s, "", "Note", "waiting for the DBA\r");
    at(&mut s, "", "What now?", &format!("{}\r", DOWN.repeat(2)));
    at(&mut s, "", "Command", "; echo edited\r");
    at(&mut s, "", "Run the edited command?", &format!("{DOWN}\r"));
    at(&mut s, "Fails once, then succeeds", "What now?", "\r");
    at(&mut s, "Always fails", "What now?", "\r");
    at(&mut s, "", "The step did not succeed. What now?", "\r"); // Follow on_failure → recover
    at(&mut s, "", "What now?", "\r");
    at(&mut s, "", "Decision", "\r");
    s.exp_string("run resolved").unwrap();
    match s.process_mut().wait().unwrap() {
        nix::sys::wait::WaitStatus::Exited(_, 0) => {}
        other => panic!("unexpected end of the interactive run: {other:?}"),
    }
    new_file(&before, audit)
}

/// What else a re-timed copy changes.
#[derive(Default)]
pub struct Retime<'a> {
    /// The run's mode (`incident` drops the drill's verdict from the seal, as an incident's
    /// seal has none).
    pub mode: Option<&'a str>,
    /// The seal's verdict reason, from the run's total in ms (default: a fixed sentence).
    pub reason: Option<&'a dyn Fn(u64) -> String>,
}

/// A copy of the audit file `src` in `dir` as run `run`, with every event `step_ms` after the
/// previous one from `base` (RFC 3339), durations to match, machine-specific paths replaced,
/// and the hash chain recomputed: the same events, stable times for snapshots.
pub fn retime(src: &Path, dir: &Path, run: &str, base: &str, step_ms: u64) -> PathBuf {
    retime_with(src, dir, run, base, step_ms, &Retime::default())
}

/// `retime`, with the changes of `with`.
pub fn retime_with(
    src: &Path,
    dir: &Path,
    run: &str,
    base: &str,
    step_ms: u64,
    with: &Retime<'_>,
) -> PathBuf {
    let base = chrono::DateTime::parse_from_rfc3339(base)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let text = std::fs::read_to_string(src).unwrap();
    let old_run = src.file_stem().unwrap().to_str().unwrap().to_string();
    let mut prev = runbook::testing::audit::GENESIS.to_string();
    let mut out = String::new();
    let mut started: Vec<(String, u64)> = Vec::new();
    for (seq, line) in text.lines().enumerate() {
        let line = line.replace(&old_run, run);
        let mut v: Value = serde_json::from_str(&line).unwrap();
        let obj = v.as_object_mut().unwrap();
        let mono = seq as u64 * step_ms;
        obj.insert(
            "ts".into(),
            (base + chrono::Duration::milliseconds(mono as i64))
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string()
                .into(),
        );
        obj.insert("mono_ms".into(), mono.into());
        obj.insert(
            "operator".into(),
            obj["operator"].as_str().map(|_| "tester").into(),
        );
        let key = format!(
            "{}/{}/{}",
            obj.get("step").and_then(Value::as_str).unwrap_or(""),
            obj.get("host").and_then(Value::as_str).unwrap_or(""),
            obj.get("attempt").map(|a| a.to_string()).unwrap_or_default()
        );
        match obj["event"].as_str().unwrap() {
            "run started" => {
                obj.insert("file".into(), "tests/data/review/review.yaml".into());
                obj.insert("inputs".into(), serde_json::json!({"state_dir": "/tmp/scratch"}));
                // Who ran it, as this machine says: the same on every machine.
                obj.insert(
                    "account".into(),
                    serde_json::json!({"uid": 1000, "login": "tester"}),
                );
                obj.insert("machine".into(), "testhost".into());
                if let Some(mode) = with.mode {
                    obj.insert("mode".into(), mode.into());
                }
            }
            "step started" => started.push((key, mono)),
            "step finished" => {
                if let Some((_, at)) = started.iter().rev().find(|(k, _)| *k == key) {
                    obj.insert("duration_ms".into(), (mono - at).into());
                }
                if let Some(o) = obj.get_mut("output").and_then(Value::as_object_mut) {
                    o.insert("sha256".into(), "0".repeat(64).into());
                }
            }
            "run finished" => {
                obj.insert("duration_ms".into(), mono.into());
                let reason = with
                    .reason
                    .map_or_else(|| "resolved within the 1m RTO".to_string(), |f| f(mono));
                if let Some(v) = obj.get_mut("verdict").and_then(Value::as_object_mut) {
                    v.insert("reason".into(), reason.into());
                }
                if with.mode == Some("incident") {
                    obj.remove("verdict");
                }
                obj.insert("head".into(), prev.clone().into());
            }
            _ => {}
        }
        // A signature would be over the old hash: a re-timed copy is unsigned.
        out.push_str(&chained(&mut prev, v));
    }
    let path = dir.join(format!("{run}.jsonl"));
    std::fs::write(&path, out).unwrap();
    path
}

/// `v` as the line the writer would chain after `prev` (unsigned: its own `prev`, `hash` and
/// `signature` replaced), `prev` moved on to its hash.
pub fn chained(prev: &mut String, mut v: Value) -> String {
    let obj = v.as_object_mut().unwrap();
    obj.remove("hash");
    obj.remove("signature");
    obj.remove("prev");
    obj.insert("prev".into(), prev.clone().into());
    let body = serde_json::to_string(&v).unwrap();
    let hash = runbook::testing::audit::event_hash(prev, body.as_bytes());
    let line = format!("{},\"hash\":\"{hash}\"}}\n", &body[..body.len() - 1]);
    *prev = hash;
    line
}
