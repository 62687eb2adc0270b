//! Issue 25: a walk that did not run a step as written, and goes on to a `resolved` end,
//! asks before it ends the incident as resolved, unverified.

use super::{Executor, Place};
use crate::book::runbook::{Outcome, Runbook, Step, StepKind};
use crate::error::Error;
use crate::events::DeviationKind;

impl Executor {
    /// Issue 25: one keypress (skip, mark done, go to) must not end an incident as resolved
    /// with nothing verified. When this visit of `step` deviated and `target` is a `resolved`
    /// end, the operator is asked once; yes is recorded as a deviation (the summary and every
    /// review then say *unverified*), no presents `step` again.
    pub(super) fn unverified_end(
        &mut self,
        runbook: &Runbook,
        step: &Step,
        target: &str,
        place: &Place<'_>,
        deviations_before: usize,
    ) -> Result<String, Error> {
        let resolved_end = runbook
            .step(target)
            .is_some_and(|t| matches!(t.kind(), Some(StepKind::End(Outcome::Resolved))));
        let id = place.id(step);
        let unchecked = self.deviations[deviations_before..]
            .iter()
            .any(|d| d.step == id && !d.kind.allowed());
        // A sub-run's end returns to its caller, which may still check: only the main walk's
        // end ends the incident.
        let main_walk = place.prefix.is_empty();
        if !resolved_end || !unchecked || !main_walk || !self.operator.is_interactive() {
            return Ok(target.to_string());
        }
        if !self.operator.confirm(&format!(
            "`{id}` did not run as written and `{target}` ends the run as resolved: nothing verifies it. End the incident as resolved, unverified?"
        ))? {
            return Ok(step.id().to_string());
        }
        self.deviate(
            &id,
            DeviationKind::Unverified,
            Some(format!(
                "the run went on to `{target}` (resolved) with nothing verified after it"
            )),
        )?;
        Ok(target.to_string())
    }
}
