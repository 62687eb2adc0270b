//! The values a shell completes that only the files know: runbook ids of the catalog, run ids
//! of the audit dir, and the step ids, roles and inputs of the runbook on the command line.
//!
//! clap_complete's engine calls these with the word being completed alone; the rest of the
//! command line (`--dir`, `--audit-dir`, the `RUNBOOK` given) is read from the arguments the
//! shell passed after `--` (`runbook -- runbook run --dir ./catalog se`), interpreted with the
//! same clap declaration, so an option's value is never taken for the runbook.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::engine::{CompletionCandidate, PathCompleter, ValueCompleter};

use super::{Cli, Global};
use crate::book::catalog;
use crate::book::runbook::{Runbook, StepKind};

/// The command line being completed, as far as it is typed.
#[derive(Debug, Default)]
struct Line {
    /// The subcommand path: `["run"]`, `["audit", "verify"]`.
    commands: Vec<String>,
    /// Option values by clap id (`dirs`, `audit_dir`, `start_at`, ...).
    values: HashMap<String, Vec<String>>,
    /// Positional words after the subcommand (the word being completed among them).
    positionals: Vec<String>,
}

impl Line {
    /// The words the shell passed: everything after the first `--`, the program's name first.
    fn from_env() -> Line {
        let args: Vec<String> = std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let words = match args.iter().position(|a| a == "--") {
            Some(i) => &args[i + 1..],
            None => &[][..],
        };
        Line::parse(words.get(1..).unwrap_or_default())
    }

    fn parse(words: &[String]) -> Line {
        let mut root = Cli::command();
        root.build();
        let mut line = Line::default();
        let mut cmd = &root;
        let mut words = words.iter();
        let mut rest_positional = false;
        while let Some(word) = words.next() {
            if rest_positional || word == "-" || !word.starts_with('-') {
                if !rest_positional
                    && line.positionals.is_empty()
                    && let Some(sub) = cmd.find_subcommand(word)
                {
                    line.commands.push(sub.get_name().to_string());
                    cmd = sub;
                    continue;
                }
                line.positionals.push(word.clone());
                continue;
            }
            if word == "--" {
                rest_positional = true;
                continue;
            }
            let (arg, inline) = match word.strip_prefix("--") {
                Some(long) => {
                    let (name, inline) = match long.split_once('=') {
                        Some((name, value)) => (name, Some(value.to_string())),
                        None => (long, None),
                    };
                    (cmd.get_arguments().find(|a| a.get_long() == Some(name)), inline)
                }
                None => {
                    let mut chars = word[1..].chars();
                    let short = chars.next();
                    let rest: String = chars.collect();
                    let inline = (!rest.is_empty()).then_some(rest);
                    (cmd.get_arguments().find(|a| a.get_short() == short), inline)
                }
            };
            let Some(arg) = arg else { continue };
            if !arg.get_action().takes_values() {
                continue;
            }
            let value = match inline {
                Some(value) => Some(value),
                None => words.next().cloned(),
            };
            if let Some(value) = value {
                line.values
                    .entry(arg.get_id().to_string())
                    .or_default()
                    .push(value);
            }
        }
        line
    }

    fn global(&self) -> Global {
        Global {
            dirs: self
                .values
                .get("dirs")
                .map(|d| d.iter().map(PathBuf::from).collect())
                .unwrap_or_default(),
            audit_dir: self
                .values
                .get("audit_dir")
                .and_then(|d| d.last())
                .map(PathBuf::from),
            audit_host: None,
        }
    }

    /// The runbook named on a `run`, `drill` or `show` line, read and parsed.
    fn runbook(&self) -> Option<Runbook> {
        let takes_runbook = matches!(
            self.commands.first().map(String::as_str),
            Some("run" | "drill" | "show")
        );
        if !takes_runbook {
            return None;
        }
        let path = catalog::resolve(&self.global().dirs, self.positionals.first()?).ok()?;
        crate::book::parse::Source::read(&path).ok()?.parse().ok()
    }
}

/// Candidates among `items` (value, description) that start with `current`.
fn matching(
    current: &OsStr,
    items: impl IntoIterator<Item = (String, Option<String>)>,
) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    items
        .into_iter()
        .filter(|(value, _)| value.starts_with(current.as_ref()))
        .map(|(value, help)| CompletionCandidate::new(value).help(help.map(Into::into)))
        .collect()
}

/// `RUNBOOK` of `run`, `drill`, `show`: the ids of the catalog (`--dir`, `RUNBOOK_PATH`,
/// `./runbooks`), with their titles; and runbook files when the word looks like a path or no
/// id fits.
pub(super) fn runbooks(current: &OsStr) -> Vec<CompletionCandidate> {
    let global = Line::from_env().global();
    // As `catalog::index` finds them (the first of an id wins), each file parsed once.
    let mut ids: Vec<(String, Option<String>)> = Vec::new();
    for dir in catalog::dirs(&global.dirs) {
        for path in catalog::files_in(&dir).unwrap_or_default() {
            if let Ok(catalog::Entry {
                parsed: Ok(runbook), ..
            }) = catalog::Entry::load(&path)
                && !ids.iter().any(|(id, _)| *id == runbook.id.value)
            {
                ids.push((runbook.id.value.clone(), Some(runbook.title.clone())));
            }
        }
    }
    ids.sort();
    let mut found = matching(current, ids);
    let text = current.to_string_lossy();
    if found.is_empty() || text.contains('/') || text.starts_with(['.', '~']) {
        found.extend(PathCompleter::any().filter(runbook_file_or_dir).complete(current));
    }
    found
}

