//! The run lock (design §6, §18): one run at a time per runbook and target set, so two
//! engineers never walk the same scenario against the same hosts at once.
//!
//! A lock is an `flock(LOCK_EX|LOCK_NB)` on a file under `<audit-dir>/locks/` that stays in
//! place. The kernel picks the one winner, and lets go when the holder's process ends however
//! it ends, so a dead holder never blocks; holding is keeping the descriptor open. The winner
//! then writes who it is into the file (truncate, write, fsync) and a loser reads that to name
//! the holder. A clean release empties the file; a free lock whose file still names someone
//! was left by a run that died, and the take-over is reported `Stale` for the audit trail.
//!
//! `--break-lock` cannot take a flock from a live process. It takes the lock under a new
//! generation of the file instead: the held file gets a second name, `<name>.broken-<ts>`,
//! then a fresh file (created `O_EXCL`, locked, holder written) is renamed over `<name>`, so
//! the name never goes missing. The displaced run is not stopped: it keeps its flock on the old
//! file, now reachable only as `.broken-<ts>`, until it ends, and a later take removes that
//! file once nobody holds it. Breakers go one at a time (a guard flock on `<name>.break`), and
//! every winner checks after its flock that `<name>` is still the file it locked, looking again
//! if a break replaced it meanwhile: a break never leaves two holders of the lock in place.
//!
//! Files: the directory is 0700 and ours, never reached through a symbolic link; lock files
//! are 0600, opened `O_NOFOLLOW`, and never removed or replaced while anyone may hold them,
//! but by a break.

mod dir;
mod holder;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use rustix::fs::FlockOperation;
use rustix::io::Errno;

use crate::error::Error;
use dir::LockDir;
pub use holder::Holder;

/// Takes that end in a lost race are tried again this many times before giving up.
const ATTEMPTS: usize = 20;

/// A winner writes who it is right after its flock: a loser waits this long to read it.
const HOLDER_WAIT: Duration = Duration::from_secs(1);

/// Another `--break-lock` holds the break guard for a few system calls only.
const BREAK_WAIT: Duration = Duration::from_secs(5);

const POLL: Duration = Duration::from_millis(10);

/// Bigger than any holder: a file beyond it is not ours to parse.
const MAX_HOLDER_BYTES: usize = 64 * 1024;

/// How the lock was obtained, for the audit trail.
#[derive(Debug, Clone)]
pub enum Taken {
    Free,
    /// The previous holder's process had died.
    Stale(Holder),
    /// `--break-lock` took it from a live (or unknowable) holder.
    Broken(Holder),
    /// A host lease held by this run's own earlier process (a resume after a dead link).
    Reclaimed(Holder),
    /// A host lease whose holder's heartbeat had stopped: its connection is dead.
    Dead(Holder),
}

/// A held lock: the flock lasts as long as this value (its open file).
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    file: File,
}

impl RunLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    /// Empties the file (so the next run does not take this one for dead) and lets the flock
    /// go with the descriptor. Nothing is removed: another run may already have the file open.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "this runbook and these targets are locked by {} since {}, run `{}` (pid {} on `{}`): nothing was run.\n  Coordinate with them, or pass --break-lock to take the lock anyway (recorded in the audit trail; the other run is not stopped).\n  lock: {}",
        holder.operator, holder.since, holder.run, holder.pid, holder.machine, path.display()
    )]
    Held { path: PathBuf, holder: Box<Holder> },
    #[error(
        "the lock `{}` is held by a process that does not say who it is: nothing was run. If no run is under way, pass --break-lock (recorded in the audit trail)",
        path.display()
    )]
    HolderUnknown { path: PathBuf },
    #[error("the lock directory `{}` is {problem}: refusing to keep locks there", dir.display())]
    UnsafeDir { dir: PathBuf, problem: String },
    #[error("the lock `{}` is {problem}: refusing to use it", path.display())]
    UnsafeFile { path: PathBuf, problem: String },
    #[error(
        "the lock `{}` kept changing hands while this run tried to take it: nothing was run; try again",
        path.display()
    )]
    Unsettled { path: PathBuf },
    #[error("cannot {action} `{}` (the run lock): {source}: nothing was run; {}", path.display(), what_to_do(source))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LockError {
    /// The lock is taken before anything runs: whatever stops it, I/O included (a full disk),
    /// is a pre-flight failure (exit 2). (A method, not `From`: see `LeaseError::into_error`.)
    pub(crate) fn into_error(self) -> Error {
        Error::usage(self.to_string())
    }
}

/// The way on after the lock's file could not be had.
fn what_to_do(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => {
            "free some space there (or use another --audit-dir) and run again"
        }
        Some(libc::EROFS) => "the file system is read-only: give a writable --audit-dir and run again",
        Some(libc::EACCES | libc::EPERM) => "make the directory writable by you (chmod 700) and run again",
        _ => "check the audit directory and run again",
    }
}

