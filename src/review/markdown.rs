//! The review as Markdown a postmortem author pastes as is: tables, and a Mermaid `gantt`
//! timeline (GitHub, GitLab and most wikis draw it) with over-target steps marked `crit` and
//! the RTO deadline as a milestone.

use chrono::{DateTime, Utc};

use super::share;
use super::text::{STEP_HEADER, capitalised, gap_cells, jump_cells, one_line, step_cells};
use super::{Comparison, Review, fmt_ms, fmt_rto};

/// The `dateFormat` of the gantt block and the matching chrono format.
pub(crate) const MERMAID_DATE_FORMAT: &str = "YYYY-MM-DDTHH:mm:ss.SSS";
const CHRONO_DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3f";

/// A cell: `|` and line breaks would end the cell or the row, and `<`, `>` from a value must
/// not become markup (`<script>`) where the Markdown is rendered.
fn cell(text: &str) -> String {
    one_line(text)
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn md_table<S: std::borrow::Borrow<str>>(header: &[S], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", header.join(" | "));
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

pub(crate) fn render(reviews: &[Review], comparison: Option<&Comparison>) -> String {
    let mut out = String::new();
    for r in reviews.iter().filter(|r| r.tampered()) {
        out.push_str(&format!(
            "> **{}**\n\n",
            r.integrity_warning().unwrap_or_default()
        ));
    }
    // Several runs: the comparison alone; each run's review is one command away.
    if let Some(c) = comparison {
        out.push_str(&render_comparison(c));
        out.push_str(&match c.newest_command() {
            Some(command) => format!(
                "Each run in full: `runbook review RUN` (the newest: `{}`)\n",
                command.replace('`', "'")
            ),
            None => "Each run in full: `runbook review RUN`\n".to_string(),
        });
        return out;
    }
    for r in reviews {
        out.push_str(&render_one(r, "#"));
    }
    out
}

fn render_one(r: &Review, h: &str) -> String {
    let mut out = format!("{h} Review: {} ({})\n\n", cell(&r.title), r.run);
    if let Some(warning) = r.integrity_warning() {
        out.push_str(&format!("> **{warning}**\n\n"));
    }
    let rows: Vec<Vec<String>> = super::model::facts(r)
        .into_iter()
        .map(|f| {
            let value = match f.label {
                "Verdict" => format!("**{}**", cell(&f.value)),
                "Head" => format!("`{}`", f.value),
                _ => cell(&f.value),
            };
            vec![f.label.to_string(), value]
        })
        .collect();
    out.push_str(&md_table(&["", ""], &rows));
    out.push_str(&format!("\n{h}# Steps\n\n*time*: when the step was presented (UTC); the other times are on the RTO clock. *wait*: presented → started (human); *exec*: started → finished (machine).\n\n"));
    let rows: Vec<Vec<String>> = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, v)| step_cells(r, i, v).iter().map(|c| cell(c)).collect())
        .collect();
    out.push_str(&md_table(&STEP_HEADER, &rows));
    for (i, v) in r.steps.iter().enumerate() {
        let Some((slowest, fastest, spread)) = v.spread() else {
            continue;
        };
        out.push_str(&format!(
            "\n{h}# Fleet step {}. {} on {} hosts\n\nSlowest **{}** {}, fastest {} {}, spread {}.\n\n",
            i + 1,
            cell(&v.step),
            v.hosts.len(),
            cell(&slowest.host),
            fmt_ms(slowest.exec_ms),
            cell(&fastest.host),
            fmt_ms(fastest.exec_ms),
            fmt_ms(spread)
        ));
        let rows: Vec<Vec<String>> = super::text::host_rows(r, v)
            .iter()
            .map(|row| row.iter().map(|c| cell(c)).collect())
            .collect();
        out.push_str(&md_table(&super::text::HOST_HEADER, &rows));
    }
    let items = super::model::items(r);
    if !items.is_empty() {
        out.push_str(&format!("\n{h}# {}\n\n", super::model::RECORD_TITLE));
    }
    for item in &items {
        let place = item.place(".", |id| format!("`{}`", cell(id)));
        let text = item.dressed(cell, |t| format!("**{t}**"));
        out.push_str(&format!("- {} {place}{text}\n", item.when(r)));
        if !item.diff.is_empty() {
            out.push_str("\n  ```diff\n");
            for line in &item.diff {
                // A fence inside the diff would end the block early.
                out.push_str(&format!("  {}\n", line.marked().replace("```", "ʼʼʼ")));
            }
            out.push_str("  ```\n\n");
        }
    }
    out.push_str(&format!("\n{h}# Where the time went\n\n"));
    let t = &r.time;
    let rows: Vec<Vec<String>> = [
        ("Human (waiting for a person, manual steps)", t.human_ms),
        ("Machine (commands running)", t.machine_ms),
        ("Between (retry delays, decisions after failures)", t.between_ms),
        ("Gaps (no step running)", t.gaps_ms),
    ]
    .iter()
    .map(|(name, ms)| vec![name.to_string(), fmt_ms(*ms), share(*ms, r.total_ms)])
    .collect();
    out.push_str(&md_table(&["", "time", "share"], &rows));
    for (what, at, ms) in gap_cells(r) {
        out.push_str(&format!("\n- gap {what} at +{at}: {ms}"));
    }
    for (seq, at, skew) in jump_cells(r) {
        out.push_str(&format!(
            "\n- clock jump at seq {seq} (+{at}): wall clock {skew} against the monotonic clock"
        ));
    }
    if !r.gaps.is_empty() || !r.clock_jumps.is_empty() {
        out.push('\n');
    }
    out.push_str(&format!("\n{h}# Over target, worst first\n\n"));
    if r.over_target.is_empty() {
        out.push_str("None.\n");
    } else {
        let rows = super::over_target_rows(r, |s| format!("`{s}`"));
        out.push_str(&md_table(
            &["step", "took", "target", "over", "wait", "exec"],
            &rows,
        ));
    }
    out.push_str(&format!("\n{h}# Timeline\n\n```mermaid\n{}```\n\n", gantt(r)));
    out
}

