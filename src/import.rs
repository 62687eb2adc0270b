//! `runbook import FILE.md`: a Markdown runbook of the usual shape (one `##` heading per
//! scenario, numbered steps, commands in code spans or blocks, "Recovery time target",
//! "Escalation: ... in 15 minutes", "see Scenario N") turned into one runbook per scenario
//! (design §21). The Markdown is read by a CommonMark parser (`markdown.rs`); `steps.rs` says
//! what each block becomes, `facts.rs` what a sentence says, `yaml.rs` writes the files with
//! a `# review:` comment on every guess. What is recognised is `docs/import.md`.

mod facts;
mod markdown;
mod steps;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use markdown::Lines;

/// The Markdown file: its name as shown in notes, and its text.
pub(crate) struct Src<'a> {
    pub(crate) name: &'a str,
    text: &'a str,
    lines: Lines,
}

impl<'a> Src<'a> {
    pub(crate) fn new(name: &'a str, text: &'a str) -> Src<'a> {
        Src {
            name,
            text,
            lines: Lines::new(text),
        }
    }

    /// Line `n` (1-based), without its line break.
    pub(crate) fn line_text(&self, n: usize) -> &'a str {
        self.text
            .get(self.lines.range(n, self.text))
            .unwrap_or("")
            .trim_end_matches('\r')
    }

    /// The source of a block, as written.
    pub(crate) fn slice(&self, range: Range<usize>) -> String {
        self.text.get(range).unwrap_or("").trim_end().to_string()
    }
}

/// A step as it will be written.
#[derive(Debug, Default, Clone)]
pub(crate) struct Draft {
    pub(crate) id: String,
    pub(crate) title: String,
    /// The source line it comes from.
    pub(crate) line: usize,
    pub(crate) notes: String,
    pub(crate) kind: Kind,
    pub(crate) target: Option<String>,
    pub(crate) rto: Option<String>,
    /// What makes it destructive: it gets `confirm: true`.
    pub(crate) confirm: Option<String>,
    pub(crate) reviews: Vec<String>,
    /// The step's sentence, for a `manual:` when its cross-reference cannot be a call.
    pub(crate) text: String,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Run(String),
    Manual(String),
    /// "If CONDITION: ACTION": "No, go on" (the fallback) skips the action step, `action`.
    Choose {
        action: String,
        label: String,
    },
    Call(Ref),
    End,
}

impl Default for Kind {
    fn default() -> Self {
        Kind::Manual(String::new())
    }
}

/// A cross-reference to another scenario, until it is resolved to its runbook id.
#[derive(Debug, Clone)]
pub(crate) enum Ref {
    Number(u32),
    Anchor(String),
    Id(String),
}

/// A role of `targets:`, from an "SSH to server: `ssh user@host`" step.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) default: Option<String>,
    pub(crate) review: String,
    /// The index of the first step that runs there.
    pub(crate) at_step: usize,
}

/// Step ids of one runbook, unique.
#[derive(Default)]
pub(crate) struct Ids(BTreeSet<String>);

impl Ids {
    pub(crate) fn unique(&mut self, text: &str) -> String {
        // "Rollback (see Scenario 5)": the words outside parentheses name it.
        let base = match slug(&outside_parentheses(text), 40) {
            s if s.is_empty() => "step".to_string(),
            s => s,
        };
        let mut id = base.clone();
        let mut n = 2;
        while !self.0.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        id
    }
}

/// The text without what stands in parentheses.
pub(crate) fn outside_parentheses(text: &str) -> String {
    let mut kept = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 => kept.push(c),
            _ => {}
        }
    }
    kept
}

/// `[a-z0-9][a-z0-9-]*` from words, at most `max` bytes, cut at a dash.
pub(crate) fn slug(text: &str, max: usize) -> String {
    let mut out = crate::book::validate::slugify(text);
    if out.len() > max {
        let cut = out[..max].rfind('-').unwrap_or(max);
        out.truncate(cut);
    }
    out
}

