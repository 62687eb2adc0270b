//! The record against a forger and the verdict against shortcuts (design §12), with real
//! parts: an `ssh-agent` started here with a throwaway key signs the trail; `ssh-keygen -Y
//! verify`, which nobody here wrote, checks it; forgers rewrite the chain the documented way.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::agent::Agent;
use crate::support::cmd::{root, runbook};
use crate::support::sshd::keygen;
use crate::support::trail::audit_files;
use crate::support::trail::events;

fn drill_yaml() -> PathBuf {
    root().join("tests/data/trust/drill.yaml")
}

/// `runbook drill <trust drill> --yes --answer check=<answer>` with the agent's socket.
fn drill(audit: &Path, agent: Option<&Agent>, check: &str, code: i32) -> (PathBuf, String) {
    let before = audit_files(audit);
    let mut run = runbook(["drill", drill_yaml().to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit)
        .args(["--answer", &format!("check={check}")]);
    if let Some(agent) = agent {
        run = run.env("SSH_AUTH_SOCK", &agent.socket);
    }
    let out = run.expect_code(code);
    let file = audit_files(audit)
        .into_iter()
        .find(|f| !before.contains(f))
        .expect("the drill wrote a trail");
    (file, out.stderr)
}

fn verify(file: &Path, extra: &[&str], code: i32) -> String {
    runbook(["audit", "verify", file.to_str().unwrap()])
        .args(extra)
        .expect_code(code)
        .stdout
}

/// Rewrites a trail the way its documentation says it is made: every event re-hashed onto
/// the previous one. `edit` changes an event; `sign` may put a signature on the seal.
fn forge(file: &Path, edit: impl Fn(&mut serde_json::Map<String, Value>), keep_signatures: bool) {
    let mut prev = runbook::testing::audit::GENESIS.to_string();
    let mut out = String::new();
    for mut event in events(file) {
        let obj = event.as_object_mut().unwrap();
        edit(obj);
        obj.remove("hash");
        let signature = obj.remove("signature");
        if obj["event"] == "run finished" {
            obj.insert("head".into(), prev.clone().into());
        }
        obj.remove("prev");
        obj.insert("prev".into(), prev.clone().into());
        let body = serde_json::to_string(&event).unwrap();
        let hash = runbook::testing::audit::event_hash(&prev, body.as_bytes());
        out.push_str(&body[..body.len() - 1]);
        if let (true, Some(sig)) = (keep_signatures, signature) {
            out.push_str(&format!(",\"signature\":{sig}"));
        }
        out.push_str(&format!(",\"hash\":\"{hash}\"}}\n"));
        prev = hash;
    }
    std::fs::write(file, out).unwrap();
}

/// The seal's signature and hash, as files `ssh-keygen -Y verify` reads.
fn seal_for_ssh_keygen(file: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let seal = events(file).pop().unwrap();
    let sig = dir.join("seal.sig");
    std::fs::write(
        &sig,
        format!("{}\n", seal["signature"]["armored"].as_str().unwrap()),
    )
    .unwrap();
    let hash = dir.join("seal.hash");
    std::fs::write(&hash, seal["hash"].as_str().unwrap()).unwrap();
    (sig, hash)
}

#[test]
fn a_signed_drill_is_checked_by_ssh_keygen_alone_and_by_verify_with_signers() {
    let agent = Agent::start();
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (file, stderr) = drill(audit.path(), Some(&agent), "done", 0);
    let seal = events(&file).pop().unwrap();
    let head = seal["hash"].as_str().unwrap().to_string();
    // The full head, and the key, are printed at the end of the run.
    assert!(
        stderr.contains(&format!("head: {head} (signed by SHA256:")),
        "{stderr}"
    );
    assert_eq!(seal["signature"]["format"], "sshsig");
    assert_eq!(seal["signature"]["namespace"], "runbook-audit");

    let allowed = agent.allowed_signers(scratch.path(), "alice");
    let (sig, hash) = seal_for_ssh_keygen(&file, scratch.path());
    let out = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&allowed)
        .args(["-I", "alice", "-n", "runbook-audit", "-s"])
        .arg(&sig)
        .stdin(std::fs::File::open(&hash).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen -Y verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Good \"runbook-audit\" signature for alice"));

    let report = verify(&file, &["--signers", allowed.to_str().unwrap()], 0);
    assert!(report.contains("signed by alice (SHA256:"), "{report}");
    assert!(report.contains(&format!("  head {head}\n")), "{report}");
    verify(&file, &["--expect-head", &head[..32]], 0);
    // Every review carries the full head and says who signed.
    for format in ["text", "md", "json", "html"] {
        let review = runbook(["review", file.to_str().unwrap(), "--format", format])
            .expect_code(0)
            .stdout;
        assert!(review.contains(&head), "{format}: {review}");
        assert!(review.contains("signed by SHA256:"), "{format}: {review}");
    }
}

