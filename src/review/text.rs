//! The terminal review: aligned plain text, readable in a log and over `less`.

use std::borrow::Borrow;

use super::{Comparison, Review, StepVisit, fmt_clock, fmt_ms, fmt_signed, fmt_time, share};

/// Aligns columns: each cell padded to its column's widest, two spaces apart.
pub(crate) fn table<S: Borrow<str>>(header: &[S], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.borrow().chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::from(" ");
        for (i, cell) in cells.iter().enumerate() {
            out.push(' ');
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 1));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(Borrow::borrow).collect());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// The columns of the steps table, shared by text, Markdown and HTML: the wall-clock time a
/// step was presented (what the operator's logs and dashboards show) beside its offset on the
/// RTO clock.
pub(crate) fn step_cells(r: &Review, index: usize, v: &StepVisit) -> Vec<String> {
    let over = match v.over_ms {
        Some(o) if o > 0 => format!("{} OVER", fmt_signed(o)),
        Some(o) => fmt_signed(o),
        None => "-".into(),
    };
    vec![
        (index + 1).to_string(),
        v.step.clone(),
        fmt_clock(r, v.start_ms),
        format!("+{}", fmt_ms(v.start_ms)),
        fmt_ms(v.wait_ms),
        fmt_ms(v.exec_ms),
        fmt_ms(v.took_ms),
        v.target_ms.map_or("-".into(), fmt_ms),
        over,
        v.outcome.as_deref().unwrap_or("-").to_string(),
        attempts(v),
        v.host.as_deref().unwrap_or("-").to_string(),
    ]
}

pub(crate) const STEP_HEADER: [&str; 12] = [
    "#",
    "step",
    "time (UTC)",
    "start",
    "wait",
    "exec",
    "took",
    "target",
    "over/under",
    "outcome",
    "attempts",
    "host",
];

/// The attempts of this visit (a fleet's hosts run one attempt together), and how many of
/// them failed: the trail numbers attempts across the run, so a visit after a failure may
/// start at attempt 3 (issue 25: `2 (0 failed)` after a failure).
fn attempts(v: &StepVisit) -> String {
    let mut numbers: Vec<u64> = v.attempts.iter().map(|a| a.attempt).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let n = numbers.len();
    if n > 1 {
        let failed = numbers
            .iter()
            .filter(|&&k| v.attempts.iter().any(|a| a.attempt == k && a.outcome != "ok"))
            .count();
        format!("{n} ({failed} failed)")
    } else {
        n.to_string()
    }
}

/// Each gap as (what, when, how long), formatted once for every format.
pub(crate) fn gap_cells(r: &Review) -> impl Iterator<Item = (&str, String, String)> + '_ {
    r.gaps
        .iter()
        .map(|g| (gap_words(&g.kind), fmt_ms(g.start_ms), fmt_ms(g.ms)))
}

/// Each clock jump as (seq, when, skew), formatted once for every format.
pub(crate) fn jump_cells(r: &Review) -> impl Iterator<Item = (u64, String, String)> + '_ {
    r.clock_jumps
        .iter()
        .map(|j| (j.seq, fmt_ms(j.at_ms), fmt_signed(j.skew_ms)))
}

fn gap_words(kind: &str) -> &str {
    match kind {
        "before_first_step" => "before the first step (detection to launch, pre-flight)",
        "crash_until_resume" => "a crash until the resume",
        "hand_off_until_resume" => "the hand-off until the resume",
        "after_last_step" => "after the last step",
        other => other,
    }
}

/// A step title for a table column: one line, at most 40 characters.
fn short_title(title: &str) -> String {
    let flat = title.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 40 {
        flat.chars().take(39).collect::<String>() + "…"
    } else {
        flat
    }
}

/// One command line, shortened for a table or a list.
pub(crate) fn one_line(text: &str) -> String {
    let flat = text.trim().replace('\n', " ⏎ ");
    if flat.chars().count() > 100 {
        flat.chars().take(99).collect::<String>() + "…"
    } else {
        flat
    }
}

pub(crate) const HOST_HEADER: [&str; 5] = ["host", "started", "exec", "attempts", "outcome"];

/// One row per host of a fleet step: its name, first start (UTC), execution, attempts, outcome.
pub(crate) fn host_rows(r: &Review, v: &StepVisit) -> Vec<Vec<String>> {
    v.hosts
        .iter()
        .map(|h| {
            vec![
                h.host.clone(),
                fmt_clock(r, h.start_ms),
                fmt_ms(h.exec_ms),
                h.attempts.to_string(),
                h.outcome.to_string(),
            ]
        })
        .collect()
}

