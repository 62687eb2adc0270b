//! Finding things in the file's text that the parsed model carries no position for (a plain
//! `String` field, a map key, a `{{ name }}` inside a title), so that every diagnostic can
//! still point at the token itself rather than at the top of the file.

use crate::diagnostic::Pos;

/// The source text with its line starts, for line lookups in O(1).
pub(crate) struct Text<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Text<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Text { text, starts }
    }

    pub(crate) fn line_count(&self) -> u32 {
        self.starts.len() as u32
    }

    /// Line `n` (1-based) without its line break.
    pub(crate) fn line(&self, n: u32) -> Option<&'a str> {
        let i = (n as usize).checked_sub(1)?;
        let start = *self.starts.get(i)?;
        let end = self.starts.get(i + 1).copied().unwrap_or(self.text.len());
        Some(self.text[start..end].trim_end_matches(['\n', '\r']))
    }

    /// How many characters to underline for a scalar written at `pos`: the whole quoted
    /// string with its quotes, the plain value, or one character for a block scalar.
    pub(crate) fn width_at(&self, pos: Pos, value: &str) -> usize {
        let Some(line) = self.line(pos.line) else {
            return 1;
        };
        let rest: Vec<char> = line.chars().skip(pos.col.saturating_sub(1) as usize).collect();
        match rest.first() {
            Some(&q @ ('"' | '\'')) => rest[1..]
                .iter()
                .position(|&c| c == q)
                .map(|end| end + 2)
                .unwrap_or(rest.len()),
            Some(_) if !value.contains('\n') => value.chars().count().min(rest.len()).max(1),
            _ => 1,
        }
    }

    /// The first `key:` (a mapping key, block or flow style) on lines `from..to`.
    pub(crate) fn find_key(&self, from: u32, to: u32, key: &str) -> Option<Pos> {
        (from.max(1)..to.min(self.line_count() + 1)).find_map(|n| {
            let line = self.line(n)?;
            let mut search = 0;
            while let Some(found) = line[search..].find(key) {
                let at = search + found;
                let before = line[..at].chars().next_back();
                let after = line[at + key.len()..].trim_start();
                let starts_key = matches!(before, None | Some(' ' | '{' | ',' | '-' | '\t'));
                if starts_key && after.starts_with(':') {
                    return Some(Pos::new(n, line[..at].chars().count() as u32 + 1));
                }
                search = at + key.len();
            }
            None
        })
    }

    /// The first occurrence of `needle` on lines `from..to` (columns in characters).
    pub(crate) fn find(&self, from: u32, to: u32, needle: &str) -> Option<Pos> {
        (from.max(1)..to.min(self.line_count() + 1)).find_map(|n| {
            let line = self.line(n)?;
            line.find(needle)
                .map(|at| Pos::new(n, line[..at].chars().count() as u32 + 1))
        })
    }
}

/// The names used as `{{ name }}` in display text (spaces inside the braces are optional),
/// each with the raw text of the placeholder. Braces around something that is not a plain
/// name (`{{ .Status }}` in a docker example) are not placeholders and are left alone.
pub(crate) fn placeholders(text: &str) -> Vec<(&str, &str)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            break;
        };
        let name = after[..close].trim();
        if is_name(name) {
            found.push((name, &rest[open..open + 2 + close + 2]));
        }
        rest = &after[close + 2..];
    }
    found
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A variable name the shell can see: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_widths() {
        let t = Text::new("a: 1\n  - {id: x, retry: {attempts: 0}}\n  message: \"hi there\"\n");
        assert_eq!(t.find_key(1, 4, "attempts"), Some(Pos::new(2, 21)));
        assert_eq!(t.find_key(1, 4, "message"), Some(Pos::new(3, 3)));
        assert_eq!(t.find_key(1, 2, "message"), None);
        assert_eq!(t.width_at(Pos::new(3, 12), "hi there"), 10);
        assert_eq!(t.width_at(Pos::new(2, 10), "x"), 1);
    }

    #[test]
    fn parses_placeholders_with_optional_spaces() {
        assert_eq!(
            placeholders("{{a}} and {{  db_name }} not {{ .Status }} {{ x"),
            vec![("a", "{{a}}"), ("db_name", "{{  db_name }}")]
        );
    }
}
