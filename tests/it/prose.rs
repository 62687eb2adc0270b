//! A runbook's prose on the terminal (issue 25, item 10): its `description` and a step's
//! `notes` are Markdown, drawn without their markers (`**`, backticks, `[text](url)`), wrapped
//! at word boundaries to the terminal's width with their indent kept, code kept as written —
//! in a real pty of 80 columns, drawn by a terminal emulator.

use std::path::Path;
use std::process::Command;

use crate::support::cmd::bin;
use crate::support::pty::{self, Session, wait_exit};

const DESCRIPTION: &str = "**When to use it:** the API's deep health check (`/health/deep`) reports `postgres: failed`, or the error tracker shows database connection errors that go on for more than a minute or two.";
const NOTES: &str = "Prints `ok` or `full`, then used/maximum. The **superuser reserve** lets this query in even when the limit is hit, so a full server still answers it and tells you how full it is.";
const CODE: &str = "psql -tA -c \"SELECT count(*) FROM pg_stat_activity;\"  #  kept";

fn book(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("prose.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\nid: prose\ntitle: Prose\nrto: 10m\ndescription: |\n  {DESCRIPTION}\n\n  See [the dashboard](https://grafana.example/d/db) first.\ntargets:\n  app: {{}}\nsteps:\n  - id: look\n    title: Look around\n    notes: |\n      {NOTES}\n\n          {CODE}\n    run: 'true'\n  - id: done\n    title: Done\n    end: resolved\n"
        ),
    )
    .unwrap();
    path
}

fn start(book: &Path, audit: &Path, env: &[(&str, &str)]) -> Session {
    let mut command = Command::new(bin());
    command
        .args([
            "run",
            book.to_str().unwrap(),
            "--target",
            "app=local",
            "--audit-dir",
        ])
        .arg(audit)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("RUNBOOK_PATH")
        .env_remove("RUNBOOK_SIGNING_KEY")
        .env_remove("SSH_AUTH_SOCK")
        .env("USER", "tester")
        .envs(env.iter().copied());
    pty::start_sized(command, 40, 80)
}

/// The words of `markdown` as they should read: its markers gone.
fn words(markdown: &str) -> Vec<String> {
    markdown
        .replace("**", "")
        .replace('`', "")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The rows of `screen` from the one that starts `first`'s words to the one that ends them:
/// each must start with `indent` then a word, and together read exactly `first`'s words.
fn check_paragraph(screen: &str, text: &str, indent: &str) {
    let want = words(text);
    let rows: Vec<&str> = screen.lines().collect();
    let start = rows
        .iter()
        .position(|r| r.trim_start().starts_with(want[0].as_str()))
        .unwrap_or_else(|| panic!("{:?} not on the screen:\n{screen}", want[0]));
    let mut got: Vec<String> = Vec::new();
    for row in &rows[start..] {
        assert!(
            row.starts_with(indent) && !row[indent.len()..].starts_with(' '),
            "row {row:?} is not at the indent {indent:?}:\n{screen}"
        );
        got.extend(row.split_whitespace().map(str::to_string));
        if got.len() >= want.len() {
            break;
        }
    }
    assert_eq!(got, want, "the words as wrapped:\n{screen}");
}

/// The screen's rows without the time a plain line starts with (`03:12:09 `).
fn unstamped(screen: &str) -> String {
    let stamped = regex::Regex::new(r"^\d\d:\d\d:\d\d ").unwrap();
    screen
        .lines()
        .map(|r| stamped.replace(r, "").into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn description_and_notes_wrap_at_80_columns_without_markdown_markers() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = book(dir.path());
    for env in [&[][..], &[("NO_COLOR", "1")][..]] {
        let mut s = start(&book, audit.path(), env);
        let before = s.exp_string("What now?").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        // Row by row, as drawn (`contents()` would join the rows the terminal wrapped).
        let screen = s.screen().rows(0, 80).collect::<Vec<String>>().join("\n");
        assert!(
            !screen.contains("**") && !screen.contains('`'),
            "markers on the screen ({env:?}):\n{screen}"
        );
        // Each line of prose as written to the terminal: at most 80 columns.
        let prose: std::collections::HashSet<String> =
            words(DESCRIPTION).into_iter().chain(words(NOTES)).collect();
        for line in before.lines() {
            let line = line.trim_end_matches('\r');
            let shown = line.rsplit('\r').next().unwrap_or(line);
            let unstamped = unstamped(shown);
            let mut tokens = unstamped.split_whitespace().peekable();
            if tokens.peek().is_none() || !tokens.all(|t| prose.contains(t)) {
                continue;
            }
            assert!(
                shown.chars().count() <= 80,
                "a line of {} columns: {shown:?}\n{before}",
                shown.chars().count()
            );
        }
        let rows = unstamped(&screen);
        check_paragraph(&rows, DESCRIPTION, "  ");
        check_paragraph(&rows, NOTES, "    ");
        assert!(
            screen.contains("See the dashboard <https://grafana.example/d/db> first."),
            "{screen}"
        );
        // Code is kept as written, on one row.
        assert!(screen.contains(CODE), "{screen}");
        if env.is_empty() {
            // The header's prose and the step's, as drawn (the lines around them name the
            // run's files and times).
            let drawn: Vec<&str> = rows.lines().collect();
            let at = |needle: &str| drawn.iter().position(|r| r.contains(needle)).unwrap();
            let mut shown = drawn[at("When to use it")..=at("See the dashboard")].to_vec();
            shown.extend_from_slice(&drawn[at("[1/2]")..=at(CODE)]);
            insta::assert_snapshot!("prose_at_80_columns", shown.join("\n"));
        }
        s.send_control('c').unwrap();
        s.exp_string("Ctrl-C: abort the run?").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        s.send_control('c').unwrap();
        assert_eq!(wait_exit(&mut s), 3);
    }
}
