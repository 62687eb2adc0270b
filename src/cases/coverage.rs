//! `--coverage`: the steps and `choose` options of the runbooks under test that no case
//! reaches, each at its `file:line:col`. A runbook of a searched catalog directory that no case
//! walks is one line, not one per step.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::book::runbook::{Runbook, StepKind};
use crate::diagnostic::Pos;
use crate::plan::Loaded;

use super::check::Prepared;
use super::judge::Verdict;

/// Something no case reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreached {
    pub file: String,
    pub pos: Pos,
    pub message: String,
}

impl Unreached {
    pub(crate) fn line(&self) -> String {
        format!(
            "{}:{}:{}: {}",
            self.file, self.pos.line, self.pos.col, self.message
        )
    }
}

/// The runbook a step id as entered (`call-step/step`) belongs to, and the step's own id.
fn owner<'a>(
    main: &'a Loaded,
    called: &'a HashMap<String, Arc<Loaded>>,
    id: &'a str,
) -> Option<(&'a Runbook, &'a str)> {
    let mut runbook = &main.runbook;
    let mut parts = id.split('/').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return Some((runbook, part));
        }
        let Some(StepKind::Call(target)) = runbook.step(part).and_then(|s| s.kind()) else {
            return None;
        };
        runbook = &called.get(target)?.runbook;
    }
    None
}

/// What `universe`'s runbooks have that no walk reached.
pub(crate) fn unreached(universe: &[Arc<Loaded>], walks: &[(&Prepared, &Verdict)]) -> Vec<Unreached> {
    let mut steps: BTreeSet<(String, String)> = BTreeSet::new();
    let mut options: BTreeSet<(String, String, usize)> = BTreeSet::new();
    let mut walked: BTreeSet<String> = BTreeSet::new();
    for (case, verdict) in walks {
        walked.insert(case.main.runbook.id().to_string());
        for id in &verdict.visited {
            if let Some((runbook, step)) = owner(&case.main, &case.called, id) {
                walked.insert(runbook.id().to_string());
                steps.insert((runbook.id().to_string(), step.to_string()));
            }
        }
        for (id, goto, label) in &verdict.decisions {
            let Some((runbook, step)) = owner(&case.main, &case.called, id) else {
                continue;
            };
            let Some(StepKind::Choose(choices)) = runbook.step(step).and_then(|s| s.kind()) else {
                continue;
            };
            let same_goto: Vec<usize> = (0..choices.len())
                .filter(|&i| choices[i].goto.value == *goto)
                .collect();
            let index = match same_goto.as_slice() {
                [one] => Some(*one),
                many => many
                    .iter()
                    .copied()
                    .find(|&i| choices[i].label == *label)
                    .or(many.first().copied()),
            };
            if let Some(i) = index {
                options.insert((runbook.id().to_string(), step.to_string(), i));
            }
        }
    }
    let mut out = Vec::new();
    for loaded in universe {
        let runbook = &loaded.runbook;
        let id = runbook.id();
        let file = loaded.path.display().to_string();
        if !walked.contains(id) {
            out.push(Unreached {
                file,
                pos: Pos::of(&runbook.id),
                message: format!(
                    "`{id}`: no case walks it ({} steps)",
                    runbook.steps.len() + runbook.cleanup.len()
                ),
            });
            continue;
        }
        for step in runbook.steps.iter().chain(&runbook.cleanup) {
            if !steps.contains(&(id.to_string(), step.id().to_string())) {
                out.push(Unreached {
                    file: file.clone(),
                    pos: Pos::of(&step.id),
                    message: format!("`{id}`: step `{}` is never entered", step.id()),
                });
            }
            if let Some(StepKind::Choose(choices)) = step.kind() {
                for (i, o) in choices.iter().enumerate() {
                    if !options.contains(&(id.to_string(), step.id().to_string(), i)) {
                        out.push(Unreached {
                            file: file.clone(),
                            pos: Pos::of(&o.goto),
                            message: format!(
                                "`{id}`: option \"{}\" of `{}` (to `{}`) is never taken",
                                o.label,
                                step.id(),
                                o.goto.value
                            ),
                        });
                    }
                }
            }
        }
    }
    out
}
