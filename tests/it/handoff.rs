//! Hand off (design §19): at a step's prompt the operator stops the run for a colleague. The
//! run ends at once with exit 0, nothing running, its trail open with a `handed off` event,
//! its lock and leases released, and the exact `runbook resume` command printed; that command,
//! pasted as printed by someone else, finishes the same run in the same chain.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::cmd::{Outcome, bin, runbook};
use crate::support::pty::{Session, pid_of, spawn, spawn_env, start, wait_exit, wait_reading};
use crate::support::sshd::{Sshd, descendants};
use crate::support::trail::{audit_files, events, named};

/// Up, as a terminal sends it: from the first choice it wraps to "Abort the run", once more
/// to "Hand off", just above it.
const UP: &str = "\x1b[A";

/// Three steps on `target` (`local` or a role); each run step appends its name to `log`, on the
/// host it runs on.
fn book(dir: &Path, log: &Path, remote: bool) -> PathBuf {
    let targets = if remote { "targets:\n  app: {}\n" } else { "" };
    let text = format!(
        "version: 1\nid: handoff\ntitle: Hand off\nrto: 10m\n{targets}steps:\n  - id: first\n    title: First\n    run: echo first >> {log}\n  - id: second\n    title: Second\n    run: echo second >> {log}\n  - id: done\n    title: Done\n    end: resolved\n",
        log = log.display()
    );
    let file = dir.join("handoff.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

/// Sends `keys` once the prompt of the run writing to `audit` is reading them.
fn press(s: &mut Session, audit: &Path, keys: &str) {
    wait_reading(pid_of(audit));
    s.send(keys).unwrap();
    s.flush().unwrap();
}

/// Runs the first step, then hands off at the second's prompt with `note`. Returns what was
/// printed after "To take over, paste" and the screen at the end; asserts the run ended 0.
fn hand_off_at_second(mut s: Session, audit: &Path, note: &str) -> (String, String) {
    s.exp_string("[1/3]").unwrap();
    s.exp_string("What now?").unwrap();
    press(&mut s, audit, "\r"); // Run it
    s.exp_string("[2/3]").unwrap();
    s.exp_string("What now?").unwrap();
    press(&mut s, audit, &format!("{UP}{UP}\r"));
    s.exp_string("Note for whoever takes over").unwrap();
    press(&mut s, audit, &format!("{note}\r"));
    s.exp_string("To take over, paste").unwrap();
    let rest = s.exp_eof().unwrap();
    let screen = s.screen().contents();
    assert_eq!(wait_exit(&mut s), 0, "{screen}");
    (rest, screen)
}

/// The `runbook resume ...` line printed last, as its words (split as a shell would).
#[track_caller]
fn printed_resume(text: &str) -> Vec<String> {
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with("runbook resume "))
        .unwrap_or_else(|| panic!("no resume command printed:\n{text}"));
    shlex::split(line).unwrap()
}

/// The printed command, run as printed (its `runbook` is the binary under test) by `bob`,
/// unattended.
fn paste_as_bob(words: &[String]) -> Outcome {
    assert_eq!(words[..2], ["runbook", "resume"], "{words:?}");
    runbook(&words[1..])
        .args(["--operator", "bob", "--yes"])
        .expect_code(0)
}

/// The trail of the run whose id is `words[2]`.
fn trail_of(audit: &Path, words: &[String]) -> PathBuf {
    audit.join(format!("{}.jsonl", words[2]))
}

/// How the run lock (and each lease) of the latest run but `except` was taken: `free` when
/// nobody held it, `dead` or `stale` when a holder had not let go.
fn lock_words(audit: &Path, except: &Path) -> Vec<String> {
    let other = audit_files(audit)
        .into_iter()
        .find(|f| f != except)
        .expect("a second trail");
    named(&events(&other), "lock taken")
        .iter()
        .map(|e| format!("{} {}", e["how"].as_str().unwrap(), e["lock"].as_str().unwrap()))
        .collect()
}

/// What the trail says once handed off: one `handed off` at `second` by alice with `note`, the
/// second step never started, no seal; `audit verify` says incomplete (4).
fn assert_handed_off(trail: &Path, note: Option<&str>) {
    let before = events(trail);
    let handed = named(&before, "handed off");
    assert_eq!(handed.len(), 1, "{before:#?}");
    assert_eq!(handed[0]["step"], "second");
    assert_eq!(handed[0]["operator"], "alice");
    assert_eq!(handed[0].get("note").and_then(Value::as_str), note);
    assert!(
        !before
            .iter()
            .any(|e| e["event"] == "step started" && e["step"] == "second"),
        "the step handed off at ran"
    );
    assert!(named(&before, "run finished").is_empty(), "sealed at a hand-off");
    runbook(["audit", "verify"]).arg(trail).expect_code(4);
}

/// After bob's resume: one chain, sealed and verified, both operators in it, every step run
/// once, and the review saying who handed off, where and why.
fn assert_finished_by_bob(trail: &Path, log: &Path, note: Option<&str>) {
    runbook(["audit", "verify"]).arg(trail).expect_code(0);
    let after = events(trail);
    let seal = named(&after, "run finished");
    assert_eq!(seal.len(), 1);
    assert_eq!(seal[0]["outcome"], "resolved");
    assert_eq!(seal[0]["operator"], "bob");
    let resumed = named(&after, "run resumed");
    assert_eq!(resumed[0]["previous_operator"], "alice");
    assert_eq!(resumed[0]["hand_off"], true);
    assert_eq!(std::fs::read_to_string(log).unwrap(), "first\nsecond\n");

    let text = runbook(["review"]).arg(trail).expect_code(0).stdout;
    assert!(text.contains("alice → bob (hand-off)"), "{text}");
    let said = format!(
        "second: handed off by alice{}",
        note.map(|n| format!(": {n}")).unwrap_or_default()
    );
    assert!(text.contains(&said), "no `{said}` in:\n{text}");
    let json: Value = serde_json::from_str(
        &runbook(["review", "--format", "json"])
            .arg(trail)
            .expect_code(0)
            .stdout,
    )
    .unwrap();
    let rows = json["runs"][0]["hand_offs"]
        .as_array()
        .expect("hand_offs in the JSON review");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["operator"], "alice");
    assert_eq!(rows[0]["step"], "second");
    assert_eq!(rows[0].get("note").and_then(Value::as_str), note);
    assert!(
        rows[0]["at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{json:#}"
    );
    // The time nobody was at it is the hand-off's, not a crash's.
    let gaps: Vec<&str> = json["runs"][0]["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["kind"].as_str().unwrap())
        .collect();
    assert!(gaps.contains(&"hand_off_until_resume"), "{gaps:?}");
    assert!(!gaps.contains(&"crash_until_resume"), "{gaps:?}");
    assert!(text.contains("gap: the hand-off until the resume"), "{text}");
}

#[test]
fn a_hand_off_at_a_prompt_stops_cleanly_and_the_printed_command_finishes_the_run() {
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ran.log");
    let file = book(dir.path(), &log, false);
    let note = "db team paged; lag was 40s at 05:02";
    let s = spawn(
        &["run", file.to_str().unwrap(), "--operator", "alice"],
        audit.path(),
    );
    let (printed, screen) = hand_off_at_second(s, audit.path(), note);
    let words = printed_resume(&printed);
    assert!(
        screen.contains(&format!("runbook resume {}", words[2])),
        "{screen}"
    );
    assert!(screen.contains(&format!("note: {note}")), "{screen}");
    // The audit dir is not the default one: the command must name it to find the run.
    assert_eq!(
        words[3..],
        ["--audit-dir".to_string(), audit.path().display().to_string()]
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "first\n");
    let trail = trail_of(audit.path(), &words);
    assert_handed_off(&trail, Some(note));

    // The lock was let go, not left to a dead process: the same runbook and targets take it
    // free at once (this one hands off at its first step, unattended).
    runbook(["--audit-dir"])
        .arg(audit.path())
        .args(["run", file.to_str().unwrap(), "--yes", "--operator", "carol"])
        .args(["--answer", "first=hand off"])
        .expect_code(0);
    let taken = lock_words(audit.path(), &trail);
    assert!(taken.len() == 1 && taken[0].starts_with("free "), "{taken:?}");

    let out = paste_as_bob(&words);
    // Whoever takes over reads the note before anything else happens.
    assert!(
        out.stderr.contains(&format!("handed off by alice: {note}")),
        "{}",
        out.stderr
    );
    assert_finished_by_bob(&trail, &log, Some(note));

    let history = runbook(["--audit-dir"])
        .arg(audit.path())
        .arg("history")
        .expect_code(0)
        .stdout;
    assert!(history.contains("hand-offs"), "{history}");
    assert!(
        history.contains(&format!("alice {}", &screen_date())),
        "{history}"
    );
    assert!(history.contains(note), "{history}");
}

/// Today's date as history writes it (UTC): a hand-off's when.
fn screen_date() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

#[test]
fn over_ssh_a_hand_off_leaves_nothing_running_on_the_host_and_lets_go_of_its_lease() {
    let sshd = Sshd::start();
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // On the host: the fixture's login user writes it; the test reads it as the same file.
    let scratch = tempfile::Builder::new().prefix("rb-handoff").tempdir().unwrap();
    std::fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let log = scratch.path().join("ran.log");
    let file = book(dir.path(), &log, true);
    let target = format!("app={}", sshd.dest());
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--operator",
        "alice",
        "--target",
        &target,
    ];
    let ssh_args = sshd.ssh_args();
    args.extend(ssh_args.iter().map(String::as_str));
    let (printed, screen) = hand_off_at_second(spawn(&args, audit.path()), audit.path(), "");
    let words = printed_resume(&printed);
    assert!(
        screen.contains(&format!("runbook resume {}", words[2])),
        "{screen}"
    );
    // Everything the pasted command needs to reach the host again, as given.
    for flag in ["--identity", "--known-hosts", "--ssh-config"] {
        assert!(words.iter().any(|w| w == flag), "{flag} missing: {words:?}");
    }
    let trail = trail_of(audit.path(), &words);
    assert_handed_off(&trail, None);

    // Every connection the run had to the host is gone: no remote command, no lease holder.
    let config = sshd.dir.path().join("sshd_config");
    let listener = std::process::Command::new("pgrep")
        .args(["-o", "-f"])
        .arg(&config)
        .output()
        .unwrap();
    let listener: u32 = String::from_utf8_lossy(&listener.stdout)
        .trim()
        .parse()
        .expect("the sshd");
    crate::support::wait::until(
        Duration::from_secs(10),
        "the host has no session of the run",
        || descendants(listener).is_empty(),
    );

    // The lease was released, not left to time out: another run takes it free at once.
    runbook(["--audit-dir"])
        .arg(audit.path())
        .args([
            "run",
            file.to_str().unwrap(),
            "--yes",
            "--operator",
            "carol",
            "--target",
            &target,
        ])
        .args(&ssh_args)
        .args(["--answer", "first=handoff"])
        .expect_code(0);
    let taken = lock_words(audit.path(), &trail);
    assert_eq!(taken.len(), 2, "the run lock and the host's lease: {taken:?}");
    assert!(taken.iter().all(|t| t.starts_with("free ")), "{taken:?}");

    paste_as_bob(&words);
    assert_finished_by_bob(&trail, &log, None);
}

#[test]
fn an_answer_given_in_advance_hands_off_unattended_at_that_step() {
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ran.log");
    let file = book(dir.path(), &log, false);
    let out = runbook(["--audit-dir"])
        .arg(audit.path())
        .args(["run", file.to_str().unwrap(), "--yes", "--operator", "alice"])
        .args(["--answer", "second=handoff"])
        .expect_code(0);
    assert!(
        out.stderr.contains("handed off at [2/3] second"),
        "{}",
        out.stderr
    );
    let words = printed_resume(&out.stderr);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "first\n");
    let trail = trail_of(audit.path(), &words);
    assert_handed_off(&trail, None);
    paste_as_bob(&words);
    assert_finished_by_bob(&trail, &log, None);
}

