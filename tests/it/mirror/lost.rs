//! The audit host away (design §19): lost mid-run and back, stalled, down at the start or
//! unreachable: the run goes on, says so once, records it, and the copy is made whole again.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use super::{assert_mirrored, events_named, the_trail, write};
use crate::support::audit_host::{dir as audit_host_dir, url};
use crate::support::cmd::{bin, runbook};
use crate::support::sshd::{self, Sshd};
use crate::support::trail::audit_files;
use crate::support::wait;

const GATED: &str = r#"
version: 1
id: gated
title: Audit host lost and back
rto: 2m
inputs:
  mirror: {description: The audit host's directory}
  gates: {description: Where the test opens the gates}
steps:
  - id: hold
    title: Wait for the first gate
    run: until [ -e "$gates/one" ]; do sleep 0.02; done; echo held
  - id: away
    title: Wait for the second gate
    run: until [ -e "$gates/two" ]; do sleep 0.02; done; echo away
  - id: seen
    title: Wait until my start is on the audit host again
    run: |
      i=0
      until grep '"step started"' "$mirror/$run_id.jsonl" | grep -q '"step":"seen"'; do
        i=$((i + 1)); [ "$i" -lt 1500 ] || exit 9; sleep 0.02
      done
      echo seen
  - id: done
    title: Done
    end: resolved
"#;

#[test]
fn an_audit_host_lost_mid_run_gets_what_it_missed_once_back() {
    let mut sshd = Sshd::start();
    let work = tempfile::tempdir().unwrap();
    let audit = work.path().join("audit");
    let gates = work.path().join("gates");
    fs::create_dir(&gates).unwrap();
    let host_dir = audit_host_dir();
    let file = write(work.path(), "gated.yaml", GATED);
    let stderr_path = work.path().join("stderr");
    let mut child = std::process::Command::new(bin())
        .args([
            "run",
            file.to_str().unwrap(),
            "--yes",
            "--audit-dir",
            audit.to_str().unwrap(),
        ])
        .args(["--audit-host", &url(&sshd, host_dir.path())])
        .args(sshd.ssh_args())
        .args(["--set", &format!("mirror={}", host_dir.path().display())])
        .args(["--set", &format!("gates={}", gates.display())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    // `hold` started, and the audit host has its start: then the host goes away.
    wait::until(Duration::from_secs(30), "`hold` mirrored as started", || {
        audit_files(host_dir.path()).first().is_some_and(|copy| {
            fs::read_to_string(copy)
                .unwrap_or_default()
                .contains("\"step\":\"hold\"")
        })
    });
    sshd.stop();
    fs::write(gates.join("one"), "").unwrap();
    // Its finish cannot be sent: the run says so, loudly, and goes on to `away`.
    wait::for_text(&stderr_path, "is lost");
    sshd.restart();
    fs::write(gates.join("two"), "").unwrap();
    let code = wait::exit(&mut child, Duration::from_secs(60));
    let said = fs::read_to_string(&stderr_path).unwrap();
    assert_eq!(code, Some(0), "{said}");
    assert_eq!(said.matches("is lost").count(), 1, "said once: {said}");
    let (trail, _) = the_trail(&audit);
    let events = fs::read_to_string(&trail).unwrap();
    assert_eq!(events_named(&trail, "mirror lost"), 1, "{events}");
    assert_eq!(events_named(&trail, "mirror caught up"), 1, "{events}\n{said}");
    assert_mirrored(&audit, host_dir.path());
}

#[test]
fn an_audit_host_unreachable_from_the_start_costs_a_warning() {
    let work = tempfile::tempdir().unwrap();
    let audit = work.path().join("audit");
    let file = write(
        work.path(),
        "plain.yaml",
        "version: 1\nid: plain\ntitle: Plain\nrto: 1m\nsteps:\n  - {id: one, title: One, run: echo one}\n  - {id: done, title: Done, end: resolved}\n",
    );
    let port = crate::support::http::closed_port();
    let out = runbook([
        "run",
        file.to_str().unwrap(),
        "--yes",
        "--audit-dir",
        audit.to_str().unwrap(),
    ])
    .env(
        "RUNBOOK_AUDIT_HOST",
        format!("ssh://nobody@127.0.0.1:{port}/srv/runs"),
    )
    .expect_code(0);
    assert_eq!(
        out.stderr.matches("the run starts anyway").count(),
        1,
        "one warning: {}",
        out.stderr
    );
    let (trail, _) = the_trail(&audit);
    assert_eq!(events_named(&trail, "mirror lost"), 1);
    assert_eq!(events_named(&trail, "run finished"), 1);
    // The trail still opens with its start, and verifies.
    let first = crate::support::trail::events(&trail).remove(0);
    assert_eq!(first["event"], "run started");
    runbook(["audit", "verify", trail.to_str().unwrap()]).expect_code(0);
}

const STALLED: &str = r#"
version: 1
id: stalled
title: Audit host stalled
rto: 2m
inputs:
  gates: {description: Where the test opens the gate}
steps:
  - id: hold
    title: Wait for the gate
    run: until [ -e "$gates/one" ]; do sleep 0.02; done; echo held
  - id: next
    title: Runs although the audit host does not answer
    run: date +%s%3N
  - id: done
    title: Done
    end: resolved
"#;

/// An audit host that stops answering (a frozen link, not a closed one) holds a step's command
/// back at most the bounded acknowledgement, then the mirror is lost and the run goes on.
#[test]
fn a_stalled_audit_host_holds_a_step_back_at_most_its_bound() {
    let sshd = Sshd::start();
    let proxy = crate::support::proxy::Proxy::start(sshd.port);
    let work = tempfile::tempdir().unwrap();
    let audit = work.path().join("audit");
    let gates = work.path().join("gates");
    fs::create_dir(&gates).unwrap();
    let host_dir = audit_host_dir();
    // The server's key under the proxy's address.
    let known_hosts = work.path().join("known_hosts");
    fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {}\n", proxy.port, sshd.host_key),
    )
    .unwrap();
    let file = write(work.path(), "stalled.yaml", STALLED);
    let stderr_path = work.path().join("stderr");
    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        sshd::USER,
        proxy.port,
        host_dir.path().display()
    );
    let mut child = std::process::Command::new(bin())
        .args([
            "run",
            file.to_str().unwrap(),
            "--yes",
            "--audit-dir",
            audit.to_str().unwrap(),
        ])
        .args(["--audit-host", &url, "--identity"])
        .arg(&sshd.identity)
        .arg("--known-hosts")
        .arg(&known_hosts)
        .args(["--set", &format!("gates={}", gates.display())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    wait::until(Duration::from_secs(30), "`hold` mirrored as started", || {
        audit_files(host_dir.path()).first().is_some_and(|copy| {
            fs::read_to_string(copy)
                .unwrap_or_default()
                .contains("\"step\":\"hold\"")
        })
    });
    proxy.stall();
    fs::write(gates.join("one"), "").unwrap();
    let code = wait::exit(&mut child, Duration::from_secs(60));
    let said = fs::read_to_string(&stderr_path).unwrap();
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("is lost"), "{said}");
    let (trail, run) = the_trail(&audit);
    assert_eq!(events_named(&trail, "mirror lost"), 1);
    // `next` ran within the bound of its start (2 s, with room for a slow machine).
    let started = crate::support::trail::events(&trail)
        .into_iter()
        .find(|e| e["event"] == "step started" && e["step"] == "next")
        .expect("`next` started");
    let started_ms = chrono::DateTime::parse_from_rfc3339(started["ts"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    let output = fs::read_dir(audit.join(&run))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("next"))
        .expect("`next`'s output");
    let ran_ms: i64 = fs::read_to_string(output).unwrap().trim().parse().unwrap();
    let held = ran_ms - started_ms;
    assert!((0..3500).contains(&held), "`next` ran {held} ms after its start");
}

const LATE: &str = r#"
version: 1
id: late
title: Audit host back after the start
rto: 2m
inputs:
  mirror: {description: The audit host's directory}
steps:
  - id: seen
    title: Wait until my start is on the audit host
    run: |
      i=0
      until grep '"step started"' "$mirror/$run_id.jsonl" 2>/dev/null | grep -q '"step":"seen"'; do
        i=$((i + 1)); [ "$i" -lt 1500 ] || exit 9; sleep 0.02
      done
      echo seen
  - id: done
    title: Done
    end: resolved
"#;

/// An audit host down when the run starts and up a moment later gets the whole trail, from
/// its first byte, and the run records that it caught up.
#[test]
fn an_audit_host_down_at_the_start_gets_the_whole_trail_once_up() {
    let mut sshd = Sshd::start();
    sshd.stop();
    let work = tempfile::tempdir().unwrap();
    let audit = work.path().join("audit");
    let host_dir = audit_host_dir();
    let file = write(work.path(), "late.yaml", LATE);
    let stderr_path = work.path().join("stderr");
    let mut child = std::process::Command::new(bin())
        .args([
            "run",
            file.to_str().unwrap(),
            "--yes",
            "--audit-dir",
            audit.to_str().unwrap(),
        ])
        .args(["--audit-host", &url(&sshd, host_dir.path())])
        .args(sshd.ssh_args())
        .args(["--set", &format!("mirror={}", host_dir.path().display())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    wait::for_text(&stderr_path, "cannot be reached");
    sshd.restart();
    let code = wait::exit(&mut child, Duration::from_secs(60));
    let said = fs::read_to_string(&stderr_path).unwrap();
    assert_eq!(code, Some(0), "{said}");
    let (trail, _) = the_trail(&audit);
    assert_eq!(events_named(&trail, "mirror lost"), 1, "{said}");
    assert_eq!(events_named(&trail, "mirror caught up"), 1, "{said}");
    assert_mirrored(&audit, host_dir.path());
}
