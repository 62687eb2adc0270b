//! SSH master connections die with `runbook`, however it ends, and the sweep of stale control
//! directories touches only ours. Against the real sshd, with real signals.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use runbook::testing::transport::Transport;

use crate::support::cmd::{bin, runbook};
use crate::support::sshd::Sshd;
use crate::support::wait;

/// A process as /proc shows it.
struct Proc {
    pid: u32,
    ppid: u32,
    pgrp: u32,
    args: Vec<String>,
}

/// Every live (not zombie) process whose argv satisfies `pick`.
fn processes(pick: impl Fn(&[String]) -> bool) -> Vec<Proc> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let (Ok(stat), Ok(cmdline)) = (
            std::fs::read_to_string(format!("/proc/{pid}/stat")),
            std::fs::read(format!("/proc/{pid}/cmdline")),
        ) else {
            continue;
        };
        // After `(comm)`: state, ppid, pgrp.
        let Some(rest) = stat.rfind(')').map(|at| &stat[at + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") || fields.len() < 3 {
            continue;
        }
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if pick(&args) {
            found.push(Proc {
                pid,
                ppid: fields[1].parse().unwrap_or(0),
                pgrp: fields[2].parse().unwrap_or(0),
                args,
            });
        }
    }
    found
}

/// The value after `flag` in `args`.
fn after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// The master connections to `sshd`: `ssh ... -N ... -p PORT`, not the `-O` clients.
fn masters_of(sshd: &Sshd) -> Vec<Proc> {
    let port = sshd.port.to_string();
    processes(|args| {
        args.first().is_some_and(|a| a == "ssh" || a.ends_with("/ssh"))
            && args.iter().any(|a| a == "-N")
            && after(args, "-p") == Some(port.as_str())
    })
}

fn kill(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a process this test started or found for its own sshd.
    unsafe { libc::kill(pid as i32, signal) };
}

/// Regression: after a SIGKILL of `runbook`, its `ssh` master lived on (55 runs in 58, with
/// `-f` and `ControlPersist`). Now it is our child and the kernel ends it with us. Ten runs,
/// each killed while its step is running on the host (after the step's own effect).
#[test]
fn a_killed_run_takes_its_ssh_master_with_it() {
    let sshd = Sshd::start();
    let catalog = tempfile::tempdir().unwrap();
    for round in 0..10 {
        let marker = format!("/tmp/runbook-masters-{}-{round}", std::process::id());
        std::fs::write(
            catalog.path().join("hold.yaml"),
            format!(
                "version: 1\nid: hold\ntitle: Hold\nrto: 1m\ntargets:\n  app: {{}}\nsteps:\n  - id: hold\n    title: Hold\n    run: echo started > {marker}; sleep 30\n  - {{id: done, title: Done, end: resolved}}\n"
            ),
        )
        .unwrap();
        let audit = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin())
            .arg("--dir")
            .arg(catalog.path())
            .arg("--audit-dir")
            .arg(audit.path())
            .args(["run", "hold", "--yes", "--target"])
            .arg(format!("app={}", sshd.dest()))
            .arg("--identity")
            .arg(&sshd.identity)
            .arg("--known-hosts")
            .arg(&sshd.known_hosts)
            .arg("--ssh-config")
            .arg(&sshd.ssh_config)
            .env("NO_COLOR", "1")
            .env_remove("RUNBOOK_AUDIT_DIR")
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait::for_text(Path::new(&marker), "started");
        let masters = masters_of(&sshd);
        assert_eq!(
            masters.len(),
            1,
            "round {round}: one master, found {}",
            masters.len()
        );
        let master = &masters[0];
        let socket = after(&master.args, "-S")
            .expect("the master has a control socket")
            .to_string();

        child.kill().unwrap(); // SIGKILL: no destructor, no signal handler runs
        child.wait().unwrap();
        let alive = || !processes(|args| args.contains(&socket)).is_empty();
        let gone = std::panic::catch_unwind(|| {
            wait::until(Duration::from_secs(5), "the master to die with runbook", || {
                !alive()
            })
        });
        let _ = Command::new("pkill").args(["-f", &marker]).status();
        let _ = std::fs::remove_file(&marker);
        if gone.is_err() {
            kill(master.pid, libc::SIGKILL);
            panic!("round {round}: the ssh master ({socket}) outlived a SIGKILL of runbook");
        }
        assert_eq!(master.ppid, child.id(), "the master is runbook's own child");
        assert_eq!(
            master.pgrp, master.pid,
            "the master has a process group of its own (a Ctrl-C is not delivered to it)"
        );
    }
}

