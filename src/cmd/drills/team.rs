//! `runbook drills --audit-host URL`: the drill runs of the team's record (design §19), the
//! union of the audit dir and the audit host's, one per run id; the output files of the audit
//! host's sealed PASSes copied too (one more request), since a PASS counts only when they hold.

use std::path::Path;

use super::{DrillBook, Trail};
use crate::cli::SshArgs;
use crate::cmd::union::Found;
use crate::error::Result;
use crate::team::{self, Team};
use crate::transport::AuditHost;

/// The drill runs of `books`, where they were read from (said under the table), and the audit
/// host's copies, kept while they are checked.
pub(super) fn trails(
    dir: &Path,
    host: Option<&AuditHost>,
    ssh: &SshArgs,
    books: &[DrillBook],
) -> Result<(Vec<Trail>, String, Option<Team>)> {
    let Some(host) = host else {
        let sources = crate::review::history::trail_files(dir)?
            .into_iter()
            .map(Found::local)
            .collect();
        return Ok((
            super::drill_trails(sources, books),
            dir.display().to_string(),
            None,
        ));
    };
    let (trails, team) = drill_trails(dir, host, ssh, books)?;
    Ok((
        trails,
        format!("{} and the audit host {host}", dir.display()),
        Some(team),
    ))
}

fn drill_trails(
    dir: &Path,
    host: &AuditHost,
    ssh: &SshArgs,
    books: &[DrillBook],
) -> Result<(Vec<Trail>, Team)> {
    let mut team = Team::open(host, &ssh.options())?;
    let runs = team::all(dir, &mut team)?;
    let sources = runs.iter().map(Found::of).collect();
    let trails = super::drill_trails(sources, books);
    let passes: Vec<String> = trails
        .iter()
        .filter(|t| t.path.starts_with(team.dir()) && t.review.sealed() && t.review.verdict == "PASS")
        .filter_map(|t| Some(t.path.file_stem()?.to_str()?.to_string()))
        .collect();
    team.outputs(&passes)?;
    Ok((trails, team))
}
