//! The inline editor of a one-line command, for an operator without `$VISUAL` / `$EDITOR`
//! (issue 25, item 5): the keys of a shell's line editor, so that a prefix goes at the start.
//!
//! The same editor reads every typed answer (a note, a reason, what a command printed by hand,
//! a typed confirmation, an input's value): [`Field`] says whether it takes a paste of several
//! lines.
//!
//! Keys are read by `console`, as every other prompt reads them: Ctrl-C, a signal and a
//! terminal that went away end the read exactly as they end any prompt (see `prompt::ask`).
//! `console` decodes Home and End (`ESC [ H`, `ESC [ 1 ~`, `ESC [ 7 ~`, Ctrl-A; `ESC [ F`,
//! `ESC [ 4 ~`, `ESC [ 8 ~`, Ctrl-E), the arrows, Delete and Backspace; Ctrl-W, Ctrl-U and
//! Ctrl-K reach us as their control characters. Two forms it leaves half read are finished
//! here: SS3 (`ESC O H`, `ESC O F`, `ESC O C`, `ESC O D`: what a terminal in application
//! cursor mode sends) and a CSI with parameters (`ESC [ 1 ; 5 D`, Ctrl-Left), whose rest would
//! otherwise be typed into the command as text.

use std::cell::RefCell;

use console::{Key, Term};
use dialoguer::theme::Theme;

/// The text being edited and the cursor in it (a char index). Kept by the caller across
/// reads: a prompt asked again (after "abort the run?" was answered no) goes on with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    chars: Vec<char>,
    pos: usize,
}

/// What a key does to the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Home,
    End,
    Left,
    Right,
    WordLeft,
    WordRight,
    Backspace,
    Delete,
    /// Ctrl-W: the word before the cursor (and the blanks after it), as a shell's
    /// `unix-word-rubout`.
    KillWord,
    /// Ctrl-U: from the start of the line to the cursor.
    KillToStart,
    /// Ctrl-K: from the cursor to the end of the line.
    KillToEnd,
    Insert(char),
    Done,
    Nothing,
}

impl Line {
    /// The cursor starts at the end, where a shell's recalled command leaves it.
    pub(super) fn new(text: &str) -> Line {
        let chars: Vec<char> = text.chars().collect();
        Line {
            pos: chars.len(),
            chars,
        }
    }

    pub(super) fn text(&self) -> String {
        self.chars.iter().collect()
    }

    /// Applies one edit; `true` when it ends the editing (Enter).
    fn apply(&mut self, edit: Edit) -> bool {
        let blank = |c: &char| c.is_whitespace();
        match edit {
            Edit::Home => self.pos = 0,
            Edit::End => self.pos = self.chars.len(),
            Edit::Left => self.pos = self.pos.saturating_sub(1),
            Edit::Right => self.pos = (self.pos + 1).min(self.chars.len()),
            Edit::WordLeft => self.pos = self.word_start(),
            Edit::WordRight => {
                let rest = &self.chars[self.pos..];
                let blanks = rest.iter().take_while(|c| blank(c)).count();
                let word = rest[blanks..].iter().take_while(|c| !blank(c)).count();
                self.pos += blanks + word;
            }
            Edit::Backspace if self.pos > 0 => {
                self.pos -= 1;
                self.chars.remove(self.pos);
            }
            Edit::Delete if self.pos < self.chars.len() => {
                self.chars.remove(self.pos);
            }
            Edit::KillWord => {
                let start = self.word_start();
                self.chars.drain(start..self.pos);
                self.pos = start;
            }
            Edit::KillToStart => {
                self.chars.drain(..self.pos);
                self.pos = 0;
            }
            Edit::KillToEnd => self.chars.truncate(self.pos),
            Edit::Insert(c) => {
                self.chars.insert(self.pos, c);
                self.pos += 1;
            }
            Edit::Done => return true,
            Edit::Backspace | Edit::Delete | Edit::Nothing => {}
        }
        false
    }

    /// Where the word before the cursor starts (blanks just before the cursor included).
    fn word_start(&self) -> usize {
        let before = &self.chars[..self.pos];
        let blanks = before.iter().rev().take_while(|c| c.is_whitespace()).count();
        let word = before[..before.len() - blanks]
            .iter()
            .rev()
            .take_while(|c| !c.is_whitespace())
            .count();
        self.pos - blanks - word
    }
}