/// The lock file of a runbook and its targets, under `<audit-dir>/locks/`.
///
/// `canonical` maps each role to its **canonical** destination: `local`, or `user@host:port`
/// as `ssh -G` resolves it (`transport::canonical`). Callers must pass those, not the labels
/// the operator typed: `ssh://ops@db1:22`, `ops@db1` and an `~/.ssh/config` alias of it are
/// one host, and must be one lock.
pub fn lock_path(audit_dir: &Path, runbook: &str, canonical: &IndexMap<String, String>) -> PathBuf {
    use sha2::Digest;
    let mut pairs: Vec<String> = canonical.iter().map(|(r, h)| format!("{r}={h}")).collect();
    pairs.sort();
    let key = hex::encode(&sha2::Sha256::digest(pairs.join("\n").as_bytes())[..8]);
    audit_dir.join("locks").join(format!("{runbook}-{key}.lock"))
}

/// Takes the lock, or explains who holds it. With `break_lock`, a live holder is displaced
/// (see the module doc): it keeps running, and the result names it.
pub fn acquire(path: &Path, me: Holder, break_lock: bool) -> Result<(RunLock, Taken), LockError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| LockError::UnsafeFile {
            path: path.to_path_buf(),
            problem: "not a plain file name".into(),
        })?;
    let dir = LockDir::open(match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    })?;
    let take = Take {
        dir: &dir,
        name,
        me: &me,
        break_lock,
    };
    for _ in 0..ATTEMPTS {
        let file = dir.open_file(name)?;
        let got = if take.flock(&file)? {
            take.won(file)?
        } else {
            take.lost(file)?
        };
        if let Some((file, taken)) = got {
            take.sweep_broken();
            let lock = RunLock {
                path: path.to_path_buf(),
                file,
            };
            return Ok((lock, taken));
        }
    }
    Err(LockError::Unsettled {
        path: path.to_path_buf(),
    })
}

/// One `acquire` in progress. Each step returns `None` for "the file changed under us: look
/// again", never an error a user would have to act on.
struct Take<'a> {
    dir: &'a LockDir,
    name: &'a str,
    me: &'a Holder,
    break_lock: bool,
}

type Got = Option<(File, Taken)>;

