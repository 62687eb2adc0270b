//! One step on many hosts (design §13), against a fleet of real sshd hosts on loopback
//! addresses: per-host outcomes when one fails, rolling batches in the trail's order, the
//! failure budget, `--forks` never exceeded, Ctrl-C stopping every host, a resume that
//! re-runs only the hosts whose outcome is unknown, one bad host key failing pre-flight, and
//! `capture` needing `capture_from`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::cmd::{bin, runbook};
use crate::support::fleet::{Fleet, GROUP};
use crate::support::http::{Answer, Receiver};
use crate::support::trail::last_run_events as events;
use crate::support::wait;

fn book(dir: &Path, steps: &str) -> std::path::PathBuf {
    let file = dir.join("fleet.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nid: fleet\ntitle: Fleet\nrto: 5m\ntargets:\n  web: {{}}\nsteps:\n{steps}  - id: done\n    title: Done\n    end: resolved\n"
        ),
    )
    .unwrap();
    file
}

fn run(fleet: &Fleet, audit: &Path, file: &Path, extra: &[&str]) -> crate::support::cmd::Run {
    runbook(["--audit-dir"])
        .arg(audit)
        .args(["run", "--yes", "--no-sign", "--target"])
        .arg(format!("web={GROUP}"))
        .args(fleet.ssh_args())
        .args(extra)
        .arg(file)
}

/// The same run in the background, for tests that act while it runs (count, signal, kill).
fn spawn_run(fleet: &Fleet, audit: &Path, file: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(bin())
        .arg("--audit-dir")
        .arg(audit)
        .args(["run", "--yes", "--no-sign"])
        .args(extra)
        .arg("--target")
        .arg(format!("web={GROUP}"))
        .args(fleet.ssh_args())
        .arg(file)
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn of<'a>(events: &'a [Value], kind: &str, step: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == kind && e["step"] == step)
        .collect()
}

/// A directory where each host's command leaves a line per run (`$dir/$RBTEST_HOST`):
/// writable by the login user of the test hosts.
struct Marks(tempfile::TempDir);

impl Marks {
    fn new() -> Marks {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        Marks(dir)
    }

    fn dir(&self) -> std::path::Display<'_> {
        self.0.path().display()
    }

    /// How many times `host` ran its command.
    fn runs(&self, host: &str) -> usize {
        std::fs::read_to_string(self.0.path().join(host))
            .unwrap()
            .lines()
            .count()
    }

    /// How many hosts ran their command at all.
    fn hosts(&self) -> usize {
        std::fs::read_dir(self.0.path()).unwrap().count()
    }
}

fn hosts(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            h.as_str()
                .unwrap_or_else(|| h["host"].as_str().unwrap())
                .to_string()
        })
        .collect()
}

