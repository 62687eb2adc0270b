//! Where runbooks are found: catalog directories (`--dir`, `RUNBOOK_PATH`, `./runbooks`) and
//! the resolution of a command's `RUNBOOK` argument (a path, or an id of the catalog).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::book::parse::Source;
use crate::book::runbook::Runbook;
use crate::diagnostic::Diagnostic;
use crate::error::Error;

/// The directories runbooks are looked up in, in order: those given (`--dir`), else
/// `RUNBOOK_PATH`, else `./runbooks`.
pub(crate) fn dirs(given: &[PathBuf]) -> Vec<PathBuf> {
    if !given.is_empty() {
        return given.to_vec();
    }
    match std::env::var_os("RUNBOOK_PATH") {
        Some(path) if !path.is_empty() => std::env::split_paths(&path)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        _ => vec![PathBuf::from("runbooks")],
    }
}

/// The `*.yaml` and `*.yml` files of a directory (not recursive), sorted by name; test cases
/// kept beside the runbooks (`*.test.yaml`, `runbook test`) are no runbooks.
pub(crate) fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".test.yaml") || n.ends_with(".test.yml"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A runbook file of the catalog, read and parsed (or the diagnostic that stopped it).
pub(crate) struct Entry {
    pub parsed: Result<Runbook, Diagnostic>,
}

impl Entry {
    pub(crate) fn load(path: &Path) -> Result<Entry, Diagnostic> {
        let parsed = Source::read(path)?.parse();
        Ok(Entry { parsed })
    }
}

/// Every runbook file of the catalog directories, keyed by runbook id (the first one wins when
/// an id repeats; `validate` reports duplicates). Unreadable or broken files are skipped here.
/// An inventory kept beside the runbooks (design §10's `./inventory.yaml`) is no runbook.
pub(crate) fn is_inventory(path: &Path) -> bool {
    matches!(
        path.file_name().and_then(|n| n.to_str()),
        Some("inventory.yaml" | "inventory.yml")
    )
}

pub(crate) fn index(given: &[PathBuf]) -> BTreeMap<String, PathBuf> {
    let mut ids = BTreeMap::new();
    for dir in dirs(given) {
        for path in files_in(&dir).unwrap_or_default() {
            if let Ok(Entry {
                parsed: Ok(runbook), ..
            }) = Entry::load(&path)
            {
                ids.entry(runbook.id.value.clone()).or_insert(path);
            }
        }
    }
    ids
}

/// Resolves a `RUNBOOK` argument: an existing path, else an id of the catalog.
pub(crate) fn resolve(given: &[PathBuf], spec: &str) -> Result<PathBuf, Error> {
    let as_path = Path::new(spec);
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    resolve_in(&index(given), given, spec)
}

/// Like `resolve`, with the catalog already indexed (a run needs the index for `call` too).
pub(crate) fn resolve_in(
    ids: &BTreeMap<String, PathBuf>,
    given: &[PathBuf],
    spec: &str,
) -> Result<PathBuf, Error> {
    let as_path = Path::new(spec);
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    if let Some(path) = ids.get(spec) {
        return Ok(path.clone());
    }
    let searched = dirs(given)
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let hint = crate::diagnostic::did_you_mean(spec, ids.keys().map(String::as_str))
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    Err(Error::usage(format!(
        "no runbook `{spec}`: not a file, and no runbook with that id in {searched}{hint}; `runbook list` shows the catalog, `--dir` or RUNBOOK_PATH choose it"
    )))
}
