//! The runbook as a document (`runbook show`): plain text to read or print, Markdown to paste
//! into a wiki, and a Mermaid flowchart, all from the same parsed YAML that executes.
//!
//! A runbook shown here is a plan, not a run: `{{ name }}` stays as written, nothing is
//! resolved or executed, and secret defaults are masked. The facts about a step (its kind,
//! limits, checks and where it goes next) are gathered once here so the formats agree.

mod markdown;
mod mermaid;
mod text;

pub(crate) use markdown::markdown;
pub(crate) use mermaid::mermaid;
pub(crate) use text::text;

use crate::book::runbook::{ChooseOption, Confirm, ExitCodes, Runbook, Step, StepKind};

/// Where a step goes when it is done.
pub(crate) enum Flow<'a> {
    /// `run`, `manual`, `call` (or a step whose kinds are wrong): success follows `next` or the
    /// following step (`None`: it falls off the end of the list); failure follows `on_failure`
    /// (`None`: the operator is asked).
    Linear {
        success: Option<&'a str>,
        failure: Option<&'a str>,
    },
    /// A decision point: one edge per option.
    Choose(&'a [ChooseOption]),
    /// The run ends here.
    End,
}

/// Where step `index` of the main list goes next.
pub(crate) fn flow(runbook: &Runbook, index: usize) -> Flow<'_> {
    let step = &runbook.steps[index];
    match step.kind() {
        Some(StepKind::Choose(options)) => Flow::Choose(options),
        Some(StepKind::End(_)) => Flow::End,
        _ => Flow::Linear {
            success: step
                .next
                .as_ref()
                .map(|n| n.value.as_str())
                .or_else(|| runbook.steps.get(index + 1).map(Step::id)),
            failure: step.on_failure.as_ref().map(|f| f.value.as_str()),
        },
    }
}

/// The step's kind as a word; a step with zero or several kinds says so (validate reports it).
pub(crate) fn kind_name(step: &Step) -> String {
    match step.kinds().as_slice() {
        [one] => one.name().to_string(),
        [] => "none (invalid: needs one of run, manual, choose, call, end)".to_string(),
        many => format!(
            "{} (invalid: only one kind allowed)",
            many.iter().map(|k| k.name()).collect::<Vec<_>>().join(" + ")
        ),
    }
}

/// The two documents: they differ in how names are marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Text,
    Markdown,
}

impl Style {
    /// A step id, role or variable name: bare in text (it has no spaces), a code span in
    /// Markdown. Literal text that may hold spaces or quotes (regexes, phrases, values) is
    /// always a code span, so its ends are visible.
    pub(crate) fn name(self, name: &str) -> String {
        match self {
            Style::Text => name.to_string(),
            Style::Markdown => code(name),
        }
    }
}

/// Short labelled facts about a step, in display order, shared by the text and Markdown
/// documents.
pub(crate) fn facts(runbook: &Runbook, step: &Step, style: Style) -> Vec<(&'static str, String)> {
    let mut facts = vec![("id", style.name(step.id())), ("kind", kind_name(step))];
    let is_run = step.run.is_some();
    if is_run || step.target.is_some() {
        facts.push(("target", style.name(runbook.step_target(step))));
    }
    if let Some(rto) = &step.rto {
        facts.push(("rto", rto.0.value.clone()));
    }
    if let Some(timeout) = &step.timeout {
        facts.push(("timeout", timeout.0.value.clone()));
    }
    if let Some(confirm) = step.confirmation() {
        facts.push(("confirm", confirm_text(confirm)));
    }
    if let Some(retry) = &step.retry {
        let attempts = match retry.attempts {
            1 => "1 attempt".to_string(),
            n => format!("{n} attempts"),
        };
        let text = match &retry.delay {
            Some(delay) => format!("{attempts}, {} apart", delay.0.value),
            None => attempts,
        };
        facts.push(("retry", text));
    }
    if let Some(expect) = &step.expect {
        let mut parts = Vec::new();
        match &expect.exit {
            Some(ExitCodes::One(code)) => parts.push(format!("exit {code}")),
            Some(ExitCodes::Many(codes)) => parts.push(format!(
                "exit {}",
                codes.iter().map(i32::to_string).collect::<Vec<_>>().join(" or ")
            )),
            None => {}
        }
        if let Some(re) = &expect.stdout {
            parts.push(format!("stdout matches {}", code(&re.value)));
        }
        if let Some(re) = &expect.stderr {
            parts.push(format!("stderr matches {}", code(&re.value)));
        }
        if !parts.is_empty() {
            facts.push(("expect", parts.join(", ")));
        }
    }
    if let Some(capture) = &step.capture {
        facts.push(("capture", format!("stdout → {}", style.name(&capture.value))));
    }
    if step.idempotent {
        facts.push((
            "idempotent",
            "yes (re-run after a crash without asking)".to_string(),
        ));
    }
    if let Some(call) = &step.call {
        facts.push(("calls", format!("runbook {}", style.name(&call.value))));
    }
    if !step.with.is_empty() {
        let with = step
            .with
            .iter()
            .map(|(k, v)| format!("{} = {}", style.name(k), code(v)))
            .collect::<Vec<_>>()
            .join(", ");
        facts.push(("with", with));
    }
    if let Some(end) = &step.end {
        facts.push(("outcome", end.value.0.clone()));
    }
    facts
}

