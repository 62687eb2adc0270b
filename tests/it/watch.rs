//! `runbook watch` (design §19) against real runs: a second process follows the first's trail
//! as it is written, each event within a second of its line, read-only, and ends at the seal.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant, SystemTime};

use crate::support::cmd::{bin, runbook};
use crate::support::trail::audit_files;
use crate::support::wait;

mod remote;

/// A local runbook of `steps` steps, each running `run` (its `{n}` the step's number).
fn book(dir: &Path, steps: usize, run: &str) -> PathBuf {
    let mut text = String::from("version: 1\nid: watched\ntitle: Watched\nrto: 5m\nsteps:\n");
    for n in 1..=steps {
        let run = run.replace("{n}", &n.to_string());
        text.push_str(&format!("  - id: s{n}\n    title: Step {n}\n    run: {run}\n"));
    }
    text.push_str("  - {id: done, title: Done, end: resolved}\n");
    let path = dir.join("watched.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `runbook run --yes` in the background; returns once its trail is on disk, with the trail.
fn start_run(audit: &Path, book: &Path) -> (Child, PathBuf) {
    let child = Command::new(bin())
        .arg("--audit-dir")
        .arg(audit)
        .args(["run", "--yes", "--no-sign"])
        .arg(book)
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut trail = None;
    wait::until(Duration::from_secs(30), "the run's trail", || {
        trail = audit_files(audit)
            .pop()
            .filter(|t| std::fs::metadata(t).is_ok_and(|m| m.len() > 0));
        trail.is_some()
    });
    (child, trail.unwrap())
}

/// A `runbook watch` running, its stdout lines stamped as they arrive.
pub struct Watcher {
    child: Child,
    lines: Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
    ended: bool,
    stderr: std::thread::JoinHandle<String>,
}

fn watch(audit: &Path, args: &[&str]) -> Watcher {
    let mut command = Command::new(bin());
    command
        .arg("--audit-dir")
        .arg(audit)
        .arg("watch")
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUNBOOK_AUDIT_DIR");
    Watcher::spawn(command)
}

impl Watcher {
    /// Starts `command` (a `runbook watch`, as anyone), reading its output as it comes.
    pub fn spawn(mut command: Command) -> Watcher {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Watcher {
            child,
            lines,
            seen: Vec::new(),
            ended: false,
            stderr,
        }
    }

    /// Takes what arrived so far; `ended` once stdout is closed.
    pub fn collect(&mut self) {
        loop {
            match self.lines.try_recv() {
                Ok(line) => self.seen.push(line),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.ended = true;
                    return;
                }
            }
        }
    }

    /// When the first line containing `needle` arrived.
    pub fn arrival(&self, needle: &str) -> Option<Instant> {
        self.seen
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
    }

    pub fn text(&self) -> String {
        self.seen.iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    /// Waits for its exit code and returns it with everything it printed.
    pub fn finish(mut self, limit: Duration) -> (Option<i32>, String, String) {
        let code = wait::exit(&mut self.child, limit);
        wait::until(Duration::from_secs(10), "watch's stdout closed", || {
            self.collect();
            self.ended
        });
        let text = self.text();
        (code, text, self.stderr.join().unwrap())
    }
}

/// The trail's lines as this test saw them appear, each with when it first saw it.
pub fn poll_trail(trail: &Path, seen: &mut Vec<(Instant, String)>) {
    let text = std::fs::read_to_string(trail).unwrap_or_default();
    let now = Instant::now();
    for line in text.split_inclusive('\n').skip(seen.len()) {
        if line.ends_with('\n') {
            seen.push((now, line.to_string()));
        }
    }
}

/// When the trail line of `event` (of step `step`, if given) was first seen.
pub fn trail_time(trail: &[(Instant, String)], event: &str, step: Option<&str>) -> Instant {
    trail
        .iter()
        .find(|(_, l)| {
            l.contains(&format!("\"event\":\"{event}\""))
                && step.is_none_or(|s| l.contains(&format!("\"step\":\"{s}\"")))
        })
        .unwrap_or_else(|| panic!("`{event}` {step:?} in the trail"))
        .0
}

/// Follows `watchers` and the trail together until every watcher's output has ended.
pub fn follow_all(trail: &Path, watchers: &mut [Watcher]) -> Vec<(Instant, String)> {
    let mut lines = Vec::new();
    wait::until(Duration::from_secs(60), "every watcher ended", || {
        poll_trail(trail, &mut lines);
        for w in watchers.iter_mut() {
            w.collect();
        }
        watchers.iter().all(|w| w.ended)
    });
    poll_trail(trail, &mut lines);
    lines
}

pub const BOUND: Duration = Duration::from_secs(1);

#[test]
fn watch_last_shows_each_step_while_it_runs_within_a_second_and_ends_at_the_seal() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = book(dir.path(), 3, "echo step {n}; sleep 2");
    let (mut run, trail) = start_run(audit.path(), &book);
    let mut watchers = [watch(audit.path(), &["last"])];
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
        let presented = w
            .arrival(&format!("Step {n} ({step}, on local)"))
            .unwrap_or_else(|| panic!("{step} presented, in:\n{}", w.text()));
        let presented_written = trail_time(&lines, "step presented", Some(&step));
        assert!(
            late(presented, presented_written) <= BOUND,
            "{step} presented shown late"
        );
        let started_written = trail_time(&lines, "step started", Some(&step));
        let finished_written = trail_time(&lines, "step finished", Some(&step));
        assert!(
            started < finished_written,
            "{step}'s start was shown while it ran:\n{}",
            w.text()
        );
        assert!(
            late(started, started_written) <= BOUND,
            "{step} started shown late"
        );
        assert!(
            late(finished, finished_written) <= BOUND,
            "{step} finished shown late"
        );
        assert!(
            w.arrival(&format!("┆ step {n}")).is_some(),
            "its output tail:\n{}",
            w.text()
        );
    }
    let sealed = w.arrival("run resolved after").expect("the verdict");
    assert!(late(sealed, trail_time(&lines, "run finished", None)) <= BOUND);
    let (code, text, stderr) = w.finish(Duration::from_secs(5));
    assert_eq!(code, Some(0), "{text}\n{stderr}");
    assert!(
        text.contains("Watched (watched) · incident · RTO 5m"),
        "the header:\n{text}"
    );
    assert!(text.contains("(RTO 5m: within)"), "{text}");
    assert_eq!(wait::exit(&mut run, Duration::from_secs(30)), Some(0));
}

