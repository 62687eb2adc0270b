//! `runbook run` over SSH against a real `sshd` on 127.0.0.1: unattended walks with branches,
//! retries, captures and `call`; host keys checked before anything runs; a hung remote command
//! killed on the server at its timeout.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::cmd::{Run, runbook};
use crate::support::sshd::Sshd;

const MAIN: &str = r#"
version: 1
id: remote-main
title: Remote walk
rto: 2m
inputs:
  scratch: {description: A scratch directory on the host, default: /tmp/rb-remote}
  service: {description: Passed on to the sub-run, default: api}
targets:
  app: {description: The application host}
steps:
  - id: whoami
    title: Who runs the commands
    run: id -un
    capture: remote_user
  - id: prepare
    title: Prepare a scratch directory
    run: rm -rf "$scratch" && mkdir -p "$scratch" && echo 0 > "$scratch/tries"
  - id: flaky
    title: Succeeds on the second try
    run: |
      n=$(( $(cat "$scratch/tries") + 1 )); echo $n > "$scratch/tries"
      echo "attempt $n on $(hostname)"
      [ "$n" -ge 2 ]
    retry: {attempts: 3, delay: 200ms}
  - id: route
    title: Route on the remote user
    choose:
      - {label: As rbtest, goto: restart, when: {var: remote_user, equals: rbtest}}
      - {label: Someone else, goto: escalate}
  - id: restart
    title: Restart {{ service }} through the rollback runbook
    call: remote-sub
    with: {service: "{{ service }}", scratch: "{{ scratch }}"}
    on_failure: escalate
  - id: check
    title: Check the sub-run's mark
    run: cat "$scratch/restarted"
    expect: {stdout: '^restarted api by rbtest$'}
  - id: done
    title: Done
    end: resolved
  - id: escalate
    title: Escalate
    end: escalated
"#;

const SUB: &str = r#"
version: 1
id: remote-sub
title: Restart a service
rto: 1m
inputs:
  service: {description: The service}
  scratch: {description: Where to leave a mark}
targets:
  app: {description: The application host}
steps:
  - id: restart
    title: Restart {{ service }}
    run: echo "restarted $service by $(id -un)" > "$scratch/restarted"
  - id: done
    title: Done
    end: resolved
"#;

struct Catalog {
    dir: tempfile::TempDir,
    audit: tempfile::TempDir,
}

fn catalog(files: &[(&str, &str)]) -> Catalog {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    Catalog {
        dir,
        audit: tempfile::tempdir().unwrap(),
    }
}

/// `runbook run ID --yes` bound to the fixture's sshd with its key and known_hosts.
fn run_on(sshd: &Sshd, cat: &Catalog, id: &str, known_hosts: &Path) -> Run {
    runbook(["--dir"])
        .arg(cat.dir.path())
        .arg("--audit-dir")
        .arg(cat.audit.path())
        .args(["run", id, "--yes", "--target"])
        .arg(format!("app={}", sshd.dest()))
        .arg("--identity")
        .arg(&sshd.identity)
        .arg("--known-hosts")
        .arg(known_hosts)
        .arg("--ssh-config")
        .arg(&sshd.ssh_config)
}

fn audit_file(dir: &Path) -> Option<std::path::PathBuf> {
    crate::support::trail::audit_files(dir).pop()
}

/// `sleep N.<pid>`: a command line no other test process on this machine runs (a fixed one
/// was seen by another test run's `pgrep`, in a second checkout tested beside this one).
fn sleep_of(seconds: u32) -> String {
    format!("sleep {seconds}.{}", std::process::id())
}