#[test]
fn a_hand_off_answer_needs_nothing_of_the_steps_after_it() {
    // A manual step after the hand-off would need a human; the walk never gets there.
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manual.yaml");
    std::fs::write(
        &file,
        "version: 1\nid: manual-after\ntitle: Manual after\nrto: 5m\nsteps:\n  - id: check\n    title: Check\n    run: 'true'\n  - id: call\n    title: Call the vendor\n    manual: Ring them\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    let run = |answer: Option<&str>| {
        let mut run =
            runbook(["--audit-dir"])
                .arg(audit.path())
                .args(["run", file.to_str().unwrap(), "--yes"]);
        if let Some(answer) = answer {
            run = run.args(["--answer", answer]);
        }
        run.output()
    };
    let refused = run(None);
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(refused.stderr.contains("call: manual step"), "{}", refused.stderr);
    for answer in ["check=handoff", "call=Hand-Off"] {
        let out = run(Some(answer));
        assert_eq!(out.code, Some(0), "{answer}: {}", out.stderr);
        assert!(out.stderr.contains("runbook resume "), "{}", out.stderr);
    }
}

/// The printed command run as printed, in a terminal, by `who`.
fn paste_in_a_terminal(words: &[String], who: &str) -> Session {
    let mut command = std::process::Command::new(bin());
    command
        .args(&words[1..])
        .args(["--operator", who])
        .env("TERM", "xterm")
        .env_remove("RUNBOOK_SIGNING_KEY")
        .env_remove("SSH_AUTH_SOCK");
    start(command)
}

