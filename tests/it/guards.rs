//! Guards (design §20): a check polled in the background on its own session; a guard that
//! starts failing mid-run diverts an unattended run to its rollback, the running command
//! stopped on the host; a guard that cannot reach its host counts as failing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::cmd::{Run, runbook};
use crate::support::sshd::Sshd;
use crate::support::wait;

/// A deploy step that runs long (`sleep_for`, named for pgrep), a guard on `guard_role`
/// checking `check`, and a rollback.
fn guarded(sleep_for: &str, guard_role: &str, check: &str) -> String {
    format!(
        "version: 1
id: guarded
title: Guarded deploy
rto: 5m
inputs:
  flag: {{description: while it exists the service is unhealthy, default: /nonexistent}}
targets:
  app: {{description: where the deploy runs}}
  mon: {{description: where health is checked from, default: local}}
guards:
  - {{id: api-health, target: {guard_role}, run: '{check}', every: 200ms, failures: 2, goto: rollback}}
steps:
  - id: deploy
    title: Deploy
    target: app
    run: echo deploying; {sleep_for}
    next: done
  - id: done
    title: Done
    end: resolved
  - id: rollback
    title: Roll back
    target: app
    run: echo rolled back
    next: rolled-back
  - id: rolled-back
    title: Rolled back
    end: escalated
"
    )
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(book: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("catalog")).unwrap();
        std::fs::write(dir.path().join("catalog/guarded.yaml"), book).unwrap();
        std::fs::write(
            dir.path().join("inventory.yaml"),
            "unattended:\n  runbooks: [guarded]\n",
        )
        .unwrap();
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The flag the guard's check looks for: where the host's account can see it.
    fn flag(&self) -> PathBuf {
        let name = self.dir.path().file_name().unwrap().to_string_lossy().to_string();
        PathBuf::from(format!("/tmp/rb-guard-flag{name}"))
    }

    /// `runbook run guarded --unattended` with `app` on `sshd`, its host keys in `known_hosts`.
    fn run(&self, sshd: &Sshd, known_hosts: &Path) -> Run {
        runbook(["run", "guarded", "--unattended", "--target"])
            .arg(format!("app={}", sshd.dest()))
            .arg("--identity")
            .arg(&sshd.identity)
            .arg("--known-hosts")
            .arg(known_hosts)
            .arg("--set")
            .arg(format!("flag={}", self.flag().display()))
            .env("RUNBOOK_PATH", self.path("catalog"))
            .env("RUNBOOK_AUDIT_DIR", self.path("audit"))
            .env("RUNBOOK_INVENTORY", self.path("inventory.yaml"))
    }
}

