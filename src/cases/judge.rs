//! A walk against what its case expects: the first divergence, named with why the walk went
//! where it went (which `when` matched what, which step failed and how, which answer chose).

use std::time::Duration;

use crate::book::runbook::{Runbook, StepKind};
use crate::engine::stubbed::Rehearsed;
use crate::events::{RunOutcome, StepOutcome};
use crate::listen::tap::Seen;

use super::check::{Expected, Prepared};

/// What a case's walk did, and where it went against its expectations.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    /// Empty when the case passes; else each expectation that failed, the first divergence
    /// first.
    pub failures: Vec<String>,
    /// The main runbook's steps, as entered.
    pub path: Vec<String>,
    /// Every step entered (`call-step/step` in sub-runs, the cleanup's too).
    pub visited: Vec<String>,
    /// Decisions taken: step id as entered, option's goto, label.
    pub decisions: Vec<(String, String, String)>,
    pub outcome: String,
    pub took: Duration,
}

pub(crate) fn judge(case: &Prepared, walked: &Rehearsed) -> Verdict {
    let seen = &walked.seen;
    let path: Vec<String> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Entered {
                step, cleanup: false, ..
            } if !step.contains('/') => Some(step.clone()),
            _ => None,
        })
        .collect();
    let visited: Vec<String> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Entered { step, .. } => Some(step.clone()),
            _ => None,
        })
        .collect();
    let decisions = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Decided {
                step, label, goto, ..
            } => Some((step.clone(), goto.clone(), label.clone())),
            _ => None,
        })
        .collect();
    let (outcome, ended) = match &walked.end {
        Ok(end) => (
            end.outcome.as_str().to_string(),
            ending(end.outcome, end.message.as_deref()),
        ),
        Err(e) => ("error".to_string(), format!("the walk stopped: {e}")),
    };
    let rto = case.main.runbook.rto.get().unwrap_or_default();
    let mut failures = Vec::new();
    let e: &Expected = &case.expect;
    let runbook = &case.main.runbook;
    if let Some(expected) = &e.path
        && let Some(why) = path_divergence(runbook, case, seen, expected, &path, &ended)
    {
        failures.push(why);
    }
    for id in &e.visits {
        if !visited.contains(id) {
            failures.push(format!(
                "expected a visit to `{id}`, never entered: the walk went {}; {ended}",
                arrows(&path)
            ));
        }
    }
    for id in &e.not_visits {
        if visited.contains(id) {
            let before = before(seen, id);
            let why = before
                .as_deref()
                .map(|b| format!(" after `{b}`{}", because(runbook, case, seen, b, id)))
                .unwrap_or_default();
            failures.push(format!("expected no visit to `{id}`, entered it{why}"));
        }
    }
    if let Some(expected) = &e.outcome
        && *expected != outcome
    {
        let at = path.last().map(|s| format!(" at `{s}`")).unwrap_or_default();
        failures.push(format!(
            "expected the outcome `{expected}`, the run ended `{outcome}`{at}: {ended}"
        ));
    }
    if let Some(within) = e.within_rto {
        let fmt = crate::duration::format;
        let is_within = walked.took <= rto;
        if within && !is_within {
            failures.push(format!(
                "expected to end within the {} RTO, the stubbed steps took {} ({} over)",
                fmt(rto),
                fmt(walked.took),
                fmt(walked.took - rto)
            ));
        } else if !within && is_within {
            failures.push(format!(
                "expected to go over the {} RTO, the stubbed steps took {}",
                fmt(rto),
                fmt(walked.took)
            ));
        }
    }
    Verdict {
        failures,
        path,
        visited,
        decisions,
        outcome,
        took: walked.took,
    }
}

fn ending(outcome: RunOutcome, message: Option<&str>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!("it ended `{}` ({m})", outcome.as_str()),
        _ => format!("it ended `{}`", outcome.as_str()),
    }
}

fn arrows(path: &[String]) -> String {
    if path.is_empty() {
        "nowhere".into()
    } else {
        path.join(" → ")
    }
}

/// The first place the main walk's steps part from `expected`.
fn path_divergence(
    runbook: &Runbook,
    case: &Prepared,
    seen: &[Seen],
    expected: &[String],
    path: &[String],
    ended: &str,
) -> Option<String> {
    let i = expected.iter().zip(path).take_while(|(e, a)| e == a).count();
    if i == expected.len() && i == path.len() {
        return None;
    }
    let took = path.get(i);
    let want = expected.get(i);
    if i == 0 {
        return Some(match (want, took) {
            (Some(w), Some(t)) => format!("expected the walk to start at `{w}`, it started at `{t}`"),
            (Some(w), None) => format!("expected the walk to start at `{w}`, it entered no step; {ended}"),
            _ => format!("expected an empty path, the walk went {}", arrows(path)),
        });
    }
    let prev = &path[i - 1];
    // The visit of `prev` the divergence follows: its i-th entry on the main path.
    let visit = path[..i].iter().filter(|s| *s == prev).count();
    Some(match (want, took) {
        (Some(w), Some(t)) => format!(
            "after `{prev}` expected `{w}`, took `{t}`{}",
            because_at(runbook, case, seen, prev, visit)
        ),
        (Some(w), None) => format!("after `{prev}` expected `{w}`, the walk went no further: {ended}"),
        (None, Some(t)) => format!(
            "after `{prev}` expected the walk to end, took `{t}`{}",
            because_at(runbook, case, seen, prev, visit)
        ),
        (None, None) => return None,
    })
}

/// The step entered just before the first entry of `id`.
fn before(seen: &[Seen], id: &str) -> Option<String> {
    let mut last = None;
    for s in seen {
        if let Seen::Entered { step, .. } = s {
            if step == id {
                return last;
            }
            last = Some(step.clone());
        }
    }
    None
}

