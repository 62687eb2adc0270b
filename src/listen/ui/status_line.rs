//! The bottom line of the terminal while a prompt waits: the RTO budget, ticking every second
//! and turning yellow then red, so that time read off the screen is never stale.
//!
//! It uses a scroll region (DECSTBM, as apt's progress line does): the prompt and everything
//! above it scroll in the rows above, the last row is ours. Each redraw saves and restores the
//! cursor (DECSC/DECRC), so dialoguer's relative cursor moves are never disturbed, and each one
//! is a single write, so it never lands inside another escape sequence.
//!
//! A loud line said while the prompt waits (the escalation deadline, from the deadlines' thread)
//! must not be written where the cursor is, in the middle of what the operator types: it is
//! [`hold`]en here instead, drawn on rows of its own just above the budget (the region shrinks
//! by as many rows, its content and the cursor moving up together), and printed in the flow
//! once the prompt is over.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::clock::Clock;

/// A loud line, as `spinner::shout` draws it on a capable terminal (and the status line its
/// held lines).
pub(super) fn loud(text: &str) -> String {
    console::style(text).red().bold().reverse().to_string()
}

const TICK: Duration = Duration::from_millis(200);

/// Rows always left to the prompt: loud lines that would not fit wait for the prompt's end.
const MIN_REGION: u16 = 4;

/// What the drawing thread and the rest of the process share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Loud lines said while the prompt waits, in order.
    held: Mutex<Vec<String>>,
}

/// The status line drawn now, if any: where [`hold`] puts a loud line.
static OPEN: Mutex<Option<Arc<Shared>>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drawn while it lives; dropping it gives the rows back and the terminal its full height.
pub(crate) struct StatusLine {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl StatusLine {
    /// Starts drawing `clock` on the last row of a capable terminal (`None` otherwise).
    pub(crate) fn show(clock: &Clock) -> Option<StatusLine> {
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
        let shared = Arc::new(Shared::default());
        let drawing = shared.clone();
        let thread = std::thread::Builder::new()
            .name("status-line".into())
            .spawn(move || draw_until(&clock, &drawing, rows_now));
        let Ok(thread) = thread else {
            release(rows_now, 0);
            return None;
        };
        *lock(&OPEN) = Some(shared.clone());
        Some(StatusLine {
            shared,
            thread: Some(thread),
        })
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // From now on a loud line is printed by whoever says it; those held are printed here,
        // in the flow, where the prompt's answer left the cursor.
        let mut open = lock(&OPEN);
        if open.as_ref().is_some_and(|s| Arc::ptr_eq(s, &self.shared)) {
            *open = None;
        }
        drop(open);
        let held = std::mem::take(&mut *lock(&self.shared.held));
        for text in held {
            write(&format!("{}\n", loud(&text)));
        }
    }
}

/// Takes a loud line while a status line is drawn (it shows it without touching the prompt);
/// `false`: none is, the caller prints it.
pub(super) fn hold(text: &str) -> bool {
    match &*lock(&OPEN) {
        Some(shared) => {
            lock(&shared.held).push(text.to_string());
            true
        }
        None => false,
    }
}

fn size() -> (u16, u16) {
    let (rows, cols) = console::Term::stderr().size();
    (rows.max(2), cols.max(1))
}

fn rows() -> u16 {
    size().0
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

/// The region, `bottom` rows high, shrinks by `by` rows: first it scrolls up by as many (a
/// newline on its last row), the cursor moving up with what it was on, then it is set.
fn shrink(bottom: u16, by: u16) -> String {
    let mut out = String::new();
    for _ in 0..by {
        out.push_str(&format!("\x1b7\x1b[{bottom};1H\n\x1b8\x1b[1A"));
    }
    out.push_str(&format!("\x1b7\x1b[1;{}r\x1b8", bottom - by));
    out
}

/// Gives the whole screen back, clearing the last row and the `loud` rows above it.
fn release(rows: u16, loud: u16) {
    let mut out = String::from("\x1b7\x1b[r");
    for row in rows - loud..=rows {
        out.push_str(&format!("\x1b[{row};1H\x1b[2K"));
    }
    out.push_str("\x1b8");
    write(&out);
}

/// The held lines as the screen rows they take at `cols` columns, at most `room` of them.
fn loud_rows(held: &[String], cols: u16, room: u16) -> Vec<String> {
    let mut out = Vec::new();
    for text in held {
        let mut row = String::new();
        let mut width = 0;
        for c in text.chars() {
            let w = console::measure_text_width(c.encode_utf8(&mut [0; 4]));
            if width + w > usize::from(cols) && !row.is_empty() {
                out.push(std::mem::take(&mut row));
                width = 0;
            }
            row.push(c);
            width += w;
        }
        out.push(row);
    }
    out.truncate(usize::from(room));
    out
}

fn draw_until(clock: &Clock, shared: &Shared, mut rows_now: u16) {
    // Loud rows drawn above the budget, and the lines they were drawn from.
    let (mut loud, mut drawn_from) = (0u16, 0usize);
    let mut shown = String::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let (rows, cols) = size();
        if rows != rows_now {
            // Resized: the region follows the new height (mid-prompt: no newline, which would
            // move the cursor off what the operator is typing). The loud rows are drawn again.
            release(rows_now, loud);
            write(&region(rows));
            rows_now = rows;
            (loud, drawn_from) = (0, 0);
            shown.clear();
        }
        let held = lock(&shared.held).clone();
        if held.len() != drawn_from {
            let room = rows_now.saturating_sub(1 + MIN_REGION);
            let lines = loud_rows(&held, cols, room);
            let wanted = lines.len() as u16;
            let mut out = String::new();
            if wanted > loud {
                out.push_str(&shrink(rows_now - 1 - loud, wanted - loud));
                loud = wanted;
            }
            out.push_str("\x1b7");
            for (i, line) in lines.iter().enumerate() {
                let row = rows_now - loud + i as u16;
                out.push_str(&format!("\x1b[{row};1H\x1b[2K{}", self::loud(line)));
            }
            out.push_str("\x1b8");
            write(&out);
            drawn_from = held.len();
        }
        let text = format!("  ⏱ {}", clock.budget_styled());
        if text != shown {
            write(&format!("\x1b7\x1b[{rows_now};1H\x1b[2K{text}\x1b8"));
            shown = text;
        }
        std::thread::sleep(TICK);
    }
    release(rows_now, loud);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loud_line_takes_the_rows_it_needs_and_no_more_than_there_is_room_for() {
        let held = vec!["x".repeat(25), "short".to_string()];
        assert_eq!(
            loud_rows(&held, 10, 9),
            ["x".repeat(10), "x".repeat(10), "x".repeat(5), "short".into()]
        );
        assert_eq!(loud_rows(&held, 10, 2).len(), 2);
        assert!(loud_rows(&held, 10, 0).is_empty());
    }

    #[test]
    fn shrinking_scrolls_the_region_first_with_the_cursor() {
        assert_eq!(shrink(23, 1), "\x1b7\x1b[23;1H\n\x1b8\x1b[1A\x1b7\x1b[1;22r\x1b8");
    }
}
