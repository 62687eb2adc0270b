//! `runbook drills [--signers FILE] [--json]` (design §16): every runbook of the catalog that
//! declares `drill: {every: …}`, with its last PASS, the runs since, the trend of its passes,
//! and OVERDUE when no PASS is within `every`. Exit 5 when any is overdue, so that a CI job can
//! hold a launch gate on it.
//!
//! A PASS counts only when its trail holds: sealed, the chain intact, every output file as
//! recorded and every signature good (`audit verify`'s checks); with `--signers`, also signed
//! at the seal by a key of that `allowed_signers` file. A PASS that does not hold is listed as
//! not counted, with why, so that an overdue gate says what to fix.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::union::Found;
use crate::audit::record::{Line, Record};
use crate::audit::{self, Status};
use crate::book::catalog;
use crate::cli::DrillsArgs;
use crate::cli::config::Config;
use crate::error::{Error, Result, exit};
use crate::output;
use crate::review::compare::Trend;
use crate::review::{self, Comparison, Review, fmt_rto, fmt_total};

/// How many of the newest counted passes the trend covers.
pub(super) const TREND_RUNS: usize = 5;

/// A runbook of the catalog that declares a drill cadence.
struct DrillBook {
    id: String,
    title: String,
    path: PathBuf,
    every_text: String,
    every: Duration,
}

/// What `runbook drills` says of one drill runbook (`--json` prints a list of these).
#[derive(Debug, Serialize)]
pub(super) struct DrillStatus {
    pub runbook: String,
    pub title: String,
    /// The runbook file of the catalog.
    pub file: String,
    /// The cadence as written (`30d`) and in milliseconds.
    pub every: String,
    pub every_ms: u64,
    /// The newest PASS that counts, or null.
    pub last_pass: Option<Pass>,
    /// When the next PASS is due (the last PASS plus `every`); null when it never passed.
    pub due: Option<DateTime<Utc>>,
    pub overdue: bool,
    /// `ok` or `overdue`.
    pub status: &'static str,
    /// Drill runs of this runbook in the audit dir, whatever their verdict.
    pub runs: usize,
    /// Drill runs launched after the last PASS (all of them when it never passed).
    pub runs_since: usize,
    /// Their verdicts, oldest first (`FAIL`, `INCOMPLETE`, `TAMPERED`, `PASS` not counted).
    pub since_verdicts: Vec<String>,
    /// The trend of the last passes that count and are of the last PASS's kind (at most 5,
    /// oldest first; like with like: an unattended PASS is not compared with an interactive
    /// one); null with fewer than two.
    pub trend: Option<Trend>,
    /// Passes that count but are of another kind than the last PASS, left out of the trend.
    pub trend_left_out: usize,
    /// PASSes that do not count, newest first, and why.
    pub not_counted: Vec<NotCounted>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Pass {
    pub run: String,
    pub path: String,
    /// When the drill was launched.
    pub date: Option<DateTime<Utc>>,
    /// `interactive`, `unattended` (`--yes`) or `unknown` (a trail older than the record).
    pub kind: String,
    pub total_ms: u64,
    pub rto_ms: u64,
    pub operators: Vec<String>,
    /// The seal carries a good signature (against `--signers` when given).
    pub signed: bool,
    /// `alice (SHA256:…)` with `--signers`, else the key's fingerprint; null when unsigned.
    pub signed_by: Option<String>,
    pub head: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct NotCounted {
    pub run: String,
    pub path: String,
    pub date: Option<DateTime<Utc>>,
    pub reason: String,
}

pub(super) fn execute(config: &Config, args: &DrillsArgs) -> Result<u8> {
    if let Some(file) = &args.signers
        && !file.is_file()
    {
        return Err(Error::usage(format!(
            "--signers `{}`: no such file (an allowed_signers file: `PRINCIPAL KEYTYPE KEY` per line)",
            file.display()
        )));
    }
    let books = drill_books(config)?;
    let dir = config.audit_dir.clone();
    // With an audit host, the team's record (design §19); its copies live as long as this.
    let (trails, from, _copies) = team::trails(&dir, config.audit_host.as_ref(), &args.ssh, &books)?;
    let now = Utc::now();
    let statuses: Vec<DrillStatus> = books
        .iter()
        .map(|b| status(b, &trails, args.signers.as_deref(), now))
        .collect();
    if args.json {
        let text = serde_json::to_string_pretty(&statuses)
            .map_err(|e| Error::runtime(format!("cannot serialize the drills: {e}")))?;
        output::print(&format!("{text}\n"))?;
    } else {
        output::print(&render(&statuses, &from, args.signers.as_deref(), now))?;
    }
    Ok(if statuses.iter().any(|s| s.overdue) {
        exit::OVERDUE
    } else {
        exit::OK
    })
}

/// The catalog's runbooks that declare `drill:`, by id (the first file of an id wins, as for
/// every command). A file that does not parse is said on stderr: its cadence is not checked.
fn drill_books(config: &Config) -> Result<Vec<DrillBook>> {
    let dirs = catalog::dirs(&config.catalog);
    let mut books: Vec<DrillBook> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for dir in &dirs {
        let files = match catalog::files_in(dir) {
            Ok(files) => files,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                crate::stderr::ewriteln!(
                    "runbook: warning: cannot read the catalog directory `{}`: {e}",
                    dir.display()
                );
                continue;
            }
        };
        for path in files {
            let runbook = match catalog::Entry::load(&path).map(|e| e.parsed) {
                Ok(Ok(runbook)) => runbook,
                Ok(Err(d)) | Err(d) => {
                    crate::stderr::ewriteln!(
                        "runbook: warning: `{}` does not parse ({}), so a drill cadence it declares is not checked; `runbook validate {}` shows what to fix",
                        path.display(),
                        d.message,
                        path.display()
                    );
                    continue;
                }
            };
            if !seen.insert(runbook.id().to_string()) {
                continue;
            }
            let Some(drill) = &runbook.drill else { continue };
            let every = match drill.every.get() {
                Some(every) if !every.is_zero() => every,
                _ => {
                    let at = crate::diagnostic::Pos::of(&drill.every.0);
                    return Err(Error::usage(format!(
                        "{}:{}:{}: `drill.every: {}` is not a cadence (write a duration like `30d`); `runbook validate {}` says more",
                        path.display(),
                        at.line,
                        at.col,
                        drill.every.0.value,
                        path.display()
                    )));
                }
            };
            books.push(DrillBook {
                id: runbook.id().to_string(),
                title: runbook.title.clone(),
                path,
                every_text: drill.every.0.value.clone(),
                every,
            });
        }
    }
    if books.is_empty() {
        let searched = dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::usage(format!(
            "no runbook in {searched} declares a drill cadence: add `drill: {{every: 30d}}` to the drill runbooks, or point --dir or RUNBOOK_PATH at the catalog that has them (a launch gate must not pass on an empty list)"
        )));
    }
    books.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(books)
}

