//! The team's audit host as two machines on one (design §19, issue #27): alice (`rb-alice`)
//! and bob (`rb-bob`) are OS accounts with their own homes, `~/.ssh/known_hosts`, keys,
//! ssh-agents and audit dirs; neither passes `--identity` or `--known-hosts`, so ssh reads their
//! own. The audit host is one loopback sshd (its account `rbtest` and a directory of its own),
//! the target another. Alice runs, mirrored there; bob watches, takes over, lists and verifies
//! from his side, and what the audit host holds is read by this test (root) as its files.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::audit_host;
use crate::support::pty::{Session, start, wait_exit};
use crate::support::sshd::{self, Sshd};
use crate::support::trail::{audit_files, events, every_file, named, resumed_after_unknown};
use crate::support::users::{ALICE, BOB, Person, authorize, give, shared_dir};
use crate::support::wait;
use crate::watch::{BOUND, Watcher, follow_all, trail_time};

/// Alice's secret: what her run uses and nobody else may read.
const SECRET: &str = "Vq7-team+Secret/9x=Zk";

struct Team {
    /// The audit host: its own sshd, account and directory.
    _audit_sshd: Sshd,
    /// The machine the runbook acts on.
    target: Sshd,
    host_dir: tempfile::TempDir,
    url: String,
    alice: Person,
    bob: Person,
    /// Runbooks, readable by both.
    shared: tempfile::TempDir,
    /// Written by the steps on the target (its account), read by the test.
    scratch: tempfile::TempDir,
}

/// Both people, both servers: each person's key authorised on both, and both servers' host
/// keys in each person's own `~/.ssh/known_hosts`.
fn team() -> Team {
    let audit_sshd = Sshd::start();
    let target = Sshd::start();
    let host_dir = audit_host::dir();
    let url = audit_host::url(&audit_sshd, host_dir.path());
    let (alice, bob) = (Person::start(ALICE), Person::start(BOB));
    for server in [&audit_sshd, &target] {
        authorize(server, &[&alice, &bob]);
    }
    for person in [&alice, &bob] {
        trust(person, &[&audit_sshd, &target]);
    }
    let scratch = tempfile::Builder::new().prefix("rb-people-").tempdir().unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    Team {
        _audit_sshd: audit_sshd,
        target,
        host_dir,
        url,
        alice,
        bob,
        shared: shared_dir(),
        scratch,
    }
}

/// Appends the servers' host keys to `person`'s `~/.ssh/known_hosts` (one write: tests that
/// run at once append their own servers' lines; ssh accepts a host whose key is on any line).
fn trust(person: &Person, servers: &[&Sshd]) {
    let file = person.account.home.join(".ssh/known_hosts");
    let lines: String = servers
        .iter()
        .map(|s| format!("[127.0.0.1]:{} {}\n", s.port, s.host_key))
        .collect();
    let mut known = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .unwrap();
    known.write_all(lines.as_bytes()).unwrap();
    give(&file, person);
}

