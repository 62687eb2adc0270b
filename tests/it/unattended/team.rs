//! The unattended policy on the team's audit host (design §20): a loopback sshd is the audit
//! host; two audit dirs stand for two machines of the team (their webhooks). A pause there,
//! the runs counted by `max_runs` and the fingerprints dedup looks up are the audit host's, so
//! each machine sees the other's; an audit host that cannot be reached refuses the run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{Team, lines};
use crate::support::audit_host;
use crate::support::cmd::runbook;
use crate::support::sshd::Sshd;

/// The team's set-up with the audit host named in the inventory.
struct Shared {
    team: Team,
    sshd: Sshd,
    host: tempfile::TempDir,
    url: String,
}

impl Shared {
    fn new(policy: &str) -> Shared {
        let sshd = Sshd::start();
        let host = audit_host::dir();
        let url = audit_host::url(&sshd, host.path());
        let team = Team::new(policy);
        let inventory = team.path("inventory.yaml");
        let text = std::fs::read_to_string(&inventory).unwrap();
        std::fs::write(&inventory, format!("audit_host: {url}\n{text}")).unwrap();
        Shared {
            team,
            sshd,
            host,
            url,
        }
    }

    /// The audit dir of machine `name` (`a`, `b`).
    fn audit(&self, name: &str) -> PathBuf {
        self.team.path(&format!("audit-{name}"))
    }

    /// `runbook ARGS` as machine `name` would run it from its webhook: its own audit dir, the
    /// team's inventory (and so its audit host), this sshd's keys.
    fn runbook(&self, name: &str, args: &[&str]) -> crate::support::cmd::Run {
        let mut cmd = runbook(args).args(self.sshd.ssh_args());
        for (k, v) in self.team.env() {
            cmd = cmd.env(k, v);
        }
        cmd.env("RUNBOOK_AUDIT_DIR", self.audit(name))
            .env("RUNBOOK_OPERATOR", format!("hook-{name}"))
    }

    /// An unattended run of `fix-api` from machine `name` for the alert `fingerprint`, its
    /// gate open (a run that starts ends at once).
    fn run(&self, name: &str, fingerprint: &str) -> crate::support::cmd::Outcome {
        let alert = self.team.alert(&format!("alert-{fingerprint}.json"), fingerprint);
        let gate = format!("gate={}", self.team.dir.path().display());
        let alert = alert.display().to_string();
        self.runbook(
            name,
            &[
                "run",
                "fix-api",
                "--unattended",
                "--alert",
                &alert,
                "--set",
                &gate,
            ],
        )
        .output()
    }

    fn trails(&self, name: &str) -> Vec<PathBuf> {
        crate::support::trail::audit_files(&self.audit(name))
            .into_iter()
            .filter(|p| !p.ends_with("refusals.jsonl"))
            .collect()
    }

    fn refusals(&self, name: &str) -> Vec<Value> {
        lines(&self.audit(name).join("refusals.jsonl"))
    }

    /// The run id of machine `name`'s only run.
    fn only_run(&self, name: &str) -> String {
        let trails = self.trails(name);
        assert_eq!(trails.len(), 1, "{trails:?}");
        trails[0].file_stem().unwrap().to_string_lossy().into_owned()
    }
}

#[test]
fn a_pause_on_the_audit_host_holds_every_machine_until_unpause() {
    let shared = Shared::new("  runbooks: [fix-api]\n");
    let out = shared
        .runbook("a", &["pause", "--reason", "database migration"])
        .expect_code(0);
    assert!(out.stdout.contains("on every machine"), "{}", out.stdout);
    assert!(shared.host.path().join("pause.json").is_file());
    assert!(
        !shared.audit("a").join("pause.json").exists(),
        "the pause is the audit host's, not machine a's"
    );
    // Machine b, with an audit dir of its own, is held by it.
    let out = shared.run("b", "f1");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("unattended runs are paused by hook-a since"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("(on the audit host {}): database migration", shared.url)),
        "{}",
        out.stderr
    );
    assert!(shared.trails("b").is_empty(), "nothing ran");
    assert_eq!(shared.refusals("b").len(), 1);
    // Machine b lifts it; machine a's run starts, and is mirrored there.
    let out = shared.runbook("b", &["unpause"]).expect_code(0);
    assert!(out.stdout.contains("may start again"), "{}", out.stdout);
    assert!(!shared.host.path().join("pause.json").exists());
    let out = shared.run("a", "f1");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let run = shared.only_run("a");
    assert!(shared.host.path().join(format!("{run}.jsonl")).is_file());
}

#[test]
fn dedup_and_max_runs_count_the_runs_of_every_machine_on_the_audit_host() {
    let shared = Shared::new("  runbooks: [fix-api]\n  max_runs: {count: 2, per: 1h}\n  dedup: 1h\n");
    let out = shared.run("a", "f1");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let first = shared.only_run("a");
    // Machine b gets the same alert: machine a's run, sealed and mirrored, is the alert's.
    let out = shared.run("b", "f1");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("alert f1 already had the run {first}, sealed")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("within `dedup: 1h`"), "{}", out.stderr);
    let out = shared.run("a", "f2");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // Two runs of machine a: machine b's third, for another alert, is over `max_runs`.
    let out = shared.run("b", "f3");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("ran unattended 2 times within 1h (`max_runs: {count: 2, per: 1h}`)"),
        "{}",
        out.stderr
    );
    assert!(shared.trails("b").is_empty(), "nothing ran on machine b");
    assert_eq!(shared.refusals("b").len(), 2);
    // The audit host lists the two runs admitted; refusals are not runs.
    let ledger = lines(&shared.host.path().join("unattended/runs.jsonl"));
    assert_eq!(ledger.len(), 2, "{ledger:?}");
    assert_eq!(ledger[0]["run"], first.as_str());
}