mod team;

/// A trail to read, how it is named, and why it does not count whatever it says (its two
/// copies in the team's record differ).
/// A drill run of one of the drill runbooks, reviewed from its verified lines.
struct Trail {
    path: PathBuf,
    shown: String,
    diverged: Option<String>,
    review: Review,
}

/// The drill runs of `books` in the audit dir, oldest first. A trail is picked by its first
/// line (`run started`: runbook id and mode), else, when that does not read, by the runbook id
/// in its file name, so that a trail broken at its first line still shows as tampered.
fn drill_trails(sources: Vec<Found>, books: &[DrillBook]) -> Vec<Trail> {
    let mut trails = Vec::new();
    for Found {
        path,
        shown,
        diverged,
        ..
    } in sources
    {
        let wanted = match first_event(&path).map(|line| line.record) {
            Some(Record::RunStarted(first)) => {
                first.mode == "drill" && books.iter().any(|b| first.runbook == b.id)
            }
            _ => {
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                books.iter().any(|b| named_after(stem, &b.id))
            }
        };
        if !wanted {
            continue;
        }
        match review::load(&path) {
            Ok(review) => trails.push(Trail {
                path,
                shown,
                diverged,
                review,
            }),
            Err(e) => crate::stderr::ewriteln!("runbook: warning: skipped `{shown}`: {e}"),
        }
    }
    trails.sort_by(|a, b| (a.review.launched, &a.review.run).cmp(&(b.review.launched, &b.review.run)));
    trails
}

/// A run id is `<UTC start>-<runbook id>-<4 hex>` (docs/audit.md).
fn named_after(stem: &str, id: &str) -> bool {
    stem.split_once('-')
        .and_then(|(_, rest)| rest.rsplit_once('-'))
        .is_some_and(|(runbook, _)| runbook == id)
}

/// The first line of a trail as JSON, read no further than 1 MiB.
fn first_event(path: &Path) -> Option<Line> {
    let file = std::fs::File::open(path).ok()?;
    let mut line = Vec::new();
    BufReader::new(file.take(1 << 20))
        .read_until(b'\n', &mut line)
        .ok()?;
    Line::decode(line.trim_ascii_end())
}

