//! Issue 25, item 1: a paste of 15 lines of `systemctl status` at "What did it print?"
//! answered the prompts after it, one line each: a decision, the typed confirmation, a
//! cancelled restart, `resolved` on a PROD host. With bracketed paste on while a prompt is
//! open, a paste is one value: the whole text where a text field asks (one answer, recorded
//! whole), nothing at a menu.

use crate::support::pty::{DOWN, Session, keys, spawn, wait_exit};
use crate::support::trail::{audit_files, events};

/// Arrow up, as a terminal sends it.
const UP: &str = "\x1b[A";

const BOOK: &str = r#"version: 1
id: paste
title: Paste
rto: 5m
steps:
  - id: check
    title: Check the service
    run: systemctl status app
    capture: status
  - id: healthy
    title: Healthy?
    choose:
      - {label: Healthy, goto: done, when: {var: status, equals: ok}}
      - {label: Restart it, goto: restart}
  - id: restart
    title: Restart
    run: echo restarted
    confirm: restart app
  - id: done
    title: Done
    end: resolved
"#;

/// What a terminal with bracketed paste on sends for a paste: its line breaks as CR.
fn bracketed(text: &str) -> String {
    format!("\x1b[200~{}\x1b[201~", text.replace('\n', "\r"))
}

/// 15 lines, as copied from a terminal: a blank line, lines that start with a menu's keys
/// (`j`, `k`, a space), the phrase the confirmation asks for, a trailing line break.
fn status() -> String {
    let lines = [
        "● app.service - App",
        "     Loaded: loaded (/etc/systemd/system/app.service; enabled)",
        "     Active: active (running) since Sun 2026-12-06 23:01:02 UTC; 2min ago",
        "",
        "   Main PID: 4242 (app)",
        "      Tasks: 9 (limit: 4915)",
        "     Memory: 120.0M",
        "        CPU: 1.234s",
        "     CGroup: /system.slice/app.service",
        "             └─4242 /usr/bin/app --serve",
        "",
        "j k",
        "restart app",
        "Dec 06 23:01:02 prod-1 systemd[1]: Started App.",
        "Dec 06 23:01:03 prod-1 app[4242]: listening on :8080",
    ];
    assert_eq!(lines.len(), 15);
    lines.join("\n") + "\n"
}

struct Run {
    s: Session,
    audit: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

fn start() -> Run {
    let dir = tempfile::tempdir().unwrap();
    let audit = tempfile::tempdir().unwrap();
    let file = dir.path().join("paste.yaml");
    std::fs::write(&file, BOOK).unwrap();
    let s = spawn(&["run", file.to_str().unwrap()], audit.path());
    Run { s, audit, _dir: dir }
}

/// Runs `check` by hand and reports it done: the run asks what it printed.
fn to_capture(s: &mut Session) {
    s.exp_string("What now?").unwrap();
    keys(s, &format!("{}\r", DOWN.repeat(3))); // Run it by hand
    s.exp_string("How did it go?").unwrap();
    keys(s, "\r"); // Done
    s.exp_string("What did it print?").unwrap();
}

fn trail(audit: &std::path::Path) -> Vec<serde_json::Value> {
    events(&audit_files(audit).pop().unwrap())
}

fn captured(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "answer" && e["question"] == "value of `status` (captured by hand)")
        .map(|e| e["answer"].as_str().unwrap().to_string())
        .collect()
}

