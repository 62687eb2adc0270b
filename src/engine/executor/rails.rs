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
}

pub(crate) struct ResolvedWatch {
    pub dir: PathBuf,
    pub fingerprints: Vec<String>,
    pub since: SystemTime,
}

impl Executor {
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
