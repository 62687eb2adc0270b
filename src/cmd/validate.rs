//! `runbook validate PATH...`: check files and directories of runbooks, print every
//! diagnostic with its snippet (or as JSON), and exit 2 when any is an error (design §2, §8).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::book::catalog;
use crate::book::parse::Source;
use crate::book::runbook::Runbook;
use crate::cli::config::Config;
use crate::cli::{ValidateArgs, ValidateFormat};
use crate::diagnostic::{Diagnostic, Pos, plural};
use crate::error::{Error, Result, exit};

/// One file given (or found in a directory given), read and parsed once.
struct Checked {
    source: Option<Source>,
    runbook: Option<Runbook>,
    diagnostics: Vec<Diagnostic>,
}

pub(super) fn execute(config: &Config, args: &ValidateArgs) -> Result<u8> {
    let mut problems: Vec<Diagnostic> = Vec::new();
    let mut files = expand(&args.paths, &mut problems);
    if let Some(inventory) = args.inventory.as_ref().filter(|p| !files.contains(p)) {
        files.push(inventory.clone());
    }
    let inventory = args.inventory.as_deref();
    let mut checked: Vec<Checked> = par_map(&files, |path| {
        if Some(path.as_path()) == inventory || is_inventory(path) {
            load_inventory(path)
        } else {
            load(path)
        }
    });

    // `call` may name any runbook of the catalog, or of the files being validated together.
    let given_dirs: BTreeSet<PathBuf> = args
        .paths
        .iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    let mut ids = catalog_ids(config, &given_dirs);
    let mut first_file: BTreeMap<String, String> = BTreeMap::new();
    for c in &mut checked {
        let (Some(source), Some(runbook)) = (&c.source, &c.runbook) else {
            continue;
        };
        let id = runbook.id();
        ids.insert(id.to_string());
        match first_file.get(id) {
            Some(other) => {
                let pos = Pos::of(&runbook.id);
                c.diagnostics.push(
                    Diagnostic::error(&source.path, pos, format!("runbook id `{id}` is also used by {other}"))
                        .with_width(id.chars().count())
                        .with_help(format!("ids must be unique in a catalog: `runbook run {id}` would not know which file you mean")),
                );
            }
            None => {
                first_file.insert(id.to_string(), source.path.clone());
            }
        }
    }
    let found = par_map(&checked, |c| match (&c.source, &c.runbook) {
        (Some(source), Some(runbook)) => crate::book::validate::validate(source, runbook, Some(&ids)),
        _ => Vec::new(),
    });
    for (c, found) in checked.iter_mut().zip(found) {
        c.diagnostics.extend(found);
        c.diagnostics.sort_by_key(|d| (d.line, d.col));
    }

    let all = problems.iter().map(|d| (d, None)).chain(
        checked
            .iter()
            .flat_map(|c| c.diagnostics.iter().map(|d| (d, c.source.as_ref()))),
    );
    let format = match (args.format, args.json) {
        (Some(f), _) => f,
        (None, true) => ValidateFormat::Json,
        (None, false) => ValidateFormat::Text,
    };
    let (mut errors, mut warnings) = (0, 0);
    let mut rendered = String::new();
    let mut listed = Vec::new();
    for (d, source) in all {
        if d.is_error() {
            errors += 1;
        } else {
            warnings += 1;
        }
        if format != ValidateFormat::Text {
            listed.push(d);
        } else {
            rendered.push_str(&d.render(source.map(|s| s.text.as_str())));
        }
    }
    rendered.push_str(&summary(files.len(), errors, warnings));
    let printed = match format {
        ValidateFormat::Text => None,
        ValidateFormat::Json => Some(serde_json::to_string_pretty(&listed)),
        ValidateFormat::Sarif => Some(serde_json::to_string_pretty(&crate::book::validate::sarif::log(
            &listed,
        ))),
    };
    if let Some(json) = printed {
        let json = json.map_err(|e| Error::runtime(format!("cannot write JSON: {e}")))?;
        crate::output::print(&format!("{json}\n"))?;
    }
    crate::stderr::ewrite!("{rendered}");
    Ok(if errors > 0 || (args.deny_warnings && warnings > 0) {
        exit::USAGE
    } else {
        exit::OK
    })
}

/// The files to check: files as given, directories as their `*.yaml` / `*.yml`.
/// A path that is neither becomes an error diagnostic, and the others are still checked.
fn expand(paths: &[PathBuf], problems: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        let shown = path.display().to_string();
        if path.is_dir() {
            match catalog::files_in(path) {
                Ok(found) if found.is_empty() => problems.push(
                    Diagnostic::warning(
                        &shown,
                        Pos::default(),
                        "no runbook files (*.yaml, *.yml) in this directory",
                    )
                    .with_help(
                        "runbook files are looked for directly in the directory, not in its subdirectories",
                    ),
                ),
                Ok(found) => files.extend(found),
                Err(e) => problems.push(Diagnostic::error(
                    &shown,
                    Pos::default(),
                    format!("cannot read the directory: {e}"),
                )),
            }
        } else if path.exists() {
            files.push(path.clone());
        } else {
            problems.push(
                Diagnostic::error(&shown, Pos::default(), "no such file or directory")
                    .with_help("give runbook files, or directories of them"),
            );
        }
    }
    files
}

use crate::book::catalog::is_inventory;

fn load_inventory(path: &Path) -> Checked {
    match Source::read(path) {
        Ok(source) => {
            let (_, diagnostics) = crate::inventory::check(&source);
            Checked {
                source: Some(source),
                runbook: None,
                diagnostics,
            }
        }
        Err(d) => Checked {
            source: None,
            runbook: None,
            diagnostics: vec![d],
        },
    }
}

fn load(path: &Path) -> Checked {
    let source = match Source::read(path) {
        Ok(source) => source,
        Err(d) => {
            return Checked {
                source: None,
                runbook: None,
                diagnostics: vec![d],
            };
        }
    };
    match crate::book::validate::parse(&source) {
        Ok(runbook) => Checked {
            source: Some(source),
            runbook: Some(runbook),
            diagnostics: Vec::new(),
        },
        Err(diagnostics) => Checked {
            source: Some(source),
            runbook: None,
            diagnostics,
        },
    }
}

/// `items.iter().map(f)` on every core: a catalog of a thousand files is parsed in parallel
/// (parsing dominates the time of `validate`). Results keep the order of `items`.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if threads < 2 || items.len() < 16 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            // A panic in a worker is a bug; re-raise it rather than hide files.
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Ids of the catalog directories, except the directories being validated (already loaded).
fn catalog_ids(config: &Config, skip: &BTreeSet<PathBuf>) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for dir in catalog::dirs(&config.catalog) {
        if dir.canonicalize().is_ok_and(|d| skip.contains(&d)) {
            continue;
        }
        for path in catalog::files_in(&dir).unwrap_or_default() {
            if let Ok(catalog::Entry {
                parsed: Ok(runbook), ..
            }) = catalog::Entry::load(&path)
            {
                ids.insert(runbook.id.value);
            }
        }
    }
    ids
}

/// `checked 3 files: 2 errors, 1 warning` or `checked 3 files: ok`.
fn summary(files: usize, errors: usize, warnings: usize) -> String {
    let mut parts = Vec::new();
    if errors > 0 {
        parts.push(plural(errors, "error"));
    }
    if warnings > 0 {
        parts.push(plural(warnings, "warning"));
    }
    let verdict = if parts.is_empty() {
        "ok".to_string()
    } else {
        parts.join(", ")
    };
    format!("checked {}: {verdict}\n", plural(files, "file"))
}