/// Hand off at a manual step's report and at a decision: the report is asked again after the
/// resume (nothing ran: not an unknown step), and one run can be handed on twice.
#[test]
fn a_manual_report_and_a_decision_hand_off_and_are_asked_again_after_the_resume() {
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ring.yaml");
    std::fs::write(
        &file,
        "version: 1\nid: ring\ntitle: Ring\nrto: 5m\nsteps:\n  - id: ring\n    title: Ring the vendor\n    manual: Call them\n  - id: pick\n    title: Pick\n    choose:\n      - {label: Go on, goto: done}\n      - {label: Give up, goto: stop}\n  - id: done\n    title: Done\n    end: resolved\n  - id: stop\n    title: Stop\n    end: escalated\n",
    )
    .unwrap();
    let mut s = spawn(
        &["run", file.to_str().unwrap(), "--operator", "alice"],
        audit.path(),
    );
    s.exp_string("How did it go?").unwrap();
    // Done, Skip it, It failed, Hand off, Abort the run: Up twice from Done.
    press(&mut s, audit.path(), &format!("{UP}{UP}\r"));
    s.exp_string("Note for whoever takes over").unwrap();
    press(&mut s, audit.path(), "vendor ticket 4411, no answer yet\r");
    s.exp_string("To take over, paste").unwrap();
    let words = printed_resume(&s.exp_eof().unwrap());
    assert_eq!(wait_exit(&mut s), 0);
    let trail = trail_of(audit.path(), &words);

    let mut s = paste_in_a_terminal(&words, "bob");
    s.exp_string("handed off by alice: vendor ticket 4411, no answer yet")
        .unwrap();
    s.exp_string("How did it go?").unwrap();
    press(&mut s, audit.path(), "\r"); // Done
    s.exp_string("Decision").unwrap();
    // The options, then Hand off: Up from the first option.
    press(&mut s, audit.path(), &format!("{UP}\r"));
    s.exp_string("Note for whoever takes over").unwrap();
    press(&mut s, audit.path(), "\r");
    s.exp_string("To take over, paste").unwrap();
    assert_eq!(printed_resume(&s.exp_eof().unwrap()), words);
    assert_eq!(wait_exit(&mut s), 0);

    runbook(&words[1..])
        .args(["--operator", "carol", "--yes"])
        .expect_code(0);
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
    let trail = events(&trail);
    let handed: Vec<(&str, &str)> = named(&trail, "handed off")
        .iter()
        .map(|e| (e["operator"].as_str().unwrap(), e["step"].as_str().unwrap()))
        .collect();
    assert_eq!(handed, [("alice", "ring"), ("bob", "pick")]);
    let reports: Vec<&str> = trail
        .iter()
        .filter(|e| e["event"] == "step finished" && e["step"] == "ring")
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(reports, ["ok"], "the manual step is reported once, by bob");
    assert_eq!(named(&trail, "decision")[0]["operator"], "carol");
    assert_eq!(named(&trail, "run finished")[0]["outcome"], "resolved");
}

