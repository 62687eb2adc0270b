//! Where test cases and their runbooks are found (design §21): `*.test.yaml` files beside the
//! runbooks or under a `tests/` directory; a case's `runbook:` is an id looked up next to the
//! case (its directory, and the directory above its `tests/`), then in the catalog, or a path
//! relative to the case file. Each runbook is read and validated once, however many cases
//! test it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::book::catalog;
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::plan::Loaded;

/// Whether a file is a test case by its name.
pub(crate) fn is_case(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".test.yaml") || n.ends_with(".test.yml"))
}

/// The case files of `paths` (files as given; in a directory, its `*.test.yaml` and those
/// anywhere under its `tests/`), sorted, each once; and the directories searched, whose
/// runbooks coverage counts.
pub(crate) fn find(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<PathBuf>), Error> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
        } else if path.is_dir() {
            dirs.push(path.clone());
            files.extend(cases_in(path, false));
            files.extend(cases_in(&path.join("tests"), true));
        } else {
            return Err(Error::usage(format!(
                "{}: no such file or directory (give case files, or directories holding *.test.yaml files)",
                path.display()
            )));
        }
    }
    files.sort();
    files.dedup();
    Ok((files, dirs))
}

/// `*.test.yaml` files of `dir`, and of its subdirectories when `deep` (hidden ones skipped).
fn cases_in(dir: &Path, deep: bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if path.is_dir() && deep && !hidden && depth < 8 {
                stack.push((path, depth + 1));
            } else if path.is_file() && is_case(&path) {
                found.push(path);
            }
        }
    }
    found
}

/// The runbooks cases are tested against, each read once.
pub(crate) struct Library {
    catalog: Vec<PathBuf>,
    indexes: HashMap<Vec<PathBuf>, Arc<BTreeMap<String, PathBuf>>>,
    loaded: HashMap<PathBuf, Result<Arc<Loaded>, Vec<Diagnostic>>>,
}

impl Library {
    pub(crate) fn new(catalog: &[PathBuf]) -> Library {
        Library {
            catalog: catalog.to_vec(),
            indexes: HashMap::new(),
            loaded: HashMap::new(),
        }
    }

    /// Where the runbooks of the case at `case` are looked up by id, in order.
    pub(crate) fn dirs_for(&self, case: &Path) -> Vec<PathBuf> {
        let here = case.parent().map(Path::to_path_buf).unwrap_or_default();
        let here = if here.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            here
        };
        let mut dirs = vec![here.clone()];
        // `runbooks/tests/x.test.yaml` (or deeper under `tests/`) tests `runbooks/`'s runbooks.
        let mut up = here.as_path();
        while let Some(parent) = up.parent() {
            if up.file_name().is_some_and(|n| n == "tests") {
                let parent = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                dirs.push(parent.to_path_buf());
                break;
            }
            up = parent;
        }
        for dir in &self.catalog {
            if !dirs.contains(dir) {
                dirs.push(dir.clone());
            }
        }
        dirs
    }

    /// The catalog of `dirs`: runbook id → file.
    pub(crate) fn index(&mut self, dirs: &[PathBuf]) -> Arc<BTreeMap<String, PathBuf>> {
        self.indexes
            .entry(dirs.to_vec())
            .or_insert_with(|| Arc::new(catalog::index(dirs)))
            .clone()
    }

    /// The runbook at `path`, validated against the ids of `index`; its errors otherwise.
    pub(crate) fn load(
        &mut self,
        path: &Path,
        index: &BTreeMap<String, PathBuf>,
    ) -> Result<Arc<Loaded>, Vec<Diagnostic>> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        self.loaded
            .entry(key)
            .or_insert_with(|| {
                let ids = index.keys().cloned().collect();
                let (source, runbook, diagnostics) = crate::book::validate::check_file(path, Some(&ids));
                let errors: Vec<Diagnostic> = diagnostics.into_iter().filter(|d| d.is_error()).collect();
                match (source, runbook) {
                    (Some(source), Some(runbook)) if errors.is_empty() => Ok(Arc::new(Loaded {
                        runbook,
                        source,
                        path: path.to_path_buf(),
                    })),
                    _ => Err(errors),
                }
            })
            .clone()
    }

    /// Every runbook loaded without errors, by id: what coverage counts.
    pub(crate) fn runbooks(&self) -> Vec<Arc<Loaded>> {
        let mut all: Vec<Arc<Loaded>> = self
            .loaded
            .values()
            .filter_map(|l| l.as_ref().ok().cloned())
            .collect();
        all.sort_by(|a, b| a.runbook.id().cmp(b.runbook.id()));
        all.dedup_by(|a, b| a.runbook.id() == b.runbook.id());
        all
    }
}