/// Steps started, and decisions taken.
fn acted(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "step started" || e["event"] == "decision")
        .map(|e| {
            format!(
                "{} {}",
                e["event"].as_str().unwrap(),
                e["step"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// The screen's rows from the last one holding `from`, blank ones and the RTO line left out.
fn rows_from(s: &Session, from: &str) -> String {
    let rows: Vec<String> = s.screen().rows(0, crate::support::pty::COLS).collect();
    let start = rows.iter().rposition(|r| r.contains(from)).expect("the row");
    rows[start..]
        .iter()
        .map(|r| r.trim_end())
        .filter(|r| !r.is_empty() && !r.contains("RTO left"))
        // A step's time varies from run to run.
        .map(|r| r.split_once(": ok in ").map_or(r, |(before, _)| before))
        .collect::<Vec<_>>()
        .join("\n")
}

fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(800));
}

#[test]
fn a_paste_at_what_did_it_print_is_one_value_and_answers_nothing_after() {
    let mut r = start();
    let s = &mut r.s;
    to_capture(s);
    keys(s, &bracketed(&status()));
    settle();
    // The field holds the paste, its line breaks shown escaped; nothing is answered until Enter.
    insta::assert_snapshot!("paste_in_the_field", rows_from(s, "What did it print?"));
    assert!(
        captured(&trail(r.audit.path())).is_empty(),
        "the paste answered the field"
    );
    keys(s, "\r");
    s.exp_string("Decision").unwrap();
    settle();
    let events = trail(r.audit.path());
    assert_eq!(
        captured(&events),
        [status().trim()],
        "not recorded whole, as one value"
    );
    assert_eq!(
        acted(&events),
        ["step started check"],
        "a later prompt was answered"
    );
    insta::assert_snapshot!("paste_answered", rows_from(s, "What did it print?"));
    // Still at the decision: it takes the operator's keys.
    keys(s, &format!("{UP}\r")); // Healthy, just above Restart it (Hand off is below it)
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(s), 0);
}

#[test]
fn a_paste_at_a_menu_picks_nothing() {
    let mut r = start();
    let s = &mut r.s;
    s.exp_string("What now?").unwrap();
    keys(s, &bracketed(&status()));
    settle();
    assert_eq!(
        acted(&trail(r.audit.path())),
        Vec::<String>::new(),
        "the paste picked"
    );
    s.exp_string("a paste is not an answer here").unwrap();
    settle();
    insta::assert_snapshot!("paste_at_a_menu", rows_from(s, "What now?"));
    // The menu is as it was, and takes keys.
    keys(s, &format!("{}\r", DOWN.repeat(3)));
    s.exp_string("How did it go?").unwrap();
    keys(s, &bracketed("\n\nj\n \n"));
    s.exp_string("a paste is not an answer here").unwrap();
    keys(s, &format!("{UP}\r")); // Abort the run, the last
    s.exp_string("Abort the run?").unwrap();
    keys(s, &bracketed("y\n"));
    settle();
    assert!(
        !s.screen().contents().contains("Why abort?"),
        "the paste answered yes"
    );
    keys(s, "y\r");
    s.exp_string("Why abort?").unwrap();
    keys(s, "test\r");
    s.exp_string("run aborted").unwrap();
    wait_exit(s);
}

/// The raw bytes: paste brackets on when a prompt opens, off after it, before the program ends.
fn brackets_left_on(raw: &[u8]) -> (usize, bool) {
    let text = String::from_utf8_lossy(raw);
    let on = text.matches("\x1b[?2004h").count();
    let last_on = text.rfind("\x1b[?2004h");
    let off_after = last_on.is_some_and(|at| text[at..].contains("\x1b[?2004l"));
    (on, off_after)
}

#[test]
fn bracketed_paste_is_on_while_a_prompt_reads_and_off_at_the_end() {
    let mut r = start();
    let s = &mut r.s;
    s.exp_string("What now?").unwrap();
    let (on, _) = brackets_left_on(&s.raw());
    assert!(on >= 1, "no ESC[?2004h when the prompt opened");
    keys(s, &format!("{UP}\r")); // Abort the run, the last
    s.exp_string("Abort the run?").unwrap();
    keys(s, "y\r");
    s.exp_string("Why abort?").unwrap();
    keys(s, "test\r");
    s.exp_string("run aborted").unwrap();
    wait_exit(s);
    let (on, off) = brackets_left_on(&s.raw());
    assert!(on >= 3, "{on} prompts with bracketed paste");
    assert!(off, "bracketed paste left on at the exit");
}

#[test]
fn bracketed_paste_is_off_after_ctrl_c_aborts() {
    let mut r = start();
    let s = &mut r.s;
    s.exp_string("What now?").unwrap();
    keys(s, "\x03");
    s.exp_string("Ctrl-C: abort the run?").unwrap();
    keys(s, "\x03");
    s.exp_string("run aborted").unwrap();
    wait_exit(s);
    let (on, off) = brackets_left_on(&s.raw());
    assert!(on >= 1, "{on}");
    assert!(off, "bracketed paste left on after Ctrl-C");
}

/// A terminal without bracketed paste sends a paste as keys: its first line answers the field
/// (there is no telling it from typing), and the rest, still pending when the next prompt
/// opens, is flushed: it answers nothing.
#[test]
fn a_paste_without_brackets_is_flushed_at_the_next_prompt() {
    let mut r = start();
    let s = &mut r.s;
    to_capture(s);
    keys(s, &status().replace('\n', "\r"));
    s.exp_string("Decision").unwrap();
    settle();
    let events = trail(r.audit.path());
    assert_eq!(captured(&events), ["● app.service - App"]);
    assert_eq!(
        acted(&events),
        ["step started check"],
        "a later prompt was answered"
    );
    keys(s, &format!("{UP}\r")); // Healthy, just above Restart it
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(s), 0);
}

