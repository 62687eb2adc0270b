//! The runbook YAML of a scenario, written as text: serde-saphyr cannot emit comments, and
//! the `# review:` comments are the point. Every value from the Markdown is a quoted scalar
//! (`scalar`): single-quoted when it is one printable line, a literal block (`|-`) for lines
//! of text and commands, double-quoted with escapes for anything else, so that no value can
//! become YAML structure. Ids, durations and outcomes are made here and are plain.

use super::{Draft, Kind, Ref, Scenario, Src};

/// Characters YAML allows unescaped (c-printable), minus the ones some parsers take for a
/// line break (NEL, LS, PS) and the byte-order mark.
fn printable(c: char) -> bool {
    matches!(c, '\t' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// `value` as a YAML scalar whose block lines (if any) are indented by `indent` spaces.
pub(crate) fn scalar(value: &str, indent: usize) -> String {
    if value.contains('\n') && value.chars().all(|c| c == '\n' || printable(c)) {
        let body = value.trim_end_matches('\n');
        let chomp = match value.len() - body.len() {
            0 => "-",
            1 => "",
            _ => "+",
        };
        // A first line starting with a space (or empty) needs the indentation said.
        let indicator = if body.starts_with([' ', '\t']) || body.starts_with('\n') {
            "2"
        } else {
            ""
        };
        let pad = " ".repeat(indent);
        let mut out = format!("|{indicator}{chomp}");
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&pad);
                out.push_str(line);
            }
        }
        for _ in 1..value.len() - body.len() {
            out.push('\n');
        }
        return out;
    }
    if !value.contains('\n') && value.chars().all(printable) {
        return format!("'{}'", value.replace('\'', "''"));
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// `{{` in display text would be read as a variable: the import's text has none.
fn display(text: &str) -> String {
    text.replace("{{", "{ {").replace("}}", "} }")
}

/// A comment's text on one line, with no control character.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if printable(c) { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

struct Out {
    text: String,
    reviews: usize,
}

impl Out {
    fn line(&mut self, indent: usize, text: &str) {
        self.text.push_str(&" ".repeat(indent));
        self.text.push_str(text);
        self.text.push('\n');
    }

    fn review(&mut self, indent: usize, text: &str) {
        self.reviews += 1;
        self.line(indent, &format!("# review: {}", comment(text)));
    }

    fn field(&mut self, indent: usize, key: &str, value: &str) {
        let line = format!("{key}: {}", scalar(value, indent + 2));
        self.line(indent, &line);
    }
}

/// How many `# review:` comments the scenario's file has.
pub(crate) fn reviews(scenario: &Scenario) -> usize {
    let src = Src::new("", "");
    let mut out = Out {
        text: String::new(),
        reviews: 0,
    };
    write(&mut out, scenario, &src);
    out.reviews
}

/// The runbook file of one scenario.
pub(crate) fn runbook(scenario: &Scenario, src: &Src) -> String {
    let mut out = Out {
        text: String::new(),
        reviews: 0,
    };
    write(&mut out, scenario, src);
    out.text
}

fn write(out: &mut Out, s: &Scenario, src: &Src) {
    out.line(
        0,
        &format!(
            "# Imported by `runbook import` from {}:{} ({}).",
            comment(src.name),
            s.line,
            comment(&s.heading)
        ),
    );
    out.line(
        0,
        "# Each `# review:` comment marks a guess: check it against the source, then delete the comment.",
    );
    out.line(0, "version: 1");
    out.line(0, &format!("id: {}", s.id));
    out.field(0, "title", &display(&s.title));
    if !s.description.trim().is_empty() {
        out.field(0, "description", &s.description);
    }
    if let Some((owner, _)) = &s.owner {
        out.field(0, "owner", owner);
    }
    for review in &s.reviews {
        out.review(0, review);
    }
    out.review(0, &s.rto.1);
    out.line(0, &format!("rto: {}", s.rto.0));
    if let Some((after, to, from)) = &s.escalate {
        out.review(0, from);
        out.line(0, "escalate:");
        out.line(2, &format!("after: {after}"));
        out.field(2, "to", to);
    }
    if !s.targets.is_empty() {
        out.line(0, "targets:");
        for role in &s.targets {
            out.line(2, &format!("{}:", role.name));
            out.review(4, &role.review);
            out.field(4, "description", &role.description);
            if let Some(default) = &role.default {
                out.field(4, "default", default);
            }
        }
    }
    out.line(0, "steps:");
    for (i, step) in s.steps.iter().enumerate() {
        write_step(out, s, i, step);
    }
}

fn write_step(out: &mut Out, s: &Scenario, index: usize, step: &Draft) {
    out.line(2, &format!("- id: {}", step.id));
    for review in &step.reviews {
        out.review(4, review);
    }
    out.field(4, "title", &display(&step.title));
    if let Some(target) = &step.target {
        out.line(4, &format!("target: {target}"));
    }
    if let Some(rto) = &step.rto {
        out.review(4, "a time target in the step's text");
        out.line(4, &format!("rto: {rto}"));
    }
    if let Some(what) = &step.confirm {
        out.line(
            4,
            &format!("# destructive ({}): the operator confirms first", comment(what)),
        );
        out.line(4, "confirm: true");
    }
    if !step.notes.is_empty() {
        out.field(4, "notes", &display(&step.notes));
    }
    match &step.kind {
        Kind::Run(command) => out.field(4, "run", command),
        Kind::Manual(text) => out.field(4, "manual", &display(text)),
        Kind::Call(Ref::Id(id)) => out.line(4, &format!("call: {id}")),
        Kind::Call(_) => out.field(4, "manual", &display(&step.title)),
        Kind::Choose { action, label, .. } => {
            let after = s
                .steps
                .iter()
                .position(|d| &d.id == action)
                .and_then(|i| s.steps.get(i + 1))
                .or_else(|| s.steps.get(index + 1))
                .map_or(s.end_id.as_str(), |d| d.id.as_str());
            out.line(4, "choose:");
            out.line(6, &format!("- label: {}", scalar("No, go on", 10)));
            out.line(8, &format!("goto: {after}"));
            out.line(6, &format!("- label: {}", scalar(&display(label), 10)));
            out.line(8, &format!("goto: {action}"));
        }
        Kind::End => out.line(4, "end: resolved"),
    }
}

#[cfg(test)]
mod tests {
    use super::scalar;
    use std::collections::BTreeMap;

    /// Every kind of value reads back as written, whichever quoting it gets.
    #[test]
    fn scalars_read_back_as_written() {
        let values = [
            "plain",
            "it's: a # not comment",
            "- not a list",
            "{not: a map}",
            "*alias &anchor !tag",
            "  leading and trailing  ",
            "",
            "tab\there",
            "line one\nline two",
            "  indented first\nsecond",
            "\nstarts with a newline",
            "ends with newlines\n\n",
            "one newline\n",
            "bell \u{7} escape \u{1b}[31m nel \u{85} ls \u{2028} bom \u{feff}",
            "crlf\r\nline",
            "quote \" and backslash \\ and 'single'",
            "emoji 🚀 and ünïcödé",
            "psql -c \"DROP DATABASE \\\"$db\\\";\"\n  echo '|' > /dev/null",
        ];
        for value in values {
            let top = format!("v: {}\nw: 1\n", scalar(value, 2));
            let parsed: BTreeMap<String, String> =
                serde_saphyr::from_str(&top).unwrap_or_else(|e| panic!("{top:?}: {e}"));
            assert_eq!(parsed["v"], value, "{top}");
            let nested = format!("steps:\n  - id: a\n    v: {}\n    w: b\n", scalar(value, 6));
            let parsed: BTreeMap<String, Vec<BTreeMap<String, String>>> =
                serde_saphyr::from_str(&nested).unwrap_or_else(|e| panic!("{nested:?}: {e}"));
            assert_eq!(parsed["steps"][0]["v"], value, "{nested}");
        }
    }
}
