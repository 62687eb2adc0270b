//! `runbook resume RUN --audit-host URL` on another machine (design §19, issue #27): "machine
//! A" and "machine B" are two audit dirs, the audit host a real sshd. B fetches the run A
//! mirrored, verifies it as `audit verify` does, refuses it on any problem (exit 1, nothing
//! kept), and otherwise finishes the same run in the same chain, mirroring on.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::audit_host::{dir as audit_host_dir, url};
use crate::support::cmd::{Outcome, bin, runbook};
use crate::support::sshd::{self, Sshd};
use crate::support::trail::{audit_files, events, named, resumed_after_unknown};
use crate::support::wait;

/// Three steps on the operator's machine, each appending its name to `log`.
fn book(dir: &Path, log: &Path) -> PathBuf {
    let text = format!(
        "version: 1\nid: remote-handoff\ntitle: Hand off across machines\nrto: 10m\nsteps:\n  - id: s1\n    title: First\n    run: echo first >> {log}; echo first\n  - id: s2\n    title: Second\n    run: echo second >> {log}; echo second\n  - id: done\n    title: Done\n    end: resolved\n",
        log = log.display()
    );
    let file = dir.join("remote-handoff.yaml");
    fs::write(&file, text).unwrap();
    file
}

/// Machine A: runs `file` as alice, mirrored to `host`, handing off at `s2`. Returns the run id
/// and the printed resume command's words.
fn alice_hands_off(sshd: &Sshd, file: &Path, audit_a: &Path, host: &str) -> (String, Vec<String>) {
    let out = runbook(["run", file.to_str().unwrap(), "--yes", "--operator", "alice"])
        .args(["--audit-dir", audit_a.to_str().unwrap()])
        .args(["--audit-host", host])
        .args(sshd.ssh_args())
        .args(["--answer", "s2=handoff"])
        .expect_code(0);
    let line = out
        .stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("runbook resume "))
        .unwrap_or_else(|| panic!("no resume command printed:\n{}", out.stderr));
    let words = shlex::split(line).unwrap();
    (words[2].clone(), words)
}

/// Machine B: `runbook resume RUN --audit-host URL --yes` as bob in `audit_b`.
fn bob_resumes(sshd: &Sshd, run: &str, audit_b: &Path, host: &str, extra: &[&str]) -> Outcome {
    runbook(["resume", run, "--yes", "--operator", "bob"])
        .args(["--audit-dir", audit_b.to_str().unwrap()])
        .args(["--audit-host", host])
        .args(sshd.ssh_args())
        .args(extra)
        .output()
}

/// Nothing at all in B's audit dir: no trail, no outputs, no half-fetched directory.
#[track_caller]
fn assert_nothing_kept(audit_b: &Path) {
    let left: Vec<_> = fs::read_dir(audit_b)
        .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in B's audit dir: {left:?}");
}

