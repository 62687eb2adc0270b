//! The audit writer against real files: member order, the chain on failed writes, signed
//! checkpoints, and what a trail leaves on disk (its name only with its first line).

use super::*;
use std::fs::OpenOptions;

use super::super::verify::Status;

#[test]
fn render_writes_members_in_the_documented_order() {
    let mut fields = Map::new();
    fields.insert("zeta".into(), "first".into());
    fields.insert("alpha".into(), 2.into());
    let (line, hash) = render(&EventParts {
        seq: 3,
        ts: "2026-11-22T03:02:11.123Z",
        mono_ms: 1500,
        run: "r",
        event: "step started",
        operator: "alice",
        step: Some("drain"),
        host: Some("api-1"),
        fields: &fields,
        prev: GENESIS,
    })
    .unwrap();
    let body = format!(
        "{{\"v\":1,\"seq\":3,\"ts\":\"2026-11-22T03:02:11.123Z\",\"mono_ms\":1500,\"run\":\"r\",\"event\":\"step started\",\"operator\":\"alice\",\"step\":\"drain\",\"host\":\"api-1\",\"zeta\":\"first\",\"alpha\":2,\"prev\":\"{GENESIS}\"}}"
    );
    assert_eq!(hash, event_hash(GENESIS, body.as_bytes()));
    assert_eq!(
        line,
        format!("{},\"hash\":\"{hash}\"}}\n", &body[..body.len() - 1])
    );
}

#[test]
fn a_field_may_not_shadow_a_common_member() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::create(dir.path(), "r", "alice", Instant::now()).unwrap();
    let mut fields = Map::new();
    fields.insert("seq".into(), 99.into());
    let err = log.append("note", None, None, fields, false).unwrap_err();
    assert!(err.to_string().contains("field named `seq`"), "{err}");
    assert_eq!(log.next_seq(), 0);
}

/// A write the kernel refuses (ENOSPC from /dev/full) is an error naming the file, and the
/// chain does not advance: the next successful append continues with the same seq.
#[test]
fn a_failed_write_is_an_error_and_does_not_advance_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::create(dir.path(), "r", "alice", Instant::now()).unwrap();
    assert_eq!(
        log.append("run started", None, None, Map::new(), true).unwrap(),
        0
    );
    let head = log.head().to_string();
    let real = log.file.try_clone().unwrap();
    let full = OpenOptions::new().append(true).open("/dev/full").unwrap();
    log.replace_file(full);
    let err = log
        .append("step started", Some("s"), None, Map::new(), true)
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Runtime(_)));
    assert!(
        message.contains("r.jsonl") && message.contains("No space left"),
        "{message}"
    );
    assert_eq!(log.next_seq(), 1);
    assert_eq!(log.head(), head);
    log.replace_file(real);
    assert_eq!(log.append("note", None, None, Map::new(), false).unwrap(), 1);
    log.seal(Map::new()).unwrap();
    let v = crate::audit::verify(log.path()).unwrap();
    assert_eq!(v.status, Status::IntactSealed);
    assert_eq!(v.events, 3);
}

/// A run that signs puts a signed checkpoint after a step once 60 s of run time passed
/// since the last signed event, then signs the seal; each signature checks out with
/// `ssh-keygen` against the event's own hash.
#[test]
fn a_signing_run_checkpoints_every_minute_and_signs_its_seal() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success(), "ssh-keygen is needed (openssh-client)");
    let signing = crate::audit::sign::Signing::choose(Some(&key), false).unwrap();
    // Started 61 s ago: the first finished step is due a checkpoint.
    let started = Instant::now() - std::time::Duration::from_secs(61);
    let mut log = AuditLog::create(dir.path(), "r", "alice", started).unwrap();
    log.set_signer(signing.signer());
    log.append("run started", None, None, Map::new(), true).unwrap();
    log.append("step finished", Some("s"), None, Map::new(), true)
        .unwrap();
    log.checkpoint_if_due().unwrap();
    log.checkpoint_if_due().unwrap();
    log.seal(Map::new()).unwrap();
    let v = crate::audit::verify(log.path()).unwrap();
    assert_eq!(v.status, Status::IntactSealed);
    let signed: Vec<&str> = v.signatures.iter().map(|s| s.event.as_str()).collect();
    assert_eq!(signed, ["checkpoint", "run finished"], "one checkpoint, not two");
    let report = crate::audit::check_signatures(&v, None);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.head_signed);
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Regression: a full disk at the very first line left an empty `<run>.jsonl`, which could
/// not be resumed and showed in `history` as a ghost. The trail gets its name only with its
/// first line; a first line that cannot be written leaves nothing at all.
#[test]
fn a_first_line_that_cannot_be_written_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::create(dir.path(), "r", "alice", Instant::now()).unwrap();
    assert_eq!(
        names_in(dir.path()),
        ["r", "r.jsonl.new"],
        "no trail before its first line"
    );
    log.replace_file(OpenOptions::new().append(true).open("/dev/full").unwrap());
    let err = log
        .append("run started", None, None, Map::new(), true)
        .unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "nothing ran: {err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot write the first line of the audit file `{}`: No space left on device (os error 28); nothing was run and no trail was left: free some space (or give another --audit-dir) and run again",
            dir.path().join("r.jsonl").display()
        )
    );
    assert!(names_in(dir.path()).is_empty(), "{:?}", names_in(dir.path()));
    let again = log.append("note", None, None, Map::new(), false).unwrap_err();
    assert!(again.to_string().contains("first line"), "{again}");
}

