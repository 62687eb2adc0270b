//! The host lease (design §18): while a run lasts it holds an `flock` on every SSH target, so a
//! second run against the same host is refused naming the holder (run, operator, machine),
//! whatever machine or local account it comes from and whatever the runbook. The local run
//! lock cannot see those: it lives in one operator's audit directory.
//!
//! How: one long-running command per host through the run's SSH master (`lease/remote.sh`,
//! POSIX `sh`, since sshd runs it through the user's login shell). It takes
//! `flock -n` on `/tmp/runbook-lease-<uid>/lease`, writes `<its pid> <holder JSON>` there,
//! answers `RBLEASE locked`, and then waits on its stdin. The lease lasts as long as that
//! stdin: dropping the `Lease` closes it (and `Lease::release` waits until the remote side let
//! go); a dead master or a killed `runbook` closes it too, as soon as sshd notices the
//! connection is gone (a connection that vanishes silently keeps the lease until sshd's
//! `ClientAlive`/TCP keepalive gives up on it). A loser reads the holder line, trusts it only
//! while that pid is alive (else the winner has not written yet: it waits a little), and is
//! refused naming it. A host without `flock` (util-linux; not on macOS or the BSDs) gets a
//! clear error, never a silent pass. The lease occupies one of the connection's sshd sessions
//! (`MaxSessions`, 10 by default) for the whole run.
//!
//! Why `/tmp/runbook-lease-<uid>` and not `$XDG_RUNTIME_DIR`: the lease must be the same file
//! for every session of that user on that host, and `XDG_RUNTIME_DIR` is set or not depending
//! on how the session was opened (pam_systemd, `UsePAM`, the command's environment); and
//! `/run/user/<uid>` is removed when the user's last logind session ends, taking a held lease
//! file with it. Either would let two runs each hold "the" lease in two different files. The
//! uid alone names the directory; it is created 0700 under umask 077, and refused when it is a
//! symbolic link, not a directory, or someone else's (`/tmp` is sticky: once ours, nobody
//! can swap it). The lease is per remote user: two runs logging in as two different users do
//! not see each other's lease.
//!
//! `--break-lock`: nothing remote is killed. As with the local lock, the breaker takes the
//! lease under a new generation of the file, one breaker at a time (a guard `flock` on
//! `break`): the held file gets a second name `lease.broken-<ts>-<pid>`, a fresh file (locked,
//! holder written) is renamed over `lease`, and the displaced run keeps its flock on the old
//! file until it ends (a later take removes it then). Every winner checks after its flock
//! that `lease` is still the file it locked (`ls -di` before the open and after the flock:
//! a generation is never reused), and looks again if a break replaced it. The result names
//! the displaced holder (`Taken::Broken`) for the audit trail.
//!
//! Holder details are for people; the flock alone decides. In two narrow races (a break at
//! the very moment a winner writes its line, or a holder ending while being broken) the
//! details can name the wrong run or nobody, never give the lease to two.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use openssh::{Child, ChildStderr, ChildStdout, Session, Stdio};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};

use crate::error::Error;
use crate::lock::{Holder, Taken};
use crate::script::shell_quote;
use crate::transport::Ssh;

/// Where the per-user lease directory is made on the remote host (module doc).
const LEASE_BASE: &str = "/tmp";

/// The remote side waits up to 10 s for another breaker and 2 s for a holder to write.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// How long `release` waits for the remote side to let go.
const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// How often the holder tells the host it is alive (a line on the lease's stdin). Silent for
/// 30 s, it counts as dead there: its connection is gone even when sshd has not noticed, and
/// the next run may take the lease (`lease/remote.sh`).
const HEARTBEAT: Duration = Duration::from_secs(5);

/// What each line of the remote side's answer starts with.
const ANSWER: &str = "RBLEASE ";

/// The remote side (`lease/remote.sh`): `$1` the holder JSON, `$2` `take` or `break`, `$3` the
/// base directory; it answers with `RBLEASE` lines, then holds the lease until stdin ends.
const SCRIPT: &str = include_str!("lease/remote.sh");