/// The note is the operator's text: a secret of the run typed into it is recorded masked, as
/// in any note, and never shown back in clear when the run stops.
#[test]
fn a_secret_typed_into_the_note_is_recorded_masked() {
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.yaml");
    std::fs::write(
        &file,
        "version: 1\nid: secret-note\ntitle: Secret note\nrto: 5m\ninputs:\n  token: {secret: true}\nsteps:\n  - id: use\n    title: Use it\n    run: test -n \"$token\"\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    let secret = "hunter2-4f9a";
    let args = [
        "run",
        file.to_str().unwrap(),
        "--operator",
        "alice",
        "--set-from",
        "token=env:RB_NOTE_TOKEN",
    ];
    let mut s = spawn_env(&args, audit.path(), &[("RB_NOTE_TOKEN", secret)]);
    s.exp_string("What now?").unwrap();
    press(&mut s, audit.path(), &format!("{UP}{UP}\r"));
    s.exp_string("Note for whoever takes over").unwrap();
    press(
        &mut s,
        audit.path(),
        &format!("the token {secret} expires at 06:00\r"),
    );
    s.exp_string("note: the token *** expires at 06:00").unwrap();
    let words = printed_resume(&s.exp_eof().unwrap());
    assert_eq!(wait_exit(&mut s), 0);
    let trail = std::fs::read_to_string(trail_of(audit.path(), &words)).unwrap();
    assert!(!trail.contains(secret), "{trail}");
    let handed: Vec<Value> = trail
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "handed off")
        .collect();
    assert_eq!(handed[0]["note"], "the token *** expires at 06:00");
}

/// A decision whose option is called "Hand off" takes that option: the answer names it.
#[test]
fn an_option_named_hand_off_is_picked_not_a_hand_off() {
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pick.yaml");
    std::fs::write(
        &file,
        "version: 1\nid: pick\ntitle: Pick\nrto: 5m\nsteps:\n  - id: pick\n    title: Pick\n    choose:\n      - {label: Carry on, goto: done}\n      - {label: Hand off, goto: page}\n  - id: done\n    title: Done\n    end: resolved\n  - id: page\n    title: Page the owners\n    end: escalated\n",
    )
    .unwrap();
    let out = runbook(["--audit-dir"])
        .arg(audit.path())
        .args([
            "run",
            file.to_str().unwrap(),
            "--yes",
            "--answer",
            "pick=Hand off",
        ])
        .expect_code(3);
    assert!(!out.stderr.contains("runbook resume"), "{}", out.stderr);
    let trail = events(&audit_files(audit.path()).pop().unwrap());
    assert_eq!(named(&trail, "decision")[0]["goto"], "page");
    assert!(named(&trail, "handed off").is_empty());
}
