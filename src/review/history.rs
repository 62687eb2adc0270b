//! `runbook history`: every run in the audit dir, one line each, newest first, from the audit
//! files alone.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Review, fmt_rto, fmt_total, load};
use crate::error::Error;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Entry {
    pub run: String,
    pub path: String,
    /// When the run was launched.
    pub date: Option<DateTime<Utc>>,
    pub runbook: String,
    pub mode: String,
    pub operators: Vec<String>,
    pub total_ms: u64,
    pub rto_ms: u64,
    /// `null` when the run has no seal.
    pub outcome: Option<String>,
    /// As in the review: `PASS`, `FAIL`, `WITHIN RTO`, `OVER RTO`, `NOT RESOLVED`,
    /// `INCOMPLETE`, `TAMPERED`.
    pub verdict: String,
    pub verdict_reason: Option<String>,
    /// Steps that did not go as written: `check skipped`, `restore edited`.
    pub deviations: Vec<String>,
    /// Approvals and denials of the two-person rule, with who and why: `restart approved by
    /// bob`, `restart DENIED by carol: deploy freeze`.
    pub approvals: Vec<String>,
    /// Each hand-off, who, when (UTC) and where, with its note: `alice 2026-11-22 05:01 at
    /// restart: db team is on it` (design §19).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hand_offs: Vec<String>,
    /// With an audit host (design §19): where the run is, `local`, `audit host` or `both`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<&'static str>,
}

impl Entry {
    fn of(r: &Review) -> Entry {
        Entry {
            run: r.run.clone(),
            path: r.path.clone(),
            date: r.launched,
            runbook: r.runbook.clone(),
            mode: r.mode.clone(),
            operators: r.operators.clone(),
            total_ms: r.total_ms,
            rto_ms: r.rto_ms,
            outcome: r.outcome.clone(),
            verdict: r.verdict.clone(),
            verdict_reason: r.verdict_reason.clone(),
            deviations: r
                .deviations
                .iter()
                .map(|d| format!("{} {}", d.step, d.kind))
                .collect(),
            approvals: r
                .approvals
                .iter()
                .filter(|a| matches!(a.decision.as_str(), "approved" | "denied"))
                .map(|a| {
                    let by = a.by.as_deref().unwrap_or("?");
                    match a.reason.as_deref().filter(|_| a.decision == "denied") {
                        Some(why) => format!("{} DENIED by {by}: {why}", a.step),
                        None => format!("{} {} by {by}", a.step, a.decision),
                    }
                })
                .collect(),
            hand_offs: r
                .hand_offs
                .iter()
                .map(|h| {
                    let when =
                        h.at.map_or("?".into(), |t| t.format("%Y-%m-%d %H:%M").to_string());
                    let at = h.step.as_deref().map(|s| format!(" at {s}")).unwrap_or_default();
                    let note = h.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
                    format!("{} {when}{at}{note}", h.operator)
                })
                .collect(),
            stored: None,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Filter {
    pub runbook: Option<String>,
    pub mode: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// The audit files of `dir`, in name order (oldest first); none when it does not exist yet.
pub(crate) fn trail_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::runtime(format!(
                "cannot read the audit dir `{}`: {e} (set it with --audit-dir or RUNBOOK_AUDIT_DIR)",
                dir.display()
            )));
        }
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(crate::audit::is_run_file)
                && p.is_file()
        })
        // An empty trail is not a run: nothing was recorded (older versions left one when the
        // disk was full at the first line). Not worth a warning either.
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect();
    paths.sort();
    Ok(paths)
}

/// The runs of `dir` that pass `filter`, newest first, and a warning per file that could not
/// be read.
pub(crate) fn scan(dir: &Path, filter: &Filter) -> Result<(Vec<Entry>, Vec<String>), Error> {
    let paths: Vec<(PathBuf, String)> = trail_files(dir)?
        .into_iter()
        .map(|p| {
            let shown = p.display().to_string();
            (p, shown)
        })
        .collect();
    Ok(entries(&paths, filter))
}

/// The runs of these trails (each with the name it is shown by) that pass `filter`, newest
/// first, and a warning per file that could not be read.
pub(crate) fn entries(paths: &[(PathBuf, String)], filter: &Filter) -> (Vec<Entry>, Vec<String>) {
    let mut runs = Vec::new();
    let mut warnings = Vec::new();
    for (path, shown) in paths {
        match load(path) {
            Ok(review) => {
                let mut entry = Entry::of(&review);
                entry.path = shown.clone();
                let keep = filter.runbook.as_ref().is_none_or(|id| &entry.runbook == id)
                    && filter.mode.as_ref().is_none_or(|m| &entry.mode == m)
                    && filter
                        .since
                        .is_none_or(|since| entry.date.is_some_and(|d| d >= since));
                if keep {
                    runs.push(entry);
                }
            }
            Err(e) => warnings.push(format!("skipped `{shown}`: {e}")),
        }
    }
    runs.sort_by(|a, b| (b.date, &b.run).cmp(&(a.date, &a.run)));
    (runs, warnings)
}

/// One aligned line per run, under a header; a column of hand-offs when a run has one.
pub(crate) fn render(runs: &[Entry]) -> String {
    let handed_off = runs.iter().any(|e| !e.hand_offs.is_empty());
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|e| {
            let mut row = vec![
                e.date
                    .map_or("?".into(), |d| d.format("%Y-%m-%d %H:%M").to_string()),
                e.runbook.clone(),
                e.mode.clone(),
                e.operators.join(","),
                fmt_total(e.total_ms),
                fmt_rto(e.rto_ms),
                e.outcome.clone().unwrap_or_else(|| "-".into()),
                e.verdict.clone(),
                list(&e.deviations),
                list(&e.approvals),
                e.run.clone(),
            ];
            if handed_off {
                row.insert(10, list(&e.hand_offs));
            }
            row
        })
        .collect();
    let mut header = vec![
        "date (UTC)",
        "runbook",
        "mode",
        "operator",
        "duration",
        "RTO",
        "outcome",
        "verdict",
        "deviations",
        "approvals",
        "run",
    ];
    if handed_off {
        header.insert(10, "hand-offs");
    }
    super::text::table(&header, &rows)
}

/// `a; b` for a table cell, `-` when empty.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        crate::secrets::escape::value(&items.join("; ")).into_owned()
    }
}