#[test]
fn two_watchers_by_id_and_by_path_both_see_everything() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = book(dir.path(), 3, "sleep 0.5; echo step {n}");
    let (mut run, trail) = start_run(audit.path(), &book);
    let id = trail.file_stem().unwrap().to_str().unwrap().to_string();
    let mut watchers = [
        watch(audit.path(), &[&id[..id.len() - 2]]),
        watch(audit.path(), &[trail.to_str().unwrap()]),
    ];
    follow_all(&trail, &mut watchers);
    let mut texts = Vec::new();
    for w in watchers {
        let (code, text, stderr) = w.finish(Duration::from_secs(5));
        assert_eq!(code, Some(0), "{text}\n{stderr}");
        for n in 1..=3 {
            assert!(text.contains(&format!("s{n}: started on local")), "{text}");
            assert!(text.contains(&format!("┆ step {n}")), "{text}");
        }
        assert!(text.contains(&format!("run {id} by ")), "{text}");
        assert!(text.contains("run resolved after"), "{text}");
        texts.push(text);
    }
    assert_eq!(texts[0], texts[1], "both saw the same story");
    assert_eq!(wait::exit(&mut run, Duration::from_secs(30)), Some(0));
}

#[test]
fn ctrl_c_ends_the_watch_with_130_and_the_run_goes_on() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = book(dir.path(), 2, "sleep 1.5");
    let (mut run, trail) = start_run(audit.path(), &book);
    let mut w = watch(audit.path(), &["last"]);
    wait::until(Duration::from_secs(30), "watch shows a step started", || {
        w.collect();
        w.arrival("started on local").is_some()
    });
    let pid = nix::unistd::Pid::from_raw(w.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let (code, text, stderr) = w.finish(Duration::from_secs(5));
    assert_eq!(code, Some(130), "{text}\n{stderr}");
    assert!(stderr.contains("stopped watching"), "{stderr}");
    assert!(!text.contains("run resolved"), "the run had not ended: {text}");
    assert_eq!(wait::exit(&mut run, Duration::from_secs(30)), Some(0));
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
}