impl Take<'_> {
    fn path(&self) -> PathBuf {
        self.dir.path_of(self.name)
    }

    /// `flock(LOCK_EX|LOCK_NB)`: true when this descriptor now holds it.
    fn flock(&self, file: &File) -> Result<bool, LockError> {
        loop {
            match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(true),
                Err(Errno::WOULDBLOCK) => return Ok(false),
                Err(Errno::INTR) => continue,
                Err(e) => {
                    return Err(LockError::Io {
                        action: "lock",
                        path: self.path(),
                        source: e.into(),
                    });
                }
            }
        }
    }

    /// This descriptor holds the flock: the lock is ours if the name still is this file.
    fn won(&self, file: File) -> Result<Got, LockError> {
        if !self.dir.still_names(self.name, &file)? {
            return Ok(None);
        }
        let taken = match read_holder(&file) {
            None => Taken::Free,
            // A live process here that holds no flock: a `runbook` from before flock locks,
            // which held the lock by the file's existence alone.
            Some(h) if h.is_alive_here() && !self.break_lock => {
                return Err(LockError::Held {
                    path: self.path(),
                    holder: Box::new(h),
                });
            }
            Some(h) if h.is_alive_here() => Taken::Broken(h),
            // Its process is gone (or ran on a machine whose kernel no longer holds the lock).
            Some(h) => Taken::Stale(h),
        };
        self.write_holder(&file)?;
        Ok(Some((file, taken)))
    }

    /// Another descriptor holds the flock: name its holder, or break it.
    fn lost(&self, file: File) -> Result<Got, LockError> {
        let deadline = Instant::now() + HOLDER_WAIT;
        let holder = loop {
            // A dead holder's name is what the winner has not overwritten yet.
            if let Some(h) = read_holder(&file).filter(|h| !h.is_dead()) {
                break Some(h);
            }
            if self.flock(&file)? {
                return self.won(file);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(POLL);
        };
        match (holder, self.break_lock) {
            (Some(h), false) => Err(LockError::Held {
                path: self.path(),
                holder: Box::new(h),
            }),
            (None, false) => Err(LockError::HolderUnknown { path: self.path() }),
            (holder, true) => self.break_generation(file, holder),
        }
    }

    /// `--break-lock` against a live holder: a new generation of the file (module doc).
    fn break_generation(&self, held: File, holder: Option<Holder>) -> Result<Got, LockError> {
        let guard = self.dir.open_file(&format!("{}.break", self.name))?;
        let deadline = Instant::now() + BREAK_WAIT;
        while !self.flock(&guard)? {
            if Instant::now() >= deadline {
                return Err(LockError::Unsettled { path: self.path() });
            }
            std::thread::sleep(POLL);
        }
        // Under the guard only we replace the file: if it is not the one we saw held, another
        // break came first, and the lock has a new holder to look at.
        if !self.dir.still_names(self.name, &held)? {
            return Ok(None);
        }
        if self.flock(&held)? {
            // Its holder left meanwhile: no need to break anything.
            return self.won(held);
        }
        let staging = format!(".{}.new-{}", self.name, std::process::id());
        // A leftover of a breaker with our pid that died halfway.
        self.dir.remove(&staging);
        let fresh = self.dir.create_new(&staging)?;
        if !self.flock(&fresh)? {
            self.dir.remove(&staging);
            return Err(LockError::Unsettled { path: self.path() });
        }
        if let Err(e) = self.write_holder(&fresh) {
            self.dir.remove(&staging);
            return Err(e);
        }
        self.keep_aside();
        if let Err(e) = self.dir.replace(&staging, self.name) {
            self.dir.remove(&staging);
            return Err(e);
        }
        drop(guard);
        Ok(Some((
            fresh,
            Taken::Broken(holder.unwrap_or_else(Holder::unknown)),
        )))
    }

    /// Gives the displaced generation a second name, so it can be found while its run lasts.
    /// Without hard links (some file systems), the rename just unlinks it: its holder keeps
    /// its flock on a nameless file.
    fn keep_aside(&self) {
        let ts = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        for n in 0..10 {
            let aside = match n {
                0 => format!("{}.broken-{ts}", self.name),
                n => format!("{}.broken-{ts}-{n}", self.name),
            };
            match self.dir.link(self.name, &aside) {
                Err(Errno::EXIST) => continue,
                _ => return,
            }
        }
    }

    /// Removes displaced generations whose runs have ended. Nobody can come to hold one again:
    /// whoever still has one open and wins its flock sees that it is no longer the lock.
    fn sweep_broken(&self) {
        for aside in self.dir.names_starting(&format!("{}.broken-", self.name)) {
            if let Ok(Some(file)) = self.dir.open_existing(&aside)
                && self.flock(&file).unwrap_or(false)
            {
                self.dir.remove(&aside);
            }
        }
    }

    /// Truncate, write, fsync: losers read whole JSON or nothing they can parse (and wait).
    fn write_holder(&self, file: &File) -> Result<(), LockError> {
        let mut bytes = serde_json::to_vec(self.me).unwrap_or_default();
        bytes.push(b'\n');
        file.set_len(0)
            .and_then(|()| file.write_all_at(&bytes, 0))
            .and_then(|()| file.sync_data())
            .map_err(|source| LockError::Io {
                action: "write",
                path: self.path(),
                source,
            })
    }
}

