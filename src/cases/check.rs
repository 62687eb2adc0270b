//! A case checked against its runbook before anything is walked: every step it names exists
//! and is of a kind that can take what the case gives it, every input and answer fits, every
//! duration parses. All problems at once, each at its `file:line:col`, as `validate` reports
//! a runbook's.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::book::parse::Source;
use crate::book::runbook::{Located, Runbook, Step, StepKind};
use crate::diagnostic::{Diagnostic, Pos, did_you_mean};
use crate::plan::Loaded;
use crate::transport::{DEFAULT_TOOK, Reply};
use crate::vars::Vars;

use super::file::{Case, Stubbed};
use super::library::Library;
use crate::engine::executor::guarding::script::GuardStub;

mod guards;

/// What the walk must do, checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expected {
    pub path: Option<Vec<String>>,
    pub visits: Vec<String>,
    pub not_visits: Vec<String>,
    pub outcome: Option<String>,
    pub within_rto: Option<bool>,
}

/// A case ready to walk.
pub(crate) struct Prepared {
    pub file: String,
    pub name: String,
    pub main: Arc<Loaded>,
    /// Every runbook reachable through `call`, by id.
    pub called: HashMap<String, Arc<Loaded>>,
    pub answers: Vec<(String, String)>,
    pub vars: Vars,
    pub replies: HashMap<String, Vec<Reply>>,
    /// Stubbed guards, and the answers to their divert offers by guard (unattended: none).
    pub guards: Vec<GuardStub>,
    pub unattended: bool,
    pub divert: HashMap<String, bool>,
    pub expect: Expected,
}

/// The words a manual step's stub (or answer) may say.
const REPORTS: [&str; 3] = ["done", "skip", "failed"];
/// The outcomes a case may expect.
const OUTCOMES: [&str; 4] = ["resolved", "escalated", "failed", "aborted"];

struct Checker<'a> {
    file: &'a str,
    problems: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn at<T>(&mut self, located: &Located<T>, width: usize, message: String, help: Option<String>) {
        let mut d = Diagnostic::error(self.file, Pos::of(located), message).with_width(width);
        if let Some(help) = help {
            d = d.with_help(help);
        }
        self.problems.push(d);
    }
}