#[test]
fn a_log_dropped_before_its_first_line_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    drop(AuditLog::create(dir.path(), "r", "alice", Instant::now()).unwrap());
    assert!(names_in(dir.path()).is_empty(), "{:?}", names_in(dir.path()));
}

/// The first line is on disk under the trail's own name, 0600; the temporary name is gone;
/// the output directory is 0700.
#[test]
fn the_first_line_names_the_trail_and_everything_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::create(dir.path(), "r", "alice", Instant::now()).unwrap();
    log.append("run started", None, None, Map::new(), true).unwrap();
    assert_eq!(names_in(dir.path()), ["r", "r.jsonl"]);
    let out = log.output("s", 1, None).unwrap();
    out.finish().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("r.jsonl")), 0o600);
    assert_eq!(mode(&dir.path().join("r")), 0o700);
    assert_eq!(mode(&dir.path().join("r/s-1.out")), 0o600);
    assert!(
        std::fs::read_to_string(dir.path().join("r.jsonl"))
            .unwrap()
            .contains("\"run started\"")
    );
}

/// A link (or a file) planted where a run's output directory goes is refused, never
/// followed, and the trail is not started.
#[test]
fn a_planted_output_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("r")).unwrap();
    let err = AuditLog::create(dir.path(), "r", "alice", Instant::now()).unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err:?}");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(names_in(dir.path()), ["r"], "no trail was started");
    assert!(names_in(elsewhere.path()).is_empty());
}

/// A trail `r` in `dir` with its first event, closed as a crashed run leaves it.
fn one_event_trail(dir: &std::path::Path) {
    let mut log = AuditLog::create(dir, "r", "alice", Instant::now()).unwrap();
    log.append("run started", None, None, Map::new(), true).unwrap();
}

/// Resume: the output directory of the run is there already, and must be a directory.
#[test]
fn a_resumed_trail_refuses_a_link_as_its_output_dir() {
    let dir = tempfile::tempdir().unwrap();
    one_event_trail(dir.path());
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::remove_dir(dir.path().join("r")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("r")).unwrap();
    let err = AuditLog::open_append(&dir.path().join("r.jsonl"), "bob").unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("is not a directory (a symbolic link or a file?)"),
        "{err}"
    );
    assert!(names_in(elsewhere.path()).is_empty());
}

/// A trail reached through a link is not continued: the link could point anywhere.
#[test]
fn a_trail_that_is_a_link_is_not_reopened() {
    let dir = tempfile::tempdir().unwrap();
    one_event_trail(dir.path());
    std::fs::rename(dir.path().join("r.jsonl"), dir.path().join("real")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("r.jsonl")).unwrap();
    let err = AuditLog::open_append(&dir.path().join("r.jsonl"), "bob").unwrap_err();
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
}

#[test]
fn nothing_follows_the_seal() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AuditLog::create(dir.path(), "r", "alice", Instant::now()).unwrap();
    log.seal(Map::new()).unwrap();
    let err = log.append("note", None, None, Map::new(), false).unwrap_err();
    assert!(err.to_string().contains("sealed"), "{err}");
}

/// The golden trail (issue 26): a real run's trail, committed, re-written here line by line
/// from its parts through the writer and compared byte for byte. Whatever the writer becomes
/// (a typed record), every trail on disk must still come out of it the same, or its hash
/// chain and signatures would no longer verify.
#[test]
fn the_golden_trail_is_rewritten_byte_for_byte() {
    let golden = include_str!("../../../tests/data/golden/20261207T000515Z-local-drill-c793.jsonl");
    let mut prev = GENESIS.to_string();
    for (n, line) in golden.lines().enumerate() {
        let Value::Object(mut members) = serde_json::from_str::<Value>(line).unwrap() else {
            panic!("line {} is not an object", n + 1);
        };
        let text = |members: &Map<String, Value>, key: &str| {
            members.get(key).and_then(Value::as_str).map(str::to_string)
        };
        let (ts, run, event, operator) = (
            text(&members, "ts").unwrap(),
            text(&members, "run").unwrap(),
            text(&members, "event").unwrap(),
            text(&members, "operator").unwrap(),
        );
        let (step, host) = (text(&members, "step"), text(&members, "host"));
        let seq = members["seq"].as_u64().unwrap();
        let mono_ms = members["mono_ms"].as_u64().unwrap();
        let hash = text(&members, "hash").unwrap();
        let signature: Option<super::super::sign::Signature> = members
            .get("signature")
            .map(|s| serde_json::from_value(s.clone()).unwrap());
        assert_eq!(text(&members, "prev").unwrap(), prev, "line {}", n + 1);
        for common in RESERVED.iter().chain(&["signature"]) {
            members.shift_remove(*common);
        }
        let (body, rehash) = render_body(&EventParts {
            seq,
            ts: &ts,
            mono_ms,
            run: &run,
            event: &event,
            operator: &operator,
            step: step.as_deref(),
            host: host.as_deref(),
            fields: &members,
            prev: &prev,
        })
        .unwrap();
        assert!(
            line.starts_with(body.trim_end_matches('}')),
            "line {}:\n{body}\n{line}",
            n + 1
        );
        assert_eq!(rehash, hash, "line {}: the hash", n + 1);
        let rewritten = line_of(body, &rehash, signature.as_ref()).unwrap();
        assert_eq!(rewritten, format!("{line}\n"), "line {} differs", n + 1);
        prev = hash;
    }
    assert_eq!(golden.lines().count(), 26);
}
