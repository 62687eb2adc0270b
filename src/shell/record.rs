//! A shell session's recording, as asciicast v2 (the asciinema format, so `asciinema play`
//! and `asciinema cat` read it): a header line, then one `[seconds, "o", text]` line per piece
//! of output and `[seconds, "r", "COLSxROWS"]` per window resize. Input is never recorded
//! (no `"i"` events): what the operator types reaches the file only as the shell echoes it,
//! so a password typed at a prompt that does not echo is not there. Output is masked with the
//! run's masker before it is written, like every output file (design §5, §14), and the file
//! is written through the audit's `OutputRecorder` (0600, `O_EXCL|O_NOFOLLOW`, hashed as it
//! is written, synced at the end).

use std::time::Instant;

use serde_json::json;

use super::pty::Size;
use crate::audit::{OutputRecorder, OutputSummary};
use crate::error::Error;
use crate::mask::Masker;
use crate::secrets::escape::incomplete_tail;

/// What the header says besides the size.
#[derive(Debug, Clone, Default)]
pub(crate) struct Header {
    /// Unix time the session began.
    pub timestamp: i64,
    pub term: String,
    pub shell: String,
    pub title: String,
}

/// Writes one recording as the session goes.
pub(crate) struct Cast {
    file: OutputRecorder,
    masker: Masker,
    started: Instant,
    /// The start of a UTF-8 character cut by the end of the last piece (the format holds text).
    carry: Vec<u8>,
}

impl Cast {
    /// Writes the header; `started` is time zero of every event.
    pub(crate) fn start(
        mut file: OutputRecorder,
        masker: Masker,
        size: Size,
        header: &Header,
        started: Instant,
    ) -> Result<Cast, Error> {
        let line = json!({
            "version": 2,
            "width": size.cols,
            "height": size.rows,
            "timestamp": header.timestamp,
            "env": {"TERM": header.term, "SHELL": header.shell},
            "title": header.title,
        });
        file.write(format!("{line}\n").as_bytes())?;
        Ok(Cast {
            file,
            masker,
            started,
            carry: Vec::new(),
        })
    }

    /// Output of the shell, as it arrived.
    pub(crate) fn output(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let masked = self.masker.push(bytes);
        self.text(masked, false)
    }

    /// The window was resized.
    pub(crate) fn resize(&mut self, size: Size) -> Result<(), Error> {
        self.event("r", &size.to_string())
    }

    /// The session is over: what the masker held back is written, and the file closed.
    pub(crate) fn finish(mut self) -> Result<OutputSummary, Error> {
        let rest = self.masker.finish();
        self.text(rest, true)?;
        self.file.finish()
    }

    /// Masked bytes as text: a character cut at the end waits for the next piece; bytes that
    /// are not UTF-8 become U+FFFD, as asciinema's own recorder does.
    fn text(&mut self, masked: Vec<u8>, last: bool) -> Result<(), Error> {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(&masked);
        if !last {
            let keep = incomplete_tail(&bytes);
            self.carry = bytes.split_off(bytes.len() - keep);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        self.event("o", &text)
    }

    fn event(&mut self, kind: &str, data: &str) -> Result<(), Error> {
        let seconds = self.started.elapsed().as_micros() as f64 / 1e6;
        let line = json!([seconds, kind, data]);
        self.file.write(format!("{line}\n").as_bytes())
    }
}

/// One event read back from a recording.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CastEvent {
    Output(f64, String),
    Resize(f64, String),
}

/// A recording read back: its header and events. Lines that do not read as events (an
/// `"i"` from another recorder, a torn last line after a crash) are skipped and counted.
#[derive(Debug, Clone)]
pub(crate) struct Recording {
    pub width: u16,
    pub height: u16,
    pub events: Vec<CastEvent>,
    /// Read by the tests only: the replay shows what could be read, silently.
    #[cfg_attr(not(test), allow(dead_code))]
    pub skipped: usize,
}

/// Parses asciicast v2 text.
pub(crate) fn parse(text: &str) -> Result<Recording, String> {
    let mut lines = text.lines();
    let header: serde_json::Value = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or("its first line is not an asciicast header")?;
    if header["version"].as_u64() != Some(2) {
        return Err("it is not asciicast version 2".into());
    }
    let dimension = |key: &str| {
        header[key]
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(format!("its header has no `{key}`"))
    };
    let (width, height) = (dimension("width")?, dimension("height")?);
    let mut events = Vec::new();
    let mut skipped = 0;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let event = serde_json::from_str::<(f64, String, String)>(line)
            .ok()
            .and_then(|(t, kind, data)| match kind.as_str() {
                "o" => Some(CastEvent::Output(t, data)),
                "r" => Some(CastEvent::Resize(t, data)),
                _ => None,
            });
        match event {
            Some(e) => events.push(e),
            None => skipped += 1,
        }
    }
    Ok(Recording {
        width,
        height,
        events,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(dir: &std::path::Path) -> OutputRecorder {
        let log = crate::audit::AuditLog::create(dir, "r1", "alice", Instant::now()).unwrap();
        log.shell_recording(1).unwrap()
    }

    #[test]
    fn a_recording_is_asciicast_v2_masked_with_characters_whole() {
        let dir = tempfile::tempdir().unwrap();
        let header = Header {
            timestamp: 1_700_000_000,
            term: "xterm".into(),
            shell: "/bin/sh".into(),
            title: "t".into(),
        };
        let masker = Masker::for_secrets(["hunter2-secret"]);
        let mut cast = Cast::start(
            recorder(dir.path()),
            masker,
            Size { cols: 100, rows: 30 },
            &header,
            Instant::now(),
        )
        .unwrap();
        // The secret echoed key by key; "é" cut in two by the end of a read.
        for key in "$ echo hunter2-secret\r\n".bytes() {
            cast.output(&[key]).unwrap();
        }
        cast.output(b"caf\xc3").unwrap();
        cast.output(b"\xa9\r\n").unwrap();
        cast.resize(Size { cols: 120, rows: 40 }).unwrap();
        let summary = cast.finish().unwrap();
        let text = std::fs::read_to_string(dir.path().join(&summary.path)).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        let rec = parse(&text).unwrap();
        assert_eq!((rec.width, rec.height, rec.skipped), (100, 30, 0));
        let shown: String = rec
            .events
            .iter()
            .filter_map(|e| match e {
                CastEvent::Output(_, d) => Some(d.as_str()),
                CastEvent::Resize(..) => None,
            })
            .collect();
        assert_eq!(shown, "$ echo ***\r\ncafé\r\n");
        assert!(
            rec.events
                .iter()
                .any(|e| matches!(e, CastEvent::Resize(_, s) if s == "120x40"))
        );
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["env"]["TERM"], "xterm");
        assert_eq!(summary.size, text.len() as u64);
    }
}
