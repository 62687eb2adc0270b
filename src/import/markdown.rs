//! A Markdown runbook read with a CommonMark parser (`pulldown-cmark`, with its offset
//! iterator for line numbers) into the blocks `import` cares about: headings, paragraphs split
//! into their lines, list items with their nested items and code blocks, and top-level code
//! blocks. A backtick, a `#` or a `1.` inside a command is never taken for structure, as a line
//! regex would.

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Inline text as pieces: prose and code spans kept apart, so that a command is the code
/// span, never a guess at where prose stops.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Inline {
    pub(crate) parts: Vec<Part>,
    /// Link targets in it, in order (`#anchor` or a URL) with their text.
    pub(crate) links: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Text(String),
    Code(String),
}

impl Inline {
    fn push_text(&mut self, text: &str) {
        match self.parts.last_mut() {
            Some(Part::Text(t)) => t.push_str(text),
            _ => self.parts.push(Part::Text(text.to_string())),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.parts.iter().all(|p| match p {
            Part::Text(t) => t.trim().is_empty(),
            Part::Code(_) => false,
        })
    }

    /// The text with code spans in backticks, as Markdown would show it.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Code(c) => out.push_str(&crate::render::code(c)),
            }
        }
        out.trim().to_string()
    }

    /// The prose alone (code spans left out).
    pub(crate) fn prose(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            if let Part::Text(t) = part {
                out.push_str(t);
            }
        }
        out
    }
}

/// One line of a paragraph.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) line: usize,
    pub(crate) inline: Inline,
}

/// A code block: fenced (with its info string's first word as `lang`) or indented.
#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub(crate) line: usize,
    pub(crate) lang: String,
    pub(crate) text: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Marker {
    Ordered,
    Task,
    Bullet,
}

/// A top-level list item of a section.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) line: usize,
    pub(crate) marker: Marker,
    /// Its first paragraph (or its text, in a tight list).
    pub(crate) text: Inline,
    /// Its further paragraphs and nested items, one line each.
    pub(crate) more: Vec<Line>,
    pub(crate) codes: Vec<Code>,
}

#[derive(Debug, Clone)]
pub(crate) enum Block {
    Para {
        lines: Vec<Line>,
        range: Range<usize>,
    },
    Item(Item),
    Code(Code),
    Heading {
        line: usize,
        text: Inline,
    },
    /// A table, quote, HTML block or rule: kept for the description, never a step.
    Other {
        range: Range<usize>,
    },
}

/// A scenario heading and what follows it up to the next one.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub(crate) line: usize,
    pub(crate) heading: Inline,
    pub(crate) blocks: Vec<Block>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Doc {
    pub(crate) title: Option<String>,
    /// The blocks before the first scenario heading.
    pub(crate) prelude: Vec<Block>,
    pub(crate) sections: Vec<Section>,
    /// The level of the scenario headings: 2, or 1 in a file without any `##`.
    pub(crate) level: u8,
}

fn options() -> Options {
    Options::ENABLE_TASKLISTS | Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH
}

/// Byte offset → 1-based line.
pub(crate) struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    pub(crate) fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts }
    }

    pub(crate) fn of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }

    /// The byte range of line `n` (1-based), without its line break.
    pub(crate) fn range(&self, n: usize, text: &str) -> std::ops::Range<usize> {
        let start = self.starts.get(n.wrapping_sub(1)).copied().unwrap_or(text.len());
        let end = self.starts.get(n).map_or(text.len(), |s| s - 1);
        start..end.max(start)
    }
}

/// Where the inline text being read goes when it is complete.
#[derive(Default)]
struct Reader {
    doc: Doc,
    lines: Option<Lines>,
    buf: Inline,
    buf_line: Option<usize>,
    heading: Option<(u8, usize)>,
    list_depth: usize,
    /// Inside a quote, table or HTML block: not read for steps.
    opaque: usize,
    item: Option<Item>,
    /// The marker of the top-level list being read (an item may turn it into a task).
    list_marker: Option<Marker>,
    para: Option<(Vec<Line>, Range<usize>)>,
    code: Option<Code>,
    link: Option<String>,
}

