//! The union of the local audit dir and the audit host's copy: one `Run` per run id, and what
//! the two copies of a run in both places say of each other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Team;
use crate::error::{Error, Result};

/// One run of the team's record.
#[derive(Debug)]
pub(crate) struct Run {
    pub id: String,
    /// The local trail.
    pub local: Option<PathBuf>,
    /// The audit host's, in the private copy.
    pub copy: Option<PathBuf>,
    /// The audit host's trail as the user names it (`ssh://…/<run>.jsonl`).
    pub there: String,
    agreement: Agreement,
}

/// What a run's two copies say of each other.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Agreement {
    /// In one place only.
    One,
    Same,
    /// The local trail is the start of the audit host's: the run went on on another machine.
    LocalBehind,
    /// The audit host's is the start of the local trail: its mirror has not caught up.
    HostBehind,
    /// Neither is the start of the other: one of them was changed.
    Diverged {
        local_head: String,
        host_head: String,
    },
}

impl Run {
    fn new(id: &str, local: Option<PathBuf>, copy: Option<PathBuf>, there: String) -> Result<Run> {
        let agreement = match (&local, &copy) {
            (Some(local), Some(copy)) => compare(local, copy)?,
            _ => Agreement::One,
        };
        Ok(Run {
            id: id.to_string(),
            local,
            copy,
            there,
            agreement,
        })
    }

    /// The trail to read: the local one, unless only the audit host has it or has more of it.
    pub(crate) fn path(&self) -> &Path {
        match (&self.local, &self.copy, &self.agreement) {
            (_, Some(copy), Agreement::LocalBehind) | (None, Some(copy), _) => copy,
            (Some(local), _, _) => local,
            (None, None, _) => unreachable!("a run is in one place at least"),
        }
    }

    /// `path()` as the user names it: the local path, or the audit host's URL.
    pub(crate) fn shown(&self) -> String {
        match &self.local {
            Some(local) if self.path() == local => local.display().to_string(),
            _ => self.there.clone(),
        }
    }

    /// Both places have it, byte for byte the same.
    pub(crate) fn same(&self) -> bool {
        self.agreement == Agreement::Same
    }

    /// `local`, `audit host` or `both`.
    pub(crate) fn stored(&self) -> &'static str {
        match (&self.local, &self.copy) {
            (Some(_), Some(_)) => "both",
            (None, Some(_)) => "audit host",
            _ => "local",
        }
    }

    /// Both places have the run and the two copies differ: tampered, both named.
    pub(crate) fn diverged(&self) -> Option<String> {
        let Agreement::Diverged {
            local_head,
            host_head,
        } = &self.agreement
        else {
            return None;
        };
        Some(format!(
            "the run {} differs between the local trail {} (head {local_head}) and the audit host's copy {} (head {host_head}): neither is the start of the other, so one was changed after it was written; keep both as evidence",
            self.id,
            self.local.as_deref().unwrap_or(Path::new("?")).display(),
            self.there,
        ))
    }

    /// One copy is the start of the other: said, not an error.
    pub(crate) fn note(&self) -> Option<String> {
        let local = self.local.as_deref()?.display();
        match self.agreement {
            Agreement::LocalBehind => Some(format!(
                "the local trail {local} is the start of the audit host's copy {} (the run went on on another machine): the audit host's is read",
                self.there
            )),
            Agreement::HostBehind => Some(format!(
                "the audit host's copy {} is the start of the local trail {local} (its mirror has not caught up, or the run is going on): the local one is read",
                self.there
            )),
            _ => None,
        }
    }
}

/// Byte for byte, then as prefixes of each other.
fn compare(local: &Path, copy: &Path) -> Result<Agreement> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| Error::runtime(format!("cannot read `{}`: {e}", p.display())))
    };
    let (l, h) = (read(local)?, read(copy)?);
    Ok(if l == h {
        Agreement::Same
    } else if h.starts_with(&l) {
        Agreement::LocalBehind
    } else if l.starts_with(&h) {
        Agreement::HostBehind
    } else {
        Agreement::Diverged {
            local_head: head(&l),
            host_head: head(&h),
        }
    })
}

