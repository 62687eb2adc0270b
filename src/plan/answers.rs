//! Answers ahead of time: which ids an `--answer` may name, whether each given one names a
//! step, and, unattended, the steps that would still need a human.

use std::collections::HashSet;

use super::{Plan, reachable_until};
use crate::book::runbook::{Confirm, Runbook, Step, StepKind};
use crate::diagnostic::did_you_mean;
use crate::error::Error;
use crate::prompt::Answers;

impl Plan {
    /// Every id an `--answer` may name: the main runbook's steps and cleanup steps, and the
    /// steps of called runbooks as `CALL-STEP/STEP` (nested calls nest), as the executor asks.
    pub(crate) fn answerable_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .main
            .runbook
            .cleanup
            .iter()
            .map(|s| s.id().to_string())
            .collect();
        self.collect_ids(&self.main.runbook, "", &mut ids, &mut HashSet::new());
        ids
    }

    fn collect_ids(
        &self,
        runbook: &Runbook,
        prefix: &str,
        ids: &mut Vec<String>,
        seen: &mut HashSet<String>,
    ) {
        for step in &runbook.steps {
            let id = format!("{prefix}{}", step.id());
            if let Some(StepKind::Call(target)) = step.kind()
                // A runbook that calls itself (directly or not) would nest for ever.
                && seen.insert(format!("{id}:{target}"))
                && let Some(called) = self.called.get(target)
            {
                self.collect_ids(&called.runbook, &format!("{id}/"), ids, seen);
            }
            ids.push(id);
        }
    }

    /// Pre-flight: an `--answer` that names no step would be ignored, and the step it meant
    /// would then stop an unattended run (or be asked): refuse it before anything runs.
    pub(crate) fn check_answers(&self, answers: &Answers) -> Result<(), Error> {
        let ids = self.answerable_ids();
        let mut unknown: Vec<&String> = answers.steps().filter(|s| !ids.contains(s)).collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort();
        let id = self.main.runbook.id();
        let lines: Vec<String> = unknown
            .iter()
            .map(|step| {
                let hint = did_you_mean(step, ids.iter().map(String::as_str))
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                let value = answers.get(step).unwrap_or_default();
                format!("--answer `{step}={value}`: `{id}` has no step `{step}`{hint}")
            })
            .collect();
        Err(Error::usage(format!(
            "{}: nothing was run.\n  Name a step id of `{id}`, or CALL-STEP/STEP for a step of a runbook it calls (`runbook show {id}` lists them)",
            lines.join("\n  ")
        )))
    }

    /// Unattended pre-flight: the reachable steps that would need a human and have no answer.
    pub(crate) fn needs_human(&self, answers: &Answers, start_at: Option<&str>) -> Vec<String> {
        let mut needs = Vec::new();
        self.collect_needs(
            &self.main.runbook,
            "",
            start_at,
            answers,
            &mut needs,
            &mut HashSet::new(),
        );
        needs
    }

    fn collect_needs(
        &self,
        runbook: &Runbook,
        prefix: &str,
        start_at: Option<&str>,
        answers: &Answers,
        needs: &mut Vec<String>,
        seen_calls: &mut HashSet<String>,
    ) {
        let start = start_at.and_then(|s| runbook.step_index(s)).unwrap_or(0);
        // A step answered `handoff` needs nobody, nor do the steps only reached after it.
        let handed_off = |step: &Step| hands_off(step, answers.get(&format!("{prefix}{}", step.id())));
        for index in reachable_until(runbook, start, &handed_off) {
            let step = &runbook.steps[index];
            let id = format!("{prefix}{}", step.id());
            let answer = answers.get(&id);
            if hands_off(step, answer) {
                continue;
            }
            if matches!(step.confirmation(), Some(Confirm::Phrase(_))) && answer.is_none() {
                needs.push(format!("{id}: typed confirmation (--answer {id}=PHRASE)"));
            }
            match step.kind() {
                Some(StepKind::Manual(_)) if !answer.is_some_and(crate::prompt::is_report_answer) => {
                    needs.push(format!("{id}: manual step (--answer {id}=done|skip|failed)"));
                }
                Some(StepKind::Choose(options)) => {
                    let fallback = options.iter().any(|o| o.when.is_none());
                    match answer {
                        Some(a) if !options.iter().any(|o| o.label == a || o.goto.value == a) => {
                            needs.push(format!("{id}: decision; `{a}` is none of its options"));
                        }
                        None if !fallback => needs.push(format!(
                            "{id}: decision without a fallback option (--answer {id}=LABEL)"
                        )),
                        _ => {}
                    }
                }
                Some(StepKind::Call(target)) if seen_calls.insert(format!("{id}:{target}")) => {
                    if let Some(called) = self.called.get(target) {
                        self.collect_needs(
                            &called.runbook,
                            &format!("{id}/"),
                            None,
                            answers,
                            needs,
                            seen_calls,
                        );
                    }
                }
                _ => {}
            }
        }
        if prefix.is_empty() {
            for step in &runbook.cleanup {
                if matches!(step.kind(), Some(StepKind::Manual(_)))
                    && !answers
                        .get(step.id())
                        .is_some_and(crate::prompt::is_report_answer)
                {
                    needs.push(format!(
                        "{}: manual cleanup step (--answer {}=done|skip|failed)",
                        step.id(),
                        step.id()
                    ));
                }
            }
        }
    }
}

/// Whether `answer`, given in advance for `step`, hands the run off there (`handoff`, `hand
/// off`): not at an end, and not at a decision with an option of that label or step id, which
/// it then picks.
pub(crate) fn hands_off(step: &Step, answer: Option<&str>) -> bool {
    let Some(answer) = answer.filter(|a| crate::prompt::is_hand_off(a)) else {
        return false;
    };
    match step.kind() {
        Some(StepKind::End(_)) => false,
        Some(StepKind::Choose(options)) => !options
            .iter()
            .any(|o| o.label == answer || o.goto.value == answer),
        _ => true,
    }
}
