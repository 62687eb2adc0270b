//! Interactive runs in a real pseudo-terminal: the prompts an engineer answers at 3 a.m.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::cmd::{bin, root};
use crate::support::pty::{DOWN, keys, pgrep, spawn, wait_exit};

#[test]
fn typed_confirmation_refuses_a_wrong_phrase_then_runs() {
    let audit = tempfile::tempdir().unwrap();
    let file = root().join("tests/data/run/manual.yaml");
    let mut s = spawn(&["run", file.to_str().unwrap()], audit.path());
    s.exp_string("How did it go?").unwrap();
    keys(&mut s, "\r"); // Done
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r"); // Run it
    s.exp_string("Type `app` to go ahead").unwrap();
    keys(&mut s, "apps\r");
    s.exp_string("the phrase does not match").unwrap();
    s.exp_string("Type `app` to go ahead").unwrap();
    keys(&mut s, "app\r");
    s.exp_string("dropping app").unwrap();
    s.exp_string("Decision").unwrap();
    keys(&mut s, "\r");
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
}

#[test]
fn ctrl_c_stops_the_command_and_asks_what_next() {
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("ctrlc-marker-{}", std::process::id());
    let file = dir.path().join("slow.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nid: slow\ntitle: Slow\nrto: 1m\nsteps:\n  - id: wait\n    title: Wait\n    run: echo started; sh -c 'sleep 300' {marker}\n  - id: done\n    title: Done\n    end: resolved\n"
        ),
    )
    .unwrap();
    let mut s = spawn(&["run", file.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("started").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.send_control('c').unwrap();
    s.exp_string("cancelled").unwrap();
    s.exp_string("The step did not succeed. What now?").unwrap();
    // The command is gone while the operator decides.
    let gone = Instant::now() + Duration::from_secs(10);
    while pgrep(&marker) {
        assert!(Instant::now() < gone, "the command survived Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Abort is the last item (Up from the first wraps to it), then confirmed.
    keys(&mut s, "\x1b[A\r");
    s.exp_string("Abort the run?").unwrap();
    keys(&mut s, "y\r");
    s.exp_string("Why abort?").unwrap();
    keys(&mut s, "it hangs\r");
    s.exp_string("run aborted").unwrap();
    s.exp_string("aborted by the operator after `wait` failed: it hangs")
        .unwrap();
    assert_eq!(wait_exit(&mut s), 3);
}

/// Writes `text` to `book`, runs it unattended and kills the run (SIGKILL) once its command
/// has written `mark` to `log`: the crash is mid-step, never before the command's own line
/// (`step started` is on disk before the command runs). Returns the trail.
fn crashed_mid_step(
    audit: &std::path::Path,
    book: &std::path::Path,
    text: &str,
    log: &std::path::Path,
    mark: &str,
) -> std::path::PathBuf {
    std::fs::write(book, text).unwrap();
    let mut child = Command::new(bin())
        .args(["run", "--yes", "--audit-dir"])
        .arg(audit)
        .arg(book)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let trail = crate::support::trail::wait_for_started(audit);
    crate::support::wait::for_text(log, mark);
    child.kill().unwrap();
    child.wait().unwrap();
    trail
}

/// A step cut off by a crash is unknown: resumed on a terminal, the operator marks it done and
/// the run goes on without running it again.
#[test]
fn resume_asks_about_an_unknown_step_and_marking_it_done_goes_on() {
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ran.log");
    let book = dir.path().join("crash.yaml");
    let trail = crashed_mid_step(
        audit.path(),
        &book,
        &format!(
            "version: 1\nid: crash\ntitle: Crash\nrto: 5m\nsteps:\n  - id: slow\n    title: Slow\n    run: echo slow >> {log}; sleep 30\n  - id: after\n    title: After\n    run: echo after >> {log}\n  - id: done\n    title: Done\n    end: resolved\n",
            log = log.display()
        ),
        &log,
        "slow",
    );

    let mut s = spawn(
        &["resume", trail.to_str().unwrap(), "--operator", "bob"],
        audit.path(),
    );
    s.exp_string("never finished").unwrap();
    keys(&mut s, &format!("{DOWN}\r")); // "Mark it done (it did finish)"
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r"); // run `after`
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "slow\nafter\n",
        "`slow` did not run again"
    );
    let text = std::fs::read_to_string(&trail).unwrap();
    assert!(text.contains("\"outcome\":\"marked done\""), "{text}");
    assert!(text.contains("\"answer\":\"marked done\""), "{text}");
    // The review counts the time at the resume's question as bob's time on `slow`, not as a
    // gap after the last step.
    let review = crate::support::cmd::runbook(["review", "--format", "json"])
        .arg(&trail)
        .expect_code(0)
        .stdout;
    let review: serde_json::Value = serde_json::from_str(&review).unwrap();
    let review = review["runs"][0].clone();
    let steps = review["steps"].as_array().unwrap();
    let visits: Vec<&str> = steps.iter().map(|v| v["step"].as_str().unwrap()).collect();
    let ms = |v: &serde_json::Value, key: &str| v[key].as_u64().unwrap();
    // From the resume to the next step, the time is the re-visit of `slow` (the question
    // answered), and no gap covers any of it.
    let resumed = review["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "crash_until_resume")
        .map(|g| ms(g, "start_ms") + ms(g, "ms"))
        .expect("the crash gap");
    assert_eq!(ms(&steps[1], "start_ms"), resumed, "{review}");
    assert_eq!(
        ms(&steps[1], "start_ms") + ms(&steps[1], "took_ms"),
        ms(&steps[2], "start_ms"),
        "{review}"
    );
    for g in review["gaps"].as_array().unwrap() {
        let (from, to) = (ms(g, "start_ms"), ms(g, "start_ms") + ms(g, "ms"));
        assert!(
            to <= resumed || from >= ms(&steps[2], "start_ms"),
            "a gap over the resume's question: {g}"
        );
    }
    assert_eq!(visits, ["slow", "slow", "after", "done"], "{review}");
}

/// Issue 23 #8, on a terminal: a cleanup step cut off by a crash is unknown too. The operator
/// is asked, marks it done, and the run is sealed without running it again or ending its walk
/// twice.
#[test]
fn resume_asks_about_an_unknown_cleanup_step_and_marking_it_done_seals_the_run() {
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ran.log");
    let book = dir.path().join("crash.yaml");
    let trail = crashed_mid_step(
        audit.path(),
        &book,
        &format!(
            "version: 1\nid: crash\ntitle: Crash\nrto: 5m\nsteps:\n  - id: done\n    title: Done\n    end: resolved\ncleanup:\n  - id: tidy\n    title: Tidy\n    run: echo tidy >> {log}; sleep 30\n",
            log = log.display()
        ),
        &log,
        "tidy",
    );

    let mut s = spawn(
        &["resume", trail.to_str().unwrap(), "--operator", "bob"],
        audit.path(),
    );
    s.exp_string("never finished").unwrap();
    keys(&mut s, &format!("{DOWN}\r")); // "Mark it done (it did finish)"
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "tidy\n",
        "`tidy` did not run again"
    );
    let text = std::fs::read_to_string(&trail).unwrap();
    assert!(text.contains("\"outcome\":\"marked done\""), "{text}");
    assert!(text.contains("\"answer\":\"marked done\""), "{text}");
    assert_eq!(text.matches("\"event\":\"walk ended\"").count(), 1, "{text}");
    crate::support::cmd::runbook(["audit", "verify"])
        .arg(&trail)
        .expect_code(0);
}

/// *Go to another step* after a failure lists each step as `id — title` (the title escaped),
/// marks where the run has been and the step that failed, and filters as the operator types:
/// part of a title narrows the list, Enter goes there. The trail records the step id (issue
/// 25: it listed bare ids and could not filter).
#[test]
fn go_to_lists_titles_filters_as_typed_and_records_the_step_id() {
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("goto.yaml");
    std::fs::write(
        &file,
        "version: 1\nid: goto\ntitle: Goto\nrto: 10m\nsteps:\n  - id: look\n    title: Look around\n    run: echo looked\n  - id: check\n    title: Check the disk\n    run: 'false'\n  - id: restart\n    title: Restart the workers\n    run: echo restarted\n  - id: drain\n    title: Drain the load balancer\n    run: echo drained\n  - id: rollback\n    title: \"Roll back \\e[2J now\"\n    run: echo rolled\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    let mut s = spawn(&["run", file.to_str().unwrap()], audit.path());
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r"); // look: run it
    s.exp_string("Check the disk").unwrap();
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r"); // check: run it, it fails
    s.exp_string("The step did not succeed. What now?").unwrap();
    s.exp_string("Go to another step").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(2))); // Retry, Skip, Go to
    s.exp_string("Go to (type to filter").unwrap();
    // (The expectations read bytes: the list's `—` is checked on the screen.)
    let screen = on_screen(&s, |screen| screen.contains("done — Done"));
    for row in [
        "look — Look around  (visited)",
        "check — Check the disk  (here)",
        "restart — Restart the workers",
        "drain — Drain the load balancer",
        "rollback — Roll back \\x1b[2J now",
    ] {
        assert!(screen.contains(row), "{row}: {screen}");
    }
    let selected: Vec<&str> = screen.lines().filter(|l| l.contains('❯')).collect();
    assert_eq!(selected.len(), 1, "{screen}");
    assert!(selected[0].contains("check — Check the disk"), "{screen}");
    // Ctrl-C there asks, as at every prompt; no comes back to the list. Esc goes back to the
    // failure menu, and Go to again.
    s.send_control('c').unwrap();
    s.exp_string("Ctrl-C: abort the run?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("Go to (type to filter").unwrap();
    keys(&mut s, "\x1b");
    s.exp_string("The step did not succeed. What now?").unwrap();
    s.exp_string("Abort the run").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(2)));
    s.exp_string("Go to (type to filter").unwrap();
    on_screen(&s, |screen| {
        screen
            .rfind("Go to (type to filter")
            .is_some_and(|at| screen[at..].contains("done — Done"))
    });
    keys(&mut s, "balancer");
    // Drawn once the prompt shows the whole filter and the row that matches it.
    let narrowed = on_screen(&s, |screen| {
        screen
            .lines()
            .any(|l| l.contains("Go to (type to filter") && l.contains("balancer"))
            && screen.contains("drain — Drain the load balancer")
    });
    // The list as drawn now: below the prompt (a prompt a Ctrl-C left stays above, as drawn).
    let list = &narrowed[narrowed.rfind("Go to (type to filter").unwrap()..];
    for gone in ["restart —", "look —", "check —", "rollback —", "done —"] {
        assert!(!list.contains(gone), "{gone}: {narrowed}");
    }
    keys(&mut s, "\r");
    s.exp_string("What now?").unwrap();
    let screen = s.screen().contents();
    s.send_control('c').unwrap();
    s.exp_string("Ctrl-C: abort the run?").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.send_control('c').unwrap();
    assert_eq!(wait_exit(&mut s), 3);
    let trail = crate::support::trail::audit_files(audit.path()).pop().unwrap();
    let events = crate::support::trail::events(&trail);
    let answered = events
        .iter()
        .position(|e| e["event"] == "answer" && e["question"] == "after failure")
        .unwrap_or_else(|| panic!("no answer after failure: {events:?}"));
    assert_eq!(events[answered]["step"], "check");
    assert_eq!(events[answered]["answer"], "go to drain");
    let next = events[answered..]
        .iter()
        .find(|e| e["event"] == "step presented")
        .unwrap();
    assert_eq!(next["step"], "drain", "{screen}");
}

/// The screen once `ready` holds for it (or as it is after 10 s, for the assertion to show).
fn on_screen(s: &crate::support::pty::Session, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let screen = s.screen().contents();
        if ready(&screen) || Instant::now() > deadline {
            return screen;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
