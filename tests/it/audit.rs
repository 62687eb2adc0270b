//! The audit trail end to end: files written through `runbook::testing::audit::AuditLog`, damaged the
//! way a crash or a tamperer would, then judged by the real `runbook audit verify`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use runbook::testing::audit::{self, AuditLog, Status};
use serde_json::{Map, Value, json};

use crate::support::cmd::runbook;

const RUN: &str = "20261122T030211Z-db-restore-3f9a";

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("fields must be an object"),
    }
}

/// A run's first events, up to `step started` of `drain` (seq 0..=2), left unsealed.
fn started_run(dir: &Path) -> AuditLog {
    let mut log = AuditLog::create(dir, RUN, "alice", Instant::now()).unwrap();
    log.append(
        "run started",
        None,
        None,
        fields(json!({"runbook": "db-restore", "mode": "drill", "inputs": {"db": "staging"}})),
        true,
    )
    .unwrap();
    log.append("step presented", Some("drain"), Some("api-1"), Map::new(), false)
        .unwrap();
    log.append(
        "step started",
        Some("drain"),
        Some("api-1"),
        fields(json!({"command": "systemctl stop api", "attempt": 1})),
        true,
    )
    .unwrap();
    log
}

/// A whole run: 6 events, seq 0..=5, the last one the seal.
fn sealed_run(dir: &Path) -> PathBuf {
    let mut log = started_run(dir);
    log.append(
        "step finished",
        Some("drain"),
        Some("api-1"),
        fields(json!({"outcome": "ok", "exit_code": 0, "duration_ms": 1200})),
        false,
    )
    .unwrap();
    log.append(
        "note",
        None,
        None,
        fields(json!({"text": "queue drained"})),
        false,
    )
    .unwrap();
    assert_eq!(log.seal(fields(json!({"outcome": "resolved"}))).unwrap(), 5);
    log.path().to_path_buf()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

/// `runbook --audit-dir DIR audit verify RUN`, expecting `code`; returns stdout.
#[track_caller]
/// The first line of a report (the chain's verdict), with its newline.
fn first_line(stdout: &str) -> String {
    format!("{}\n", stdout.lines().next().unwrap_or_default())
}

fn verify(dir: &Path, run: &str, code: i32) -> String {
    let out = runbook([
        "--audit-dir".as_ref(),
        dir.as_os_str(),
        "audit".as_ref(),
        "verify".as_ref(),
        run.as_ref(),
    ])
    .expect_code(code);
    out.stdout
}

/// A forged event chained onto `prev`, with a correctly recomputed hash.
fn forged(seq: u64, prev: &str) -> String {
    let body = format!(
        "{{\"v\":1,\"seq\":{seq},\"ts\":\"2026-11-22T03:09:00.000Z\",\"mono_ms\":999,\"run\":\"{RUN}\",\"event\":\"note\",\"operator\":\"mallory\",\"text\":\"all fine\",\"prev\":\"{prev}\"}}"
    );
    let hash = audit::event_hash(prev, body.as_bytes());
    format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1])
}

fn hash_of(line: &str) -> String {
    serde_json::from_str::<Value>(line).unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_intact_sealed_run_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = sealed_run(dir.path());
    let head = audit::verify(&path).unwrap().head.unwrap();
    assert_eq!(head, hash_of(lines(&path).last().unwrap()));
    let stdout = verify(dir.path(), RUN, 0);
    assert_eq!(
        stdout,
        format!(
            "{}: intact and sealed, 6 events\n  head {head}\n  outputs: 0 files checked (0 bytes)\n  signatures: UNSIGNED\n",
            path.display(),
        )
    );
    // The path of the file works as well as the run id.
    verify(dir.path(), path.to_str().unwrap(), 0);
}

#[test]
fn the_file_has_the_documented_members_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = sealed_run(dir.path());
    let all = lines(&path);
    let presented: Value = serde_json::from_str(&all[1]).unwrap();
    let keys: Vec<&str> = presented
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "v", "seq", "ts", "mono_ms", "run", "event", "operator", "step", "host", "prev", "hash"
        ]
    );
    let seal: Value = serde_json::from_str(&all[5]).unwrap();
    assert_eq!(seal["event"], "run finished");
    assert_eq!(seal["outcome"], "resolved");
    assert_eq!(seal["events"], 6);
    assert_eq!(seal["head"].as_str().unwrap(), hash_of(&all[4]));
    let ts = seal["ts"].as_str().unwrap();
    assert_eq!(ts.len(), "2026-11-22T03:02:11.123Z".len(), "{ts}");
    assert!(ts.ends_with('Z'));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(dir.path().join(RUN).is_dir(), "the outputs directory exists");
}