/// The trail of a sealed PASS, checked as `audit verify` does: chain, outputs, signatures
/// (against `signers` when given). `Ok` says how it is signed; `Err` why it does not count.
fn holds(path: &Path, signers: Option<&Path>) -> Result<(bool, Option<String>), String> {
    let v = audit::verify(path).map_err(|e| e.to_string())?;
    match &v.status {
        Status::IntactSealed => {}
        Status::Incomplete => return Err("the trail has no seal".into()),
        Status::Tampered { seq, line, reason } => {
            return Err(format!(
                "the trail is TAMPERED at seq {seq} (line {line}): {reason}"
            ));
        }
    }
    let outputs = audit::check_outputs(path, &v);
    if let Some(p) = outputs.problems.first() {
        let whose = p
            .step
            .as_ref()
            .map(|s| format!("the output of step `{s}`"))
            .unwrap_or_else(|| "a file".into());
        return Err(format!(
            "the trail is TAMPERED: {whose} `{}` {}",
            p.file, p.problem
        ));
    }
    let signatures = audit::check_signatures(&v, signers);
    if let Some(problem) = signatures.problems.first() {
        return Err(match signers {
            Some(_) => format!("not signed by a key of --signers: {problem}"),
            None => format!("a signature does not hold: {problem}"),
        });
    }
    let signed = signatures.count > 0 && signatures.head_signed;
    let by = signed.then(|| {
        if signatures.principals.is_empty() {
            signatures.keys.join(", ")
        } else {
            format!(
                "{} ({})",
                signatures.principals.join(", "),
                signatures.keys.join(", ")
            )
        }
    });
    Ok((signed, by))
}

fn status(book: &DrillBook, trails: &[Trail], signers: Option<&Path>, now: DateTime<Utc>) -> DrillStatus {
    // A trail broken at its first line has no runbook id but its file name.
    let mine: Vec<&Trail> = trails
        .iter()
        .filter(|t| {
            t.review.runbook == book.id
                || (t.review.runbook.is_empty()
                    && t.path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .is_some_and(|s| named_after(s, &book.id)))
        })
        .collect();
    // Newest first: the passes that count, until the trend has enough of them.
    let mut counted: Vec<(&Trail, Pass)> = Vec::new();
    let mut not_counted = Vec::new();
    let mut last_pass_index: Option<usize> = None;
    for (i, t) in mine.iter().enumerate().rev() {
        let of_kind = counted
            .iter()
            .filter(|(_, p)| p.kind == counted[0].1.kind)
            .count();
        if of_kind >= TREND_RUNS {
            break;
        }
        let r = &t.review;
        if !(r.sealed() && r.verdict == "PASS") {
            continue;
        }
        let held = match &t.diverged {
            Some(why) => Err(format!("the trail is TAMPERED: {why}")),
            None => holds(&t.path, signers),
        };
        match held {
            Ok((signed, signed_by)) => {
                if last_pass_index.is_none() {
                    last_pass_index = Some(i);
                }
                counted.push((
                    t,
                    Pass {
                        run: r.run.clone(),
                        path: t.shown.clone(),
                        date: r.launched,
                        kind: r.kind.clone(),
                        total_ms: r.total_ms,
                        rto_ms: r.rto_ms,
                        operators: r.operators.clone(),
                        signed,
                        signed_by,
                        head: r.head.clone(),
                    },
                ));
            }
            Err(reason) => {
                if last_pass_index.is_none() {
                    not_counted.push(NotCounted {
                        run: r.run.clone(),
                        path: t.shown.clone(),
                        date: r.launched,
                        reason,
                    });
                }
            }
        }
    }
    let since: Vec<&Trail> = match last_pass_index {
        Some(i) => mine[i + 1..].to_vec(),
        None => mine.clone(),
    };
    let since_verdicts = since
        .iter()
        .map(|t| {
            let counted_out = not_counted.iter().any(|n| n.run == t.review.run);
            if counted_out {
                "PASS (not counted)".to_string()
            } else {
                t.review.verdict.clone()
            }
        })
        .collect();
    let last_pass = counted.first().map(|(_, p)| p.clone());
    let every_ms = book.every.as_millis() as u64;
    let due = last_pass
        .as_ref()
        .and_then(|p| p.date)
        .map(|d| d + chrono::Duration::milliseconds(every_ms as i64));
    let overdue = due.is_none_or(|due| now > due);
    let kind = last_pass.as_ref().map(|p| p.kind.clone()).unwrap_or_default();
    let trend_left_out = counted.iter().filter(|(_, p)| p.kind != kind).count();
    let trend = {
        let reviews: Vec<&Review> = counted
            .iter()
            .rev()
            .filter(|(_, p)| p.kind == kind)
            .map(|(t, _)| &t.review)
            .collect();
        (reviews.len() >= 2)
            .then(|| Comparison::new(&reviews).trend)
            .flatten()
    };
    DrillStatus {
        runbook: book.id.clone(),
        title: book.title.clone(),
        file: book.path.display().to_string(),
        every: book.every_text.clone(),
        every_ms,
        last_pass,
        due,
        overdue,
        status: if overdue { "overdue" } else { "ok" },
        runs: mine.len(),
        runs_since: since.len(),
        since_verdicts,
        trend,
        trend_left_out,
        not_counted,
    }
}

