//! `runbook replay`: a run's shell recordings as its trail lists them, and one played back in
//! the terminal with its timing (faster or slower with `--speed`), through the replay filter:
//! a recording made on a compromised host must not reach the reviewer's clipboard, title bar
//! or terminal answerback.

use std::io::Write;
use std::time::Duration;

use crate::audit::record::{Line, Record};

use super::record::{CastEvent, Recording};
use crate::secrets::escape::ReplayFilter;

/// A shell session, as the trail records it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recorded {
    pub number: u64,
    pub step: String,
    pub host: String,
    /// Relative to the audit dir.
    pub path: String,
    /// From `shell closed`: its size and SHA-256, and how long it lasted. `None`: the run
    /// stopped before the shell was closed.
    pub closed: Option<Closed>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Closed {
    pub size: u64,
    pub sha256: String,
    pub duration_ms: u64,
}

/// Every shell session of a trail's events, in the order they were opened.
pub(crate) fn recordings(lines: &[Line]) -> Vec<Recorded> {
    let mut found: Vec<Recorded> = Vec::new();
    for line in lines {
        match &line.record {
            Record::ShellOpened(opened) => found.push(Recorded {
                number: opened.shell,
                step: line.common.step.clone().unwrap_or_default(),
                host: line.common.host.clone().unwrap_or_default(),
                path: opened.output_file.clone(),
                closed: None,
            }),
            Record::ShellClosed(closed) => {
                let output = closed.output.clone().unwrap_or_default();
                if let Some(r) = found.iter_mut().rev().find(|r| r.number == closed.shell) {
                    r.closed = Some(Closed {
                        size: output.size,
                        sha256: output.sha256,
                        duration_ms: closed.duration_ms.unwrap_or(0),
                    });
                }
            }
            _ => {}
        }
    }
    found
}

/// Plays `recording` on `out` at `speed` (2 is twice as fast). `interrupted` ends it early
/// (Ctrl-C); the terminal is put back either way.
pub(crate) async fn play(
    recording: &Recording,
    speed: f64,
    out: &mut impl Write,
    interrupted: impl std::future::Future<Output = ()>,
) -> std::io::Result<bool> {
    tokio::pin!(interrupted);
    let mut filter = ReplayFilter::new();
    let mut at = 0.0f64;
    let mut stopped = false;
    for event in &recording.events {
        let CastEvent::Output(time, data) = event else {
            // A resize: the reviewer's window is theirs.
            continue;
        };
        let wait = ((time - at).max(0.0) / speed).min(24.0 * 3600.0);
        at = at.max(*time);
        if wait > 0.0 {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs_f64(wait)) => {}
                () = &mut interrupted => {
                    stopped = true;
                    break;
                }
            }
        }
        out.write_all(&filter.push(data.as_bytes()))?;
        out.flush()?;
    }
    out.write_all(&filter.finish())?;
    out.flush()?;
    Ok(!stopped)
}