#[test]
fn an_unsealed_run_is_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let log = started_run(dir.path());
    let stdout = verify(dir.path(), RUN, 4);
    assert_eq!(
        first_line(&stdout),
        format!(
            "{}: incomplete (no seal): 3 events, the last is seq 2 (step started, step `drain`)\n",
            log.path().display()
        )
    );
}

#[test]
fn a_torn_last_line_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = started_run(dir.path());
    let torn = "{\"v\":1,\"seq\":3,\"ts\":\"2026-11-2";
    let mut text = std::fs::read_to_string(log.path()).unwrap();
    text.push_str(torn);
    std::fs::write(log.path(), text).unwrap();
    let stdout = verify(dir.path(), RUN, 4);
    assert_eq!(
        first_line(&stdout),
        format!(
            "{}: incomplete (no seal): 3 events, the last is seq 2 (step started, step `drain`); torn last line (line 4, {} bytes) set aside by resume\n",
            log.path().display(),
            torn.len()
        )
    );
}

#[test]
fn a_file_cut_mid_line_is_incomplete_with_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = sealed_run(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 40)
        .unwrap();
    let stdout = verify(dir.path(), RUN, 4);
    assert!(
        stdout
            .contains(": incomplete (no seal): 5 events, the last is seq 4 (note); torn last line (line 6, "),
        "{stdout}"
    );
}

#[test]
fn an_edited_middle_event_is_tampered_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let path = sealed_run(dir.path());
    let mut all = lines(&path);
    assert!(all[3].contains("\"exit_code\":0"));
    all[3] = all[3].replace("\"exit_code\":0", "\"exit_code\":1");
    write_lines(&path, &all);
    let stdout = verify(dir.path(), RUN, 1);
    assert_eq!(
        stdout,
        format!(
            "{}: TAMPERED at seq 3 (line 4): hash does not match the line's contents\n",
            path.display()
        )
    );
}

#[test]
fn a_deleted_line_is_tampered_at_the_seq_after_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let path = sealed_run(dir.path());
    let mut all = lines(&path);
    all.remove(2);
    write_lines(&path, &all);
    let stdout = verify(dir.path(), RUN, 1);
    assert_eq!(
        stdout,
        format!(
            "{}: TAMPERED at seq 3 (line 3): expected seq 2, found 3: lines are missing or out of order\n",
            path.display()
        )
    );
}

#[test]
fn swapped_lines_are_tampered_at_the_first_line_out_of_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = sealed_run(dir.path());
    let mut all = lines(&path);
    all.swap(3, 4);
    write_lines(&path, &all);
    let stdout = verify(dir.path(), RUN, 1);
    assert!(
        stdout.contains(": TAMPERED at seq 4 (line 4): expected seq 3, found 4"),
        "{stdout}"
    );
}

#[test]
fn an_inserted_forged_line_breaks_the_chain_at_the_next_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = sealed_run(dir.path());
    let original = lines(&path);

    // Forged with a valid hash and the next seq: the line after it repeats that seq.
    let mut all = original.clone();
    all.insert(3, forged(3, &hash_of(&all[2])));
    write_lines(&path, &all);
    let stdout = verify(dir.path(), RUN, 1);
    assert!(
        stdout.contains(": TAMPERED at seq 3 (line 5): expected seq 4, found 3: a line was inserted"),
        "{stdout}"
    );

    // And with the later seqs renumbered to hide it: their `prev` no longer chains.
    let mut all = original.clone();
    for line in &mut all[3..] {
        let seq: u64 = serde_json::from_str::<Value>(line).unwrap()["seq"]
            .as_u64()
            .unwrap();
        *line = line.replace(&format!("\"seq\":{seq},"), &format!("\"seq\":{},", seq + 1));
    }
    all.insert(3, forged(3, &hash_of(&original[2])));
    write_lines(&path, &all);
    let stdout = verify(dir.path(), RUN, 1);
    assert!(
        stdout.contains(": TAMPERED at seq 4 (line 5): `prev` is not the hash of the previous event (seq 3)"),
        "{stdout}"
    );
}

