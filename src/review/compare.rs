//! Several runs side by side: step × run durations, totals and verdicts, and the trend from the
//! oldest to the newest (are the rollback drills getting faster?), said in words with numbers.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Review, fmt_ms, fmt_time, fmt_total};

/// Below this change (in %), first to last, runs are called steady.
const STEADY_PCT: f64 = 5.0;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Comparison {
    /// Oldest first.
    pub runs: Vec<Column>,
    /// One row per step id, in the order the runs first reached them.
    pub steps: Vec<Row>,
    /// Runbook ids of the runs, when they differ (a comparison of unlike runs).
    pub runbooks: Vec<String>,
    /// How many runs of each mode, when the runs mix incidents and drills, else empty.
    pub modes: Vec<ModeCount>,
    /// The trend of all the runs, when they are of one mode (null when they mix modes: see
    /// `trends`).
    pub trend: Option<Trend>,
    /// One trend per mode that has two runs or more: a drill rehearses and an incident is the
    /// real thing, and one trend across both would compare unlike runs. Likewise per kind
    /// when the runs mix unattended (`--yes`) and interactive ones: a run nobody answered is
    /// not a person's time.
    pub trends: Vec<Trend>,
    /// How many runs of each mode and kind, when the runs mix kinds, else empty.
    pub kinds: Vec<KindCount>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct KindCount {
    pub mode: String,
    pub kind: String,
    pub runs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ModeCount {
    pub mode: String,
    pub runs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Column {
    pub run: String,
    /// The audit file read.
    pub path: String,
    pub launched: Option<DateTime<Utc>>,
    pub runbook: String,
    pub mode: String,
    /// `interactive`, `unattended` or `unknown` (the review's `kind`).
    pub kind: String,
    pub total_ms: u64,
    /// The human and machine parts of the total (`time` of the run's review): the trend
    /// chart stacks them.
    pub human_ms: u64,
    pub machine_ms: u64,
    pub rto_ms: u64,
    pub verdict: String,
}

impl Column {
    /// `unattended drill`, `interactive incident`: the mode and how it was driven, for a
    /// chart's label (`drill` alone when the trail does not say).
    pub(crate) fn words(&self) -> String {
        match self.kind.as_str() {
            "unattended" | "interactive" => format!("{} {}", self.kind, self.mode),
            _ => self.mode.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub step: String,
    /// Per run (as `runs`): the step's time summed over its visits; `null` where the run never
    /// reached it.
    pub took_ms: Vec<Option<u64>>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Trend {
    /// The mode of the runs it covers: `drill` or `incident`.
    pub mode: String,
    /// Their kind: `interactive`, `unattended` or `unknown`; a trend covers one kind.
    pub kind: String,
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
pub(crate) struct StepChange {
    pub step: String,
    pub first_ms: u64,
    pub last_ms: u64,
    pub change_ms: i64,
}

impl Comparison {
    /// The table's header in HTML and Markdown: `step`, then each run as `N. launched`.
    pub(crate) fn header(&self) -> Vec<String> {
        let mut header = vec!["step".to_string()];
        header.extend(
            self.runs
                .iter()
                .enumerate()
                .map(|(i, r)| format!("{}. {}", i + 1, fmt_time(r.launched))),
        );
        header
    }

    pub(crate) fn new(reviews: &[&Review]) -> Comparison {
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
                path: r.path.clone(),
                launched: r.launched,
                runbook: r.runbook.clone(),
                mode: r.mode.clone(),
                kind: r.kind.clone(),
                total_ms: r.total_ms,
                human_ms: r.time.human_ms,
                machine_ms: r.time.machine_ms,
                rto_ms: r.rto_ms,
                verdict: r.verdict.clone(),
            })
            .collect();
        // Modes in the order the runs first show them, oldest first.
        let mut modes: Vec<ModeCount> = Vec::new();
        for r in &runs {
            match modes.iter_mut().find(|m| m.mode == r.mode) {
                Some(m) => m.runs += 1,
                None => modes.push(ModeCount {
                    mode: r.mode.clone(),
                    runs: 1,
                }),
            }
        }
        // A trend compares like with like: one per mode and kind, in the order the runs first
        // show them.
        let mut kinds: Vec<KindCount> = Vec::new();
        for r in &runs {
            match kinds.iter_mut().find(|k| k.mode == r.mode && k.kind == r.kind) {
                Some(k) => k.runs += 1,
                None => kinds.push(KindCount {
                    mode: r.mode.clone(),
                    kind: r.kind.clone(),
                    runs: 1,
                }),
            }
        }
        let kinds_mixed = runs.iter().any(|r| r.kind != runs[0].kind);
        let mixed = modes.len() > 1;
        let trends: Vec<Trend> = kinds
            .iter()
            .filter_map(|k| {
                let picked: Vec<usize> = (0..runs.len())
                    .filter(|&i| runs[i].mode == k.mode && runs[i].kind == k.kind)
                    .collect();
                let noun = if kinds.len() > 1 {
                    group_noun(&k.mode, &k.kind, kinds_mixed, 2)
                } else {
                    "runs".into()
                };
                trend(&runs, &steps, &picked, &k.mode, &k.kind, &noun)
            })
            .collect();
        let trend = if kinds.len() > 1 {
            None
        } else {
            trends.first().cloned()
        };
        if !mixed {
            modes.clear();
        }
        if !kinds_mixed {
            kinds.clear();
        }
        Comparison {
            runs,
            steps,
            runbooks,
            modes,
            trend,
            trends,
            kinds,
        }
    }

    /// The notes above the table, each a sentence without its capital and full stop (each
    /// format dresses them its own way): runs of different runbooks, a mix of modes and why.
    pub(crate) fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.runbooks.is_empty() {
            notes.push(format!(
                "these are runs of different runbooks: {}",
                self.runbooks.join(", ")
            ));
        }
        if let Some(mixed) = self.mixed_modes() {
            notes.push(format!("this comparison {mixed}: {}", self.mixed_why()));
        }
        notes
    }

    /// Why the runs of a mixed comparison get several trends, after `mixed_modes`.
    pub(crate) fn mixed_why(&self) -> &'static str {
        if self.kinds_mixed() {
            "an unattended run (--yes) waits for nobody, an interactive one for a person, and a drill rehearses while an incident is the real thing; each mode and kind has its own trend"
        } else {
            "a drill rehearses, an incident is the real thing; each mode has its own trend"
        }
    }

    /// The runs mix unattended and interactive ones.
    pub(crate) fn kinds_mixed(&self) -> bool {
        !self.kinds.is_empty()
    }

    /// What a run of the comparison was, in the words of its lists: `drill`, or `unattended
    /// drill` when the runs mix kinds.
    pub(crate) fn mode_of(&self, run: &Column) -> String {
        if self.kinds_mixed() {
            format!("{} {}", run.kind, run.mode)
        } else {
            run.mode.clone()
        }
    }

    /// The runs are of one runbook and there are several: the trend is worth a chart.
    pub(crate) fn charted(&self) -> bool {
        self.runs.len() > 1 && self.runbooks.is_empty()
    }

    /// How to see one of the runs in full (several runs print the comparison alone).
    pub(crate) fn in_full_hint(&self) -> String {
        match self.newest_command() {
            Some(command) => format!("Each run in full: runbook review RUN (the newest: {command})"),
            None => "Each run in full: runbook review RUN".to_string(),
        }
    }

    /// `runbook review FILE` for the newest run.
    pub(crate) fn newest_command(&self) -> Option<String> {
        self.runs.last().map(|newest| {
            // A run read from the team's audit host is named by its URL (design §19).
            let remote = newest
                .path
                .starts_with("ssh://")
                .then(|| newest.path.rsplit_once('/'))
                .flatten()
                .and_then(|(host, file)| Some((host, file.strip_suffix(".jsonl")?)));
            match remote {
                Some((host, run)) => format!(
                    "runbook review {} --audit-host {}",
                    shell_word(run),
                    shell_word(host)
                ),
                None => format!("runbook review {}", shell_word(&newest.path)),
            }
        })
    }

    /// The comparison table's body, the same in every format: a row per step (its time in
    /// each run, `missing` where a run did not reach it), then the total, the verdict and the
    /// mode of each run. `step` and `total` dress the step ids and the totals the format's way.
    pub(crate) fn rows(
        &self,
        step: fn(&str) -> String,
        missing: &str,
        total: (&str, fn(String) -> String),
    ) -> Vec<Vec<String>> {
        let mut rows: Vec<Vec<String>> = self
            .steps
            .iter()
            .map(|row| {
                let mut cells = vec![step(&row.step)];
                cells.extend(row.took_ms.iter().map(|t| t.map_or(missing.to_string(), fmt_ms)));
                cells
            })
            .collect();
        let (label, dress) = total;
        let mut totals = vec![label.to_string()];
        totals.extend(self.runs.iter().map(|r| dress(fmt_total(r.total_ms))));
        rows.push(totals);
        let mut verdicts = vec!["verdict".to_string()];
        verdicts.extend(self.runs.iter().map(|r| r.verdict.clone()));
        rows.push(verdicts);
        let mut modes = vec!["mode".to_string()];
        modes.extend(self.runs.iter().map(|r| r.mode.clone()));
        rows.push(modes);
        if self.kinds_mixed() {
            let mut kinds = vec!["kind".to_string()];
            kinds.extend(self.runs.iter().map(|r| r.kind.clone()));
            rows.push(kinds);
        }
        rows
    }

    /// `mixes 2 incidents and 3 drills`, when the runs do.
    pub(crate) fn mixed_modes(&self) -> Option<String> {
        if self.kinds_mixed() {
            let counts: Vec<String> = self
                .kinds
                .iter()
                .map(|k| format!("{} {}", k.runs, group_noun(&k.mode, &k.kind, true, k.runs)))
                .collect();
            return Some(format!("mixes {}", counts.join(" and ")));
        }
        if self.modes.len() < 2 {
            return None;
        }
        let counts: Vec<String> = self
            .modes
            .iter()
            .map(|m| {
                let noun = if m.runs == 1 {
                    m.mode.clone()
                } else {
                    plural_mode(&m.mode)
                };
                format!("{} {noun}", m.runs)
            })
            .collect();
        Some(format!("mixes {}", counts.join(" and ")))
    }

    /// What each trend is of: `Trend` alone when the runs are of one mode, else `Trend of the
    /// drills`; and the modes with a single run, which have none.
    pub(crate) fn trend_lines(&self) -> Vec<(String, String)> {
        let split = self.trends.len() > 1 || !self.modes.is_empty() || self.kinds_mixed();
        let mut lines: Vec<(String, String)> = self
            .trends
            .iter()
            .map(|t| {
                let label = if split {
                    format!(
                        "Trend of the {}",
                        group_noun(&t.mode, &t.kind, self.kinds_mixed(), 2)
                    )
                } else {
                    "Trend".to_string()
                };
                (label, t.summary.clone())
            })
            .collect();
        if self.kinds_mixed() {
            for k in self.kinds.iter().filter(|k| k.runs < 2) {
                lines.push((
                    format!("Trend of the {}", group_noun(&k.mode, &k.kind, true, 2)),
                    format!("only one {}: no trend.", group_noun(&k.mode, &k.kind, true, 1)),
                ));
            }
        } else {
            for m in self.modes.iter().filter(|m| m.runs < 2) {
                lines.push((
                    format!("Trend of the {}", plural_mode(&m.mode)),
                    format!("only one {}: no trend.", m.mode),
                ));
            }
        }
        lines
    }
}

/// `drills`, `unattended drills`, `an interactive drill`'s noun: the group a trend covers.
fn group_noun(mode: &str, kind: &str, with_kind: bool, count: usize) -> String {
    let mode = if count == 1 {
        mode.to_string()
    } else {
        plural_mode(mode)
    };
    if with_kind { format!("{kind} {mode}") } else { mode }
}

/// `path` as one word a shell reads back: as is when it is plain, else quoted.
fn shell_word(path: &str) -> String {
    let plain = !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | '+' | ':' | '@'));
    if plain {
        path.to_string()
    } else {
        crate::script::shell_quote(path)
    }
}

/// `drills`, `incidents`.
fn plural_mode(mode: &str) -> String {
    format!("{mode}s")
}

/// The trend over the runs at `picked` (indices into `runs`, oldest first), called `noun` in
/// its sentence.
fn trend(
    all_runs: &[Column],
    all_steps: &[Row],
    picked: &[usize],
    mode: &str,
    kind: &str,
    noun: &str,
) -> Option<Trend> {
    if picked.len() < 2 {
        return None;
    }
    let runs: Vec<&Column> = picked.iter().map(|&i| &all_runs[i]).collect();
    let steps: Vec<Row> = all_steps
        .iter()
        .map(|row| Row {
            step: row.step.clone(),
            took_ms: picked.iter().map(|&i| row.took_ms[i]).collect(),
        })
        .collect();
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
        "Over the last {} {noun}, the total went from {} to {}",
        runs.len(),
        fmt_total(first),
        fmt_total(last)
    );
    match direction {
        "steady" => summary.push_str(&format!(" ({change_pct:+.0}%): steady.")),
        _ => summary.push_str(&format!(
            ": {} {direction} ({change_pct:+.0}%){}.",
            fmt_total(change_ms.unsigned_abs()),
            if monotonic {
                format!(", {direction} every time")
            } else {
                String::new()
            }
        )),
    }
    let sequence: Vec<String> = totals.iter().map(|t| fmt_total(*t)).collect();
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
        mode: mode.to_string(),
        kind: kind.to_string(),
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
