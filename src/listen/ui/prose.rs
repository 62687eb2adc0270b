//! A runbook's prose (its `description`, a step's `notes`) for the terminal: read as CommonMark
//! (`pulldown-cmark`, not patterns: a `*` or a backtick in a command is not taken for markup),
//! a small part of it drawn — `**bold**` bold, `` `code` `` dim without its backticks,
//! `[text](url)` as `text <url>`, lists with their markers — and paragraphs wrapped to the
//! terminal's width (`textwrap`) at word boundaries, each line at the block's indent (a list
//! item's continuation lines under its text). Code (fenced or indented) keeps its lines as
//! written: it is for copying. On a plain terminal (no TTY, `NO_COLOR`, `TERM=dumb`) the same
//! layout without styles: the markers are gone either way.
//!
//! Every piece of text is escaped (`secrets::escape`) before it is styled: the runbook's bytes
//! never reach the terminal as commands.

use console::style;
use pulldown_cmark::{Event, Parser, Tag, TagEnd};

use crate::secrets::escape::{text as esc_text, value as esc};

/// The width prose is wrapped to: the terminal's, else 80 (a log, a pipe).
pub(super) fn terminal_width() -> usize {
    console::Term::stderr()
        .size_checked()
        .map(|(_, cols)| usize::from(cols))
        .filter(|&cols| cols >= 20)
        .unwrap_or(80)
}

/// `markdown` as lines of at most `width` columns (a word longer than that stays whole), each
/// starting with `indent`; styled when `rich`.
pub(super) fn render(markdown: &str, indent: &str, width: usize, rich: bool) -> Vec<String> {
    let mut r = Renderer {
        out: Vec::new(),
        indent: indent.to_string(),
        width,
        rich,
        lines: vec![String::new()],
        lists: Vec::new(),
        marker: None,
        quote: 0,
        strong: 0,
        emphasis: 0,
        links: Vec::new(),
        code: None,
        blocks: 0,
    };
    // A masked secret (`***`) is text, not emphasis: held as characters that are no markup
    // (of the same width) while parsing, and put back after.
    let held = markdown.replace(crate::mask::MASK, HELD_MASK);
    for event in Parser::new(&held) {
        r.event(event);
    }
    r.flush();
    while r.out.last().is_some_and(|l| l.trim().is_empty()) {
        r.out.pop();
    }
    r.out
        .into_iter()
        .map(|l| l.replace(HELD_MASK, crate::mask::MASK))
        .collect()
}

/// Three characters of Unicode's private use area, one column each: `***` while parsing.
const HELD_MASK: &str = "\u{e000}\u{e000}\u{e000}";

struct Renderer {
    out: Vec<String>,
    indent: String,
    width: usize,
    rich: bool,
    /// The block being gathered: its lines (a hard break starts a new one).
    lines: Vec<String>,
    /// Open lists: the next number of an ordered one, `None` for bullets.
    lists: Vec<Option<u64>>,
    /// The marker of the list item whose first block comes next (`- `, `3. `).
    marker: Option<String>,
    quote: usize,
    strong: usize,
    emphasis: usize,
    /// Open links' destinations.
    links: Vec<String>,
    /// A code block's text, while in one.
    code: Option<String>,
    /// Blocks written at the top level, for the blank line between them.
    blocks: usize,
}

