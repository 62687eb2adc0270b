//! The remote side of the lease run by a local `sh`, as sshd would run it: taking, refusing,
//! breaking and taking back a lease, stale and dead holders, stopping what a dead run left
//! running, and the lease directory's checks.

use super::*;
use std::io::{BufRead, BufReader as StdBufReader};
use std::process::{Child as Process, ChildStdout as ProcessStdout, Command};

/// The remote side run by a local `sh`, as sshd would run it through a login shell.
struct Remote {
    process: Process,
    stdout: StdBufReader<ProcessStdout>,
}

impl Remote {
    fn start(base: &std::path::Path, holder: &Holder, break_lease: bool, path: Option<&str>) -> Remote {
        let json = serde_json::to_string(holder).unwrap();
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(remote_command(&json, break_lease, base.to_str().unwrap()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        if let Some(path) = path {
            cmd.env("PATH", path);
        }
        // As sshd sets it: the account's login shell.
        cmd.env("SHELL", "/usr/bin/fish");
        let mut process = cmd.spawn().unwrap();
        let stdout = StdBufReader::new(process.stdout.take().unwrap());
        Remote { process, stdout }
    }

    /// The holder its answer says it displaced, taking the lease `how`; any other answer fails
    /// the test.
    #[track_caller]
    fn took_over(&mut self, how: How) -> Holder {
        match self.answer() {
            Answer::Taken {
                how: taken,
                previous: Some(previous),
                ..
            } if taken == how => previous,
            other => panic!("{other:?}"),
        }
    }

    /// Takes the lease in `base` for `holder`, not breaking it.
    fn take(base: &std::path::Path, holder: &Holder) -> Remote {
        Remote::start(base, holder, false, None)
    }

    /// The answer, parsed by the same code as over SSH.
    fn answer(&mut self) -> Answer {
        let mut text = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.stdout.read_line(&mut line).unwrap();
            text.push_str(&line);
            if !line.starts_with("RBLEASE stopped") && !line.starts_with("RBLEASE login") {
                break;
            }
        }
        if ["locked", "broken", "reclaimed", "dead", "held "]
            .iter()
            .any(|w| line.contains(w))
        {
            line.clear();
            self.stdout.read_line(&mut line).unwrap();
            text.push_str(&line);
        }
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime
            .block_on(read_answer(
                &mut tokio::io::BufReader::new(text.as_bytes()).lines(),
            ))
            .unwrap_or_else(|| panic!("no answer in {text:?}"))
    }

    /// Says `bye` and closes stdin, as the end of the run does, and waits for the remote
    /// side to let go.
    fn release(mut self) {
        use std::io::Write;
        let mut stdin = self.process.stdin.take().unwrap();
        stdin.write_all(b"bye\n").unwrap();
        drop(stdin);
        assert!(self.process.wait().unwrap().success());
    }

    /// Whether the remote side has ended within 5 s (it was stopped).
    fn ended(&mut self) -> bool {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < until {
            if self.process.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }
}

fn holder(run: &str) -> Holder {
    Holder::me(run, "alice")
}

/// Run `r1`'s lease, taken by another process of that run (pid 1, never this test's).
fn taken_by_another_process_of_r1(base: &std::path::Path) -> Remote {
    let mut first = Remote::take(
        base,
        &Holder {
            pid: 1,
            ..holder("r1")
        },
    );
    first.answer();
    first
}

/// Taken, with nobody before.
fn free(answer: Answer) -> bool {
    matches!(
        answer,
        Answer::Taken {
            how: How::Free,
            previous: None,
            ..
        }
    )
}

fn lease_file(base: &std::path::Path) -> std::path::PathBuf {
    let uid = rustix::process::geteuid().as_raw();
    base.join(format!("runbook-lease-{uid}/lease"))
}

#[test]
fn a_second_take_is_refused_naming_the_first_until_it_lets_go() {
    let base = tempfile::tempdir().unwrap();
    let r1 = holder("r1");
    let mut first = Remote::take(base.path(), &r1);
    let file = lease_file(base.path()).display().to_string();
    assert!(
        matches!(first.answer(), Answer::Taken { how: How::Free, held, previous: None, .. } if held.file == file)
    );
    let mut second = Remote::take(base.path(), &holder("r2"));
    assert_eq!(
        second.answer(),
        Answer::Held {
            file: file.clone(),
            holder: r1
        }
    );
    first.release();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "",
        "a clean release names nobody"
    );
    let mut third = Remote::take(base.path(), &holder("r3"));
    assert!(free(third.answer()));
    third.release();
}

#[test]
fn a_holder_that_died_is_reported_stale() {
    let base = tempfile::tempdir().unwrap();
    let mut first = Remote::take(base.path(), &holder("r1"));
    first.answer();
    // Kill the shell that holds the lease (its pid starts the lease line), as a crash
    // would; its `cat` still holds the flock until its stdin closes.
    let line = std::fs::read_to_string(lease_file(base.path())).unwrap();
    let pid: i32 = line.split(' ').next().unwrap().parse().unwrap();
    // SAFETY: kill(2) on a process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    drop(first);
    let mut next = Remote::take(base.path(), &holder("r2"));
    assert_eq!(next.took_over(How::Free).run, "r1");
    next.release();
}

#[test]
fn a_break_takes_a_new_generation_and_the_displaced_run_goes_on() {
    let base = tempfile::tempdir().unwrap();
    let file = lease_file(base.path());
    let mut first = Remote::take(base.path(), &holder("r1"));
    first.answer();
    let mut breaker = Remote::start(base.path(), &holder("r2"), true, None);
    assert_eq!(breaker.took_over(How::Broken).run, "r1");
    let aside: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("lease.broken-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let mut third = Remote::take(base.path(), &holder("r3"));
    assert!(
        matches!(third.answer(), Answer::Held { holder, .. } if holder.run == "r2"),
        "the lease is the breaker's"
    );
    // The displaced run ends: its file is not the lease, the breaker still holds that.
    first.release();
    assert!(std::fs::read_to_string(&file).unwrap().contains("\"run\":\"r2\""));
    let mut fourth = Remote::take(base.path(), &holder("r4"));
    assert!(matches!(fourth.answer(), Answer::Held { holder, .. } if holder.run == "r2"));
    breaker.release();
    let mut fifth = Remote::take(base.path(), &holder("r5"));
    assert!(free(fifth.answer()));
    let left: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        left.iter().all(|n| n == "lease" || n == "break"),
        "displaced generations are swept once their runs end: {left:?}"
    );
    fifth.release();
}

/// The pid of the shell holding the lease (it starts the lease line).
fn holder_pid(base: &std::path::Path) -> u32 {
    let line = std::fs::read_to_string(lease_file(base)).unwrap();
    line.split(' ').next().unwrap().parse().unwrap()
}

/// Issue 23, item 3: two names of one host in one run (the same holder line) share the
/// lease instead of refusing each other.
#[test]
fn this_very_run_through_another_name_shares_the_lease() {
    let base = tempfile::tempdir().unwrap();
    let me = holder("r1");
    let mut first = Remote::take(base.path(), &me);
    first.answer();
    let mut second = Remote::take(base.path(), &me);
    let pid = holder_pid(base.path());
    assert_eq!(
        second.answer(),
        Answer::Shared(Held {
            pid,
            file: lease_file(base.path()).display().to_string()
        })
    );
    assert!(
        second.process.wait().unwrap().success(),
        "the sharer holds nothing"
    );
    let mut third = Remote::take(base.path(), &holder("r3"));
    assert!(matches!(third.answer(), Answer::Held { holder, .. } if holder.run == "r1"));
    first.release();
}

/// Issue 23, item 1: a resume (the same run id, another process) takes its run's lease
/// back from the earlier process, whose connection died unnoticed by sshd.
#[test]
fn the_same_run_from_another_process_takes_its_lease_back() {
    let base = tempfile::tempdir().unwrap();
    let mut first = taken_by_another_process_of_r1(base.path());
    let mut resumed = Remote::take(base.path(), &holder("r1"));
    assert_eq!(resumed.took_over(How::Reclaimed).pid, 1);
    assert!(first.ended(), "the earlier holder was stopped");
    resumed.release();
}

/// Issue 23, item 1: a holder that sends heartbeats and has been silent for over 30 s is
/// dead (its link died without a FIN); one that sends none (an older `runbook`) is trusted.
#[test]
fn a_holder_silent_past_its_heartbeat_is_taken_for_dead() {
    let back_date = |base: &std::path::Path| {
        let ago = chrono::Utc::now().timestamp() - 60;
        let done = Command::new("touch")
            .arg("-d")
            .arg(format!("@{ago}"))
            .arg(lease_file(base))
            .status()
            .unwrap();
        assert!(done.success());
    };
    let beating = |run: &str| Holder {
        heartbeat: Some(5),
        ..holder(run)
    };
    let base = tempfile::tempdir().unwrap();
    let mut old = Remote::take(base.path(), &holder("old"));
    old.answer();
    back_date(base.path());
    let mut next = Remote::take(base.path(), &beating("r2"));
    assert!(matches!(next.answer(), Answer::Held { holder, .. } if holder.run == "old"));
    old.release();

    let mut first = Remote::take(base.path(), &beating("r1"));
    first.answer();
    // A heartbeat sets the file's time anew: alive.
    back_date(base.path());
    use std::io::Write;
    first.process.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    let fresh = |b: &std::path::Path| {
        let modified = std::fs::metadata(lease_file(b)).unwrap().modified().unwrap();
        modified.elapsed().unwrap_or_default() < std::time::Duration::from_secs(30)
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !fresh(base.path()) {
        assert!(
            std::time::Instant::now() < until,
            "the heartbeat did not touch the lease"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut next = Remote::take(base.path(), &beating("r2"));
    assert!(matches!(next.answer(), Answer::Held { holder, .. } if holder.run == "r1"));
    // Silent: dead, and its shell stopped.
    back_date(base.path());
    let mut after = Remote::take(base.path(), &beating("r3"));
    assert_eq!(after.took_over(How::Dead).run, "r1");
    assert!(first.ended(), "the dead holder's shell was stopped");
    after.release();
}

/// A process group of its own, as a step's on the host.
fn group() -> Process {
    use std::os::unix::process::CommandExt;
    Command::new("sleep").arg("30").process_group(0).spawn().unwrap()
}

/// Ends a group started by `group()`, whatever became of it.
fn end_group(mut group: Process) {
    let _ = group.kill();
    let _ = group.wait();
}

fn alive(pgid: u32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks.
    unsafe { libc::kill(-(pgid as i32), 0) == 0 }
}

/// Issue 23, item 4: a holder that ends without `bye` (its run was killed) leaves the
/// groups its steps still ran in the lease file; the next run stops them before it takes
/// the host, and says so. Ended groups, and a clean release, leave nothing to stop.
#[test]
fn groups_a_dead_run_left_running_are_stopped_before_the_next_take() {
    use std::io::Write;
    let base = tempfile::tempdir().unwrap();
    let (mut left, ended) = (group(), group());
    let mut first = Remote::take(base.path(), &holder("r1"));
    first.answer();
    let stdin = first.process.stdin.as_mut().unwrap();
    write!(stdin, "+{}\n+{}\n-{}\n", left.id(), ended.id(), ended.id()).unwrap();
    drop(first.process.stdin.take());
    assert!(first.ended());
    let mut next = Remote::take(base.path(), &holder("r2"));
    match next.answer() {
        Answer::Taken {
            how: How::Free,
            previous: Some(previous),
            stopped,
            ..
        } => {
            assert_eq!(previous.run, "r1");
            assert_eq!(stopped, [left.id() as i32], "only what still ran as recorded");
        }
        other => panic!("{other:?}"),
    }
    assert!(left.wait().unwrap().code().is_none(), "stopped by a signal");
    assert!(alive(ended.id()), "a group reported ended is not touched");
    next.release();
    let mut third = Remote::take(base.path(), &holder("r3"));
    assert!(matches!(third.answer(), Answer::Taken { previous: None, stopped, .. } if stopped.is_empty()));
    third.release();
    end_group(ended);
}

/// A resume (the same run) takes its lease back but leaves its own earlier commands to
/// the resume's check, which asks the operator.
#[test]
fn a_resume_does_not_stop_its_own_runs_commands() {
    use std::io::Write;
    let base = tempfile::tempdir().unwrap();
    let own = group();
    let mut first = taken_by_another_process_of_r1(base.path());
    writeln!(first.process.stdin.as_mut().unwrap(), "+{}", own.id()).unwrap();
    let mut resumed = Remote::take(base.path(), &holder("r1"));
    assert!(matches!(
        resumed.answer(),
        Answer::Taken { how: How::Reclaimed, stopped, .. } if stopped.is_empty()
    ));
    assert!(alive(own.id()));
    resumed.release();
    end_group(own);
}

#[test]
fn a_symlinked_or_foreign_lease_directory_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let uid = rustix::process::geteuid().as_raw();
    let elsewhere = base.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, base.path().join(format!("runbook-lease-{uid}"))).unwrap();
    let mut remote = Remote::take(base.path(), &holder("r1"));
    match remote.answer() {
        Answer::Unsafe(problem) => assert!(problem.contains("symbolic link"), "{problem}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn the_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let base = tempfile::tempdir().unwrap();
    let mut remote = Remote::take(base.path(), &holder("r1"));
    remote.answer();
    let file = lease_file(base.path());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    assert_eq!(mode(&file), 0o600);
    remote.release();
}

#[test]
fn a_host_without_flock_gets_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    // A PATH with every tool the script uses but `flock`.
    let bin = tempfile::tempdir().unwrap();
    for tool in [
        "sh", "id", "ls", "mkdir", "chmod", "cat", "date", "ln", "mv", "rm", "sleep",
    ] {
        let real = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| std::path::Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap();
        std::os::unix::fs::symlink(real, bin.path().join(tool)).unwrap();
    }
    let base = tempfile::tempdir().unwrap();
    let mut remote = Remote::start(base.path(), &holder("r1"), false, bin.path().to_str());
    assert_eq!(remote.answer(), Answer::NoFlock("is not installed".into()));
    let err = LeaseError::NoFlock {
        host: "db1".into(),
        why: "is not installed".into(),
    };
    assert!(
        err.to_string().starts_with("`flock` is not installed on `db1`"),
        "{err}"
    );

    // One that is there but does not work is not a lock held by someone else.
    let fake = bin.path().join("flock");
    std::fs::write(&fake, "#!/bin/sh\nexit 127\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut remote = Remote::start(base.path(), &holder("r1"), false, bin.path().to_str());
    assert_eq!(remote.answer(), Answer::NoFlock("fails (exit 127)".into()));
}

#[test]
fn the_holder_reaches_the_file_verbatim_whatever_it_contains() {
    let base = tempfile::tempdir().unwrap();
    let odd = Holder::me("r'1 $(touch /tmp/pwned) `x`\n", "o'brien; rm -rf /");
    let mut remote = Remote::take(base.path(), &odd);
    remote.answer();
    let mut second = Remote::take(base.path(), &holder("r2"));
    assert!(matches!(second.answer(), Answer::Held { holder, .. } if holder == odd));
    remote.release();
}

/// The answer names the account's login shell, as sshd set `SHELL`: where it is `sh`, the
/// run's steps skip an `exec sh -c` of their own.
#[test]
fn the_answer_names_the_login_shell() {
    let base = tempfile::tempdir().unwrap();
    let mut first = Remote::take(base.path(), &holder("r1"));
    match first.answer() {
        Answer::Taken { login, .. } => assert_eq!(login.as_deref(), Some("/usr/bin/fish")),
        other => panic!("{other:?}"),
    }
    first.release();
}