fn pgrep(pattern: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn unattended_walk_over_ssh_with_branches_retries_captures_and_call() {
    let sshd = Sshd::start();
    let cat = catalog(&[("main.yaml", MAIN), ("sub.yaml", SUB)]);
    let scratch = format!("/tmp/rb-remote-{}", std::process::id());
    let out = run_on(&sshd, &cat, "remote-main", &sshd.known_hosts)
        .arg("--set")
        .arg(format!("scratch={scratch}"))
        .expect_code(0);
    assert!(out.stderr.contains("attempt 2 on"), "{}", out.stderr);
    assert!(
        out.stderr.contains("decided \"As rbtest\" → restart"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("restart/restart: ok"), "{}", out.stderr);
    assert!(out.stderr.contains("run resolved"), "{}", out.stderr);
    let file = audit_file(cat.audit.path()).expect("an audit file");
    runbook(["audit", "verify"]).arg(&file).expect_code(0);
    let trail = std::fs::read_to_string(&file).unwrap();
    assert!(
        trail.contains(&format!("\"host\":\"{}\"", sshd.dest())),
        "{trail}"
    );
    let _ = std::fs::remove_dir_all(scratch);
}

#[test]
fn a_changed_host_key_is_refused_before_anything_runs() {
    let sshd = Sshd::start();
    let marker = format!("/tmp/rb-hostkey-marker-{}", std::process::id());
    let text = format!(
        "version: 1\nid: touch\ntitle: Touch\nrto: 1m\ntargets:\n  app: {{}}\nsteps:\n  - id: touch\n    title: Touch\n    run: touch {marker}\n  - id: done\n    title: Done\n    end: resolved\n"
    );
    let cat = catalog(&[("touch.yaml", &text)]);
    let other = crate::support::sshd::keygen(cat.dir.path(), "impostor");
    let impostor = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let impostor: Vec<&str> = impostor.split_whitespace().take(2).collect();
    let known = cat.dir.path().join("known_hosts");
    std::fs::write(
        &known,
        format!("[127.0.0.1]:{} {}\n", sshd.port, impostor.join(" ")),
    )
    .unwrap();
    let out = run_on(&sshd, &cat, "touch", &known).expect_code(2);
    assert!(out.stderr.contains("nothing was run"), "{}", out.stderr);
    assert!(out.stderr.to_lowercase().contains("host key"), "{}", out.stderr);
    assert!(
        !Path::new(&marker).exists(),
        "the command ran despite a changed host key"
    );
    assert!(audit_file(cat.audit.path()).is_none(), "no run was started");
    // --accept-new-host-keys never accepts a changed key.
    let out = run_on(&sshd, &cat, "touch", &known)
        .arg("--accept-new-host-keys")
        .expect_code(2);
    assert!(out.stderr.to_lowercase().contains("host key"), "{}", out.stderr);
    assert!(!Path::new(&marker).exists());
}

#[test]
fn a_hung_remote_command_is_killed_on_the_server_at_its_timeout() {
    let sshd = Sshd::start();
    let marker = format!("rb-hung-marker-{}", std::process::id());
    let text = format!(
        "version: 1\nid: hung\ntitle: Hung\nrto: 1m\ntargets:\n  app: {{}}\nsteps:\n  - id: hang\n    title: Hang\n    run: sleep 300; echo {marker}\n    timeout: 1s\n    on_failure: escalate\n  - id: done\n    title: Done\n    end: resolved\n  - id: escalate\n    title: Escalate\n    end: escalated\n"
    );
    let cat = catalog(&[("hung.yaml", &text)]);
    let start = Instant::now();
    let out = run_on(&sshd, &cat, "hung", &sshd.known_hosts).expect_code(3);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the timeout did not stop the step"
    );
    assert!(out.stderr.contains("hang: timeout"), "{}", out.stderr);
    assert!(out.stderr.contains("run escalated"), "{}", out.stderr);
    let gone = Instant::now() + Duration::from_secs(10);
    while pgrep(&marker) {
        assert!(Instant::now() < gone, "the remote command outlived its timeout");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_connection_lost_mid_step_is_lost_never_ok() {
    let sshd = Sshd::start();
    // An odd duration names this test's remote process for pgrep.
    let sleep = sleep_of(20);
    let text = format!(
        "version: 1\nid: lost\ntitle: Lost\nrto: 1m\ntargets:\n  app: {{}}\nsteps:\n  - id: slow\n    title: Slow\n    run: echo begun; {sleep}\n  - id: done\n    title: Done\n    end: resolved\n"
    );
    let text = text.as_str();
    let cat = catalog(&[("lost.yaml", text)]);
    let child = std::thread::scope(|scope| {
        let handle = scope.spawn(|| run_on(&sshd, &cat, "lost", &sshd.known_hosts).output());
        // Wait for the step to be running, then cut the connection under it.
        crate::support::trail::wait_for_started(cat.audit.path());
        std::thread::sleep(Duration::from_millis(300));
        sshd.kill_connections();
        handle.join().unwrap()
    });
    assert_eq!(child.code, Some(1), "{}", child.stderr);
    assert!(child.stderr.contains("slow: lost"), "{}", child.stderr);
    assert!(child.stderr.contains("outcome is unknown"), "{}", child.stderr);
    let trail = std::fs::read_to_string(audit_file(cat.audit.path()).unwrap()).unwrap();
    let outcomes: Vec<String> = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "step finished" && e["step"] == "slow")
        .map(|e| e["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["lost"], "{trail}");
    assert!(
        trail.contains("\"reconnected\":true"),
        "the host answered again: {trail}"
    );
    // Reconnected, the tool found the step's process group still running there and, with
    // nobody to ask, stopped it: a retry can never run beside it.
    let checked: Vec<serde_json::Value> = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "remote group checked")
        .collect();
    assert_eq!(checked.len(), 1, "{trail}");
    assert_eq!(
        (&checked[0]["alive"], &checked[0]["stopped"]),
        (&true.into(), &true.into())
    );
    assert!(!pgrep(&sleep), "the remote command outlived the lost connection");
    // The run is not sealed as final: it is resumable (here it needs a person, the step not
    // being idempotent).
    let file = audit_file(cat.audit.path()).unwrap();
    runbook(["audit", "verify"]).arg(&file).expect_code(4);
    assert!(child.stderr.contains("runbook resume "), "{}", child.stderr);
    let out = runbook(["resume"])
        .arg(&file)
        .args(["--yes", "--identity"])
        .arg(&sshd.identity)
        .arg("--known-hosts")
        .arg(&sshd.known_hosts)
        .arg("--ssh-config")
        .arg(&sshd.ssh_config)
        .arg("--audit-dir")
        .arg(cat.audit.path())
        .expect_code(3);
    assert!(out.stderr.contains("its outcome is unknown"), "{}", out.stderr);
}

#[test]
fn a_host_key_trusted_on_first_use_is_recorded() {
    let sshd = Sshd::start();
    let text = "version: 1\nid: tofu\ntitle: Tofu\nrto: 1m\ntargets:\n  app: {}\nsteps:\n  - id: look\n    title: Look\n    run: 'true'\n  - id: done\n    title: Done\n    end: resolved\n";
    let cat = catalog(&[("tofu.yaml", text)]);
    let known = cat.dir.path().join("known_hosts");
    std::fs::write(&known, "").unwrap();
    let out = run_on(&sshd, &cat, "tofu", &known).expect_code(2);
    assert!(
        out.stderr.contains("--accept-new-host-keys"),
        "strict by default: {}",
        out.stderr
    );
    run_on(&sshd, &cat, "tofu", &known)
        .arg("--accept-new-host-keys")
        .expect_code(0);
    let trail = std::fs::read_to_string(audit_file(cat.audit.path()).unwrap()).unwrap();
    assert!(trail.contains("\"accept_new_host_keys\":true"), "{trail}");
    assert!(trail.contains("\"host_key_added\":"), "{trail}");
    assert!(std::fs::read_to_string(&known).unwrap().contains(&sshd.host_key));
    // The key trusted on first use is recorded by its fingerprint, as is the client's key.
    let fingerprint = |key: &Path| {
        let out = std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(key)
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let host = fingerprint(&sshd.dir.path().join("hostkey.pub"));
    assert!(
        trail.contains(&format!("\"host_key\":\"ssh-ed25519 {host}\"")),
        "{host}: {trail}"
    );
    let client = fingerprint(&sshd.identity);
    assert!(trail.contains(&format!("\"client_key\":\"{client}\"")), "{trail}");
}

/// A link that stalls mid-step (nothing answers, nothing closes) is noticed by the keepalives
/// within 10 s (2 s probes, 3 missed: 6-8 s), the step is lost, the tool reconnects and stops
/// the command still running on the host, and the trail stays open for resume.
#[test]
fn a_stalled_link_is_noticed_within_ten_seconds_and_the_remote_command_stopped() {
    let sshd = Sshd::start();
    let proxy = crate::support::proxy::Proxy::start(sshd.port);
    let sleep = sleep_of(30);
    let text = format!(
        "version: 1\nid: stall\ntitle: Stall\nrto: 1m\ntargets:\n  app: {{}}\nsteps:\n  - id: slow\n    title: Slow\n    run: echo begun; {sleep}\n  - id: done\n    title: Done\n    end: resolved\n"
    );
    let text = text.as_str();
    let cat = catalog(&[("stall.yaml", text)]);
    let known = cat.dir.path().join("known_hosts");
    std::fs::write(&known, format!("[127.0.0.1]:{} {}\n", proxy.port, sshd.host_key)).unwrap();
    let dest = format!("{}@127.0.0.1:{}", crate::support::sshd::USER, proxy.port);
    let run = runbook(["--dir"])
        .arg(cat.dir.path())
        .arg("--audit-dir")
        .arg(cat.audit.path())
        .args(["run", "stall", "--yes", "--target"])
        .arg(format!("app={dest}"))
        .arg("--identity")
        .arg(&sshd.identity)
        .arg("--known-hosts")
        .arg(&known)
        .arg("--ssh-config")
        .arg(&sshd.ssh_config);
    let (out, stalled_at) = std::thread::scope(|scope| {
        let handle = scope.spawn(|| run.output());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !pgrep(&sleep) {
            assert!(Instant::now() < deadline, "the remote command never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        let stalled_at = chrono::Utc::now();
        proxy.stall();
        (handle.join().unwrap(), stalled_at)
    });
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let trail = std::fs::read_to_string(audit_file(cat.audit.path()).unwrap()).unwrap();
    let lost = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "step finished" && e["outcome"] == "lost")
        .unwrap_or_else(|| panic!("no lost step: {trail}"));
    let noticed = chrono::DateTime::parse_from_rfc3339(lost["ts"].as_str().unwrap()).unwrap();
    let took = (noticed.with_timezone(&chrono::Utc) - stalled_at).num_milliseconds();
    assert!(took <= 10_000, "the stall was noticed after {took} ms");
    assert!(trail.contains("\"event\":\"remote group checked\""), "{trail}");
    // Issue 23, item 10: while the reconnect waits, the operator knows it does, and how long.
    assert!(
        out.stderr.contains("lost: reconnecting (giving up after 10s)..."),
        "{}",
        out.stderr
    );
    // Stopped (a signal sent to its group, recorded above): gone once the kernel has reaped it.
    let gone = Instant::now() + Duration::from_secs(5);
    while pgrep(&sleep) {
        if Instant::now() >= gone {
            let ps = std::process::Command::new("sh")
                .args(["-c", "ps -eo pid,ppid,pgid,sid,stat,lstart,cmd | grep -E 'sleep 30|sshd|lease' | grep -v grep | cut -c1-200"])
                .output()
                .unwrap();
            panic!(
                "the remote command still runs after the stalled link:\n{}\n{trail}\n{}",
                String::from_utf8_lossy(&ps.stdout),
                out.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!trail.contains("\"run finished\""), "not sealed: resumable");
}

/// The header names where each role really acts (`user@host:port` as ssh resolves it, with the
/// inventory's `env` as a badge), and the runbook's description and links, before any step.
#[test]
fn the_header_shows_the_resolved_destination_its_env_and_the_runbooks_links() {
    let sshd = Sshd::start();
    let text = "version: 1\nid: where\ntitle: Where\ndescription: Restarts the API when it is down.\nlinks:\n  - {title: Dashboard, url: 'https://grafana.example/d/api'}\nrto: 1m\ntargets:\n  app: {}\nsteps:\n  - id: hello\n    title: Hello\n    run: echo hello\n  - id: done\n    title: Done\n    end: resolved\n";
    let cat = catalog(&[("where.yaml", text)]);
    let inventory = cat.dir.path().join("inventory.yaml");
    std::fs::write(
        &inventory,
        format!("hosts:\n  prod-api:\n    ssh: {}\n    env: prod\n", sshd.dest()),
    )
    .unwrap();
    let out = runbook(["--dir"])
        .arg(cat.dir.path())
        .arg("--audit-dir")
        .arg(cat.audit.path())
        .args(["run", "where", "--yes", "--target", "app=prod-api", "--inventory"])
        .arg(&inventory)
        .arg("--identity")
        .arg(&sshd.identity)
        .arg("--known-hosts")
        .arg(&sshd.known_hosts)
        .arg("--ssh-config")
        .arg(&sshd.ssh_config)
        .env("TERM", "dumb")
        .expect_code(0);
    let err = &out.stderr;
    let header = &err[..err.find("[1/2]").expect(err)];
    assert!(
        header.contains(&format!("target app: prod-api → {}  PROD ", sshd.dest())),
        "{header}"
    );
    assert!(header.contains("Restarts the API when it is down."), "{header}");
    assert!(
        header.contains("link: Dashboard <https://grafana.example/d/api>"),
        "{header}"
    );
    assert!(
        err.contains(&format!("(hello, on prod-api = {}  PROD )", sshd.dest())),
        "{err}"
    );
}

/// Regression: an `~/.ssh/config` alias whose `Port` is not 22 was reported unreachable on
/// "port 22", the one port it does not use; the message now names the port (and address) ssh
/// really tried, as `ssh -G` resolves the alias.
#[test]
fn an_alias_to_a_closed_port_is_reported_at_that_port() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let cat = catalog(&[(
        "touch.yaml",
        "version: 1\nid: touch\ntitle: Touch\nrto: 1m\ntargets:\n  app: {}\nsteps:\n  - {id: touch, title: Touch, run: \"true\"}\n  - {id: done, title: Done, end: resolved}\n",
    )]);
    let config = cat.dir.path().join("ssh_config");
    std::fs::write(
        &config,
        format!("Host closed-alias\n  HostName 127.0.0.1\n  Port {closed}\n  User rbtest\n"),
    )
    .unwrap();
    let known = cat.dir.path().join("known_hosts");
    std::fs::write(&known, "").unwrap();
    let out = runbook(["--dir"])
        .arg(cat.dir.path())
        .arg("--audit-dir")
        .arg(cat.audit.path())
        .args([
            "run",
            "touch",
            "--yes",
            "--target",
            "app=closed-alias",
            "--ssh-config",
        ])
        .arg(&config)
        .arg("--known-hosts")
        .arg(&known)
        .expect_code(2);
    let want = format!(
        "  closed-alias: connection refused by closed-alias (127.0.0.1) port {closed}: is sshd running there, and is the port right?\n"
    );
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    assert!(!out.stderr.contains("port 22"), "{}", out.stderr);
    assert!(audit_file(cat.audit.path()).is_none(), "no run was started");
}

/// An alias of a host whose key is unknown: the hint's `ssh-keyscan` (which reads no ssh
/// config) names the address and port the alias stands for, not the alias.
#[test]
fn an_unknown_host_key_behind_an_alias_names_its_address_and_port() {
    let sshd = Sshd::start();
    let cat = catalog(&[(
        "touch.yaml",
        "version: 1\nid: touch\ntitle: Touch\nrto: 1m\ntargets:\n  app: {}\nsteps:\n  - {id: touch, title: Touch, run: \"true\"}\n  - {id: done, title: Done, end: resolved}\n",
    )]);
    let known = cat.dir.path().join("known_hosts");
    std::fs::write(&known, "").unwrap();
    let out = runbook(["--dir"])
        .arg(cat.dir.path())
        .arg("--audit-dir")
        .arg(cat.audit.path())
        .args(["run", "touch", "--yes", "--target"])
        .arg(format!("app={}", crate::support::sshd::ALIAS))
        .arg("--ssh-config")
        .arg(&sshd.ssh_config)
        .arg("--known-hosts")
        .arg(&known)
        .expect_code(2);
    assert!(
        out.stderr
            .contains(&format!("[127.0.0.1]:{} is not in", sshd.port)),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("ssh-keyscan -p {} 127.0.0.1", sshd.port)),
        "{}",
        out.stderr
    );
}

/// Issue 23, item 1: a link that dies without a FIN leaves the run's lease held on the host by
/// a shell sshd never hears about. `resume` recognises its own run there and takes the lease
/// back (recorded), instead of refusing "in use by another run: run <its own id>".
#[test]
fn resume_after_a_dead_link_takes_back_its_own_lease() {
    let sshd = Sshd::start();
    let proxy = crate::support::proxy::Proxy::start(sshd.port);
    let mark = format!("/tmp/rb-dead-link-{}", std::process::id());
    let sleep = sleep_of(31);
    let _ = std::fs::remove_file(&mark);
    let text = format!(
        "version: 1\nid: deadlink\ntitle: Dead link\nrto: 5m\ntargets:\n  app: {{}}\nsteps:\n  - id: slow\n    title: Slow\n    idempotent: true\n    run: if [ -e {mark} ]; then echo again; exit 0; fi; touch {mark}; {sleep}\n  - id: done\n    title: Done\n    end: resolved\n"
    );
    let cat = catalog(&[("deadlink.yaml", &text)]);
    let known = cat.dir.path().join("known_hosts");
    std::fs::write(&known, format!("[127.0.0.1]:{} {}\n", proxy.port, sshd.host_key)).unwrap();
    let dest = format!("{}@127.0.0.1:{}", crate::support::sshd::USER, proxy.port);
    let ssh = |run: crate::support::cmd::Run| {
        run.arg("--identity")
            .arg(&sshd.identity)
            .arg("--known-hosts")
            .arg(&known)
            .arg("--ssh-config")
            .arg(&sshd.ssh_config)
    };
    let run = ssh(runbook(["--dir"])
        .arg(cat.dir.path())
        .arg("--audit-dir")
        .arg(cat.audit.path())
        .args(["run", "deadlink", "--yes", "--target"])
        .arg(format!("app={dest}")));
    let out = std::thread::scope(|scope| {
        let handle = scope.spawn(|| run.output());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !pgrep(&sleep) {
            assert!(Instant::now() < deadline, "the remote command never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy.stall();
        handle.join().unwrap()
    });
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let file = audit_file(cat.audit.path()).unwrap();
    let resumed = ssh(runbook(["--dir"])
        .arg(cat.dir.path())
        .arg("--audit-dir")
        .arg(cat.audit.path())
        .args(["resume", file.to_str().unwrap(), "--yes"]))
    .output();
    let _ = std::fs::remove_file(&mark);
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    assert!(
        resumed.stderr.contains("took back this run's own lease"),
        "{}",
        resumed.stderr
    );
    let taken = crate::support::trail::events(&file)
        .into_iter()
        .filter(|e| e["event"] == "lock taken" && e["how"] == "reclaimed")
        .count();
    assert_eq!(taken, 1, "the take-over is recorded once");
    runbook(["audit", "verify"]).arg(&file).expect_code(0);
}

/// Issue 23, item 3: two roles bound to two names of one machine and account (an alias of
/// `~/.ssh/config` and the address it stands for) share the run's one lease there, and the
/// header says so; before, the run refused itself as "another run".
#[test]
fn two_names_of_one_host_share_the_runs_lease() {
    let sshd = Sshd::start();
    let text = "version: 1\nid: twonames\ntitle: Two names\nrto: 1m\ntargets:\n  app: {}\n  db: {}\nsteps:\n  - id: a\n    title: On app\n    target: app\n    run: echo on-app\n  - id: b\n    title: On db\n    target: db\n    run: echo on-db\n  - id: done\n    title: Done\n    end: resolved\n";
    let cat = catalog(&[("twonames.yaml", text)]);
    let out = run_on(&sshd, &cat, "twonames", &sshd.known_hosts)
        .arg("--target")
        .arg(format!("db={}", crate::support::sshd::ALIAS))
        .expect_code(0);
    assert!(
        out.stderr
            .contains("are one host (the same machine and account): one lease serves both"),
        "{}",
        out.stderr
    );
    let file = audit_file(cat.audit.path()).unwrap();
    let events = crate::support::trail::events(&file);
    let shared: Vec<_> = events.iter().filter(|e| e["event"] == "lease shared").collect();
    assert_eq!(shared.len(), 1, "{events:?}");
    let names = [
        shared[0]["host"].as_str().unwrap(),
        shared[0]["with"].as_str().unwrap(),
    ];
    assert!(names.contains(&crate::support::sshd::ALIAS), "{names:?}");
    assert!(names.contains(&sshd.dest().as_str()), "{names:?}");
    runbook(["audit", "verify"]).arg(&file).expect_code(0);
}

/// Issue 23, item 4: a run killed (SIGKILL) during a remote command leaves it running on the
/// host; the next run stops it before it takes the host, instead of working beside it, and
/// records what it stopped.
#[test]
fn the_next_run_stops_what_a_killed_run_left_running() {
    let sshd = Sshd::start();
    let sleep = sleep_of(40);
    let text = format!(
        "version: 1\nid: leftover\ntitle: Leftover\nrto: 1m\ntargets:\n  app: {{}}\nsteps:\n  - id: slow\n    title: Slow\n    run: {sleep}\n  - id: done\n    title: Done\n    end: resolved\n"
    );
    let check = format!(
        "version: 1\nid: after\ntitle: After\nrto: 1m\ntargets:\n  app: {{}}\nsteps:\n  - id: look\n    title: Look\n    run: if pgrep -f '{sleep}' >/dev/null; then echo beside; exit 1; fi; echo alone\n  - id: done\n    title: Done\n    end: resolved\n"
    );
    let cat = catalog(&[("leftover.yaml", &text), ("after.yaml", &check)]);
    let run = |id: &str| {
        std::process::Command::new(crate::support::cmd::bin())
            .arg("--dir")
            .arg(cat.dir.path())
            .arg("--audit-dir")
            .arg(cat.audit.path())
            .args(["run", id, "--yes", "--target"])
            .arg(format!("app={}", sshd.dest()))
            .args(sshd.ssh_args())
            .env("NO_COLOR", "1")
            .env_remove("SSH_AUTH_SOCK")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = run("leftover");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pgrep(&sleep) {
        assert!(Instant::now() < deadline, "the remote command never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The lease hears of the step's group as it starts, and keeps it in its file.
    let lease = sshd.dir.path().join(format!(
        "leases/runbook-lease-{}/lease",
        crate::support::sshd::uid(crate::support::sshd::USER)
    ));
    crate::support::wait::until(
        Duration::from_secs(10),
        "the lease lists the step's group",
        || {
            std::fs::read_to_string(&lease).is_ok_and(|t| {
                t.lines()
                    .nth(1)
                    .is_some_and(|l| l.starts_with("running ") && l.len() > 8)
            })
        },
    );
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(pgrep(&sleep), "the killed run's command still runs on the host");
    let out = run_on(&sshd, &cat, "after", &sshd.known_hosts).expect_code(0);
    assert!(out.stderr.contains("alone"), "{}", out.stderr);
    assert!(
        out.stderr.contains("stopped what run ") && out.stderr.contains("left running on"),
        "{}",
        out.stderr
    );
    let file = crate::support::trail::audit_files(cat.audit.path())
        .into_iter()
        .find(|f| f.to_string_lossy().contains("-after-"))
        .unwrap();
    let stopped: Vec<_> = crate::support::trail::events(&file)
        .into_iter()
        .filter(|e| e["event"] == "lock taken" && e.get("stopped").is_some())
        .collect();
    assert_eq!(
        stopped.len(),
        1,
        "the stop is recorded with the lease it came with"
    );
    assert!(
        stopped[0]["previous"]["run"]
            .as_str()
            .unwrap()
            .contains("-leftover-")
    );
}
