//! The menus ("What now?", "Decision", a yes/no): dialoguer's `Select` and `Confirm`, drawn
//! with the same theme, but reading keys through [`super::keys`], so that a paste is one thing
//! and never keys: at a menu it answers nothing (issue 25, item 1). dialoguer reads its keys
//! itself, with no way to see a paste's brackets around them.
//!
//! Keys: the arrows, Tab and Shift-Tab, `j` and `k` move; Enter or Space picks; Left and Right
//! (`h`, `l`) turn a page of a list taller than the terminal; Esc or `q` leaves where leaving
//! is offered. Each frame is one write (the status line's thread writes between two writes).

use console::{Key, Term};
use dialoguer::theme::Theme;

use super::keys::{Read, next};

fn fmt(e: std::fmt::Error) -> dialoguer::Error {
    dialoguer::Error::IO(std::io::Error::other(e))
}

/// Said under a menu a paste was given to.
const PASTE: &str = "  (a paste is not an answer here: nothing was picked)";

/// The cursor hidden while a menu is up, shown again however it ends.
struct Hidden<'a>(&'a Term);

impl Drop for Hidden<'_> {
    fn drop(&mut self) {
        let _ = self.0.show_cursor();
    }
}

/// How many rows `lines` take on a terminal `cols` wide.
fn rows(lines: &[String], cols: usize) -> usize {
    lines
        .iter()
        .map(|l| console::measure_text_width(l).max(1).div_ceil(cols.max(1)))
        .sum()
}

/// Back up over `drawn` rows, each cleared (not the rest of the screen: the status line lives
/// on the last row).
fn erase(drawn: usize) -> String {
    let mut out = String::from("\r");
    if drawn == 0 {
        return out;
    }
    out.push_str(&format!("\x1b[{drawn}A"));
    for row in 0..drawn {
        if row > 0 {
            out.push_str("\x1b[1B");
        }
        out.push_str("\x1b[2K");
    }
    if drawn > 1 {
        out.push_str(&format!("\x1b[{}A", drawn - 1));
    }
    out
}

/// A choice among `items`; `default`: the one picked at first (none: Enter waits for an
/// arrow). `Ok(None)`: left with Esc or `q`, when `quit`.
pub(super) fn select<S: AsRef<str>>(
    prompt: &str,
    items: &[S],
    default: Option<usize>,
    quit: bool,
) -> dialoguer::Result<Option<usize>> {
    let theme = super::theme();
    let term = Term::stderr();
    let count = items.len();
    if count == 0 {
        return Err(std::io::Error::other("a menu with nothing to pick").into());
    }
    term.hide_cursor()?;
    let _hidden = Hidden(&term);
    let mut sel = default.filter(|d| *d < count);
    let mut pasted = false;
    let mut drawn = 0;
    loop {
        let (height, width) = term.size();
        let (page_rows, cols) = (usize::from(height).saturating_sub(4).max(3), usize::from(width));
        let page = sel.unwrap_or(0) / page_rows;
        let pages = count.div_ceil(page_rows);
        let mut lines = Vec::new();
        let mut head = String::new();
        theme.format_select_prompt(&mut head, prompt).map_err(fmt)?;
        if pages > 1 {
            head.push_str(&format!(" [Page {}/{pages}] ", page + 1));
        }
        lines.push(head);
        for (i, item) in items.iter().enumerate().skip(page * page_rows).take(page_rows) {
            let mut line = String::new();
            theme
                .format_select_prompt_item(&mut line, item.as_ref(), sel == Some(i))
                .map_err(fmt)?;
            lines.push(line);
        }
        if pasted {
            lines.push(PASTE.to_string());
        }
        let mut out = erase(drawn);
        for line in &lines {
            out.push_str(line);
            out.push('\n');
        }
        term.write_str(&out)?;
        drawn = rows(&lines, cols);
        let key = match next(&term)? {
            Read::Paste(_) => {
                pasted = true;
                continue;
            }
            Read::Key(key) => key,
        };
        match key {
            Key::ArrowDown | Key::Tab | Key::Char('j') => sel = Some(sel.map_or(0, |s| (s + 1) % count)),
            Key::ArrowUp | Key::BackTab | Key::Char('k') => {
                sel = Some(sel.map_or(count - 1, |s| (s + count - 1) % count))
            }
            Key::ArrowRight | Key::Char('l') if pages > 1 => {
                sel = Some(((page + 1) % pages) * page_rows);
            }
            Key::ArrowLeft | Key::Char('h') if pages > 1 => {
                sel = Some(((page + pages - 1) % pages) * page_rows);
            }
            Key::Escape | Key::Char('q') if quit => {
                term.write_str(&erase(drawn))?;
                return Ok(None);
            }
            Key::Enter | Key::Char(' ') => {
                if let Some(pick) = sel {
                    let mut out = erase(drawn);
                    theme
                        .format_select_prompt_selection(&mut out, prompt, items[pick].as_ref())
                        .map_err(fmt)?;
                    out.push('\n');
                    term.write_str(&out)?;
                    return Ok(Some(pick));
                }
            }
            _ => {}
        }
    }
}

/// A yes or no, `y` or `n` then Enter; Enter alone: `default`.
pub(super) fn confirm(prompt: &str, default: bool) -> dialoguer::Result<bool> {
    let theme = super::theme();
    let term = Term::stderr();
    term.hide_cursor()?;
    let _hidden = Hidden(&term);
    let mut value = default;
    loop {
        let mut out = String::from("\r\x1b[2K");
        theme
            .format_confirm_prompt(&mut out, prompt, Some(value))
            .map_err(fmt)?;
        term.write_str(&out)?;
        match next(&term)? {
            Read::Key(Key::Char('y' | 'Y')) => value = true,
            Read::Key(Key::Char('n' | 'N')) => value = false,
            Read::Key(Key::Enter) => break,
            // A paste answers nothing here either.
            _ => {}
        }
    }
    let mut out = String::from("\r\x1b[2K");
    theme
        .format_confirm_prompt_selection(&mut out, prompt, Some(value))
        .map_err(fmt)?;
    out.push('\n');
    term.write_str(&out)?;
    Ok(value)
}