impl Renderer {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) => match &mut self.code {
                Some(code) => code.push_str(&t),
                None => self.push(&t.replace('\t', " ")),
            },
            Event::Code(t) => {
                let shown = esc(&t).into_owned();
                let shown = if self.rich {
                    style_words(&shown, |w| style(w).force_styling(true).dim().to_string())
                } else {
                    shown
                };
                self.push_styled(&shown);
            }
            Event::InlineHtml(t) | Event::InlineMath(t) | Event::DisplayMath(t) => self.push(&t),
            Event::Html(t) => {
                self.flush();
                self.separate();
                let prefix = self.prefix().0;
                for l in t.lines() {
                    self.out
                        .push(format!("{prefix}{}", esc_text(l)).trim_end().to_string());
                }
            }
            Event::FootnoteReference(t) => self.push(&format!("[{t}]")),
            Event::SoftBreak => self.push(" "),
            Event::HardBreak => self.lines.push(String::new()),
            Event::Rule => {
                self.flush();
                self.separate();
                let prefix = self.prefix().0;
                self.out.push(format!("{prefix}---"));
            }
            Event::TaskListMarker(done) => self.push(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph | Tag::Heading { .. } => {
                self.flush();
                self.separate();
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.quote += 1;
            }
            Tag::CodeBlock(_) => {
                self.flush();
                self.separate();
                self.code = Some(String::new());
            }
            Tag::List(first) => {
                self.flush();
                self.separate();
                self.lists.push(first);
            }
            Tag::Item => {
                self.flush();
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let m = format!("{n}. ");
                        *n += 1;
                        m
                    }
                    _ => "- ".to_string(),
                };
                self.marker = Some(marker);
            }
            Tag::Strong => self.strong += 1,
            Tag::Emphasis => self.emphasis += 1,
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => self.links.push(dest_url.to_string()),
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => self.flush(),
            TagEnd::Heading(_) => {
                if self.rich {
                    let lines = std::mem::take(&mut self.lines);
                    self.lines = lines
                        .iter()
                        .map(|l| style_words(l, |w| style(w).force_styling(true).bold().to_string()))
                        .collect();
                }
                self.flush();
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.quote = self.quote.saturating_sub(1);
            }
            TagEnd::CodeBlock => {
                let code = self.code.take().unwrap_or_default();
                let (first, rest) = self.prefix();
                let mut prefix = first;
                for l in code.trim_end_matches('\n').lines() {
                    let l = esc_text(l);
                    let l = if self.rich && !l.trim().is_empty() {
                        style(l).force_styling(true).dim().to_string()
                    } else {
                        l.into_owned()
                    };
                    self.out.push(format!("{prefix}  {l}").trim_end().to_string());
                    prefix = rest.clone();
                }
                self.marker = None;
            }
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
            }
            TagEnd::Item => {
                self.flush();
                // An empty item still shows its marker.
                if let Some(marker) = self.marker.take() {
                    let (prefix, _) = self.prefix_with(Some(marker));
                    self.out.push(prefix.trim_end().to_string());
                }
            }
            TagEnd::Strong => self.strong = self.strong.saturating_sub(1),
            TagEnd::Emphasis => self.emphasis = self.emphasis.saturating_sub(1),
            TagEnd::Link | TagEnd::Image => {
                if let Some(url) = self.links.pop() {
                    let text = self.lines.last().map(String::as_str).unwrap_or("");
                    // An autolink (`<https://...>`) is its own text.
                    if !url.is_empty() && !text.ends_with(url.as_str()) {
                        self.push_styled(&format!(" <{}>", esc(&url)));
                    }
                }
            }
            _ => {}
        }
    }

    /// Plain text of the runbook: escaped, then styled as the open spans say.
    fn push(&mut self, text: &str) {
        let shown = esc(text).into_owned();
        let shown = if self.rich && (self.strong > 0 || self.emphasis > 0) {
            let (bold, italic) = (self.strong > 0, self.emphasis > 0);
            style_words(&shown, |w| {
                let mut s = style(w).force_styling(true);
                if bold {
                    s = s.bold();
                }
                if italic {
                    s = s.italic();
                }
                s.to_string()
            })
        } else {
            shown
        };
        self.push_styled(&shown);
    }

    fn push_styled(&mut self, shown: &str) {
        match self.lines.last_mut() {
            Some(line) => line.push_str(shown),
            None => self.lines.push(shown.to_string()),
        }
    }

    /// A blank line between two blocks at the top level (not between a list's items).
    fn separate(&mut self) {
        if self.lists.is_empty() && self.quote == 0 {
            if self.blocks > 0 && self.out.last().is_some_and(|l| !l.trim().is_empty()) {
                self.out.push(String::new());
            }
            self.blocks += 1;
        }
    }

    /// The first line's and the following lines' prefixes of the next block.
    fn prefix(&mut self) -> (String, String) {
        let marker = self.marker.take();
        self.prefix_with(marker)
    }

    fn prefix_with(&self, marker: Option<String>) -> (String, String) {
        let mut base = self.indent.clone();
        base.push_str(&"> ".repeat(self.quote));
        // Each enclosing list indents its items' text (the innermost one's marker comes next).
        let depth = self.lists.len().saturating_sub(usize::from(marker.is_some()));
        base.push_str(&"  ".repeat(depth));
        match marker {
            Some(m) => {
                let rest = format!("{base}{}", " ".repeat(m.len()));
                (format!("{base}{m}"), rest)
            }
            None => (base.clone(), base),
        }
    }

    /// Writes the gathered block, wrapped: the first line at the block's prefix (a list item's
    /// marker), the rest under its text.
    fn flush(&mut self) {
        let lines = std::mem::replace(&mut self.lines, vec![String::new()]);
        if lines.iter().all(|l| l.trim().is_empty()) {
            return;
        }
        let (first, rest) = self.prefix();
        let mut initial = first;
        for line in lines {
            let line = line.trim();
            let options = textwrap::Options::new(self.width.max(initial.len() + 10))
                .initial_indent(&initial)
                .subsequent_indent(&rest)
                .break_words(false)
                .word_splitter(textwrap::WordSplitter::NoHyphenation);
            for wrapped in textwrap::wrap(line, &options) {
                self.out.push(wrapped.trim_end().to_string());
            }
            initial = rest.clone();
        }
    }
}

