//! The run lock (design §6): one run at a time per runbook and target set, so two engineers
//! never walk the same scenario against the same hosts at once. A lock is a small JSON file next
//! to the audit files, created with `O_EXCL`; a lock whose process died on this machine does not
//! block, and `--break-lock` overrides any other (both are recorded in the audit trail).

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Who holds a lock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub run: String,
    pub operator: String,
    pub pid: u32,
    /// The machine the holding process runs on: its pid means nothing elsewhere.
    pub machine: String,
    /// When the lock was taken (RFC 3339).
    pub since: String,
    /// The holder's start time (clock ticks since boot, from `/proc`), so a recycled pid is
    /// not mistaken for the holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
}

impl Holder {
    pub fn me(run: &str, operator: &str) -> Holder {
        Holder {
            run: run.to_string(),
            operator: operator.to_string(),
            pid: std::process::id(),
            machine: machine(),
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            started: process_state(std::process::id()).map(|(_, started)| started),
        }
    }

    /// True when the holder's process is gone (only knowable on the same machine): no such
    /// pid, a zombie nobody reaped (containers without an init), or another process that got
    /// the pid since.
    fn is_dead(&self) -> bool {
        if self.machine != machine() {
            return false;
        }
        match process_state(self.pid) {
            Some((state, _)) if state == 'Z' || state == 'X' => true,
            Some((_, started)) => self.started.is_some_and(|s| s != started),
            None if Path::new("/proc/self/stat").exists() => true,
            None => {
                // No /proc: kill(2) with signal 0 only checks that the pid exists.
                // SAFETY: signal 0 sends nothing.
                let exists = unsafe { libc::kill(self.pid as libc::pid_t, 0) } == 0
                    || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
                !exists
            }
        }
    }
}

/// A process's state letter and start time from `/proc/PID/stat`; `None` when it does not exist.
fn process_state(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: parse after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the file (starttime) is the 20th after the name.
    let started = fields.get(19)?.parse().ok()?;
    Some((state, started))
}

fn machine() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// How the lock was obtained, for the audit trail.
#[derive(Debug, Clone)]
pub enum Taken {
    Free,
    /// The previous holder's process had died.
    Stale(Holder),
    /// `--break-lock` took it from a live (or unknowable) holder.
    Broken(Holder),
}

/// A held lock; released (its file removed) on drop, if it is still ours.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    holder: Holder,
}

impl RunLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if read(&self.path).is_some_and(|h| h == self.holder) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The lock file of a runbook and its targets (role → host), under `<audit-dir>/locks/`.
pub fn lock_path(audit_dir: &Path, runbook: &str, targets: &IndexMap<String, String>) -> PathBuf {
    use sha2::Digest;
    let mut pairs: Vec<String> = targets.iter().map(|(r, h)| format!("{r}={h}")).collect();
    pairs.sort();
    let key = hex::encode(&sha2::Sha256::digest(pairs.join("\n").as_bytes())[..8]);
    audit_dir.join("locks").join(format!("{runbook}-{key}.lock"))
}

fn read(path: &Path) -> Option<Holder> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Takes the lock, or explains who holds it.
pub fn acquire(path: &Path, me: Holder, break_lock: bool) -> Result<(RunLock, Taken), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::runtime(format!("cannot create {}: {e}", dir.display())))?;
    // The lock is written whole to a private file, then hard-linked into place: `link(2)` fails
    // when the lock exists, so nobody ever sees a half-written lock.
    let staging = dir.join(format!(".{}.{}", me.run, std::process::id()));
    let bytes = serde_json::to_vec(&me).unwrap_or_default();
    std::fs::write(&staging, &bytes)
        .and_then(|()| std::fs::File::open(&staging)?.sync_all())
        .map_err(|e| Error::runtime(format!("cannot write the lock {}: {e}", staging.display())))?;
    let result = take(path, &staging, break_lock);
    let _ = std::fs::remove_file(&staging);
    result.map(|taken| {
        (
            RunLock {
                path: path.to_path_buf(),
                holder: me,
            },
            taken,
        )
    })
}

fn take(path: &Path, staging: &Path, break_lock: bool) -> Result<Taken, Error> {
    let mut taken = Taken::Free;
    for _ in 0..3 {
        match std::fs::hard_link(staging, path) {
            Ok(()) => return Ok(taken),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = read(path);
                match holder {
                    Some(h) if h.is_dead() => taken = Taken::Stale(h),
                    Some(h) if break_lock => taken = Taken::Broken(h),
                    Some(h) => {
                        return Err(Error::usage(format!(
                            "this runbook and these targets are locked by {} since {}, run {} (pid {} on {}): nothing was run.\n  Coordinate with them; if that run is dead, pass --break-lock (recorded in the audit trail).\n  lock: {}",
                            h.operator,
                            h.since,
                            h.run,
                            h.pid,
                            h.machine,
                            path.display()
                        )));
                    }
                    None if break_lock => {}
                    None => {
                        return Err(Error::usage(format!(
                            "the lock {} cannot be read: nothing was run. If no run is under way, pass --break-lock",
                            path.display()
                        )));
                    }
                }
                // Remove and race for it again: link(2) decides who wins.
                let _ = std::fs::remove_file(path);
            }
            Err(e) => {
                return Err(Error::runtime(format!(
                    "cannot create the lock {}: {e}",
                    path.display()
                )));
            }
        }
    }
    Err(Error::usage(format!(
        "another run keeps taking the lock {}: try again",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(run: &str, pid: u32) -> Holder {
        Holder {
            pid,
            ..Holder::me(run, "alice")
        }
    }

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/x.lock");
        let (lock, taken) = acquire(&path, Holder::me("r1", "alice"), false).unwrap();
        assert!(matches!(taken, Taken::Free));
        let err = acquire(&path, Holder::me("r2", "bob"), false).unwrap_err();
        assert!(err.to_string().contains("locked by alice"), "{err}");
        assert!(err.to_string().contains("run r1"), "{err}");
        drop(lock);
        assert!(!path.exists());
        acquire(&path, Holder::me("r2", "bob"), false).unwrap();
    }

    #[test]
    fn a_dead_holder_does_not_block_and_break_lock_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        // A pid far above pid_max is never alive.
        std::fs::write(&path, serde_json::to_vec(&holder("old", 999_999_999)).unwrap()).unwrap();
        let (lock, taken) = acquire(&path, Holder::me("new", "bob"), false).unwrap();
        assert!(matches!(taken, Taken::Stale(h) if h.run == "old"));
        drop(lock);
        let live = holder("live", std::process::id());
        std::fs::write(&path, serde_json::to_vec(&live).unwrap()).unwrap();
        assert!(acquire(&path, Holder::me("new", "bob"), false).is_err());
        let (_lock, taken) = acquire(&path, Holder::me("new", "bob"), true).unwrap();
        assert!(matches!(taken, Taken::Broken(h) if h.run == "live"));
    }

    #[test]
    fn a_recycled_pid_or_a_zombie_is_not_the_holder() {
        let mut h = holder("old", std::process::id());
        assert!(!h.is_dead(), "this process is alive and started when it says");
        h.started = h.started.map(|s| s + 1);
        assert!(h.is_dead(), "same pid, another start time: the holder is gone");
        // A child that exits and is not reaped stays a zombie.
        let child = std::process::Command::new("true").spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let zombie = Holder {
            started: process_state(child.id()).map(|(_, s)| s),
            ..holder("z", child.id())
        };
        assert_eq!(process_state(child.id()).map(|(state, _)| state), Some('Z'));
        assert!(zombie.is_dead(), "a zombie holds nothing");
        drop(child);
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