/// B's trail and output files are the audit host's, byte for byte; B's are private.
#[track_caller]
fn assert_same_as_audit_host(audit_b: &Path, host_dir: &Path, run: &str) {
    let trail = audit_b.join(format!("{run}.jsonl"));
    assert_eq!(
        fs::read(&trail).unwrap(),
        fs::read(host_dir.join(format!("{run}.jsonl"))).unwrap(),
        "B's trail and the audit host's differ"
    );
    assert_eq!(fs::metadata(&trail).unwrap().permissions().mode() & 0o777, 0o600);
    let outputs = audit_b.join(run);
    assert_eq!(
        fs::metadata(&outputs).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let mut count = 0;
    for entry in fs::read_dir(&outputs).unwrap() {
        let local = entry.unwrap().path();
        let there = host_dir.join(run).join(local.file_name().unwrap());
        assert_eq!(
            fs::read(&local).unwrap(),
            fs::read(&there).unwrap(),
            "{}",
            local.display()
        );
        assert_eq!(fs::metadata(&local).unwrap().permissions().mode() & 0o777, 0o600);
        count += 1;
    }
    assert!(count >= 2, "the outputs of both steps in B: {count}");
}

#[test]
fn a_run_handed_off_on_one_machine_is_finished_on_another_from_the_audit_host() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let (audit_a, audit_b) = (work.path().join("a"), work.path().join("b"));
    let host_dir = audit_host_dir();
    let host = url(&sshd, host_dir.path());
    let log = work.path().join("ran.log");
    let file = book(work.path(), &log);
    let (run, words) = alice_hands_off(&sshd, &file, &audit_a, &host);
    // The printed command names the audit host, for a colleague on another machine.
    let at = words
        .iter()
        .position(|w| w == "--audit-host")
        .expect("--audit-host printed");
    assert_eq!(words[at + 1], host, "{words:?}");
    assert_eq!(fs::read_to_string(&log).unwrap(), "first\n");

    let out = bob_resumes(&sshd, &run, &audit_b, &host, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    assert_eq!(fs::read_to_string(&log).unwrap(), "first\nsecond\n");
    let trail = audit_b.join(format!("{run}.jsonl"));
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
    let after = events(&trail);
    let seal = named(&after, "run finished");
    assert_eq!(seal.len(), 1);
    assert_eq!(
        (&seal[0]["outcome"], &seal[0]["operator"]),
        (&"resolved".into(), &"bob".into())
    );
    let resumed = named(&after, "run resumed");
    assert_eq!(resumed[0]["previous_operator"], "alice");
    assert_eq!(named(&after, "handed off")[0]["operator"], "alice");
    // One chain: A's lines are its start, byte for byte.
    let a = fs::read(audit_a.join(format!("{run}.jsonl"))).unwrap();
    assert!(
        fs::read(&trail).unwrap().starts_with(&a),
        "A's trail is not the start of B's"
    );
    // Mirrored on: the audit host holds the sealed run, as B does.
    assert_same_as_audit_host(&audit_b, host_dir.path(), &run);
    let copy = host_dir.path().join(format!("{run}.jsonl"));
    runbook(["audit", "verify"]).arg(&copy).expect_code(0);
}

/// Flips one byte of `path` at the first `from` (same length: only the content changes).
fn flip(path: &Path, from: &str, to: &str) -> Vec<u8> {
    let before = fs::read(path).unwrap();
    let text = String::from_utf8(before.clone()).unwrap();
    assert!(text.contains(from), "no `{from}` in {}", path.display());
    fs::write(path, text.replacen(from, to, 1)).unwrap();
    before
}

#[test]
fn a_trail_or_output_changed_on_the_audit_host_or_another_head_is_refused_and_nothing_kept() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let (audit_a, audit_b) = (work.path().join("a"), work.path().join("b"));
    let host_dir = audit_host_dir();
    let host = url(&sshd, host_dir.path());
    let log = work.path().join("ran.log");
    let file = book(work.path(), &log);
    let (run, _) = alice_hands_off(&sshd, &file, &audit_a, &host);
    let copy = host_dir.path().join(format!("{run}.jsonl"));
    // By a unique prefix, resolved on the audit host.
    let prefix = &run[..run.len() - 3];

    // One byte of a line of the mirrored trail.
    let before = flip(&copy, "\"operator\":\"alice\"", "\"operator\":\"alicf\"");
    let out = bob_resumes(&sshd, prefix, &audit_b, &host, &[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("tampered with at seq"), "{}", out.stderr);
    assert_nothing_kept(&audit_b);
    fs::write(&copy, before).unwrap();

    // One byte of an output file there.
    let output = fs::read_dir(host_dir.path().join(&run))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("s1"))
        .expect("s1's output on the audit host");
    let before = flip(&output, "first", "firsT");
    let out = bob_resumes(&sshd, prefix, &audit_b, &host, &[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("output of step `s1`") && out.stderr.contains("SHA-256"),
        "{}",
        out.stderr
    );
    assert_nothing_kept(&audit_b);
    fs::write(&output, before).unwrap();

    // A head published elsewhere that is not this one.
    let head = events(&copy).last().unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let wrong: String = head.chars().rev().take(40).collect();
    assert!(!head.starts_with(&wrong));
    let out = bob_resumes(&sshd, prefix, &audit_b, &host, &["--expect-head", &wrong]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("not the expected"), "{}", out.stderr);
    assert_nothing_kept(&audit_b);
    assert_eq!(fs::read_to_string(&log).unwrap(), "first\n", "nothing ran");

    // Signers required, and this run signed by none of them (it is not signed at all).
    let public = fs::read_to_string(sshd.identity.with_extension("pub")).unwrap();
    let signers = work.path().join("allowed_signers");
    fs::write(&signers, format!("alice@example.com {public}")).unwrap();
    let out = bob_resumes(
        &sshd,
        prefix,
        &audit_b,
        &host,
        &["--signers", signers.to_str().unwrap()],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("unsigned"), "{}", out.stderr);
    assert_nothing_kept(&audit_b);

    // The right head, and everything put back: the run is taken over and finished.
    let out = bob_resumes(&sshd, prefix, &audit_b, &host, &["--expect-head", &head[..32]]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(fs::read_to_string(&log).unwrap(), "first\nsecond\n");
    assert_same_as_audit_host(&audit_b, host_dir.path(), &run);
}

#[test]
fn a_local_trail_that_differs_from_the_audit_hosts_or_a_prefix_of_two_runs_is_refused() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let audit_a = work.path().join("a");
    let host_dir = audit_host_dir();
    let host = url(&sshd, host_dir.path());
    let log = work.path().join("ran.log");
    let file = book(work.path(), &log);
    let (run, _) = alice_hands_off(&sshd, &file, &audit_a, &host);
    // The audit host's copy, cut and continued apart: neither is the start of the other.
    let copy = host_dir.path().join(format!("{run}.jsonl"));
    let local = audit_a.join(format!("{run}.jsonl"));
    let text = fs::read_to_string(&copy).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    let mut other = lines[..lines.len() - 1].join("\n");
    other.push_str(&format!(
        "\n{}\n",
        lines[lines.len() - 1].replace("alice", "mallory")
    ));
    fs::write(&copy, other).unwrap();
    let out = bob_resumes(&sshd, &run, &audit_a, &host, &[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("diverged"), "{}", out.stderr);
    assert!(
        out.stderr.contains(last["hash"].as_str().unwrap()),
        "the local head named: {}",
        out.stderr
    );
    assert_eq!(
        fs::read_to_string(&local).unwrap(),
        text,
        "the local trail is untouched"
    );
    assert_eq!(fs::read_to_string(&log).unwrap(), "first\n", "nothing ran");

    // A prefix that names two runs on the audit host names both, and fetches neither.
    let (second, _) = alice_hands_off(&sshd, &file, &audit_a, &host);
    let audit_b = work.path().join("b");
    let out = bob_resumes(&sshd, &run[..4], &audit_b, &host, &[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("matches 2 runs on the audit host")
            && out.stderr.contains(&run)
            && out.stderr.contains(&second),
        "{}",
        out.stderr
    );
    assert_nothing_kept(&audit_b);
}

const HELD: &str = r#"
version: 1
id: held
title: Killed on one machine, finished on another
rto: 5m
inputs:
  gates: {description: Where the test opens the gate}
steps:
  - id: first
    title: First
    run: echo first
  - id: hold
    title: Wait for the gate
    idempotent: true
    run: until [ -e "$gates/open" ]; do sleep 0.02; done; echo held >> "$gates/ran"
  - id: done
    title: Done
    end: resolved
"#;

#[test]
fn a_run_whose_machine_died_mid_step_is_finished_from_the_audit_host_its_step_unknown() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let (audit_a, audit_b) = (work.path().join("a"), work.path().join("b"));
    let gates = work.path().join("gates");
    fs::create_dir(&gates).unwrap();
    let host_dir = audit_host_dir();
    let host = url(&sshd, host_dir.path());
    let file = work.path().join("held.yaml");
    fs::write(&file, HELD).unwrap();
    let mut a = std::process::Command::new(bin())
        .args(["run", file.to_str().unwrap(), "--yes", "--operator", "alice"])
        .args(["--audit-dir", audit_a.to_str().unwrap()])
        .args(["--audit-host", &host])
        .args(sshd.ssh_args())
        .args(["--set", &format!("gates={}", gates.display())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = |text: &str| {
        text.lines()
            .any(|l| l.contains("\"event\":\"step started\"") && l.contains("\"step\":\"hold\""))
    };
    // `hold` started there, and `first`'s output copied (the mirror copies it while `hold`
    // runs: a machine that dies before that takes the output with it, and B refuses the run).
    wait::until(
        Duration::from_secs(30),
        "`hold` started on the audit host",
        || {
            audit_files(host_dir.path()).first().is_some_and(|copy| {
                let run = copy.file_stem().unwrap().to_string_lossy().into_owned();
                started(&fs::read_to_string(copy).unwrap_or_default())
                    && fs::read_to_string(host_dir.path().join(run).join("first-1.out"))
                        .is_ok_and(|o| o == "first\n")
            })
        },
    );
    // The machine is gone, with everything on it: the step's command too (SIGKILL).
    let everything = sshd::descendants(a.id());
    a.kill().unwrap();
    a.wait().unwrap();
    for pid in everything {
        // SAFETY: a plain kill(2) of a process this test started (or its leftover pid).
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    let run = audit_files(host_dir.path())[0]
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    fs::write(gates.join("open"), "").unwrap();

    let out = bob_resumes(&sshd, &run, &audit_b, &host, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let trail = audit_b.join(format!("{run}.jsonl"));
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
    let after = events(&trail);
    resumed_after_unknown(&after, "hold");
    // Unattended, the idempotent step is run again, once, and the run ends resolved.
    assert_eq!(fs::read_to_string(gates.join("ran")).unwrap(), "held\n");
    let finished: Vec<_> = named(&after, "step finished")
        .into_iter()
        .filter(|e| e["step"] == "hold")
        .collect();
    assert_eq!(finished.len(), 1, "{finished:#?}");
    assert_eq!(named(&after, "run finished")[0]["outcome"], "resolved");
    assert_eq!(
        fs::read(&trail).unwrap(),
        fs::read(host_dir.path().join(format!("{run}.jsonl"))).unwrap(),
        "mirrored on to the end"
    );
}

/// Handed back: A's trail is the start of the audit host's copy (the run went on on B), so A's
/// resume fetches the longer copy, verified, over its own, and finishes the run.
#[test]
fn a_run_handed_back_to_the_first_machine_takes_what_went_on_elsewhere() {
    let sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let (audit_a, audit_b) = (work.path().join("a"), work.path().join("b"));
    let host_dir = audit_host_dir();
    let host = url(&sshd, host_dir.path());
    let log = work.path().join("ran.log");
    let file = book(work.path(), &log);
    let (run, _) = alice_hands_off(&sshd, &file, &audit_a, &host);
    let out = bob_resumes(&sshd, &run, &audit_b, &host, &["--answer", "s2=handoff"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let trail_a = audit_a.join(format!("{run}.jsonl"));
    let before = fs::read(&trail_a).unwrap();
    let there = fs::read(host_dir.path().join(format!("{run}.jsonl"))).unwrap();
    assert!(
        there.len() > before.len() && there.starts_with(&before),
        "B went on there"
    );

    let out = runbook(["resume", &run, "--yes", "--operator", "alice"])
        .args(["--audit-dir", audit_a.to_str().unwrap()])
        .args(["--audit-host", &host])
        .args(sshd.ssh_args())
        .expect_code(0);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    runbook(["audit", "verify"]).arg(&trail_a).expect_code(0);
    let after = events(&trail_a);
    assert_eq!(named(&after, "handed off").len(), 2, "alice's and bob's");
    assert_eq!(named(&after, "run resumed").len(), 2, "bob's and alice's");
    assert_eq!(fs::read_to_string(&log).unwrap(), "first\nsecond\n");
    assert_same_as_audit_host(&audit_a, host_dir.path(), &run);
}

/// The audit host away: a local trail is resumed with a warning (the mirror sends it later);
/// without one, nothing to resume from: exit 1, saying why, nothing kept.
#[test]
fn an_unreachable_audit_host_leaves_the_local_trail_or_refuses_without_one() {
    let work = tempfile::tempdir().unwrap();
    let (audit_a, audit_b) = (work.path().join("a"), work.path().join("b"));
    let log = work.path().join("ran.log");
    let file = book(work.path(), &log);
    let out = runbook(["run", file.to_str().unwrap(), "--yes", "--operator", "alice"])
        .args(["--audit-dir", audit_a.to_str().unwrap()])
        .args(["--answer", "s2=handoff"])
        .expect_code(0);
    assert!(out.stderr.contains("handed off"), "{}", out.stderr);
    let trail = audit_files(&audit_a).pop().unwrap();
    let run = trail.file_stem().unwrap().to_string_lossy().into_owned();
    let away = format!(
        "ssh://nobody@127.0.0.1:{}/srv/runs",
        crate::support::http::closed_port()
    );
    let out = runbook(["resume", &run, "--yes", "--operator", "bob"])
        .args(["--audit-dir", audit_b.to_str().unwrap()])
        .args(["--audit-host", &away])
        .output();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot be fetched from the audit host"),
        "{}",
        out.stderr
    );
    assert_nothing_kept(&audit_b);

    // The local trail is checked as a fetched one would be: a head that is not this one.
    let wrong = "0123456789abcdef0123456789abcdef";
    let out = runbook([
        "resume",
        &run,
        "--yes",
        "--operator",
        "bob",
        "--expect-head",
        wrong,
    ])
    .args(["--audit-dir", audit_a.to_str().unwrap()])
    .expect_code(1);
    assert!(out.stderr.contains("not the expected"), "{}", out.stderr);
    assert_eq!(fs::read_to_string(&log).unwrap(), "first\n", "nothing ran");

    let out = runbook(["resume", &run, "--yes", "--operator", "bob"])
        .args(["--audit-dir", audit_a.to_str().unwrap()])
        .args(["--audit-host", &away])
        .expect_code(0);
    assert!(
        out.stderr.contains("resuming from the local trail"),
        "{}",
        out.stderr
    );
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
    assert_eq!(fs::read_to_string(&log).unwrap(), "first\nsecond\n");
}
