//! What admission looks at: the ledger of admitted runs (the audit dir's, with the audit host's
//! when there is one) and where each of those runs is (unfinished, sealed, never started),
//! read from its trail there or here.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::remote;

/// How long a run admitted on another machine, whose trail has not reached the audit host,
/// still holds its alert's fingerprint: a run connects and its mirror starts within seconds;
/// one that never shows there (it could not connect, or its mirror was down) stops holding it.
/// The ledger of admitted runs, in the audit dir (and on the audit host).
pub(super) const LEDGER: &str = "unattended/runs.jsonl";

pub(super) const GRACE: Duration = Duration::from_secs(600);

pub(super) enum Status {
    Unfinished,
    Sealed(chrono::DateTime<chrono::Utc>),
    /// Admitted, but its process ended before its trail began (it could not connect).
    NeverStarted,
    /// Admitted on another machine at this time; no trail of it on the audit host yet.
    Unseen(chrono::DateTime<chrono::Utc>),
}

/// The admitted runs and how to find where each is.
pub(super) struct Book<'a> {
    dir: &'a Path,
    /// Oldest first, one per run id.
    pub ledger: Vec<Value>,
    remote: Option<&'a mut remote::Admission>,
    /// The audit host's pause, as read under its lock.
    pub remote_pause: Option<Result<String, String>>,
}

impl<'a> Book<'a> {
    /// The audit dir's ledger, and the audit host's when there is one (its entries first).
    pub(super) fn new(dir: &'a Path, remote: Option<(&'a mut remote::Admission, remote::Seen)>) -> Book<'a> {
        let local = read(&dir.join(LEDGER));
        let (remote, mut ledger, remote_pause) = match remote {
            Some((admission, seen)) => (Some(admission), seen.ledger, seen.pause),
            None => (None, Vec::new(), None),
        };
        for entry in local {
            if !ledger.iter().any(|e| e["run"] == entry["run"]) {
                ledger.push(entry);
            }
        }
        ledger.sort_by_key(ts);
        Book {
            dir,
            ledger,
            remote,
            remote_pause,
        }
    }

    /// Where the audit host is, to say whose pause refuses.
    pub(super) fn host(&self) -> Option<String> {
        self.remote.as_ref().map(|r| r.host.to_string())
    }

    /// Where each of `entries`' runs is: with an audit host, their trails there are asked
    /// about in one round.
    pub(super) fn statuses(&mut self, entries: &[&Value]) -> Result<HashMap<String, Status>, String> {
        let runs: Vec<&str> = entries.iter().filter_map(|e| e["run"].as_str()).collect();
        let there = match self.remote.as_mut() {
            Some(remote) => Some(remote.last_lines(&runs)?),
            None => None,
        };
        Ok(entries
            .iter()
            .filter_map(|e| {
                let run = e["run"].as_str()?;
                let on_host = there.as_ref().map(|t| t.get(run).cloned().flatten());
                Some((run.to_string(), status(self.dir, run, e, on_host.as_ref())))
            })
            .collect())
    }
}

/// Where an admitted run is: its trail's last event says sealed or not (the audit host's
/// copy first, `on_host`, when it was asked); without a trail, a process still alive on this
/// machine is about to write it.
fn status(dir: &Path, run: &str, entry: &Value, on_host: Option<&Option<String>>) -> Status {
    if let Some(Some(line)) = on_host {
        return of_line(line);
    }
    if let Ok(text) = std::fs::read_to_string(dir.join(format!("{run}.jsonl"))) {
        return of_line(
            text.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default(),
        );
    }
    let here = entry["machine"].as_str() == Some(crate::identity::machine().as_str());
    if here {
        let alive = entry["pid"]
            .as_u64()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
            .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok());
        return if alive {
            Status::Unfinished
        } else {
            Status::NeverStarted
        };
    }
    match (on_host, ts(entry)) {
        (Some(_), Some(at)) => Status::Unseen(at),
        _ => Status::NeverStarted,
    }
}

/// A trail's last line: sealed when it is the seal (a line cut short is not).
fn of_line(last: &str) -> Status {
    let last: Value = serde_json::from_str(last).unwrap_or_default();
    match ts(&last) {
        Some(at) if last["event"] == "run finished" => Status::Sealed(at),
        _ => Status::Unfinished,
    }
}

pub(super) fn ts(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    v["ts"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

pub(super) fn since(now: chrono::DateTime<chrono::Utc>, at: chrono::DateTime<chrono::Utc>) -> Duration {
    (now - at).to_std().unwrap_or_default()
}

/// The admitted runs, oldest first; an unreadable line is skipped.
fn read(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