/// `12d`, `3h`, `40m`: how long ago, roughly, as a person says it.
fn ago(from: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - from).num_seconds();
    if secs < 0 {
        return "in the future: check the clock".into();
    }
    let secs = secs as u64;
    if secs < 60 {
        return "just now".into();
    }
    let text = if secs >= 86_400 {
        format!("{}d", secs / 86_400)
    } else if secs >= 3_600 {
        format!("{}h", secs / 3_600)
    } else {
        format!("{}m", secs / 60)
    };
    format!("{text} ago")
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

fn render(statuses: &[DrillStatus], from: &str, signers: Option<&Path>, now: DateTime<Utc>) -> String {
    let rows: Vec<Vec<String>> = statuses
        .iter()
        .map(|s| {
            let (date, kind, took, operator, signed) = match &s.last_pass {
                Some(p) => (
                    p.date
                        .map_or("?".into(), |d| format!("{} ({})", day(d), ago(d, now))),
                    p.kind.clone(),
                    format!(
                        "{} of {} ({})",
                        fmt_total(p.total_ms),
                        fmt_rto(p.rto_ms),
                        review::share(p.total_ms, p.rto_ms)
                    ),
                    p.operators.join(" → "),
                    p.signed_by.clone().unwrap_or_else(|| "UNSIGNED".into()),
                ),
                None => ("never".into(), "-".into(), "-".into(), "-".into(), "-".into()),
            };
            // The trend compares passes of the last one's kind only, and says which.
            let trend = match &s.trend {
                Some(t) if t.direction == "steady" => format!("steady ({} {})", t.runs, t.kind),
                Some(t) => format!("{} ({:+.0}%, {} {})", t.direction, t.change_pct, t.runs, t.kind),
                None => "-".into(),
            };
            let status = match (s.overdue, s.due) {
                (false, Some(due)) => format!("ok, due {}", day(due)),
                (true, Some(due)) => format!("OVERDUE since {}", day(due)),
                _ => "OVERDUE: never passed".into(),
            };
            vec![
                s.runbook.clone(),
                s.every.clone(),
                date,
                kind,
                took,
                operator,
                signed,
                s.runs_since.to_string(),
                trend,
                status,
            ]
        })
        .collect();
    let mut out = review::text::table(
        &[
            "drill",
            "every",
            "last PASS (UTC)",
            "kind",
            "took",
            "operator",
            "signed",
            "runs since",
            "trend",
            "status",
        ],
        &rows,
    );
    for s in statuses {
        if let (Some(p), n @ 1..) = (&s.last_pass, s.trend_left_out) {
            out.push_str(&format!(
                "{}: the trend compares {} passes only; {n} other pass{} left out (runs of another kind are not alike)\n",
                s.runbook,
                p.kind,
                if n == 1 { " is" } else { "es are" }
            ));
        }
        for n in &s.not_counted {
            out.push_str(&format!(
                "{}: the PASS of {} does not count: {}\n",
                s.runbook, n.run, n.reason
            ));
        }
    }
    let overdue: Vec<&DrillStatus> = statuses.iter().filter(|s| s.overdue).collect();
    for s in &overdue {
        let when = match (&s.last_pass, s.due) {
            (Some(p), Some(due)) => format!(
                "its last PASS was {} ({}), due again by {}",
                p.date.map_or("?".into(), day),
                p.date.map_or("?".into(), |d| ago(d, now)),
                day(due)
            ),
            _ if s.runs == 0 => "it has never been run".to_string(),
            _ if s.runs == 1 => "it never passed: 1 run, not a counted PASS".to_string(),
            _ => format!("it never passed: {} runs, none a counted PASS", s.runs),
        };
        let counting = match signers {
            Some(file) => format!(" signed by a key of {}", file.display()),
            None => String::new(),
        };
        out.push_str(&format!(
            "OVERDUE: {} has no PASS{counting} within {} ({when}). Run it: runbook drill {}\n",
            s.runbook, s.every, s.runbook
        ));
    }
    if overdue.is_empty() {
        out.push_str(&format!(
            "every drill passed within its cadence (runs read from {from})\n"
        ));
    } else {
        out.push_str(&format!(
            "{} of {} drills OVERDUE (runs read from {from}; set it with --audit-dir or RUNBOOK_AUDIT_DIR)\n",
            overdue.len(),
            statuses.len(),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
