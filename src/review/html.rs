//! `--format html`: one self-contained file (no script, font, image or stylesheet fetched) to
//! attach to a ticket. Light and dark mode follow `prefers-color-scheme`; print is light and
//! keeps the colours. The markup is well-formed XML so tools (and tests) can parse it.

use super::share;
use super::svg::{esc, timeline};
use super::text::{STEP_HEADER, capitalised, gap_words, step_cells};
use super::{Comparison, Review, fmt_ms, fmt_signed};

pub(crate) const STYLE: &str = r#"
:root { color-scheme: light dark;
  --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --grid: #d1d9e0; --band: #f6f8fa;
  --wait: #c2410c; --exec: #1d4ed8; --failed: #b91c1c; --span: #c8d1da; --target: #1f2328;
  --over: #d1242f; --rto: #d1242f; --pass: #1a7f37; --fail: #d1242f; --warn-bg: #fff1e5; --warn: #9a3412;
  --drill: #6d28d9; --incident: #b45309; }
@media (prefers-color-scheme: dark) { :root {
  --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --grid: #30363d; --band: #161b22;
  --wait: #fb923c; --exec: #60a5fa; --failed: #f87171; --span: #3d444d; --target: #e6edf3;
  --over: #ff7b72; --rto: #ff7b72; --pass: #3fb950; --fail: #ff7b72; --warn-bg: #3d1d0a; --warn: #fdba74;
  --drill: #c4b5fd; --incident: #fbbf24; } }
@media print { :root {
  --bg: #ffffff; --fg: #000000; --muted: #444444; --grid: #cccccc; --band: #f2f2f2;
  --wait: #c2410c; --exec: #1d4ed8; --failed: #b91c1c; --span: #cccccc; --target: #000000;
  --over: #c00000; --rto: #c00000; --pass: #1a7f37; --fail: #c00000; --warn-bg: #ffffff; --warn: #000000;
  --drill: #6d28d9; --incident: #b45309; }
  body { margin: 0; max-width: none; } section, table, svg { break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg);
  color: var(--fg); max-width: 1060px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.run-id, code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .92em; }
.muted { color: var(--muted); }
.banner { border: 2px solid var(--warn); background: var(--warn-bg); color: var(--warn);
  padding: .7em 1em; border-radius: 6px; font-weight: 600; margin: 1em 0; }
.verdict { display: inline-block; padding: .1em .6em; border-radius: 4px; font-weight: 700;
  border: 2px solid currentColor; }
.verdict.good { color: var(--pass); } .verdict.bad { color: var(--fail); }
table { border-collapse: collapse; margin: .6em 0; }
th, td { border-bottom: 1px solid var(--grid); padding: .25em .7em; text-align: left; vertical-align: top; }
th { background: var(--band); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.over td { color: var(--over); font-weight: 600; }
.split { display: flex; height: 18px; border-radius: 4px; overflow: hidden; margin: .4em 0 .8em; max-width: 700px; }
.split span { display: block; height: 100%; }
svg.timeline, svg.trend { max-width: 100%; height: auto; font: 11px system-ui, sans-serif; }
svg .point { stroke: var(--bg); stroke-width: 1.5; } svg .point.drill { fill: var(--drill); }
svg .point.incident { fill: var(--incident); }
svg .point.drill.unattended { fill: var(--bg); stroke: var(--drill); stroke-width: 2.5; }
svg .point.incident.unattended { fill: var(--bg); stroke: var(--incident); stroke-width: 2.5; }
svg .break { stroke: var(--muted); stroke-width: 1.5; fill: none; } svg .gap-label { fill: var(--muted); }
svg .trend-line { fill: none; stroke-width: 1.5; } svg .trend-line.drill { stroke: var(--drill); }
svg .trend-line.incident { stroke: var(--incident); stroke-dasharray: 3 3; }
svg text { fill: var(--fg); } svg .tick { fill: var(--muted); }
svg .grid { stroke: var(--grid); stroke-width: 1; }
svg .gap { fill: var(--band); stroke: var(--grid); stroke-dasharray: 2 2; }
svg .span { fill: var(--span); }
svg .exec { fill: var(--exec); } svg .exec.failed { fill: var(--failed); }
svg .wait-bg { fill: var(--bg); } svg .wait-line { stroke: var(--wait); }
svg rect.wait { stroke: var(--wait); stroke-width: .6; }
svg .over-outline { fill: none; stroke: var(--over); stroke-width: 1.5; }
svg .target { stroke: var(--target); stroke-width: 2; }
svg .rto { stroke: var(--rto); stroke-width: 2; stroke-dasharray: 6 4; }
svg .rto-label { fill: var(--rto); font-weight: 700; }
.sw-wait { background: repeating-linear-gradient(45deg, var(--wait) 0 3px, var(--bg) 3px 6px); }
.sw-exec { background: var(--exec); } .sw-between { background: var(--span); }
.sw-gaps { background: var(--band); outline: 1px dashed var(--grid); outline-offset: -1px; }
pre.diff { margin: .3em 0; padding: .4em .6em; background: var(--band); border-radius: 4px; }
pre.diff .removed { color: var(--fail); } pre.diff .added { color: var(--pass); }
.key { display: inline-block; width: 1em; height: .8em; vertical-align: -1px; margin-right: .3em; }
"#;

pub(crate) fn good(verdict: &str) -> bool {
    matches!(verdict, "PASS" | "WITHIN RTO")
}

/// A row per step visit, the ones over their target marked `over`.
pub(crate) fn steps_table(r: &Review) -> String {
    let rows: Vec<Vec<String>> = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, v)| step_cells(r, i, v))
        .collect();
    table(&STEP_HEADER, &rows, |i| {
        if r.steps[i].over_ms.is_some_and(|o| o > 0) {
            "over"
        } else {
            ""
        }
    })
}

pub(crate) fn table(
    header: &[&str],
    rows: &[Vec<String>],
    row_class: impl Fn(usize) -> &'static str,
) -> String {
    let mut out = String::from("<table>\n");
    // A table of facts has no header row: its first column names each row.
    let facts = header.iter().all(|h| h.is_empty());
    if !facts {
        out.push_str("<thead><tr>");
        for h in header {
            out.push_str(&format!("<th>{}</th>", esc(h)));
        }
        out.push_str("</tr></thead>\n");
    }
    out.push_str("<tbody>\n");
    for (i, row) in rows.iter().enumerate() {
        let class = row_class(i);
        if class.is_empty() {
            out.push_str("<tr>");
        } else {
            out.push_str(&format!("<tr class=\"{class}\">"));
        }
        for (i, c) in row.iter().enumerate() {
            if facts && i == 0 {
                out.push_str(&format!("<th scope=\"row\">{}</th>", esc(c)));
            } else {
                out.push_str(&format!("<td>{}</td>", esc(c)));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

pub(crate) fn render(reviews: &[Review], comparison: Option<&Comparison>) -> String {
    let title = match reviews {
        [one] => format!("Review of {} ({})", one.title, one.run),
        many => format!("Review of {} runs", many.len()),
    };
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\" xmlns=\"http://www.w3.org/1999/xhtml\">\n<head>\n<meta charset=\"utf-8\"/>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<meta name=\"color-scheme\" content=\"light dark\"/>\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    for r in reviews.iter().filter(|r| r.tampered()) {
        out.push_str(&format!(
            "<p class=\"banner\" role=\"alert\">{}</p>\n",
            esc(&r.integrity_warning().unwrap_or_default())
        ));
    }
    // Several runs: the comparison alone; each run's review is one command away.
    if let Some(c) = comparison {
        out.push_str(&render_comparison(c));
    } else {
        for (i, r) in reviews.iter().enumerate() {
            out.push_str(&render_one(r, i));
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn render_one(r: &Review, id: usize) -> String {
    let mut out = String::from("<section class=\"run\">\n");
    out.push_str(&format!(
        "<h1>{} <span class=\"verdict {}\">{}</span></h1>\n<p class=\"run-id muted\">{}</p>\n",
        esc(&r.title),
        if good(&r.verdict) { "good" } else { "bad" },
        esc(&r.verdict),
        esc(&r.run)
    ));
    if let Some(warning) = r.integrity_warning() {
        out.push_str(&format!(
            "<p class=\"banner\" role=\"alert\">{}</p>\n",
            esc(&warning)
        ));
    }
    let facts: Vec<Vec<String>> = super::model::facts(r)
        .into_iter()
        .map(|f| vec![f.label.to_string(), f.value])
        .collect();
    out.push_str(&table(&["", ""], &facts, |_| ""));
    let t = &r.time;
    let parts = [
        ("wait", "human", t.human_ms),
        ("exec", "machine", t.machine_ms),
        ("between", "between", t.between_ms),
        ("gaps", "gaps", t.gaps_ms),
    ];
    out.push_str("<h2>Where the time went</h2>\n<div class=\"split\" aria-hidden=\"true\">");
    for (class, _, ms) in parts {
        if ms > 0 && r.total_ms > 0 {
            out.push_str(&format!(
                "<span class=\"sw-{class}\" style=\"width:{:.2}%\"></span>",
                ms as f64 * 100.0 / r.total_ms as f64
            ));
        }
    }
    out.push_str("</div>\n<p>");
    for (class, name, ms) in parts {
        out.push_str(&format!(
            "<span class=\"key sw-{class}\"></span>{name} {} ({}) &#160; ",
            fmt_ms(ms),
            share(ms, r.total_ms)
        ));
    }
    out.push_str("</p>\n");
    let mut remarks: Vec<String> = r
        .gaps
        .iter()
        .map(|g| {
            format!(
                "gap {} at +{}: {}",
                gap_words(&g.kind),
                fmt_ms(g.start_ms),
                fmt_ms(g.ms)
            )
        })
        .collect();
    remarks.extend(r.clock_jumps.iter().map(|j| {
        format!(
            "clock jump at seq {} (+{}): wall clock {} against the monotonic clock",
            j.seq,
            fmt_ms(j.at_ms),
            fmt_signed(j.skew_ms)
        )
    }));
    if !remarks.is_empty() {
        out.push_str("<ul class=\"muted\">\n");
        for remark in remarks {
            out.push_str(&format!("<li>{}</li>\n", esc(&remark)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h2>Timeline</h2>\n");
    out.push_str(&timeline(r, id));
    out.push_str("<h2>Steps</h2>\n<p class=\"muted\">time: when the step was presented (UTC); the other times are on the RTO clock. wait: presented → started (human); exec: started → finished (machine).</p>\n");
    out.push_str(&steps_table(r));
    let items = record(r);
    if !items.is_empty() {
        out.push_str(&format!("<h2>{}</h2>\n", super::model::RECORD_TITLE));
        out.push_str(&items);
    }
    out.push_str("<h2>Over target, worst first</h2>\n");
    if r.over_target.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        let rows = super::over_target_rows(r, |s| s.to_string());
        out.push_str(&table(
            &["step", "took", "target", "over", "wait", "exec"],
            &rows,
            |_| "over",
        ));
    }
    out.push_str("</section>\n");
    out
}

fn render_comparison(c: &Comparison) -> String {
    let mut out = format!(
        "<section class=\"comparison\">\n<h1>Comparison of {} runs</h1>\n",
        c.runs.len()
    );
    for note in c.notes() {
        out.push_str(&format!(
            "<p class=\"banner\">{}.</p>\n",
            esc(&capitalised(&note))
        ));
    }
    for (label, summary) in c.trend_lines() {
        out.push_str(&format!(
            "<p><strong>{}:</strong> {}</p>\n",
            esc(&label),
            esc(&summary)
        ));
    }
    if c.charted() {
        out.push_str("<h2>Trend</h2>\n");
        out.push_str(&super::svg::trend_chart(c));
    }
    let header = c.header();
    let rows = c.rows(str::to_string, "—", ("total", |t| t));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    out.push_str(&table(&header, &rows, |_| ""));
    out.push_str("<ol class=\"muted\">\n");
    for r in &c.runs {
        out.push_str(&format!(
            "<li><code>{}</code> ({})</li>\n",
            esc(&r.run),
            esc(&c.mode_of(r))
        ));
    }
    out.push_str("</ol>\n");
    out.push_str(&format!("<p class=\"muted\">{}</p>\n", esc(&c.in_full_hint())));
    out.push_str("</section>\n");
    out
}

/// Every deviation, decision, answer, note, edit (as a diff) and failed attempt of `r`, in time
/// order, as a list; empty when there is none.
pub(crate) fn record(r: &Review) -> String {
    let items = super::model::items(r);
    let mut out = String::new();
    if items.is_empty() {
        return out;
    }
    out.push_str("<ul>\n");
    for item in &items {
        let place = item.place(".", |id| format!("<code>{}</code>", esc(id)));
        let text = item.dressed(esc, |t| format!("<strong>{t}</strong>"));
        out.push_str(&format!("<li>{} {place}{text}", item.when(r)));
        if let Some(replay) = &item.replay {
            out.push_str(&format!(
                " (in the audit dir; play it with <code class=\"replay\">{}</code>)",
                esc(replay)
            ));
        }
        if !item.diff.is_empty() {
            out.push_str("<pre class=\"diff\">");
            for line in &item.diff {
                let class = match line {
                    super::model::DiffLine::Same(_) => "same",
                    super::model::DiffLine::Removed(_) => "removed",
                    super::model::DiffLine::Added(_) => "added",
                };
                out.push_str(&format!(
                    "<span class=\"{class}\">{}</span>\n",
                    esc(&line.marked())
                ));
            }
            out.push_str("</pre>");
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
    out
}