fn pgrep(pattern: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn of(events: &[Value], name: &str) -> Vec<Value> {
    events.iter().filter(|e| e["event"] == name).cloned().collect()
}

/// Waits until the deploy's command runs on the host.
fn deploy_running(audit: &Path, sleep: &str) {
    crate::support::trail::wait_for_started(audit);
    wait::until(
        Duration::from_secs(20),
        "the deploy's command on the host",
        || pgrep(sleep),
    );
}

#[test]
fn a_guard_that_starts_failing_diverts_an_unattended_run_to_its_rollback() {
    let sshd = Sshd::start();
    let sleep = format!("sleep 60.{}", std::process::id());
    let setup = Setup::new(&guarded(&sleep, "app", "test ! -e \"$flag\""));
    let out = std::thread::scope(|scope| {
        let run = scope.spawn(|| setup.run(&sshd, &sshd.known_hosts).output());
        deploy_running(&setup.path("audit"), &sleep);
        // Healthy so far: the guard polled and said nothing.
        let events = crate::support::trail::last_run_events(&setup.path("audit"));
        assert!(of(&events, "guard failing").is_empty(), "{events:?}");
        std::fs::write(setup.flag(), "").unwrap();
        run.join().unwrap()
    });
    assert_eq!(
        out.code,
        Some(3),
        "the run ends at the rollback's end: {}",
        out.stderr
    );
    assert!(out.stderr.contains("GUARD TRIPPED:"), "{}", out.stderr);
    assert!(out.stderr.contains("divert to `rollback`"), "{}", out.stderr);
    // The deploy's command is gone from the host, stopped as by a timeout.
    wait::until(Duration::from_secs(10), "the deploy's command gone", || {
        !pgrep(&sleep)
    });
    let events = crate::support::trail::last_run_events(&setup.path("audit"));
    let failing = of(&events, "guard failing");
    let tripped = of(&events, "guard tripped");
    assert_eq!(failing.len(), 1, "one event per change, not per poll: {events:?}");
    assert_eq!(tripped.len(), 1, "{events:?}");
    assert_eq!(tripped[0]["guard"], "api-health");
    assert_eq!(tripped[0]["failures"], 2);
    assert_eq!(tripped[0]["goto"], "rollback");
    assert_eq!(tripped[0]["reason"], "exit 1", "{}", tripped[0]);
    let deploy = of(&events, "step finished")
        .into_iter()
        .find(|e| e["step"] == "deploy")
        .expect("the deploy is recorded as finished");
    assert_eq!(deploy["outcome"], "timeout", "{deploy}");
    assert!(
        deploy["reason"]
            .as_str()
            .unwrap()
            .contains("guard `api-health` tripped"),
        "{deploy}"
    );
    let rollback = of(&events, "step finished")
        .into_iter()
        .find(|e| e["step"] == "rollback")
        .expect("the rollback ran");
    assert_eq!(rollback["outcome"], "ok");
    let _ = std::fs::remove_file(setup.flag());
    // Nothing went on after the trip: `done` was never presented.
    assert!(
        !of(&events, "step presented").iter().any(|e| e["step"] == "done"),
        "{events:?}"
    );
    // The review's timeline shows the guard's changes.
    let file = crate::support::trail::audit_files(&setup.path("audit"))
        .pop()
        .unwrap();
    let review = runbook(["review"]).arg(&file).expect_code(0);
    assert!(
        review.stdout.contains("guard api-health failing"),
        "{}",
        review.stdout
    );
    let tripped_line = format!(
        "guard api-health tripped on {} (2 failures in a row): exit 1",
        sshd.dest()
    );
    assert!(review.stdout.contains(&tripped_line), "{}", review.stdout);
    // The trail names where the check ran, as every event names its host.
    assert_eq!(tripped[0]["host"], sshd.dest().as_str());
    runbook(["audit", "verify"]).arg(&file).expect_code(0);
}

#[test]
fn a_guard_that_cannot_reach_its_host_counts_as_failing() {
    let app = Sshd::start();
    let mut mon = Sshd::start();
    let sleep = format!("sleep 61.{}", std::process::id());
    let setup = Setup::new(&guarded(&sleep, "mon", "true"));
    // One client key and one known_hosts for both servers.
    let key = std::fs::read_to_string(app.identity.with_extension("pub")).unwrap();
    let authorized = mon.identity.with_file_name("authorized_keys");
    let mut both = std::fs::read_to_string(&authorized).unwrap();
    both.push_str(&key);
    std::fs::write(&authorized, both).unwrap();
    let known = setup.path("known_hosts");
    let hosts = std::fs::read_to_string(&app.known_hosts).unwrap()
        + &std::fs::read_to_string(&mon.known_hosts).unwrap();
    std::fs::write(&known, hosts).unwrap();
    let mon_dest = format!("mon={}", mon.dest());
    let out = std::thread::scope(|scope| {
        let run = scope.spawn(|| setup.run(&app, &known).arg("--target").arg(&mon_dest).output());
        deploy_running(&setup.path("audit"), &sleep);
        // The guard's host goes away: its check cannot run any more.
        mon.stop();
        run.join().unwrap()
    });
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    wait::until(Duration::from_secs(10), "the deploy's command gone", || {
        !pgrep(&sleep)
    });
    let events = crate::support::trail::last_run_events(&setup.path("audit"));
    let tripped = of(&events, "guard tripped");
    assert_eq!(tripped.len(), 1, "{events:?}");
    let reason = tripped[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("connection lost") || reason.contains("cannot connect"),
        "{reason}"
    );
    assert!(
        of(&events, "step finished")
            .iter()
            .any(|e| e["step"] == "rollback" && e["outcome"] == "ok"),
        "{events:?}"
    );
}

#[test]
fn validate_checks_a_guards_goto_and_target() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    let text = guarded("sleep 1", "app", "true")
        .replace("target: app, run", "target: ap, run")
        .replace("goto: rollback}", "goto: rollbak}");
    std::fs::write(&file, text).unwrap();
    let out = runbook(["validate"]).arg(&file).output();
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("guard `api-health` checks unknown target `ap`"),
        "{text}"
    );
    assert!(
        text.contains("guard `api-health` goes to unknown step `rollbak`"),
        "{text}"
    );
    assert!(text.contains("bad.yaml:11:"), "located: {text}");
}

/// A local deploy held until `$gate` exists, a guard that fails while `$flag` exists, and a
/// rollback: what the interactive test walks in a pty.
const HELD_DEPLOY: &str = r#"version: 1
id: guarded
title: Guarded deploy
rto: 5m
inputs:
  flag: {description: while it exists the service is unhealthy, default: /nonexistent}
  gate: {description: the deploy ends once it exists, default: /nonexistent}