impl Shared {
    /// Machine `name`'s unattended run for `fingerprint`, started and not waited for, held at
    /// its step until `gate` exists.
    fn spawn_held(&self, name: &str, fingerprint: &str, gate: &Path) -> std::process::Child {
        let alert = self
            .team
            .alert(&format!("alert-{name}-{fingerprint}.json"), fingerprint);
        let mut held = std::process::Command::new(crate::support::cmd::bin());
        held.args(["run", "fix-api", "--unattended", "--alert"])
            .arg(&alert)
            .arg("--set")
            .arg(format!("gate={}", gate.display()))
            .args(self.sshd.ssh_args())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in self.team.env() {
            held.env(k, v);
        }
        held.env("RUNBOOK_AUDIT_DIR", self.audit(name));
        held.spawn().unwrap()
    }
}

#[test]
fn an_unfinished_run_of_another_machine_holds_its_alert() {
    let shared = Shared::new("  runbooks: [fix-api]\n");
    let gate = shared.team.path("gate");
    // Machine a's run waits at its step for the gate.
    let mut child = shared.spawn_held("a", "f9", &gate);
    let host = shared.host.path().to_path_buf();
    crate::support::wait::until(
        Duration::from_secs(30),
        "machine a's run mirrored at its step",
        || step_started_there(&host),
    );
    let run = shared.only_run("a");
    let out = shared.run("b", "f9");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("alert f9 already has the unfinished run {run}")),
        "{}",
        out.stderr
    );
    std::fs::write(&gate, "").unwrap();
    assert!(child.wait().unwrap().success());
}

/// Two machines get the same alert at the same moment: the audit host's lock makes their
/// admissions one after the other, and the second sees the first. The lock is held (as by an
/// admission under way) until both wait for it, then let go: they go at the same instant.
#[test]
fn two_machines_admitting_at_once_start_one_run() {
    let shared = Shared::new("  runbooks: [fix-api]\n");
    let gate = shared.team.path("gate");
    let lock = shared.host.path().join("unattended/lock.d");
    // The audit host's user's, as the admissions would have made them.
    for dir in [lock.parent().unwrap(), &lock] {
        std::fs::create_dir_all(dir).unwrap();
        std::os::unix::fs::chown(
            dir,
            Some(crate::support::sshd::uid(crate::support::sshd::USER)),
            None,
        )
        .unwrap();
    }
    let a = shared.spawn_held("a", "f7", &gate);
    let b = shared.spawn_held("b", "f7", &gate);
    let host = shared.host.path().display().to_string();
    crate::support::wait::until(Duration::from_secs(30), "both admissions at the lock", || {
        admissions_there(&host) == 2
    });
    std::fs::remove_dir(&lock).unwrap();
    // Whichever was admitted holds the alert; the other is refused, naming it.
    let (mut a, mut b) = (a, b);
    let mut first_done = None;
    crate::support::wait::until(Duration::from_secs(30), "one of the two runs refused", || {
        first_done = match (a.try_wait().unwrap(), b.try_wait().unwrap()) {
            (Some(s), _) => Some(("a", s)),
            (None, Some(s)) => Some(("b", s)),
            (None, None) => None,
        };
        first_done.is_some()
    });
    let (refused_name, status) = first_done.unwrap();
    assert_eq!(status.code(), Some(2), "the one that ended first was refused");
    let (mut refused_child, mut held, admitted) = if refused_name == "a" {
        (a, b, "b")
    } else {
        (b, a, "a")
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(refused_child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let _ = refused_child.wait();
    assert!(
        stderr.contains("alert f7 already has the unfinished run"),
        "{stderr}"
    );
    assert!(
        shared.trails(refused_name).is_empty(),
        "{refused_name} ran nothing"
    );
    std::fs::write(&gate, "").unwrap();
    assert!(held.wait().unwrap().success());
    assert_eq!(shared.trails(admitted).len(), 1);
    let ledger = lines(&shared.host.path().join("unattended/runs.jsonl"));
    assert_eq!(ledger.len(), 1, "{ledger:?}");
}

/// The admission scripts running on the audit host `host` (each `sh -c SCRIPT rb-unattended
/// HOST admit`).
fn admissions_there(host: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmdline| {
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            args.contains(&b"rb-unattended".as_slice())
                && args.contains(&host.as_bytes())
                && args.contains(&b"admit".as_slice())
        })
        .count()
}

/// A trail on the audit host whose step has started.
fn step_started_there(host: &Path) -> bool {
    crate::support::trail::audit_files(host)
        .iter()
        .any(|t| std::fs::read_to_string(t).is_ok_and(|text| text.contains("\"event\":\"step started\"")))
}

#[test]
fn an_audit_host_that_cannot_be_reached_refuses_the_run() {
    let team = Team::new("  runbooks: [fix-api]\n");
    let url = format!(
        "ssh://rbtest@127.0.0.1:{}/srv/runbook",
        crate::support::http::closed_port()
    );
    let out = team.run("fix-api", &team.alert("a.json", "f1"), &["--audit-host", &url]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "unattended run of `fix-api` refused: the audit host {url} cannot be reached"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("cannot be checked"), "{}", out.stderr);
    assert!(team.trails().is_empty(), "nothing ran");
    let refusals = team.refusals();
    assert_eq!(refusals.len(), 1);
    assert!(
        refusals[0]["reason"].as_str().unwrap().contains(&url),
        "{}",
        refusals[0]
    );
}
