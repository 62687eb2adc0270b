//! Problems found in a runbook file, each pointing at a line and column, rendered the way
//! compilers do: `file:line:col: error: message`, a snippet with a caret, and a hint.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A 1-based line and column in a file; `0:0` when unknown (e.g. the file cannot be read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub fn new(line: u32, col: u32) -> Self {
        Pos { line, col }
    }

    /// The position serde-saphyr recorded for a value.
    pub fn of<T>(spanned: &serde_saphyr::Spanned<T>) -> Self {
        Self::from_location(&spanned.referenced)
    }

    pub fn from_location(loc: &serde_saphyr::Location) -> Self {
        Pos::new(loc.line() as u32, loc.column() as u32)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
    /// What to do about it, when there is something better to say than the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// How many characters the caret underlines (at least 1).
    #[serde(skip)]
    pub width: usize,
}

impl Diagnostic {
    pub fn error(file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_string(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
            help: None,
            width: 1,
        }
    }

    pub fn warning(file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Self::error(file, pos, message)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_width(mut self, width: usize) -> Self {
        self.width = width.max(1);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The header line alone: `file:line:col: error: message`.
    pub fn headline(&self) -> String {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line == 0 {
            format!("{}: {severity}: {}", self.file, self.message)
        } else {
            format!(
                "{}:{}:{}: {severity}: {}",
                self.file, self.line, self.col, self.message
            )
        }
    }

    /// The full rendering: headline, a snippet of `source` around the position, and the hint.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = self.headline();
        out.push('\n');
        if let Some(line_text) = source.and_then(|s| nth_line(s, self.line)) {
            let number = self.line.to_string();
            let gutter = " ".repeat(number.len());
            let shown: String = line_text.chars().take(160).collect();
            let indent: String = shown
                .chars()
                .take(self.col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!(
                "{gutter} |\n{number} | {shown}\n{gutter} | {indent}{}\n",
                "^".repeat(self.width)
            ));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
        out
    }
}

fn nth_line(source: &str, line: u32) -> Option<&str> {
    if line == 0 {
        return None;
    }
    source.lines().nth(line as usize - 1)
}

/// `1 error`, `2 errors`: a count and its noun, grammatical for one.
pub(crate) fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// `` `a`, `b`, `c` ``: names as a help lists them.
pub(crate) fn ticked<S: std::fmt::Display>(names: impl IntoIterator<Item = S>) -> String {
    let ticked: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    ticked.join(", ")
}

/// "did you mean `x`?" for the closest candidate, when one is close enough to be a typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| {
            *distance <= (c.len().max(word.len()) / 3).max(1) || c.starts_with(word) && word.len() >= 3
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_snippet_with_caret_and_help() {
        let d = Diagnostic::error("a.yaml", Pos::new(2, 7), "step `x` goes to unknown step `drian`")
            .with_width(5)
            .with_help("did you mean `drain`?");
        assert_eq!(
            d.render(Some("steps:\n  next: drian\n")),
            "a.yaml:2:7: error: step `x` goes to unknown step `drian`\n  |\n2 |   next: drian\n  |       ^^^^^\n  = help: did you mean `drain`?\n"
        );
    }

    #[test]
    fn suggests_only_close_words() {
        assert_eq!(
            did_you_mean("timout", ["timeout", "title"]),
            Some("did you mean `timeout`?".into())
        );
        assert_eq!(did_you_mean("zzz", ["timeout", "title"]), None);
    }
}
