//! What may stop or divert a walk from outside it (design §20), checked at every step
//! boundary: the alert of an unattended run resolved (`runbook resolved`), and guards that
//! tripped (`guarding.rs`).

use std::path::PathBuf;
use std::time::SystemTime;

use super::{End, Executor};
use crate::book::runbook::Outcome;
use crate::error::Error;
use crate::events::{Event, RunOutcome};

/// The rails of one run; none for an interactive run without guards.
#[derive(Default)]
pub(crate) struct Rails {
    /// `stop_when_resolved`: the audit dir's marks, the run's fingerprints, and its start
    /// (an older mark is an earlier episode's).
    pub resolved: Option<ResolvedWatch>,
    /// The runbook's guards, polled on their own thread.
    pub guards: Option<super::guarding::Guards>,
    /// A guard tripped and the walk has not diverted yet.
    pub trip: Option<super::guarding::Trip>,
    /// A trip diverted the walk once: later trips are recorded, never diverted again (a
    /// rollback is not interrupted by the guard that sent the run there).
    pub diverted: bool,
    /// A rehearsal (`runbook test`) of an operator at a terminal: a trip is offered at the next
    /// boundary as interactively, and answered from here (by guard: divert, else go on;
    /// unlisted: divert, the preselected choice). `None`: as the operator is.
    pub asked: Option<std::collections::HashMap<String, bool>>,
}

pub(crate) struct ResolvedWatch {
    pub dir: PathBuf,
    pub fingerprints: Vec<String>,
    pub since: SystemTime,
}

/// What the walk does at a step boundary.
pub(super) enum Boundary {
    Go,
    End(End),
    /// Go to the step at this index of the main runbook instead.
    Divert(usize),
}

impl Executor {
    /// Before presenting `next` (the main walk only): the alert resolved → the walk ends; a
    /// guard tripped → it diverts (or, interactively, offers to).
    pub(super) fn boundary(
        &mut self,
        runbook: &crate::book::runbook::Runbook,
        prefix: &str,
        next: &str,
    ) -> Result<Boundary, Error> {
        if !prefix.is_empty() {
            return Ok(Boundary::Go);
        }
        if let Some(end) = self.alert_resolved(next)? {
            return Ok(Boundary::End(end));
        }
        match self.guard_boundary(next)? {
            Some(goto) => Ok(Boundary::Divert(self.divert_to(runbook, &goto)?)),
            None => Ok(Boundary::Go),
        }
    }

    /// After step `id` (not an end): unattended, a guard that tripped during it diverts the
    /// main walk at once; a sub-run ends failed, for its caller to divert.
    pub(super) fn after_step(
        &mut self,
        runbook: &crate::book::runbook::Runbook,
        prefix: &str,
        id: &str,
    ) -> Result<Boundary, Error> {
        if !self.trip_pending()? {
            return Ok(Boundary::Go);
        }
        if !prefix.is_empty() {
            return Ok(Boundary::End(End::failed(format!(
                "a guard tripped during `{id}`"
            ))));
        }
        match self.divert_unattended() {
            Some(goto) => Ok(Boundary::Divert(self.divert_to(runbook, &goto)?)),
            None => Ok(Boundary::Go),
        }
    }

    /// At a step boundary of the main walk, before `next`: the run's alert resolved → the walk
    /// ends resolved here (its cleanup still runs).
    pub(super) fn alert_resolved(&mut self, next: &str) -> Result<Option<End>, Error> {
        let Some(watch) = &self.rails.resolved else {
            return Ok(None);
        };
        let Some(fingerprint) =
            crate::unattended::resolved_flag(&watch.dir, &watch.fingerprints, watch.since)
        else {
            return Ok(None);
        };
        self.rails.resolved = None;
        self.emit(Event::AlertResolved {
            fingerprint: fingerprint.clone(),
            before: Some(next.to_string()),
        })?;
        Ok(Some(End {
            outcome: RunOutcome::Ended(Outcome::Resolved),
            message: Some(format!(
                "the alert resolved ({fingerprint}): stopped before `{next}`"
            )),
        }))
    }
}
