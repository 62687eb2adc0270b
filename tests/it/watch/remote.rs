//! `runbook watch --audit-host` (design §19) against a real sshd as the audit host: a run
//! mirrored there is followed from another machine (another, empty audit dir), each event
//! within a second of its line in the mirrored file, to the seal; ids and prefixes resolved
//! there; an unknown run, an unreachable host; two watchers at once; a dropped connection.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{BOUND, Watcher, book, finished_run, follow_all, trail_time, watch};
use crate::support::audit_host::{dir as audit_host_dir, url};
use crate::support::cmd::{bin, runbook};
use crate::support::sshd::{self, Sshd};
use crate::support::wait;

/// `runbook run --yes` mirrored to `host_dir` in the background; returns once the mirrored
/// trail is there, with it.
fn start_mirrored_run(sshd: &Sshd, audit: &Path, host_dir: &Path, book: &Path) -> (Child, PathBuf) {
    let child = Command::new(bin())
        .arg("--audit-dir")
        .arg(audit)
        .args(["run", "--yes", "--no-sign"])
        .arg(book)
        .args(["--audit-host", &url(sshd, host_dir)])
        .args(sshd.ssh_args())
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RUNBOOK_AUDIT_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut trail = None;
    wait::until(Duration::from_secs(30), "the mirrored trail", || {
        trail = mirrored(host_dir).filter(|t| std::fs::metadata(t).is_ok_and(|m| m.len() > 0));
        trail.is_some()
    });
    (child, trail.unwrap())
}