/// Each fleet step's hosts: their times, the slowest, the spread (design §13).
fn fleet_steps(r: &Review) -> String {
    let mut out = String::new();
    for (i, v) in r.steps.iter().enumerate().filter(|(_, v)| !v.hosts.is_empty()) {
        let Some((slowest, fastest, spread)) = v.spread() else {
            continue;
        };
        out.push_str(&format!(
            "\nFleet step {}. {} on {} hosts: slowest {} {}, fastest {} {}, spread {}\n",
            i + 1,
            v.step,
            v.hosts.len(),
            slowest.host,
            fmt_ms(slowest.exec_ms),
            fastest.host,
            fmt_ms(fastest.exec_ms),
            fmt_ms(spread)
        ));
        out.push_str(&table(&HOST_HEADER, &host_rows(r, v)));
    }
    out
}

pub(crate) fn render(reviews: &[Review], comparison: Option<&Comparison>) -> String {
    let mut out = String::new();
    for r in reviews.iter().filter(|r| r.tampered()) {
        out.push_str(&format!("!! {}\n", r.integrity_warning().unwrap_or_default()));
    }
    // Several runs: the comparison alone; each run's review is one command away.
    if let Some(c) = comparison {
        out.push_str(&render_comparison(c));
        out.push_str(&format!("\n{}\n", c.in_full_hint()));
        return out;
    }
    for (i, r) in reviews.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&render_one(r));
    }
    out
}

fn render_one(r: &Review) -> String {
    let mut out = String::new();
    if let Some(warning) = r.integrity_warning() {
        out.push_str(&format!("!! {warning}\n\n"));
    }
    out.push_str(&format!("Review of run {}\n", r.run));
    for fact in super::model::facts(r) {
        out.push_str(&format!("  {:<16} {}\n", fact.label.to_lowercase(), fact.value));
    }
    out.push_str("\nSteps (time: when it was presented, UTC; other times on the RTO clock; wait = human, exec = machine)\n");
    // The title beside the id: at 3 a.m. `drop-recreate` says less than what it did.
    let rows: Vec<Vec<String>> = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut cells = step_cells(r, i, v);
            cells.insert(2, short_title(&v.title));
            cells
        })
        .collect();
    let mut header = STEP_HEADER.to_vec();
    header.insert(2, "title");
    out.push_str(&table(&header, &rows));
    out.push_str(&fleet_steps(r));
    let items = super::model::items(r);
    if !items.is_empty() {
        out.push_str(&format!("\n{}\n", super::model::RECORD_TITLE));
    }
    for item in &items {
        let place = item.place("", str::to_string);
        out.push_str(&format!("  {} {place}{}\n", item.when(r), one_line(&item.text)));
        for line in &item.diff {
            out.push_str(&format!("      {}\n", line.marked()));
        }
    }
    let t = &r.time;
    out.push_str("\nWhere the time went\n");
    for (name, ms) in [
        ("human", t.human_ms),
        ("machine", t.machine_ms),
        ("between", t.between_ms),
        ("gaps", t.gaps_ms),
    ] {
        out.push_str(&format!(
            "  {name:<8} {:>9}  {:>4}\n",
            fmt_ms(ms),
            share(ms, r.total_ms)
        ));
    }
    for (what, at, ms) in gap_cells(r) {
        out.push_str(&format!("  gap: {what} at +{at}, {ms}\n"));
    }
    for (seq, at, skew) in jump_cells(r) {
        out.push_str(&format!(
            "  clock jump at seq {seq} (+{at}): the wall clock moved {skew} more than the monotonic one\n"
        ));
    }
    out.push_str("\nOver target, worst first\n");
    if r.over_target.is_empty() {
        out.push_str("  none\n");
    }
    for o in &r.over_target {
        let v = &r.steps[o.visit];
        out.push_str(&format!(
            "  {} {}: took {} against {} ({}): wait {}, exec {}, after {}\n",
            o.visit + 1,
            o.step,
            fmt_ms(o.took_ms),
            fmt_ms(o.target_ms),
            fmt_signed(o.over_ms as i64),
            fmt_ms(v.wait_ms),
            fmt_ms(v.exec_ms),
            fmt_ms(v.after_ms)
        ));
    }
    out
}

fn render_comparison(c: &Comparison) -> String {
    let notes: String = c.notes().iter().map(|n| format!("  note: {n}\n")).collect();
    let mut out = format!("Comparison of {} runs (oldest first)\n{notes}", c.runs.len());
    let mut header = vec!["step".to_string()];
    header.extend((1..=c.runs.len()).map(|i| format!("run {i}")));
    let rows = c.rows(str::to_string, "-", ("TOTAL", |t| t));
    out.push_str(&table(&header, &rows));
    for (i, r) in c.runs.iter().enumerate() {
        out.push_str(&format!(
            "  run {}: {} ({}, {})\n",
            i + 1,
            r.run,
            fmt_time(r.launched),
            c.mode_of(r)
        ));
    }
    let trends = c.trend_lines();
    if !trends.is_empty() {
        out.push('\n');
    }
    for (label, summary) in trends {
        out.push_str(&format!("{label}: {summary}\n"));
    }
    out
}

/// `sentence` with its first letter in capitals, for the formats that write notes as sentences.
pub(crate) fn capitalised(sentence: &str) -> String {
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
