//! A case's `guards:` checked against its runbook: each is a guard of the main runbook, says
//! from which step its check fails (a step of the walk, not of the cleanup, which is not
//! guarded), and answers its divert offer only when someone is asked.

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::book::runbook::Located;
use crate::diagnostic::{did_you_mean, ticked};
use crate::engine::executor::guarding::script::GuardStub;
use crate::plan::Loaded;

use super::super::file::GuardCase;
use super::{Checker, find_step};

/// The answers a divert offer takes.
const ANSWERS: [&str; 2] = ["divert", "go-on"];

/// The guards' stubs, and the divert answers by guard.
pub(super) fn check(
    c: &mut Checker<'_>,
    main: &Loaded,
    called: &HashMap<String, Arc<Loaded>>,
    guards: &IndexMap<Located<String>, Located<GuardCase>>,
    unattended: bool,
) -> (Vec<GuardStub>, HashMap<String, bool>) {
    let runbook = &main.runbook;
    let mut stubs = Vec::new();
    let mut divert = HashMap::new();
    for (key, stub) in guards {
        let id = &key.value;
        let width = id.chars().count().max(1);
        if !runbook.guards.iter().any(|g| g.id.value == *id) {
            let ids = runbook.guards.iter().map(|g| g.id.value.as_str());
            let help = if runbook.guards.is_empty() {
                format!("`{}` declares no `guards:`", runbook.id())
            } else {
                did_you_mean(id, ids.clone()).unwrap_or_else(|| format!("its guards: {}", ticked(ids)))
            };
            c.at(
                key,
                width,
                format!("`{}` has no guard `{id}`", runbook.id()),
                Some(help),
            );
            continue;
        }
        let step =
            |c: &mut Checker<'_>, at: &Located<String>, what: &str| named_step(c, main, called, id, at, what);
        let case = &stub.value;
        let mut ok = match &case.fails_from {
            Some(from) => step(c, from, "fails_from"),
            None => {
                c.at(
                    key,
                    width,
                    format!("guard `{id}`: from which step does its check fail?"),
                    Some("say `fails_from: STEP` (a stubbed guard that always passes is no stub)".into()),
                );
                false
            }
        };
        if let Some(back) = &case.recovers_from {
            ok &= step(c, back, "recovers_from");
            if case
                .fails_from
                .as_ref()
                .is_some_and(|from| back.value == from.value)
            {
                c.at(
                    back,
                    back.value.chars().count().max(1),
                    format!(
                        "guard `{id}`: it fails and recovers from the same step `{}`",
                        back.value
                    ),
                    Some("name the later step from which its check passes again".into()),
                );
                ok = false;
            }
        }
        if let Some(answer) = &case.answer {
            let word = answer.value.as_str();
            if unattended {
                c.at(
                    answer,
                    word.chars().count().max(1),
                    format!("guard `{id}`: nobody is asked in an unattended walk: a trip diverts at once"),
                    Some("drop `answer`, or drop `unattended: true` to walk as at a terminal".into()),
                );
                ok = false;
            } else if !ANSWERS.contains(&word) {
                let help = did_you_mean(word, ANSWERS).unwrap_or_else(|| "write `divert` or `go-on`".into());
                c.at(
                    answer,
                    word.chars().count().max(1),
                    format!("guard `{id}`: `{word}` answers no divert offer"),
                    Some(help),
                );
                ok = false;
            } else {
                divert.insert(id.clone(), word == "divert");
            }
        }
        if let Some(from) = case.fails_from.as_ref().filter(|_| ok) {
            stubs.push(GuardStub {
                guard: id.clone(),
                fails_from: from.value.clone(),
                recovers_from: case.recovers_from.as_ref().map(|r| r.value.clone()),
            });
        }
    }
    (stubs, divert)
}

/// Whether `at` names a step the walk enters before its end (located problem if not).
fn named_step(
    c: &mut Checker<'_>,
    main: &Loaded,
    called: &HashMap<String, Arc<Loaded>>,
    guard: &str,
    at: &Located<String>,
    what: &str,
) -> bool {
    let name = &at.value;
    let width = name.chars().count().max(1);
    match find_step(main, called, name) {
        Err((why, help)) => {
            c.at(at, width, format!("guard `{guard}`: {what}: {why}"), help);
            false
        }
        Ok(_) if !name.contains('/') && main.runbook.step(name).is_none() => {
            c.at(
                at,
                width,
                format!(
                    "guard `{guard}`: {what}: `{name}` is a cleanup step, and the cleanup is not guarded"
                ),
                Some("name a step the walk enters before its end".into()),
            );
            false
        }
        Ok(_) => true,
    }
}
