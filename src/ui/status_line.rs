//! The bottom line of the terminal while a prompt waits: the RTO budget, ticking every second
//! and turning yellow then red, so that time read off the screen is never stale.
//!
//! It uses a scroll region (DECSTBM, as apt's progress line does): the prompt and everything
//! above it scroll in the rows above, the last row is ours. Each redraw saves and restores the
//! cursor (DECSC/DECRC), so dialoguer's relative cursor moves are never disturbed, and each one
//! is a single write, so it never lands inside another escape sequence.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::clock::Clock;

const TICK: Duration = Duration::from_millis(200);

/// Drawn while it lives; dropping it gives the row back and the terminal its full height.
pub struct StatusLine {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StatusLine {
    /// Starts drawing `clock` on the last row of a capable terminal (`None` otherwise).
    pub fn show(clock: &Clock) -> Option<StatusLine> {
        if !super::rich_terminal() {
            return None;
        }
        // Reserved before this returns, so before the prompt draws: the newline that makes
        // room must never come after a prompt's text (a thread of its own raced dialoguer's
        // first draw), where it took the cursor to the start of the row, and what the
        // operator typed overwrote the question.
        let rows_now = rows();
        reserve(rows_now);
        let clock = clock.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("status-line".into())
            .spawn(move || draw_until(&clock, &stopping, rows_now));
        let Ok(thread) = thread else {
            release(rows_now);
            return None;
        };
        Some(StatusLine {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn rows() -> u16 {
    console::Term::stderr().size().0.max(2)
}

fn write(bytes: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(bytes.as_bytes());
    let _ = err.flush();
}

/// Reserves the last of `rows` rows: a newline first, so that a cursor already on the last
/// row moves up out of it (the screen scrolls), then the region above it.
fn reserve(rows: u16) {
    write(&format!("\n\x1b[1A{}", region(rows)));
}

/// The scroll region above the last row, the cursor left where it was.
fn region(rows: u16) -> String {
    format!("\x1b7\x1b[1;{}r\x1b8", rows - 1)
}

fn release(rows: u16) {
    write(&format!("\x1b7\x1b[r\x1b[{rows};1H\x1b[2K\x1b8"));
}

fn draw_until(clock: &Clock, stop: &AtomicBool, mut rows_now: u16) {
    let mut shown = String::new();
    while !stop.load(Ordering::Relaxed) {
        let rows = rows();
        if rows != rows_now {
            // Resized: the region follows the new height (mid-prompt: no newline, which would
            // move the cursor off what the operator is typing).
            release(rows_now);
            write(&region(rows));
            rows_now = rows;
            shown.clear();
        }
        let text = format!("  ⏱ {}", clock.budget_styled());
        if text != shown {
            write(&format!("\x1b7\x1b[{rows};1H\x1b[2K{text}\x1b8"));
            shown = text;
        }
        std::thread::sleep(TICK);
    }
    release(rows_now);
}