fn mermaid_time(t: DateTime<Utc>) -> String {
    t.format(CHRONO_DATE_FORMAT).to_string()
}

/// A task name Mermaid cannot misread: no `:` (ends the name), `;` or `#` (comments, entities).
fn task_name(text: &str) -> String {
    let name: String = text
        .chars()
        .map(|c| {
            if matches!(c, ':' | ';' | '#' | ',') {
                '_'
            } else {
                c
            }
        })
        .collect();
    // Mermaid puts the title and task names into the page as markup, so `<`, `>` must not
    // reach it; an entity cannot either (`;` and `#` end a title): shown as `＜`, `＞`.
    one_line(&name).replace('<', "\u{ff1c}").replace('>', "\u{ff1e}")
}

/// The Mermaid gantt chart of one run, every line ending in `\n`.
pub(crate) fn gantt(r: &Review) -> String {
    let mut out = String::from("gantt\n");
    out.push_str(&format!("    title {} ({})\n", task_name(&r.title), r.verdict));
    out.push_str(&format!("    dateFormat {MERMAID_DATE_FORMAT}\n"));
    out.push_str("    axisFormat %H:%M:%S\n");
    out.push_str("    todayMarker off\n");
    let Some(_) = r.clock_start else {
        return out;
    };
    let time = |ms: u64| r.at(ms).map(mermaid_time).unwrap_or_default();
    out.push_str("    section Steps\n");
    for (i, v) in r.steps.iter().enumerate() {
        let crit = if v.over_ms.is_some_and(|o| o > 0) {
            "crit, "
        } else {
            ""
        };
        out.push_str(&format!(
            "    {} :{crit}s{}, {}, {}\n",
            task_name(&v.step),
            i + 1,
            time(v.start_ms),
            time(v.start_ms + v.took_ms)
        ));
    }
    // A fleet step: one bar per host.
    for (i, v) in r.steps.iter().enumerate().filter(|(_, v)| !v.hosts.is_empty()) {
        out.push_str(&format!("    section {}. {} hosts\n", i + 1, task_name(&v.step)));
        for (j, h) in v.hosts.iter().enumerate() {
            let status = if h.outcome == "ok" { "" } else { "crit, " };
            out.push_str(&format!(
                "    {} :{status}h{}x{}, {}, {}\n",
                task_name(&h.host),
                i + 1,
                j + 1,
                time(h.start_ms),
                time(h.start_ms + h.exec_ms)
            ));
        }
    }
    if !r.gaps.is_empty() {
        out.push_str("    section Gaps\n");
        for (i, g) in r.gaps.iter().enumerate() {
            out.push_str(&format!(
                "    {} :done, g{}, {}, {}\n",
                task_name(&g.kind.replace('_', " ")),
                i + 1,
                time(g.start_ms),
                time(g.start_ms + g.ms)
            ));
        }
    }
    out.push_str("    section RTO\n");
    out.push_str(&format!(
        "    RTO deadline {} :milestone, rto, {}, 0ms\n",
        fmt_rto(r.rto_ms),
        time(r.rto_ms)
    ));
    out
}

