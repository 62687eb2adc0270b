//! Who holds a lock or a lease, as written into the lock file and recorded in the audit trail:
//! enough for a second operator to find the first (run, operator, machine, since), and for
//! this machine to tell a dead holder from a live one (pid and its start time).

use std::path::Path;

use serde::{Deserialize, Serialize};

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
    /// A host lease's holder sends a heartbeat this often (seconds): silent for much longer,
    /// its connection is dead (`lease/remote.sh`). Absent in local locks and older leases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<u64>,
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
            heartbeat: None,
        }
    }

    /// Stands for a holder that holds the lock but never wrote who it is (it is stuck between
    /// taking the lock and writing, or it is not a `runbook`): `--break-lock` still records
    /// that it displaced someone.
    pub(crate) fn unknown() -> Holder {
        Holder {
            run: "unknown".to_string(),
            operator: "unknown".to_string(),
            pid: 0,
            machine: "unknown".to_string(),
            since: String::new(),
            started: None,
            heartbeat: None,
        }
    }

    /// True when the holder's process is gone (only knowable on the same machine): no such
    /// pid, a zombie nobody reaped (containers without an init), or another process that got
    /// the pid since.
    pub(crate) fn is_dead(&self) -> bool {
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

    /// True when the holder is a live process of this machine.
    pub(crate) fn is_alive_here(&self) -> bool {
        self.machine == machine() && !self.is_dead()
    }
}

/// A process's state letter and start time from `/proc/PID/stat`; `None` when it does not exist.
pub(crate) fn process_state(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: parse after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the file (starttime) is the 20th after the name.
    let started = fields.get(19)?.parse().ok()?;
    Some((state, started))
}

/// This machine's host name (`uname -n`): what `Holder::machine` says, and what other
/// records (the remote lease) name this machine by.
pub(super) fn machine() -> String {
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .trim()
        .to_string();
    if name.is_empty() {
        "unknown".to_string()
    } else {
        name
    }
}

/// For tests: this process's holder of `run`, by `alice`, but with `pid`.
#[cfg(test)]
pub(super) fn holder(run: &str, pid: u32) -> Holder {
    Holder {
        pid,
        ..Holder::me(run, "alice")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_pid_or_a_zombie_is_not_the_holder() {
        let mut h = holder("old", std::process::id());
        assert!(!h.is_dead(), "this process is alive and started when it says");
        assert!(h.is_alive_here());
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
    fn a_holder_elsewhere_is_never_judged_from_here() {
        let h = Holder {
            machine: "some-other-machine".into(),
            ..holder("x", 999_999_999)
        };
        assert!(!h.is_dead() && !h.is_alive_here());
    }

    #[test]
    fn the_machine_is_the_host_name() {
        let proc_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(machine(), proc_name.trim());
    }
}