fn runbook_file_or_dir(path: &Path) -> bool {
    path.is_dir() || matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// `RUN` of `resume`, `review`, `audit verify`: the run ids of the audit dir, newest first; and
/// audit files when the word looks like a path.
pub(super) fn runs(current: &OsStr) -> Vec<CompletionCandidate> {
    let dir = crate::audit::audit_dir(Line::from_env().global().audit_dir.as_deref());
    let mut ids: Vec<String> = std::fs::read_dir(&dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| crate::audit::is_run_file(name))
        .filter_map(|name| name.strip_suffix(".jsonl").map(str::to_string))
        .collect();
    // Run ids start with their UTC start time: newest first is reverse order.
    ids.sort_unstable_by(|a, b| b.cmp(a));
    let mut found = matching(current, ids.into_iter().map(|id| (id, None)));
    let text = current.to_string_lossy();
    if text.contains('/') || text.starts_with(['.', '~']) {
        found.extend(
            PathCompleter::any()
                .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "jsonl"))
                .complete(current),
        );
    }
    found
}

/// `RUN...` of `review`: run ids, and `last`.
pub(super) fn runs_or_last(current: &OsStr) -> Vec<CompletionCandidate> {
    let mut found = matching(
        current,
        [(
            "last".to_string(),
            Some("the newest run of the audit dir".to_string()),
        )],
    );
    found.extend(runs(current));
    found
}

/// `--start-at STEP`: the step ids of the runbook on the line, with their titles.
pub(super) fn steps(current: &OsStr) -> Vec<CompletionCandidate> {
    of_runbook(current, |runbook| {
        runbook
            .steps
            .iter()
            .map(|s| (s.id().to_string(), Some(s.title.clone())))
            .collect()
    })
}

/// `--answer STEP=VALUE`: the steps that can be answered (a typed confirmation, a decision, a
/// manual step, cleanup included) as `STEP=`; after the `=`, that step's answers.
pub(super) fn answers(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(runbook) = Line::from_env().runbook() else {
        return Vec::new();
    };
    let text = current.to_string_lossy();
    let all = runbook.steps.iter().chain(&runbook.cleanup);
    if let Some((id, _)) = text.split_once('=') {
        let Some(step) = runbook
            .steps
            .iter()
            .chain(&runbook.cleanup)
            .find(|s| s.id() == id)
        else {
            return Vec::new();
        };
        let values: Vec<(String, Option<String>)> = match step.kind() {
            Some(StepKind::Manual(_)) => ["done", "skip", "failed"]
                .into_iter()
                .map(|v| (format!("{id}={v}"), None))
                .collect(),
            Some(StepKind::Choose(options)) => options
                .iter()
                .map(|o| {
                    (
                        format!("{id}={}", o.label),
                        Some(format!("goes to {}", o.goto.value)),
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        return matching(current, values);
    }
    let answerable = all.filter(|s| {
        s.confirmation().is_some() || matches!(s.kind(), Some(StepKind::Manual(_) | StepKind::Choose(_)))
    });
    matching(
        current,
        answerable.map(|s| (format!("{}=", s.id()), Some(s.title.clone()))),
    )
}

/// `--target ROLE=DEST`: the roles of the runbook on the line, as `ROLE=`.
pub(super) fn roles(current: &OsStr) -> Vec<CompletionCandidate> {
    of_runbook(current, |r| {
        described(r.targets.iter().map(|(k, t)| (k, &t.value.description)))
    })
}

/// `--set NAME=VALUE`, `--set-from NAME=SOURCE`: the inputs of the runbook on the line.
pub(super) fn inputs(current: &OsStr) -> Vec<CompletionCandidate> {
    of_runbook(current, |r| {
        described(r.inputs.iter().map(|(k, i)| (k, &i.value.description)))
    })
}

/// Each name as `NAME=`, with its description.
fn described<'a>(
    names: impl Iterator<Item = (&'a String, &'a Option<String>)>,
) -> Vec<(String, Option<String>)> {
    names
        .map(|(name, about)| (format!("{name}="), about.clone()))
        .collect()
}

/// The `items` of the runbook on the line that match `current`; none without a runbook.
fn of_runbook(
    current: &OsStr,
    items: impl FnOnce(&Runbook) -> Vec<(String, Option<String>)>,
) -> Vec<CompletionCandidate> {
    match Line::from_env().runbook() {
        Some(runbook) => matching(current, items(&runbook)),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(words: &str) -> Line {
        Line::parse(&words.split(' ').map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn option_values_are_not_taken_for_the_runbook() {
        let l = line("run --dir ./catalog --target db=x --start-at restart db-restore --yes");
        assert_eq!(l.commands, ["run"]);
        assert_eq!(l.positionals, ["db-restore"]);
        assert_eq!(l.values["dirs"], ["./catalog"]);
        assert_eq!(l.values["start_at"], ["restart"]);
        let l = line("--dir=a audit verify --audit-dir b 2026");
        assert_eq!(l.commands, ["audit", "verify"]);
        assert_eq!(l.positionals, ["2026"]);
        assert_eq!(l.global().dirs, [PathBuf::from("a")]);
        assert_eq!(l.global().audit_dir, Some(PathBuf::from("b")));
        let l = line("review -oout.html last");
        assert_eq!(l.positionals, ["last"]);
        assert_eq!(l.values["output"], ["out.html"]);
    }
}
