//! Admission of an `--unattended` run (design §20): the policy's rules, the pause, dedup by
//! alert fingerprint and `max_runs`, decided under one lock of the audit dir, so that an alert
//! that Alertmanager re-sends while the first run starts still starts one run.
//!
//! The runs admitted are listed in `<audit-dir>/unattended/runs.jsonl` (run id, runbook, alert
//! fingerprints, when, pid): it is what `max_runs` counts and what dedup looks a fingerprint up
//! in; whether such a run is unfinished or when it was sealed is read from its trail. With an
//! audit host, its pause and its ledger (`remote.rs`) are read and written too, in one exchange
//! under its lock: a pause there, and the runs of every machine, count. An audit host that
//! cannot be reached refuses the run (fail safe).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::ledger::{Book, GRACE, LEDGER, Status, since, ts};

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
    /// The team's audit host, and how it is reached.
    pub audit_host: Option<&'a crate::transport::AuditHost>,
    pub ssh: &'a crate::transport::SshOptions,
}

/// An admitted run: `stop_when_resolved` says whether `runbook resolved` may stop it.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    pub stop_when_resolved: bool,
    pub fingerprints: Vec<String>,
}

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
    let (mut remote, seen) = match ask.audit_host {
        None => (None, None),
        Some(host) => match super::remote::Admission::open(host, ask.ssh) {
            Ok((admission, seen)) => (Some(admission), Some(seen)),
            Err(why) => return Err(refuse(ask, &fingerprints, &unchecked(&why))),
        },
    };
    let decided = {
        let mut book = Book::new(ask.dir, remote.as_mut().zip(seen));
        decide(&ask, &fingerprints, &mut book)
    };
    match decided {
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
            // The audit host's ledger first: a run it does not list would escape the team's count.
            if let Some(remote) = remote
                && let Err(why) = remote.finish(Some(&line))
            {
                return Err(refuse(ask, &fingerprints, &unchecked(&why)));
            }
            append(&ask.dir.join(LEDGER), &line)?;
            Ok(Admission {
                stop_when_resolved,
                fingerprints,
            })
        }
        Err(reason) => {
            if let Some(remote) = remote {
                let _ = remote.finish(None);
            }
            Err(refuse(ask, &fingerprints, &reason))
        }
    }
}

/// The reason of a refusal for an audit host that could not be asked.
fn unchecked(why: &str) -> String {
    format!(
        "{why}; an unattended run is refused while the team's pause, `max_runs` and dedup on the audit host cannot be checked (run it by hand, or fix the audit host)"
    )
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
fn decide(ask: &Ask<'_>, fingerprints: &[String], book: &mut Book<'_>) -> Result<bool, String> {
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
    // The audit host's pause holds every machine; this audit dir's still holds this one.
    if let (Some(host), Some(text)) = (book.host(), &book.remote_pause)
        && let Some(paused) = super::pause::judge(text.clone(), &format!("on the audit host {host}"))
    {
        return Err(paused);
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
    let now = chrono::Utc::now();
    let shares = |entry: &Value| -> Option<String> {
        fingerprints
            .iter()
            .find(|f| {
                entry["fingerprints"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(f.as_str())))
            })
            .cloned()
    };
    let counted = |entry: &Value| -> bool {
        rules.max_runs.is_some_and(|(_, per)| {
            entry["runbook"].as_str() == Some(ask.runbook) && ts(entry).is_some_and(|at| since(now, at) < per)
        })
    };
    // Only the runs that matter are looked up (on the audit host, in one round).
    let ledger = book.ledger.clone();
    let relevant: Vec<&Value> = ledger
        .iter()
        .filter(|e| shares(e).is_some() || counted(e))
        .collect();
    let statuses = book.statuses(&relevant).map_err(|why| unchecked(&why))?;
    let status_of = |entry: &Value| entry["run"].as_str().and_then(|run| statuses.get(run));
    for entry in relevant.iter().rev() {
        let (Some(first), Some(run), Some(status)) = (shares(entry), entry["run"].as_str(), status_of(entry))
        else {
            continue;
        };
        match status {
            Status::Unfinished => {
                return Err(format!("alert {first} already has the unfinished run {run}"));
            }
            Status::Unseen(at) if since(now, *at) < GRACE => {
                return Err(format!(
                    "alert {first} already has the run {run}, admitted on {} {} ago (its trail has not reached the audit host yet)",
                    entry["machine"].as_str().unwrap_or("another machine"),
                    crate::duration::format(since(now, *at))
                ));
            }
            Status::Sealed(at) => {
                if let Some(window) = rules.dedup
                    && since(now, *at) < window
                {
                    return Err(format!(
                        "alert {first} already had the run {run}, sealed {} ago (within `dedup: {}`)",
                        crate::duration::format(since(now, *at)),
                        crate::duration::format(window)
                    ));
                }
            }
            Status::Unseen(_) | Status::NeverStarted => {}
        }
    }
    if let Some((count, per)) = rules.max_runs {
        let recent: Vec<&str> = relevant
            .iter()
            .filter(|e| counted(e))
            // A run that ended before its trail began (it could not connect) ran nothing.
            .filter(|e| !matches!(status_of(e), Some(Status::NeverStarted)))
            .filter_map(|e| e["run"].as_str())
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
