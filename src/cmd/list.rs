//! `runbook list`: the catalog at a glance (id, title, RTO, steps) from `--dir`, `RUNBOOK_PATH`
//! or `./runbooks`. Broken files and repeated ids are warned about on stderr, never hidden, so
//! the table on stdout stays clean for scripts.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::book::catalog::{self, Entry};
use crate::cli::ListArgs;
use crate::cli::config::Config;
use crate::error::{Error, Result, exit};
use crate::output;
use crate::render;

/// One runbook of the catalog, as `--json` prints it.
#[derive(Debug, Serialize)]
pub(super) struct Listed {
    pub id: String,
    pub title: String,
    /// The RTO as written, e.g. `15m`.
    pub rto: String,
    /// The RTO in seconds; `null` when it does not parse (validate reports it).
    pub rto_seconds: Option<u64>,
    /// Steps of the main list (cleanup steps not counted).
    pub steps: usize,
    pub path: String,
}

pub(super) fn execute(config: &Config, args: &ListArgs) -> Result<u8> {
    let dirs = catalog::dirs(&config.catalog);
    if let Some(file) = dirs.iter().find(|d| d.exists() && !d.is_dir()) {
        return Err(Error::usage(format!(
            "catalog directory `{}` is a file, not a directory; pick the catalog with `--dir DIR` (repeatable) or RUNBOOK_PATH=DIR1:DIR2",
            file.display()
        )));
    }
    let missing: Vec<String> = dirs
        .iter()
        .filter(|d| !d.is_dir())
        .map(|d| format!("`{}`", d.display()))
        .collect();
    if !missing.is_empty() {
        let (noun, verb) = if missing.len() == 1 {
            ("directory", "does not exist")
        } else {
            ("directories", "do not exist")
        };
        return Err(Error::usage(format!(
            "catalog {noun} {} {verb}; pick the catalog with `--dir DIR` (repeatable) or RUNBOOK_PATH=DIR1:DIR2",
            missing.join(", ")
        )));
    }

    let mut by_id: BTreeMap<String, Listed> = BTreeMap::new();
    for dir in &dirs {
        let files = catalog::files_in(dir)
            .map_err(|e| Error::usage(format!("cannot read catalog directory `{}`: {e}", dir.display())))?;
        for path in files {
            // An inventory beside the runbooks is no runbook to list (nor to warn about).
            if catalog::is_inventory(&path) {
                continue;
            }
            let Some(listed) = load(&path) else { continue };
            match by_id.get(&listed.id) {
                // The first one wins, as when `run` or `show` resolve the id.
                Some(first) => crate::stderr::ewriteln!(
                    "runbook: warning: runbook id `{}` is in both {} and {}; `runbook show {}` uses {}",
                    listed.id,
                    first.path,
                    listed.path,
                    listed.id,
                    first.path
                ),
                None => {
                    by_id.insert(listed.id.clone(), listed);
                }
            }
        }
    }
    let listed: Vec<Listed> = by_id.into_values().collect();

    if listed.is_empty() {
        let searched = dirs
            .iter()
            .map(|d| format!("`{}`", d.display()))
            .collect::<Vec<_>>()
            .join(", ");
        crate::stderr::ewriteln!(
            "runbook: no runbooks in {searched}; add *.yaml files there, or pick another catalog with `--dir DIR` or RUNBOOK_PATH"
        );
    }
    if args.json {
        let json = serde_json::to_string_pretty(&listed)
            .map_err(|e| Error::runtime(format!("cannot serialize the catalog: {e}")))?;
        output::print(&format!("{json}\n"))?;
    } else if !listed.is_empty() {
        let mut rows = vec![vec![
            "ID".to_string(),
            "TITLE".to_string(),
            "RTO".to_string(),
            "STEPS".to_string(),
        ]];
        rows.extend(listed.iter().map(|l| {
            vec![
                l.id.clone(),
                render::one_line(&l.title),
                l.rto.clone(),
                l.steps.to_string(),
            ]
        }));
        output::print(&render::table(&rows, ""))?;
    }
    Ok(exit::OK)
}

/// Reads and parses one catalog file; a file that does not parse is named on stderr with
/// where it breaks, and skipped.
fn load(path: &Path) -> Option<Listed> {
    let parsed = Entry::load(path).and_then(|entry| entry.parsed);
    let runbook = match parsed {
        Ok(runbook) => runbook,
        Err(d) => {
            let at = if d.line == 0 {
                d.file.clone()
            } else {
                format!("{}:{}:{}", d.file, d.line, d.col)
            };
            crate::stderr::ewriteln!(
                "{at}: warning: {} (skipped; run `runbook validate {}`)",
                d.message,
                d.file
            );
            return None;
        }
    };
    Some(Listed {
        id: runbook.id().to_string(),
        title: runbook.title.clone(),
        rto: runbook.rto.0.value.clone(),
        rto_seconds: runbook.rto.get().map(|d| d.as_secs()),
        steps: runbook.steps.len(),
        path: path.display().to_string(),
    })
}
