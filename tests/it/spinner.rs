//! The spinner and a command's output share the terminal without cutting each other (issue
//! 25: "curl's one error line came out in 11 fragments interleaved with the spinner; output
//! without a final newline gets the spinner glued to it; `step 0.0s` stays at zero during
//! retries"). Output is shown in whole lines above the status line.

use std::time::Duration;

use crate::support::pty::{self, wait_exit};

fn book(dir: &std::path::Path, text: &str) -> String {
    let file = dir.join("book.yaml");
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

/// The rows of the screen, trimmed.
fn rows(session: &pty::Session) -> Vec<String> {
    session
        .screen()
        .rows(0, pty::COLS)
        .map(|r| r.trim_end().to_string())
        .collect()
}

#[test]
fn a_line_written_in_pieces_is_shown_whole_and_a_last_line_without_newline_stands_alone() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Pieces a spinner tick apart (it redraws every 120 ms), as curl writes its error line.
    let file = book(
        dir.path(),
        "version: 1\nid: pieces\ntitle: Pieces\nrto: 5m\nsteps:\n  - id: fetch\n    title: Fetch\n    run: |\n      printf 'curl: (7) Failed '; sleep 0.4\n      printf 'to connect to localhost port 9'; sleep 0.4\n      printf '9 after 0 ms\\n'\n      printf 'no newline at the end'; sleep 0.4\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    let mut s = pty::spawn(&["run", "--yes", &file], audit.path());
    s.exp_string("fetch: ok").unwrap();
    let screen = rows(&s);
    assert!(
        screen
            .iter()
            .any(|r| r == "curl: (7) Failed to connect to localhost port 99 after 0 ms"),
        "the line is cut:\n{}",
        screen.join("\n")
    );
    assert!(
        screen.iter().any(|r| r == "no newline at the end"),
        "the last line is not on a row of its own:\n{}",
        screen.join("\n")
    );
    assert_eq!(wait_exit(&mut s), 0);
}

#[test]
fn the_step_time_runs_on_through_retries_and_their_delay() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = book(
        dir.path(),
        "version: 1\nid: again\ntitle: Again\nrto: 5m\nsteps:\n  - id: flaky\n    title: Flaky\n    run: sleep 1; false\n    retry: {attempts: 2, delay: 1s}\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    let mut s = pty::spawn(&["run", "--yes", &file], audit.path());
    // The delay has a status line of its own, which says how to stop waiting.
    s.exp_string("flaky: attempt 2/2 in 1s, Ctrl-C to stop waiting")
        .unwrap();
    s.exp_string("flaky (attempt 2/2)").unwrap();
    // Attempt 1 (1 s) and the delay (1 s) are behind: the step's time says so.
    let step_time = regex::Regex::new(r"flaky \(attempt 2/2\)  step (\d+)\.\d+s").unwrap();
    let mut seen = None;
    crate::support::wait::until(
        Duration::from_secs(10),
        "the second attempt's status line",
        || {
            seen = rows(&s)
                .iter()
                .find_map(|r| step_time.captures(r).map(|c| c[1].parse::<u64>().unwrap()));
            seen.is_some()
        },
    );
    assert!(
        seen.unwrap() >= 2,
        "the step time restarted: step {}s",
        seen.unwrap()
    );
    assert_eq!(wait_exit(&mut s), 3);
}
