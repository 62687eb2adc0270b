//! A step attempt's full output, kept beside the audit file (design §5): the event then holds
//! only the tail, the size and the SHA-256, which bind the file to the hash chain.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::dir::RunDir;
use crate::error::Error;

/// How much of the end of the output the event keeps.
pub(super) const TAIL_BYTES: usize = 2048;

/// Writes one output file while hashing it and keeping its last bytes. Unbuffered: each chunk
/// read from the command reaches the file at once, so a crash leaves what the command had
/// printed (evidence that resume then records), not a lost buffer.
#[derive(Debug)]
pub struct OutputRecorder {
    file: File,
    path: PathBuf,
    relative: String,
    size: u64,
    hasher: Sha256,
    /// The last `TAIL_BYTES` bytes written, plus whether anything came before them.
    tail: VecDeque<u8>,
}

/// What a step's `finished` event records about its output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputSummary {
    /// Relative to the audit dir: `<run_id>/<step>-<attempt>.out`.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// The last ~2 KiB, lossy UTF-8, starting at a line boundary when one is near.
    pub tail: String,
}

impl OutputRecorder {
    /// Creates `<audit_dir>/<run_id>/<name>` in the run's open output directory: 0600, never
    /// an existing file (each attempt has its own), never through a link (`O_EXCL|O_NOFOLLOW`).
    pub(crate) fn create(
        outputs: &RunDir,
        audit_dir: &Path,
        run_id: &str,
        name: &str,
    ) -> Result<OutputRecorder, Error> {
        let relative = format!("{run_id}/{name}");
        let path = audit_dir.join(&relative);
        let file = outputs.create_file(name).map_err(|e| {
            Error::runtime(format!(
                "cannot create the output file `{}`: {}",
                path.display(),
                std::io::Error::from(e)
            ))
        })?;
        Ok(OutputRecorder {
            file,
            path,
            relative,
            size: 0,
            hasher: Sha256::new(),
            tail: VecDeque::with_capacity(TAIL_BYTES + 1),
        })
    }

    /// Appends output bytes (already masked by the caller).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.file.write_all(bytes).map_err(|e| self.error(e))?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        let keep = &bytes[bytes.len().saturating_sub(TAIL_BYTES)..];
        let overflow = (self.tail.len() + keep.len()).saturating_sub(TAIL_BYTES);
        self.tail.drain(..overflow);
        self.tail.extend(keep);
        Ok(())
    }

    /// Flushes and fsyncs the file (an empty one has nothing to sync: the most frequent
    /// output of all, and an fsync saved per step); returns what the event records.
    pub fn finish(mut self) -> Result<OutputSummary, Error> {
        self.file.flush().map_err(|e| self.error(e))?;
        if self.size > 0 {
            self.file.sync_data().map_err(|e| self.error(e))?;
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        let truncated = self.size > tail.len() as u64;
        Ok(OutputSummary {
            path: self.relative,
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
            tail: tail_text(&tail, truncated),
        })
    }

    fn error(&self, e: std::io::Error) -> Error {
        Error::runtime(format!(
            "cannot write the output file `{}`: {e}",
            self.path.display()
        ))
    }
}

/// The kept tail as text. When earlier bytes were dropped, start after the first newline if
/// it is in the first half (no half line on top), else after any cut UTF-8 sequence.
fn tail_text(tail: &[u8], truncated: bool) -> String {
    let mut start = 0;
    if truncated {
        match tail.iter().position(|&b| b == b'\n') {
            Some(nl) if nl < tail.len() / 2 => start = nl + 1,
            _ => {
                while start < tail.len() && start < 4 && (tail[start] & 0b1100_0000) == 0b1000_0000 {
                    start += 1;
                }
            }
        }
    }
    String::from_utf8_lossy(&tail[start..]).into_owned()
}

/// An `OutputRecorder` on a thread of its own: writing and hashing a step's output (up to
/// gigabytes) run beside the reading, masking and showing of the next chunk. A bounded queue
/// keeps memory flat when the disk is slower than the step.
pub struct BackgroundRecorder {
    queue: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    worker: Option<std::thread::JoinHandle<Result<OutputSummary, Error>>>,
    /// Set by the worker as soon as a write fails: the command is then stopped, not left to
    /// run to its end unrecorded.
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl OutputRecorder {
    pub fn in_background(self) -> BackgroundRecorder {
        let (queue, chunks) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let raised = flag.clone();
        let worker = std::thread::spawn(move || {
            let mut recorder = self;
            let mut failed = None;
            for chunk in chunks {
                if failed.is_none() {
                    failed = recorder.write(&chunk).err();
                    if failed.is_some() {
                        raised.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            }
            match failed {
                Some(e) => Err(e),
                None => recorder.finish(),
            }
        });
        BackgroundRecorder {
            queue: Some(queue),
            worker: Some(worker),
            failed: flag,
        }
    }
}

impl BackgroundRecorder {
    /// Queues a chunk; a write error surfaces at `finish`.
    pub fn write(&mut self, bytes: Vec<u8>) {
        if let Some(queue) = &self.queue
            && queue.send(bytes).is_err()
        {
            self.queue = None;
        }
    }

    /// Whether a write has failed (the error itself comes from `finish`).
    pub fn failed(&self) -> bool {
        self.failed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits for every chunk to be on disk (synced) and returns the summary.
    pub fn finish(mut self) -> Result<OutputSummary, Error> {
        self.queue = None;
        match self.worker.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(Error::runtime("the output writer thread died")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_output_is_its_own_tail() {
        assert_eq!(tail_text(b"one\ntwo\n", false), "one\ntwo\n");
    }

    #[test]
    fn a_cut_tail_starts_at_a_line() {
        assert_eq!(tail_text(b"cut\nwhole line\n", true), "whole line\n");
    }

    #[test]
    fn a_cut_tail_without_a_near_newline_drops_a_cut_character() {
        // "é" is 0xC3 0xA9; the tail begins inside it.
        assert_eq!(tail_text(b"\xA9bcdefgh", true), "bcdefgh");
    }
}
