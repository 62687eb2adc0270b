//! YAML text → `Runbook`, through serde-saphyr with budgets, so a hostile or broken file gets a
//! located error quickly: never a panic, a hang or a runaway allocation.

use std::io::Read;
use std::path::Path;

use crate::book::runbook::Runbook;
use crate::diagnostic::{Diagnostic, Pos, did_you_mean};

mod duplicate;
mod hints;
pub(crate) mod tree;
mod wording;

/// Files larger than this are refused before they are read.
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A runbook file's text, kept for rendering snippets in diagnostics.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path as the user wrote it (or as found in the catalog).
    pub path: String,
    pub text: String,
}

impl Source {
    /// Reads a runbook file, refusing what cannot be a runbook (too large, not UTF-8 text).
    pub fn read(path: &Path) -> Result<Source, Diagnostic> {
        let shown = path.display().to_string();
        let cannot = |e: std::io::Error| {
            Diagnostic::error(&shown, Pos::default(), format!("cannot read the file: {e}"))
        };
        let file = std::fs::File::open(path).map_err(cannot)?;
        let meta = file.metadata().map_err(cannot)?;
        if meta.is_dir() {
            return Err(Diagnostic::error(
                &shown,
                Pos::default(),
                "is a directory, not a runbook file",
            ));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(too_large(&shown, meta.len()));
        }
        // Read one byte past the limit: devices and pipes report no length.
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(cannot)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(too_large(&shown, bytes.len() as u64));
        }
        Source::from_bytes(&shown, bytes)
    }

    /// Checks that the bytes are text a YAML parser should see.
    pub fn from_bytes(path: &str, bytes: Vec<u8>) -> Result<Source, Diagnostic> {
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let pos = position_of(e.as_bytes(), at);
                return Err(
                    Diagnostic::error(path, pos, "the file is not UTF-8 text (binary data?)")
                        .with_help("a runbook is a YAML text file; check that this is the file you meant"),
                );
            }
        };
        if let Some(at) = text.find('\0') {
            let pos = position_of(text.as_bytes(), at);
            return Err(
                Diagnostic::error(path, pos, "the file contains a NUL byte (binary data?)")
                    .with_help("a runbook is a YAML text file; check that this is the file you meant"),
            );
        }
        Ok(Source {
            path: path.to_string(),
            text,
        })
    }

    /// Parses the text into a runbook, or the first structural problem, located.
    pub fn parse(&self) -> Result<Runbook, Diagnostic> {
        if self.text.trim().is_empty()
            || self
                .text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Err(Diagnostic::error(&self.path, Pos::new(1, 1), "the file is empty")
                .with_help("a runbook needs at least `version: 1`, `id`, `title`, `rto` and `steps`; see docs/format.md"));
        }
        serde_saphyr::from_str_with_options::<Runbook>(&self.text, options()).map_err(|e| self.diagnose(&e))
    }

    pub(crate) fn diagnose(&self, error: &serde_saphyr::Error) -> Diagnostic {
        let worded = wording::explain(error, &self.text);
        let message = clean_message(&worded.message);
        let mut d = self.reword(worded.pos, &message).unwrap_or_else(|| {
            let d = Diagnostic::error(&self.path, worded.pos, &message).with_width(worded.width);
            match hints::for_syntax(&self.text, worded.pos, &message) {
                Some(hint) => d.with_help(hint),
                None => d,
            }
        });
        if let Some(anchor) = worded.anchored_at {
            d.message.push_str(&through_alias(anchor));
        }
        d
    }

    /// serde reports these as plain messages; give them a hint an engineer can act on.
    fn reword(&self, pos: Pos, message: &str) -> Option<Diagnostic> {
        let typed = match message {
            "invalid boolean" => Some(("invalid boolean", "write `true` or `false`")),
            "invalid u32" | "invalid i32" | "invalid u64" | "invalid i64" => {
                Some(("invalid number", "write a whole number, like `3`"))
            }
            m if m.contains("untagged enum ExitCodes") => Some((
                "invalid exit codes",
                "write an exit code or a list of them, like `exit: 0` or `exit: [0, 22]`",
            )),
            m if m.contains("untagged enum Confirm") => Some((
                "invalid confirmation",
                "write `true` (a yes/no question), `false`, or the phrase the operator must type",
            )),
            _ => None,
        };
        if let Some((what, help)) = typed {
            let width = self
                .text
                .lines()
                .nth(pos.line.saturating_sub(1) as usize)
                .map(|l| {
                    l.chars()
                        .skip(pos.col.saturating_sub(1) as usize)
                        .take_while(|c| !matches!(c, ',' | '}' | ']' | '#'))
                        .collect::<String>()
                        .trim_end()
                        .chars()
                        .count()
                })
                .unwrap_or(1);
            return Some(
                Diagnostic::error(&self.path, pos, what)
                    .with_width(width)
                    .with_help(help),
            );
        }
        if let Some((field, expected)) = unknown_field(message) {
            let d = Diagnostic::error(&self.path, pos, format!("unknown field `{field}`"))
                .with_width(field.chars().count());
            let hint = did_you_mean(field, expected.iter().copied())
                .unwrap_or_else(|| format!("expected one of {}", crate::diagnostic::ticked(expected)));
            return Some(d.with_help(hint));
        }
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            let help = hints::misindented(&self.text, pos, field)
                .unwrap_or_else(|| format!("add `{field}:` to this mapping; see docs/format.md"));
            return Some(
                Diagnostic::error(&self.path, pos, format!("missing field `{field}`")).with_help(help),
            );
        }
        if message.starts_with("budget breached") || message.contains("alias") && message.contains("limit") {
            return Some(
                Diagnostic::error(
                    &self.path,
                    pos,
                    "refused: the file's anchors and aliases expand too far (an alias bomb?)",
                )
                .with_help("a runbook needs few aliases, if any; write the values out"),
            );
        }
        if message.starts_with("recursion limit exceeded") || message.contains("nesting") {
            return Some(
                Diagnostic::error(
                    &self.path,
                    pos,
                    "refused: the file nests deeper than a runbook ever needs",
                )
                .with_help("check the indentation or brackets around here"),
            );
        }
        None
    }
}