#[test]
fn a_line_after_the_seal_is_tampered() {
    let dir = tempfile::tempdir().unwrap();
    let path = sealed_run(dir.path());
    let mut all = lines(&path);
    // Even a perfectly chained event cannot follow the seal.
    all.push(forged(6, &hash_of(&all[5])));
    write_lines(&path, &all);
    let stdout = verify(dir.path(), RUN, 1);
    assert_eq!(
        stdout,
        format!(
            "{}: TAMPERED at seq 6 (line 7): a line follows the seal (`run finished` on line 6)\n",
            path.display()
        )
    );
}

/// `AuditLog` never leaves an empty trail (its name comes with its first line), but older
/// versions did when the disk was full, and such a file is still read as it is.
#[test]
fn an_empty_file_is_incomplete_with_no_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{RUN}.jsonl"));
    std::fs::write(&path, "").unwrap();
    let stdout = verify(dir.path(), RUN, 4);
    assert_eq!(
        first_line(&stdout),
        format!("{}: incomplete (no seal): 0 events\n", path.display())
    );
}

#[test]
fn json_reports_the_verification() {
    let dir = tempfile::tempdir().unwrap();
    let path = sealed_run(dir.path());
    let mut all = lines(&path);
    all[1] = all[1].replace("api-1", "api-2");
    write_lines(&path, &all);
    let out = runbook(["audit", "verify", RUN, "--json"])
        .env("RUNBOOK_AUDIT_DIR", dir.path())
        .expect_code(1);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["status"], "tampered");
    assert_eq!(report["seq"], 1);
    assert_eq!(report["line"], 2);
    assert_eq!(report["events"], 1);
    assert_eq!(report["run"], RUN);
    assert_eq!(report["path"], path.display().to_string());
}

#[test]
fn an_unknown_run_names_the_audit_dir_searched() {
    let dir = tempfile::tempdir().unwrap();
    sealed_run(dir.path());
    let out = runbook([
        "--audit-dir".as_ref(),
        dir.path().as_os_str(),
        "audit".as_ref(),
        "verify".as_ref(),
        "nope".as_ref(),
    ])
    .expect_code(2);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains(&format!(
            "no run `nope` in the audit dir `{}`",
            dir.path().display()
        )),
        "{}",
        out.stderr
    );
    // A unique prefix of a run id is enough.
    verify(dir.path(), "20261122T030211Z-db", 0);
}

#[test]
fn the_output_recorder_keeps_the_file_its_digest_and_its_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = started_run(dir.path());
    let mut recorder = log.output("drain", 1, None).unwrap();
    let mut all = Vec::new();
    for i in 0..2000 {
        let line = format!("row {i}: {}\n", "x".repeat(i % 50));
        recorder.write(line.as_bytes()).unwrap();
        all.extend_from_slice(line.as_bytes());
    }
    let summary = recorder.finish().unwrap();
    assert_eq!(summary.path, format!("{RUN}/drain-1.out"));
    let file = dir.path().join(&summary.path);
    assert_eq!(std::fs::read(&file).unwrap(), all);
    assert_eq!(summary.size, all.len() as u64);
    let sha256sum = std::process::Command::new("sha256sum")
        .arg(&file)
        .output()
        .unwrap();
    let expected = String::from_utf8(sha256sum.stdout).unwrap();
    assert_eq!(summary.sha256, expected.split_whitespace().next().unwrap());
    assert!(
        summary.tail.len() <= 2048 && summary.tail.len() > 1024,
        "{}",
        summary.tail.len()
    );
    assert!(
        summary.tail.starts_with("row "),
        "the tail starts at a line: {:?}",
        &summary.tail[..20]
    );
    assert!(String::from_utf8(all).unwrap().ends_with(&summary.tail));
    assert!(
        summary
            .tail
            .ends_with(&format!("row 1999: {}\n", "x".repeat(1999 % 50)))
    );
    // A second recorder for the same attempt would overwrite evidence: refused.
    assert!(log.output("drain", 1, None).is_err());
}