/// Checks `case` (read from `source`) and resolves its runbook through `library`.
pub(crate) fn prepare(
    library: &mut Library,
    source: &Source,
    case: Case,
) -> Result<Prepared, Vec<Diagnostic>> {
    let file = source.path.as_str();
    let mut c = Checker {
        file,
        problems: Vec::new(),
    };
    let case_path = Path::new(file);
    let dirs = library.dirs_for(case_path);
    let index = library.index(&dirs);
    let wanted = &case.runbook.value;
    let width = wanted.chars().count();
    let as_path = wanted.contains('/') || wanted.ends_with(".yaml") || wanted.ends_with(".yml");
    let path = if as_path {
        let p = case_path.parent().unwrap_or(Path::new(".")).join(wanted);
        p.is_file().then_some(p)
    } else {
        index.get(wanted).cloned()
    };
    let searched = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let Some(path) = path else {
        let help = did_you_mean(wanted, index.keys().map(String::as_str))
            .unwrap_or_else(|| "give a runbook id of the catalog, or a path relative to this file".into());
        let what = if as_path {
            format!("no runbook file `{wanted}` (relative to this file)")
        } else {
            format!("no runbook `{wanted}` in {searched}")
        };
        c.at(&case.runbook, width, what, Some(help));
        return Err(c.problems);
    };
    let main = match library.load(&path, &index) {
        Ok(main) => main,
        Err(mut errors) => {
            c.at(
                &case.runbook,
                width,
                format!("runbook `{wanted}` ({}) does not validate", path.display()),
                Some(format!("fix it first: `runbook validate {}`", path.display())),
            );
            errors.append(&mut c.problems);
            return Err(errors);
        }
    };
    // Every runbook the walk may call, from the same catalog.
    let mut called: HashMap<String, Arc<Loaded>> = HashMap::new();
    let mut queue: Vec<String> = crate::plan::calls_of(&main.runbook);
    while let Some(id) = queue.pop() {
        if called.contains_key(&id) || id == main.runbook.id() {
            continue;
        }
        let Some(p) = index.get(&id).cloned() else {
            c.at(
                &case.runbook,
                width,
                format!("`{wanted}` calls `{id}`, which is in none of {searched}"),
                None,
            );
            return Err(c.problems);
        };
        match library.load(&p, &index) {
            Ok(l) => {
                queue.extend(crate::plan::calls_of(&l.runbook));
                called.insert(id, l);
            }
            Err(mut errors) => {
                c.at(
                    &case.runbook,
                    width,
                    format!(
                        "`{wanted}` calls `{id}` ({}), which does not validate",
                        p.display()
                    ),
                    Some(format!("fix it first: `runbook validate {}`", p.display())),
                );
                errors.append(&mut c.problems);
                return Err(errors);
            }
        }
    }
    let runbook = &main.runbook;

    // Inputs: the case's, else the defaults; sources (`from:`) are never read here.
    let mut vars = Vars::default();
    for (key, _) in &case.inputs {
        if !runbook.inputs.contains_key(&key.value) {
            let help = did_you_mean(&key.value, runbook.inputs.keys().map(String::as_str));
            c.at(
                key,
                key.value.chars().count(),
                format!("`{}` has no input `{}`", runbook.id(), key.value),
                help,
            );
        }
    }
    let mut missing = Vec::new();
    for (name, input) in &runbook.inputs {
        let given = case
            .inputs
            .iter()
            .find(|(k, _)| k.value == *name)
            .map(|(_, v)| v.0.clone());
        match given.or_else(|| input.value.default.clone()) {
            Some(value) => vars.set(name, value, input.value.secret),
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        c.at(
            &case.runbook,
            width,
            format!(
                "`{}` needs inputs the case does not give: {}",
                runbook.id(),
                missing.join(", ")
            ),
            Some(format!(
                "add them under `inputs:` (e.g. `inputs: {{{}: ...}}`); a test never reads `from:` sources",
                missing[0]
            )),
        );
    }
    vars.set("run_id", "test", false);
    vars.set("operator", "runbook-test", false);
    let mode = if runbook.drill.is_some() {
        "drill"
    } else {
        "incident"
    };
    vars.set("mode", mode, false);

    // Stubs, by step.
    let mut replies: HashMap<String, Vec<Reply>> = HashMap::new();
    let mut answers: Vec<(String, String)> = Vec::new();
    for (key, stub) in &case.steps {
        let key_width = key.value.chars().count();
        let step = match find_step(&main, &called, &key.value) {
            Ok(step) => step,
            Err((why, help)) => {
                c.at(key, key_width, why, help);
                continue;
            }
        };
        let id = &key.value;
        match (step.kind(), &stub.value) {
            (Some(StepKind::Run(_)), Stubbed::Attempts(attempts)) => {
                if attempts.is_empty() {
                    c.at(stub, 1, format!("step `{id}`: an empty list of attempts"), Some("give at least one `{exit: N}`".into()));
                    continue;
                }
                let mut list = Vec::new();
                for a in attempts {
                    let took = match &a.took {
                        None => DEFAULT_TOOK,
                        Some(t) => match crate::duration::parse(&t.0.value) {
                            Ok(d) => d,
                            Err(e) => {
                                c.at(&t.0, t.0.value.chars().count(), format!("step `{id}`: took: {e}"), Some("write a duration with its unit: `2s`, `1m30s`".into()));
                                continue;
                            }
                        },
                    };
                    list.push(Reply {
                        exit: a.exit,
                        stdout: a.stdout.clone(),
                        stderr: a.stderr.clone(),
                        took,
                    });
                }
                replies.insert(id.clone(), list);
            }
            (Some(StepKind::Run(_)), Stubbed::Report(word)) => c.at(
                stub,
                word.chars().count().max(1),
                format!("step `{id}` runs a command: `{word}` is what a manual step reports"),
                Some("give its result: `{exit: 0, stdout: \"...\", took: 2s}`, or a list of them, one per attempt".into()),
            ),
            (Some(StepKind::Manual(_)), Stubbed::Report(word)) => {
                if REPORTS.contains(&word.as_str()) {
                    answers.push((id.clone(), word.clone()));
                } else {
                    let help = did_you_mean(word, REPORTS).unwrap_or_else(|| "write `done`, `skip` or `failed`".into());
                    c.at(stub, word.chars().count().max(1), format!("manual step `{id}`: `{word}` is not a report"), Some(help));
                }
            }
            (Some(StepKind::Manual(_)), Stubbed::Attempts(_)) => c.at(
                stub,
                1,
                format!("step `{id}` is a manual step: nothing runs"),
                Some("say what the operator reports: `done`, `skip` or `failed`".into()),
            ),
            (Some(StepKind::Choose(_)), _) => c.at(
                key,
                key_width,
                format!("step `{id}` is a decision: nothing runs"),
                Some(format!("its `when`s decide from the captures; to force an option, answer it: `answers: {{{id}: LABEL}}`")),
            ),
            (Some(StepKind::Call(target)), _) => c.at(
                key,
                key_width,
                format!("step `{id}` calls `{target}`: nothing of its own runs"),
                Some(format!("stub the called runbook's steps as `{id}/STEP`")),
            ),
            (Some(StepKind::End(_)) | None, _) => c.at(
                key,
                key_width,
                format!("step `{id}` ends the run: nothing to stub"),
                None,
            ),
        }
    }
    for (key, value) in &case.answers {
        let key_width = key.value.chars().count();
        let id = &key.value;
        let step = match find_step(&main, &called, id) {
            Ok(step) => step,
            Err((why, help)) => {
                c.at(key, key_width, why, help);
                continue;
            }
        };
        let answer = &value.value.0;
        let hand_off = crate::prompt::is_hand_off(answer);
        match step.kind() {
            Some(StepKind::Choose(options)) if !hand_off => {
                if !options
                    .iter()
                    .any(|o| o.label == *answer || o.goto.value == *answer)
                {
                    let names: Vec<&str> = options.iter().map(|o| o.goto.value.as_str()).collect();
                    let help = did_you_mean(
                        answer,
                        options
                            .iter()
                            .map(|o| o.label.as_str())
                            .chain(names.iter().copied()),
                    )
                    .unwrap_or_else(|| format!("its options go to {}", crate::diagnostic::ticked(&names)));
                    c.at(
                        value,
                        answer.chars().count().max(1),
                        format!("decision `{id}` has no option `{answer}`"),
                        Some(help),
                    );
                }
            }
            Some(StepKind::Manual(_)) if !hand_off && !crate::prompt::is_report_answer(answer) => {
                c.at(
                    value,
                    answer.chars().count().max(1),
                    format!("manual step `{id}`: `{answer}` is not a report"),
                    Some("write `done`, `skip` or `failed`".into()),
                );
            }
            _ if step.confirmation().is_some() || hand_off => {}
            Some(StepKind::Choose(_) | StepKind::Manual(_)) => {}
            _ => c.at(
                key,
                key_width,
                format!("step `{id}` asks nothing: an answer has nothing to answer"),
                Some("answers are for decisions, manual steps and typed confirmations".into()),
            ),
        }
        if case.steps.keys().any(|k| k.value == *id) {
            c.at(
                key,
                key_width,
                format!("step `{id}` is given both under `steps:` and `answers:`"),
                Some("keep one".into()),
            );
        }
        answers.push((id.clone(), answer.clone()));
    }

    let unattended = case.unattended.as_ref().is_some_and(|u| u.value);
    let (guards, divert) = guards::check(&mut c, &main, &called, &case.guards, unattended);

    // Expectations.
    let e = &case.expect;
    let mut expect = Expected {
        within_rto: e.within_rto.as_ref().map(|w| w.value),
        ..Default::default()
    };
    if let Some(path) = &e.path {
        if path.value.is_empty() {
            c.at(
                path,
                1,
                "`path` is empty".into(),
                Some("list the steps the walk enters, first to last".into()),
            );
        }
        for id in &path.value {
            if runbook.step(&id.value).is_none() {
                let help = did_you_mean(&id.value, runbook.steps.iter().map(|s| s.id()));
                let why = if id.value.contains('/') {
                    format!(
                        "`path` lists the steps of `{}` itself; a sub-run's steps go under `visits`",
                        runbook.id()
                    )
                } else {
                    format!("`{}` has no step `{}`", runbook.id(), id.value)
                };
                c.at(id, id.value.chars().count(), why, help);
            }
        }
        expect.path = Some(path.value.iter().map(|i| i.value.clone()).collect());
    }
    for (list, out) in [
        (&e.visits, &mut expect.visits),
        (&e.not_visits, &mut expect.not_visits),
    ] {
        for id in list {
            if let Err((why, help)) = find_step(&main, &called, &id.value) {
                c.at(id, id.value.chars().count(), why, help);
            }
            out.push(id.value.clone());
        }
    }
    if let Some(outcome) = &e.outcome {
        if !OUTCOMES.contains(&outcome.value.as_str()) {
            let help = did_you_mean(&outcome.value, OUTCOMES)
                .unwrap_or_else(|| "one of `resolved`, `escalated`, `failed`, `aborted`".into());
            c.at(
                outcome,
                outcome.value.chars().count().max(1),
                format!("`{}` is not an outcome", outcome.value),
                Some(help),
            );
        }
        expect.outcome = Some(outcome.value.clone());
    }
    if e.path.is_none()
        && e.visits.is_empty()
        && e.not_visits.is_empty()
        && e.outcome.is_none()
        && e.within_rto.is_none()
    {
        c.at(
            &case.runbook,
            width,
            "the case expects nothing: it cannot fail".into(),
            Some("add `expect: {path: [...]}`, `visits`, `not_visits`, `outcome` or `within_rto`".into()),
        );
    }
    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    let name = case.name.clone().unwrap_or_else(|| {
        case_path
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .trim_end_matches(".yaml")
                    .trim_end_matches(".yml")
                    .trim_end_matches(".test")
                    .to_string()
            })
            .unwrap_or_default()
    });
    Ok(Prepared {
        file: file.to_string(),
        name,
        main,
        called,
        answers,
        vars,
        replies,
        guards,
        unattended,
        divert,
        expect,
    })
}

