//! Issue 25, item 5: "Edit the command first" without `$EDITOR` was append-only: Home and
//! Ctrl-A did nothing, so `sleep 30; ` landed at the end (`df -hsleep 30;`). Driven here in a
//! real pseudo-terminal with the keys a terminal sends: the line editor's keys, the diff shown
//! before anything runs, the confirmation, and `$VISUAL` / `$EDITOR` when set.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::pty::{self, DOWN, Session, keys, wait_exit};
use crate::support::trail::{audit_files, events};

/// One step that appends a word to `out` in the run's directory: what ran is in the file.
const BOOK: &str = "version: 1
id: ed
title: Edit
rto: 5m
steps:
  - id: act
    title: Act
    run: echo b >> out
  - id: done
    title: Done
    end: resolved
";

/// `runbook run` of `book` in `dir` (its working directory), in a pty, with `env` set and
/// neither `$VISUAL` nor `$EDITOR` unless `env` sets them.
fn start(dir: &Path, audit: &Path, book: &str, env: &[(&str, &str)]) -> Session {
    let file = dir.join("ed.yaml");
    std::fs::write(&file, book).unwrap();
    let mut command = Command::new(crate::support::cmd::bin());
    command
        .args(["run", file.to_str().unwrap(), "--audit-dir"])
        .arg(audit)
        .current_dir(dir)
        .env("TERM", "xterm")
        .env("USER", "tester")
        .env_remove("NO_COLOR")
        .env_remove("RUNBOOK_PATH")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("VISUAL")
        .env_remove("EDITOR");
    for (name, value) in env {
        command.env(name, value);
    }
    pty::start(command)
}

/// Up to the inline editor: "Edit the command first" chosen at the step's prompt.
fn to_the_editor(s: &mut Session) {
    s.exp_string("What now?").unwrap();
    keys(s, &format!("{}\r", DOWN.repeat(2)));
    s.exp_string("Command").unwrap();
}

/// "Yes, run it as edited" at the confirmation, and the run to its end.
fn confirm_and_finish(s: &mut Session) {
    s.exp_string("Run the edited command?").unwrap();
    keys(s, &format!("{DOWN}\r"));
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(s), 0);
}

/// The trail's `edit` event (before, after) and the command `act` started with.
fn recorded(audit: &Path) -> (Option<(String, String)>, String) {
    let trail = events(&audit_files(audit).pop().unwrap());
    let edit = trail.iter().find(|e| e["event"] == "edit").map(|e| {
        (
            e["before"].as_str().unwrap().to_string(),
            e["after"].as_str().unwrap().to_string(),
        )
    });
    let started = trail
        .iter()
        .find(|e| e["event"] == "step started" && e["step"] == "act")
        .expect("act started");
    (edit, started["command"].as_str().unwrap().to_string())
}

/// Edits the one-line command with `typed` (keys, Enter included), confirms, and checks that
/// exactly `expected` ran and was recorded as the edit, and that `out` then holds `written`.
fn edits_to(typed: &str, expected: &str, written: &str) {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut s = start(dir.path(), audit.path(), BOOK, &[]);
    to_the_editor(&mut s);
    keys(&mut s, typed);
    confirm_and_finish(&mut s);
    let (edit, ran) = recorded(audit.path());
    assert_eq!(ran, expected, "keys {typed:?}");
    assert_eq!(edit, Some(("echo b >> out".to_string(), expected.to_string())));
    // Run by `sh` in the run's directory: its effect is there.
    let out = std::fs::read_to_string(dir.path().join("out")).unwrap_or_default();
    assert_eq!(out, written, "keys {typed:?}");
}

#[test]
fn home_in_each_form_a_terminal_sends_puts_a_prefix_at_the_start() {
    // CSI H (xterm), CSI 1 ~ (tmux, linux console), SS3 H (application cursor mode), Ctrl-A.
    for home in ["\x1b[H", "\x1b[1~", "\x1bOH", "\x01"] {
        edits_to(
            &format!("{home}echo a >> out; \r"),
            "echo a >> out; echo b >> out",
            "a\nb\n",
        );
    }
}