#[test]
fn resume_sets_a_torn_line_aside_and_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = started_run(dir.path()).path().to_path_buf();
    let torn = b"{\"v\":1,\"seq\":3,\"ts\":\"2026";
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(torn);
    std::fs::write(&path, &bytes).unwrap();

    let mut log = AuditLog::open_append(&path, "bob").unwrap();
    assert_eq!(log.run_id(), RUN);
    assert_eq!(log.next_seq(), 4, "seq 3 is the recovery event");
    log.append("run resumed", None, None, fields(json!({"by": "bob"})), true)
        .unwrap();
    log.seal(fields(json!({"outcome": "resolved"}))).unwrap();

    let events = audit::read_events(&path).unwrap();
    let recovery = &events[3];
    assert_eq!(recovery["event"], "recovery");
    assert_eq!(recovery["torn_line"], 4);
    assert_eq!(recovery["bytes"], torn.len());
    assert_eq!(recovery["sha256"], audit::sha256_hex(torn));
    let saved = dir.path().join(recovery["saved_to"].as_str().unwrap());
    assert_eq!(std::fs::read(saved).unwrap(), torn);
    assert_eq!(events[4]["operator"], "bob");
    assert!(events[4]["mono_ms"].as_u64() >= events[2]["mono_ms"].as_u64());
    let v = audit::verify(&path).unwrap();
    assert_eq!(v.status, Status::IntactSealed);
    verify(dir.path(), RUN, 0);

    // A sealed run cannot be reopened.
    let err = AuditLog::open_append(&path, "carol").unwrap_err();
    assert!(err.to_string().contains("sealed"), "{err}");
}

#[test]
fn a_tampered_file_is_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let path = started_run(dir.path()).path().to_path_buf();
    let mut all = lines(&path);
    all[0] = all[0].replace("staging", "prod");
    write_lines(&path, &all);
    let err = AuditLog::open_append(&path, "bob").unwrap_err();
    assert!(
        err.to_string().contains("tampered with at seq 0 (line 1)"),
        "{err}"
    );
    assert!(audit::read_events(&path).is_err());
}

/// `--all`: every run of the audit dir, one verdict line each and a count; the worst exit
/// status (an incomplete run 4, a tampered one 1).
#[test]
fn verify_all_checks_every_run_of_the_audit_dir_and_exits_with_the_worst() {
    let dir = tempfile::tempdir().unwrap();
    let sealed = sealed_run(dir.path());
    let other = "20261123T000000Z-restart-0b1c";
    let mut open = AuditLog::create(dir.path(), other, "bob", Instant::now()).unwrap();
    open.append("note", None, None, fields(json!({"text": "going on"})), true)
        .unwrap();
    let all = |code: i32| {
        runbook(["--audit-dir".as_ref(), dir.path().as_os_str()])
            .args(["audit", "verify", "--all"])
            .expect_code(code)
            .stdout
    };
    let out = all(4);
    assert!(
        out.contains(&format!("{}: intact and sealed, 6 events\n", sealed.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("{other}.jsonl: incomplete (no seal): 1 event")),
        "{out}"
    );
    assert!(
        out.ends_with("2 runs: 1 intact and sealed, 1 incomplete, 0 tampered or untrusted\n"),
        "{out}"
    );
    let mut edited = lines(&sealed);
    edited[4] = edited[4].replace("queue drained", "queue drainee");
    write_lines(&sealed, &edited);
    let out = all(1);
    assert!(out.contains(": TAMPERED at seq 4 (line 5)"), "{out}");
    assert!(out.contains("1 incomplete, 1 tampered or untrusted"), "{out}");
    // One run or all of them, not both; without an audit host, all of them only when asked.
    let out = runbook(["audit", "verify", "--all", RUN]).expect_code(2);
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
    let out = runbook(["--audit-dir".as_ref(), dir.path().as_os_str()])
        .args(["audit", "verify"])
        .expect_code(2);
    assert!(out.stderr.contains("give RUN"), "{}", out.stderr);
    let empty = tempfile::tempdir().unwrap();
    let out = runbook(["--audit-dir".as_ref(), empty.path().as_os_str()])
        .args(["audit", "verify", "--all"])
        .expect_code(0);
    assert!(
        out.stdout.starts_with("no runs in the audit dir"),
        "{}",
        out.stdout
    );
}

/// Append cost with and without fsync: `cargo test --test it -- --ignored audit::bench --nocapture`
/// (scripts/bench-audit.sh runs it in release).
#[test]
#[ignore]
fn bench_append() {
    let dir = tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or(".".into())).unwrap();
    let mut log = AuditLog::create(dir.path(), RUN, "alice", Instant::now()).unwrap();
    let fields =
        || fields(json!({"command": "systemctl restart api", "exit_code": 0, "tail": "x".repeat(512)}));
    for (durable, n) in [(false, 5000), (true, 300)] {
        let start = Instant::now();
        for _ in 0..n {
            log.append("step finished", Some("drain"), Some("api-1"), fields(), durable)
                .unwrap();
        }
        let per = start.elapsed() / n;
        println!("append durable={durable}: {per:?} per event over {n} events");
    }
    let start = Instant::now();
    let v = audit::verify(log.path()).unwrap();
    println!("verify: {:?} for {} events", start.elapsed(), v.events);
}