#[test]
fn forgers_who_recompute_the_chain_are_caught_by_the_signature_signers_and_expect_head() {
    let agent = Agent::start();
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let allowed = agent.allowed_signers(scratch.path(), "alice");
    let signers = ["--signers", allowed.to_str().unwrap()];
    // A drill that FAILed: `check` was skipped.
    let (file, _) = drill(audit.path(), Some(&agent), "skip", 3);
    let original = std::fs::read(&file).unwrap();
    let head = events(&file).pop().unwrap()["hash"].as_str().unwrap().to_string();
    let pass = |obj: &mut serde_json::Map<String, Value>| {
        if obj["event"] == "run finished" {
            obj.insert(
                "verdict".into(),
                serde_json::json!({"pass": true, "reason": "resolved in 1.0s"}),
            );
            obj.insert("deviations".into(), serde_json::json!([]));
        }
    };

    // 1. The seal's verdict edited and the whole chain re-hashed, the signature kept.
    forge(&file, pass, true);
    let report = verify(&file, &[], 1);
    assert!(
        report.contains("intact and sealed"),
        "the chain itself holds: {report}"
    );
    assert!(
        report.contains("does not match the event's hash"),
        "but the signature is over the old hash: {report}"
    );

    // 2. The same, signatures dropped: intact, UNSIGNED; refused by --signers and --expect-head.
    std::fs::write(&file, &original).unwrap();
    forge(&file, pass, false);
    let report = verify(&file, &[], 0);
    assert!(report.contains("signatures: UNSIGNED"), "{report}");
    let report = verify(&file, &signers, 1);
    assert!(report.contains("the trail is unsigned"), "{report}");
    let report = verify(&file, &["--expect-head", &head], 1);
    assert!(report.contains("NOT the expected head"), "{report}");

    // 3. The forger signs the forged seal with a key of their own: a good signature, by a key
    // that is not in allowed_signers.
    let forger = keygen(scratch.path(), "forger");
    let seal = events(&file).pop().unwrap();
    let mut child = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "runbook-audit", "-f"])
        .arg(&forger)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(seal["hash"].as_str().unwrap().as_bytes())
        .unwrap();
    let armored = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    let fingerprint = String::from_utf8(
        Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&forger)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .split_whitespace()
    .nth(1)
    .unwrap()
    .to_string();
    let text = std::fs::read_to_string(&file).unwrap();
    let last = text.lines().last().unwrap();
    let signature = serde_json::json!({"format": "sshsig", "namespace": "runbook-audit", "key": fingerprint, "armored": armored.trim()});
    let hash_member = format!(",\"hash\":\"{}\"}}", seal["hash"].as_str().unwrap());
    let signed = last.replace(&hash_member, &format!(",\"signature\":{signature}{hash_member}"));
    std::fs::write(&file, text.replace(last, &signed)).unwrap();
    let report = verify(&file, &[], 0);
    assert!(report.contains(&format!("signed by {fingerprint}")), "{report}");
    let report = verify(&file, &signers, 1);
    assert!(
        report.contains(&format!("key {fingerprint} is not in")),
        "{report}"
    );
    verify(&file, &["--expect-head", &head], 1);

    // The untouched trail passes all three.
    std::fs::write(&file, &original).unwrap();
    verify(&file, &signers, 0);
    verify(&file, &["--expect-head", &head], 0);
}

