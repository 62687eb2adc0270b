//! `runbook show --format md`: the runbook as Markdown an engineer pastes into a wiki or a
//! postmortem, with tables for inputs and targets, `sh` blocks for commands and the Mermaid
//! flowchart at the end.

use super::{
    Flow, Style, code, facts, flow, input_default, longest_run, mermaid, next_words, one_line, option_text,
};
use crate::book::runbook::{Link, Runbook, Step};

/// The whole runbook as Markdown, ending with a newline.
pub(crate) fn markdown(runbook: &Runbook) -> String {
    let mut out = format!("# {}\n\n", one_line(&runbook.title));
    out.push_str(&format!("- **id:** {}\n", code(runbook.id())));
    if let Some(owner) = &runbook.owner {
        out.push_str(&format!("- **owner:** {}\n", one_line(owner)));
    }
    out.push_str(&format!("- **RTO:** {}\n", runbook.rto.0.value));
    if let Some(drill) = &runbook.drill {
        out.push_str(&format!(
            "- **drill:** to pass at least every {} (`runbook drills`)\n",
            drill.every.0.value
        ));
    }
    let mut steps = runbook.steps.len().to_string();
    if !runbook.cleanup.is_empty() {
        steps.push_str(&format!(" (+{} cleanup)", runbook.cleanup.len()));
    }
    out.push_str(&format!("- **steps:** {steps}\n"));

    if let Some(description) = runbook.description.as_deref().map(str::trim)
        && !description.is_empty()
    {
        // Already Markdown: kept as written.
        out.push_str(&format!("\n{description}\n"));
    }
    if !runbook.links.is_empty() {
        out.push_str("\n## Links\n\n");
        out.push_str(&links(&runbook.links));
    }
    if !runbook.inputs.is_empty() {
        out.push_str(&table_head(
            "Inputs",
            &["name", "default", "required", "secret", "description"],
        ));
        for (name, input) in &runbook.inputs {
            let input = &input.value;
            let default = match (&input.default, input.secret) {
                (None, _) => String::new(),
                (Some(_), true) => "`***`".to_string(),
                (Some(_), false) => code(&input_default(input)),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                cell(&code(name)),
                cell(&default),
                yes_no(input.default.is_none()),
                yes_no(input.secret),
                cell(input.description.as_deref().unwrap_or("")),
            ));
        }
    }
    if !runbook.targets.is_empty() {
        out.push_str(&table_head("Targets", &["role", "default", "description"]));
        for (role, target) in &runbook.targets {
            let target = &target.value;
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                cell(&code(role)),
                cell(&target.default.as_deref().map(code).unwrap_or_default()),
                cell(target.description.as_deref().unwrap_or("")),
            ));
        }
    }

    out.push_str("\n## Steps\n");
    let total = runbook.steps.len();
    for (index, step) in runbook.steps.iter().enumerate() {
        out.push_str(&step_markdown(runbook, step, index, total));
        match flow(runbook, index) {
            Flow::Linear { success, failure } => {
                let (success, failure) = next_words(success, failure, code);
                out.push_str(&format!(
                    "\n**Next:** on success {success}; on failure {failure}.\n"
                ));
            }
            Flow::Choose(options) => {
                out.push_str("\n**Options:**\n\n");
                for option in options {
                    out.push_str(&format!("- {}\n", option_text(option, Style::Markdown)));
                }
            }
            Flow::End => {}
        }
    }

    if !runbook.cleanup.is_empty() {
        out.push_str(
            "\n## Cleanup\n\nAlways runs after the run ends, whatever its outcome, in this order.\n",
        );
        let total = runbook.cleanup.len();
        for (index, step) in runbook.cleanup.iter().enumerate() {
            out.push_str(&step_markdown(runbook, step, index, total));
        }
    }

    out.push_str("\n## Flowchart\n\n```mermaid\n");
    out.push_str(&mermaid(runbook));
    out.push_str("```\n");
    out
}

/// `## TITLE` and the head of a table with these columns.
fn table_head(title: &str, columns: &[&str]) -> String {
    let rule = "---|".repeat(columns.len());
    format!("\n## {title}\n\n| {} |\n|{rule}\n", columns.join(" | "))
}

fn step_markdown(runbook: &Runbook, step: &Step, index: usize, total: usize) -> String {
    let mut out = format!("\n### [{}/{total}] {}\n\n", index + 1, one_line(&step.title));
    for (label, value) in facts(runbook, step, Style::Markdown) {
        out.push_str(&format!("- **{label}:** {value}\n"));
    }
    if let Some(notes) = &step.notes {
        out.push_str(&format!("\n{}\n", notes.trim()));
    }
    if !step.links.is_empty() {
        out.push('\n');
        out.push_str(&links(&step.links));
    }
    if let Some(run) = &step.run {
        out.push('\n');
        out.push_str(&fenced("sh", &run.value));
    }
    if let Some(manual) = &step.manual {
        out.push_str(&format!("\n**Instruction:** {}\n", manual.value.trim()));
    }
    if let Some(message) = &step.message {
        out.push_str(&format!("\n**Message:** {}\n", message.trim()));
    }
    out
}

/// A fenced code block whose fence is longer than any run of backticks inside.
fn fenced(lang: &str, text: &str) -> String {
    let fence = "`".repeat(longest_run(text, '`').max(2) + 1);
    format!("{fence}{lang}\n{}\n{fence}\n", text.trim_end())
}

fn links(links: &[Link]) -> String {
    links
        .iter()
        .map(|l| {
            format!(
                "- [{}]({})\n",
                l.title.replace(']', "\\]"),
                l.url.replace(' ', "%20")
            )
        })
        .collect()
}

/// A table cell: one line, with `|` escaped so it cannot split the cell.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}
