//! `runbook resume` and the run lock (design §6): SIGKILL at every point of a run over a real
//! SSH target, then an unattended resume that finishes it without running a finished step
//! twice; torn lines, hand-offs, tampered trails, unknown steps, and two runs racing for a lock.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cmd::{bin, runbook};
use crate::support::sshd::Sshd;

/// Each step appends its name to a log on the host, so the test can count executions.
const BOOK: &str = r#"
version: 1
id: crashy
title: A run that gets killed
rto: 5m
inputs:
  log: {description: Where each step records that it ran}
targets:
  app: {description: The host}
steps:
  - id: one
    title: One
    run: echo one >> "$log"; sleep 0.4
  - id: two
    title: Two (safe to re-run)
    run: echo two >> "$log"; sleep 0.4
    idempotent: true
  - id: three
    title: Three
    run: echo three >> "$log"; sleep 0.4
  - id: done
    title: Done
    end: resolved
cleanup:
  - id: tidy
    title: Tidy
    run: echo tidy >> "$log"; sleep 0.4
    idempotent: true
"#;

/// The same run with every step safe to re-run, so an unattended resume always proceeds
/// wherever the kill lands (a step cut off mid-flight is re-run; a finished one never is).
fn idempotent_book() -> String {
    BOOK.replace("    idempotent: true\n", "")
        .replace("    run: echo", "    idempotent: true\n    run: echo")
}

struct Setup {
    catalog: tempfile::TempDir,
    audit: tempfile::TempDir,
    /// Holds `log`, beside the audit dir: an audit dir others can reach is refused.
    _scratch: tempfile::TempDir,
    log: PathBuf,
}

fn setup(book: &str) -> Setup {
    let catalog = tempfile::tempdir().unwrap();
    std::fs::write(catalog.path().join("book.yaml"), book).unwrap();
    let audit = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("executions.log");
    // The remote user appends to it: make it writable by anyone.
    std::fs::write(&log, "").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    Setup {
        catalog,
        audit,
        _scratch: scratch,
        log,
    }
}

fn ssh_args(sshd: &Sshd) -> Vec<String> {
    vec![
        "--target".into(),
        format!("app={}", sshd.dest()),
        "--identity".into(),
        sshd.identity.display().to_string(),
        "--known-hosts".into(),
        sshd.known_hosts.display().to_string(),
        "--ssh-config".into(),
        sshd.ssh_config.display().to_string(),
    ]
}