/// A GitHub-style heading anchor, for `[see here](#scenario-4-database-restore)` links.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// One scenario, ready to be written.
pub(crate) struct Scenario {
    pub(crate) number: Option<u32>,
    pub(crate) anchor: String,
    pub(crate) heading: String,
    pub(crate) line: usize,
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) owner: Option<(String, usize)>,
    /// The RTO and the review saying where it comes from (or that it is a default).
    pub(crate) rto: (String, String),
    /// `escalate: {after, to}` and where it comes from.
    pub(crate) escalate: Option<(String, String, String)>,
    pub(crate) reviews: Vec<String>,
    pub(crate) targets: Vec<Role>,
    pub(crate) steps: Vec<Draft>,
    pub(crate) end_id: String,
}

/// A file to write.
pub(crate) struct Imported {
    pub(crate) id: String,
    pub(crate) heading: String,
    pub(crate) yaml: String,
    pub(crate) steps: usize,
    pub(crate) reviews: usize,
}

/// A `##` section that is no scenario, and why.
pub(crate) struct Skipped {
    pub(crate) line: usize,
    pub(crate) heading: String,
    pub(crate) why: String,
}

/// The RTO when the text gives none: a guess, marked so.
const DEFAULT_RTO: &str = "30m";

/// Every scenario of the Markdown `text` (named `name` in notes), and the sections skipped.
pub(crate) fn import(name: &str, text: &str) -> (Vec<Imported>, Vec<Skipped>) {
    let src = Src::new(name, text);
    let doc = markdown::read(text);
    let owner = doc.prelude.iter().find_map(|b| match b {
        markdown::Block::Para { lines, .. } => lines.iter().find_map(|l| {
            let (label, rest) = steps::label_of(&l.inline)?;
            (label.trim().eq_ignore_ascii_case("owner") && !rest.is_empty())
                .then(|| (rest.markdown(), l.line))
        }),
        _ => None,
    });
    let mut scenarios = Vec::new();
    let mut skipped = Vec::new();
    let mut runbook_ids = Ids::default();
    for section in &doc.sections {
        let heading = section.heading.markdown();
        let (drafts, targets, prose, ids) = steps::collect(section, &src);
        if drafts.is_empty() {
            skipped.push(Skipped {
                line: section.line,
                heading,
                why: "no steps under it (a numbered list, a checklist, `###` step headings or a shell code block)"
                    .into(),
            });
            continue;
        }
        let (number, title) = facts::numbered(&heading);
        let id_words = title.split(" (").next().unwrap_or(&title).to_string();
        scenarios.push(scenario(
            &src,
            section.line,
            (number, title, heading.clone()),
            runbook_ids.unique(&id_words),
            (drafts, targets, prose, ids),
            owner.clone(),
        ));
    }
    resolve_calls(&mut scenarios);
    share_targets(&mut scenarios);
    let imported = scenarios
        .iter()
        .map(|s| Imported {
            id: s.id.clone(),
            heading: s.heading.clone(),
            yaml: yaml::runbook(s, &src),
            steps: s.steps.len() + 1,
            reviews: yaml::reviews(s),
        })
        .collect();
    (imported, skipped)
}

fn scenario(
    src: &Src,
    line: usize,
    (number, title, heading): (Option<u32>, String, String),
    id: String,
    (mut steps, targets, prose, mut ids): (Vec<Draft>, Vec<Role>, steps::Prose, Ids),
    owner: Option<(String, usize)>,
) -> Scenario {
    let quote = |label: &str, value: &str, line: usize| {
        format!("from \"{label}: {}\" ({}:{line})", value.trim(), src.name)
    };
    let mut reviews = Vec::new();
    let rto = prose
        .facts
        .iter()
        .filter_map(|(label, value, line)| {
            let rank = facts::rto_rank(label)?;
            let duration = facts::duration(value)?;
            Some((rank, duration, quote(label, value, *line)))
        })
        .max_by_key(|(rank, ..)| *rank);
    let escalate = prose.facts.iter().find_map(|(label, value, line)| {
        if !label.to_ascii_lowercase().contains("escalat") {
            return None;
        }
        match facts::escalation(value) {
            (Some(after), to) => Some((
                after,
                to.unwrap_or_else(|| value.trim().to_string()),
                quote(label, value, *line),
            )),
            (None, _) => {
                reviews.push(format!(
                    "{}: no time in it, so no `escalate:`; add `escalate: {{after: 15m, to: WHOM}}`",
                    quote(label, value, *line)
                ));
                None
            }
        }
    });
    let rto = match rto {
        Some((_, duration, review)) => (duration, review),
        None => {
            let said = prose
                .facts
                .iter()
                .find(|(label, ..)| facts::rto_rank(label).is_some())
                .map(|(label, value, line)| format!(" ({} has no duration)", quote(label, value, *line)))
                .unwrap_or_default();
            (
                DEFAULT_RTO.to_string(),
                format!("no recovery time target in the text{said}: {DEFAULT_RTO} is a placeholder"),
            )
        }
    };
    // The steps before the first SSH step run where `runbook` runs.
    if let Some(first) = targets.first() {
        for step in steps.iter_mut().take(first.at_step) {
            step.target = Some("local".into());
        }
    }
    if targets.len() > 1 {
        for (i, role) in targets.iter().enumerate() {
            let end = targets.get(i + 1).map_or(steps.len(), |r| r.at_step);
            for step in steps.iter_mut().take(end).skip(role.at_step) {
                step.target = Some(role.name.clone());
            }
        }
    }
    let end_id = ids.unique("done");
    steps.push(Draft {
        id: end_id.clone(),
        title: "Resolved".into(),
        kind: Kind::End,
        ..Draft::default()
    });
    Scenario {
        number,
        anchor: anchor(&heading),
        heading,
        line,
        id,
        title,
        description: prose.description.join("\n\n"),
        owner,
        rto,
        escalate,
        reviews,
        targets,
        steps,
        end_id,
    }
}

