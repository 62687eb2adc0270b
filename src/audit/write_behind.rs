//! Write-behind for a long output file: the disk gets each few MiB as it is written, so that
//! the fsync at the step's end (the output is on disk before its `finished` event names its
//! hash) waits for the last few MiB, not for the whole output. Before it, a 1 GiB step spent
//! its last ~0.55 s in that fsync, both cores idle (issue 30, docs/speed.md).

use std::fs::File;
use std::os::fd::AsRawFd;

/// How much written output waits in the page cache before its write-out is started.
pub(super) const WRITE_BEHIND_BYTES: u64 = 8 << 20;

/// Where the started write-out of one file ends.
#[derive(Debug, Default)]
pub(super) struct WriteBehind {
    started_to: u64,
}

impl WriteBehind {
    /// `size` bytes of `file` are written: once `WRITE_BEHIND_BYTES` of them are not yet on
    /// their way to the disk, starts their write-out (`sync_file_range(SYNC_FILE_RANGE_WRITE)`,
    /// which does not wait for it). Only a head start: the final fsync is what guarantees, so a
    /// filesystem where it does nothing (tmpfs) or fails loses nothing.
    pub(super) fn wrote(&mut self, file: &File, size: u64) {
        if size - self.started_to < WRITE_BEHIND_BYTES {
            return;
        }
        let (from, len) = (self.started_to, size - self.started_to);
        self.started_to = size;
        start_write_out(file, from, len);
    }
}

fn start_write_out(file: &File, from: u64, len: u64) {
    let (Ok(from), Ok(len)) = (i64::try_from(from), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range(2) on a descriptor `file` keeps open; no memory is passed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), from, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}
