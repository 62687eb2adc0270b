//! The team's audit host (design §19) against a real sshd: the real binary mirrors its trail
//! there as it goes, byte for byte, with the output files; a step's start is there before its
//! command runs; a secret never reaches it in clear; a resumed run mirrors on; the URL comes
//! from the flag, the environment or the inventory. The audit host away: `lost.rs`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::support::audit_host::{dir as audit_host_dir, url};
use crate::support::cmd::{bin, runbook};
use crate::support::sshd::Sshd;
use crate::support::trail::audit_files;
use crate::support::wait;

mod lost;

const SECRET: &str = "Mirror-S3cret-4u9";

fn write(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, yaml).unwrap();
    path
}

/// The one trail of `audit`, and its run id.
fn the_trail(audit: &Path) -> (PathBuf, String) {
    let mut files = audit_files(audit);
    assert_eq!(files.len(), 1, "one trail in {}", audit.display());
    let trail = files.pop().unwrap();
    let run = trail.file_stem().unwrap().to_string_lossy().into_owned();
    (trail, run)
}

fn events_named(trail: &Path, name: &str) -> usize {
    fs::read_to_string(trail)
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].as_str() == Some(name))
        .count()
}

/// The mirrored trail and every output file are those of the audit dir, byte for byte, 0640.
#[track_caller]
fn assert_mirrored(audit: &Path, host_dir: &Path) {
    let (trail, run) = the_trail(audit);
    let copy = host_dir.join(format!("{run}.jsonl"));
    assert_eq!(
        fs::read_to_string(&copy).unwrap(),
        fs::read_to_string(&trail).unwrap(),
        "the audit host's copy differs"
    );
    assert_eq!(fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o640);
    let outputs: Vec<PathBuf> = fs::read_dir(audit.join(&run))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "out" || e == "log" || e == "cast")
        })
        .collect();
    for local in &outputs {
        let there = host_dir.join(&run).join(local.file_name().unwrap());
        assert_eq!(
            fs::read(&there).unwrap_or_else(|e| panic!("{}: {e}", there.display())),
            fs::read(local).unwrap(),
            "{} differs",
            there.display()
        );
        assert_eq!(fs::metadata(&there).unwrap().permissions().mode() & 0o777, 0o640);
    }
}

