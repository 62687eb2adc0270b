//! RUN as `review`, `evidence`, `replay` and `audit verify` take it, in the local audit dir or,
//! with `--audit-host`, in the team's record (design §19): the union with the audit host's
//! runs, its copies kept in a private directory while the command reads them.

use std::path::PathBuf;

use crate::cli::SshArgs;
use crate::cli::config::Config;
use crate::error::Result;
use crate::team::{self, Team};

/// One run found.
pub(super) struct Found {
    /// The trail to read (the local one, or the audit host's copy).
    pub path: PathBuf,
    /// How it is named to the user: the local path, or the audit host's URL.
    pub shown: String,
    /// Its two copies differ: tampered, both named.
    pub diverged: Option<String>,
    /// The audit host's copy and its name there, when it is the same as the local trail
    /// (read from the local one; its output files may still differ).
    pub same_there: Option<(PathBuf, String)>,
}

impl Found {
    /// A trail of the audit dir.
    pub(super) fn local(path: PathBuf) -> Found {
        Found {
            shown: path.display().to_string(),
            path,
            diverged: None,
            same_there: None,
        }
    }

    /// A run of the union; its note (a copy behind the other, say) is said on stderr.
    pub(super) fn of(run: &team::Run) -> Found {
        if let Some(note) = run.note() {
            crate::stderr::ewriteln!("runbook: note: {note}");
        }
        Found {
            path: run.path().to_path_buf(),
            shown: run.shown(),
            diverged: run.diverged(),
            same_there: (run.copy.clone())
                .filter(|_| run.same())
                .map(|copy| (copy, run.there.clone())),
        }
    }
}

/// What was found, and the audit host's copies, removed when this is dropped.
pub(super) struct Lookup {
    pub runs: Vec<Found>,
    _team: Option<Team>,
}

/// Resolves each of `runs`; with an audit host, in the union (one connection for all).
pub(super) fn find(config: &Config, ssh: &SshArgs, runs: &[String]) -> Result<Lookup> {
    let Some(host) = &config.audit_host else {
        let runs = runs
            .iter()
            .map(|run| crate::audit::resolve_run(&config.audit_dir, run).map(Found::local))
            .collect::<Result<_>>()?;
        return Ok(Lookup { runs, _team: None });
    };
    let mut team = Team::open(host, &ssh.options())?;
    let found = team::resolve(&config.audit_dir, &mut team, runs)?;
    let runs = found.iter().map(Found::of).collect();
    Ok(Lookup {
        runs,
        _team: Some(team),
    })
}

/// Every run: of the audit dir, or with an audit host of the union (every trail copied over
/// one connection, and the output files of the runs there, since `audit verify` checks them).
pub(super) fn every(config: &Config, ssh: &SshArgs) -> Result<Lookup> {
    let Some(host) = &config.audit_host else {
        let runs = crate::review::history::trail_files(&config.audit_dir)?
            .into_iter()
            .map(Found::local)
            .collect();
        return Ok(Lookup { runs, _team: None });
    };
    let mut team = Team::open(host, &ssh.options())?;
    let union = team::all(&config.audit_dir, &mut team)?;
    let there: Vec<String> = union
        .iter()
        .filter(|run| run.copy.is_some())
        .map(|run| run.id.clone())
        .collect();
    team.outputs(&there)?;
    let runs = union.iter().map(Found::of).collect();
    Ok(Lookup {
        runs,
        _team: Some(team),
    })
}

/// The one run of `run`.
pub(super) fn find_one(config: &Config, ssh: &SshArgs, run: &str) -> Result<(Found, Lookup)> {
    let mut lookup = find(config, ssh, &[run.to_string()])?;
    let found = lookup.runs.remove(0);
    Ok((found, lookup))
}