/// The step `key` names: `STEP` of the main runbook (or of its cleanup), or `CALL-STEP/STEP`
/// of the runbook that call step runs (nested as deep as the calls go).
pub(crate) fn find_step<'a>(
    main: &'a Loaded,
    called: &'a HashMap<String, Arc<Loaded>>,
    key: &str,
) -> Result<&'a Step, (String, Option<String>)> {
    let mut runbook = &main.runbook;
    let segments: Vec<&str> = key.split('/').collect();
    let (last, calls) = segments.split_last().unwrap_or((&"", &[]));
    for call in calls {
        let step = runbook.step(call).ok_or_else(|| unknown(runbook, call, false))?;
        let Some(StepKind::Call(target)) = step.kind() else {
            return Err((
                format!(
                    "step `{call}` of `{}` is no `call`: `{key}` names nothing",
                    runbook.id()
                ),
                Some("`CALL-STEP/STEP` names a step of the runbook a call step runs".into()),
            ));
        };
        runbook = called
            .get(target)
            .map(|l| &l.runbook)
            .ok_or_else(|| (format!("`{target}` is not loaded"), None))?;
    }
    let top = calls.is_empty();
    runbook
        .step(last)
        .or_else(|| {
            top.then(|| runbook.cleanup.iter().find(|s| s.id() == *last))
                .flatten()
        })
        .ok_or_else(|| unknown(runbook, last, top))
}

fn unknown(runbook: &Runbook, id: &str, cleanup: bool) -> (String, Option<String>) {
    let ids = runbook
        .steps
        .iter()
        .chain(runbook.cleanup.iter().filter(|_| cleanup))
        .map(|s| s.id());
    (
        format!("`{}` has no step `{id}`", runbook.id()),
        did_you_mean(id, ids),
    )
}