impl Team {
    /// A runbook named `id` with `steps` (YAML, indented as list items) on the role `app`.
    fn book(&self, id: &str, inputs: &str, steps: &str) -> PathBuf {
        let file = self.shared.path().join(format!("{id}.yaml"));
        std::fs::write(
            &file,
            format!(
                "version: 1\nid: {id}\ntitle: Team {id}\nrto: 10m\n{inputs}targets:\n  app: {{}}\nsteps:\n{steps}  - id: done\n    title: Done\n    end: resolved\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        file
    }

    /// `runbook run BOOK --target app=... --audit-host URL ARGS` as alice.
    fn alice_run(&self, book: &Path, args: &[&str]) -> std::process::Command {
        let mut command = self.alice.runbook(["run"]);
        command
            .arg(book)
            .args(["--target", &format!("app={}", self.target.dest())])
            .args(["--audit-host", &self.url])
            .args(args);
        command
    }

    /// `runbook ARGS --audit-host URL` as bob, on his machine.
    fn bob(&self, args: &[&str]) -> Output {
        self.bob
            .runbook(args)
            .args(["--audit-host", &self.url])
            .output()
            .unwrap()
    }

    /// The audit host's copy of `run`'s trail.
    fn there(&self, run: &str) -> PathBuf {
        self.host_dir.path().join(format!("{run}.jsonl"))
    }

    /// The one trail mirrored there so far, once it holds a line.
    fn mirrored(&self) -> PathBuf {
        let mut found = None;
        wait::until(Duration::from_secs(30), "a trail on the audit host", || {
            found = audit_files(self.host_dir.path())
                .pop()
                .filter(|t| std::fs::metadata(t).is_ok_and(|m| m.len() > 0));
            found.is_some()
        });
        found.unwrap()
    }

    /// Bob's `runbook watch RUN --audit-host URL`, from his (empty) audit dir.
    fn bob_watches(&self, run: &str) -> Watcher {
        let mut command = self.bob.runbook(["watch", run, "--audit-host", &self.url]);
        command.env("COLUMNS", "200");
        Watcher::spawn(command)
    }
}

fn id_of(trail: &Path) -> String {
    trail.file_stem().unwrap().to_string_lossy().into_owned()
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Alice's trail and its output files, and the audit host's copies: byte for byte the same.
#[track_caller]
fn assert_mirrored(local_dir: &Path, host_dir: &Path, run: &str) {
    let local = local_dir.join(format!("{run}.jsonl"));
    assert_eq!(
        std::fs::read(&local).unwrap(),
        std::fs::read(host_dir.join(format!("{run}.jsonl"))).unwrap(),
        "the trail of {} and the audit host's differ",
        local.display()
    );
    let mut outputs = 0;
    for entry in std::fs::read_dir(local_dir.join(run)).unwrap() {
        let mine = entry.unwrap().path();
        let there = host_dir.join(run).join(mine.file_name().unwrap());
        assert_eq!(
            std::fs::read(&mine).unwrap(),
            std::fs::read(&there).unwrap_or_default(),
            "{} and the audit host's copy differ",
            mine.display()
        );
        outputs += 1;
    }
    assert!(outputs > 0, "no output files in {}", local_dir.display());
    assert_eq!(
        std::fs::read_dir(host_dir.join(run)).unwrap().count(),
        outputs,
        "the audit host holds the same output files"
    );
}

/// A first step that waits on the target until bob watches (`open_when_watching`), then three
/// steps, each printing and taking a while (so that bob sees each start while it runs); the
/// first prints alice's secret.
fn watched_book(t: &Team) -> PathBuf {
    t.book(
        "watched",
        "inputs:\n  pw: {secret: true, from: \"env:RB_TEAM_PW\"}\n",
        &format!(
            "  - id: s0\n    title: Wait for bob\n    run: until [ -e {gate} ]; do sleep 0.05; done\n  - id: s1\n    title: One\n    run: 'echo \"token=$pw\"; sleep 1.5'\n  - id: s2\n    title: Two\n    run: echo step two; sleep 1.5\n  - id: s3\n    title: Three\n    run: echo step three; sleep 1.5\n",
            gate = t.scratch.path().join("watching").display()
        ),
    )
}

/// Lets the run go on once bob's watch shows its first step started: from then on he follows
/// it live (the time to connect is not the time an event takes to reach him).
fn open_when_watching(t: &Team, w: &mut Watcher) {
    let started = format!("s0: started on {}", t.target.dest());
    wait::until_seen(Duration::from_secs(30), "bob's watch shows s0", || {
        w.collect();
        (w.arrival(&started).is_some(), w.text())
    });
    std::fs::write(t.scratch.path().join("watching"), "").unwrap();
}

/// Alice starts the watched book (its secret in her environment, not on her command line);
/// her run, and the audit host's copy of its trail once it is there.
fn alice_runs_the_watched_book(t: &Team) -> (Child, PathBuf) {
    let run = t
        .alice_run(&watched_book(t), &["--yes"])
        .env("RB_TEAM_PW", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (run, t.mirrored())
}

#[test]
fn alices_run_is_mirrored_as_it_goes_and_bob_watches_each_step_within_a_second() {
    let t = team();
    let (mut run, copy) = alice_runs_the_watched_book(&t);
    let id = id_of(&copy);
    let mut w = t.bob_watches("last");
    open_when_watching(&t, &mut w);
    let mut watchers = [w];
    let lines = follow_all(&copy, &mut watchers);
    let [w] = watchers;
    for step in ["s1", "s2", "s3"] {
        let started = w
            .arrival(&format!("{step}: started on {}", t.target.dest()))
            .unwrap_or_else(|| panic!("{step} started, in:\n{}", w.text()));
        let there = trail_time(&lines, "step started", Some(step));
        let finished_there = trail_time(&lines, "step finished", Some(step));
        assert!(
            started < finished_there,
            "{step}'s start was shown while it ran:\n{}",
            w.text()
        );
        let late = started.saturating_duration_since(there);
        assert!(
            late <= BOUND,
            "{step} started shown {late:?} after its line reached the audit host"
        );
    }
    let sealed = w.arrival("run resolved after").expect("the verdict");
    assert!(sealed.saturating_duration_since(trail_time(&lines, "run finished", None)) <= BOUND);
    let (code, text, stderr) = w.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0), "bob's watch ends 0 at the seal:\n{text}\n{stderr}");
    assert!(text.contains(&format!("run {id} by {ALICE}")), "{text}");
    assert_eq!(wait::exit(&mut run, Duration::from_secs(30)), Some(0));

    // At the seal, the audit host's copy is alice's trail, byte for byte, outputs and all.
    assert_mirrored(&t.alice.audit, t.host_dir.path(), &id);
    let trail = events(&copy);
    assert_eq!(trail.last().unwrap()["event"], "run finished");
    assert!(trail.iter().all(|e| e["operator"] == ALICE), "{trail:#?}");
    // Read-only: bob's machine holds nothing of it.
    assert!(audit_files(&t.bob.audit).is_empty());
}

#[test]
fn a_secret_of_alices_mirrored_run_reaches_neither_the_audit_host_nor_bobs_watch() {
    let t = team();
    let (mut run, copy) = alice_runs_the_watched_book(&t);
    let mut w = t.bob_watches(&id_of(&copy));
    open_when_watching(&t, &mut w);
    let mut watchers = [w];
    follow_all(&copy, &mut watchers);
    let [w] = watchers;
    let (code, text, stderr) = w.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{text}\n{stderr}");
    assert_eq!(wait::exit(&mut run, Duration::from_secs(30)), Some(0));
    // Shown masked, not lost: the step printed it.
    assert!(text.contains("┆ ***"), "{text}");
    assert!(
        !text.contains(SECRET) && !stderr.contains(SECRET),
        "{text}\n{stderr}"
    );
    // Every file there: the trail, each output, anything the mirror left.
    let files = every_file(t.host_dir.path());
    assert!(files.len() >= 5, "the trail and four outputs: {files:?}");
    let mut masked = false;
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(SECRET), "{} holds the secret", file.display());
        masked |= text.contains("***");
    }
    assert!(masked, "the masked line is on the audit host");
}

