//! `runbook audit verify RUN`: recompute a run's hash chain, check its output files and its
//! signatures (against an `allowed_signers` file with `--signers`) and, with `--expect-head`,
//! its head against one published elsewhere. Exit 0 intact and sealed, 1 tampered or not
//! trusted, 4 incomplete.

use std::path::Path;

use serde::Serialize;

use super::union::Found;
use crate::audit::{self, OutputCheck, SignatureReport, Status, TrailCheck, Verification};
use crate::cli::VerifyArgs;
use crate::cli::config::Config;
use crate::error::{Error, Result, exit};
use crate::output::print;

/// Everything `verify` found, for the one-line report and `--json`.
#[derive(Serialize)]
struct Report {
    path: String,
    #[serde(flatten)]
    verification: Verification,
    outputs: OutputCheck,
    signatures: SignatureReport,
    /// `--expect-head` given and matching (`None`: not asked).
    expected_head: Option<bool>,
    /// Every reason the trail is not to be trusted, besides a broken chain.
    problems: Vec<String>,
}

pub(super) fn verify(config: &Config, args: &VerifyArgs) -> Result<u8> {
    let Some(run) = args.run.as_deref().filter(|_| !args.all) else {
        // The team's record checked whole is what no RUN asks of an audit host; alone, the
        // audit dir is checked whole only when asked (`--all`).
        if !args.all && config.audit_host.is_none() {
            return Err(Error::usage(
                "audit verify: give RUN (a run id or the path of its audit file), or --all to verify every run of the audit dir",
            ));
        }
        return verify_all(config, args);
    };
    let expect = match &args.expect_head {
        Some(hex) => Some(expected_head(hex)?),
        None => None,
    };
    let (found, _copies) = super::union::find_one(config, &args.ssh, run)?;
    let (code, report) = check(&found, args.signers.as_deref(), expect.as_deref())?;
    if args.json {
        print(&format!("{}\n", json(&report)?))?;
    } else {
        print(&render(Path::new(&found.shown), &report))?;
    }
    Ok(code)
}

/// `--all`: every run of the audit dir or, with an audit host, of the team's record (copied
/// over one connection), one line each; the worst exit status (tampered, then incomplete).
fn verify_all(config: &Config, args: &VerifyArgs) -> Result<u8> {
    let lookup = super::union::every(config, &args.ssh)?;
    let mut worst = exit::OK;
    let mut reports = Vec::new();
    let mut text = String::new();
    let (mut sealed, mut incomplete, mut bad) = (0, 0, 0);
    for found in &lookup.runs {
        let (code, report) = check(found, args.signers.as_deref(), None)?;
        match code {
            exit::OK => sealed += 1,
            exit::OVER_RTO_OR_INCOMPLETE => incomplete += 1,
            _ => bad += 1,
        }
        worst = match (worst, code) {
            (exit::RUNTIME, _) | (_, exit::RUNTIME) => exit::RUNTIME,
            (exit::OVER_RTO_OR_INCOMPLETE, _) | (_, exit::OVER_RTO_OR_INCOMPLETE) => {
                exit::OVER_RTO_OR_INCOMPLETE
            }
            _ => exit::OK,
        };
        text.push_str(&format!(
            "{}\n",
            describe(Path::new(&found.shown), &report.verification)
        ));
        for problem in &report.problems {
            text.push_str(&format!("  TAMPERED or untrusted: {problem}\n"));
        }
        if args.json {
            reports.push(
                serde_json::to_value(&report)
                    .map_err(|e| Error::runtime(format!("cannot serialize the report: {e}")))?,
            );
        }
    }
    if args.json {
        print(&format!("{}\n", json(&reports)?))?;
        return Ok(worst);
    }
    text.push_str(&format!(
        "{}: {sealed} intact and sealed, {incomplete} incomplete, {bad} tampered or untrusted\n",
        plural(lookup.runs.len() as u64, "run")
    ));
    if lookup.runs.is_empty() {
        let place = match &config.audit_host {
            Some(host) => format!(
                "the audit dir `{}` nor on the audit host {host}",
                config.audit_dir.display()
            ),
            None => format!("the audit dir `{}`", config.audit_dir.display()),
        };
        text = format!("no runs in {place}: nothing to verify\n");
    }
    print(&text)?;
    Ok(worst)
}

