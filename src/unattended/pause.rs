//! `runbook pause [--for DURATION] [--reason TEXT]` and `runbook unpause` (design §20): the
//! team's off switch for unattended runs, a file in the audit dir (`pause.json`). While it is
//! there (and its `until`, if any, is ahead), every `--unattended` run is refused; interactive
//! runs are not.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Error, Result, exit};
use crate::transport::{AuditHost, SshOptions};

const FILE: &str = "pause.json";

/// Where the pause goes: the audit host, when there is one (a pause there holds every
/// machine), else the audit dir.
pub(crate) struct Place<'a> {
    pub dir: &'a Path,
    pub audit_host: Option<&'a AuditHost>,
    pub ssh: &'a SshOptions,
}

/// Writes the pause file; says until when.
pub(crate) fn pause(
    place: Place<'_>,
    duration: Option<Duration>,
    reason: Option<&str>,
    by: &str,
) -> Result<u8> {
    let dir = place.dir;
    let now = chrono::Utc::now();
    let until = duration
        .map(|d| chrono::Duration::from_std(d).map(|d| now + d))
        .transpose()
        .map_err(|_| Error::usage("--for: too long"))?;
    let record = json!({
        "ts": crate::listen::notify::timestamp(now),
        "by": by,
        "machine": crate::identity::machine(),
        "until": until.map(crate::listen::notify::timestamp),
        "reason": reason,
    });
    let when = match until {
        Some(u) => format!("until {} UTC", u.format("%Y-%m-%d %H:%M:%S")),
        None => "until `runbook unpause`".to_string(),
    };
    if let Some(host) = place.audit_host {
        super::remote::switch(host, place.ssh, "pause", &format!("{record}\n")).map_err(|e| {
            Error::runtime(format!(
                "{e}: nothing was paused (a pause in this audit dir alone would not hold the team)"
            ))
        })?;
        crate::output::print(&format!(
            "Unattended runs are paused {when} on every machine that uses the audit host ({host}/{FILE}): each is refused and recorded in its refusals.jsonl.\n"
        ))?;
        return Ok(exit::OK);
    }
    crate::audit::prepare_audit_dir(dir)?;
    let path = dir.join(FILE);
    // Whole or not at all: a reader never sees half a pause.
    let tmp = dir.join(format!(".{FILE}.{}", std::process::id()));
    std::fs::write(&tmp, format!("{record}\n"))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::runtime(format!("cannot write {}: {e}", path.display())))?;
    crate::output::print(&format!(
        "Unattended runs are paused {when} ({}): each is refused and recorded in {}.\n",
        path.display(),
        dir.join("refusals.jsonl").display()
    ))?;
    Ok(exit::OK)
}

/// Removes the pause file: the audit host's, when there is one, and the audit dir's.
pub(crate) fn unpause(place: Place<'_>) -> Result<u8> {
    let mut removed = false;
    if let Some(host) = place.audit_host {
        removed = super::remote::switch(host, place.ssh, "unpause", "")
            .map_err(|e| Error::runtime(format!("{e}: the team's pause, if any, still holds")))?
            == "removed";
    }
    let path = place.dir.join(FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => removed = true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::runtime(format!("cannot remove {}: {e}", path.display()))),
    }
    crate::output::print(if removed {
        "Unattended runs may start again.\n"
    } else {
        "Unattended runs were not paused.\n"
    })?;
    Ok(exit::OK)
}

/// Why runs are refused now, when this audit dir is paused.
pub(super) fn current(dir: &Path) -> Option<String> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => Err(format!("{} cannot be read: {e}", path.display())),
    };
    judge(text, &format!("in {}", dir.display()))
}

/// Why runs are refused by a pause file's `text` (`Err`: it is there and cannot be read),
/// found `place`: who paused, when, until when, why; `None` when its time is over.
pub(super) fn judge(text: Result<String, String>, place: &str) -> Option<String> {
    let text = match text {
        Ok(t) => t,
        // A pause that cannot be read is a pause: failing closed.
        Err(e) => return Some(format!("paused ({e}, {place})")),
    };
    let pause: Value = serde_json::from_str(text.trim()).unwrap_or_default();
    let until = pause["until"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    if until.is_some_and(|u| u <= chrono::Utc::now()) {
        return None;
    }
    let mut why = format!(
        "unattended runs are paused by {} since {}",
        pause["by"].as_str().unwrap_or("someone"),
        pause["ts"].as_str().unwrap_or("?")
    );
    match pause["until"].as_str() {
        Some(u) => why.push_str(&format!(" until {u}")),
        None => why.push_str(" until `runbook unpause`"),
    }
    why.push_str(&format!(" ({place})"));
    if let Some(reason) = pause["reason"].as_str() {
        why.push_str(&format!(": {reason}"));
    }
    Some(why)
}