targets:
  app: {default: local}
guards:
  - {id: api-health, target: app, run: 'test ! -e "$flag"', every: 200ms, failures: 2, goto: rollback}
steps:
  - id: deploy
    title: Deploy
    run: echo deploying; while [ ! -e "$gate" ]; do sleep 0.05; done; echo deployed
  - id: verify
    title: Verify
    run: echo verified
  - id: done
    title: Done
    end: resolved
  - id: rollback
    title: Roll back
    run: echo rolled back
    next: rolled-back
  - id: rolled-back
    title: Rolled back
    end: escalated
"#;

/// Interactively (a real terminal), a guard that trips while a step runs is shown at once as a
/// loud line naming it; the step is not cut, and the next step boundary asks, "Divert to
/// `rollback`" preselected: Enter takes it, and the trail records the answer.
#[test]
fn interactively_a_tripped_guard_offers_the_divert_preselected() {
    use crate::support::pty::{keys, spawn, wait_exit_within};
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit");
    let book = dir.path().join("guarded.yaml");
    std::fs::write(&book, HELD_DEPLOY).unwrap();
    let (flag, gate) = (dir.path().join("unhealthy"), dir.path().join("gate"));
    let mut s = spawn(
        &[
            "run",
            book.to_str().unwrap(),
            "--set",
            &format!("flag={}", flag.display()),
            "--set",
            &format!("gate={}", gate.display()),
        ],
        &audit,
    );
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r"); // Run it
    s.exp_string("deploying").unwrap();
    // The service goes bad while the deploy runs: the trip is shown while the command runs.
    std::fs::write(&flag, "").unwrap();
    s.exp_string("GUARD TRIPPED:").unwrap();
    s.exp_string("`api-health` failed 2 times in a row on local")
        .unwrap();
    s.exp_string("divert to `rollback`").unwrap();
    // It recovers: said, and the trip still stands (a flap never undoes a divert).
    std::fs::remove_file(&flag).unwrap();
    s.exp_string("guard `api-health` recovered on local").unwrap();
    // The deploy is not cut: it ends when it ends, then the boundary asks.
    std::fs::write(&gate, "").unwrap();
    s.exp_string("deployed").unwrap();
    s.exp_string("Go on with `verify`").unwrap();
    let screen = s.screen().contents();
    let divert = screen
        .lines()
        .find(|l| l.contains("Divert to `rollback`"))
        .unwrap_or_else(|| panic!("no divert offered:\n{screen}"));
    let go_on = screen
        .lines()
        .find(|l| l.contains("Go on with `verify`"))
        .unwrap();
    assert!(
        divert.trim_start().starts_with('❯') && !go_on.trim_start().starts_with('❯'),
        "the divert is preselected:\n{screen}"
    );
    keys(&mut s, "\r"); // Enter: the preselected divert
    s.exp_string("Roll back").unwrap();
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("rolled back").unwrap();
    assert_eq!(wait_exit_within(&mut s, Duration::from_secs(20)), 3);
    let events = crate::support::trail::last_run_events(&audit);
    let answer = of(&events, "answer")
        .into_iter()
        .find(|e| e["question"] == "guard `api-health` tripped")
        .unwrap_or_else(|| panic!("the divert's answer is recorded: {events:?}"));
    assert_eq!(answer["answer"], "Divert to `rollback`", "{answer}");
    assert_eq!(answer["step"], "verify", "asked before `verify`: {answer}");
    assert_eq!(of(&events, "guard tripped").len(), 1, "{events:?}");
    let started: Vec<String> = of(&events, "step started")
        .iter()
        .filter_map(|e| e["step"].as_str().map(str::to_string))
        .collect();
    assert_eq!(started, ["deploy", "rollback"], "{events:?}");
    let deploy = of(&events, "step finished")
        .into_iter()
        .find(|e| e["step"] == "deploy")
        .unwrap();
    assert_eq!(
        deploy["outcome"], "ok",
        "interactively the step is not stopped: {deploy}"
    );

    // The evidence page holds the guard's timeline: failing, tripped, recovered, in order.
    let page = dir.path().join("evidence.html");
    runbook(["evidence", "last", "-o"])
        .arg(&page)
        .arg("--audit-dir")
        .arg(&audit)
        .expect_code(0);
    let html = std::fs::read_to_string(&page).unwrap();
    let section = html
        .split("<section id=\"guards\">")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .unwrap_or_else(|| panic!("no guards section: {html}"));
    let rows: Vec<&str> = section.split("<tr").skip(2).collect();
    assert_eq!(rows.len(), 3, "{section}");
    for (row, (change, text)) in rows.iter().zip([
        ("failing", "guard api-health failing on local: exit 1"),
        (
            "tripped",
            "guard api-health tripped on local (2 failures in a row): exit 1: diverted to rollback",
        ),
        ("recovered", "guard api-health recovered on local"),
    ]) {
        assert!(
            row.contains(&format!("<td>{change}</td>")) && row.contains(text),
            "{change}: {row}"
        );
    }
    // Each row says when, on the wall clock (the trail's time, to the second the run's clock
    // rounds it to) and the RTO clock.
    let tripped = of(&events, "guard tripped").remove(0);
    let at = chrono::DateTime::parse_from_rfc3339(tripped["ts"].as_str().unwrap()).unwrap();
    assert!(
        [-1, 0, 1].iter().any(|d| {
            let near = at + chrono::Duration::seconds(*d);
            rows[1].contains(&format!("<td>{} +", near.format("%H:%M:%S")))
        }),
        "{}",
        rows[1]
    );
}

