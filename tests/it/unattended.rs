//! Unattended runs from alerts (design §20): the inventory's policy (runbooks, max_runs,
//! max_hosts, dedup by fingerprint, pause), refusals recorded and notified, and the real
//! set-up of docs/unattended.md: Alertmanager posting to `webhook`, whose hook runs `runbook`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::cmd::runbook;
use crate::support::http::{Answer, Receiver, closed_port};
use crate::support::wait;
use crate::support::webhook::{Webhook, hooks};

mod team;

/// A runbook on `local` whose step waits for `$gate` to exist (a run held unfinished for as
/// long as a test needs), then ends resolved.
fn held(id: &str) -> String {
    format!(
        "version: 1\nid: {id}\ntitle: Held {id}\nrto: 10m\ninputs:\n  gate: {{description: a file the step waits for, default: /nonexistent}}\ntargets:\n  app: {{default: local}}\nsteps:\n  - id: work\n    title: Work\n    run: 'while [ ! -e \"$gate\" ]; do sleep 0.05; done'\n  - id: done\n    title: Done\n    end: resolved\n"
    )
}

struct Team {
    dir: tempfile::TempDir,
}

impl Team {
    /// A catalog of `fix-api` and `other`, an inventory with `policy` under `unattended:`.
    fn new(policy: &str) -> Team {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("catalog")).unwrap();
        std::fs::create_dir(dir.path().join("audit")).unwrap();
        for id in ["fix-api", "other"] {
            std::fs::write(dir.path().join(format!("catalog/{id}.yaml")), held(id)).unwrap();
        }
        std::fs::write(
            dir.path().join("inventory.yaml"),
            format!("unattended:\n{policy}"),
        )
        .unwrap();
        Team { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn audit(&self) -> PathBuf {
        self.path("audit")
    }

    /// The environment a hook's command gets (as `webhook` under systemd would give it).
    fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("RUNBOOK_PATH", self.path("catalog")),
            ("RUNBOOK_AUDIT_DIR", self.audit()),
            ("RUNBOOK_INVENTORY", self.path("inventory.yaml")),
        ]
    }

    fn alert(&self, name: &str, fingerprint: &str) -> PathBuf {
        let path = self.path(name);
        let payload = json!({
            "version": "4", "status": "firing", "receiver": "runbook", "groupKey": "{}:{}",
            "alerts": [{"status": "firing", "labels": {"alertname": "ApiDown"}, "annotations": {},
                "fingerprint": fingerprint}]
        });
        std::fs::write(&path, payload.to_string()).unwrap();
        path
    }

    /// `runbook run ID --unattended --alert ALERT` with `args`; the gate already open, so a
    /// run that starts ends at once.
    fn run(&self, id: &str, alert: &Path, args: &[&str]) -> crate::support::cmd::Outcome {
        let mut cmd = runbook(["run", id, "--unattended", "--alert"])
            .arg(alert)
            .args(args);
        for (k, v) in self.env() {
            cmd = cmd.env(k, v);
        }
        cmd.arg("--set")
            .arg(format!("gate={}", self.dir.path().display()))
            .output()
    }

    fn refusals(&self) -> Vec<Value> {
        lines(&self.audit().join("refusals.jsonl"))
    }

    fn trails(&self) -> Vec<PathBuf> {
        crate::support::trail::audit_files(&self.audit())
            .into_iter()
            .filter(|p| !p.ends_with("refusals.jsonl"))
            .collect()
    }
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_runbook_outside_the_policy_is_refused_recorded_and_notified() {
    let team = Team::new("  runbooks: [fix-api]\n");
    let receiver = Receiver::start(Answer::Ok);
    let alert = team.alert("alert.json", "aaa111");
    let out = team.run("other", &alert, &["--notify", &receiver.url("/n")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("unattended run of `other` refused: `other` is not in the policy's `runbooks:`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("fix-api"),
        "the allowed ones are named: {}",
        out.stderr
    );
    assert!(team.trails().is_empty(), "nothing ran");
    let refusals = team.refusals();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0]["runbook"], "other");
    assert_eq!(refusals[0]["fingerprints"], json!(["aaa111"]));
    let got = receiver.wait_for(Duration::from_secs(10), "the refusal's notification", |r| {
        !r.is_empty()
    });
    let ce = got[0].json();
    assert_eq!(ce["type"], "runbook.run.refused", "{ce}");
    assert!(
        ce["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("not in the policy"),
        "{ce}"
    );
    // The allowed one runs; the very same command without --unattended is never refused.
    let out = team.run("fix-api", &alert, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut cmd = runbook(["run", "other", "--yes", "--alert"]).arg(&alert);
    for (k, v) in team.env() {
        cmd = cmd.env(k, v);
    }
    let out = cmd
        .arg("--set")
        .arg(format!("gate={}", team.dir.path().display()))
        .output();
    assert_eq!(
        out.code,
        Some(0),
        "an interactive-mode run is not the policy's: {}",
        out.stderr
    );
    assert_eq!(team.refusals().len(), 1);
}

#[test]
fn no_policy_refuses_and_a_dead_receiver_does_not_delay_the_refusal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("catalog")).unwrap();
    std::fs::write(dir.path().join("catalog/fix-api.yaml"), held("fix-api")).unwrap();
    std::fs::write(dir.path().join("inventory.yaml"), "hosts: {}\n").unwrap();
    // An unattended run of fix-api notifying `url`: refused, and how long the refusal took.
    let refuse = |url: String| {
        let started = Instant::now();
        let out = runbook([
            "run",
            "fix-api",
            "--unattended",
            "--notify-timeout",
            "1s",
            "--notify",
        ])
        .arg(url)
        .env("RUNBOOK_PATH", dir.path().join("catalog"))
        .env("RUNBOOK_AUDIT_DIR", dir.path().join("audit"))
        .env("RUNBOOK_INVENTORY", dir.path().join("inventory.yaml"))
        .output();
        (out, started.elapsed())
    };
    // A receiver that reads and never answers: the refusal waits --notify-timeout, no more.
    let receiver = Receiver::start(Answer::Never);
    let (out, took) = refuse(receiver.url("/n"));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("has no `unattended:` policy"),
        "{}",
        out.stderr
    );
    assert!(
        took < Duration::from_secs(4),
        "the refusal took {took:?} with --notify-timeout 1s"
    );
    assert_eq!(lines(&dir.path().join("audit/refusals.jsonl")).len(), 1);
    // A receiver nobody listens on: no wait at all beyond the timeout either.
    let (out, took) = refuse(format!("http://127.0.0.1:{}/n", closed_port()));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[test]