#[test]
fn bob_lists_alices_run_in_the_teams_history_and_verifies_every_run_there() {
    let t = team();
    let book = t.book("listed", "", "  - id: s1\n    title: One\n    run: echo one\n");
    let out = t.alice_run(&book, &["--yes"]).output().unwrap();
    assert!(out.status.success(), "{}", said(&out));
    let alices = id_of(&t.mirrored());
    // Bob's own run, never mirrored: only on his machine.
    let out = t
        .bob
        .runbook(["run", "--yes"])
        .arg(&book)
        .args(["--target", &format!("app={}", t.target.dest())])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", said(&out));
    let bobs = id_of(&audit_files(&t.bob.audit)[0]);

    let out = t.bob(&["history", "--json"]);
    assert!(out.status.success(), "{}", said(&out));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap_or_else(|| panic!("{rows:#}"));
    let row = |id: &str| {
        rows.iter()
            .find(|r| r["run"] == id)
            .unwrap_or_else(|| panic!("{id} in bob's history: {rows:#?}"))
    };
    assert_eq!(row(&alices)["stored"], "audit host");
    assert_eq!(row(&alices)["operators"], serde_json::json!([ALICE]));
    assert_eq!(row(&bobs)["stored"], "local");

    // Every run of the team's record at once (no RUN, as --all): one line each, then the count.
    let out = t.bob(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{}/{alices}.jsonl: intact and sealed", t.url)),
        "{text}"
    );
    assert!(
        text.contains(&format!("{bobs}.jsonl: intact and sealed")),
        "{text}"
    );
    assert!(
        text.contains("2 runs: 2 intact and sealed, 0 incomplete, 0 tampered or untrusted"),
        "{text}"
    );

    // One output file edited there: that run fails, the other still holds; exit 1.
    let output = every_file(&t.host_dir.path().join(&alices)).remove(0);
    let before = std::fs::read_to_string(&output).unwrap();
    std::fs::write(&output, before.replace("one", "One")).unwrap();
    let out = t.bob(&["audit", "verify", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("TAMPERED or untrusted: output of step `s1`"),
        "{text}"
    );
    assert!(
        text.contains("2 runs: 1 intact and sealed, 0 incomplete, 1 tampered or untrusted"),
        "{text}"
    );
    let out = t.bob(&["audit", "verify", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports.as_array().map(Vec::len), Some(2), "{reports:#}");
}

/// Up, as a terminal sends it: from the first choice it wraps to "Abort the run", once more
/// to "Hand off", just above it.
const UP: &str = "\x1b[A";

/// Three steps on the target, each appending its name to `log` there.
fn handoff_book(t: &Team, log: &Path) -> PathBuf {
    t.book(
        "handoff",
        "",
        &format!(
            "  - id: s1\n    title: First\n    run: echo first >> {log}; echo first\n  - id: s2\n    title: Second\n    run: echo second >> {log}; echo second\n",
            log = log.display()
        ),
    )
}

/// Sends `keys` once alice's run (writing to her audit dir) is reading them.
fn press(s: &mut Session, audit: &Path, keys: &str) {
    crate::support::pty::wait_reading(crate::support::pty::pid_of(audit));
    s.send(keys).unwrap();
    s.flush().unwrap();
}

#[test]
fn alice_hands_off_at_a_prompt_and_bob_finishes_the_run_from_his_machine() {
    let t = team();
    let log = t.scratch.path().join("ran.log");
    let book = handoff_book(&t, &log);
    // Alice at her terminal: `--audit-dir` on the command line, so that her prompt is found.
    let audit = t.alice.audit.display().to_string();
    let mut command = t.alice_run(&book, &["--audit-dir", &audit]);
    command.stdin(Stdio::inherit()).env("TERM", "xterm");
    let mut s = start(command);
    s.exp_string("[1/3]").unwrap();
    s.exp_string("What now?").unwrap();
    press(&mut s, &t.alice.audit, "\r");
    s.exp_string("[2/3]").unwrap();
    s.exp_string("What now?").unwrap();
    press(&mut s, &t.alice.audit, &format!("{UP}{UP}\r"));
    s.exp_string("Note for whoever takes over").unwrap();
    press(&mut s, &t.alice.audit, "db is half migrated\r");
    s.exp_string("To take over, paste").unwrap();
    let printed = s.exp_eof().unwrap();
    assert_eq!(wait_exit(&mut s), 0, "{}", s.screen().contents());
    let line = printed
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with("runbook resume "))
        .unwrap_or_else(|| panic!("no resume command printed:\n{printed}"));
    let words = shlex::split(line).unwrap();
    let at = words
        .iter()
        .position(|w| w == "--audit-host")
        .expect("--audit-host printed");
    assert_eq!(words[at + 1], t.url, "{words:?}");
    let run = words[2].clone();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "first\n");

    // Bob pastes it on his machine, unattended.
    let out = t.bob.runbook(&words[1..]).arg("--yes").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "first\nsecond\n");
    let trail = t.bob.audit.join(format!("{run}.jsonl"));
    let verified = t.bob.runbook(["audit", "verify", &run]).output().unwrap();
    assert_eq!(verified.status.code(), Some(0), "{}", said(&verified));
    // One chain: alice's lines are its start, byte for byte; both operators in it.
    let alices = std::fs::read(t.alice.audit.join(format!("{run}.jsonl"))).unwrap();
    assert!(std::fs::read(&trail).unwrap().starts_with(&alices));
    let after = events(&trail);
    let handed = named(&after, "handed off");
    assert_eq!(handed.len(), 1);
    assert_eq!(
        (&handed[0]["operator"], &handed[0]["note"]),
        (&ALICE.into(), &"db is half migrated".into())
    );
    let resumed = named(&after, "run resumed");
    assert_eq!(
        (&resumed[0]["operator"], &resumed[0]["previous_operator"]),
        (&BOB.into(), &ALICE.into())
    );
    let seal = named(&after, "run finished");
    assert_eq!(
        (&seal[0]["operator"], &seal[0]["outcome"]),
        (&BOB.into(), &"resolved".into())
    );
    // Mirrored on to the end: the team's copy is bob's trail, and it verifies there.
    assert_mirrored(&t.bob.audit, t.host_dir.path(), &run);
    let out = t.bob(&["audit", "verify", &run]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
}

