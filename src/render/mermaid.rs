//! `runbook show --format mermaid`: the runbook's graph as a Mermaid flowchart (GitHub, GitLab
//! and most wikis draw it), one node per step, shaped by kind, coloured by outcome.

use std::collections::{HashMap, HashSet};

use super::{Flow, flow, one_line};
use crate::book::runbook::{Outcome, Runbook, Step, StepKind};

/// Words Mermaid reads as syntax; a step id equal to one of them (ignoring case) gets a `_`.
/// `cleanup` is the subgraph's own id.
const RESERVED: [&str; 12] = [
    "end",
    "graph",
    "flowchart",
    "subgraph",
    "style",
    "class",
    "classdef",
    "click",
    "linkstyle",
    "direction",
    "default",
    "cleanup",
];

/// The flowchart, from `flowchart TD` to the last `class` line, ending with a newline.
pub(crate) fn mermaid(runbook: &Runbook) -> String {
    let ids = NodeIds::new(runbook);
    let mut out = String::from("flowchart TD\n");
    for step in &runbook.steps {
        out.push_str(&format!("    {}\n", node(&ids.main(step.id()), step)));
    }
    for (index, step) in runbook.steps.iter().enumerate() {
        let from = ids.main(step.id());
        match flow(runbook, index) {
            Flow::Linear { success, failure } => {
                if let Some(to) = success {
                    out.push_str(&format!("    {from} --> {}\n", ids.main(to)));
                }
                if let Some(to) = failure {
                    out.push_str(&format!("    {from} -. failure .-> {}\n", ids.main(to)));
                }
            }
            Flow::Choose(options) => {
                for option in options {
                    out.push_str(&format!(
                        "    {from} -- \"{}\" --> {}\n",
                        label(&option.label),
                        ids.main(&option.goto.value)
                    ));
                }
            }
            Flow::End => {}
        }
    }
    if !runbook.cleanup.is_empty() {
        out.push_str("    subgraph cleanup\n");
        for (index, step) in runbook.cleanup.iter().enumerate() {
            out.push_str(&format!("        {}\n", node(&ids.cleanup[index], step)));
        }
        for pair in ids.cleanup.windows(2) {
            out.push_str(&format!("        {} --> {}\n", pair[0], pair[1]));
        }
        out.push_str("    end\n");
    }

    // Colour end steps by outcome; only the classes in use are declared.
    let mut by_outcome: Vec<(Outcome, Vec<String>)> = Vec::new();
    for step in &runbook.steps {
        if let Some(StepKind::End(outcome)) = step.kind() {
            match by_outcome.iter_mut().find(|(o, _)| *o == outcome) {
                Some((_, nodes)) => nodes.push(ids.main(step.id())),
                None => by_outcome.push((outcome, vec![ids.main(step.id())])),
            }
        }
    }
    by_outcome.sort_by_key(|(o, _)| *o as u8);
    for (outcome, _) in &by_outcome {
        out.push_str(&format!(
            "    classDef {} {}\n",
            outcome.as_str(),
            style(*outcome)
        ));
    }
    for (outcome, nodes) in &by_outcome {
        out.push_str(&format!("    class {} {}\n", nodes.join(","), outcome.as_str()));
    }
    out
}

fn style(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Resolved => "fill:#d3f9d8,stroke:#2b8a3e,color:#000",
        Outcome::Escalated => "fill:#ffe8cc,stroke:#e8590c,color:#000",
        Outcome::Failed => "fill:#ffe3e3,stroke:#c92a2a,color:#000",
    }
}

/// A node declaration: its id and its quoted label in the shape of its kind.
fn node(id: &str, step: &Step) -> String {
    let title = label(&step.title);
    match step.kind() {
        Some(StepKind::Run(_)) | None => format!("{id}[\"{title}\"]"),
        Some(StepKind::Manual(_)) => format!("{id}[/\"{title}\"/]"),
        Some(StepKind::Choose(_)) => format!("{id}{{\"{title}\"}}"),
        Some(StepKind::Call(callee)) => format!("{id}[[\"{title}<br/>call {}\"]]", label(callee)),
        Some(StepKind::End(outcome)) => format!("{id}([\"{title}<br/>{}\"])", outcome.as_str()),
    }
}

/// Label text inside `"..."`: one line, with `"` as Mermaid's entity so it cannot end the label.
fn label(text: &str) -> String {
    one_line(text).replace('"', "#quot;")
}

/// Mermaid node ids for the steps: `[A-Za-z0-9_]` only, never a Mermaid keyword, and distinct
/// even when two step ids differ only by `-` and `_`, or a cleanup step shares an id.
struct NodeIds {
    main: HashMap<String, String>,
    cleanup: Vec<String>,
}

impl NodeIds {
    fn new(runbook: &Runbook) -> Self {
        let mut taken = HashSet::new();
        let mut main = HashMap::new();
        for step in &runbook.steps {
            if !main.contains_key(step.id()) {
                let id = unique(step.id(), &mut taken);
                main.insert(step.id().to_string(), id);
            }
        }
        let cleanup = runbook
            .cleanup
            .iter()
            .map(|s| unique(s.id(), &mut taken))
            .collect();
        NodeIds { main, cleanup }
    }

    /// The node of a main step; an id no step has (invalid, validate reports it) still gets a
    /// sanitized node so the chart shows the dangling edge.
    fn main(&self, step_id: &str) -> String {
        self.main
            .get(step_id)
            .cloned()
            .unwrap_or_else(|| sanitize(step_id))
    }
}

fn sanitize(step_id: &str) -> String {
    let mut id: String = step_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if id.is_empty() || RESERVED.contains(&id.to_ascii_lowercase().as_str()) {
        id.push('_');
    }
    id
}

fn unique(step_id: &str, taken: &mut HashSet<String>) -> String {
    let base = sanitize(step_id);
    let mut id = base.clone();
    let mut n = 2;
    while !taken.insert(id.clone()) {
        id = format!("{base}_{n}");
        n += 1;
    }
    id
}