fn render_comparison(c: &Comparison) -> String {
    let mut out = format!("# Comparison of {} runs\n\n", c.runs.len());
    for note in c.notes() {
        out.push_str(&format!("> {}.\n\n", capitalised(&note)));
    }
    let rows = c.rows(|s| format!("`{s}`"), "—", ("**total**", |t| format!("**{t}**")));
    out.push_str(&md_table(&c.header(), &rows));
    out.push('\n');
    for (i, r) in c.runs.iter().enumerate() {
        out.push_str(&format!("{}. `{}` ({})\n", i + 1, r.run, c.mode_of(r)));
    }
    let trends = c.trend_lines();
    if !trends.is_empty() {
        out.push('\n');
    }
    for (label, summary) in trends {
        out.push_str(&format!("**{label}:** {summary}\n"));
    }
    out.push('\n');
    if c.charted() {
        out.push_str(&format!(
            "## Trend chart\n\nEach run's total (the back bar), its human and machine time (the middle bar) and its human time alone (the front bar), in {}, oldest first; the line is the RTO. The x-axis says which runs are drills and which incidents.\n\n```mermaid\n{}```\n\n",
            chart_unit(c).1,
            xychart(c)
        ));
    }
    out
}

/// The unit of the trend chart's y-axis, by the longest of the runs and RTOs: ms per unit
/// and its name.
fn chart_unit(c: &Comparison) -> (f64, &'static str) {
    let max = c.runs.iter().map(|r| r.total_ms.max(r.rto_ms)).max().unwrap_or(0);
    if max < 120_000 {
        (1_000.0, "seconds")
    } else if max < 7_200_000 {
        (60_000.0, "minutes")
    } else {
        (3_600_000.0, "hours")
    }
}

/// `12.3`, `4`: a value of the chart, to a tenth of its unit (two decimals under 10).
fn chart_value(ms: u64, unit: f64) -> String {
    let v = ms as f64 / unit;
    let text = if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    };
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() {
        "0".into()
    } else {
        text.to_string()
    }
}

/// The trend of a comparison of one runbook's runs as a Mermaid `xychart-beta`: bars overlap
/// in Mermaid (they are not stacked), so the stack is drawn back to front with running sums:
/// the total, human + machine, human; then the RTO as a line. Every line ends in `\n`.
pub(crate) fn xychart(c: &Comparison) -> String {
    let (unit, unit_name) = chart_unit(c);
    // A quoted string of Mermaid ends at the next `"`.
    let label = |text: &str| text.replace('"', "'");
    let runbook = c.runs.first().map(|r| r.runbook.as_str()).unwrap_or("");
    let max = c.runs.iter().map(|r| r.total_ms.max(r.rto_ms)).max().unwrap_or(0);
    let top = (max as f64 * 1.1 / unit).ceil().max(1.0);
    let series = |f: &dyn Fn(&super::compare::Column) -> u64| -> String {
        c.runs
            .iter()
            .map(|r| chart_value(f(r), unit))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let x: Vec<String> = c
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                "\"{}\"",
                label(&format!(
                    "{} {} {}",
                    i + 1,
                    r.words(),
                    super::svg::when(r.launched)
                ))
            )
        })
        .collect();
    let mut out = String::from("xychart-beta\n");
    out.push_str(&format!(
        "    title \"{}\"\n",
        label(&format!("{runbook}: total vs RTO, oldest first"))
    ));
    out.push_str(&format!("    x-axis [{}]\n", x.join(", ")));
    out.push_str(&format!("    y-axis \"{unit_name}\" 0 --> {top}\n"));
    out.push_str(&format!("    bar [{}]\n", series(&|r| r.total_ms)));
    out.push_str(&format!(
        "    bar [{}]\n",
        series(&|r| (r.human_ms + r.machine_ms).min(r.total_ms))
    ));
    out.push_str(&format!(
        "    bar [{}]\n",
        series(&|r| r.human_ms.min(r.total_ms))
    ));
    out.push_str(&format!("    line [{}]\n", series(&|r| r.rto_ms)));
    out
}