fn max_runs_refuses_the_run_over_the_count_and_max_hosts_a_larger_fleet() {
    let team = Team::new("  runbooks: [fix-api]\n  max_runs: {count: 3, per: 1h}\n  max_hosts: 1\n");
    for n in 0..3 {
        let out = team.run(
            "fix-api",
            &team.alert(&format!("a{n}.json"), &format!("f{n}")),
            &[],
        );
        assert_eq!(out.code, Some(0), "run {n}: {}", out.stderr);
    }
    let out = team.run("fix-api", &team.alert("a3.json", "f3"), &[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("ran unattended 3 times within 1h (`max_runs: {count: 3, per: 1h}`)"),
        "{}",
        out.stderr
    );
    assert_eq!(team.trails().len(), 3);
    let refusals = team.refusals();
    assert_eq!(refusals.len(), 1);
    assert!(refusals[0]["reason"].as_str().unwrap().contains("max_runs"));

    let team = Team::new("  runbooks: [fix-api]\n  max_hosts: 1\n");
    // Refused before anything connects: these two hosts need not exist.
    let out = team.run(
        "fix-api",
        &team.alert("a.json", "f"),
        &["--target", "app=web-1.invalid,web-2.invalid"],
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("bound to 2 hosts, over the policy's `max_hosts: 1`"),
        "{}",
        out.stderr
    );
    assert!(team.trails().is_empty());
}

#[test]
fn pause_refuses_until_unpause_and_expires_on_its_own() {
    let team = Team::new("  runbooks: [fix-api]\n");
    let pause = |args: &[&str]| {
        let mut cmd = runbook(["pause"]).args(args);
        for (k, v) in team.env() {
            cmd = cmd.env(k, v);
        }
        cmd.env("RUNBOOK_OPERATOR", "alice").expect_code(0)
    };
    let out = pause(&["--reason", "database migration"]);
    assert!(
        out.stdout.contains("paused until `runbook unpause`"),
        "{}",
        out.stdout
    );
    let out = team.run("fix-api", &team.alert("a.json", "f1"), &[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("unattended runs are paused by alice since"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(": database migration"), "{}", out.stderr);
    assert!(team.trails().is_empty());
    assert_eq!(team.refusals().len(), 1);
    let mut cmd = runbook(["unpause"]);
    for (k, v) in team.env() {
        cmd = cmd.env(k, v);
    }
    let out = cmd.expect_code(0);
    assert!(out.stdout.contains("may start again"), "{}", out.stdout);
    let out = team.run("fix-api", &team.alert("a.json", "f1"), &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // A pause for a time: over once the time has passed, without an unpause.
    pause(&["--for", "1s"]);
    let out = team.run("fix-api", &team.alert("b.json", "f2"), &[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    wait::until(Duration::from_secs(10), "the pause to expire", || {
        team.run("fix-api", &team.alert("c.json", "f3"), &[]).code == Some(0)
    });
}

#[test]
fn validate_locates_every_problem_of_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.yaml");
    std::fs::write(
        &inventory,
        "unattended:\n  runbooks: [fix-api, fix-api]\n  max_runs: {count: 0, per: 5x}\n  max_hosts: 0\n  dedup: soon\n",
    )
    .unwrap();
    let out = runbook(["validate", "--inventory"]).arg(&inventory).output();
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    let text = format!("{}{}", out.stdout, out.stderr);
    for (what, at) in [
        ("`fix-api` is listed twice", ":2:"),
        ("unattended.max_runs.count: 0", ":3:"),
        ("unattended.max_runs.per:", ":3:"),
        ("unattended.max_hosts: 0", ":4:"),
        ("unattended.dedup:", ":5:"),
    ] {
        assert!(
            text.lines().any(|l| l.contains(what)) && text.contains(at),
            "{what} at {at}: {text}"
        );
    }
    // A run reads the same policy: refused, naming where.
    let team = Team::new("  runbooks: [fix-api]\n  dedup: soon\n");
    let out = team.run("fix-api", &team.alert("a.json", "f"), &[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("inventory.yaml:3:10: unattended.dedup"),
        "{}",
        out.stderr
    );
}

/// Alertmanager's configuration of docs/unattended.md: every notification to both hooks (each
/// takes its own status), with the token; re-sent every second while the alert fires.
/// A real `webhook` whose hook (with `token`) runs `fix-api` with its gate at `gate`.
fn gated_hook(team: &Team, gate: &Path, token: &str) -> Webhook {
    let env = team.env();
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let gate_arg = format!("gate={}", gate.display());
    Webhook::start(
        team.dir.path(),
        &hooks("fix-api", token, &["--set", &gate_arg]),
        &env,
    )
}

fn alertmanager_yml(webhook: &Webhook, token: &str) -> String {
    let config = |hook: &str| {
        format!(
            "      - url: {}\n        send_resolved: true\n        http_config:\n          authorization: {{type: Bearer, credentials: {token}}}\n",
            webhook.url(hook)
        )
    };
    format!(
        "route:\n  receiver: runbook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1s\nreceivers:\n  - name: runbook\n    webhook_configs:\n{}{}",
        config("runbook-alert"),
        config("runbook-resolved")
    )
}

fn start_alertmanager(dir: &Path, yaml: &str) -> crate::support::alertmanager::Alertmanager {
    crate::support::alertmanager::Alertmanager::with_config(dir, yaml).unwrap_or_else(|| {
        panic!(
            "{} is not installed: apt-get install prometheus-alertmanager (scripts/test.sh does)",
            crate::support::alertmanager::BINARY
        )
    })
}

#[test]
fn alertmanager_through_webhook_starts_one_run_per_alert_and_a_post_without_the_token_nothing() {
    let team = Team::new("  runbooks: [fix-api]\n  dedup: 1h\n");
    let gate = team.path("gate");
    let token = "t0ken-for-the-hook";
    let hook = gated_hook(&team, &gate, token);

    // No token, or a wrong one: the hook's rule refuses the POST, nothing starts.
    let payload = std::fs::read_to_string(team.alert("a.json", "f00")).unwrap();
    for token in [None, Some("wrong")] {
        let (_, body) = hook.post("runbook-alert", &payload, token);
        assert!(body.contains("Hook rules were not satisfied"), "{body}");
    }

    let am = start_alertmanager(team.dir.path(), &alertmanager_yml(&hook, token));
    am.fire(&json!([{"labels": {"alertname": "ApiDown", "service": "api"}}]));
    // The first notification starts the run, held at its step; Alertmanager re-sends the
    // alert every second: each is refused, naming the unfinished run.
    let refused = |what: &str| {
        team.refusals()
            .iter()
            .any(|r| r["reason"].as_str().is_some_and(|x| x.contains(what)))
    };
    wait::until(Duration::from_secs(30), "a re-sent alert refused", || {
        refused("already has the unfinished run")
    });
    let trails = team.trails();
    assert_eq!(trails.len(), 1, "one run for the alert: {trails:?}");
    let first = &crate::support::trail::events(&trails[0])[0];
    assert_eq!(first["unattended"], true);
    assert_eq!(first["alert"]["alertname"], "ApiDown");
    // Finished, it is still the alert's run within `dedup`.
    std::fs::write(&gate, "").unwrap();
    wait::until(
        Duration::from_secs(30),
        "a re-sent alert refused after the seal",
        || refused("sealed"),
    );
    assert_eq!(team.trails().len(), 1);
    let events = crate::support::trail::events(&team.trails()[0]);
    assert_eq!(events.last().unwrap()["event"], "run finished");
    assert_eq!(events.last().unwrap()["outcome"], "resolved");
    // The hook's own log: a refused re-send says why (what an operator reads in journald).
    let log = std::fs::read_to_string(team.dir.path().join("hook.log")).unwrap();
    assert!(log.contains("refused: alert "), "{log}");
}

/// Three steps: `first` waits for the gate, `second` and `third` would run after it; the
/// cleanup leaves a mark.
const RESOLVABLE: &str = "version: 1\nid: fix-api\ntitle: Fix the API\nrto: 10m\ninputs:\n  gate: {description: a file the first step waits for, default: /nonexistent}\ntargets:\n  app: {default: local}\nsteps:\n  - id: first\n    title: First\n    run: 'while [ ! -e \"$gate\" ]; do sleep 0.05; done'\n  - id: second\n    title: Second\n    run: 'true'\n  - id: third\n    title: Third\n    run: 'true'\n  - id: done\n    title: Done\n    end: resolved\ncleanup:\n  - id: tidy\n    title: Tidy up\n    run: 'true'\n";

#[test]
fn a_resolved_alert_stops_the_run_at_the_next_step_boundary() {
    let team = Team::new("  runbooks: [fix-api]\n  stop_when_resolved: true\n");
    std::fs::write(team.path("catalog/fix-api.yaml"), RESOLVABLE).unwrap();
    let gate = team.path("gate");
    let token = "t0ken";
    let hook = gated_hook(&team, &gate, token);
    let am = start_alertmanager(team.dir.path(), &alertmanager_yml(&hook, token));
    let labels = json!({"alertname": "ApiDown", "service": "api"});
    let began = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    am.fire(&json!([{"labels": labels, "startsAt": began}]));
    wait::until(Duration::from_secs(30), "the run's first step", || {
        team.trails().first().is_some_and(|t| {
            crate::support::trail::events(t)
                .iter()
                .any(|e| e["event"] == "step started" && e["step"] == "first")
        })
    });
    // Alertmanager says it resolved: its notification goes to the resolved hook.
    let ended = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    am.fire(&json!([{"labels": labels, "startsAt": began, "endsAt": ended}]));
    wait::until_seen(Duration::from_secs(30), "the resolved mark", || {
        let marked = std::fs::read_dir(team.audit().join("resolved")).is_ok_and(|mut d| d.next().is_some());
        let logs = std::fs::read_to_string(team.dir.path().join("webhook.log")).unwrap_or_default()
            + &std::fs::read_to_string(team.dir.path().join("hook.log")).unwrap_or_default();
        (marked, logs)
    });
    // The step under way is not cut: it ends, and the run stops at the boundary after it.
    std::fs::write(&gate, "").unwrap();
    let trail = team.trails()[0].clone();
    wait::until(Duration::from_secs(30), "the run sealed", || {
        crate::support::trail::events(&trail)
            .last()
            .is_some_and(|e| e["event"] == "run finished")
    });
    let events = crate::support::trail::events(&trail);
    let resolved: Vec<&Value> = events.iter().filter(|e| e["event"] == "alert resolved").collect();
    assert_eq!(resolved.len(), 1, "{events:?}");
    assert_eq!(resolved[0]["step"], "second", "{}", resolved[0]);
    let started: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "step started")
        .filter_map(|e| e["step"].as_str())
        .collect();
    assert_eq!(started, ["first", "tidy"], "the cleanup still runs: {events:?}");
    let last = events.last().unwrap();
    assert_eq!(last["outcome"], "resolved", "{last}");
    // A resolved payload never starts a run, even posted to the alert hook.
    assert_eq!(team.trails().len(), 1);
    let review = runbook(["review"]).arg(&trail).expect_code(0);
    assert!(
        review
            .stdout
            .contains("resolved: the run stopped at the step boundary"),
        "{}",
        review.stdout
    );
}

#[test]
fn an_older_resolved_mark_does_not_stop_a_new_run() {
    let team = Team::new("  runbooks: [fix-api]\n  stop_when_resolved: true\n");
    std::fs::write(team.path("catalog/fix-api.yaml"), RESOLVABLE).unwrap();
    let resolved = team.path("resolved.json");
    std::fs::write(
        &resolved,
        json!({"version": "4", "status": "resolved", "alerts": [{"status": "resolved", "labels": {"alertname": "ApiDown"}, "fingerprint": "f1"}]}).to_string(),
    )
    .unwrap();
    let mut cmd = runbook(["resolved", "--alert"]).arg(&resolved);
    for (k, v) in team.env() {
        cmd = cmd.env(k, v);
    }
    let out = cmd.expect_code(0);
    assert!(out.stdout.contains("Marked resolved: f1"), "{}", out.stdout);
    // The same fingerprint fires again later (Alertmanager keeps it across episodes).
    let out = team.run("fix-api", &team.alert("a.json", "f1"), &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let events = crate::support::trail::events(&team.trails()[0]);
    assert!(
        !events.iter().any(|e| e["event"] == "alert resolved"),
        "{events:?}"
    );
    // A firing payload is no resolution; a resolved one no run.
    let mut cmd = runbook(["resolved", "--alert"]).arg(team.alert("b.json", "f2"));
    for (k, v) in team.env() {
        cmd = cmd.env(k, v);
    }
    cmd.expect_code(2);
    let out = team.run("fix-api", &resolved, &[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("the alert is resolved already"),
        "{}",
        out.stderr
    );
}