/// The holder a lock file names, if it names one.
fn read_holder(file: &File) -> Option<Holder> {
    let mut bytes = vec![0u8; MAX_HOLDER_BYTES];
    let mut len = 0;
    while len < bytes.len() {
        match file.read_at(&mut bytes[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    serde_json::from_slice(bytes[..len].trim_ascii()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    use super::holder::holder;

    /// `x.lock` in a new directory, where `h` wrote itself (holding no flock).
    fn written_by(h: &Holder) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        std::fs::write(&path, serde_json::to_vec(h).unwrap()).unwrap();
        (dir, path)
    }

    /// `locks/` in `dir`, with `mode`.
    fn locks_dir(dir: &Path, mode: u32) -> PathBuf {
        let locks = dir.join("locks");
        std::fs::create_dir(&locks).unwrap();
        std::fs::set_permissions(&locks, std::fs::Permissions::from_mode(mode)).unwrap();
        locks
    }

    fn contents(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/x.lock");
        let (lock, taken) = acquire(&path, Holder::me("r1", "alice"), false).unwrap();
        assert!(matches!(taken, Taken::Free));
        assert!(contents(&path).contains("\"run\":\"r1\""));
        let err = acquire(&path, Holder::me("r2", "bob"), false).unwrap_err();
        assert!(matches!(&err, LockError::Held { holder, .. } if holder.run == "r1"));
        assert!(err.to_string().contains("locked by alice"), "{err}");
        assert!(err.to_string().contains("run `r1`"), "{err}");
        drop(lock);
        assert_eq!(contents(&path), "", "released: the file stays, naming nobody");
        let (_lock, taken) = acquire(&path, Holder::me("r2", "bob"), false).unwrap();
        assert!(
            matches!(taken, Taken::Free),
            "a clean release is not a stale lock"
        );
    }

    #[test]
    fn a_dead_holder_does_not_block_and_is_recorded_as_stale() {
        // A pid far above pid_max is never alive.
        let (_dir, path) = written_by(&holder("old", 999_999_999));
        let (_lock, taken) = acquire(&path, Holder::me("new", "bob"), false).unwrap();
        assert!(matches!(taken, Taken::Stale(h) if h.run == "old"));
    }

    #[test]
    fn a_live_holder_without_a_flock_is_an_older_runbook_and_still_blocks() {
        let (_dir, path) = written_by(&holder("live", std::process::id()));
        assert!(acquire(&path, Holder::me("new", "bob"), false).is_err());
        let (_lock, taken) = acquire(&path, Holder::me("new", "bob"), true).unwrap();
        assert!(matches!(taken, Taken::Broken(h) if h.run == "live"));
    }

    #[test]
    fn break_lock_displaces_a_live_holder_under_a_new_generation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let (first, _) = acquire(&path, Holder::me("first", "alice"), false).unwrap();
        let (second, taken) = acquire(&path, Holder::me("second", "bob"), true).unwrap();
        assert!(matches!(taken, Taken::Broken(h) if h.run == "first"));
        let names = |prefix: &str| -> Vec<String> {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.starts_with(prefix))
                .collect()
        };
        let aside = names("x.lock.broken-");
        assert_eq!(aside.len(), 1, "the displaced generation keeps a name");
        assert!(contents(&dir.path().join(&aside[0])).contains("\"run\":\"first\""));
        assert!(contents(&path).contains("\"run\":\"second\""));

        // The lock is the breaker's now, whatever the displaced run does.
        let err = acquire(&path, Holder::me("third", "carol"), false).unwrap_err();
        assert!(matches!(&err, LockError::Held { holder, .. } if holder.run == "second"));
        drop(first);
        let err = acquire(&path, Holder::me("third", "carol"), false).unwrap_err();
        assert!(matches!(&err, LockError::Held { holder, .. } if holder.run == "second"));
        drop(second);
        let (_lock, taken) = acquire(&path, Holder::me("third", "carol"), false).unwrap();
        assert!(matches!(taken, Taken::Free));
        assert!(names("x.lock.broken-").is_empty(), "swept once its run ended");
        assert!(names(".x.lock.new-").is_empty(), "no staging file left");
    }

    #[test]
    fn a_winner_on_a_replaced_generation_looks_again() {
        // A racer opened the file, a break replaced it, the displaced holder ended: the racer
        // wins the flock of a file that is no longer the lock, and must not take it for one.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let (first, _) = acquire(&path, Holder::me("first", "alice"), false).unwrap();
        let lock_dir = LockDir::open(dir.path()).unwrap();
        let racer = lock_dir.open_file("x.lock").unwrap();
        let (_second, _) = acquire(&path, Holder::me("second", "bob"), true).unwrap();
        drop(first);
        let me = Holder::me("racer", "dave");
        let take = Take {
            dir: &lock_dir,
            name: "x.lock",
            me: &me,
            break_lock: false,
        };
        assert!(take.flock(&racer).unwrap(), "the old generation is free");
        assert!(
            take.won(racer).unwrap().is_none(),
            "but it is not the lock any more"
        );
    }

    #[test]
    fn files_are_private_and_an_older_lock_file_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let locks = locks_dir(dir.path(), 0o755);
        let path = locks.join("x.lock");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _lock = acquire(&path, Holder::me("r", "alice"), false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&locks), 0o700);
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_world_writable_directory_or_a_symlinked_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let locks = locks_dir(dir.path(), 0o777);
        let err = acquire(&locks.join("x.lock"), Holder::me("r", "a"), false).unwrap_err();
        assert!(err.to_string().contains("writable by group or others"), "{err}");

        std::fs::set_permissions(&locks, std::fs::Permissions::from_mode(0o700)).unwrap();
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, locks.join("x.lock")).unwrap();
        let err = acquire(&locks.join("x.lock"), Holder::me("r", "a"), false).unwrap_err();
        assert!(matches!(err, LockError::UnsafeFile { .. }), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(!target.exists(), "nothing was created through the link");
    }

    #[test]
    fn the_key_ignores_target_order() {
        let a: IndexMap<String, String> = [("db".into(), "h1".into()), ("api".into(), "h2".into())].into();
        let b: IndexMap<String, String> = [("api".into(), "h2".into()), ("db".into(), "h1".into())].into();
        assert_eq!(
            lock_path(Path::new("/a"), "rb", &a),
            lock_path(Path::new("/a"), "rb", &b)
        );
    }
}