/// A guard on a fleet role is polled on every host of the role: the second host going bad
/// trips it (the first host stays healthy), the events name that host, and the deploy is
/// stopped on both hosts before the rollback runs on both.
#[test]
fn a_fleet_guard_is_polled_on_every_host_and_names_the_one_that_fails() {
    use crate::support::fleet::{Fleet, GROUP};
    let fleet = Fleet::start(2);
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit");
    let sleep = format!("sleep 62.{}", std::process::id());
    // Where every host's account can see it.
    let flag = PathBuf::from(format!("/tmp/rb-fleet-guard-flag-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let book = dir.path().join("fleet-guarded.yaml");
    std::fs::write(
        &book,
        format!(
            "version: 1
id: fleet-guarded
title: Guarded fleet deploy
rto: 5m
inputs:
  flag: {{description: while it exists web-2 is unhealthy}}
targets:
  web: {{description: the fleet}}
guards:
  - {{id: api-health, target: web, run: '[ \"$RBTEST_HOST\" != web-2 ] || test ! -e \"$flag\"', every: 200ms, failures: 2, goto: rollback}}
steps:
  - id: deploy
    title: Deploy
    target: web
    run: echo deploying; {sleep}
    next: done
  - id: done
    title: Done
    end: resolved
  - id: rollback
    title: Roll back
    target: web
    run: echo rolled back
    next: rolled-back
  - id: rolled-back
    title: Rolled back
    end: escalated
"
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(crate::support::cmd::bin())
        .arg("--audit-dir")
        .arg(&audit)
        .args(["run", "--yes", "--no-sign", "--target"])
        .arg(format!("web={GROUP}"))
        .args(fleet.ssh_args())
        .arg("--set")
        .arg(format!("flag={}", flag.display()))
        .arg(&book)
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait::until(Duration::from_secs(30), "the deploy on both hosts", || {
        fleet.remote_processes(&sleep) == 2
    });
    // Healthy on both so far: no guard event yet.
    let events = crate::support::trail::last_run_events(&audit);
    assert!(
        events
            .iter()
            .all(|e| !e["event"].as_str().unwrap().starts_with("guard")),
        "{events:?}"
    );
    std::fs::write(&flag, "").unwrap();
    let code = wait::exit(&mut child, Duration::from_secs(30));
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let _ = std::fs::remove_file(&flag);
    assert_eq!(code, Some(3), "the run ends at the rollback's end: {stderr}");
    assert!(
        stderr.contains("GUARD TRIPPED: `api-health` failed 2 times in a row on web-2"),
        "{stderr}"
    );
    wait::until(Duration::from_secs(10), "the deploy gone from both hosts", || {
        fleet.remote_processes(&sleep) == 0
    });
    let events = crate::support::trail::last_run_events(&audit);
    let guard_events: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"].as_str().unwrap().starts_with("guard"))
        .collect();
    assert!(!guard_events.is_empty());
    assert!(
        guard_events.iter().all(|e| e["host"] == "web-2"),
        "only web-2 failed, and each event names it: {guard_events:?}"
    );
    let tripped = of(&events, "guard tripped");
    assert_eq!(tripped.len(), 1, "{events:?}");
    assert_eq!(tripped[0]["host"], "web-2");
    for host in ["web-1", "web-2"] {
        let deploy = of(&events, "step finished")
            .into_iter()
            .find(|e| e["step"] == "deploy" && e["host"] == host)
            .unwrap_or_else(|| panic!("the deploy on {host} is recorded: {events:?}"));
        assert_eq!(deploy["outcome"], "timeout", "{deploy}");
        assert!(
            of(&events, "step finished")
                .iter()
                .any(|e| e["step"] == "rollback" && e["host"] == host && e["outcome"] == "ok"),
            "the rollback ran on {host}: {events:?}"
        );
    }
}