pub(crate) fn read(text: &str) -> Doc {
    let level = if Parser::new_ext(text, options()).any(|e| {
        matches!(
            e,
            Event::Start(Tag::Heading {
                level: HeadingLevel::H2,
                ..
            })
        )
    }) {
        2
    } else {
        1
    };
    let mut r = Reader {
        lines: Some(Lines::new(text)),
        ..Reader::default()
    };
    r.doc.level = level;
    for (event, range) in Parser::new_ext(text, options()).into_offset_iter() {
        r.event(event, range);
    }
    r.doc
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

impl Reader {
    fn line(&self, offset: usize) -> usize {
        self.lines.as_ref().map_or(0, |l| l.of(offset))
    }

    fn blocks(&mut self) -> &mut Vec<Block> {
        match self.doc.sections.last_mut() {
            Some(section) => &mut section.blocks,
            None => &mut self.doc.prelude,
        }
    }

    fn take_buf(&mut self) -> Option<Line> {
        let inline = std::mem::take(&mut self.buf);
        let line = self.buf_line.take()?;
        (!inline.is_empty()).then_some(Line { line, inline })
    }

    /// The inline text read so far goes where the reader is.
    fn flush(&mut self) {
        let Some(line) = self.take_buf() else {
            return;
        };
        if let Some((lines, _)) = &mut self.para {
            lines.push(line);
        } else if let Some(item) = &mut self.item {
            if self.list_depth == 1 && item.text.is_empty() && item.more.is_empty() {
                item.text = line.inline;
            } else {
                item.more.push(line);
            }
        }
    }

    fn event(&mut self, event: Event<'_>, range: Range<usize>) {
        match event {
            Event::Start(tag) => self.start(tag, range),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => {
                if let Some(code) = &mut self.code {
                    code.text.push_str(&text);
                } else if self.opaque == 0 {
                    self.buf_line.get_or_insert(self.line(range.start));
                    self.buf.push_text(&text);
                }
            }
            Event::Code(code) if self.opaque == 0 => {
                self.buf_line.get_or_insert(self.line(range.start));
                self.buf.parts.push(Part::Code(code.to_string()));
            }
            Event::SoftBreak | Event::HardBreak if self.opaque == 0 => {
                // A paragraph of the section is read line by line ("RTO: ..." under
                // "Owner: ..."); elsewhere a break is a space.
                if self.para.is_some() && self.item.is_none() && self.heading.is_none() {
                    self.flush();
                } else {
                    self.buf.push_text(" ");
                }
            }
            Event::TaskListMarker(_) => {
                if let Some(item) = &mut self.item
                    && self.list_depth == 1
                {
                    item.marker = Marker::Task;
                }
            }
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>, range: Range<usize>) {
        match tag {
            Tag::Heading { level, .. } => {
                self.flush();
                self.heading = Some((heading_level(level), self.line(range.start)));
            }
            Tag::Paragraph if self.opaque == 0 => {
                self.flush();
                if self.item.is_none() {
                    self.para = Some((Vec::new(), range));
                }
            }
            Tag::List(first) => {
                self.flush();
                self.list_depth += 1;
                if self.list_depth == 1 && self.opaque == 0 {
                    let marker = if first.is_some() {
                        Marker::Ordered
                    } else {
                        Marker::Bullet
                    };
                    self.list_marker = Some(marker);
                    self.item = Some(Item {
                        line: self.line(range.start),
                        marker,
                        text: Inline::default(),
                        more: Vec::new(),
                        codes: Vec::new(),
                    });
                }
            }
            Tag::Item => {
                self.flush();
                if self.list_depth == 1
                    && let Some(item) = &mut self.item
                {
                    item.line = self.lines.as_ref().map_or(0, |l| l.of(range.start));
                    item.text = Inline::default();
                    item.more.clear();
                    item.codes.clear();
                    // Each item says for itself whether it is a task.
                    item.marker = self.list_marker.unwrap_or(Marker::Bullet);
                }
            }
            Tag::CodeBlock(kind) => {
                self.flush();
                let (lang, line) = match kind {
                    CodeBlockKind::Fenced(info) => (
                        info.split_whitespace().next().unwrap_or("").to_ascii_lowercase(),
                        self.line(range.start),
                    ),
                    CodeBlockKind::Indented => (String::new(), self.line(range.start)),
                };
                self.code = Some(Code {
                    line,
                    lang,
                    text: String::new(),
                });
            }
            Tag::Link { dest_url, .. } => self.link = Some(dest_url.to_string()),
            Tag::BlockQuote(_) | Tag::Table(_) | Tag::HtmlBlock => {
                self.flush();
                if self.opaque == 0 && self.item.is_none() {
                    self.blocks().push(Block::Other { range });
                }
                self.opaque += 1;
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(level) => {
                let text = std::mem::take(&mut self.buf);
                self.buf_line = None;
                let Some((_, line)) = self.heading.take() else {
                    return;
                };
                let level = heading_level(level);
                if level == self.doc.level {
                    self.doc.sections.push(Section {
                        line,
                        heading: text,
                        blocks: Vec::new(),
                    });
                } else if level < self.doc.level {
                    if self.doc.title.is_none() && self.doc.sections.is_empty() {
                        self.doc.title = Some(text.markdown());
                    }
                } else {
                    self.blocks().push(Block::Heading { line, text });
                }
            }
            TagEnd::Paragraph => {
                self.flush();
                if let Some((lines, range)) = self.para.take()
                    && !lines.is_empty()
                {
                    self.blocks().push(Block::Para { lines, range });
                }
            }
            TagEnd::Item => {
                self.flush();
                if self.list_depth == 1
                    && let Some(item) = &self.item
                    && (!item.text.is_empty() || !item.codes.is_empty() || !item.more.is_empty())
                {
                    let item = item.clone();
                    self.blocks().push(Block::Item(item));
                }
            }
            TagEnd::List(_) => {
                self.flush();
                self.list_depth = self.list_depth.saturating_sub(1);
                if self.list_depth == 0 {
                    self.item = None;
                }
            }
            TagEnd::CodeBlock => {
                let Some(code) = self.code.take() else {
                    return;
                };
                if self.opaque > 0 {
                    return;
                }
                match &mut self.item {
                    Some(item) => item.codes.push(code),
                    None => self.blocks().push(Block::Code(code)),
                }
            }
            TagEnd::Link => {
                if let Some(url) = self.link.take() {
                    let text = match self.buf.parts.last() {
                        Some(Part::Text(t)) => t.trim().to_string(),
                        Some(Part::Code(c)) => c.clone(),
                        None => String::new(),
                    };
                    self.buf.links.push((url, text));
                }
            }
            TagEnd::BlockQuote(_) | TagEnd::Table | TagEnd::HtmlBlock => {
                self.opaque = self.opaque.saturating_sub(1);
                self.buf = Inline::default();
                self.buf_line = None;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_keep_code_spans_apart_and_their_lines() {
        let doc = read(
            "# Title\n\n## One\n\nWhen: now\nRTO: 5 minutes\n\n1. Check: `df -h`\n2. Restart\n   ```sh\n   $ systemctl restart x\n   ```\n   - sub point\n- [ ] a task\n",
        );
        assert_eq!(doc.title.as_deref(), Some("Title"));
        let section = &doc.sections[0];
        let Block::Para { lines, .. } = &section.blocks[0] else {
            panic!("{:?}", section.blocks[0]);
        };
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].line, 6);
        let items: Vec<&Item> = section
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Item(i) => Some(i),
                _ => None,
            })
            .collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].line, 8);
        assert_eq!(items[0].text.parts[1], Part::Code("df -h".into()));
        assert_eq!(items[1].codes[0].text, "$ systemctl restart x\n");
        assert_eq!(items[1].codes[0].lang, "sh");
        assert_eq!(items[1].more[0].inline.markdown(), "sub point");
        assert_eq!(items[2].marker, Marker::Task);
    }
}