/// A YAML file that does not parse (an inventory), worded as a runbook's error headline is.
pub(crate) fn describe(error: &serde_saphyr::Error, text: &str) -> (Pos, String) {
    let worded = wording::explain(error, text);
    let mut message = clean_message(&worded.message);
    if let Some(anchor) = worded.anchored_at {
        message.push_str(&through_alias(anchor));
    }
    (worded.pos, message)
}

/// The error is at the alias; what to fix is where the value it repeats is written.
fn through_alias(anchor: Pos) -> String {
    format!(" (in the value at line {} that this alias repeats)", anchor.line)
}

/// Splits serde's "unknown field `x`, expected one of a, b" (or "expected `a`").
fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .trim_start_matches(", expected one of ")
        .trim_start_matches(", expected ")
        .split(", ")
        .map(|f| f.trim_matches('`'))
        .filter(|f| !f.is_empty() && *f != "there are no fields")
        .collect();
    Some((field, expected))
}

fn too_large(path: &str, len: u64) -> Diagnostic {
    Diagnostic::error(
        path,
        Pos::default(),
        format!("the file is {len} bytes; runbooks are limited to {MAX_FILE_BYTES} bytes (1 MiB)"),
    )
    .with_help("split the scenario into several runbooks joined with `call`")
}

/// serde-saphyr's message may carry its own position ("line N column M: ..." or "... at line
/// N, column M"); ours is in the headline. Only a whole position is taken off: a message that
/// merely says "at line" elsewhere (our own "first at line 2") is kept whole.
fn clean_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    let first = match first.strip_prefix("line ").and_then(|rest| rest.split_once(": ")) {
        Some((at, rest)) if is_position(at) => rest,
        _ => first,
    };
    let first = match first.rsplit_once(" at line ") {
        Some((before, at)) if is_position(at) => before,
        _ => first,
    };
    let first = first.trim_start_matches("error: ").trim();
    if first.is_empty() {
        "invalid YAML".to_string()
    } else {
        first.to_string()
    }
}

/// `12, column 5` or `12 column 5`.
fn is_position(text: &str) -> bool {
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    text.split_once(" column ")
        .is_some_and(|(line, col)| number(line.trim_end_matches(',')) && number(col))
}

fn position_of(bytes: &[u8], at: usize) -> Pos {
    let before = &bytes[..at.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() as u32 + 1;
    Pos::new(line, col)
}

/// Budgets well above any real runbook and far below what hurts: a runbook has hundreds of
/// nodes, not hundreds of thousands, and no reason for deep nesting or alias fan-out.
pub(crate) fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(MAX_FILE_BYTES as usize),
            max_events: 200_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_depth: 32,
            max_documents: 1,
            max_nodes: 100_000,
            max_total_scalar_bytes: MAX_FILE_BYTES as usize * 4,
            max_recorded_anchor_events: 20_000,
        },
        alias_limits: alias_limits(),
    }
}

fn alias_limits() -> serde_saphyr::options::AliasLimits {
    let mut limits = serde_saphyr::options::AliasLimits::default();
    limits.max_total_replayed_events = 20_000;
    limits.max_replay_stack_depth = 16;
    limits.max_alias_expansions_per_anchor = 1_000;
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Runbook, Diagnostic> {
        Source::from_bytes("t.yaml", text.as_bytes().to_vec())?.parse()
    }

    #[test]
    fn parses_the_design_example() {
        let runbook = parse(include_str!("../../tests/data/design-example.yaml")).unwrap();
        assert_eq!(runbook.id.value, "db-restore");
        assert_eq!(runbook.steps.len(), 9);
        assert_eq!(
            Pos::of(&runbook.steps[2].on_failure.clone().unwrap()),
            Pos::new(37, 17)
        );
    }

    #[test]
    fn unknown_field_is_located_with_a_hint() {
        let d = parse("version: 1\nid: x\ntitle: X\nrto: 5m\nsteps:\n  - id: a\n    title: A\n    timout: 5s\n    end: resolved\n").unwrap_err();
        assert_eq!(d.headline(), "t.yaml:8:5: error: unknown field `timout`");
        assert_eq!(d.help.as_deref(), Some("did you mean `timeout`?"));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = (b'a' + i - 1) as char;
            let cur = (b'a' + i) as char;
            text.push_str(&format!("{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let start = std::time::Instant::now();
        assert!(parse(&text).is_err());
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }
}