/// A closed connection leaves neither its master nor its control directory.
#[tokio::test]
async fn a_closed_connection_leaves_no_master_and_no_control_dir() {
    let sshd = Sshd::start();
    let t = Transport::connect(&sshd.dest(), &sshd.options()).await.unwrap();
    let Transport::Ssh(ssh) = &t else { unreachable!() };
    let socket = ssh.control_socket().to_path_buf();
    let dir = socket.parent().unwrap().to_path_buf();
    assert_eq!(masters_of(&sshd).len(), 1);
    t.close().await;
    let shown = socket.display().to_string();
    assert!(
        processes(|args| args.contains(&shown)).is_empty(),
        "the master outlived close"
    );
    assert!(!dir.exists(), "{} is left", dir.display());
}

/// The pid of a process that has just ended.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A control directory as a `runbook` whose process is gone left it.
fn stale_dir(parent: &Path, prefix: &str) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .unwrap()
        .keep();
    std::fs::write(dir.join("runbook-owner"), dead_pid().to_string()).unwrap();
    std::fs::write(dir.join("log"), "theirs\n").unwrap();
    dir
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

/// Regression: the sweep of stale masters at connect deleted every `/tmp/rb-*` whose owner
/// file named a dead pid, including other users' directories (and followed links named so).
/// Now only real directories of ours go; ours with a dead owner still do. A `runbook` sweeps
/// once, as its first connection starts: a run of its own, here.
#[test]
fn the_sweep_removes_only_our_own_stale_control_dirs() {
    let sshd = Sshd::start();
    let tmp = Path::new("/tmp");
    let theirs = stale_dir(tmp, "rb-");
    let nobody = uid_of("nobody");
    for path in [theirs.clone(), theirs.join("runbook-owner"), theirs.join("log")] {
        std::os::unix::fs::chown(&path, Some(nobody), Some(nobody)).unwrap();
    }
    let target = stale_dir(tmp, "runbook-sweep-target-");
    let link = tmp.join(format!("rb-link-{}", std::process::id()));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let ours = stale_dir(tmp, "rb-");

    let catalog = tempfile::tempdir().unwrap();
    std::fs::write(
        catalog.path().join("one.yaml"),
        "version: 1\nid: one\ntitle: One\nrto: 1m\ntargets:\n  app: {}\nsteps:\n  - {id: one, title: One, run: \"true\"}\n  - {id: done, title: Done, end: resolved}\n",
    )
    .unwrap();
    let audit = tempfile::tempdir().unwrap();
    runbook(["run"])
        .arg(catalog.path().join("one.yaml"))
        .args(["--yes", "--audit-dir"])
        .arg(audit.path())
        .arg("--target")
        .arg(format!("app={}", sshd.dest()))
        .args(sshd.ssh_args())
        .expect_code(0);

    let kept = |dir: &Path| std::fs::read_to_string(dir.join("log")).ok();
    let (theirs_kept, link_kept, target_kept) = (kept(&theirs), link.is_symlink(), kept(&target));
    let _ = std::fs::remove_dir_all(&theirs);
    let _ = std::fs::remove_file(&link);
    let _ = std::fs::remove_dir_all(&target);
    let ours_left = ours.exists();
    let _ = std::fs::remove_dir_all(&ours);
    assert_eq!(
        theirs_kept.as_deref(),
        Some("theirs\n"),
        "another user's directory was swept"
    );
    assert!(link_kept, "a link named rb-* was swept");
    assert_eq!(
        target_kept.as_deref(),
        Some("theirs\n"),
        "the sweep followed a link"
    );
    assert!(!ours_left, "our own stale directory was not swept");
}