#[test]
fn a_trail_edited_on_the_audit_host_is_refused_by_bobs_resume_and_flagged_by_verify() {
    let t = team();
    let log = t.scratch.path().join("ran.log");
    let book = handoff_book(&t, &log);
    let out = t
        .alice_run(&book, &["--yes", "--answer", "s2=handoff"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let run = id_of(&t.mirrored());
    let copy = t.there(&run);
    // Someone with a login there rewrites one byte of a line (same length).
    let text = std::fs::read_to_string(&copy).unwrap();
    let from = format!("\"operator\":\"{ALICE}\"");
    assert!(text.contains(&from), "{text}");
    std::fs::write(&copy, text.replacen(&from, "\"operator\":\"rb-alicf\"", 1)).unwrap();

    let out = t.bob(&["resume", &run, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(said(&out).contains("tampered with at seq"), "{}", said(&out));
    let left: Vec<_> = std::fs::read_dir(&t.bob.audit)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left on bob's machine: {left:?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "first\n", "nothing ran");

    // Bob reads the copy there alone: its chain is broken.
    let out = t.bob(&["audit", "verify", &run]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        said(&out).contains(&format!("{}/{run}.jsonl: TAMPERED at seq", t.url)),
        "{}",
        said(&out)
    );
    // Alice holds the original: the two copies differ, both named; every run checked at once.
    let out = t
        .alice
        .runbook(["audit", "verify", "--all", "--audit-host", &t.url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        said(&out).contains(&format!("the run {run} differs between the local trail")),
        "{}",
        said(&out)
    );
}

/// A step that waits on the target until the test opens its gate, and says when it began
/// and when it ended there.
fn held_book(t: &Team) -> PathBuf {
    let dir = t.scratch.path().display();
    t.book(
        "held",
        "",
        &format!(
            "  - id: first\n    title: First\n    run: echo first\n  - id: hold\n    title: Hold\n    idempotent: true\n    run: echo begun >> {dir}/log; until [ -e {dir}/open ]; do sleep 0.05; done; echo ended >> {dir}/log\n"
        ),
    )
}

#[test]
fn alices_machine_killed_mid_step_is_finished_by_bob_its_step_unknown() {
    let t = team();
    let book = held_book(&t);
    let mut alice: Child = t
        .alice_run(&book, &["--yes"])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let copy = t.mirrored();
    let run = id_of(&copy);
    // `hold` runs on the target, the audit host has its start and its remote process, and
    // `first`'s output is copied (the mirror copies it while `hold` runs).
    wait::until(Duration::from_secs(30), "`hold` running, seen there", || {
        let text = std::fs::read_to_string(&copy).unwrap_or_default();
        text.lines()
            .any(|l| l.contains("\"event\":\"remote process\"") && l.contains("\"step\":\"hold\""))
            && std::fs::read_to_string(t.host_dir.path().join(&run).join("first-1.out"))
                .is_ok_and(|o| o == "first\n")
    });
    // Alice's machine dies: her runbook, its group and every process under it, at once.
    let everything = sshd::descendants(alice.id());
    // SAFETY: kill(2) of the process group this test started, then of its leftover pids.
    unsafe {
        libc::kill(-(alice.id() as i32), libc::SIGKILL);
        for pid in everything {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
    assert_eq!(alice.wait().unwrap().code(), None, "killed");
    assert_eq!(
        std::fs::read_to_string(t.scratch.path().join("log")).unwrap(),
        "begun\n"
    );

    // Bob takes it over from the audit host, unattended; once his run of `hold` has begun,
    // the gate opens.
    let mut bob = t
        .bob
        .runbook(["resume", &run, "--yes", "--audit-host", &t.url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait::for_text(&t.scratch.path().join("log"), "begun\nbegun\n");
    std::fs::write(t.scratch.path().join("open"), "").unwrap();
    let code = wait::exit(&mut bob, Duration::from_secs(60));
    let mut err = String::new();
    std::io::Read::read_to_string(bob.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("outcome unknown"), "{err}");
    // The first instance was stopped before the step ran again: one end, bob's.
    assert_eq!(
        std::fs::read_to_string(t.scratch.path().join("log")).unwrap(),
        "begun\nbegun\nended\n"
    );
    let trail = t.bob.audit.join(format!("{run}.jsonl"));
    let verified = t.bob.runbook(["audit", "verify", &run]).output().unwrap();
    assert_eq!(verified.status.code(), Some(0), "{}", said(&verified));
    let after = events(&trail);
    let resumed = resumed_after_unknown(&after, "hold");
    assert_eq!(resumed["previous_operator"], ALICE);
    let holds: Vec<_> = named(&after, "step started")
        .into_iter()
        .filter(|e| e["step"] == "hold")
        .map(|e| e["operator"].clone())
        .collect();
    assert_eq!(holds, [ALICE, BOB], "started by alice, again by bob");
    assert_eq!(named(&after, "run finished")[0]["outcome"], "resolved");
    assert_mirrored(&t.bob.audit, t.host_dir.path(), &run);
}