/// "see Scenario N" and `(#anchor)` links → `call:` of that scenario's runbook, unless it was
/// not imported or the call would come back to the caller: then a `manual:` step says so.
fn resolve_calls(scenarios: &mut [Scenario]) {
    let by_number: BTreeMap<u32, String> = scenarios
        .iter()
        .filter_map(|s| Some((s.number?, s.id.clone())))
        .collect();
    let by_anchor: BTreeMap<String, String> = scenarios
        .iter()
        .map(|s| (s.anchor.clone(), s.id.clone()))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for scenario in scenarios.iter_mut() {
        for step in &mut scenario.steps {
            let Kind::Call(reference) = &step.kind else {
                continue;
            };
            let (target, said) = match reference {
                Ref::Number(n) => (by_number.get(n), format!("Scenario {n}")),
                Ref::Anchor(a) => (by_anchor.get(a), format!("#{a}")),
                Ref::Id(id) => (Some(id), id.clone()),
            };
            let reaches_back = |to: &str| reaches(&edges, to, &scenario.id) || to == scenario.id;
            match target {
                Some(to) if !reaches_back(to) => {
                    edges.entry(scenario.id.clone()).or_default().insert(to.clone());
                    step.kind = Kind::Call(Ref::Id(to.clone()));
                }
                found => {
                    let why = match found {
                        Some(_) => format!("{said} leads back to this runbook"),
                        None => format!("{said} was not imported"),
                    };
                    step.reviews.retain(|r| !r.starts_with("a cross-reference"));
                    step.reviews.push(format!("{why}: a manual step, not a `call:`"));
                    step.kind = Kind::Manual(step.text.clone());
                }
            }
        }
    }
}

fn reaches(edges: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(at) = stack.pop() {
        if at == to {
            return true;
        }
        if seen.insert(at.clone()) {
            stack.extend(edges.get(&at).into_iter().flatten().cloned());
        }
    }
    false
}

/// A scenario that names no host gets the document's first one, marked as a guess: its
/// commands are the same service's, and running them where `runbook` runs would be wrong.
fn share_targets(scenarios: &mut [Scenario]) {
    let shared = scenarios
        .iter()
        .find_map(|s| Some((s.targets.first()?.clone(), s.id.clone())));
    for scenario in scenarios.iter_mut() {
        let runs = scenario.steps.iter().any(|s| matches!(s.kind, Kind::Run(_)));
        if !scenario.targets.is_empty() || !runs {
            continue;
        }
        match &shared {
            Some((role, from)) => scenario.targets.push(Role {
                review: format!(
                    "this scenario names no host: the one `{from}` SSHes to ({}), for its commands",
                    role.default.as_deref().unwrap_or("bound at run time")
                ),
                at_step: 0,
                ..role.clone()
            }),
            None => scenario.reviews.push(
                "no host in the text: the commands run where `runbook` runs; add `targets:` to run them over SSH"
                    .into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