/// The issue's paste tried three of its lines as the typed confirmation. A one-line field
/// refuses a paste of several lines and says so; a line pasted with its line break is taken as
/// text, and only Enter answers.
#[test]
fn a_paste_of_several_lines_is_refused_by_a_one_line_field() {
    let mut r = start();
    let s = &mut r.s;
    to_capture(s);
    keys(s, "degraded\r");
    s.exp_string("Decision").unwrap();
    keys(s, "\r"); // Restart it, preselected
    s.exp_string("What now?").unwrap();
    keys(s, "\r"); // Run it
    s.exp_string("Type `restart app` to go ahead").unwrap();
    keys(s, &bracketed("restart app\nsudo systemctl restart app\n"));
    s.exp_string("a paste of 2 lines is not an answer to this one-line question")
        .unwrap();
    settle();
    let events = trail(r.audit.path());
    assert!(
        !acted(&events).contains(&"step started restart".to_string()),
        "{:?}",
        acted(&events)
    );
    keys(s, &bracketed("restart app\n"));
    settle();
    assert!(
        !acted(&trail(r.audit.path())).contains(&"step started restart".to_string()),
        "the line break of a paste answered the field"
    );
    keys(s, "\r");
    s.exp_string("restarted").unwrap();
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(s), 0);
}

#[test]
fn bracketed_paste_is_off_after_sigterm_at_a_prompt() {
    let mut r = start();
    let s = &mut r.s;
    s.exp_string("What now?").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.process_mut().signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    s.exp_string("run interrupted").unwrap();
    assert_eq!(wait_exit(s), 130);
    let (on, off) = brackets_left_on(&s.raw());
    assert!(on >= 1, "{on}");
    assert!(off, "bracketed paste left on after SIGTERM");
}

/// A secret pasted where a step given a secret asks what it printed: taken whole without its
/// line break, unseen, recorded masked; the decision judges it.
#[test]
fn a_pasted_secret_capture_is_taken_whole_and_unseen() {
    let dir = tempfile::tempdir().unwrap();
    let audit = tempfile::tempdir().unwrap();
    let file = dir.path().join("paste.yaml");
    let book = BOOK
        .replace(
            "steps:\n",
            "inputs:\n  token: {description: A token, secret: true}\nsteps:\n",
        )
        .replace("run: systemctl status app", "run: test -n \"$token\" && echo ok")
        .replace("equals: ok", "equals: ok-pasted-unseen");
    std::fs::write(&file, book).unwrap();
    let args = ["run", file.to_str().unwrap(), "--set", "token=tok-s3cr3t"];
    let s = &mut spawn(&args, audit.path());
    to_capture(s);
    keys(s, &bracketed("ok-pasted-unseen\n"));
    settle();
    assert!(
        captured(&trail(audit.path())).is_empty(),
        "the paste's line break answered"
    );
    keys(s, "\r");
    s.exp_string("Decision").unwrap();
    keys(s, "\r"); // Healthy, preselected: `status` is what was pasted
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(s), 0);
    let raw = String::from_utf8_lossy(&s.raw()).into_owned();
    assert!(!raw.contains("ok-pasted-unseen"), "the pasted secret was shown");
    assert_eq!(captured(&trail(audit.path())), ["***"]);
}