#[test]
fn a_step_on_five_hosts_where_one_fails_records_every_hosts_outcome() {
    let fleet = Fleet::start(5);
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = book(
        dir.path(),
        "  - id: deploy\n    title: Deploy\n    run: 'echo \"hello from $RBTEST_HOST\"; [ \"$RBTEST_HOST\" != web-3 ]'\n",
    );
    let receiver = Receiver::start(Answer::Ok);
    let out = run(&fleet, audit.path(), &file, &["--notify", &receiver.url("/hook")])
        .env("TERM", "dumb")
        .expect_code(3);
    for i in [1, 2, 4, 5] {
        assert!(
            out.stderr.contains(&format!("web-{i} | hello from web-{i}")),
            "{}",
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("deploy: web-3 failed (exit 1)"),
        "{}",
        out.stderr
    );
    // Issue 25, item 10: the summary says how many hosts failed, not "failed on" all five.
    assert!(
        out.stderr
            .contains(&format!("deploy: failed on 1 of 5 hosts of {GROUP} in ")),
        "{}",
        out.stderr
    );
    let events = events(audit.path());
    let finished = of(&events, "step finished", "deploy");
    assert_eq!(finished.len(), 5, "one per host");
    for e in &finished {
        let host = e["host"].as_str().unwrap();
        let expected = if host == "web-3" { "failed" } else { "ok" };
        assert_eq!(e["outcome"], expected, "{e}");
        assert_eq!(e["fleet"], GROUP);
        // Each host's output in its own file, accounted for in the trail.
        assert!(
            e["output"]["path"]
                .as_str()
                .unwrap()
                .contains(&format!("deploy@{host}-1.out")),
            "{e}"
        );
    }
    let aggregate = of(&events, "fleet step finished", "deploy");
    assert_eq!(aggregate.len(), 1);
    assert_eq!(aggregate[0]["outcome"], "failed");
    assert_eq!(
        hosts(&aggregate[0]["hosts_ok"]),
        ["web-1", "web-2", "web-4", "web-5"]
    );
    assert_eq!(hosts(&aggregate[0]["hosts_failed"]), ["web-3"]);
    assert!(hosts(&aggregate[0]["hosts_not_started"]).is_empty());
    // One page for the fleet step, naming the host it failed on (not one per host).
    let failed: Vec<Value> = receiver
        .requests()
        .iter()
        .map(|r| r.json())
        .filter(|e| e["type"] == "runbook.step.failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let data = &failed[0]["data"];
    assert_eq!(data["step"], "deploy");
    assert_eq!(data["host"], GROUP);
    assert_eq!(data["outcome"], "failed");
    assert_eq!(data["attempt"], 1);
    assert_eq!(data["hosts_failed"], serde_json::json!(["web-3"]));
    assert!(
        data["summary"].as_str().unwrap().starts_with(&format!(
            "step `deploy` failed on {GROUP} (failed on web-3) in Fleet (fleet)"
        )),
        "{data}"
    );
    let trail = crate::support::trail::audit_files(audit.path()).pop().unwrap();
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
}

#[test]
fn batches_roll_in_order_and_the_failure_budget_stops_the_rest() {
    let fleet = Fleet::start(5);
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = book(
        dir.path(),
        "  - id: roll\n    title: Roll\n    run: 'sleep 0.2'\n    batch: 2\n",
    );
    run(&fleet, audit.path(), &file, &[]).expect_code(0);
    let events = events(audit.path());
    let seq = |kind: &str, host: &str| {
        events
            .iter()
            .find(|e| e["event"] == kind && e["step"] == "roll" && e["host"] == host)
            .unwrap_or_else(|| panic!("{kind} on {host}"))["seq"]
            .as_u64()
            .unwrap()
    };
    // Batch 2 (web-3, web-4) starts only once batch 1 (web-1, web-2) has finished; batch 3 after.
    for (earlier, later) in [
        (["web-1", "web-2"], ["web-3", "web-4"]),
        (["web-3", "web-4"], ["web-5", "web-5"]),
    ] {
        for e in earlier {
            for l in later {
                assert!(seq("step finished", e) < seq("step started", l), "{e} before {l}");
            }
        }
    }

    // One host at a time, one failure allowed: the second failure stops the rollout.
    let audit = tempfile::tempdir().unwrap();
    let file = book(
        dir.path(),
        "  - id: roll\n    title: Roll\n    run: 'case $RBTEST_HOST in web-1|web-2) exit 1;; esac'\n    batch: 1\n    max_failures: 1\n",
    );
    run(&fleet, audit.path(), &file, &[]).expect_code(3);
    let events = self::events(audit.path());
    let started: Vec<&str> = of(&events, "step started", "roll")
        .iter()
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    assert_eq!(started, ["web-1", "web-2"], "the rest never started");
    let aggregate = of(&events, "fleet step finished", "roll");
    assert_eq!(
        hosts(&aggregate[0]["hosts_not_started"]),
        ["web-3", "web-4", "web-5"]
    );
}

#[test]
fn forks_bound_how_many_hosts_run_at_once() {
    let fleet = Fleet::start(6);
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = book(
        dir.path(),
        "  - id: slow\n    title: Slow\n    run: 'sleep 0.7'\n",
    );
    let mut child = spawn_run(&fleet, audit.path(), &file, &["--forks", "2"]);
    // Counted on the hosts while it runs...
    let mut most = 0;
    while child.try_wait().unwrap().is_none() {
        most = most.max(fleet.remote_processes("^sleep 0.7"));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(most <= 2, "{most} hosts ran at once with --forks 2");
    assert_eq!(most, 2, "two at once were seen");
    // ...and in the trail: never more than two hosts started and not finished.
    let (mut running, mut peak) = (0i32, 0i32);
    for e in events(audit.path()).iter().filter(|e| e["step"] == "slow") {
        match e["event"].as_str().unwrap() {
            "step started" => running += 1,
            "step finished" => running -= 1,
            _ => {}
        }
        peak = peak.max(running);
    }
    assert_eq!(peak, 2);
}

#[test]
fn ctrl_c_during_a_fleet_step_stops_the_command_on_every_host() {
    let fleet = Fleet::start(4);
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = book(dir.path(), "  - id: hang\n    title: Hang\n    run: 'sleep 37'\n");
    let mut child = spawn_run(&fleet, audit.path(), &file, &[]);
    wait::until(Duration::from_secs(20), "sleep running on every host", || {
        fleet.remote_processes("^sleep 37") == 4
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    wait::until(
        Duration::from_secs(10),
        "the command gone from every host",
        || fleet.remote_processes("^sleep 37") == 0,
    );
    let events = events(audit.path());
    let finished = of(&events, "step finished", "hang");
    assert_eq!(finished.len(), 4);
    assert!(
        finished.iter().all(|e| e["outcome"] == "cancelled"),
        "{finished:?}"
    );
}

#[test]
fn a_resume_after_a_kill_mid_fleet_step_reruns_only_the_unknown_hosts() {
    let fleet = Fleet::start(3);
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let marks = Marks::new();
    // Each run leaves a line on its host's mark; web-2 and web-3 hang the first time only.
    let file = book(
        dir.path(),
        &format!(
            "  - id: mark\n    title: Mark\n    idempotent: true\n    run: |\n      f={}/$RBTEST_HOST\n      echo run >> \"$f\"\n      if [ \"$RBTEST_HOST\" != web-1 ] && [ \"$(wc -l < \"$f\")\" -eq 1 ]; then sleep 41; fi\n",
            marks.dir()
        ),
    );
    let mut child = spawn_run(&fleet, audit.path(), &file, &[]);
    let trail = || {
        crate::support::trail::audit_files(audit.path())
            .pop()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    };
    wait::until(Duration::from_secs(20), "web-1 done, the others hanging", || {
        fleet.remote_processes("^sleep 41") == 2 && trail().contains("\"event\":\"step finished\"")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let out = runbook(["--audit-dir"])
        .arg(audit.path())
        .args(["resume", "last", "--yes", "--no-sign"])
        .args(fleet.ssh_args())
        .expect_code(0);
    assert_eq!(
        marks.runs("web-1"),
        1,
        "web-1 had succeeded: not run again\n{}",
        out.stderr
    );
    assert_eq!(marks.runs("web-2"), 2);
    assert_eq!(marks.runs("web-3"), 2);
    // The first instances were stopped before the re-run, not left beside it.
    assert_eq!(fleet.remote_processes("^sleep 41"), 0);
    let events = events(audit.path());
    let aggregate = of(&events, "fleet step finished", "mark");
    assert_eq!(hosts(&aggregate.last().unwrap()["hosts_ok"]), ["web-2", "web-3"]);
}

/// Issue 23 #2: one host's sshd dies during an idempotent step. The run stops open; once the
/// host is back, the resume re-runs the step there (its outcome is unknown) and only there,
/// instead of taking the lost host for a failure and sealing the run `failed`.
#[test]
fn a_host_lost_mid_step_is_re_run_by_the_resume_once_it_is_back() {
    // web-3 has an sshd of its own, so killing it disturbs no other host.
    let fleet = Fleet::start_with(5, &[2]);
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let marks = Marks::new();
    let file = book(
        dir.path(),
        &format!(
            "  - id: mid\n    title: Mid\n    idempotent: true\n    run: |\n      f={}/$RBTEST_HOST\n      echo run >> \"$f\"\n      if [ \"$RBTEST_HOST\" = web-3 ] && [ \"$(wc -l < \"$f\")\" -eq 1 ]; then sleep 43; fi\n",
            marks.dir()
        ),
    );
    let mut child = spawn_run(&fleet, audit.path(), &file, &[]);
    wait::until(Duration::from_secs(30), "four hosts done, web-3 running", || {
        fleet.remote_processes_on(2, "^sleep 43") == 1
            && of(&events(audit.path()), "step finished", "mid").len() == 4
    });
    fleet.kill_host(2);
    let code = wait::exit(&mut child, Duration::from_secs(30));
    assert_eq!(code, Some(1), "a lost host stops an unattended run with exit 1");
    let before = events(audit.path());
    let lost = of(&before, "step finished", "mid");
    assert!(
        lost.iter()
            .any(|e| e["host"] == "web-3" && e["outcome"] == "lost"),
        "{lost:?}"
    );
    let trail = crate::support::trail::audit_files(audit.path()).pop().unwrap();
    runbook(["audit", "verify"]).arg(&trail).expect_code(4);

    fleet.revive_host(2);
    let out = runbook(["--audit-dir"])
        .arg(audit.path())
        .args(["resume", "last", "--yes", "--no-sign"])
        .args(fleet.ssh_args())
        .output();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for host in ["web-1", "web-2", "web-4", "web-5"] {
        assert_eq!(marks.runs(host), 1, "{host} had succeeded: not run again");
    }
    assert_eq!(marks.runs("web-3"), 2, "web-3 was lost: run again");
    let after = events(audit.path());
    assert!(
        !after
            .iter()
            .any(|e| e["event"] == "walk ended" && e["outcome"] != "resolved"),
        "{after:#?}"
    );
    let aggregate = of(&after, "fleet step finished", "mid");
    assert_eq!(hosts(&aggregate.last().unwrap()["hosts_ok"]), ["web-3"]);
    assert_eq!(after.last().unwrap()["event"], "run finished");
    assert_eq!(after.last().unwrap()["outcome"], "resolved");
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
}

#[test]
fn a_refused_host_key_of_one_host_fails_pre_flight_and_runs_nothing() {
    let fleet = Fleet::start(3);
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // web-2's known key is replaced by another key: a changed host key.
    let other = crate::support::sshd::keygen(dir.path(), "impostor");
    let impostor: String = std::fs::read_to_string(other.with_extension("pub"))
        .unwrap()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let web2 = &fleet.hosts[1];
    let known: String = std::fs::read_to_string(&fleet.known_hosts)
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with(&format!("[{}]:{} ", web2.addr, web2.port)) {
                format!("[{}]:{} {impostor}\n", web2.addr, web2.port)
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&fleet.known_hosts, known).unwrap();
    let marks = Marks::new();
    let file = book(
        dir.path(),
        &format!(
            "  - id: touch\n    title: Touch\n    run: touch {}/$RBTEST_HOST\n",
            marks.dir()
        ),
    );
    let out = run(&fleet, audit.path(), &file, &[]).expect_code(2);
    assert!(out.stderr.contains("nothing was run"), "{}", out.stderr);
    assert!(out.stderr.contains("web-2:"), "{}", out.stderr);
    assert!(out.stderr.contains("host key"), "{}", out.stderr);
    assert_eq!(marks.hosts(), 0, "a command ran");
}

#[test]
fn a_capture_on_a_fleet_step_needs_capture_from() {
    let fleet = Fleet::start(3);
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = book(
        dir.path(),
        "  - id: who\n    title: Who\n    run: echo $RBTEST_HOST\n    capture: answer\n",
    );
    let out = run(&fleet, audit.path(), &file, &[]).expect_code(2);
    assert!(out.stderr.contains("capture_from"), "{}", out.stderr);
    assert!(
        out.stderr.contains("fleet.yaml:"),
        "names the place: {}",
        out.stderr
    );
    assert!(crate::support::trail::audit_files(audit.path()).is_empty());

    let file = book(
        dir.path(),
        "  - id: who\n    title: Who\n    run: echo $RBTEST_HOST\n    capture: answer\n    capture_from: web-2\n  - id: show\n    title: Show\n    target: local\n    run: echo \"captured $answer\"\n",
    );
    let out = run(&fleet, audit.path(), &file, &[])
        .env("TERM", "dumb")
        .expect_code(0);
    assert!(out.stderr.contains("captured web-2"), "{}", out.stderr);
}

/// After a fleet step failed on one host, the operator retries that host only: the hosts that
/// succeeded are not run again.
#[test]
fn the_operator_retries_the_failed_hosts_only() {
    let fleet = Fleet::start(3);
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let marks = Marks::new();
    // web-2 fails the first time only.
    let file = book(
        dir.path(),
        &format!(
            "  - id: flaky\n    title: Flaky\n    run: |\n      f={}/$RBTEST_HOST\n      echo run >> \"$f\"\n      [ \"$RBTEST_HOST\" != web-2 ] || [ \"$(wc -l < \"$f\")\" -gt 1 ]\n",
            marks.dir()
        ),
    );
    let mut command = Command::new(bin());
    command
        .arg("--audit-dir")
        .arg(audit.path())
        .args(["run", "--no-sign", "--target"])
        .arg(format!("web={GROUP}"))
        .args(fleet.ssh_args())
        .arg(&file)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("SSH_AUTH_SOCK");
    let mut s = crate::support::pty::start(command);
    s.exp_string("What now?").unwrap();
    crate::support::pty::keys(&mut s, "\r");
    s.exp_string("Retry the failed hosts only (web-2)").unwrap();
    crate::support::pty::keys(&mut s, "\r");
    s.exp_string("run resolved").unwrap();
    assert_eq!(crate::support::pty::wait_exit(&mut s), 0);
    assert_eq!(
        (marks.runs("web-1"), marks.runs("web-2"), marks.runs("web-3")),
        (1, 2, 1)
    );
    let events = events(audit.path());
    let second: Vec<&str> = of(&events, "step started", "flaky")
        .iter()
        .filter(|e| e["attempt"] == 2)
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    assert_eq!(second, ["web-2"]);
}

/// The review of a fleet step: each host's time, the slowest host and the spread, and one
/// Gantt bar per host (Mermaid in Markdown, SVG in HTML).
#[test]
fn the_review_shows_each_hosts_time_the_slowest_and_one_bar_per_host() {
    let fleet = Fleet::start(3);
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = book(
        dir.path(),
        "  - id: spread\n    title: Spread\n    run: 'case $RBTEST_HOST in web-2) sleep 1.2;; esac'\n",
    );
    run(&fleet, audit.path(), &file, &[]).expect_code(0);
    let trail = crate::support::trail::audit_files(audit.path()).pop().unwrap();
    let text = runbook(["review"]).arg(&trail).expect_code(0).stdout;
    assert!(
        text.contains("Fleet step 1. spread on 3 hosts: slowest web-2"),
        "{text}"
    );
    for host in ["web-1", "web-2", "web-3"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(host)),
            "{host}: {text}"
        );
    }
    let md = runbook(["review", "--format", "md"])
        .arg(&trail)
        .expect_code(0)
        .stdout;
    assert!(md.contains("section 1. spread hosts"), "{md}");
    for host in ["web-1", "web-2", "web-3"] {
        assert!(md.contains(&format!("    {host} :")), "{host}: {md}");
    }
    let html = runbook(["review", "--format", "html"])
        .arg(&trail)
        .expect_code(0)
        .stdout;
    let svg_start = html.find("<svg").unwrap();
    let svg_end = html[svg_start..].find("</svg>").unwrap() + svg_start + "</svg>".len();
    let svg = roxmltree::Document::parse(&html[svg_start..svg_end]).expect("the SVG is XML");
    let bars: Vec<String> = svg
        .descendants()
        .filter(|n| n.attribute("class") == Some("host"))
        .map(|g| {
            g.descendants()
                .find(|n| n.has_tag_name("text"))
                .unwrap()
                .text()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(bars, ["web-1", "web-2", "web-3"]);
    // web-2's bar is the longest: it slept.
    let width = |host: &str| -> f64 {
        svg.descendants()
            .filter(|n| n.attribute("class") == Some("host"))
            .find(|g| g.descendants().any(|t| t.text() == Some(host)))
            .unwrap()
            .descendants()
            .filter(|n| n.has_tag_name("rect"))
            .map(|r| r.attribute("width").unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert!(width("web-2") > width("web-1") && width("web-2") > width("web-3"));
}

/// Where the time of a cold one-step run on 50 hosts goes (`cargo test --test it
/// fleet_of_50_timing -- --ignored --nocapture`): a measurement for scripts/bench-fleet.sh's
/// first figure, not a check.
#[test]
#[ignore = "a measurement, not a check"]
fn fleet_of_50_timing() {
    let fleet = Fleet::start(50);
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = book(dir.path(), "  - id: t\n    title: T\n    run: 'true'\n");
    for _ in 0..3 {
        let started = std::time::Instant::now();
        run(&fleet, audit.path(), &file, &["--forks", "50"]).expect_code(0);
        let total = started.elapsed();
        let events = events(audit.path());
        let at = |kind: &str| {
            events
                .iter()
                .find(|e| e["event"] == kind)
                .map(|e| e["mono_ms"].as_u64().unwrap())
                .unwrap_or(0)
        };
        eprintln!(
            "total {total:?}: run started at {} ms (connect, locks, leases), first step started {}, fleet step finished {}, run finished {}",
            at("run started"),
            at("step started"),
            at("fleet step finished"),
            at("run finished")
        );
    }
}

/// Issue 25 item 10: the header names each host of the fleet as connected, `user@host:port`,
/// one a line, before anything runs.
#[test]
fn the_header_names_each_hosts_user_host_and_port() {
    let fleet = Fleet::start(3);
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = book(dir.path(), "  - id: hello\n    title: Hello\n    run: 'true'\n");
    let out = run(&fleet, audit.path(), &file, &[])
        .env("TERM", "dumb")
        .expect_code(0);
    let header: Vec<&str> = out.stderr.lines().take_while(|l| !l.contains("[1/2]")).collect();
    assert!(
        header.iter().any(|l| l.ends_with("  target web: web, 3 hosts")),
        "{}",
        out.stderr
    );
    for host in &fleet.hosts {
        let line = format!("    {} = rbtest@{}:{}", host.name, host.addr, host.port);
        assert!(
            header.iter().any(|l| l.ends_with(&line)),
            "{line:?} not in the header:\n{}",
            out.stderr
        );
    }
    // A step's line says how many, not every name again (a fleet of 50 would fill the screen).
    assert!(
        out.stderr.contains("Hello (hello, on web = 3 hosts)"),
        "{}",
        out.stderr
    );
}