#[test]
fn output_files_changed_removed_or_added_are_tampering_naming_the_step() {
    let audit = tempfile::tempdir().unwrap();
    let (file, _) = drill(audit.path(), None, "done", 0);
    let run = file.file_stem().unwrap().to_str().unwrap().to_string();
    let out = audit.path().join(&run).join("work-1.out");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "working\n");
    let report = verify(&file, &[], 0);
    assert!(report.contains("outputs: 2 files checked"), "{report}");

    std::fs::write(&out, "WORKING\n").unwrap();
    let report = verify(&file, &[], 1);
    assert!(
        report.contains(&format!("output of step `work` `{run}/work-1.out` has SHA-256")),
        "{report}"
    );
    std::fs::remove_file(&out).unwrap();
    let report = verify(&file, &[], 1);
    assert!(
        report.contains("`work` ") && report.contains("is missing"),
        "{report}"
    );
    std::fs::write(&out, "working\n").unwrap();
    verify(&file, &[], 0);
    std::fs::write(audit.path().join(&run).join("extra-1.out"), "planted\n").unwrap();
    let report = verify(&file, &[], 1);
    assert!(
        report.contains(&format!("`{run}/extra-1.out` is named by no event")),
        "{report}"
    );
}

#[test]
fn a_seal_missing_only_its_newline_is_still_sealed_and_never_resumed() {
    let audit = tempfile::tempdir().unwrap();
    let (file, _) = drill(audit.path(), None, "done", 0);
    let status = Command::new("truncate")
        .args(["-s", "-1"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    let cut = std::fs::read(&file).unwrap();
    assert_ne!(cut.last(), Some(&b'\n'));
    let report = verify(&file, &[], 0);
    assert!(
        report.contains("intact and sealed (its last newline is missing)"),
        "{report}"
    );
    let out = runbook(["resume", file.to_str().unwrap(), "--yes"])
        .arg("--audit-dir")
        .arg(audit.path())
        .expect_code(2);
    assert!(out.stderr.contains("is sealed"), "{}", out.stderr);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        cut,
        "neither verify nor resume changed it"
    );
}

#[test]
fn a_drill_with_a_skipped_step_fails_with_exit_3_and_names_it_everywhere() {
    let audit = tempfile::tempdir().unwrap();
    let (file, stderr) = drill(audit.path(), None, "skip", 3);
    assert!(
        stderr.contains("drill verdict: FAIL — resolved in")
            && stderr.contains("but not as written: `check` skipped"),
        "{stderr}"
    );
    assert!(
        stderr.contains("deviation: `check` skipped (reported skipped) — fails a drill"),
        "{stderr}"
    );
    let seal = events(&file).pop().unwrap();
    assert_eq!(seal["verdict"]["pass"], false);
    assert_eq!(seal["deviations"][0]["step"], "check");
    assert_eq!(seal["deviations"][0]["kind"], "skipped");

    let history = runbook(["history", "--audit-dir", audit.path().to_str().unwrap()])
        .expect_code(0)
        .stdout;
    assert!(
        history.contains(" FAIL ") && history.contains("check skipped"),
        "{history}"
    );
    for format in ["text", "md", "json", "html"] {
        let review = runbook(["review", file.to_str().unwrap(), "--format", format])
            .expect_code(0)
            .stdout;
        assert!(review.contains("FAIL"), "{format}: {review}");
        assert!(
            review.contains("`check` skipped"),
            "{format}: the verdict names it: {review}"
        );
        let listed = match format {
            "json" => "\"kind\": \"skipped\"",
            _ => "deviation: skipped",
        };
        assert!(review.contains(listed), "{format}: {review}");
    }
    // The same drill, done by the book, passes.
    drill(audit.path(), None, "done", 0);
}

#[test]
fn who_ran_it_is_what_the_machine_says() {
    let audit = tempfile::tempdir().unwrap();
    let out = runbook([
        "drill",
        drill_yaml().to_str().unwrap(),
        "--yes",
        "--answer",
        "check=done",
    ])
    .arg("--audit-dir")
    .arg(audit.path())
    .env_remove("USER")
    .expect_code(0);
    let file = audit_files(audit.path()).pop().unwrap();
    let started = &events(&file)[0];
    let id = |flag: &str| {
        String::from_utf8(Command::new("id").arg(flag).output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(started["account"]["uid"].to_string(), id("-u"));
    assert_eq!(started["account"]["login"], id("-un").as_str());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(started["machine"], host.trim());
    // Without $USER the declared operator is the login name, never "unknown".
    assert_eq!(started["operator"], id("-un").as_str(), "{}", out.stderr);
}

/// The output of a step a crash cut off belongs to an incomplete trail; resume records it, and
/// from then on it is checked like any other.
#[test]
fn a_cut_off_output_is_incomplete_then_recorded_by_resume() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let flag = dir.path().join("printed");
    let book = dir.path().join("crash.yaml");
    std::fs::write(
        &book,
        format!(
            "version: 1\nid: crash\ntitle: Crash\nrto: 5m\nsteps:\n  - id: slow\n    title: Slow\n    idempotent: true\n    run: echo partial; if [ ! -e {flag} ]; then touch {flag}; sleep 30; fi\n  - id: done\n    title: Done\n    end: resolved\n",
            flag = flag.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(crate::support::cmd::bin())
        .args(["run", "--yes", "--audit-dir"])
        .arg(audit.path())
        .arg(&book)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the command's own effect, not just its start event.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !flag.exists() {
        assert!(Instant::now() < deadline, "the step never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    let file = audit_files(audit.path()).pop().unwrap();
    let report = verify(&file, &[], 4);
    assert!(
        report.contains("slow-1.out`: output of a step cut off by the crash"),
        "{report}"
    );

    // resume --yes re-runs the idempotent step, and records the cut-off output first.
    runbook(["resume", file.to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit.path())
        .env("SHELL", "/bin/sh")
        .expect_code(0);
    let recovered: Vec<Value> = events(&file)
        .into_iter()
        .filter(|e| e["event"] == "output recovered")
        .collect();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(recovered[0]["step"], "slow");
    assert_eq!(recovered[0]["output"]["size"], "partial\n".len());
    let report = verify(&file, &[], 0);
    assert!(report.contains("outputs: 2 files checked"), "{report}");
    let run = file.file_stem().unwrap().to_str().unwrap();
    std::fs::write(audit.path().join(run).join("slow-1.out"), "PARTIAL\n").unwrap();
    let report = verify(&file, &[], 1);
    assert!(report.contains("output of step `slow`"), "{report}");
}

/// Issue 24 #5: a run's file replaced by another run's signed trail (an old PASS passed off as
/// the drill that failed) is tampered with, by path, by run id and with `--signers`: every line
/// must name the run the file is named after; its review never calls it the other run.
#[test]
fn another_runs_signed_trail_does_not_pass_under_this_runs_name() {
    let agent = Agent::start();
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let allowed = agent.allowed_signers(scratch.path(), "alice");
    let (failed, _) = drill(audit.path(), Some(&agent), "skip", 3);
    let (passed, _) = drill(audit.path(), Some(&agent), "done", 0);
    let failed_run = failed.file_stem().unwrap().to_str().unwrap().to_string();
    let passed_run = passed.file_stem().unwrap().to_str().unwrap().to_string();
    std::fs::copy(&passed, &failed).unwrap();

    for given in [failed.to_str().unwrap(), failed_run.as_str()] {
        for extra in [&[][..], &["--signers", allowed.to_str().unwrap()][..]] {
            let report = runbook([
                "--audit-dir",
                audit.path().to_str().unwrap(),
                "audit",
                "verify",
                given,
            ])
            .args(extra)
            .expect_code(1)
            .stdout;
            assert!(
                report.contains("TAMPERED at seq 0 (line 1)")
                    && report.contains(&format!("the event is of run `{passed_run}`"))
                    && report.contains(&format!("`{failed_run}.jsonl`")),
                "{given} {extra:?}: {report}"
            );
        }
    }
    let review = runbook([
        "--audit-dir",
        audit.path().to_str().unwrap(),
        "review",
        &failed_run,
    ])
    .output();
    assert_eq!(review.code, Some(1), "{}{}", review.stdout, review.stderr);
    assert!(
        !review.stdout.contains(&format!("Review of run {passed_run}")),
        "{}",
        review.stdout
    );
    // The other run's own file still verifies.
    verify(&passed, &["--signers", allowed.to_str().unwrap()], 0);
}

/// A copy of `file`'s trail re-chained after `edit`, unsigned (what anyone can write), with
/// the output of step `work` pointed at `path` (size and SHA-256 of `target`), its own file
/// removed from the run's folder.
fn point_work_output_at(file: &Path, path: &str, target: &Path) {
    let bytes = std::fs::read(target).unwrap();
    let sha = runbook::testing::audit::sha256_hex(&bytes);
    let path = path.to_string();
    forge(
        file,
        move |obj| {
            obj.remove("signature");
            if obj["event"] == "step finished" && obj["step"] == "work" {
                obj.insert(
                    "output".into(),
                    serde_json::json!({"path": path, "size": bytes.len(), "sha256": sha}),
                );
            }
        },
        false,
    );
}

/// Issue 24 #6: an output path out of the run's folder (absolute, or `..`) is never read: the
/// record could name any file of the verifier's machine and make `verify` a hash oracle.
#[test]
fn output_paths_out_of_the_runs_folder_are_tampering_and_never_read() {
    for escape in ["absolute", "dotdot"] {
        let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (file, _) = drill(audit.path(), None, "done", 0);
        let run = file.file_stem().unwrap().to_str().unwrap().to_string();
        let secret = scratch.path().join("secret.txt");
        std::fs::write(&secret, "hunter2\n").unwrap();
        let path = match escape {
            "absolute" => secret.display().to_string(),
            _ => format!(
                "{run}/../../{}/secret.txt",
                scratch.path().file_name().unwrap().to_str().unwrap()
            ),
        };
        // The `..` form must really reach the file from the audit dir.
        if escape == "dotdot" {
            std::fs::create_dir_all(audit.path().join(&run)).unwrap();
            assert_eq!(std::fs::read(audit.path().join(&path)).unwrap(), b"hunter2\n");
        }
        std::fs::remove_file(audit.path().join(&run).join("work-1.out")).unwrap();
        point_work_output_at(&file, &path, &secret);
        let report = verify(&file, &[], 1);
        assert!(
            report.contains(&format!(
                "output of step `work` `{path}` is not a plain file name inside `{run}/`"
            )),
            "{escape}: {report}"
        );
    }
}

/// Issue 24 #8: an output replaced by a FIFO hangs nobody: `audit verify` and `evidence` say
/// it is not a regular file and end.
#[test]
fn an_output_replaced_by_a_fifo_is_not_read_and_hangs_nothing() {
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (file, _) = drill(audit.path(), None, "done", 0);
    let run = file.file_stem().unwrap().to_str().unwrap().to_string();
    let out = audit.path().join(&run).join("work-1.out");
    std::fs::remove_file(&out).unwrap();
    let made = Command::new("mkfifo").arg(&out).status().unwrap();
    assert!(made.success());
    let page = scratch.path().join("evidence.html");
    let dir = audit.path().to_str().unwrap();
    for args in [
        vec!["--audit-dir", dir, "audit", "verify", run.as_str()],
        vec![
            "--audit-dir",
            dir,
            "evidence",
            run.as_str(),
            "-o",
            page.to_str().unwrap(),
        ],
    ] {
        let mut child = Command::new(crate::support::cmd::bin())
            .args(&args)
            .env("NO_COLOR", "1")
            .env_remove("RUNBOOK_PATH")
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let code = crate::support::wait::exit(&mut child, Duration::from_secs(30));
        let mut said = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut said).unwrap();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut said).unwrap();
        assert_ne!(code, Some(0), "{args:?}: {said}");
        assert!(said.contains("not a regular file"), "{args:?}: {said}");
    }
}

/// Issue 24 #7: `review -o` and `evidence -o` write 0600 whatever the umask (the evidence page
/// embeds the whole trail and runbook), also over a file that was there, wider, before.
#[test]
fn review_and_evidence_pages_are_written_0600_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (file, _) = drill(audit.path(), None, "done", 0);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let review = scratch.path().join("review.html");
    let evidence = scratch.path().join("evidence.html");
    let existing = scratch.path().join("existing.md");
    std::fs::write(&existing, "old\n").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o666)).unwrap();
    let trail = file.to_str().unwrap();
    for (args, page) in [
        (vec!["review", trail, "-o", review.to_str().unwrap()], &review),
        (
            vec!["evidence", trail, "-o", evidence.to_str().unwrap()],
            &evidence,
        ),
        (vec!["review", trail, "-o", existing.to_str().unwrap()], &existing),
    ] {
        // The umask of a careless shell.
        let out = Command::new("sh")
            .args(["-c", "umask 000; exec \"$0\" \"$@\""])
            .arg(crate::support::cmd::bin())
            .args(&args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert_eq!(mode(page), 0o600, "{args:?}");
    }
    assert!(std::fs::read_to_string(&existing).unwrap().starts_with("# "));
}
