//! The trend of one runbook's runs: a bar per run, its human and machine time stacked, a
//! marker at its total, the RTO as a dashed line.

use super::{CHAR_W, RIGHT, WIDTH, esc, when};
use crate::review::{Comparison, fmt_ms, fmt_rto, fmt_time, fmt_total};

/// A tick step that gives 4–10 ticks over `span` ms.
fn tick_step(span: u64) -> u64 {
    const STEPS: [u64; 16] = [
        100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
        900_000, 1_800_000, 3_600_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 10)
        .unwrap_or_else(|| span.div_ceil(10).max(1))
}

const CHART_HEIGHT: f64 = 380.0;
const CHART_LEFT: f64 = 78.0;
const CHART_TOP: f64 = 28.0;
const CHART_BOTTOM: f64 = 280.0;

/// A y-axis step that gives 4–10 ticks up to `max` ms, and the axis top it rounds up to.
fn y_axis(max: u64) -> (u64, u64) {
    let step = tick_step(max.max(1));
    let top = max.div_ceil(step).max(1) * step;
    (step, top)
}

/// The trend of a comparison of one runbook's runs as a chart: a bar per run (oldest first),
/// its human time (hatched) and machine time (solid) stacked from the bottom, the rest of its
/// total (between steps, gaps) above them, a marker at its total (a circle for a drill, a
/// diamond for an incident, each mode its own colour and line), and the RTO as a dashed line.
/// Every run's group carries its numbers as `data-*` attributes; the plot its scale.
pub(crate) fn trend_chart(c: &Comparison) -> String {
    let n = c.runs.len().max(1);
    let max = c.runs.iter().map(|r| r.total_ms.max(r.rto_ms)).max().unwrap_or(1);
    let (step, top) = y_axis(max + max / 20);
    let plot_w = WIDTH - CHART_LEFT - RIGHT;
    let plot_h = CHART_BOTTOM - CHART_TOP;
    let y = |ms: u64| CHART_BOTTOM - ms as f64 / top as f64 * plot_h;
    let slot = plot_w / n as f64;
    let bar = (slot * 0.5).clamp(2.0, 56.0);
    let cx = |i: usize| CHART_LEFT + slot * (i as f64 + 0.5);
    let runbook = c.runs.first().map(|r| r.runbook.as_str()).unwrap_or("");
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"trend\" viewBox=\"0 0 {WIDTH} {CHART_HEIGHT}\" width=\"{WIDTH}\" height=\"{CHART_HEIGHT}\" role=\"img\" aria-labelledby=\"trend-title\">\n<title id=\"trend-title\">Trend of {} runs of {}: total against the RTO, oldest first</title>\n",
        c.runs.len(),
        esc(runbook)
    );
    s.push_str("<defs><pattern id=\"trend-hatch\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" patternTransform=\"rotate(45)\"><rect class=\"wait-bg\" width=\"6\" height=\"6\"/><line class=\"wait-line\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke-width=\"3\"/></pattern></defs>\n");
    s.push_str(&format!(
        "<g class=\"plot\" data-y-max-ms=\"{top}\" data-plot-top=\"{CHART_TOP}\" data-plot-bottom=\"{CHART_BOTTOM}\">\n"
    ));
    let mut t = 0;
    while t <= top {
        let ty = y(t);
        s.push_str(&format!(
            "<line class=\"grid\" x1=\"{CHART_LEFT}\" y1=\"{ty:.1}\" x2=\"{:.1}\" y2=\"{ty:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            WIDTH - RIGHT,
            CHART_LEFT - 6.0,
            ty + 4.0,
            esc(&fmt_rto(t))
        ));
        t += step;
    }
    s.push_str(&format!(
        "<text class=\"tick\" x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">time of the run</text>\n",
        (CHART_TOP + CHART_BOTTOM) / 2.0,
        (CHART_TOP + CHART_BOTTOM) / 2.0
    ));
    // Every few runs get a label when there are many: as many as fit side by side.
    let widest = c
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!("{}. {}", i + 1, when(r.launched))
                .chars()
                .count()
                .max(r.words().chars().count())
        })
        .max()
        .unwrap_or(1) as f64
        * CHAR_W
        + 8.0;
    let label_every = ((widest / slot).ceil() as usize).max(1);
    for (i, r) in c.runs.iter().enumerate() {
        let x0 = cx(i) - bar / 2.0;
        let total = r.total_ms;
        let human = r.human_ms.min(total);
        let machine = r.machine_ms.min(total - human);
        s.push_str(&format!(
            "<g class=\"run {mode}\" data-run=\"{}\" data-mode=\"{mode}\" data-kind=\"{}\" data-total-ms=\"{total}\" data-human-ms=\"{}\" data-machine-ms=\"{}\" data-rto-ms=\"{}\" data-verdict=\"{}\"><title>{}. {} {} ({}): total {} of the {} RTO, {}; human {}, machine {}</title>\n",
            esc(&r.run),
            esc(&r.kind),
            r.human_ms,
            r.machine_ms,
            r.rto_ms,
            esc(&r.verdict),
            i + 1,
            esc(&r.words()),
            esc(&fmt_time(r.launched)),
            esc(&r.run),
            esc(&fmt_total(total)),
            esc(&fmt_rto(r.rto_ms)),
            esc(&r.verdict),
            esc(&fmt_ms(r.human_ms)),
            esc(&fmt_ms(r.machine_ms)),
            mode = esc(&r.mode),
        ));
        s.push_str(&format!(
            "<rect class=\"span total\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{:.1}\"/>\n",
            y(total),
            y(0) - y(total)
        ));
        s.push_str(&format!(
            "<rect class=\"wait human\" fill=\"url(#trend-hatch)\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{:.1}\"/>\n",
            y(human),
            y(0) - y(human)
        ));
        s.push_str(&format!(
            "<rect class=\"exec machine\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{:.1}\"/>\n",
            y(human + machine),
            y(human) - y(human + machine)
        ));
        s.push_str(&marker(&r.mode, &r.kind, cx(i), y(total)));
        // The last run is labelled when its label has room after the last labelled one.
        let last_fits =
            (n - 1).is_multiple_of(label_every) || ((n - 1) % label_every) as f64 * slot >= widest;
        if i % label_every == 0 || (i + 1 == n && last_fits) {
            s.push_str(&format!(
                "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
                cx(i),
                CHART_BOTTOM + 14.0,
                esc(&format!("{}. {}", i + 1, when(r.launched))),
                cx(i),
                CHART_BOTTOM + 26.0,
                esc(&r.words())
            ));
        }
        s.push_str("</g>\n");
    }
    // A line through the totals of each mode and kind: a trend is read like with like
    // (compare.rs).
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for r in &c.runs {
        if !groups.contains(&(r.mode.as_str(), r.kind.as_str())) {
            groups.push((&r.mode, &r.kind));
        }
    }
    for (mode, kind) in &groups {
        let points: Vec<String> = c
            .runs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.mode == *mode && r.kind == *kind)
            .map(|(i, r)| format!("{:.1},{:.1}", cx(i), y(r.total_ms)))
            .collect();
        if points.len() > 1 {
            s.push_str(&format!(
                "<polyline class=\"trend-line {}\" data-kind=\"{}\" points=\"{}\"/>\n",
                esc(mode),
                esc(kind),
                points.join(" ")
            ));
        }
    }
    // The RTO: one dashed line, in steps where a runbook's RTO changed between runs.
    let mut rto_points = Vec::new();
    for (i, r) in c.runs.iter().enumerate() {
        let ry = y(r.rto_ms);
        rto_points.push(format!("{:.1},{ry:.1}", cx(i) - slot / 2.0));
        rto_points.push(format!("{:.1},{ry:.1}", cx(i) + slot / 2.0));
    }
    s.push_str(&format!(
        "<polyline class=\"rto\" fill=\"none\" points=\"{}\"/>\n",
        rto_points.join(" ")
    ));
    if let Some(last) = c.runs.last() {
        s.push_str(&format!(
            "<text class=\"rto-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">RTO {}</text>\n",
            WIDTH - RIGHT,
            y(last.rto_ms) - 5.0,
            esc(&fmt_rto(last.rto_ms))
        ));
    }
    s.push_str("</g>\n");
    // Legend.
    let ly = CHART_HEIGHT - 40.0;
    let mut legend: Vec<(String, String)> = vec![
        (
            "<rect class=\"wait\" fill=\"url(#trend-hatch)\" x=\"0\" y=\"-10\" width=\"22\" height=\"12\"/>"
                .into(),
            "human (waiting for a person)".into(),
        ),
        (
            "<rect class=\"exec\" x=\"0\" y=\"-10\" width=\"22\" height=\"12\"/>".into(),
            "machine (commands)".into(),
        ),
        (
            "<rect class=\"span\" x=\"0\" y=\"-10\" width=\"22\" height=\"12\"/>".into(),
            "rest of the total".into(),
        ),
    ];
    for mode in ["drill", "incident"] {
        legend.push((
            marker(mode, "interactive", 11.0, -4.0),
            format!(
                "total of {}",
                if mode == "drill" { "a drill" } else { "an incident" }
            ),
        ));
    }
    legend.push((
        marker("drill", "unattended", 11.0, -4.0),
        "hollow: unattended (--yes)".into(),
    ));
    legend.push((
        "<line class=\"rto\" x1=\"0\" y1=\"-4\" x2=\"22\" y2=\"-4\"/>".into(),
        "RTO".into(),
    ));
    let (mut lx, mut ly) = (10.0, ly);
    for (swatch, words) in legend {
        let w = 40.0 + words.chars().count() as f64 * CHAR_W;
        if lx + w > WIDTH {
            (lx, ly) = (10.0, ly + 18.0);
        }
        s.push_str(&format!(
            "<g class=\"legend\" transform=\"translate({lx:.1},{ly:.1})\">{swatch}<text x=\"28\" y=\"0\">{}</text></g>\n",
            esc(&words)
        ));
        lx += w;
    }
    s.push_str("</svg>\n");
    s
}

/// The marker of a run's total: a circle for a drill, a diamond for an incident (told apart
/// by shape as well as colour), hollow when the run was unattended. `cx`/`cy` is its centre.
fn marker(mode: &str, kind: &str, x: f64, y: f64) -> String {
    let unattended = if kind == "unattended" { " unattended" } else { "" };
    if mode == "incident" {
        format!(
            "<polygon class=\"point incident{unattended}\" data-cx=\"{x:.1}\" data-cy=\"{y:.1}\" points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\"/>",
            x,
            y - 6.5,
            x + 6.5,
            y,
            x,
            y + 6.5,
            x - 6.5,
            y
        )
    } else {
        format!(
            "<circle class=\"point drill{unattended}\" data-cx=\"{x:.1}\" data-cy=\"{y:.1}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\"/>"
        )
    }
}
