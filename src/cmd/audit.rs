//! `runbook audit verify RUN`: recompute a run's hash chain and say, in one line (or JSON),
//! whether its audit file is intact and sealed (exit 0), tampered (1) or incomplete (4).

use std::path::Path;

use serde::Serialize;

use crate::audit::{self, Status, Verification};
use crate::cli::{Global, VerifyArgs};
use crate::error::{Error, Result, exit};
use crate::output::print;

pub fn verify(global: &Global, args: &VerifyArgs) -> Result<u8> {
    let dir = audit::audit_dir(global.audit_dir.as_deref());
    let path = audit::resolve_run(&dir, &args.run)?;
    let verification = audit::verify(&path)?;
    let code = match verification.status {
        Status::IntactSealed => exit::OK,
        Status::Incomplete => exit::OVER_RTO_OR_INCOMPLETE,
        Status::Tampered { .. } => exit::RUNTIME,
    };
    if args.json {
        #[derive(Serialize)]
        struct Report<'a> {
            path: String,
            #[serde(flatten)]
            verification: &'a Verification,
        }
        let report = Report {
            path: path.display().to_string(),
            verification: &verification,
        };
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::runtime(format!("cannot serialize the report: {e}")))?;
        print(&format!("{text}\n"))?;
    } else {
        print(&format!("{}\n", describe(&path, &verification)))?;
    }
    Ok(code)
}

/// The one-line verdict, e.g. `runs/x.jsonl: intact and sealed, 42 events, head 3f9a…`.
pub(crate) fn describe(path: &Path, v: &Verification) -> String {
    let path = path.display();
    let events = plural(v.events, "event");
    match &v.status {
        Status::IntactSealed => {
            let head = v.head.as_deref().unwrap_or_default();
            format!(
                "{path}: intact and sealed, {events}, head {}…",
                &head[..head.len().min(12)]
            )
        }
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