/// Every entry under `dir`: its kind, size, mode and modification time.
fn listing(dir: &Path) -> BTreeMap<PathBuf, (bool, u64, u32, SystemTime)> {
    use std::os::unix::fs::PermissionsExt;
    let mut all = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                todo.push(path.clone());
            }
            let stamp = (
                meta.is_dir(),
                meta.len(),
                meta.permissions().mode(),
                meta.modified().unwrap(),
            );
            all.insert(path, stamp);
        }
    }
    all
}

/// A finished run of `run` steps in a fresh audit dir.
fn finished_run(run: &str) -> (tempfile::TempDir, PathBuf) {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = book(dir.path(), 2, run);
    runbook(["run", "--yes", "--no-sign", "--audit-dir"])
        .arg(audit.path())
        .arg(&book)
        .expect_code(0);
    let trail = audit_files(audit.path()).pop().unwrap();
    (audit, trail)
}

#[test]
fn a_sealed_run_is_told_whole_at_once_and_the_audit_dir_is_left_as_it_was() {
    let (audit, _) = finished_run("echo step {n}");
    let before = listing(audit.path());
    let started = Instant::now();
    let out = runbook(["watch", "last", "--audit-dir"])
        .arg(audit.path())
        .expect_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "at once, not after a poll"
    );
    for expected in [
        "Watched (watched)",
        "s1: started on local",
        "┆ step 2",
        "run resolved after",
    ] {
        assert!(out.stdout.contains(expected), "`{expected}` in:\n{}", out.stdout);
    }
    assert_eq!(listing(audit.path()), before, "nothing written, no lock taken");
}