#[test]
fn end_and_the_arrows_move_where_the_text_goes() {
    // Ctrl-A, → ×5 (after `echo `), `a`; Ctrl-E, append; ← ×8 (before `c`), `x`; End.
    edits_to(
        &format!(
            "\x01{}a\x05; echo c >> out{}x\x1b[F\r",
            "\x1b[C".repeat(5),
            "\x1b[D".repeat(8)
        ),
        "echo ab >> out; echo xc >> out",
        "ab\nxc\n",
    );
    // SS3 Home, arrows and End, as a terminal in application cursor mode sends them.
    edits_to(
        &format!("\x1bOH{}z\x1bOF\r", "\x1bOC".repeat(5)),
        "echo zb >> out",
        "zb\n",
    );
}

#[test]
fn ctrl_w_and_ctrl_u_cut_before_the_cursor() {
    // Ctrl-W at the end: the word `out` goes, `w` is typed instead.
    edits_to("\x17w\r", "echo b >> w", "");
    // Ctrl-U with the cursor before `out`: everything before it goes.
    edits_to("\x1b[D\x1b[D\x1b[D\x15echo u >> \r", "echo u >> out", "u\n");
    // Ctrl-Left (CSI 1;5D) is a word back, not `5D` typed into the command: twice to before
    // `>>`, then Ctrl-W twice takes `b ` and `echo `.
    edits_to("\x1b[1;5D\x1b[1;5D\x17\x17echo k \r", "echo k >> out", "k\n");
}

/// The screen's rows from the last one that holds `from`, blank rows and the status line
/// (its clock ticks) left out.
fn rows_from(s: &Session, from: &str) -> String {
    let rows: Vec<String> = s.screen().rows(0, pty::COLS).collect();
    let start = rows.iter().rposition(|r| r.contains(from)).expect("the row");
    rows[start..]
        .iter()
        .map(|r| r.trim_end())
        .filter(|r| !r.is_empty() && !r.contains("RTO left"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The diff is on the screen before anything runs, and an Enter alone there runs nothing.
#[test]
fn the_edit_is_shown_as_a_diff_and_runs_only_once_confirmed() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut s = start(dir.path(), audit.path(), BOOK, &[]);
    to_the_editor(&mut s);
    keys(&mut s, "\x01sleep 0; ");
    std::thread::sleep(Duration::from_millis(500));
    // While editing: the whole line, and the cursor just after the prefix typed at its start.
    let (row, col) = s.screen().cursor_position();
    let editing = format!("{}\ncursor after: {:?}", rows_from(&s, "Command"), {
        let line = s.screen().contents_between(row, 0, row, col);
        line.split('›').nth(1).unwrap_or_default().to_string()
    });
    insta::assert_snapshot!("edit_line_while_editing", editing);
    keys(&mut s, "\r");
    s.exp_string("Run the edited command?").unwrap();
    keys(&mut s, "\r");
    std::thread::sleep(Duration::from_millis(700));
    insta::assert_snapshot!("edit_diff_and_confirmation", rows_from(&s, "Command"));
    let trail = events(&audit_files(audit.path()).pop().unwrap());
    assert!(
        !trail
            .iter()
            .any(|e| e["event"] == "step started" || e["event"] == "edit"),
        "ran or recorded before it was confirmed: {trail:?}"
    );
    assert!(!dir.path().join("out").exists());
    keys(&mut s, &format!("{DOWN}\r"));
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
    assert_eq!(recorded(audit.path()).1, "sleep 0; echo b >> out");
}

/// "Edit it again" goes on from the edit; "No, keep the command as written" runs the original
/// after the step's own "Run it", with no edit recorded.
#[test]
fn edit_again_and_keep_the_original() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut s = start(dir.path(), audit.path(), BOOK, &[]);
    to_the_editor(&mut s);
    keys(&mut s, " x\r");
    s.exp_string("Run the edited command?").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(2))); // Edit it again
    s.exp_string("Command").unwrap();
    keys(&mut s, " y\r");
    s.exp_string("+ echo b >> out x y").unwrap();
    s.exp_string("Run the edited command?").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(3))); // No, keep the command as written
    s.exp_string("the command stays as written").unwrap();
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
    assert_eq!(recorded(audit.path()), (None, "echo b >> out".to_string()));
}

