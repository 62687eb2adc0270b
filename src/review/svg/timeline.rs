//! The timeline of one run: a row per step visit on the RTO clock, its wait (hatched: a
//! person) apart from its exec (solid: a command), its target ticked, the RTO as a line; long
//! gaps drawn as breaks.

use super::{CHAR_W, RIGHT, WIDTH, esc};
use crate::review::{Review, fmt_clock, fmt_ms, fmt_rto};

const LABEL: f64 = 200.0;
const TOP: f64 = 34.0;
const ROW: f64 = 20.0;
const BAR: f64 = 12.0;
/// Beyond this many visits the chart shows the first ones and says so: a drawing of 100,000
/// rows helps nobody, the tables still list them all.
pub(super) const MAX_ROWS: usize = 300;

/// Where the plot starts, right of the row labels: room for half of the first tick's label.
const PAD: f64 = 32.0;
/// The width a gap drawn as a break takes, whatever its length.
const BREAK_W: f64 = 72.0;
/// A gap is drawn as a break when it is at least this share of the time on the axis with it.
const BREAK_SHARE: f64 = 0.2;
/// The RTO stretches the axis only when it is at most this share of the drawn time past the
/// end of the run; farther, it is a label at the right edge.
const RTO_REACH: f64 = 0.5;

/// A stretch of the RTO clock on the axis: drawn to scale, or a break of `BREAK_W`.
#[derive(Debug, Clone, Copy)]
struct Seg {
    from: u64,
    to: u64,
    x0: f64,
    x1: f64,
    broken: bool,
}

/// The timeline's horizontal scale: the run's steps fill the plot; a long gap (the `--since`
/// lead, a crash until its resume, the time after the last step) is a break of fixed width;
/// the RTO widens the axis only when it is near the end of the run.
struct Scale {
    segs: Vec<Seg>,
    /// The RTO is on the axis (else beyond its right end).
    rto_on_axis: bool,
    /// The end of the axis, on the RTO clock.
    end: u64,
    /// Pixels per millisecond in the stretches drawn to scale.
    px_per_ms: f64,
}

impl Scale {
    fn of(r: &Review) -> Scale {
        let end_of_steps = r.steps.iter().map(|v| v.start_ms + v.took_ms).max().unwrap_or(0);
        let content = r.total_ms.max(end_of_steps).max(1);
        // The gaps to break, longest first, each when it dominates the time left with it.
        let mut gaps: Vec<(u64, u64)> = r
            .gaps
            .iter()
            .map(|g| (g.start_ms, (g.start_ms + g.ms).min(content)))
            .filter(|(a, b)| b > a)
            .collect();
        gaps.sort_by_key(|(a, b)| std::cmp::Reverse(b - a));
        let mut broken: Vec<(u64, u64)> = Vec::new();
        let mut left = content;
        for (a, b) in gaps {
            if b - a >= 1_000 && (b - a) as f64 >= BREAK_SHARE * left as f64 {
                broken.push((a, b));
                left -= b - a;
            }
        }
        broken.sort();
        let drawn = left.max(1);
        let rto_on_axis = r.rto_ms <= content || (r.rto_ms - content) as f64 <= RTO_REACH * drawn as f64;
        let last = if rto_on_axis {
            content.max(r.rto_ms)
        } else {
            content
        };
        let end = last + (last - content + drawn) / 25;
        let scaled = end - broken.iter().map(|(a, b)| b - a).sum::<u64>();
        let plot = WIDTH - RIGHT - (LABEL + PAD) - broken.len() as f64 * BREAK_W;
        let px_per_ms = plot / scaled.max(1) as f64;
        let mut segs = Vec::new();
        let (mut at, mut x) = (0u64, LABEL + PAD);
        for (a, b) in broken {
            if a > at {
                let x1 = x + (a - at) as f64 * px_per_ms;
                segs.push(Seg {
                    from: at,
                    to: a,
                    x0: x,
                    x1,
                    broken: false,
                });
                x = x1;
            }
            segs.push(Seg {
                from: a,
                to: b,
                x0: x,
                x1: x + BREAK_W,
                broken: true,
            });
            x += BREAK_W;
            at = b;
        }
        segs.push(Seg {
            from: at,
            to: end.max(at),
            x0: x,
            x1: WIDTH - RIGHT,
            broken: false,
        });
        Scale {
            segs,
            rto_on_axis,
            end,
            px_per_ms,
        }
    }