/// The last line's `hash` (the head), or `none`.
fn head(trail: &[u8]) -> String {
    trail
        .split(|&b| b == b'\n')
        .rev()
        .find(|l| !l.trim_ascii().is_empty())
        .and_then(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .and_then(|v| v.get("hash").and_then(|h| h.as_str()).map(str::to_string))
        .unwrap_or_else(|| "none".into())
}

/// Every run of the audit dir and of the audit host (their trails copied, not their outputs),
/// by run id.
pub(crate) fn all(audit_dir: &Path, team: &mut Team) -> Result<Vec<Run>> {
    let there = team.trails()?;
    let mut ids: BTreeMap<String, (Option<PathBuf>, Option<PathBuf>)> = BTreeMap::new();
    for path in crate::review::history::trail_files(audit_dir)? {
        if let Some(id) = path.file_stem().and_then(|s| s.to_str()) {
            ids.entry(id.to_string()).or_default().0 = Some(path.clone());
        }
    }
    for id in there {
        let copy = team.trail(&id);
        // An empty trail is not a run, there as here.
        if std::fs::metadata(&copy).is_ok_and(|m| m.len() > 0) {
            ids.entry(id).or_default().1 = Some(copy);
        }
    }
    ids.into_iter()
        .map(|(id, (local, copy))| {
            let there = team.there(&id);
            Run::new(&id, local, copy, there)
        })
        .collect()
}

/// The runs `runs` name (as the commands take RUN: a run id, a unique start of one, `last`, or
/// the path of a local trail), in the union of `audit_dir` and the audit host, the audit
/// host's copied with their output files.
pub(crate) fn resolve(audit_dir: &Path, team: &mut Team, runs: &[String]) -> Result<Vec<Run>> {
    let listed = team.list()?;
    let locals = local_ids(audit_dir);
    let mut found: Vec<(String, Option<PathBuf>)> = Vec::new();
    for run in runs {
        let (id, local) = pick(audit_dir, &locals, &listed, run, team.host())?;
        found.push((id, local));
    }
    let wanted: Vec<String> = found
        .iter()
        .filter(|(id, _)| listed.contains(id))
        .map(|(id, _)| id.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    team.runs(&wanted)?;
    found
        .into_iter()
        .map(|(id, local)| {
            let copy = Some(team.trail(&id)).filter(|p| p.is_file());
            if local.is_none() && copy.is_none() {
                return Err(Error::runtime(format!(
                    "the run {id} went from the audit host {} while it was read; try again",
                    team.host()
                )));
            }
            let there = team.there(&id);
            Run::new(&id, local, copy, there)
        })
        .collect()
}

/// The run ids of the audit dir's trails.
fn local_ids(dir: &Path) -> Vec<String> {
    crate::review::history::trail_files(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_string))
        .collect()
}

/// The run id `run` names, and its local trail if any.
fn pick(
    dir: &Path,
    locals: &[String],
    listed: &[String],
    run: &str,
    host: &crate::transport::AuditHost,
) -> Result<(String, Option<PathBuf>)> {
    let local = |id: &str| Some(dir.join(format!("{id}.jsonl"))).filter(|_| locals.iter().any(|l| l == id));
    if run.contains('/') || (run.ends_with(".jsonl") && Path::new(run).is_file()) {
        // A path is a local trail; the audit host's copy of the same run id is compared.
        let path = crate::audit::resolve_run(dir, run)?;
        let id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok((id, Some(path)));
    }
    if run == "last" {
        // The newest start (the run id begins with it); a tie goes to the local one.
        let mine = crate::audit::resolve_run(dir, "last").ok();
        let mine_id = mine
            .as_ref()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned());
        let start = |id: &str| id.split('-').next().unwrap_or("").to_string();
        let theirs = listed.iter().max_by_key(|id| (start(id), id.to_string()));
        return match (mine_id, theirs) {
            (Some(m), Some(t)) if start(t) > start(&m) => Ok((t.clone(), local(t))),
            (Some(m), _) => Ok((m, mine)),
            (None, Some(t)) => Ok((t.clone(), None)),
            (None, None) => Err(Error::usage(format!(
                "`last`: no runs in the audit dir `{}` nor on the audit host {host}",
                dir.display()
            ))),
        };
    }
    let id = run.strip_suffix(".jsonl").unwrap_or(run);
    if locals.iter().chain(listed).any(|l| l == id) {
        return Ok((id.to_string(), local(id)));
    }
    let matches: Vec<&String> = locals
        .iter()
        .chain(listed)
        .filter(|name| !id.is_empty() && name.starts_with(id))
        .collect();
    let none = || {
        format!(
            "no run `{run}` in the audit dir `{}` nor on the audit host {host}",
            dir.display()
        )
    };
    let many_in = format!(
        "in the audit dir `{}` and on the audit host {host}",
        dir.display()
    );
    let one = crate::audit::one_match(matches, run, none, &many_in)?;
    let path = local(&one);
    Ok((one, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_is_looked_up_in_both_places() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let host = crate::transport::AuditHost::parse("ssh://a@h/srv/runs").unwrap();
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for id in ["20261122T030211Z-a-1", "20261123T000000Z-b-2"] {
            std::fs::write(dir.join(format!("{id}.jsonl")), "x\n").unwrap();
        }
        let locals = ids(&["20261122T030211Z-a-1", "20261123T000000Z-b-2"]);
        let listed = ids(&[
            "20261122T030211Z-a-1",
            "20261124T000000Z-c-3",
            "20261122T030211Z-z-9",
        ]);
        let pick = |run: &str, listed: &[String]| pick(dir, &locals, listed, run, &host);
        // Only there, by its start; in both places, with the local trail.
        assert_eq!(
            pick("20261124", &listed).unwrap(),
            ("20261124T000000Z-c-3".into(), None)
        );
        assert_eq!(
            pick("20261122T030211Z-a", &listed).unwrap(),
            (
                "20261122T030211Z-a-1".into(),
                Some(dir.join("20261122T030211Z-a-1.jsonl"))
            )
        );
        // `last`: the newest start of both; a tie goes to the local run.
        assert_eq!(pick("last", &listed).unwrap().0, "20261124T000000Z-c-3");
        assert_eq!(pick("last", &listed[..1]).unwrap().0, "20261123T000000Z-b-2");
        let tie = ids(&["20261123T000000Z-b-0"]);
        assert_eq!(pick("last", &tie).unwrap().0, "20261123T000000Z-b-2");
        // A start of runs in either place is ambiguous; none anywhere names both places.
        let many = pick("20261122T030211Z", &listed).unwrap_err();
        assert!(many.to_string().contains("matches 2 runs"), "{many}");
        let none = pick("2099", &listed).unwrap_err();
        assert_eq!(none.exit_code(), crate::error::exit::USAGE);
        assert!(
            none.to_string()
                .contains("nor on the audit host ssh://a@h/srv/runs"),
            "{none}"
        );
        // A path is the local trail; its run id is compared with the audit host's.
        let path = dir.join("20261122T030211Z-a-1.jsonl");
        assert_eq!(
            pick(path.to_str().unwrap(), &listed).unwrap(),
            ("20261122T030211Z-a-1".into(), Some(path))
        );
    }

    #[test]
    fn two_copies_are_the_same_one_behind_or_diverged() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        let line = |n: u8| format!("{{\"seq\":{n},\"hash\":\"h{n}\"}}\n");
        let agree = |x: &str, y: &str| {
            std::fs::write(&a, x).unwrap();
            std::fs::write(&b, y).unwrap();
            compare(&a, &b).unwrap()
        };
        let (one, two) = (line(0), line(0) + &line(1));
        assert_eq!(agree(&two, &two), Agreement::Same);
        assert_eq!(agree(&one, &two), Agreement::LocalBehind);
        assert_eq!(agree(&two, &one), Agreement::HostBehind);
        assert_eq!(
            agree(&two, &(line(0) + &line(2))),
            Agreement::Diverged {
                local_head: "h1".into(),
                host_head: "h2".into()
            }
        );
    }
}
