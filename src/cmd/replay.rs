//! `runbook replay RUN [N] [--speed X]`: plays back shell session N of a run (design §17),
//! found through its trail, checked against the size and SHA-256 the trail gives it; with
//! `--audit-host`, a run of the team's record too.

use std::path::Path;

use crate::audit::Status;
use crate::audit::record::Line;
use crate::cli::ReplayArgs;
use crate::cli::config::Config;
use crate::error::{Error, Result, exit};
use crate::shell::replay::{Recorded, play, recordings};

pub(super) fn execute(config: &Config, args: &ReplayArgs) -> Result<u8> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        return Err(Error::usage(format!(
            "--speed {}: give a positive number (2 plays twice as fast, 0.5 half as fast)",
            args.speed
        )));
    }
    let (found, _copies) = super::union::find_one(config, &args.ssh, &args.run)?;
    let path = found.path.clone();
    if let Some(why) = &found.diverged {
        crate::stderr::ewriteln!("runbook: warning: TAMPERED: {why}; the local trail's recording is played");
    }
    let check = crate::audit::verify(&path)?;
    let events = match &check.status {
        Status::Tampered { seq, line, reason } => {
            crate::stderr::ewriteln!(
                "runbook: warning: {} was tampered with at seq {seq} (line {line}): {reason}; only the recordings named before that line are known",
                found.shown
            );
            good_events(&path, check.events)
        }
        _ => crate::audit::record::read(&path)?,
    };
    let all = recordings(&events);
    let run = check.run.clone().unwrap_or_else(|| args.run.clone());
    let n = args.number.unwrap_or(1);
    let Some(chosen) = all.iter().find(|r| r.number == n).cloned() else {
        return Err(Error::usage(match all.len() {
            0 => format!("run {run} has no shell recording (no shell was opened in it)"),
            1 => format!("run {run} has one shell recording: `runbook replay {run}` plays it"),
            k => format!(
                "run {run} has no shell recording {n}: it has {k} ({})",
                all.iter()
                    .map(|r| r.number.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }));
    };
    let audit_dir = path.parent().unwrap_or(Path::new("."));
    let file = audit_dir.join(&chosen.path);
    // The audit host's copy is named by its URL, not by the private directory it is read from.
    let named = Path::new(&found.shown)
        .parent()
        .unwrap_or(Path::new("."))
        .join(&chosen.path);
    let bytes = std::fs::read(&file).map_err(|e| {
        Error::usage(format!(
            "the recording {} of run {run} cannot be read: {e}",
            named.display()
        ))
    })?;
    warn_if_changed(&chosen, &bytes, &named);
    let text = String::from_utf8_lossy(&bytes);
    let recording = crate::shell::record::parse(&text)
        .map_err(|why| Error::usage(format!("{} is not a recording: {why}", named.display())))?;
    let duration = chosen
        .closed
        .as_ref()
        .map(|c| crate::listen::ui::fmt_secs(std::time::Duration::from_millis(c.duration_ms)))
        .unwrap_or_else(|| "not closed: the run stopped during it".into());
    crate::stderr::ewriteln!(
        "runbook: shell {n} of {} in run {run}: step `{}` on {}, {}x{}, {duration}{}",
        all.len(),
        crate::secrets::escape::value(&chosen.step),
        crate::secrets::escape::value(&chosen.host),
        recording.width,
        recording.height,
        if args.speed == 1.0 {
            String::new()
        } else {
            format!(", at {}x speed", args.speed)
        }
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the async runtime: {e}")))?;
    let mut out = std::io::stdout().lock();
    let whole = runtime
        .block_on(play(&recording, args.speed, &mut out, async {
            let _ = tokio::signal::ctrl_c().await;
        }))
        .map_err(|e| Error::runtime(format!("cannot write the replay: {e}")))?;
    drop(out);
    crate::stderr::ewriteln!(
        "\r\nrunbook: {} of shell {n} ({})",
        if whole { "end" } else { "stopped" },
        named.display()
    );
    Ok(exit::OK)
}

/// The events before the first bad line of a tampered trail, read leniently.
fn good_events(path: &Path, count: u64) -> Vec<Line> {
    std::fs::read(path)
        .unwrap_or_default()
        .split(|&b| b == b'\n')
        .take(count as usize)
        .filter_map(Line::decode)
        .collect()
}

/// A recording that is not what its `shell closed` event says was changed after the run.
fn warn_if_changed(r: &Recorded, bytes: &[u8], file: &Path) {
    let why = match &r.closed {
        None => Some(
            "its session was never closed (the run stopped during it), so the trail has no SHA-256 for it"
                .to_string(),
        ),
        Some(c) if c.size != bytes.len() as u64 => {
            Some(format!("it has {} bytes, the trail says {}", bytes.len(), c.size))
        }
        Some(c) if c.sha256 != crate::audit::sha256_hex(bytes) => {
            Some("its SHA-256 is not the one in the trail".to_string())
        }
        Some(_) => None,
    };
    if let Some(why) = why {
        crate::stderr::ewriteln!(
            "runbook: warning: {} does not match the trail: {why}; `runbook audit verify` says more",
            file.display()
        );
    }
}
