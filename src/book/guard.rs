//! `guards:` (design §20): checks polled in the background while a run walks, each on its own
//! session; `failures` failures in a row trip it, and the run diverts to `goto`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::book::located::{DurationText, Located};

/// Polled every 15 s unless `every` says otherwise.
pub(crate) const DEFAULT_EVERY: Duration = Duration::from_secs(15);
/// Three failures in a row trip a guard unless `failures` says otherwise.
pub(crate) const DEFAULT_FAILURES: u32 = 3;

/// `{id: api-health, target: app, run: "curl -fsS http://localhost:8001/health", every: 15s,
/// failures: 3, goto: rollback}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// Its name in the trail and on the screen.
    #[schemars(with = "String")]
    pub id: Located<String>,
    /// The role its check runs on; default: the only role, else `local`.
    #[schemars(with = "Option<String>")]
    pub target: Option<Located<String>>,
    /// The check: a shell command that exits 0 while all is well. A check that outlives `every`
    /// (at least 5 s) is stopped and counts as failing, as does one that cannot run (a lost
    /// connection).
    #[schemars(with = "String")]
    pub run: Located<String>,
    /// How often it is polled; default 15s.
    pub every: Option<DurationText>,
    /// Failures in a row that trip it; default 3.
    #[schemars(with = "Option<u32>")]
    pub failures: Option<Located<u32>>,
    /// The step a trip diverts the run to (its rollback).
    #[schemars(with = "String")]
    pub goto: Located<String>,
}

impl Guard {
    pub(crate) fn every(&self) -> Duration {
        self.every
            .as_ref()
            .and_then(DurationText::get)
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_EVERY)
    }

    pub(crate) fn failures(&self) -> u32 {
        self.failures
            .as_ref()
            .map_or(DEFAULT_FAILURES, |f| f.value.max(1))
    }
}
