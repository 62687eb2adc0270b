//! Where a watched trail's bytes come from. A source only hands over what was appended, in
//! order, in pieces of any size; lines, the chain and the screen are the watcher's. A local
//! file is followed by polling its length (below); a trail on the audit host is a
//! `tail -c +N -f` over SSH, another `Source` (`remote.rs`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::Error;

/// What a source has after a wait.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Bytes appended since the last call: whole lines or not.
    Bytes(Vec<u8>),
    /// Nothing new within the wait.
    Idle,
}

pub(crate) trait Source {
    /// What was appended since the last call, waiting at most `wait` for it. `Err`: the trail
    /// cannot be followed any more (it shrank, was replaced or removed, cannot be read).
    fn next(&mut self, wait: Duration) -> Result<Next, Error>;

    /// The trail as messages name it (a path, or host:path).
    fn name(&self) -> String;

    /// A better account of why following failed, if the source has one (the audit host's
    /// `tail` said the file was truncated, a moment after the bytes that broke the chain).
    fn explain(&mut self, error: Error) -> Error {
        error
    }
}

/// How often a local trail's length is looked at: well within the 1 s an event may take to
/// show, for the cost of one `fstat` and one `stat`.
const POLL: Duration = Duration::from_millis(100);

/// Bytes read at most per call, so a big trail is shown as it is read, not after.
const CHUNK: u64 = 1 << 20;

/// A trail of the local audit dir, opened read-only: no lock, nothing written, so any number
/// of watchers, and one who may only read the file, can follow it.
pub(crate) struct LocalFile {
    path: PathBuf,
    file: File,
    /// The opened file, to notice another file put at its path.
    identity: (u64, u64),
    offset: u64,
}

impl LocalFile {
    pub(crate) fn open(path: &Path) -> Result<LocalFile, Error> {
        let file =
            File::open(path).map_err(|e| Error::runtime(format!("cannot read `{}`: {e}", path.display())))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::runtime(format!("cannot read `{}`: {e}", path.display())))?;
        Ok(LocalFile {
            path: path.to_path_buf(),
            file,
            identity: (meta.dev(), meta.ino()),
            offset: 0,
        })
    }

    /// New bytes now, if any; `Err` when the file is no longer the one being followed.
    fn read_new(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let lost = |why: String| {
            Error::runtime(format!(
                "`{}` {why}: an audit trail is only ever appended to; stopped watching",
                self.path.display()
            ))
        };
        match std::fs::metadata(&self.path) {
            Ok(now) if (now.dev(), now.ino()) != self.identity => {
                return Err(lost("was replaced by another file".into()));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(lost("was removed".into()));
            }
            Err(e) => return Err(lost(format!("cannot be read any more ({e})"))),
        }
        let len = self
            .file
            .metadata()
            .map_err(|e| lost(format!("cannot be read any more ({e})")))?
            .len();
        if len < self.offset {
            return Err(lost(format!("shrank from {} to {len} bytes", self.offset)));
        }
        if len == self.offset {
            return Ok(None);
        }
        let want = (len - self.offset).min(CHUNK);
        let mut bytes = Vec::with_capacity(want as usize);
        self.file
            .seek(SeekFrom::Start(self.offset))
            .and_then(|_| (&mut self.file).take(want).read_to_end(&mut bytes))
            .map_err(|e| lost(format!("cannot be read any more ({e})")))?;
        self.offset += bytes.len() as u64;
        Ok(Some(bytes))
    }
}

impl Source for LocalFile {
    fn next(&mut self, wait: Duration) -> Result<Next, Error> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(bytes) = self.read_new()? {
                return Ok(Next::Bytes(bytes));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Next::Idle);
            }
            std::thread::sleep(POLL.min(deadline - now));
        }
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn appended_bytes_come_in_order_and_a_shrunk_or_replaced_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        std::fs::write(&path, b"one\n").unwrap();
        let mut source = LocalFile::open(&path).unwrap();
        assert_eq!(
            source.next(Duration::ZERO).unwrap(),
            Next::Bytes(b"one\n".to_vec())
        );
        assert_eq!(source.next(Duration::from_millis(10)).unwrap(), Next::Idle);
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"tw").unwrap();
        assert_eq!(source.next(Duration::ZERO).unwrap(), Next::Bytes(b"tw".to_vec()));
        std::fs::write(&path, b"o").unwrap();
        let shrunk = source.next(Duration::ZERO).unwrap_err().to_string();
        assert!(shrunk.contains("shrank from 6 to 1 bytes"), "{shrunk}");

        let mut source = LocalFile::open(&path).unwrap();
        let other = dir.path().join("other");
        std::fs::write(&other, b"o\nmore\n").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let replaced = source.next(Duration::ZERO).unwrap_err().to_string();
        assert!(replaced.contains("was replaced"), "{replaced}");
    }
}