fn json(value: &impl Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Error::runtime(format!("cannot serialize the report: {e}")))
}

/// One run checked: its exit status and report.
fn check(found: &Found, signers: Option<&Path>, expect: Option<&str>) -> Result<(u8, Report)> {
    let TrailCheck {
        verification,
        outputs,
        signatures,
        mut problems,
    } = audit::check(&found.path, signers)?;
    let head = verification.head.as_deref().unwrap_or_default();
    let head_matches = expect.map(|e| head.starts_with(e));
    if head_matches == Some(false) {
        problems.push(format!(
            "the head is {head}, not the expected {}…",
            expect.unwrap_or_default()
        ));
    }
    // The team's record (design §19): a run whose two copies differ is tampered; when they
    // are the same, the audit host's output files are checked too.
    problems.extend(found.diverged.clone());
    if let Some((copy, there)) = &found.same_there {
        let theirs = audit::check(copy, signers)?;
        problems.extend(
            theirs
                .problems
                .into_iter()
                .map(|p| format!("the audit host's copy {there}: {p}")),
        );
    }
    let code = match verification.status {
        Status::Tampered { .. } => exit::RUNTIME,
        _ if !problems.is_empty() => exit::RUNTIME,
        Status::IntactSealed => exit::OK,
        Status::Incomplete => exit::OVER_RTO_OR_INCOMPLETE,
    };
    let report = Report {
        path: found.shown.clone(),
        verification,
        outputs,
        signatures,
        expected_head: head_matches,
        problems,
    };
    Ok((code, report))
}

/// 32 to 64 hex characters, compared in lower case.
pub(super) fn expected_head(hex: &str) -> Result<String> {
    let hex = hex.trim().to_ascii_lowercase();
    if hex.len() < 32 || hex.len() > 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::usage(format!(
            "--expect-head `{hex}`: give 32 to 64 hex characters of the head, as printed at the end of the run"
        )));
    }
    Ok(hex)
}

fn render(path: &Path, r: &Report) -> String {
    let v = &r.verification;
    let mut out = format!("{}\n", describe(path, v));
    if matches!(v.status, Status::Tampered { .. }) {
        return out;
    }
    if let Some(head) = &v.head {
        out.push_str(&format!("  head {head}"));
        match r.expected_head {
            Some(true) => out.push_str(" (as expected)"),
            Some(false) => out.push_str(" (NOT the expected head)"),
            None => {}
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "  outputs: {} checked ({} bytes)\n",
        plural(r.outputs.checked as u64, "file"),
        r.outputs.bytes
    ));
    out.push_str(&format!("  signatures: {}\n", r.signatures.summary()));
    for file in &r.outputs.cut_off {
        out.push_str(&format!(
            "  `{file}`: output of a step cut off by the crash; resume records it\n"
        ));
    }
    for problem in &r.problems {
        out.push_str(&format!("  TAMPERED or untrusted: {problem}\n"));
    }
    out
}

/// The one-line verdict on the chain, e.g. `runs/x.jsonl: intact and sealed, 42 events`.
pub(crate) fn describe(path: &Path, v: &Verification) -> String {
    let path = path.display();
    let events = plural(v.events, "event");
    match &v.status {
        Status::IntactSealed if v.seal_missing_newline => {
            format!("{path}: intact and sealed (its last newline is missing), {events}")
        }
        Status::IntactSealed => format!("{path}: intact and sealed, {events}"),
        Status::Tampered { seq, line, reason } => {
            format!("{path}: TAMPERED at seq {seq} (line {line}): {reason}")
        }
        Status::Incomplete => {
            let mut text = format!("{path}: incomplete (no seal): {events}");
            if let (Some(seq), Some(event)) = (v.last_seq, &v.last_event) {
                text.push_str(&format!(", the last is seq {seq} ({event}"));
                if let Some(step) = &v.last_step {
                    text.push_str(&format!(", step `{step}`"));
                }
                text.push(')');
            }
            if let Some(torn) = &v.torn_tail {
                text.push_str(&format!(
                    "; torn last line (line {}, {}) set aside by resume",
                    torn.line,
                    plural(torn.bytes as u64, "byte")
                ));
            }
            text
        }
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