#[test]
fn escape_sequences_of_the_output_and_the_command_are_shown_escaped() {
    let (audit, trail) =
        finished_run(r#"printf '\033]0;pwned\007\033[2J'; echo; echo "$(printf 'a\033[31mred')""#);
    let out = runbook(["watch"])
        .arg(&trail)
        .arg("--audit-dir")
        .arg(audit.path())
        .expect_code(0);
    assert!(
        !out.stdout.contains('\x1b') && !out.stdout.contains('\x07'),
        "{:?}",
        out.stdout
    );
    assert!(
        out.stdout.contains(r"┆ \x1b]0;pwned\x07\x1b[2J"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(r"┆ a\x1b[31mred"), "{}", out.stdout);
}

#[test]
fn an_unknown_run_is_a_usage_error_and_a_tampered_trail_names_its_line() {
    let (audit, trail) = finished_run("echo step {n}");
    let out = runbook(["watch", "20990101T000000Z-nope", "--audit-dir"])
        .arg(audit.path())
        .expect_code(2);
    assert!(
        out.stderr.contains("no run `20990101T000000Z-nope`"),
        "{}",
        out.stderr
    );
    let text = std::fs::read_to_string(&trail).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("\"step finished\""))
        .unwrap()
        + 1;
    std::fs::write(&trail, text.replacen("\"exit\":0", "\"exit\":9", 1)).unwrap();
    let out = runbook(["watch", "last", "--audit-dir"])
        .arg(audit.path())
        .expect_code(1);
    assert!(
        out.stderr
            .contains(&format!("tampered with at seq {} (line {line})", line - 1)),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("s1: started on local"),
        "what came before: {}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("exit 9"),
        "the bad line is not shown: {}",
        out.stdout
    );
}

#[test]
fn an_unsealed_trail_is_waited_on_quiet_is_said_and_a_truncation_ends_it() {
    let (audit, trail) = finished_run("true");
    // The seal taken off: a run that stopped (or is still going).
    let text = std::fs::read_to_string(&trail).unwrap();
    let unsealed: String = text
        .lines()
        .filter(|l| !l.contains("\"run finished\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&trail, &unsealed).unwrap();
    let mut w = watch(audit.path(), &["last", "--quiet-after", "1s"]);
    wait::until(Duration::from_secs(30), "watch says the run is quiet", || {
        w.collect();
        w.arrival("no event for ").is_some()
    });
    assert!(w.text().contains("walk ended: resolved"), "{}", w.text());
    assert!(w.text().contains("RTO 5m exceeded by") || w.text().contains("of the 5m RTO left"));
    std::fs::write(&trail, &unsealed[..unsealed.len() / 2]).unwrap();
    let (code, text, stderr) = w.finish(Duration::from_secs(5));
    assert_eq!(code, Some(1), "{text}\n{stderr}");
    assert!(stderr.contains("shrank from"), "{stderr}");
    assert_eq!(
        text.matches("no event for").count(),
        1,
        "once per quiet stretch: {text}"
    );
}

#[test]
fn on_a_terminal_a_status_line_ticks_while_quiet_and_is_gone_at_the_seal() {
    use std::io::Write;
    let (audit, trail) = finished_run("true");
    let text = std::fs::read_to_string(&trail).unwrap();
    let seal = text.lines().last().unwrap().to_string();
    std::fs::write(&trail, &text[..text.len() - seal.len() - 1]).unwrap();
    let mut s = crate::support::pty::spawn(&["watch", "last"], audit.path());
    s.exp_string("walk ended: resolved").unwrap();
    // rexpect reads bytes as characters: the needles stay ASCII.
    s.exp_string("of the 5m RTO left").unwrap();
    let ago = |s: &mut crate::support::pty::Session| -> u64 {
        let (_, seen) = s.exp_regex(r"last event \d+ s ago").unwrap();
        seen.split(' ').nth(2).unwrap().parse().unwrap()
    };
    let first = ago(&mut s);
    wait::until(Duration::from_secs(10), "the status line ticks", || {
        ago(&mut s) > first
    });
    let mut file = std::fs::OpenOptions::new().append(true).open(&trail).unwrap();
    file.write_all(format!("{seal}\n").as_bytes()).unwrap();
    // Everything it wrote is read before the screen is looked at: bytes still in the pty
    // when it exits are not on the screen yet.
    s.exp_eof().unwrap();
    assert_eq!(
        crate::support::pty::wait_exit_within(&mut s, Duration::from_secs(10)),
        0
    );
    let screen = s.screen().contents();
    assert!(screen.contains("run resolved after"), "{screen}");
    assert!(
        !screen.contains("last event"),
        "the status line is cleared: {screen}"
    );
}

#[test]
fn someone_who_may_only_read_the_trail_can_watch_it() {
    use std::os::unix::fs::PermissionsExt;
    let (audit, trail) = finished_run("echo step {n}");
    // Root's audit dir, which `nobody` may read and enter but not write in; the trail alone
    // readable by others (its outputs stay private).
    std::fs::set_permissions(audit.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&trail, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = listing(audit.path());
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(bin())
        .args(["watch", "last", "--audit-dir"])
        .arg(audit.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("┆ step 2") && stdout.contains("run resolved after"),
        "{stdout}"
    );
    assert_eq!(listing(audit.path()), before);
}

#[test]
fn a_watch_outlives_a_crashed_run_and_follows_its_resume_to_the_seal() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let flag = dir.path().join("ran-once");
    let book = dir.path().join("crash.yaml");
    std::fs::write(
        &book,
        format!(
            "version: 1\nid: crash\ntitle: Crash\nrto: 5m\nsteps:\n  - id: slow\n    title: Slow\n    idempotent: true\n    run: if [ -e {flag} ]; then echo again; else touch {flag}; sleep 2; fi\n  - {{id: done, title: Done, end: resolved}}\n",
            flag = flag.display()
        ),
    )
    .unwrap();
    let (mut run, trail) = start_run(audit.path(), &book);
    let mut w = watch(audit.path(), &["last"]);
    wait::until(Duration::from_secs(30), "watch shows the step started", || {
        w.collect();
        w.arrival("slow: started on local").is_some()
    });
    // The step's start is recorded before its command runs: kill only once the command ran
    // (the flag is there), or the re-run is its first run and never says `again`.
    wait::until(Duration::from_secs(30), "the step's command ran", || {
        flag.exists()
    });
    // The operator's machine dies mid-step: no seal, the watch goes on waiting.
    run.kill().unwrap();
    run.wait().unwrap();
    runbook(["resume", "--yes", "--no-sign", "--audit-dir"])
        .arg(audit.path())
        .arg(&trail)
        .expect_code(0);
    let (code, text, stderr) = w.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{text}\n{stderr}");
    let resumed = text.find("resumed by tester").unwrap_or_else(|| panic!("{text}"));
    assert!(text[resumed..].contains("┆ again"), "the step re-run: {text}");
    assert!(text[resumed..].contains("run resolved after"), "{text}");
}