/// What the login shell is given: the script as `sh -c`'s one word, its arguments quoted the
/// same way, so nothing in the holder is ever parsed as shell. `exec`: the login shell
/// becomes that `sh` rather than forking it (a process less per host).
fn remote_command(holder_json: &str, break_lease: bool, base: &str) -> String {
    let mode = if break_lease { "break" } else { "take" };
    format!(
        "exec sh -c {} rb-lease {} {mode} {}",
        shell_quote(SCRIPT),
        shell_quote(holder_json),
        shell_quote(base)
    )
}

/// A held lease on one host; released when dropped.
pub struct Lease {
    host: String,
    file: String,
    taken: Taken,
    /// The remote shell holding it: which of a run's leases a shared one is.
    holder_pid: u32,
    /// Another destination of this run holds this lease (the same machine and account).
    shared: bool,
    /// The process groups a dead previous holder had left running there, stopped first.
    stopped: Vec<i32>,
    /// Lines for the remote side: a step's process group started (`+PGID`) or ended.
    notices: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    child: Option<Child<Arc<Session>>>,
    /// Dropped to stop the heartbeat, which then closes the remote side's stdin: the release.
    beating: Option<tokio::sync::oneshot::Sender<()>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    /// Its output pipes, kept open as long as the lease, so that nothing the remote side might
    /// still write fails and ends it early.
    _output: Option<(Lines<BufReader<ChildStdout>>, ChildStderr)>,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("host", &self.host)
            .field("file", &self.file)
            .field("taken", &self.taken)
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// The host as the operator named it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The lease file on the host, for the audit trail.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// `Free`, `Stale` (the file named a run that ended without letting go) or `Broken`.
    pub fn taken(&self) -> &Taken {
        &self.taken
    }

    /// The process groups a dead previous holder had left running on the host, stopped
    /// before this run took it.
    pub fn stopped(&self) -> &[i32] {
        &self.stopped
    }

    /// Where this host's steps say which process groups run (`+PGID`, `-PGID`): the holder's
    /// lease, also for a host that shares it (`all`: the run's leases).
    pub fn notices(&self, all: &[Lease]) -> Option<tokio::sync::mpsc::UnboundedSender<String>> {
        if !self.shared {
            return self.notices.clone();
        }
        all.iter()
            .find(|l| !l.shared && l.holder_pid == self.holder_pid && l.file == self.file)
            .and_then(|l| l.notices.clone())
    }

    /// `Some(host)` when this host is one of `all`'s other hosts under another name: that
    /// lease, of this same run, serves both.
    pub fn shared_with<'a>(&self, all: &'a [Lease]) -> Option<&'a str> {
        if !self.shared {
            return None;
        }
        all.iter()
            .find(|l| !l.shared && l.holder_pid == self.holder_pid && l.file == self.file)
            .map(|l| l.host.as_str())
            .or(Some("another of this run's hosts"))
    }

    /// Lets go and waits (a few seconds at most) until the remote side has, so that the next
    /// run can have the host at once.
    pub async fn release(mut self) {
        drop(self.beating.take());
        if let Some(heartbeat) = self.heartbeat.take() {
            // It closes the remote side's stdin as it ends: that is the release.
            let _ = heartbeat.await;
        }
        if let Some(child) = self.child.take() {
            let _ = tokio::time::timeout(RELEASE_WAIT, child.wait()).await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // The heartbeat stops and closes the remote side's stdin: it lets go by itself.
        drop(self.beating.take());
        if let Some(mut child) = self.child.take() {
            drop(child.stdin().take());
        }
    }
}