fn mirrored(host_dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(host_dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
}

/// `runbook watch ARGS --audit-host URL` from `audit`, another machine's (empty) audit dir.
fn watch_remote(sshd: &Sshd, audit: &Path, host_dir: &Path, run: &str) -> Watcher {
    let url = url(sshd, host_dir);
    let ssh = sshd.ssh_args();
    let mut args = vec![run, "--audit-host", &url];
    args.extend(ssh.iter().map(String::as_str));
    watch(audit, &args)
}

/// Processes whose command line holds `needle` (the remote tails of a run: their argument is
/// its trail's name).
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.starts_with("tail ") && cmdline.contains(needle) {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn watch_last_through_the_audit_host_shows_each_step_while_it_runs_within_a_second() {
    let sshd = Sshd::start();
    let (audit, elsewhere, dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let host_dir = audit_host_dir();
    let book = book(dir.path(), 3, "echo step {n}; sleep 2");
    let (mut run, trail) = start_mirrored_run(&sshd, audit.path(), host_dir.path(), &book);
    let mut watchers = [watch_remote(&sshd, elsewhere.path(), host_dir.path(), "last")];
    let lines = follow_all(&trail, &mut watchers);
    let [w] = watchers;
    let late = |shown: Instant, written: Instant| shown.saturating_duration_since(written);
    for n in 1..=3 {
        let step = format!("s{n}");
        let started = w
            .arrival(&format!("{step}: started on local"))
            .unwrap_or_else(|| panic!("{step} started, in:\n{}", w.text()));
        let finished = w
            .arrival(&format!("{step}: ok (exit 0)"))
            .unwrap_or_else(|| panic!("{step} finished, in:\n{}", w.text()));
        let started_there = trail_time(&lines, "step started", Some(&step));
        let finished_there = trail_time(&lines, "step finished", Some(&step));
        assert!(
            started < finished_there,
            "{step}'s start was shown while it ran:\n{}",
            w.text()
        );
        assert!(
            late(started, started_there) <= BOUND,
            "{step} started shown {:?} after its line was on the audit host",
            late(started, started_there)
        );
        assert!(
            late(finished, finished_there) <= BOUND,
            "{step} finished shown late"
        );
        assert!(w.arrival(&format!("┆ step {n}")).is_some(), "{}", w.text());
    }
    let sealed = w.arrival("run resolved after").expect("the verdict");
    assert!(late(sealed, trail_time(&lines, "run finished", None)) <= BOUND);
    let (code, text, stderr) = w.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{text}\n{stderr}");
    assert!(text.contains("Watched (watched) · incident · RTO 5m"), "{text}");
    assert!(text.contains("(RTO 5m: within)"), "{text}");
    assert_eq!(wait::exit(&mut run, Duration::from_secs(30)), Some(0));
    // Read-only: nothing written in the watcher's audit dir; nothing left running there.
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    let id = trail.file_stem().unwrap().to_string_lossy().into_owned();
    wait::until(Duration::from_secs(5), "the remote tail ended", || {
        processes_with(&id).is_empty()
    });
}

#[test]
fn two_watchers_through_the_audit_host_by_last_and_by_prefix_both_end_at_the_seal() {
    let sshd = Sshd::start();
    let (audit, elsewhere, dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let host_dir = audit_host_dir();
    let book = book(dir.path(), 3, "sleep 0.5; echo step {n}");
    let (mut run, trail) = start_mirrored_run(&sshd, audit.path(), host_dir.path(), &book);
    let id = trail.file_stem().unwrap().to_str().unwrap().to_string();
    let mut watchers = [
        watch_remote(&sshd, elsewhere.path(), host_dir.path(), "last"),
        watch_remote(&sshd, elsewhere.path(), host_dir.path(), &id[..id.len() - 2]),
    ];
    follow_all(&trail, &mut watchers);
    let mut texts = Vec::new();
    for w in watchers {
        let (code, text, stderr) = w.finish(Duration::from_secs(10));
        assert_eq!(code, Some(0), "{text}\n{stderr}");
        for n in 1..=3 {
            assert!(text.contains(&format!("s{n}: started on local")), "{text}");
        }
        assert!(text.contains(&format!("run {id} by ")), "{text}");
        assert!(text.contains("run resolved after"), "{text}");
        texts.push(text);
    }
    assert_eq!(texts[0], texts[1], "both saw the same story");
    assert_eq!(wait::exit(&mut run, Duration::from_secs(30)), Some(0));
    // The mirrored trail is the local one: the audit host's copy was only read.
    let local = crate::support::trail::audit_files(audit.path()).pop().unwrap();
    assert_eq!(std::fs::read(&trail).unwrap(), std::fs::read(local).unwrap());
}

#[test]
fn an_unknown_run_on_the_audit_host_is_a_usage_error_and_an_unreachable_one_fails_fast() {
    let sshd = Sshd::start();
    let (audit, elsewhere, dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let host_dir = audit_host_dir();
    let url = url(&sshd, host_dir.path());
    let remote = |run: &str| {
        runbook(["watch", run, "--audit-dir"])
            .arg(elsewhere.path())
            .args(["--audit-host", &url])
            .args(sshd.ssh_args())
    };
    let out = remote("last").expect_code(2);
    assert!(
        out.stderr.contains("`last`: no runs on the audit host"),
        "{}",
        out.stderr
    );
    let missing = format!("{url}/missing");
    let out = runbook(["watch", "last", "--audit-dir"])
        .arg(elsewhere.path())
        .args(["--audit-host", &missing])
        .args(sshd.ssh_args())
        .expect_code(1);
    assert!(
        out.stderr.contains(&format!(
            "cannot list the runs on the audit host {missing}: the directory `{}/missing` cannot be read there",
            host_dir.path().display()
        )),
        "{}",
        out.stderr
    );

    let book = book(dir.path(), 1, "echo step {n}");
    let (mut run, trail) = start_mirrored_run(&sshd, audit.path(), host_dir.path(), &book);
    assert_eq!(wait::exit(&mut run, Duration::from_secs(30)), Some(0));
    let out = remote("20990101T000000Z-nope").expect_code(2);
    assert!(
        out.stderr
            .contains(&format!("no run `20990101T000000Z-nope` on the audit host {url}")),
        "{}",
        out.stderr
    );
    // The environment names the audit host as the flag does; a sealed run is told whole.
    let id = trail.file_stem().unwrap().to_str().unwrap().to_string();
    let out = runbook(["watch", &id, "--audit-dir"])
        .arg(elsewhere.path())
        .args(sshd.ssh_args())
        .env("RUNBOOK_AUDIT_HOST", &url)
        .expect_code(0);
    assert!(out.stdout.contains("run resolved after"), "{}", out.stdout);

    // Nothing listens on this port: refused at once, well within the connect timeout.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    // A path is a local file, whatever the audit host: it is not even contacted.
    let local = crate::support::trail::audit_files(audit.path()).pop().unwrap();
    let out = runbook(["watch"])
        .arg(&local)
        .args([
            "--audit-host",
            &format!("ssh://{}@127.0.0.1:{port}/srv/runs", sshd::USER),
        ])
        .expect_code(0);
    assert!(out.stdout.contains("run resolved after"), "{}", out.stdout);
    let began = Instant::now();
    let out = runbook(["watch", "last", "--audit-dir"])
        .arg(elsewhere.path())
        .args([
            "--audit-host",
            &format!("ssh://{}@127.0.0.1:{port}/srv/runs", sshd::USER),
            "--connect-timeout",
            "3s",
        ])
        .args(sshd.ssh_args())
        .expect_code(1);
    assert!(began.elapsed() < Duration::from_secs(8), "{:?}", began.elapsed());
    assert!(
        out.stderr.contains(&format!(
            "the audit host ssh://{}@127.0.0.1:{port}/srv/runs cannot be reached",
            sshd::USER
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn a_dropped_connection_is_reconnected_and_the_watch_goes_on_from_where_it_was() {
    let sshd = Sshd::start();
    let (audit, elsewhere, dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let host_dir = audit_host_dir();
    let book = book(dir.path(), 3, "sleep 1; echo step {n}");
    let (mut run, trail) = start_mirrored_run(&sshd, audit.path(), host_dir.path(), &book);
    let mut w = watch_remote(&sshd, elsewhere.path(), host_dir.path(), "last");
    wait::until(Duration::from_secs(30), "the watch shows s1 started", || {
        w.collect();
        w.arrival("s1: started on local").is_some()
    });
    // Every connection there dies: the run's mirror and the watch reconnect.
    sshd.kill_connections();
    let mut watchers = [w];
    follow_all(&trail, &mut watchers);
    let [w] = watchers;
    let (code, text, stderr) = w.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{text}\n{stderr}");
    assert!(stderr.contains("reconnected, following on from byte"), "{stderr}");
    for n in 1..=3 {
        assert_eq!(
            text.matches(&format!("s{n}: started on local")).count(),
            1,
            "each event once:\n{text}"
        );
    }
    assert!(text.contains("run resolved after"), "{text}");
    assert_eq!(wait::exit(&mut run, Duration::from_secs(30)), Some(0));
}

#[test]
fn ctrl_c_ends_a_remote_watch_with_130_and_its_tail_on_the_audit_host() {
    let sshd = Sshd::start();
    let (audit, elsewhere, dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let host_dir = audit_host_dir();
    let book = book(dir.path(), 2, "sleep 1.5");
    let (mut run, trail) = start_mirrored_run(&sshd, audit.path(), host_dir.path(), &book);
    let id = trail.file_stem().unwrap().to_string_lossy().into_owned();
    let mut w = watch_remote(&sshd, elsewhere.path(), host_dir.path(), &id);
    wait::until(Duration::from_secs(30), "the watch shows s1 started", || {
        w.collect();
        w.arrival("s1: started on local").is_some()
    });
    assert_eq!(processes_with(&id).len(), 1, "one tail follows it there");
    let pid = nix::unistd::Pid::from_raw(w.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let (code, text, stderr) = w.finish(Duration::from_secs(10));
    assert_eq!(code, Some(130), "{text}\n{stderr}");
    assert!(stderr.contains(&format!("stopped watching {id}")), "{stderr}");
    assert!(!text.contains("run resolved"), "the run had not ended: {text}");
    wait::until(Duration::from_secs(5), "the remote tail ended", || {
        processes_with(&id).is_empty()
    });
    assert_eq!(wait::exit(&mut run, Duration::from_secs(30)), Some(0));
}

#[test]
fn an_audit_host_gone_for_good_ends_the_watch_with_1_naming_it() {
    let mut sshd = Sshd::start();
    let (audit, elsewhere, dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let host_dir = audit_host_dir();
    let book = book(dir.path(), 2, "sleep 1.5");
    let (mut run, _trail) = start_mirrored_run(&sshd, audit.path(), host_dir.path(), &book);
    let mut w = watch_remote(&sshd, elsewhere.path(), host_dir.path(), "last");
    wait::until(Duration::from_secs(30), "the watch shows s1 started", || {
        w.collect();
        w.arrival("s1: started on local").is_some()
    });
    // Listener and connections gone: the reconnection is refused.
    sshd.stop();
    let (code, text, stderr) = w.finish(Duration::from_secs(20));
    assert_eq!(code, Some(1), "{text}\n{stderr}");
    assert!(
        stderr.contains(&format!("lost the audit host {}", url(&sshd, host_dir.path()))),
        "{stderr}"
    );
    assert!(stderr.contains("stopped watching"), "{stderr}");
    // The run itself never stops for it.
    assert_eq!(wait::exit(&mut run, Duration::from_secs(60)), Some(0));
}

#[test]
fn a_trail_that_shrinks_on_the_audit_host_ends_the_watch_with_1() {
    let sshd = Sshd::start();
    let elsewhere = tempfile::tempdir().unwrap();
    let host_dir = audit_host_dir();
    let (_audit, local) = finished_run("true");
    // Put there as the mirror of a run still going would be: no seal yet.
    let unsealed: String = std::fs::read_to_string(&local)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"run finished\""))
        .map(|l| format!("{l}\n"))
        .collect();
    let there = host_dir.path().join(local.file_name().unwrap());
    std::fs::write(&there, &unsealed).unwrap();
    let mut w = watch_remote(&sshd, elsewhere.path(), host_dir.path(), "last");
    wait::until(Duration::from_secs(30), "the watch shows the walk's end", || {
        w.collect();
        w.arrival("walk ended: resolved").is_some()
    });
    std::fs::write(&there, &unsealed[..unsealed.len() / 2]).unwrap();
    let (code, text, stderr) = w.finish(Duration::from_secs(10));
    assert_eq!(code, Some(1), "{text}\n{stderr}");
    assert!(stderr.contains("shrank on the audit host"), "{stderr}");
}
