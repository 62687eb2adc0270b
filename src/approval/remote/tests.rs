use super::*;

/// The script as the audit host runs it, here with the same `sh`, in `dir`.
fn run(dir: &Path, args: &[&str], input: &[u8]) -> (i32, Vec<Frame>) {
    use std::io::Write;
    let host = AuditHost::parse(&format!("ssh://audit@logs{}", dir.display())).unwrap();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(host.script("rb-approvals", SCRIPT, args))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), frames(&out.stdout).unwrap())
}

fn word(frames: &[Frame], kind: &str) -> String {
    frames.iter().find(|f| f.kind == kind).unwrap().word.clone()
}

#[test]
fn requests_take_a_free_name_and_answers_never_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (code, f) = run(dir.path(), &["request", "r-s-1"], b"{\"a\":1}\n");
    assert_eq!((code, word(&f, "name")), (0, "r-s-1.json".to_string()));
    let (_, f) = run(dir.path(), &["request", "r-s-1"], b"{}\n");
    assert_eq!(word(&f, "name"), "r-s-1.2.json");
    let spool = dir.path().join("approvals");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&spool), 0o3770, "setgid, sticky, the group's");
    assert_eq!(mode(&spool.join("r-s-1.json")), 0o640);
    assert!(spool.join("r-s-1.json.alive").exists());

    // Two approvals and a denial, each under its own name; the reason comes with its denial.
    let (_, f) = run(dir.path(), &["answer", "r-s-1.json", "approve", "SIG1", ""], b"");
    assert_eq!(word(&f, "wrote"), "r-s-1.json.sig");
    let (_, f) = run(dir.path(), &["answer", "r-s-1.json", "approve", "SIG2", ""], b"");
    assert_eq!(word(&f, "wrote"), "r-s-1.json.2.sig");
    let (_, f) = run(
        dir.path(),
        &["answer", "r-s-1.json", "deny", "SIG3", "not now; $(x)"],
        b"",
    );
    assert_eq!(word(&f, "wrote"), "r-s-1.json.deny.sig");
    let (_, f) = run(dir.path(), &["poll", "r-s-1.json"], b"");
    let got: Vec<(&str, &str, &[u8])> = f
        .iter()
        .filter(|f| f.kind != "end")
        .map(|f| (f.kind.as_str(), f.name.as_str(), f.bytes.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            ("sig", "r-s-1.json.sig", b"SIG1\n".as_slice()),
            ("sig", "r-s-1.json.2.sig", b"SIG2\n"),
            ("reason", "r-s-1.json.deny", b"not now; $(x)"),
            ("sig", "r-s-1.json.deny.sig", b"SIG3\n"),
        ]
    );
    // An answer to a request that is not there is refused; a name with a path never reaches a file.
    let (_, f) = run(dir.path(), &["answer", "gone.json", "approve", "SIG", ""], b"");
    assert!(f.iter().any(|f| f.kind == "gone"));
    assert_eq!(run(dir.path(), &["get", "../r-s-1.json"], b"").0, 5);
}

#[test]
fn a_request_waits_while_its_heartbeat_is_fresh_and_not_once_done() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["request", "a-s-1"], b"A\n");
    run(dir.path(), &["request", "b-s-1"], b"B\n");
    let listed = found(run(dir.path(), &["list"], b"").1);
    let waits: Vec<(&str, bool, &[u8])> = listed
        .iter()
        .map(|f| (f.name.as_str(), f.waits, f.bytes.as_slice()))
        .collect();
    assert_eq!(
        waits,
        [
            ("a-s-1.json", true, b"A\n".as_slice()),
            ("b-s-1.json", true, b"B\n")
        ]
    );
    // Done: no heartbeat. Stale: touched long ago (a run that died).
    run(dir.path(), &["done", "a-s-1.json"], b"");
    let old = std::fs::File::options()
        .write(true)
        .open(dir.path().join("approvals/b-s-1.json.alive"))
        .unwrap();
    old.set_modified(std::time::SystemTime::now() - STALE - Duration::from_secs(5))
        .unwrap();
    let listed = found(run(dir.path(), &["get", "b-s-1.json"], b"").1);
    assert!(!listed[0].waits);
    let listed = found(run(dir.path(), &["list"], b"").1);
    assert!(listed.iter().all(|f| !f.waits), "{listed:?}");
    // Polling touches it again: the run is back.
    run(dir.path(), &["poll", "b-s-1.json"], b"");
    assert!(found(run(dir.path(), &["get", "b-s-1.json"], b"").1)[0].waits);
}

#[test]
fn a_name_planted_in_the_spool_is_passed_over_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["request", "r-s-1"], b"R\n");
    let spool = dir.path().join("approvals");
    let target = dir.path().join("elsewhere");
    std::os::unix::fs::symlink(&target, spool.join("r-s-1.json.sig")).unwrap();
    std::os::unix::fs::symlink(&target, spool.join("r-s-1.json.deny")).unwrap();
    let (_, f) = run(dir.path(), &["answer", "r-s-1.json", "approve", "SIG", ""], b"");
    assert_eq!(word(&f, "wrote"), "r-s-1.json.2.sig");
    let (_, f) = run(dir.path(), &["answer", "r-s-1.json", "deny", "SIG", "no"], b"");
    assert_eq!(word(&f, "wrote"), "r-s-1.json.2.deny.sig");
    assert!(!target.exists(), "nothing was written through a planted link");
    // The planted link is not handed over as an answer either.
    let (_, f) = run(dir.path(), &["poll", "r-s-1.json"], b"");
    let names: Vec<&str> = f
        .iter()
        .filter(|f| f.kind != "end")
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["r-s-1.json.2.deny", "r-s-1.json.2.deny.sig", "r-s-1.json.2.sig"]
    );
}
