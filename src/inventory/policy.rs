//! The inventory's `unattended:` policy (design §20): what the team lets an alert start with
//! nobody watching, as written and checked (`validate --inventory`), and its rules with their
//! durations parsed, for admission (`unattended::admit`) to enforce.

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diagnostic::{Diagnostic, Pos};

/// The inventory's `unattended:` block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The runbook ids an unattended run may start; any other is refused.
    #[serde(default)]
    pub runbooks: Vec<Spanned<String>>,
    /// At most `count` unattended runs of one runbook within `per`.
    pub max_runs: Option<Spanned<MaxRuns>>,
    /// A run bound to more hosts than this is refused.
    pub max_hosts: Option<Spanned<u64>>,
    /// A run for an alert fingerprint with an unfinished run, or one sealed within this time,
    /// is refused.
    pub dedup: Option<Spanned<String>>,
    /// `runbook resolved --alert FILE` stops the matching run at its next step boundary.
    #[serde(default)]
    pub stop_when_resolved: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxRuns {
    pub count: Spanned<u64>,
    pub per: Spanned<String>,
}

/// The policy with its durations parsed: what admission enforces.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub runbooks: Vec<String>,
    pub max_runs: Option<(u64, Duration)>,
    pub max_hosts: Option<u64>,
    pub dedup: Option<Duration>,
}

impl Policy {
    /// Every problem of the policy, located in `file`.
    pub(crate) fn check(&self, file: &str) -> Vec<Diagnostic> {
        let mut found = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for id in &self.runbooks {
            if id.value.trim().is_empty() {
                found.push(Diagnostic::error(
                    file,
                    Pos::of(id),
                    "unattended.runbooks: an empty runbook id",
                ));
            } else if seen.contains(&id.value.as_str()) {
                found.push(
                    Diagnostic::warning(
                        file,
                        Pos::of(id),
                        format!("unattended.runbooks: `{}` is listed twice", id.value),
                    )
                    .with_width(id.value.chars().count()),
                );
            }
            seen.push(&id.value);
        }
        if self.runbooks.is_empty() {
            found.push(
                Diagnostic::warning(
                    file,
                    Pos::new(1, 1),
                    "unattended: no `runbooks:`: every unattended run is refused",
                )
                .with_help("list the runbook ids an alert may start: `runbooks: [service-down]`"),
            );
        }
        if let Some(max) = &self.max_runs {
            if max.value.count.value == 0 {
                found.push(
                    Diagnostic::error(
                        file,
                        Pos::of(&max.value.count),
                        "unattended.max_runs.count: 0 refuses every run",
                    )
                    .with_help("write at least 1, or remove the runbook from `runbooks:`"),
                );
            }
            if let Err(e) = duration(&max.value.per) {
                found.push(Diagnostic::error(
                    file,
                    Pos::of(&max.value.per),
                    format!("unattended.max_runs.per: {e}"),
                ));
            }
        }
        if let Some(hosts) = self.max_hosts.as_ref().filter(|h| h.value == 0) {
            found.push(
                Diagnostic::error(file, Pos::of(hosts), "unattended.max_hosts: 0 refuses every run")
                    .with_help("write the largest number of hosts one unattended run may touch"),
            );
        }
        if let Some(dedup) = &self.dedup
            && let Err(e) = duration(dedup)
        {
            found.push(Diagnostic::error(
                file,
                Pos::of(dedup),
                format!("unattended.dedup: {e}"),
            ));
        }
        found
    }

    /// The rules, or the first problem as `file:line:col: message`.
    pub(crate) fn rules(&self, file: &str) -> Result<Rules, String> {
        if let Some(d) = self
            .check(file)
            .into_iter()
            .find(|d| d.severity == crate::diagnostic::Severity::Error)
        {
            return Err(format!("{}:{}:{}: {}", d.file, d.line, d.col, d.message));
        }
        Ok(Rules {
            runbooks: self.runbooks.iter().map(|r| r.value.trim().to_string()).collect(),
            max_runs: self
                .max_runs
                .as_ref()
                .map(|m| (m.value.count.value, duration(&m.value.per).unwrap_or_default())),
            max_hosts: self.max_hosts.as_ref().map(|h| h.value),
            dedup: self.dedup.as_ref().map(|d| duration(d).unwrap_or_default()),
        })
    }
}

fn duration(text: &Spanned<String>) -> Result<Duration, String> {
    match crate::duration::parse(&text.value) {
        Ok(d) if d.is_zero() => Err("a zero duration".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}
