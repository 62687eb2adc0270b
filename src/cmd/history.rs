//! `runbook history`: past runs of the audit dir, one line each (or JSON), newest first,
//! filtered by runbook, mode and date; with `--audit-host`, the team's: the union with the
//! audit host's runs.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::cli::config::Config;
use crate::cli::{HistoryArgs, HistoryMode};
use crate::error::{Error, Result, exit};
use crate::output;
use crate::review::history::{self, Filter};
use crate::team::{self, Team};
use crate::transport::AuditHost;

pub(super) fn execute(config: &Config, args: &HistoryArgs) -> Result<u8> {
    let dir = config.audit_dir.clone();
    let filter = Filter {
        runbook: args.runbook.clone(),
        mode: args.mode.map(|m| match m {
            HistoryMode::Drill => "drill".to_string(),
            HistoryMode::Incident => "incident".to_string(),
        }),
        since: args.since,
    };
    let (runs, warnings) = match &config.audit_host {
        None => history::scan(&dir, &filter)?,
        Some(host) => with_audit_host(&dir, host, args, &filter)?,
    };
    for warning in &warnings {
        crate::stderr::ewriteln!("runbook: {warning}");
    }
    if args.json {
        let text = serde_json::to_string_pretty(&runs)
            .map_err(|e| Error::runtime(format!("cannot serialize the history: {e}")))?;
        output::print(&format!("{text}\n"))?;
    } else if runs.is_empty() {
        match &config.audit_host {
            None => crate::stderr::ewriteln!(
                "no runs in `{}` match (set the audit dir with --audit-dir or RUNBOOK_AUDIT_DIR)",
                dir.display()
            ),
            Some(host) => crate::stderr::ewriteln!(
                "no runs in `{}` nor on the audit host {host} match",
                dir.display()
            ),
        }
    } else {
        output::print(&history::render(&runs))?;
    }
    Ok(exit::OK)
}

/// The union of the audit dir and the audit host's runs (design §19), one row per run id; a
/// run whose two copies differ is TAMPERED, both named.
fn with_audit_host(
    dir: &std::path::Path,
    host: &AuditHost,
    args: &HistoryArgs,
    filter: &Filter,
) -> Result<(Vec<history::Entry>, Vec<String>)> {
    let mut team = Team::open(host, &args.ssh.options())?;
    let union = team::all(dir, &mut team)?;
    let paths: Vec<(PathBuf, String)> = union
        .iter()
        .map(|run| (run.path().to_path_buf(), run.shown()))
        .collect();
    let (mut runs, mut warnings) = history::entries(&paths, filter);
    let by_shown: HashMap<String, &team::Run> = union.iter().map(|r| (r.shown(), r)).collect();
    for entry in &mut runs {
        let Some(run) = by_shown.get(&entry.path) else {
            continue;
        };
        entry.stored = Some(run.stored());
        if let Some(why) = run.diverged() {
            entry.verdict = "TAMPERED".into();
            entry.verdict_reason = Some(why.clone());
            warnings.push(format!("TAMPERED: {why}"));
        } else if let Some(note) = run.note() {
            warnings.push(format!("note: {note}"));
        }
    }
    Ok((runs, warnings))
}