/// Where a linear step goes on success and on failure, in words, with each step's id as
/// `name` writes it.
fn next_words(
    success: Option<&str>,
    failure: Option<&str>,
    name: impl Fn(&str) -> String,
) -> (String, String) {
    let success = success
        .map(|s| format!("go to {}", name(s)))
        .unwrap_or_else(|| "nothing: last step of the list (invalid)".to_string());
    let failure = failure
        .map(|f| format!("go to {}", name(f)))
        .unwrap_or_else(|| "ask the operator".to_string());
    (success, failure)
}

fn confirm_text(confirm: &Confirm) -> String {
    match confirm {
        Confirm::YesNo(_) => "yes/no question before it acts".to_string(),
        Confirm::Phrase(phrase) => format!("type {} before it acts", code(phrase)),
    }
}

/// An option of a `choose` step: `"Healthy" → done, when health matches `...``.
pub(crate) fn option_text(option: &ChooseOption, style: Style) -> String {
    let mut text = format!("\"{}\" → {}", option.label, style.name(&option.goto.value));
    if let Some(when) = &option.when {
        let var = style.name(&when.var.value);
        if let Some(value) = &when.equals {
            text.push_str(&format!(", when {var} equals {}", code(value)));
        }
        if let Some(re) = &when.matches {
            text.push_str(&format!(", when {var} matches {}", code(&re.value)));
        }
    }
    text
}

/// What the inputs table shows as an input's default: the value, `(required)` without one,
/// and never a secret in clear.
pub(crate) fn input_default(input: &crate::book::runbook::Input) -> String {
    match (&input.default, input.secret) {
        (Some(_), true) => "*** (secret)".to_string(),
        (Some(value), false) => value.clone(),
        (None, true) => "(required, secret)".to_string(),
        (None, false) => "(required)".to_string(),
    }
}

/// Literal text as a Markdown code span, which also reads well in plain text. A value that
/// holds backticks gets a longer fence so it cannot end the span early.
pub(crate) fn code(text: &str) -> String {
    let longest = longest_run(text, '`');
    if longest == 0 {
        return format!("`{text}`");
    }
    let fence = "`".repeat(longest + 1);
    format!("{fence} {text} {fence}")
}

/// The longest run of `c` in `text` (to pick a fence that cannot close early).
pub(crate) fn longest_run(text: &str, c: char) -> usize {
    let (mut longest, mut current) = (0, 0);
    for ch in text.chars() {
        if ch == c {
            current += 1;
            longest = longest.max(current);
        } else {
            current = 0;
        }
    }
    longest
}

/// An aligned table: every column but the last padded to its widest cell, two spaces apart,
/// each row prefixed with `indent` and ended with a newline.
pub(crate) fn table(rows: &[Vec<String>], indent: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = indent.to_string();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 < row.len() {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Multi-line text on one line, for table cells and flowchart labels.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "`` a`b ``");
    }

    #[test]
    fn table_aligns_all_but_the_last_column() {
        let rows = vec![
            vec!["ID".to_string(), "TITLE".to_string(), "RTO".to_string()],
            vec!["a-long-id".to_string(), "T".to_string(), "5m".to_string()],
        ];
        assert_eq!(table(&rows, ""), "ID         TITLE  RTO\na-long-id  T      5m\n");
    }
}