    /// Where offset `ms` is drawn; past the end of the axis, at its right edge.
    fn x(&self, ms: u64) -> f64 {
        let seg = self
            .segs
            .iter()
            .rev()
            .find(|s| s.from <= ms)
            .unwrap_or(&self.segs[0]);
        if ms >= seg.to {
            return seg.x1;
        }
        seg.x0 + (ms - seg.from) as f64 / (seg.to - seg.from).max(1) as f64 * (seg.x1 - seg.x0)
    }

    fn right(&self) -> f64 {
        WIDTH - RIGHT
    }

    /// Where a bar from `from_ms` lasting `ms` is drawn, as `(x, width)`: at least 1 px wide,
    /// so that an instant still shows, and inside the plot even then (a step that ends the
    /// run at an instant sits at the right edge: its pixel goes left of it, not past it).
    fn bar(&self, from_ms: u64, ms: u64) -> (f64, f64) {
        let x0 = self.x(from_ms);
        let width = (self.x(from_ms + ms) - x0).max(1.0);
        (x0.min(self.right() - width), width)
    }
}

/// The smallest tick step whose ticks are at least `min_px` apart at `px_per_ms`.
fn tick_step_px(px_per_ms: f64, min_px: f64) -> u64 {
    const STEPS: [u64; 22] = [
        100,
        200,
        500,
        1_000,
        2_000,
        5_000,
        10_000,
        15_000,
        30_000,
        60_000,
        120_000,
        300_000,
        600_000,
        900_000,
        1_800_000,
        3_600_000,
        7_200_000,
        10_800_000,
        21_600_000,
        43_200_000,
        86_400_000,
        172_800_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| *s as f64 * px_per_ms >= min_px)
        .unwrap_or_else(|| (min_px / px_per_ms.max(f64::MIN_POSITIVE)).ceil() as u64)
}

/// `gap of 1h00m before the first step`: a gap in words.
fn gap_words(kind: &str, ms: u64) -> String {
    let what = match kind {
        "before_first_step" => "before the first step (the --since lead and pre-flight)",
        "crash_until_resume" => "from the crash to the resume",
        "hand_off_until_resume" => "from the hand-off to the resume",
        "after_last_step" => "after the last step",
        other => other,
    };
    format!("gap of {} {what}", fmt_ms(ms))
}

