//! A step attempt's full output, kept beside the audit file (design §5): the event then holds
//! only the tail, the size and the SHA-256, which bind the file to the hash chain.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::dir::RunDir;
use super::write_behind::WriteBehind;
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
    behind: WriteBehind,
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
            behind: WriteBehind::default(),
        })
    }

    /// Appends output bytes (already masked by the caller).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.file.write_all(bytes).map_err(|e| self.error(e))?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        self.behind.wrote(&self.file, self.size);
        let keep = &bytes[bytes.len().saturating_sub(TAIL_BYTES)..];
        let overflow = (self.tail.len() + keep.len()).saturating_sub(TAIL_BYTES);
        self.tail.drain(..overflow);
        self.tail.extend(keep);
        Ok(())
    }

    /// Flushes and fsyncs the file (an empty one has nothing to sync: the most frequent
    /// output of all, and an fsync saved per step); returns what the event records. The
    /// write-behind has already started all but the last few MiB on their way to the disk.
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

    /// Write-behind, seen from the page cache (cachestat(2), Linux 6.5).
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    mod write_behind {
        use std::os::fd::AsRawFd;

        use super::*;
        use crate::audit::write_behind::WRITE_BEHIND_BYTES;

        /// The pages of a file that are dirty in the page cache (cachestat(2), Linux 6.5).
        fn dirty_pages(file: &File) -> u64 {
            #[repr(C)]
            struct Range {
                off: u64,
                len: u64,
            }
            #[repr(C)]
            #[derive(Default)]
            struct Stat {
                cache: u64,
                dirty: u64,
                writeback: u64,
                evicted: u64,
                recently_evicted: u64,
            }
            const SYS_CACHESTAT: libc::c_long = 451; // the same number on x86_64 and aarch64
            let range = Range { off: 0, len: 0 }; // 0: to the end
            let mut stat = Stat::default();
            // SAFETY: cachestat(2) reads `range` and fills `stat`, both live and laid out as the
            // kernel's `struct cachestat_range` and `struct cachestat`.
            let rc = unsafe {
                libc::syscall(
                    SYS_CACHESTAT,
                    file.as_raw_fd(),
                    &range as *const Range,
                    &mut stat as *mut Stat,
                    0,
                )
            };
            assert_eq!(rc, 0, "cachestat: {}", std::io::Error::last_os_error());
            stat.dirty
        }

        #[test]
        fn a_long_output_is_on_its_way_to_the_disk_as_it_is_written() {
            // On the disk (under target/): a /tmp in memory (tmpfs) has no write-out to start.
            let target = concat!(env!("CARGO_MANIFEST_DIR"), "/target");
            std::fs::create_dir_all(target).unwrap();
            let dir = tempfile::tempdir_in(target).unwrap();
            let log =
                crate::audit::AuditLog::create(dir.path(), "r1", "alice", std::time::Instant::now()).unwrap();
            let mut recorder = log.output("flood", 1, None).unwrap();
            let page = 4096;
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..40 {
                recorder.write(&chunk).unwrap();
            }
            let dirty = dirty_pages(&recorder.file);
            // 40 MiB written; the write-out of all but the last few MiB has been started, which
            // leaves those pages clean or under write-out. Without write-behind all 40 MiB are
            // dirty until the fsync (the kernel's own flusher waits 30 s for so little).
            assert!(
                dirty * page < WRITE_BEHIND_BYTES,
                "{} MiB of 40 still dirty",
                (dirty * page) >> 20
            );
        }
    }
}
