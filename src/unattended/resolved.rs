//! `runbook resolved --alert FILE` (design §20): a `resolved` payload marks its fingerprints
//! in `<audit-dir>/resolved/` (one empty file each, its time the mark's); a run admitted with
//! `stop_when_resolved` looks for a mark newer than its own start at every step boundary, and
//! stops there (`alert resolved`). Alertmanager keeps an alert's fingerprint across firings,
//! so a mark older than the run is an earlier episode's and does not count.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, Result, exit};

const DIR: &str = "resolved";

fn mark(dir: &Path, fingerprint: &str) -> PathBuf {
    dir.join(DIR).join(crate::audit::file_safe(fingerprint))
}

/// Marks the resolved alerts of the payload; says which unfinished runs will stop.
pub(crate) fn resolved(dir: &Path, alert: &crate::alert::Alert) -> Result<u8> {
    let resolved: Vec<String> = match alert.kind {
        crate::alert::Kind::Alertmanager => alert.payload["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| {
                a["status"] == "resolved" || (a["status"].is_null() && alert.payload["status"] == "resolved")
            })
            .filter_map(|a| a["fingerprint"].as_str().map(str::to_string))
            .collect(),
        crate::alert::Kind::PagerDuty => {
            let resolved = alert.payload["event"]["event_type"] == "incident.resolved";
            if resolved {
                super::admit::fingerprints(alert)
            } else {
                Vec::new()
            }
        }
    };
    if resolved.is_empty() {
        return Err(Error::usage(
            "--alert: no resolved alert with a fingerprint in the payload (Alertmanager: `status: resolved` and `fingerprint`; PagerDuty: `incident.resolved`): nothing was marked",
        ));
    }
    crate::audit::prepare_audit_dir(dir)?;
    let marks = dir.join(DIR);
    std::fs::create_dir_all(&marks)
        .map_err(|e| Error::runtime(format!("cannot create {}: {e}", marks.display())))?;
    for f in &resolved {
        let path = mark(dir, f);
        // Written anew: its modification time is when the alert resolved.
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, format!("{f}\n"))
            .map_err(|e| Error::runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    crate::output::print(&format!(
        "Marked resolved: {}. A run for it admitted with `stop_when_resolved: true` stops at its next step boundary.\n",
        resolved.join(", ")
    ))?;
    Ok(exit::OK)
}

/// The first of `fingerprints` marked resolved after `since`.
pub(crate) fn resolved_flag(dir: &Path, fingerprints: &[String], since: SystemTime) -> Option<String> {
    fingerprints.iter().find_map(|f| {
        let modified = std::fs::metadata(mark(dir, f)).and_then(|m| m.modified()).ok()?;
        (modified >= since).then(|| f.clone())
    })
}