fn trail(dir: &Path) -> Option<PathBuf> {
    crate::support::trail::audit_files(dir).pop()
}

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn spawn_run(s: &Setup, extra: &[String]) -> Child {
    Command::new(bin())
        .arg("--dir")
        .arg(s.catalog.path())
        .arg("--audit-dir")
        .arg(s.audit.path())
        .args(["run", "crashy", "--yes", "--set"])
        .arg(format!("log={}", s.log.display()))
        .args(extra)
        .env("NO_COLOR", "1")
        .env("USER", "alice")
        .env_remove("RUNBOOK_OPERATOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills the run with SIGKILL as soon as the trail holds an event matching `when`.
fn kill_when(s: &Setup, child: &mut Child, when: &dyn Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(path) = trail(s.audit.path()) {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .any(|e| when(&e))
            {
                child.kill().unwrap();
                child.wait().unwrap();
                return;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before the kill point");
        }
        assert!(Instant::now() < deadline, "the kill point never came");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// When to kill: a test on the events written so far.
type KillPoint = Box<dyn Fn(&Value) -> bool>;

fn is(event: &str, step: &str) -> impl Fn(&Value) -> bool {
    let (event, step) = (event.to_string(), step.to_string());
    move |e: &Value| e["event"] == event.as_str() && e["step"] == step.as_str()
}

#[test]
fn sigkill_at_every_point_then_resume_finishes_the_run() {
    let sshd = Sshd::start();
    let points: Vec<(&str, KillPoint)> = vec![
        (
            "before the first step",
            Box::new(|e: &Value| e["event"] == "target connected"),
        ),
        (
            "before a step's start event",
            Box::new(is("step presented", "three")),
        ),
        ("after a step's start event", Box::new(is("step started", "one"))),
        ("during the command", Box::new(is("step started", "two"))),
        (
            "after a step's finish event",
            Box::new(is("step finished", "one")),
        ),
        ("during cleanup", Box::new(is("step started", "tidy"))),
    ];
    for (point, when) in points {
        let s = setup(&idempotent_book());
        let mut child = spawn_run(&s, &ssh_args(&sshd));
        kill_when(&s, &mut child, &*when);
        let path = trail(s.audit.path()).unwrap();
        runbook(["audit", "verify"]).arg(&path).expect_code(4);
        let before: Vec<Value> = events(&path);

        let out = runbook(["--audit-dir"])
            .arg(s.audit.path())
            .arg("--dir")
            .arg(s.catalog.path())
            .args(["resume", path.to_str().unwrap(), "--yes"])
            .args(ssh_args(&sshd))
            .output();
        let after = events(&path);
        assert_eq!(out.code, Some(0), "killed {point}; resume said:\n{}", out.stderr);
        let verified = runbook(["audit", "verify"]).arg(&path).output();
        assert_eq!(verified.code, Some(0), "killed {point}: {}", verified.stdout);

        // No event lost: the resumed trail starts with every event of the killed one.
        assert_eq!(
            &after[..before.len()],
            &before[..],
            "killed {point}: events before the crash changed"
        );
        assert!(
            after.iter().any(|e| e["event"] == "run resumed"),
            "killed {point}"
        );
        // No finished step ran twice: a step that finished before the kill ran exactly once; one
        // cut off mid-flight may have run twice (it is idempotent); every step ran.
        let log = std::fs::read_to_string(&s.log).unwrap();
        for step in ["one", "two", "three", "tidy"] {
            let runs = log.lines().filter(|l| *l == step).count();
            let finished_before = before
                .iter()
                .any(|e| e["event"] == "step finished" && e["step"] == step);
            if finished_before {
                assert_eq!(
                    runs, 1,
                    "killed {point}: `{step}` had finished, yet ran {runs} times"
                );
            } else {
                assert!(
                    (1..=2).contains(&runs),
                    "killed {point}: `{step}` ran {runs} times"
                );
            }
        }
        let finished_ok: Vec<&str> = after
            .iter()
            .filter(|e| e["event"] == "step finished" && e["outcome"] == "ok")
            .map(|e| e["step"].as_str().unwrap())
            .collect();
        for step in ["one", "two", "three", "tidy"] {
            assert_eq!(
                finished_ok.iter().filter(|s| **s == step).count(),
                1,
                "killed {point}: {finished_ok:?}"
            );
        }
        assert_eq!(after.last().unwrap()["outcome"], "resolved", "killed {point}");
    }
}

fn run_local(s: &Setup, extra: &[&str]) -> crate::support::cmd::Outcome {
    runbook(["--dir"])
        .arg(s.catalog.path())
        .arg("--audit-dir")
        .arg(s.audit.path())
        .args(["run", "crashy", "--yes", "--target", "app=local", "--set"])
        .arg(format!("log={}", s.log.display()))
        .args(extra)
        .output()
}

fn killed_during(s: &Setup, step: &str) -> PathBuf {
    let mut child = spawn_run(s, &["--target".to_string(), "app=local".to_string()]);
    kill_when(s, &mut child, &is("step started", step));
    trail(s.audit.path()).unwrap()
}

fn resume(s: &Setup, path: &Path, extra: &[&str]) -> crate::support::cmd::Outcome {
    runbook(["--audit-dir"])
        .arg(s.audit.path())
        .arg("--dir")
        .arg(s.catalog.path())
        .args(["resume", path.to_str().unwrap()])
        .args(extra)
        .output()
}

#[test]
fn a_torn_last_line_is_set_aside_and_recorded() {
    let s = setup(BOOK);
    let path = killed_during(&s, "two");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"v":1,"seq":99,"ts":"2026-"#);
    std::fs::write(&path, &bytes).unwrap();
    runbook(["audit", "verify"]).arg(&path).expect_code(4);
    let out = resume(&s, &path, &["--yes", "--operator", "alice"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    runbook(["audit", "verify"]).arg(&path).expect_code(0);
    let recovery: Vec<Value> = events(&path)
        .into_iter()
        .filter(|e| e["event"] == "recovery")
        .collect();
    assert_eq!(recovery.len(), 1, "the recovery is recorded");
    let saved = s.audit.path().join(recovery[0]["saved_to"].as_str().unwrap());
    assert!(
        std::fs::read(&saved).unwrap().ends_with(b"\"ts\":\"2026-"),
        "the torn bytes are kept at {}",
        saved.display()
    );
}

#[test]
fn a_second_operator_resuming_is_a_recorded_hand_off() {
    let s = setup(BOOK);
    let path = killed_during(&s, "two");
    let out = resume(&s, &path, &["--yes", "--operator", "bob"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("hand-off from alice to bob"),
        "{}",
        out.stderr
    );
    let resumed: Vec<Value> = events(&path)
        .into_iter()
        .filter(|e| e["event"] == "run resumed")
        .collect();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0]["operator"], "bob");
    assert_eq!(resumed[0]["previous_operator"], "alice");
    assert_eq!(resumed[0]["hand_off"], true);
    assert!(resumed[0]["gap_ms"].as_u64().is_some());
    // The same, as the typed trail reads it.
    let typed: Vec<_> = crate::support::trail::records(&path)
        .into_iter()
        .filter_map(|line| match line.record {
            runbook::testing::audit::Record::RunResumed(r) => Some((line.common.operator, r)),
            _ => None,
        })
        .collect();
    assert_eq!(typed.len(), 1);
    assert_eq!(typed[0].0, "bob");
    assert_eq!(
        (typed[0].1.previous_operator.as_str(), typed[0].1.hand_off),
        ("alice", true)
    );
}

#[test]
fn an_unknown_step_that_is_not_idempotent_stops_an_unattended_resume() {
    let s = setup(BOOK);
    let path = killed_during(&s, "three");
    let before = std::fs::read(&path).unwrap();
    let out = resume(&s, &path, &["--yes"]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("step `three` started at"), "{}", out.stderr);
    assert!(
        out.stderr.contains("not marked `idempotent: true`"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing was appended");
}

/// Issue 23 #8: the rule for unknown steps holds for cleanup too. A cleanup step that is not
/// `idempotent: true`, cut off by a crash after its command had run, is not re-run unattended.
#[test]
fn an_unknown_cleanup_step_that_is_not_idempotent_stops_an_unattended_resume() {
    let tidy = "    run: echo tidy >> \"$log\"; sleep 0.4\n";
    let book = BOOK.replace(&format!("{tidy}    idempotent: true\n"), tidy);
    assert_ne!(book, BOOK);
    let s = setup(&book);
    let mut child = spawn_run(&s, &["--target".to_string(), "app=local".to_string()]);
    // Killed once the command has done its work on the host, before its end is recorded.
    crate::support::wait::for_text(&s.log, "tidy\n");
    child.kill().unwrap();
    child.wait().unwrap();
    let path = trail(s.audit.path()).unwrap();
    let before = std::fs::read(&path).unwrap();
    let out = resume(&s, &path, &["--yes"]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("step `tidy` started at"), "{}", out.stderr);
    assert!(
        out.stderr.contains("not marked `idempotent: true`"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing was appended");
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert_eq!(log.lines().filter(|l| *l == "tidy").count(), 1, "{log:?}");
}

#[test]
fn a_tampered_trail_is_not_resumed() {
    let s = setup(BOOK);
    let path = killed_during(&s, "two");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("\"one\"", "\"0ne\"", 1);
    std::fs::write(&path, text).unwrap();
    let out = resume(&s, &path, &["--yes"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("tampered"), "{}", out.stderr);
}

/// Issue 23 #9: a trail mailed without its folder: the chain holds, but `audit verify` calls
/// it tampered (outputs missing), and so does the resume: refused, exit 1, nothing appended.
#[test]
fn a_trail_whose_outputs_are_missing_is_not_resumed() {
    let s = setup(BOOK);
    let path = killed_during(&s, "two");
    let run = path.file_stem().unwrap().to_str().unwrap().to_string();
    std::fs::remove_dir_all(s.audit.path().join(&run)).unwrap();
    let verified = runbook(["audit", "verify"]).arg(&path).output();
    assert_eq!(verified.code, Some(1), "{}", verified.stdout);
    let before = std::fs::read(&path).unwrap();
    let ran = std::fs::read_to_string(&s.log).unwrap();
    let out = resume(&s, &path, &["--yes"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("output of step `one`") && out.stderr.contains("is missing"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("audit verify"), "{}", out.stderr);
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing was appended");
    assert_eq!(std::fs::read_to_string(&s.log).unwrap(), ran, "nothing ran");
}

#[test]
fn a_sealed_run_has_nothing_to_resume() {
    let s = setup(BOOK);
    assert_eq!(run_local(&s, &[]).code, Some(0));
    let path = trail(s.audit.path()).unwrap();
    let out = resume(&s, &path, &["--yes"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("sealed"), "{}", out.stderr);
}

#[test]
fn two_concurrent_runs_exactly_one_proceeds() {
    let s = setup(BOOK);
    let start = |_: u8| {
        Command::new(bin())
            .arg("--dir")
            .arg(s.catalog.path())
            .arg("--audit-dir")
            .arg(s.audit.path())
            .args(["run", "crashy", "--yes", "--target", "app=local", "--set"])
            .arg(format!("log={}", s.log.display()))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(1), start(2));
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let mut codes: Vec<i32> = outs.iter().map(|o| o.status.code().unwrap()).collect();
    codes.sort();
    assert_eq!(codes, [0, 2], "{outs:?}");
    let refused = outs.iter().find(|o| o.status.code() == Some(2)).unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("locked by") && stderr.contains("since") && stderr.contains("run "),
        "{stderr}"
    );
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert_eq!(
        log.lines().filter(|l| *l == "one").count(),
        1,
        "only one run executed: {log:?}"
    );
}

#[test]
fn a_live_lock_blocks_until_broken_and_the_break_is_recorded() {
    let s = setup(BOOK);
    // Hold the lock as a live process (this test) would.
    let targets: indexmap::IndexMap<String, String> = [("app".to_string(), "local".to_string())].into();
    let lock = runbook::testing::lock::lock_path(s.audit.path(), "crashy", &targets);
    let holder = runbook::testing::lock::Holder::me("20261122T000000Z-crashy-beef", "carol");
    let (held, _) = runbook::testing::lock::acquire(&lock, holder, false).unwrap();
    let out = run_local(&s, &[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("locked by carol"), "{}", out.stderr);
    assert!(
        out.stderr.contains("20261122T000000Z-crashy-beef"),
        "{}",
        out.stderr
    );
    let out = run_local(&s, &["--break-lock"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let broken: Vec<Value> = events(&trail(s.audit.path()).unwrap())
        .into_iter()
        .filter(|e| e["event"] == "lock broken")
        .collect();
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0]["previous"]["operator"], "carol");
    drop(held);
}

#[test]
fn resume_refuses_an_answer_naming_no_step() {
    let s = setup(BOOK);
    let path = killed_during(&s, "two");
    let before = std::fs::read(&path).unwrap();
    let out = resume(&s, &path, &["--yes", "--answer", "tidi=done"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "runbook: error: --answer `tidi=done`: `crashy` has no step `tidi` (did you mean `tidy`?): nothing was run.\n  \
         Name a step id of `crashy`, or CALL-STEP/STEP for a step of a runbook it calls (`runbook show crashy` lists them)\n"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "the trail is untouched");
}

/// Issue 25 #8: a colleague resuming a trail kept in the operator's private audit dir (0700,
/// the default) could not read it and was told "no audit file": the trail is there, the
/// permission is missing. Run as a second OS account, by path and by run id.
#[test]
fn a_trail_the_colleague_cannot_read_is_permission_denied_not_missing() {
    use crate::support::sshd::{USER, ensure_prerequisites};
    ensure_prerequisites();
    let s = setup(BOOK);
    let path = killed_during(&s, "two");
    let run = path.file_stem().unwrap().to_str().unwrap().to_string();
    let before = std::fs::read(&path).unwrap();
    // As runbook creates an audit dir: only its owner may enter it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.audit.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let as_colleague = |args: &[&str]| {
        let out = Command::new("runuser")
            .args(["-u", USER, "--"])
            .arg(bin())
            .args(["--audit-dir"])
            .arg(s.audit.path())
            .args(["resume"])
            .args(args)
            .args(["--yes"])
            .env("NO_COLOR", "1")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("RUNBOOK_SIGNING_KEY")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dir = s.audit.path().display().to_string();
    let cases = [
        (path.to_str().unwrap(), path.display().to_string()),
        (run.as_str(), dir.clone()),
        ("last", dir.clone()),
    ];
    for (given, names) in cases {
        let (code, stderr) = as_colleague(&[given]);
        assert_eq!(code, Some(2), "{given}: {stderr}");
        assert!(stderr.contains("permission denied"), "{given}: {stderr}");
        assert!(stderr.contains(&names), "{given}: names {names}: {stderr}");
        assert!(
            !stderr.contains("no audit file") && !stderr.contains("no run `"),
            "{given}: {stderr}"
        );
        // Whose it is, and what to do about it.
        assert!(stderr.contains("belongs to root (uid 0)"), "{given}: {stderr}");
        assert!(stderr.contains("sudo -u root runbook"), "{given}: {stderr}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing was appended");
}