/// Ctrl-C at the editor asks "abort the run?" as at any prompt; "no" goes back to the editor
/// with what was typed.
#[test]
fn ctrl_c_at_the_editor_asks_to_abort_and_no_keeps_the_typing() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut s = start(dir.path(), audit.path(), BOOK, &[]);
    to_the_editor(&mut s);
    keys(&mut s, "\x01echo a >> out; ");
    std::thread::sleep(Duration::from_millis(300));
    s.send_control('c').unwrap();
    s.exp_string("Ctrl-C: abort the run?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("Command").unwrap();
    keys(&mut s, "\x05; echo c >> out\r");
    confirm_and_finish(&mut s);
    assert_eq!(
        recorded(audit.path()).1,
        "echo a >> out; echo b >> out; echo c >> out"
    );
}

/// SIGHUP at the editor (the terminal still there) is a hangup: exit 129, the trail open.
#[test]
fn sighup_at_the_editor_is_a_hangup() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut s = start(dir.path(), audit.path(), BOOK, &[]);
    to_the_editor(&mut s);
    keys(&mut s, "\x01x");
    pty::wait_reading(pty::pid_of(audit.path()));
    s.process_mut().signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    assert_eq!(pty::wait_exit_within(&mut s, Duration::from_secs(20)), 129);
    let trail = events(&audit_files(audit.path()).pop().unwrap());
    assert!(!trail.iter().any(|e| e["event"] == "run finished"), "{trail:?}");
    assert!(!dir.path().join("out").exists());
}

/// With `$VISUAL` set it is the editor (git's rule: before `$EDITOR`); its rewrite is shown
/// as a diff and runs once confirmed.
#[test]
fn visual_is_the_editor_when_set_and_its_edit_is_confirmed() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let script = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_string()
    };
    let visual = script("visual.sh", "sed -i 's/echo b/echo visual/' \"$1\"");
    let editor = script("editor.sh", "sed -i 's/echo b/echo editor/' \"$1\"");
    let mut s = start(
        dir.path(),
        audit.path(),
        BOOK,
        &[("VISUAL", &visual), ("EDITOR", &editor)],
    );
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(2)));
    s.exp_string("- echo b >> out").unwrap();
    s.exp_string("+ echo visual >> out").unwrap();
    confirm_and_finish(&mut s);
    assert_eq!(recorded(audit.path()).1, "echo visual >> out");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out")).unwrap(),
        "visual\n"
    );
}

/// A command of several lines and no editor: said plainly, nothing edited, back to the step.
#[test]
fn a_multi_line_command_without_an_editor_says_how_to_edit_it() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = BOOK.replace(
        "run: echo b >> out",
        "run: |\n      echo b >> out\n      echo c >> out",
    );
    let mut s = start(dir.path(), audit.path(), &book, &[]);
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(2)));
    s.exp_string("this command has 2 lines and the editor here edits one: set $VISUAL or $EDITOR")
        .unwrap();
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
    assert_eq!(recorded(audit.path()).0, None);
}

/// A command longer than the terminal is wide wraps; each key draws it again in place: after
/// Home and a prefix, the screen shows the line once, whole, and the cursor just after the
/// prefix, on the first row.
#[test]
fn a_line_wider_than_the_terminal_is_drawn_again_in_place() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let long = format!("echo b >> out; true {}", "x".repeat(120));
    let mut s = start(
        dir.path(),
        audit.path(),
        &BOOK.replace("echo b >> out", &long),
        &[],
    );
    to_the_editor(&mut s);
    keys(&mut s, "\x1b[Hecho a >> out; ");
    std::thread::sleep(Duration::from_millis(500));
    let edited = format!("echo a >> out; {long}");
    let screen = s.screen();
    let rows: Vec<String> = screen.rows(0, pty::COLS).collect();
    let first = rows
        .iter()
        .rposition(|r| r.starts_with("? Command"))
        .expect("the editor's row");
    assert!(
        rows[first - 1].contains("What now? · Edit the command first"),
        "left over above the line:\n{}",
        screen.contents()
    );
    let drawn = format!("{}{}", rows[first], rows[first + 1].trim_end());
    assert_eq!(drawn, format!("? Command › {edited}"), "{}", screen.contents());
    assert!(
        rows[first + 2..]
            .iter()
            .all(|r| r.trim().is_empty() || r.contains("RTO left")),
        "left over below the line:\n{}",
        screen.contents()
    );
    let prefix = "? Command › echo a >> out; ".chars().count() as u16;
    assert_eq!(screen.cursor_position(), (first as u16, prefix));
    keys(&mut s, "\r");
    confirm_and_finish(&mut s);
    assert_eq!(recorded(audit.path()).1, edited);
}
