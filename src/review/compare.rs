//! Several runs side by side: step × run durations, totals and verdicts, and the trend from the
//! oldest to the newest (are the rollback drills getting faster?), said in words with numbers.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Review, fmt_ms};

/// Below this change (in %), first to last, runs are called steady.
const STEADY_PCT: f64 = 5.0;

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Oldest first.
    pub runs: Vec<Column>,
    /// One row per step id, in the order the runs first reached them.
    pub steps: Vec<Row>,
    /// Runbook ids of the runs, when they differ (a comparison of unlike runs).
    pub runbooks: Vec<String>,
    pub trend: Option<Trend>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub run: String,
    pub launched: Option<DateTime<Utc>>,
    pub runbook: String,
    pub mode: String,
    pub total_ms: u64,
    pub rto_ms: u64,
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub step: String,
    /// Per run (as `runs`): the step's time summed over its visits; `null` where the run never
    /// reached it.
    pub took_ms: Vec<Option<u64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    /// `faster`, `slower` or `steady`.
    pub direction: String,
    pub runs: usize,
    pub first_ms: u64,
    pub last_ms: u64,
    /// last − first (negative: faster).
    pub change_ms: i64,
    pub change_pct: f64,
    /// Every run faster (or slower) than the one before.
    pub monotonic: bool,
    /// The step whose time changed most, first to last run that both reached it.
    pub biggest_step_change: Option<StepChange>,
    /// The trend in one sentence.
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepChange {
    pub step: String,
    pub first_ms: u64,
    pub last_ms: u64,
    pub change_ms: i64,
}

impl Comparison {
    pub fn new(reviews: &[&Review]) -> Comparison {
        let mut reviews: Vec<&Review> = reviews.to_vec();
        reviews.sort_by(|a, b| (a.launched, &a.run).cmp(&(b.launched, &b.run)));
        let mut steps: Vec<Row> = Vec::new();
        for (column, review) in reviews.iter().enumerate() {
            for visit in &review.steps {
                let row = match steps.iter().position(|r| r.step == visit.step) {
                    Some(i) => &mut steps[i],
                    None => {
                        steps.push(Row {
                            step: visit.step.clone(),
                            took_ms: vec![None; reviews.len()],
                        });
                        steps.last_mut().expect("just pushed")
                    }
                };
                *row.took_ms[column].get_or_insert(0) += visit.took_ms;
            }
        }
        let mut runbooks: Vec<String> = Vec::new();
        for r in &reviews {
            if !runbooks.contains(&r.runbook) {
                runbooks.push(r.runbook.clone());
            }
        }
        if runbooks.len() == 1 {
            runbooks.clear();
        }
        let runs: Vec<Column> = reviews
            .iter()
            .map(|r| Column {
                run: r.run.clone(),
                launched: r.launched,
                runbook: r.runbook.clone(),
                mode: r.mode.clone(),
                total_ms: r.total_ms,
                rto_ms: r.rto_ms,
                verdict: r.verdict.clone(),
            })
            .collect();
        let trend = trend(&runs, &steps);
        Comparison {
            runs,
            steps,
            runbooks,
            trend,
        }
    }
}

fn trend(runs: &[Column], steps: &[Row]) -> Option<Trend> {
    if runs.len() < 2 {
        return None;
    }
    let totals: Vec<u64> = runs.iter().map(|r| r.total_ms).collect();
    let (first, last) = (totals[0], totals[totals.len() - 1]);
    let change_ms = last as i64 - first as i64;
    let change_pct = if first == 0 {
        0.0
    } else {
        change_ms as f64 * 100.0 / first as f64
    };
    let direction = if change_pct.abs() < STEADY_PCT {
        "steady"
    } else if change_ms < 0 {
        "faster"
    } else {
        "slower"
    };
    let monotonic = match direction {
        "faster" => totals.windows(2).all(|w| w[1] < w[0]),
        "slower" => totals.windows(2).all(|w| w[1] > w[0]),
        _ => false,
    };
    let biggest_step_change = steps
        .iter()
        .filter_map(|row| {
            let mut present = row.took_ms.iter().flatten();
            let first = *present.next()?;
            let last = *row.took_ms.iter().flatten().last()?;
            (row.took_ms.iter().flatten().count() >= 2).then(|| StepChange {
                step: row.step.clone(),
                first_ms: first,
                last_ms: last,
                change_ms: last as i64 - first as i64,
            })
        })
        .max_by_key(|c| c.change_ms.unsigned_abs())
        .filter(|c| c.change_ms != 0);
    let mut summary = format!(
        "Over the last {} runs, the total went from {} to {}",
        runs.len(),
        fmt_ms(first),
        fmt_ms(last)
    );
    match direction {
        "steady" => summary.push_str(&format!(" ({change_pct:+.0}%): steady.")),
        _ => summary.push_str(&format!(
            ": {} {direction} ({change_pct:+.0}%){}.",
            fmt_ms(change_ms.unsigned_abs()),
            if monotonic {
                format!(", {direction} every time")
            } else {
                String::new()
            }
        )),
    }
    let sequence: Vec<String> = totals.iter().map(|t| fmt_ms(*t)).collect();
    summary.push_str(&format!(" Totals, oldest first: {}.", sequence.join(" → ")));
    if let Some(c) = &biggest_step_change {
        summary.push_str(&format!(
            " The step that changed most: `{}`, {} → {} ({}{}).",
            c.step,
            fmt_ms(c.first_ms),
            fmt_ms(c.last_ms),
            if c.change_ms < 0 { "-" } else { "+" },
            fmt_ms(c.change_ms.unsigned_abs())
        ));
    }
    Some(Trend {
        direction: direction.into(),
        runs: runs.len(),
        first_ms: first,
        last_ms: last,
        change_ms,
        change_pct: (change_pct * 10.0).round() / 10.0,
        monotonic,
        biggest_step_change,
        summary,
    })
}