/// The timeline of `r`; `id` keeps pattern ids apart when a page holds several runs.
pub(crate) fn timeline(r: &Review, id: usize) -> String {
    // A fleet step gets a row per host under its own.
    let rows = r
        .steps
        .iter()
        .map(|v| 1 + v.hosts.len())
        .sum::<usize>()
        .min(MAX_ROWS);
    let scale = Scale::of(r);
    let x = |ms: u64| scale.x(ms);
    let bottom = TOP + rows as f64 * ROW;
    let height = bottom + 64.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-labelledby=\"t{id}\">\n<title id=\"t{id}\">Timeline of run {}: {} steps on the RTO clock</title>\n",
        esc(&r.run),
        r.steps.len()
    );
    s.push_str(&format!(
        "<defs><pattern id=\"hatch{id}\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" patternTransform=\"rotate(45)\"><rect class=\"wait-bg\" width=\"6\" height=\"6\"/><line class=\"wait-line\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke-width=\"3\"/></pattern></defs>\n"
    ));
    // Axis and grid: offsets on the RTO clock, and above them the wall-clock time (UTC) when
    // ticks are whole seconds apart. Ticks are far enough apart for their labels, in the
    // stretches drawn to scale; a label that would touch another, or the edge, is left out.
    let label_w = |text: &str| text.chars().count() as f64 * CHAR_W;
    let min_gap = label_w("00:00:00") + 10.0;
    let step = tick_step_px(scale.px_per_ms, min_gap);
    let clock = r.clock_start.is_some() && step >= 1_000;
    s.push_str(&format!(
        "<g class=\"axis\" data-plot-left=\"{:.1}\" data-plot-right=\"{:.1}\">\n",
        LABEL + PAD,
        scale.right()
    ));
    if clock {
        s.push_str(&format!(
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">UTC</text><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">RTO clock</text>\n",
            LABEL - 8.0,
            TOP - 22.0,
            LABEL - 8.0,
            TOP - 10.0
        ));
    }
    let mut last_right = LABEL;
    for seg in scale.segs.iter().filter(|g| !g.broken) {
        let mut t = seg.from.div_ceil(step) * step;
        while t <= seg.to.min(scale.end) {
            let tx = x(t);
            let offset = format!("+{}", fmt_ms(t));
            let wall = if clock { fmt_clock(r, t) } else { String::new() };
            let half = label_w(&offset).max(label_w(&wall)) / 2.0;
            if tx - half >= last_right + 4.0 && tx + half <= WIDTH - 2.0 {
                last_right = tx + half;
                s.push_str(&format!(
                    "<line class=\"grid\" x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{bottom:.1}\"/><text class=\"tick\" x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
                    TOP - 6.0,
                    TOP - 10.0,
                    esc(&offset)
                ));
                if clock {
                    s.push_str(&format!(
                        "<text class=\"tick\" x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
                        TOP - 22.0,
                        esc(&wall)
                    ));
                }
            }
            t += step;
        }
    }
    s.push_str("</g>\n");
    // Gaps behind the rows; one drawn as a break says how long it was.
    for g in &r.gaps {
        let (gx0, gx1) = (x(g.start_ms), x(g.start_ms + g.ms));
        let broken = scale
            .segs
            .iter()
            .any(|seg| seg.broken && seg.from <= g.start_ms && g.start_ms < seg.to);
        s.push_str(&format!(
            "<rect class=\"gap{}\" x=\"{gx0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\"><title>{}</title></rect>\n",
            if broken { " broken" } else { "" },
            (gx1 - gx0).max(0.5),
            bottom - TOP,
            esc(&gap_words(&g.kind, g.ms))
        ));
        if broken {
            for bx in [gx0, gx1] {
                s.push_str(&format!(
                    "<path class=\"break\" d=\"M{:.1},{:.1} l4,-4 l-4,-4 l4,-4\"/>\n",
                    bx - 2.0,
                    TOP + 2.0
                ));
            }
            let mid = (gx0 + gx1) / 2.0;
            s.push_str(&format!(
                "<text class=\"gap-label\" x=\"{mid:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text class=\"gap-label\" x=\"{mid:.1}\" y=\"{:.1}\" text-anchor=\"middle\">gap</text>\n",
                TOP + 22.0,
                esc(&fmt_ms(g.ms)),
                TOP + 34.0,
            ));
        }
    }
    let (mut row, mut drawn) = (0usize, 0usize);
    for (i, v) in r.steps.iter().enumerate() {
        if row >= rows {
            break;
        }
        drawn += 1;
        let y = TOP + row as f64 * ROW + (ROW - BAR) / 2.0;
        row += 1;
        let over = v.over_ms.is_some_and(|o| o > 0);
        s.push_str(&format!(
            "<g class=\"step{}\"><title>{}. {} at {} UTC: took {} (wait {}, exec {}, after {}){}; {}</title>\n",
            if over { " over" } else { "" },
            i + 1,
            esc(&v.step),
            fmt_clock(r, v.start_ms),
            fmt_ms(v.took_ms),
            fmt_ms(v.wait_ms),
            fmt_ms(v.exec_ms),
            fmt_ms(v.after_ms),
            v.target_ms
                .map_or(String::new(), |t| format!(", target {}", fmt_ms(t))),
            esc(v.outcome.as_deref().unwrap_or("-"))
        ));
        let mut label = format!("{}. {}", i + 1, v.step);
        if label.chars().count() > 28 {
            label = label.chars().take(27).collect::<String>() + "…";
        }
        s.push_str(&format!(
            "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            LABEL - 8.0,
            y + BAR - 2.0,
            esc(&label)
        ));
        let (x0, width) = scale.bar(v.start_ms, v.took_ms);
        s.push_str(&format!(
            "<rect class=\"span\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{BAR}\"/>\n"
        ));
        if v.wait_ms > 0 {
            let (wx, wait) = scale.bar(v.start_ms, v.wait_ms);
            s.push_str(&format!(
                "<rect class=\"wait\" fill=\"url(#hatch{id})\" x=\"{wx:.1}\" y=\"{y:.1}\" width=\"{wait:.1}\" height=\"{BAR}\"/>\n"
            ));
        }
        for a in &v.attempts {
            let (ax, exec) = scale.bar(a.start_ms, a.exec_ms);
            let class = if v.by_hand { "wait" } else { "exec" };
            let fill = if v.by_hand {
                format!(" fill=\"url(#hatch{id})\"")
            } else {
                String::new()
            };
            s.push_str(&format!(
                "<rect class=\"{class}{}\"{fill} x=\"{ax:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{BAR}\"/>\n",
                if a.outcome == "ok" { "" } else { " failed" },
                exec
            ));
        }
        if over {
            s.push_str(&format!(
                "<rect class=\"over-outline\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\"/>\n",
                y - 1.5,
                BAR + 3.0
            ));
        }
        if let Some(target) = v.target_ms {
            let at = v.start_ms + target;
            if at <= scale.end {
                let tx = x(at);
                s.push_str(&format!(
                    "<line class=\"target\" x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\"/>\n",
                    y - 3.0,
                    y + BAR + 3.0
                ));
            } else {
                // Past the end of the axis: an arrow at the edge, inside the plot.
                let ex = scale.right();
                s.push_str(&format!(
                    "<path class=\"target beyond\" d=\"M{:.1},{:.1} l5,{:.1} l-5,{:.1}\"><title>target {} (at +{}): past the end of the axis</title></path>\n",
                    ex - 5.0,
                    y,
                    BAR / 2.0,
                    BAR / 2.0,
                    esc(&fmt_ms(target)),
                    esc(&fmt_ms(at))
                ));
            }
        }
        s.push_str("</g>\n");
        for h in &v.hosts {
            if row >= rows {
                break;
            }
            let y = TOP + row as f64 * ROW + (ROW - BAR) / 2.0;
            row += 1;
            s.push_str(&format!(
                "<g class=\"host\"><title>{} on {}: started {} UTC, exec {} in {} attempt(s); {}</title>\n<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
                esc(&v.step),
                esc(&h.host),
                fmt_clock(r, h.start_ms),
                fmt_ms(h.exec_ms),
                h.attempts,
                esc(&h.outcome),
                LABEL - 8.0,
                y + BAR - 2.0,
                esc(&h.host)
            ));
            for a in v
                .attempts
                .iter()
                .filter(|a| a.host.as_deref() == Some(h.host.as_str()))
            {
                let (ax, exec) = scale.bar(a.start_ms, a.exec_ms);
                s.push_str(&format!(
                    "<rect class=\"exec{}\" x=\"{ax:.1}\" y=\"{y:.1}\" width=\"{exec:.1}\" height=\"{BAR}\"/>\n",
                    if a.outcome == "ok" { "" } else { " failed" },
                ));
            }
            s.push_str("</g>\n");
        }
    }
    // The RTO deadline: a line when it is on the axis, else a label at the right edge.
    if scale.rto_on_axis {
        let rx = x(r.rto_ms);
        s.push_str(&format!(
            "<line class=\"rto\" x1=\"{rx:.1}\" y1=\"{:.1}\" x2=\"{rx:.1}\" y2=\"{bottom:.1}\"/><text class=\"rto-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">RTO {}</text>\n",
            TOP - 4.0,
            (rx - 4.0).max(LABEL + PAD + label_w("RTO 99m")),
            bottom + 14.0,
            esc(&fmt_rto(r.rto_ms))
        ));
    } else {
        let end = r
            .total_ms
            .max(r.steps.iter().map(|v| v.start_ms + v.took_ms).max().unwrap_or(0));
        s.push_str(&format!(
            "<text class=\"rto-label beyond\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">RTO {} → {} after the end of the run, off the axis</text>\n",
            scale.right(),
            bottom + 14.0,
            esc(&fmt_rto(r.rto_ms)),
            esc(&fmt_ms(r.rto_ms - end))
        ));
    }
    if r.steps.len() > drawn {
        s.push_str(&format!(
            "<text class=\"tick\" x=\"{LABEL}\" y=\"{:.1}\">… and {} more steps, listed in the table below</text>\n",
            bottom + 14.0,
            r.steps.len() - drawn
        ));
    }
    // Legend.
    let ly = bottom + 34.0;
    let legend = [
        (
            format!(
                "<rect class=\"wait\" fill=\"url(#hatch{id})\" x=\"0\" y=\"-10\" width=\"22\" height=\"12\"/>"
            ),
            "wait (human)",
        ),
        (
            "<rect class=\"exec\" x=\"0\" y=\"-10\" width=\"22\" height=\"12\"/>".to_string(),
            "exec (machine)",
        ),
        (
            "<rect class=\"exec failed\" x=\"0\" y=\"-10\" width=\"22\" height=\"12\"/>".to_string(),
            "failed attempt",
        ),
        (
            "<rect class=\"span\" x=\"0\" y=\"-10\" width=\"22\" height=\"12\"/>".to_string(),
            "other step time",
        ),
        (
            "<line class=\"target\" x1=\"11\" y1=\"-13\" x2=\"11\" y2=\"5\"/>".to_string(),
            "step target",
        ),
        (
            "<rect class=\"over-outline\" x=\"0\" y=\"-11\" width=\"22\" height=\"14\"/>".to_string(),
            "over target",
        ),
        (
            "<line class=\"rto\" x1=\"11\" y1=\"-13\" x2=\"11\" y2=\"5\"/>".to_string(),
            "RTO deadline",
        ),
    ];
    let mut lx = 10.0;
    for (swatch, words) in legend {
        s.push_str(&format!(
            "<g class=\"legend\" transform=\"translate({lx:.1},{ly:.1})\">{swatch}<text x=\"28\" y=\"0\">{words}</text></g>\n"
        ));
        lx += 36.0 + words.len() as f64 * 6.6;
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::review::Integrity;
    use crate::review::build::from_events;

    fn event(seq: u64, mono: u64, event: &str, extra: Value) -> Value {
        let mut v = json!({"v": 1, "seq": seq, "ts": "2026-12-07T03:00:00.000Z", "mono_ms": mono,
            "run": "r", "event": event, "operator": "alice"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    }

    /// Regression: `drills::a_since_lead_is_a_break_that_says_its_length` failed about one CI
    /// run in ten with a step's bar at x=976 (+1), past the plot's right edge: an instant at
    /// the end of the axis is drawn at the edge, and its 1 px minimum went beyond it. A bar,
    /// wherever it starts (up to and past the end of the axis) and however long, is at least a
    /// pixel wide and inside the plot.
    #[test]
    fn a_bar_is_at_least_a_pixel_wide_and_never_past_the_right_edge() {
        let mut events = vec![event(
            0,
            0,
            "run started",
            json!({"runbook": "x", "mode": "drill", "rto_ms": 600_000}),
        )];
        let mut seq = 0;
        for (step, from, ms) in [("a", 0, 2000), ("z", 2000, 0)] {
            for (name, at, extra) in [
                ("step presented", from, json!({"step": step})),
                ("step started", from, json!({"step": step, "attempt": 1})),
                (
                    "step finished",
                    from + ms,
                    json!({"step": step, "attempt": 1, "outcome": "ok", "duration_ms": ms}),
                ),
            ] {
                seq += 1;
                events.push(event(seq, at, name, extra));
            }
        }
        let r = from_events(events, "x.jsonl", Integrity::Incomplete { torn_tail: false });
        let scale = Scale::of(&r);
        for from in (0..=scale.end + 1000).step_by(7) {
            for ms in [0, 1, 50, scale.end] {
                let (x, width) = scale.bar(from, ms);
                assert!(width >= 1.0, "a bar at +{from} for {ms} ms is {width} px wide");
                assert!(
                    x >= LABEL + PAD - 0.05 && x + width <= scale.right() + 0.05,
                    "a bar at +{from} for {ms} ms is drawn at {x} (+{width}), outside the plot"
                );
            }
        }
    }
}
