//! The recap a resumed run begins with (issue 25, item 8): the operator who takes over reads
//! what already happened before the first question. It is drawn from the `Review` of the
//! trail, the one computation `runbook review` makes, so the two always agree; short enough to
//! read at 3 a.m.: one line per step visit, then what people left, with who.

use console::style;

use super::local_time::hhmm;
use crate::review::{Review, fmt_ms};
use crate::secrets::escape::value as esc;

/// The latest this many step visits, and as many entries, are shown; `runbook review` has all.
const SHOWN: usize = 12;

/// The recap's lines: `HH:MM  step  outcome  took` per step visit, then every decision, note
/// and deviation with who left it. `unknown`: the step the run stopped in, its outcome
/// unknown (its last visit says so, whatever the stopped command recorded). Empty when
/// nothing happened yet.
pub fn lines(r: &Review, unknown: Option<&str>) -> Vec<String> {
    let at = |ms: u64| r.at(ms).map_or_else(|| "--:--".to_string(), hhmm);
    let cut = unknown.and_then(|u| r.steps.iter().rposition(|v| v.step == u));
    let visits: Vec<[String; 4]> = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let outcome = if Some(i) == cut {
                "cut off: outcome unknown".to_string()
            } else if let Some(d) = v.decisions.last() {
                format!("decided \"{}\" → {}", esc(&d.label), esc(&d.goto))
            } else {
                match (v.outcome.as_deref(), v.exit) {
                    (Some(o @ "ok"), _) | (Some(o), None) => esc(o).into_owned(),
                    (Some(o), Some(code)) => format!("{} (exit {code})", esc(o)),
                    (None, _) => "not run".to_string(),
                }
            };
            [
                at(v.start_ms),
                esc(&v.step).into_owned(),
                outcome,
                fmt_ms(v.took_ms),
            ]
        })
        .collect();

    let mut left: Vec<(u64, String, String)> = Vec::new();
    for v in &r.steps {
        let step = esc(&v.step).into_owned();
        for n in &v.notes {
            left.push((
                n.at_ms,
                step.clone(),
                format!("note by {}: {}", esc(&n.operator), esc(&n.text)),
            ));
        }
        for d in &v.decisions {
            left.push((
                d.at_ms,
                step.clone(),
                format!(
                    "decision by {}: \"{}\" → {}",
                    esc(&d.operator),
                    esc(&d.label),
                    esc(&d.goto)
                ),
            ));
        }
    }
    for n in &r.notes {
        left.push((
            n.at_ms,
            String::new(),
            format!("note by {}: {}", esc(&n.operator), esc(&n.text)),
        ));
    }
    for d in &r.deviations {
        let detail = d
            .detail
            .as_deref()
            .map(|t| format!(" ({})", esc(t)))
            .unwrap_or_default();
        left.push((
            d.at_ms,
            esc(&d.step).into_owned(),
            format!("deviation by {}: {}{detail}", esc(&d.operator), esc(&d.kind)),
        ));
    }
    left.sort_by_key(|(at, _, _)| *at);

    if visits.is_empty() && left.is_empty() {
        return Vec::new();
    }
    let visits_hidden = visits.len().saturating_sub(SHOWN);
    let left_hidden = left.len().saturating_sub(SHOWN);
    let visits = &visits[visits_hidden..];
    let left = &left[left_hidden..];
    let step_width = visits
        .iter()
        .map(|v| v[1].chars().count())
        .chain(left.iter().map(|(_, s, _)| s.chars().count()))
        .max()
        .unwrap_or(0);
    let outcome_width = visits.iter().map(|v| v[2].chars().count()).max().unwrap_or(0);
    let earlier = |n: usize, what: &str| {
        format!(
            "    … {n} earlier {what} (`runbook review {}` has them all)",
            esc(&r.run)
        )
    };

    let operators: Vec<String> = r.operators.iter().map(|o| esc(o).into_owned()).collect();
    let mut out = vec![format!(
        "  {}",
        style(format!("What happened before ({}):", operators.join(" → "))).bold()
    )];
    if visits_hidden > 0 {
        out.push(earlier(visits_hidden, "step visits"));
    }
    for [time, step, outcome, took] in visits {
        out.push(format!(
            "    {time}  {step:<step_width$}  {outcome:<outcome_width$}  {took}"
        ));
    }
    if !left.is_empty() {
        out.push(format!("  {}", style("Decisions, notes and deviations:").bold()));
        if left_hidden > 0 {
            out.push(earlier(left_hidden, "entries"));
        }
        for (at_ms, step, text) in left {
            out.push(
                format!("    {}  {step:<step_width$}  {text}", at(*at_ms))
                    .trim_end()
                    .to_string(),
            );
        }
    }
    out
}