/// Writes a line to the remote side every `HEARTBEAT`, and each notice as it comes, until told
/// to stop (or the connection is gone); then `bye` and end of file there: the release.
fn heartbeat(
    mut stdin: openssh::ChildStdin,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::UnboundedSender<String>,
) {
    use tokio::io::AsyncWriteExt;
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let (notices, mut noticed) = tokio::sync::mpsc::unbounded_channel::<String>();
    let task = tokio::spawn(async move {
        loop {
            let line = tokio::select! {
                _ = &mut stopped => break,
                Some(notice) = noticed.recv() => notice,
                () = tokio::time::sleep(HEARTBEAT) => String::new(),
            };
            if stdin.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                return;
            }
        }
        let _ = stdin.write_all(b"bye\n").await;
    });
    (stop, task, notices)
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "`{host}` is in use by another run: run `{}` of {} on `{}`, since {}: nothing was run.\n  Coordinate with them, or pass --break-lock to go ahead anyway (recorded in the audit trail; the other run is not stopped).\n  lease: {host}:{file}",
        holder.run, holder.operator, holder.machine, holder.since
    )]
    Held {
        host: String,
        file: String,
        holder: Box<Holder>,
    },
    #[error(
        "`{host}` is leased by a process that does not say who it is (`{file}` is locked there but names no live run): nothing was run. If no run is under way there, pass --break-lock (recorded in the audit trail)"
    )]
    HolderUnknown { host: String, file: String },
    /// `why`: `is not installed`, or `fails (exit N)`.
    #[error(
        "`flock` {why} on `{host}` (it comes with util-linux): the run cannot lease the host, so nothing was run"
    )]
    NoFlock { host: String, why: String },
    #[error("the lease directory on `{host}` is unsafe: {problem}: nothing was run")]
    UnsafeDir { host: String, problem: String },
    #[error("the lease on `{host}` kept changing hands: nothing was run; try again")]
    Unsettled { host: String },
    #[error("cannot take the lease on `{host}`: {reason}")]
    Failed { host: String, reason: String },
}

impl LeaseError {
    /// A host that cannot be leased stops the run before anything ran (usage, exit 2); a
    /// broken connection is a runtime error. (A method, not `From`: the error type stays a
    /// leaf that knows no module above it.)
    pub(crate) fn into_error(self) -> Error {
        match self {
            LeaseError::Failed { .. } => Error::runtime(self.to_string()),
            _ => Error::usage(self.to_string()),
        }
    }
}

/// Takes the lease on the host `ssh` is connected to, for `holder` (the run's own, as in its
/// lock). With `break_lease`, a live holder is displaced, not stopped (module doc).
pub async fn take(ssh: &Ssh, holder: &Holder, break_lease: bool) -> Result<Lease, LeaseError> {
    let host = ssh.label().to_string();
    let failed = |reason: String| LeaseError::Failed {
        host: host.clone(),
        reason,
    };
    let holder = Holder {
        heartbeat: Some(HEARTBEAT.as_secs()),
        ..holder.clone()
    };
    let json = serde_json::to_string(&holder).map_err(|e| failed(e.to_string()))?;
    let mut child = Session::to_raw_command(ssh.session(), remote_command(&json, break_lease, LEASE_BASE))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .await
        .map_err(|e| failed(format!("cannot start the lease command: {e}")))?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout().take(), child.stderr().take()) else {
        unreachable!("both pipes were requested");
    };
    let mut lines = BufReader::new(stdout).lines();
    let answer = match tokio::time::timeout(ANSWER_WAIT, read_answer(&mut lines)).await {
        Ok(Some(answer)) => answer,
        Ok(None) => {
            // The remote side ended without answering: its login shell, most likely.
            let mut said = String::new();
            let _ = tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut said)).await;
            let said = said.trim();
            return Err(failed(if said.is_empty() {
                "the lease command ended without an answer".to_string()
            } else {
                format!("the lease command ended without an answer: {said}")
            }));
        }
        Err(_) => {
            return Err(failed(format!(
                "no answer from the lease command within {}s",
                ANSWER_WAIT.as_secs()
            )));
        }
    };
    let (held, taken, stopped) = match answer {
        Answer::Taken {
            how,
            held,
            previous,
            stopped,
            login,
        } => {
            ssh.learn_login_shell(login.as_deref());
            let taken = match (how, previous) {
                (How::Free, None) => Taken::Free,
                (How::Free, Some(h)) => Taken::Stale(h),
                (How::Broken, h) => Taken::Broken(h.unwrap_or_else(Holder::unknown)),
                (How::Reclaimed, h) => Taken::Reclaimed(h.unwrap_or_else(Holder::unknown)),
                (How::Dead, h) => Taken::Dead(h.unwrap_or_else(Holder::unknown)),
            };
            (held, taken, stopped)
        }
        Answer::Shared(held) => {
            return Ok(Lease {
                host,
                file: held.file,
                taken: Taken::Free,
                holder_pid: held.pid,
                shared: true,
                stopped: Vec::new(),
                notices: None,
                child: None,
                beating: None,
                heartbeat: None,
                _output: None,
            });
        }
        Answer::Held { file, holder } => {
            return Err(LeaseError::Held {
                host,
                file,
                holder: Box::new(holder),
            });
        }
        Answer::HeldUnknown { file } => return Err(LeaseError::HolderUnknown { host, file }),
        Answer::NoFlock(why) => return Err(LeaseError::NoFlock { host, why }),
        Answer::Unsafe(problem) => return Err(LeaseError::UnsafeDir { host, problem }),
        Answer::Unsettled => return Err(LeaseError::Unsettled { host }),
    };
    let (beating, heartbeat, notices) = match child.stdin().take() {
        Some(stdin) => {
            let (stop, task, notices) = heartbeat(stdin);
            (Some(stop), Some(task), Some(notices))
        }
        None => (None, None, None),
    };
    Ok(Lease {
        host,
        file: held.file,
        taken,
        holder_pid: held.pid,
        shared: false,
        stopped,
        notices,
        child: Some(child),
        beating,
        heartbeat,
        _output: Some((lines, stderr)),
    })
}