const MIRRORED: &str = r#"
version: 1
id: mirrored
title: Mirrored run
rto: 2m
inputs:
  mirror: {description: The audit host's directory}
  token: {description: A secret, secret: true}
steps:
  - id: probe
    title: Is my start on the audit host
    run: grep '"step started"' "$mirror/$run_id.jsonl" | grep -c '"step":"probe"'
    expect: {stdout: '^1$'}
  - id: say
    title: Print something, a secret among it
    run: printf 'hello %s\n' "$token"; printf 'to stderr\n' >&2
    uses: [token]
  - id: odd
    title: Text without its last newline
    run: |
      printf '  lead\\back\ttab\r\nno newline at the end'
  - id: binary
    title: Bytes with a NUL
    run: |
      printf 'a\000b\n'
  - id: big
    title: More than a small text
    run: |
      head -c 100000 /dev/zero | tr '\0' x
  - id: done
    title: Done
    end: resolved
"#;

#[test]
fn a_run_is_mirrored_byte_for_byte_its_starts_before_their_commands() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let audit = work.path().join("audit");
    let host_dir = audit_host_dir();
    let file = write(work.path(), "mirrored.yaml", MIRRORED);
    let out = runbook([
        "run",
        file.to_str().unwrap(),
        "--yes",
        "--audit-dir",
        audit.to_str().unwrap(),
    ])
    .args(["--audit-host", &url(&sshd, host_dir.path())])
    .args(sshd.ssh_args())
    .args(["--set", &format!("mirror={}", host_dir.path().display())])
    .args(["--set-from", "token=env:MIRROR_TOKEN"])
    .env("MIRROR_TOKEN", SECRET)
    .expect_code(0);
    assert!(!out.stderr.contains("warning"), "no warning: {}", out.stderr);
    let (trail, run) = the_trail(&audit);
    assert_eq!(events_named(&trail, "mirror lost"), 0);
    assert_mirrored(&audit, host_dir.path());
    // The probe saw its own start there (its expect held, and its output says so).
    let probe = fs::read_dir(host_dir.path().join(&run))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("probe"))
        .expect("the probe's output on the audit host");
    assert_eq!(fs::read_to_string(probe).unwrap(), "1\n");
    // The copy verifies on its own: chain, seal and every output.
    let copy = host_dir.path().join(format!("{run}.jsonl"));
    let verified = runbook(["audit", "verify", copy.to_str().unwrap()]).expect_code(0);
    assert!(
        verified.stdout.contains("intact and sealed"),
        "{}",
        verified.stdout
    );
    // The secret never reached the audit host in clear.
    for entry in walk(host_dir.path()) {
        let bytes = fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "{} holds the secret",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_wrong_audit_host_url_is_refused_naming_the_problem() {
    for (url, problem) in [
        ("audit@h/srv", "does not start with `ssh://`"),
        ("ssh://audit@h", "PATH after the host is missing"),
        ("ssh://h/srv", "USER before `@` is missing"),
    ] {
        let out = runbook(["list", "--audit-host", url]).expect_code(2);
        assert!(out.stderr.contains(problem), "{url}: {}", out.stderr);
    }
}

const PLAIN: &str = "version: 1\nid: plain\ntitle: Plain\nrto: 1m\nsteps:\n  - {id: one, title: One, run: echo one}\n  - {id: done, title: Done, end: resolved}\n";

/// The flag wins over the environment, the environment over the inventory; the inventory's
/// alone is used; a wrong one there is refused where it is written.
#[test]
fn the_audit_host_comes_from_the_flag_then_the_environment_then_the_inventory() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let file = write(work.path(), "plain.yaml", PLAIN);
    let closed = format!(
        "ssh://nobody@127.0.0.1:{}/srv",
        crate::support::http::closed_port()
    );
    let host_dir = audit_host_dir();
    let good = url(&sshd, host_dir.path());
    let inventory = |name: &str, url: &str| write(work.path(), name, &format!("audit_host: {url}\n"));
    let cases = [
        (
            "flag over env",
            Some(good.as_str()),
            Some(closed.as_str()),
            None,
            true,
        ),
        (
            "env over inventory",
            None,
            Some(good.as_str()),
            Some(closed.as_str()),
            true,
        ),
        ("inventory alone", None, None, Some(good.as_str()), true),
        (
            "flag over inventory",
            Some(closed.as_str()),
            None,
            Some(good.as_str()),
            false,
        ),
    ];
    for (i, (case, flag, env, inv, mirrored)) in cases.into_iter().enumerate() {
        let audit = work.path().join(format!("audit-{i}"));
        let mut run = runbook([
            "run",
            file.to_str().unwrap(),
            "--yes",
            "--audit-dir",
            audit.to_str().unwrap(),
        ])
        .args(sshd.ssh_args())
        .env_remove("RUNBOOK_AUDIT_HOST");
        if let Some(flag) = flag {
            run = run.args(["--audit-host", flag]);
        }
        if let Some(env) = env {
            run = run.env("RUNBOOK_AUDIT_HOST", env);
        }
        if let Some(inv) = inv {
            run = run
                .arg("--inventory")
                .arg(inventory(&format!("inv-{i}.yaml"), inv));
        }
        let out = run.expect_code(0);
        let (_, id) = the_trail(&audit);
        assert_eq!(
            host_dir.path().join(format!("{id}.jsonl")).exists(),
            mirrored,
            "{case}: {}",
            out.stderr
        );
        assert_eq!(
            out.stderr.contains("cannot be reached"),
            !mirrored,
            "{case}: {}",
            out.stderr
        );
    }
    let bad = inventory("bad.yaml", "ssh://audit@h");
    let out = runbook([
        "run",
        file.to_str().unwrap(),
        "--yes",
        "--inventory",
        bad.to_str().unwrap(),
    ])
    .env_remove("RUNBOOK_AUDIT_HOST")
    .expect_code(2);
    assert!(
        out.stderr.contains("bad.yaml:1:") && out.stderr.contains("PATH after the host is missing"),
        "{}",
        out.stderr
    );
}

const RESUMED: &str = r#"
version: 1
id: resumed
title: Killed and resumed
rto: 2m
inputs:
  gates: {description: Where the test opens the gate}
steps:
  - id: hold
    title: Wait for the gate
    idempotent: true
    run: until [ -e "$gates/one" ]; do sleep 0.02; done; echo held
  - id: done
    title: Done
    end: resolved
"#;

/// A run killed mid-step and resumed on: the resumed process mirrors on from where the audit
/// host's copy ends, and at the seal that copy is the local trail, byte for byte.
#[test]
fn a_resumed_run_mirrors_on_from_where_the_audit_host_stopped() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let audit = work.path().join("audit");
    let gates = work.path().join("gates");
    fs::create_dir(&gates).unwrap();
    let host_dir = audit_host_dir();
    let file = write(work.path(), "resumed.yaml", RESUMED);
    let host = url(&sshd, host_dir.path());
    let mut child = std::process::Command::new(bin())
        .args([
            "run",
            file.to_str().unwrap(),
            "--yes",
            "--audit-dir",
            audit.to_str().unwrap(),
        ])
        .args(["--audit-host", &host])
        .args(sshd.ssh_args())
        .args(["--set", &format!("gates={}", gates.display())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait::until(Duration::from_secs(30), "`hold` mirrored as started", || {
        audit_files(host_dir.path()).first().is_some_and(|copy| {
            fs::read_to_string(copy)
                .unwrap_or_default()
                .contains("\"step\":\"hold\"")
        })
    });
    child.kill().unwrap();
    child.wait().unwrap();
    fs::write(gates.join("one"), "").unwrap();
    let (trail, _) = the_trail(&audit);
    let out = runbook([
        "resume",
        trail.to_str().unwrap(),
        "--yes",
        "--audit-dir",
        audit.to_str().unwrap(),
    ])
    .args(["--audit-host", &host])
    .args(sshd.ssh_args())
    .expect_code(0);
    assert!(!out.stderr.contains("audit host"), "{}", out.stderr);
    assert_eq!(events_named(&trail, "run resumed"), 1);
    assert_mirrored(&audit, host_dir.path());
}