/// A key as an edit.
fn edit_of(key: Key, term: &Term) -> std::io::Result<Edit> {
    use super::keys::more_input;
    Ok(match key {
        Key::Enter => Edit::Done,
        Key::Home => Edit::Home,
        Key::End => Edit::End,
        Key::ArrowLeft | Key::Char('\x02') => Edit::Left,
        Key::ArrowRight | Key::Char('\x06') => Edit::Right,
        Key::Backspace => Edit::Backspace,
        Key::Del | Key::Char('\x04') => Edit::Delete,
        Key::Char('\x17') => Edit::KillWord,
        Key::Char('\x15') => Edit::KillToStart,
        Key::Char('\x0b') => Edit::KillToEnd,
        Key::Char(c) if !c.is_control() => Edit::Insert(c),
        // Alt-b, Alt-f: a word back, a word on.
        Key::UnknownEscSeq(seq) if seq == ['b'] => Edit::WordLeft,
        Key::UnknownEscSeq(seq) if seq == ['f'] => Edit::WordRight,
        // SS3: `console` read `ESC O`; the final letter is still to read.
        Key::UnknownEscSeq(seq) if seq == ['O'] => match more_input() {
            true => match term.read_key()? {
                Key::Char('H') => Edit::Home,
                Key::Char('F') => Edit::End,
                Key::Char('C') => Edit::Right,
                Key::Char('D') => Edit::Left,
                _ => Edit::Nothing,
            },
            false => Edit::Nothing,
        },
        // A CSI `console` stopped reading before its final byte (`ESC [ 1 ;` of Ctrl-Left,
        // `ESC [ 2 4` of F12; a paste's brackets never get here, see `keys`): the rest, up to
        // the final byte, is read and only the word moves and Home/End mean something.
        Key::UnknownEscSeq(seq) if seq.first() == Some(&'[') && !seq[1..].iter().any(|c| is_final(*c)) => {
            let mut last = None;
            while more_input() {
                match term.read_key()? {
                    Key::Char(c) if is_final(c) => {
                        last = Some(c);
                        break;
                    }
                    Key::Char(c) if c.is_ascii() => {}
                    _ => break,
                }
            }
            match last {
                Some('D') => Edit::WordLeft,
                Some('C') => Edit::WordRight,
                Some('H') => Edit::Home,
                Some('F') => Edit::End,
                _ => Edit::Nothing,
            }
        }
        _ => Edit::Nothing,
    })
}

/// A CSI's final byte.
fn is_final(c: char) -> bool {
    ('\x40'..='\x7e').contains(&c)
}

/// How a char of the command is shown: control characters escaped, as any runbook text.
fn shown(c: char) -> String {
    crate::secrets::escape::value(c.encode_utf8(&mut [0; 4])).into_owned()
}

fn width(chars: &[char]) -> usize {
    chars
        .iter()
        .map(|c| console::measure_text_width(&shown(*c)))
        .sum()
}

/// Where the last drawing left things, in rows from its first row.
#[derive(Default)]
struct Drawn {
    rows: usize,
    cursor_row: usize,
}

/// The whole line drawn again in one write (the status line's thread writes between two
/// writes, never inside one): back to its first row, each row it took cleared (not the rest of
/// the screen: the status line lives on the last row), the prompt and the text, then the
/// cursor put where it is in the text. A line longer than the terminal wraps.
fn draw(line: &Line, head: &str, drawn: &mut Drawn, cols: usize) -> String {
    let mut out = String::new();
    if drawn.cursor_row > 0 {
        out.push_str(&format!("\x1b[{}A", drawn.cursor_row));
    }
    out.push('\r');
    for row in 0..drawn.rows.max(1) {
        if row > 0 {
            out.push_str("\x1b[1B");
        }
        out.push_str("\x1b[2K");
    }
    if drawn.rows > 1 {
        out.push_str(&format!("\x1b[{}A", drawn.rows - 1));
    }
    out.push_str(head);
    for c in &line.chars {
        out.push_str(&shown(*c));
    }
    let head_width = console::measure_text_width(head);
    let total = head_width + width(&line.chars);
    if total > 0 && total.is_multiple_of(cols) {
        // The last column is full: the terminal waits to wrap; the cursor goes to the next
        // row now, so that where it is stays known.
        out.push_str("\r\n");
    }
    let end_row = total / cols;
    let at = head_width + width(&line.chars[..line.pos]);
    let (row, col) = (at / cols, at % cols);
    if end_row > row {
        out.push_str(&format!("\x1b[{}A", end_row - row));
    }
    out.push('\r');
    if col > 0 {
        out.push_str(&format!("\x1b[{col}C"));
    }
    drawn.rows = end_row + 1;
    drawn.cursor_row = row;
    out
}

/// What a field takes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    /// A paste of several lines is taken whole, its line breaks kept (a report of what a
    /// command printed, a note); else it is refused: a one-line answer is not guessed out of it.
    pub multi: bool,
    /// Enter on an empty (or blank) field answers; else it waits for text.
    pub allow_empty: bool,
}

/// Down to a fresh row below what was drawn.
fn below(drawn: &Drawn) -> String {
    let below = drawn.rows.saturating_sub(drawn.cursor_row + 1);
    let down = if below > 0 {
        format!("\x1b[{below}B")
    } else {
        String::new()
    };
    format!("{down}\r\n")
}

/// How an answer stays on the screen: one line; an answer of several lines as its first line
/// and how many there are (the trail keeps them all).
fn summary(text: &str) -> String {
    let lines = text.lines().count();
    let shown = crate::secrets::escape::value(text.lines().next().unwrap_or("")).into_owned();
    if lines > 1 {
        format!("{shown} … ({lines} lines)")
    } else {
        crate::secrets::escape::value(text).into_owned()
    }
}

