//! Admission of an `--unattended` run (design §20): the policy's rules, the pause, dedup by
//! alert fingerprint and `max_runs`, decided under one lock of the audit dir, so that an alert
//! that Alertmanager re-sends while the first run starts still starts one run.
//!
//! The runs admitted are listed in `<audit-dir>/unattended/runs.jsonl` (run id, runbook, alert
//! fingerprints, when, pid): it is what `max_runs` counts and what dedup looks a fingerprint up
//! in; whether such a run is unfinished or when it was sealed is read from its trail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::Error;
use crate::inventory::Inventory;

/// What admission is asked about: the run as pre-flight resolved it.
pub(crate) struct Ask<'a> {
    pub dir: &'a Path,
    pub inventory: &'a Inventory,
    pub runbook: &'a str,
    pub title: &'a str,
    /// Every host the run is bound to (a fleet's members each count).
    pub hosts: usize,
    pub alert: Option<&'a crate::alert::Alert>,
    pub run_id: &'a str,
    pub operator: &'a str,
    /// Where `runbook.run.refused` goes; `None` when the channels could not be resolved.
    pub notify: Option<crate::listen::notify::Setup>,
}

/// An admitted run: `stop_when_resolved` says whether `runbook resolved` may stop it.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    pub stop_when_resolved: bool,
    pub fingerprints: Vec<String>,
}

/// The ledger of admitted runs.
const LEDGER: &str = "unattended/runs.jsonl";
const REFUSALS: &str = "refusals.jsonl";
const LOCK: &str = "unattended/lock";

/// Admits the run, or refuses it: exit 2 with its reason, a line in `refusals.jsonl`, a
/// `runbook.run.refused` notification (waited for at most `--notify-timeout`).
pub(crate) fn admit(ask: Ask<'_>) -> Result<Admission, Error> {
    crate::audit::prepare_audit_dir(ask.dir)?;
    let own = ask.dir.join("unattended");
    std::fs::create_dir_all(&own)
        .map_err(|e| Error::runtime(format!("cannot create {}: {e}", own.display())))?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ask.dir.join(LOCK))
        .map_err(|e| Error::runtime(format!("cannot open {}: {e}", ask.dir.join(LOCK).display())))?;
    // Held until this returns: the checks and the ledger's new line are one step for every
    // process deciding at the same time.
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::runtime(format!("cannot lock {}: {e}", ask.dir.join(LOCK).display())))?;
    let fingerprints = ask.alert.map(fingerprints).unwrap_or_default();
    match decide(&ask, &fingerprints) {
        Ok(stop_when_resolved) => {
            let line = json!({
                "ts": crate::listen::notify::timestamp(chrono::Utc::now()),
                "run": ask.run_id,
                "runbook": ask.runbook,
                "fingerprints": fingerprints,
                "hosts": ask.hosts,
                "operator": ask.operator,
                "machine": crate::identity::machine(),
                "pid": std::process::id(),
            });
            append(&ask.dir.join(LEDGER), &line)?;
            Ok(Admission {
                stop_when_resolved,
                fingerprints,
            })
        }
        Err(reason) => Err(refuse(ask, &fingerprints, &reason)),
    }
}

/// Every alert's fingerprint (Alertmanager), or the incident id (PagerDuty).
pub(crate) fn fingerprints(alert: &crate::alert::Alert) -> Vec<String> {
    let identity = alert.identity();
    let mut found: Vec<String> = identity["fingerprints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    if let Some(incident) = identity["incident"].as_str() {
        found.push(incident.to_string());
    }
    found
}