/// Styles each word of `text` on its own, so that no style runs across a line break.
fn style_words(text: &str, paint: impl Fn(&str) -> String) -> String {
    text.split(' ')
        .map(|w| if w.is_empty() { String::new() } else { paint(w) })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markers_go_and_paragraphs_wrap_at_words_with_the_indent() {
        let text = "**Impact:** every `GET /x` fails, see [the board](https://x.example/b).\nA second line of the same paragraph that is long enough to wrap at forty columns.\n\n- one\n- two words\n\n```\nkeep   this  line as it is, however long it is it stays\n```\n";
        let lines = render(text, "  ", 40, false);
        assert_eq!(
            lines,
            vec![
                "  Impact: every GET /x fails, see the",
                "  board <https://x.example/b>. A second",
                "  line of the same paragraph that is",
                "  long enough to wrap at forty columns.",
                "",
                "  - one",
                "  - two words",
                "",
                "    keep   this  line as it is, however long it is it stays",
            ]
        );
    }

    #[test]
    fn a_masked_secret_stays_masked_not_emphasis() {
        let lines = render("note shows *** and ***, `***` too", "", 80, false);
        assert_eq!(lines, vec!["note shows *** and ***, *** too"]);
    }

    #[test]
    fn a_list_items_lines_hang_under_its_text() {
        let lines = render("1. alpha beta gamma delta epsilon\n", "    ", 24, false);
        assert_eq!(lines, vec!["    1. alpha beta gamma", "       delta epsilon"]);
    }

    #[test]
    fn rich_styles_without_markers_and_escapes_control_characters() {
        let lines = render("**bold** `c` \x1b]0;x\x07", "", 80, true);
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert!(!l.contains("**") && !l.contains('`'), "{l:?}");
        assert!(l.contains("\x1b[1mbold\x1b[0m"), "{l:?}");
        assert!(l.contains("\\x1b]0;x\\x07"), "{l:?}");
        assert!(!l.contains("\x1b]"), "{l:?}");
    }
}