/// Edits `line` on the terminal until Enter; returns the text, and leaves it on the screen
/// `mask`ed (a secret typed into it is not kept in clear above the next question). A paste is
/// inserted as text, never read as keys ([`super::keys`]); its trailing line breaks dropped. On
/// an error (Ctrl-C, a signal, the terminal gone) `line` keeps what was typed, and the cursor
/// is left on a fresh row below it for the next question.
pub(super) fn read(
    prompt: &str,
    line: &RefCell<Line>,
    mask: &dyn Fn(&str) -> String,
    field: Field,
) -> dialoguer::Result<String> {
    use super::keys::Read;
    let theme = super::theme();
    let fmt = |e: std::fmt::Error| dialoguer::Error::IO(std::io::Error::other(e));
    let mut head = String::new();
    theme.format_input_prompt(&mut head, prompt, None).map_err(fmt)?;
    let term = Term::stderr();
    let mut drawn = Drawn::default();
    let cols = || usize::from(term.size().1.max(2));
    loop {
        term.write_str(&draw(&line.borrow(), &head, &mut drawn, cols()))?;
        let edit = match super::keys::next(&term) {
            Ok(Read::Key(key)) => edit_of(key, &term),
            Ok(Read::Paste(text)) => {
                let text = text.trim_end_matches('\n');
                let lines = text.lines().count();
                if lines > 1 && !field.multi {
                    term.write_str(&format!(
                        "{}    a paste of {lines} lines is not an answer to this one-line question: nothing was taken\n",
                        below(&drawn)
                    ))?;
                    drawn = Drawn::default();
                } else {
                    let mut line = line.borrow_mut();
                    for c in text.chars() {
                        line.apply(Edit::Insert(c));
                    }
                }
                continue;
            }
            Err(e) => Err(e),
        };
        let edit = match edit {
            Ok(edit) => edit,
            Err(e) => {
                let _ = term.write_str(&below(&drawn));
                return Err(e.into());
            }
        };
        if edit == Edit::Done && !field.allow_empty && line.borrow().text().trim().is_empty() {
            continue;
        }
        if line.borrow_mut().apply(edit) {
            break;
        }
    }
    let text = line.borrow().text();
    let mut done = String::new();
    theme
        .format_input_prompt_selection(&mut done, prompt, &summary(&mask(&text)))
        .map_err(fmt)?;
    drawn.rows = drawn.rows.max(1);
    let mut out = draw(&Line::new(""), "", &mut drawn, cols());
    out.push_str(&done);
    out.push('\n');
    term.write_str(&out)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edited(text: &str, edits: &[Edit]) -> (String, usize) {
        let mut line = Line::new(text);
        for edit in edits {
            line.apply(*edit);
        }
        (line.text(), line.pos)
    }

    #[test]
    fn a_prefix_goes_at_the_start() {
        let mut edits = vec![Edit::Home];
        edits.extend("sleep 30; ".chars().map(Edit::Insert));
        assert_eq!(edited("df -h", &edits).0, "sleep 30; df -h");
    }

    #[test]
    fn ctrl_w_takes_the_word_before_the_cursor_and_its_blanks() {
        assert_eq!(
            edited("curl -s host  ", &[Edit::KillWord]),
            ("curl -s ".into(), 8)
        );
        assert_eq!(edited("curl", &[Edit::KillWord]), (String::new(), 0));
        let (text, _) = edited("curl -s host", &[Edit::WordLeft, Edit::KillWord]);
        assert_eq!(text, "curl host");
    }

    #[test]
    fn ctrl_u_and_ctrl_k_cut_either_side_of_the_cursor() {
        let left = [Edit::Left, Edit::Left, Edit::Left, Edit::Left];
        let mut edits = left.to_vec();
        edits.push(Edit::KillToStart);
        assert_eq!(edited("curl host", &edits), ("host".into(), 0));
        let mut edits = left.to_vec();
        edits.push(Edit::KillToEnd);
        assert_eq!(edited("curl host", &edits), ("curl ".into(), 5));
    }

    #[test]
    fn the_cursor_stays_inside_the_line() {
        assert_eq!(edited("ab", &[Edit::Right, Edit::Delete, Edit::Backspace]).0, "a");
        assert_eq!(edited("ab", &[Edit::Home, Edit::Left, Edit::Backspace]).0, "ab");
        assert_eq!(edited("a b", &[Edit::Home, Edit::WordRight]).1, 1);
    }

    #[test]
    fn a_line_that_fills_the_row_puts_the_cursor_on_the_next() {
        let mut drawn = Drawn::default();
        let out = draw(&Line::new("abcd"), "> ", &mut drawn, 6);
        assert!(out.ends_with("> abcd\r\n\r"), "{out:?}");
        assert_eq!((drawn.rows, drawn.cursor_row), (2, 1));
    }
}
