//! `runbook show --format text`: the runbook as a plain document to read on a terminal or print
//! and keep beside the keyboard when the tool itself cannot run.

use super::{Flow, Style, facts, flow, input_default, next_words, one_line, option_text, table};
use crate::book::runbook::{Link, Runbook, Step};

/// Width of the labels of a step's facts, so their values line up.
const LABEL: usize = 12;

/// The whole runbook as text, ending with a newline.
pub(crate) fn text(runbook: &Runbook) -> String {
    let mut out = String::new();
    let title = runbook.title.trim();
    out.push_str(&format!("{title}\n{}\n\n", "=".repeat(title.chars().count())));

    let mut header = vec![vec!["id:".to_string(), runbook.id().to_string()]];
    if let Some(owner) = &runbook.owner {
        header.push(vec!["owner:".to_string(), owner.clone()]);
    }
    header.push(vec!["RTO:".to_string(), runbook.rto.0.value.clone()]);
    if let Some(drill) = &runbook.drill {
        header.push(vec![
            "drill:".to_string(),
            format!("to pass at least every {} (runbook drills)", drill.every.0.value),
        ]);
    }
    let mut steps = runbook.steps.len().to_string();
    if !runbook.cleanup.is_empty() {
        steps.push_str(&format!(" (+{} cleanup)", runbook.cleanup.len()));
    }
    header.push(vec!["steps:".to_string(), steps]);
    out.push_str(&table(&header, ""));

    if let Some(description) = runbook.description.as_deref().map(str::trim)
        && !description.is_empty()
    {
        out.push_str(&format!("\n{description}\n"));
    }
    if !runbook.links.is_empty() {
        out.push_str("\nLinks:\n");
        out.push_str(&links(&runbook.links, "  "));
    }
    let inputs = runbook.inputs.iter().map(|(name, input)| {
        let input = &input.value;
        [
            name.clone(),
            input_default(input),
            input.description.as_deref().map(one_line).unwrap_or_default(),
        ]
    });
    section(&mut out, "Inputs", ["NAME", "DEFAULT", "DESCRIPTION"], inputs);
    let targets = runbook.targets.iter().map(|(role, target)| {
        let target = &target.value;
        [
            role.clone(),
            target
                .default
                .clone()
                .unwrap_or_else(|| "(bind with --target)".to_string()),
            target.description.as_deref().map(one_line).unwrap_or_default(),
        ]
    });
    section(&mut out, "Targets", ["ROLE", "DEFAULT", "DESCRIPTION"], targets);

    out.push_str("\nSteps:\n");
    let total = runbook.steps.len();
    for (index, step) in runbook.steps.iter().enumerate() {
        out.push('\n');
        out.push_str(&step_text(runbook, step, index, total));
        match flow(runbook, index) {
            Flow::Linear { success, failure } => {
                let (success, failure) = next_words(success, failure, str::to_string);
                out.push_str(&fact("on success", &success));
                out.push_str(&fact("on failure", &failure));
            }
            Flow::Choose(options) => {
                out.push_str("    options:\n");
                for option in options {
                    out.push_str(&format!("      - {}\n", option_text(option, Style::Text)));
                }
            }
            // The outcome is among the facts already.
            Flow::End => {}
        }
    }

    if !runbook.cleanup.is_empty() {
        out.push_str("\nCleanup (always runs after the run ends, whatever its outcome, in this order):\n");
        let total = runbook.cleanup.len();
        for (index, step) in runbook.cleanup.iter().enumerate() {
            out.push('\n');
            out.push_str(&step_text(runbook, step, index, total));
        }
    }
    out
}

/// A step's heading, facts and texts; where it goes next is added by the caller.
/// `TITLE:` and a table of `rows` under `header`; nothing without rows.
fn section(out: &mut String, title: &str, header: [&str; 3], rows: impl Iterator<Item = [String; 3]>) {
    let mut rows: Vec<Vec<String>> = rows.map(Vec::from).collect();
    if rows.is_empty() {
        return;
    }
    rows.insert(0, header.map(str::to_string).to_vec());
    out.push_str(&format!("\n{title}:\n"));
    out.push_str(&table(&rows, "  "));
}

fn step_text(runbook: &Runbook, step: &Step, index: usize, total: usize) -> String {
    let mut out = format!("[{}/{total}] {}\n", index + 1, step.title.trim());
    for (label, value) in facts(runbook, step, Style::Text) {
        out.push_str(&fact(label, &value));
    }
    if let Some(notes) = &step.notes {
        out.push_str(&block("notes", notes));
    }
    if !step.links.is_empty() {
        out.push_str("    links:\n");
        out.push_str(&links(&step.links, "      "));
    }
    if let Some(run) = &step.run {
        out.push_str(&block("command", &run.value));
    }
    if let Some(manual) = &step.manual {
        out.push_str(&block("instruction", &manual.value));
    }
    if let Some(message) = &step.message {
        out.push_str(&block("message", message));
    }
    out
}

fn fact(label: &str, value: &str) -> String {
    let label = format!("{label}:");
    format!("    {label:<LABEL$} {value}\n")
}

/// A labelled block of text (a command, notes, an instruction), indented under its label,
/// kept exactly as written apart from trailing blank space.
fn block(label: &str, text: &str) -> String {
    let mut out = format!("    {label}:\n");
    for line in text.trim_end().lines() {
        if line.trim().is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!("        {}\n", line.trim_end()));
        }
    }
    out
}

fn links(links: &[Link], indent: &str) -> String {
    links
        .iter()
        .map(|l| format!("{indent}- {}: {}\n", l.title, l.url))
        .collect()
}
