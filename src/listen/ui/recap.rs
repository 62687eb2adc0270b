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
pub(crate) fn lines(r: &Review, unknown: Option<&str>) -> Vec<String> {
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
        let detail = escaped(d.detail.as_deref(), |t| format!(" ({t})"));
        left.push((
            d.at_ms,
            esc(&d.step).into_owned(),
            format!("deviation by {}: {}{detail}", esc(&d.operator), esc(&d.kind)),
        ));
    }
    // The note of a hand-off is what the colleague who takes over reads first.
    for h in &r.hand_offs {
        let note = escaped(h.note.as_deref(), |n| format!(": {n}"));
        let step = h.step.as_deref().map(|s| esc(s).into_owned()).unwrap_or_default();
        left.push((h.at_ms, step, format!("handed off by {}{note}", esc(&h.operator))));
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

/// An optional text escaped and put in its place, or nothing.
fn escaped(text: Option<&str>, place: impl Fn(&str) -> String) -> String {
    text.map(|t| place(&esc(t))).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::review::{Integrity, from_events};

    fn event(seq: u64, event: &str, step: &str, extra: Value) -> Value {
        let mut e = json!({
            "v": 1, "seq": seq, "ts": format!("2026-11-22T03:{:02}:00.000Z", seq % 60),
            "mono_ms": seq * 60_000, "run": "20261122T030000Z-book-beef", "event": event,
            "operator": "alice",
        });
        if !step.is_empty() {
            e["step"] = json!(step);
        }
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    }

    /// A long run: the latest visits, how many more `runbook review` has; and whatever the
    /// trail holds (a note, an operator's name) reaches the terminal escaped, never as a
    /// sequence it would obey.
    #[test]
    fn the_latest_visits_are_shown_and_trail_text_is_escaped() {
        let mut events = vec![event(
            0,
            "run started",
            "",
            json!({"runbook": "book", "rto_ms": 600_000}),
        )];
        for i in 0..15 {
            let step = format!("s{i}");
            let seq = events.len() as u64;
            events.push(event(seq, "step presented", &step, json!({"kind": "run"})));
            events.push(event(seq + 1, "step started", &step, json!({"attempt": 1})));
            events.push(event(
                seq + 2,
                "step finished",
                &step,
                json!({"attempt": 1, "outcome": "ok", "exit": 0}),
            ));
        }
        let seq = events.len() as u64;
        let mut note = event(
            seq,
            "note",
            "s14",
            json!({"text": "clip \u{1b}]52;c;cHduZWQ=\u{7} board"}),
        );
        note["operator"] = json!("mal\u{1b}[2Jlory");
        events.push(note);
        let review = from_events(events, "t.jsonl", Integrity::Incomplete { torn_tail: false });
        let lines = lines(&review, Some("s14"));
        assert!(
            lines
                .iter()
                .all(|l| !l.contains('\u{1b}') && !l.contains('\u{7}')),
            "{lines:#?}"
        );
        assert_eq!(
            lines[1],
            "    … 3 earlier step visits (`runbook review 20261122T030000Z-book-beef` has them all)"
        );
        let visits: Vec<&String> = lines.iter().filter(|l| l.contains("  s")).collect();
        assert_eq!(visits.len(), 12 + 1, "12 visits and the note: {lines:#?}");
        assert!(visits[0].contains("  s3   ok  "), "{lines:#?}");
        assert!(
            visits[11].contains("  s14  cut off: outcome unknown  "),
            "{lines:#?}"
        );
        assert!(
            lines
                .last()
                .unwrap()
                .ends_with("s14  note by mal\\x1b[2Jlory: clip \\x1b]52;c;cHduZWQ=\\x07 board"),
            "{lines:#?}"
        );
    }
}
