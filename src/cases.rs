//! `runbook test` (design §21): test cases (`*.test.yaml`) walk a runbook's graph with the
//! real engine over a stub transport, so that a branch nobody took since it was written, a
//! `when` that no longer matches, or an RTO a new step broke, fails in CI rather than at 3 a.m.
//!
//! `file` reads a case, `library` finds cases and their runbooks, `check` checks a case
//! against its runbook (every problem located, exit 2), `engine::stubbed` walks it, `judge`
//! names the first divergence, `coverage` what no case reaches, `report` prints.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::diagnostic::{Diagnostic, plural};
use crate::engine::stubbed::{Rehearsal, rehearse};
use crate::error::{Error, exit};
use crate::prompt::Answers;

mod check;
mod coverage;
mod file;
mod judge;
pub(crate) mod library;
mod report;

/// What the user asked for.
pub(crate) struct Options {
    /// Case files or directories; the catalog when empty.
    pub paths: Vec<PathBuf>,
    pub junit: bool,
    pub coverage: bool,
}

/// Finds, checks, walks and judges the cases; prints the report. Exit 0 when every case
/// passes, 1 when one fails, 2 when a case file is invalid (nothing is walked then).
pub(crate) fn run(catalog: &[PathBuf], options: &Options) -> Result<u8, Error> {
    let started = Instant::now();
    let paths = if options.paths.is_empty() {
        catalog.to_vec()
    } else {
        options.paths.clone()
    };
    let (files, searched) = library::find(&paths)?;
    if files.is_empty() {
        let where_ = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::usage(format!(
            "no test cases in {where_}: cases are *.test.yaml files beside the runbooks or under tests/ (docs/testing.md)"
        )));
    }
    let mut library = library::Library::new(catalog);
    let mut problems: Vec<Diagnostic> = Vec::new();
    let mut prepared = Vec::new();
    for path in &files {
        match file::read(path) {
            Err(d) => problems.push(d),
            Ok((source, case)) => match check::prepare(&mut library, &source, case) {
                Ok(p) => prepared.push(p),
                Err(ds) => problems.extend(ds),
            },
        }
    }
    if !problems.is_empty() {
        let mut invalid: Vec<&str> = problems.iter().map(|d| d.file.as_str()).collect();
        invalid.sort_unstable();
        invalid.dedup();
        for d in &problems {
            // The case's file, or the runbook's when the runbook does not validate.
            let text = std::fs::read_to_string(&d.file).ok();
            crate::stderr::ewrite!("{}", d.render(text.as_deref()));
        }
        crate::stderr::ewriteln!(
            "runbook test: {} in {}: no case was run",
            plural(problems.len(), "problem"),
            plural(invalid.len(), "file")
        );
        return Ok(exit::USAGE);
    }
    // The runbooks of the directories searched count for coverage, tested or not.
    if options.coverage {
        for dir in &searched {
            let dirs = vec![dir.clone()];
            let index = library.index(&dirs);
            for path in crate::book::catalog::files_in(dir).unwrap_or_default() {
                if !library::is_case(&path) && !crate::book::catalog::is_inventory(&path) {
                    let _ = library.load(&path, &index);
                }
            }
        }
    }
    let results = walk_all(&prepared)?;
    let wall = started.elapsed();
    let ran: Vec<report::Ran<'_>> = prepared
        .iter()
        .zip(&results)
        .map(|(case, (verdict, wall))| report::Ran {
            case,
            verdict,
            wall: *wall,
        })
        .collect();
    let unreached = options.coverage.then(|| {
        let walks: Vec<(&check::Prepared, &judge::Verdict)> =
            ran.iter().map(|r| (r.case, r.verdict)).collect();
        coverage::unreached(&library.runbooks(), &walks)
    });
    if options.junit {
        let xml = report::junit(&ran, wall).map_err(Error::runtime)?;
        crate::output::print(&xml)?;
        if let Some(unreached) = &unreached {
            crate::stderr::ewrite!("{}", report::coverage(unreached));
        }
    } else {
        let mut text = report::text(&ran, wall);
        if let Some(unreached) = &unreached {
            text.push_str(&report::coverage(unreached));
        }
        crate::output::print(&text)?;
    }
    let failed = ran.iter().any(|r| !r.verdict.failures.is_empty());
    Ok(if failed { exit::RUNTIME } else { exit::OK })
}

/// Walks every case, on as many threads as there are cores (each its own paused runtime).
/// A case's verdict and how long its walk took for real.
type Walked = Result<(judge::Verdict, Duration), Error>;

fn walk_all(prepared: &[check::Prepared]) -> Result<Vec<(judge::Verdict, Duration)>, Error> {
    // One plan per runbook, shared by its cases: a runbook is not copied for each of them.
    let mut by_file: std::collections::HashMap<PathBuf, std::sync::Arc<crate::plan::Plan>> =
        Default::default();
    let plans: Vec<std::sync::Arc<crate::plan::Plan>> = prepared
        .iter()
        .map(|case| {
            by_file
                .entry(case.main.path.clone())
                .or_insert_with(|| {
                    std::sync::Arc::new(crate::plan::Plan::unbound(
                        (*case.main).clone(),
                        case.called
                            .iter()
                            .map(|(id, l)| (id.clone(), (**l).clone()))
                            .collect(),
                    ))
                })
                .clone()
        })
        .collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(prepared.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Walked>>> =
        prepared.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let runtime = crate::engine::stubbed::runtime();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(case) = prepared.get(i) else { break };
                    let result = match &runtime {
                        Ok(runtime) => walk_one(runtime, case, plans[i].clone()),
                        Err(e) => Err(Error::runtime(e.to_string())),
                    };
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(Error::runtime("a test case's walk did not finish")))
        })
        .collect()
}

fn walk_one(
    runtime: &tokio::runtime::Runtime,
    case: &check::Prepared,
    plan: std::sync::Arc<crate::plan::Plan>,
) -> Result<(judge::Verdict, Duration), Error> {
    let started = Instant::now();
    let walked = rehearse(
        runtime,
        Rehearsal {
            plan,
            answers: Answers::new(case.answers.iter().cloned()),
            vars: case.vars.clone(),
            replies: case.replies.clone(),
            guards: case.guards.clone(),
            unattended: case.unattended,
            divert: case.divert.clone(),
        },
    );
    Ok((judge::judge(case, &walked), started.elapsed()))
}
