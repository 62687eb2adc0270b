//! The directory the lock files live in, opened once and used through its descriptor: a lock
//! is only as trustworthy as the directory that holds it, so it must be ours, private, and not
//! a symbolic link someone planted to send our files elsewhere. Every file operation is then
//! relative to that descriptor (`openat`, `renameat`…), so the directory cannot be swapped
//! between the check and the use.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::LockError;

/// Lock files are readable by their owner only: they name who is running what.
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// An open, checked lock directory.
#[derive(Debug)]
pub(super) struct LockDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl LockDir {
    /// Creates the directory (0700) if needed, then refuses it if it is a symbolic link, not a
    /// directory, someone else's, or writable by group or others. Read and search bits left
    /// for group and others (an older `runbook` made it 0755) are taken away.
    pub(super) fn open(path: &Path) -> Result<LockDir, LockError> {
        let io = |action, source| LockError::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // The audit dir and its parents, when nothing made them before: private, as the
            // audit dir must be (`audit::prepare_audit_dir` normally has).
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(parent)
                .map_err(|e| io("create", e))?;
        }
        match std::fs::DirBuilder::new().mode(DIR_MODE).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("create", e)),
        }
        let unsafe_dir = |problem: String| LockError::UnsafeDir {
            dir: path.to_path_buf(),
            problem,
        };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => fd,
            // A link to a directory fails either way, depending on which flag is checked first.
            Err(Errno::LOOP | Errno::NOTDIR) if path.is_symlink() => {
                return Err(unsafe_dir(
                    "a symbolic link (runbook makes this directory itself: remove the link)".into(),
                ));
            }
            Err(Errno::NOTDIR) => return Err(unsafe_dir("not a directory".into())),
            Err(e) => return Err(io("open", e.into())),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| io("inspect", e.into()))?;
        let me = rustix::process::geteuid().as_raw();
        if stat.st_uid != me {
            return Err(unsafe_dir(format!(
                "owned by uid {}, not by you (uid {me})",
                stat.st_uid
            )));
        }
        let mode = stat.st_mode & 0o7777;
        if mode & 0o022 != 0 {
            return Err(unsafe_dir(format!(
                "writable by group or others (mode {mode:04o}); if nobody else should write there, `chmod 700` it"
            )));
        }
        if mode & 0o077 != 0 {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(DIR_MODE)).map_err(|e| io("chmod", e.into()))?;
        }
        Ok(LockDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub(super) fn path_of(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens (creating it 0600 if absent) the lock file `name`, never through a symbolic link,
    /// and checks that it is a plain file of ours.
    pub(super) fn open_file(&self, name: &str) -> Result<File, LockError> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        self.open_with(name, flags)
    }

    /// Creates `name`, which must not exist yet (`O_EXCL`).
    pub(super) fn create_new(&self, name: &str) -> Result<File, LockError> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        self.open_with(name, flags)
    }

    /// Opens an existing file, or `None` when there is none by that name.
    pub(super) fn open_existing(&self, name: &str) -> Result<Option<File>, LockError> {
        match self.open_with(name, OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC) {
            Ok(file) => Ok(Some(file)),
            Err(LockError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open_with(&self, name: &str, flags: OFlags) -> Result<File, LockError> {
        let path = self.path_of(name);
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(FILE_MODE)) {
            Ok(fd) => fd,
            Err(Errno::LOOP) => {
                return Err(LockError::UnsafeFile {
                    path,
                    problem: "a symbolic link".into(),
                });
            }
            Err(e) => {
                return Err(LockError::Io {
                    action: "open",
                    path,
                    source: e.into(),
                });
            }
        };
        let io = |source: Errno| LockError::Io {
            action: "inspect",
            path: path.clone(),
            source: source.into(),
        };
        let stat = rustix::fs::fstat(&fd).map_err(io)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(LockError::UnsafeFile {
                path,
                problem: "not a regular file".into(),
            });
        }
        if stat.st_uid != rustix::process::geteuid().as_raw() {
            return Err(LockError::UnsafeFile {
                path,
                problem: format!("owned by uid {}, not by you", stat.st_uid),
            });
        }
        if stat.st_mode & 0o077 != 0 {
            // An older `runbook` wrote lock files 0644.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(FILE_MODE)).map_err(io)?;
        }
        Ok(File::from(fd))
    }

    /// True while `name` is still the very file `file` is open on: a winner checks this after
    /// its flock, because `--break-lock` may have put a new generation in place meanwhile.
    pub(super) fn still_names(&self, name: &str, file: &File) -> Result<bool, LockError> {
        let io = |source: Errno| LockError::Io {
            action: "inspect",
            path: self.path_of(name),
            source: source.into(),
        };
        let open = rustix::fs::fstat(file).map_err(io)?;
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(named) => Ok(named.st_dev == open.st_dev && named.st_ino == open.st_ino),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    /// Gives `name`'s file a second name, `to` (fails if `to` exists).
    pub(super) fn link(&self, name: &str, to: &str) -> Result<(), Errno> {
        rustix::fs::linkat(&self.fd, name, &self.fd, to, AtFlags::empty())
    }

    /// Puts `from` in the place of `to`, atomically: `to` never goes missing.
    pub(super) fn replace(&self, from: &str, to: &str) -> Result<(), LockError> {
        rustix::fs::renameat(&self.fd, from, &self.fd, to).map_err(|e| LockError::Io {
            action: "replace",
            path: self.path_of(to),
            source: e.into(),
        })?;
        // The new generation must survive a crash of this machine as the one in place.
        let _ = rustix::fs::fsync(&self.fd);
        Ok(())
    }

    pub(super) fn remove(&self, name: &str) {
        let _ = rustix::fs::unlinkat(&self.fd, name, AtFlags::empty());
    }

    /// The names in the directory that start with `prefix`.
    pub(super) fn names_starting(&self, prefix: &str) -> Vec<String> {
        let Ok(dir) = rustix::fs::Dir::read_from(&self.fd) else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
            .filter(|n| n.starts_with(prefix))
            .collect()
    }
}