/// `Ok(stop_when_resolved)`, or why the run is refused.
fn decide(ask: &Ask<'_>, fingerprints: &[String]) -> Result<bool, String> {
    let file = ask
        .inventory
        .path
        .as_ref()
        .map_or_else(|| "the inventory".to_string(), |p| p.display().to_string());
    let Some(policy) = &ask.inventory.unattended else {
        return Err(format!(
            "{file} has no `unattended:` policy: no runbook may run unattended (add `unattended: {{runbooks: [{}]}}` to let it)",
            ask.runbook
        ));
    };
    let rules = policy
        .rules(&file)
        .map_err(|e| format!("the policy does not hold: {e}"))?;
    if let Some(alert) = ask.alert
        && alert.payload["status"] == "resolved"
    {
        return Err("the alert is resolved already (a resolved payload goes to `runbook resolved`)".into());
    }
    if let Some(paused) = super::pause::current(ask.dir) {
        return Err(paused);
    }
    if !rules.runbooks.iter().any(|r| r == ask.runbook) {
        return Err(format!(
            "`{}` is not in the policy's `runbooks:` ({file}: {})",
            ask.runbook,
            if rules.runbooks.is_empty() {
                "none".to_string()
            } else {
                rules.runbooks.join(", ")
            }
        ));
    }
    if let Some(max) = rules.max_hosts
        && ask.hosts as u64 > max
    {
        return Err(format!(
            "the run is bound to {} hosts, over the policy's `max_hosts: {max}`",
            ask.hosts
        ));
    }
    let ledger = read_ledger(&ask.dir.join(LEDGER));
    let now = chrono::Utc::now();
    for entry in ledger.iter().rev() {
        let shared: Vec<&String> = fingerprints
            .iter()
            .filter(|f| {
                entry["fingerprints"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(f)))
            })
            .collect();
        let (Some(first), Some(run)) = (shared.first(), entry["run"].as_str()) else {
            continue;
        };
        match status(ask.dir, run, entry) {
            Status::Unfinished => {
                return Err(format!("alert {first} already has the unfinished run {run}"));
            }
            Status::Sealed(at) => {
                if let Some(window) = rules.dedup
                    && since(now, at) < window
                {
                    return Err(format!(
                        "alert {first} already had the run {run}, sealed {} ago (within `dedup: {}`)",
                        crate::duration::format(since(now, at)),
                        crate::duration::format(window)
                    ));
                }
            }
            Status::NeverStarted => {}
        }
    }
    if let Some((count, per)) = rules.max_runs {
        let recent: Vec<&str> = ledger
            .iter()
            .filter(|e| e["runbook"].as_str() == Some(ask.runbook))
            .filter(|e| ts(e).is_some_and(|at| since(now, at) < per))
            .filter_map(|e| e["run"].as_str().map(|run| (run, e)))
            // A run that ended before its trail began (it could not connect) ran nothing.
            .filter(|(run, e)| !matches!(status(ask.dir, run, e), Status::NeverStarted))
            .map(|(run, _)| run)
            .collect();
        if recent.len() as u64 >= count {
            return Err(format!(
                "`{}` ran unattended {} times within {} (`max_runs: {{count: {count}, per: {}}}`), the last {}",
                ask.runbook,
                recent.len(),
                crate::duration::format(per),
                crate::duration::format(per),
                recent.last().copied().unwrap_or_default()
            ));
        }
    }
    Ok(policy.stop_when_resolved)
}

enum Status {
    Unfinished,
    Sealed(chrono::DateTime<chrono::Utc>),
    /// Admitted, but its process ended before its trail began (it could not connect).
    NeverStarted,
}

/// Where an admitted run is: its trail's last event says sealed or not; without a trail, a
/// process still alive on this machine is about to write it.
fn status(dir: &Path, run: &str, entry: &Value) -> Status {
    let trail = dir.join(format!("{run}.jsonl"));
    match std::fs::read_to_string(&trail) {
        Ok(text) => {
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default();
            let last: Value = serde_json::from_str(last).unwrap_or_default();
            if last["event"] == "run finished" {
                match ts(&last) {
                    Some(at) => Status::Sealed(at),
                    None => Status::Unfinished,
                }
            } else {
                Status::Unfinished
            }
        }
        Err(_) => {
            let here = entry["machine"].as_str() == Some(crate::identity::machine().as_str());
            let alive = entry["pid"]
                .as_u64()
                .and_then(|p| i32::try_from(p).ok())
                .and_then(rustix::process::Pid::from_raw)
                .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok());
            if here && alive {
                Status::Unfinished
            } else {
                Status::NeverStarted
            }
        }
    }
}

fn ts(v: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    v["ts"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn since(now: chrono::DateTime<chrono::Utc>, at: chrono::DateTime<chrono::Utc>) -> Duration {
    (now - at).to_std().unwrap_or_default()
}

/// The admitted runs, oldest first; an unreadable line is skipped.
fn read_ledger(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Appends one JSON line; created 0640 like the trails.
pub(super) fn append(path: &PathBuf, line: &Value) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| Error::runtime(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::runtime(format!("cannot write {}: {e}", path.display())))
}

/// Records and notifies a refusal; returns the error that ends the command (exit 2).
fn refuse(ask: Ask<'_>, fingerprints: &[String], reason: &str) -> Error {
    let line = json!({
        "ts": crate::listen::notify::timestamp(chrono::Utc::now()),
        "runbook": ask.runbook,
        "reason": reason,
        "fingerprints": fingerprints,
        "alert": ask.alert.map(crate::alert::Alert::identity),
        "operator": ask.operator,
        "machine": crate::identity::machine(),
    });
    let recorded = append(&ask.dir.join(REFUSALS), &line);
    if let Some(setup) = ask.notify {
        let run = crate::listen::notify::RunInfo {
            run_id: ask.run_id.to_string(),
            runbook: ask.runbook.to_string(),
            title: ask.title.to_string(),
            mode: "incident",
            operator: ask.operator.to_string(),
            machine: crate::identity::machine(),
        };
        let data = serde_json::Map::from_iter([
            ("reason".to_string(), json!(reason)),
            ("fingerprints".to_string(), json!(fingerprints)),
            ("alert".to_string(), line["alert"].clone()),
        ]);
        let summary = format!(
            "unattended run of {} ({}) refused: {reason}",
            ask.title, ask.runbook
        );
        crate::listen::notify::send_alone(setup, run, crate::listen::notify::Kind::RunRefused, summary, data);
    }
    let mut message = format!(
        "unattended run of `{}` refused: {reason}; nothing was run",
        ask.runbook
    );
    if let Err(e) = recorded {
        message.push_str(&format!(" (and the refusal could not be recorded: {e})"));
    }
    Error::usage(message)
}