/// Why the walk left `from` for `to` (the first time it entered `to` right after `from`).
fn because(runbook: &Runbook, case: &Prepared, seen: &[Seen], from: &str, _to: &str) -> String {
    because_at(runbook, case, seen, from, 1)
}

/// Why the walk left the `visit`-th entry of `from` for where it went next: the events between
/// that entry and the next step entered.
fn because_at(runbook: &Runbook, case: &Prepared, seen: &[Seen], from: &str, visit: usize) -> String {
    let mut count = 0;
    let mut start = None;
    for (i, s) in seen.iter().enumerate() {
        if let Seen::Entered { step, .. } = s
            && step == from
        {
            count += 1;
            if count == visit {
                start = Some(i);
                break;
            }
        }
    }
    let Some(start) = start else {
        return String::new();
    };
    // Up to the next step of the same walk (a sub-run's steps belong to its call step).
    let prefix = format!("{from}/");
    let slice: Vec<&Seen> = seen[start + 1..]
        .iter()
        .take_while(|s| !matches!(s, Seen::Entered { step, .. } if !step.starts_with(&prefix)))
        .collect();
    // A guard that tripped here and sent the walk where it went next.
    let went = seen[start + 1 + slice.len()..].first().and_then(|s| match s {
        Seen::Entered { step, .. } => Some(step.as_str()),
        _ => None,
    });
    for s in &slice {
        if let Seen::Tripped {
            guard,
            failures,
            reason,
            goto,
        } = s
            && went == Some(goto.as_str())
        {
            let why = reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
            return format!(
                ": guard `{guard}` tripped ({failures} failures in a row{why}), and the walk diverted to `{goto}`"
            );
        }
    }
    let local = from.rsplit('/').next().unwrap_or(from);
    let step = if from.contains('/') {
        None
    } else {
        runbook.step(local)
    };
    let answered = case
        .answers
        .iter()
        .find(|(s, _)| s == from)
        .map(|(_, a)| a.as_str());
    for s in &slice {
        if let Seen::Decided {
            step: id,
            label,
            goto,
            vars,
        } = s
            && id == from
        {
            if let Some(answer) = answered {
                return format!(": answered `{answer}` in `answers:` (option \"{label}\")");
            }
            let Some(StepKind::Choose(options)) = step.and_then(|s| s.kind()) else {
                return format!(": the decision took \"{label}\"");
            };
            let value = |var: &str| {
                vars.get(var)
                    .map(|v| format!("\"{}\"", shorten(v)))
                    .unwrap_or_else(|| "not set".into())
            };
            let taken = options
                .iter()
                .find(|o| o.label == *label || o.goto.value == *goto);
            return match taken.and_then(|o| o.when.as_ref()) {
                Some(when) => {
                    let var = &when.var.value;
                    match (&when.equals, &when.matches) {
                        (Some(eq), _) => format!(": `when` on `{var}` equals \"{eq}\""),
                        (None, Some(re)) => {
                            // The text the pattern matched, as the contract words it.
                            let matched = vars.get(var).and_then(|v| {
                                regex::Regex::new(&re.value)
                                    .ok()?
                                    .find(v)
                                    .map(|m| m.as_str().to_string())
                            });
                            match matched {
                                Some(m) => format!(": `when` on `{var}` matched \"{}\"", shorten(&m)),
                                None => format!(": `when` on `{var}` matched {}", value(var)),
                            }
                        }
                        _ => format!(": `when` on `{var}` held"),
                    }
                }
                None => {
                    let judged: Vec<String> = options
                        .iter()
                        .filter_map(|o| o.when.as_ref())
                        .map(|w| format!("`{}` is {}", w.var.value, value(&w.var.value)))
                        .collect();
                    if judged.is_empty() {
                        format!(": \"{label}\" has no `when`")
                    } else {
                        format!(
                            ": no `when` held ({}), so the fallback \"{label}\" was taken",
                            judged.join(", ")
                        )
                    }
                }
            };
        }
    }
    let finished: Vec<(&StepOutcome, &Option<i32>, &u32, &Option<String>)> = slice
        .iter()
        .filter_map(|s| match s {
            Seen::Finished {
                step,
                outcome,
                exit,
                attempt,
                reason,
            } if step == from => Some((outcome, exit, attempt, reason)),
            _ => None,
        })
        .collect();
    let Some((outcome, exit, _, reason)) = finished.last() else {
        return String::new();
    };
    let attempts = finished.len();
    let tries = if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    };
    let code = exit.map(|c| format!("exit {c}")).unwrap_or_default();
    let why = [code, reason.as_deref().unwrap_or_default().to_string()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" ({why})")
    };
    match outcome {
        StepOutcome::Ok => format!(": `{from}` succeeded{tries}{why}"),
        StepOutcome::Skipped => format!(": `{from}` was skipped{why}"),
        other => {
            let follow = step
                .and_then(|s| s.on_failure.as_ref())
                .map(|f| format!(", and its `on_failure` goes to `{}`", f.value))
                .unwrap_or_default();
            format!(
                ": `{from}` {}{tries}{why}{follow}",
                match other {
                    StepOutcome::TimedOut => "timed out",
                    _ => "failed",
                }
            )
        }
    }
}

/// A value as a line of a message: one line, at most 60 characters.
fn shorten(text: &str) -> String {
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let escaped = crate::secrets::escape::value(&one).replace('"', "\\\"");
    if escaped.chars().count() > 60 {
        format!("{}…", escaped.chars().take(59).collect::<String>())
    } else {
        escaped
    }
}