/// The lease file on the host and the remote shell holding it.
#[derive(Debug, PartialEq, Eq)]
struct Held {
    pid: u32,
    file: String,
}

impl Held {
    /// `PID FILE`, as the remote side answers.
    fn parse(rest: &str) -> Option<Held> {
        let (pid, file) = rest.split_once(' ')?;
        Some(Held {
            pid: pid.parse().ok()?,
            file: file.to_string(),
        })
    }
}

/// How a lease was taken, as the remote side says it.
#[derive(Debug, PartialEq, Eq)]
enum How {
    /// Nobody held it (the holder line, if any, is a run that ended without letting go).
    Free,
    Broken,
    Reclaimed,
    Dead,
}

/// The remote side's answer.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Taken {
        how: How,
        held: Held,
        previous: Option<Holder>,
        /// The process groups a dead previous holder left running, stopped first.
        stopped: Vec<i32>,
        /// The account's login shell (`SHELL` there), which runs every command of the run.
        login: Option<String>,
    },
    /// This run holds it already, through another of its destinations.
    Shared(Held),
    Held {
        file: String,
        holder: Holder,
    },
    HeldUnknown {
        file: String,
    },
    NoFlock(String),
    Unsafe(String),
    Unsettled,
}

/// Reads up to the answer (skipping anything a login shell printed before it); `None` when
/// the output ends first.
async fn read_answer<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut Lines<R>) -> Option<Answer> {
    let (mut stopped, mut login) = (Vec::new(), None);
    let status = loop {
        let line = lines.next_line().await.ok()??;
        if let Some(status) = line.strip_prefix(ANSWER) {
            if let Some(groups) = status.strip_prefix("stopped ") {
                stopped.extend(groups.split_whitespace().filter_map(|g| g.parse::<i32>().ok()));
            } else if let Some(shell) = status.strip_prefix("login ") {
                login = Some(shell.to_string()).filter(|s| !s.is_empty());
            } else {
                break status.to_string();
            }
        }
    };
    let (word, rest) = status.split_once(' ').unwrap_or((status.as_str(), ""));
    let file = rest.to_string();
    // The heartbeat is the host's business: the trail names the holder as its run wrote it.
    let mut holder_line = async || -> Option<Holder> {
        let line = lines.next_line().await.ok()??;
        let holder: Holder = serde_json::from_str(line.trim()).ok()?;
        Some(Holder {
            heartbeat: None,
            ..holder
        })
    };
    let how = match word {
        "locked" => Some(How::Free),
        "broken" => Some(How::Broken),
        "reclaimed" => Some(How::Reclaimed),
        "dead" => Some(How::Dead),
        _ => None,
    };
    if let Some(how) = how {
        let held = Held::parse(&file)?;
        return Some(Answer::Taken {
            how,
            held,
            previous: holder_line().await,
            stopped,
            login,
        });
    }
    Some(match word {
        "shared" => Answer::Shared(Held::parse(&file)?),
        "held" => match holder_line().await {
            Some(holder) => Answer::Held { file, holder },
            None => Answer::HeldUnknown { file },
        },
        "held-unknown" => Answer::HeldUnknown { file },
        "no-flock" => Answer::NoFlock(rest.to_string()),
        "unsafe" => Answer::Unsafe(rest.to_string()),
        _ => Answer::Unsettled,
    })
}

#[cfg(test)]
mod tests;
