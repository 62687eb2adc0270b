//! Runs steps on a remote host through the system OpenSSH client: one multiplexed master per
//! host (so `~/.ssh/config`, ProxyJump, agents and keys behave as users expect), strict host
//! keys, and a wrapper that lets a step be stopped on the remote host, whole process group.

use openssh::Stdio;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openssh::Session;
use tokio::sync::Semaphore;
use tokio::sync::mpsc::Sender;
use tokio::time::{Instant, sleep_until};

use super::destination::Destination;
use super::{Chunk, DRAIN, Ending, GRACE, Job, Reader, Stopping, TransportError, emit, or_never};
use crate::script::{ScriptError, read_and_run, script, shell_quote};

mod connect;
mod marker;

pub use connect::ConnectError;
use marker::{MarkerFilter, new_token};

/// The operator's SSH choices (design §4: `--ssh-config`, `--identity`, `--known-hosts`,
/// `--connect-timeout`, `--accept-new-host-keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// Used instead of `~/.ssh/config` (`ssh -F`).
    pub config: Option<PathBuf>,
    /// The only key offered (`ssh -i`, with `IdentitiesOnly=yes`).
    pub identity: Option<PathBuf>,
    /// Used instead of `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Trust a host seen for the first time and record its key; a changed key is still refused.
    pub accept_new_host_keys: bool,
    /// `ServerAliveInterval`: three probes unanswered and the connection is lost.
    pub keepalive: Duration,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            config: None,
            identity: None,
            known_hosts: None,
            connect_timeout: Duration::from_secs(10),
            accept_new_host_keys: false,
            keepalive: Duration::from_secs(2),
        }
    }
}

/// sshd's default `MaxSessions` is 10 per connection: one is the run's host lease
/// (`lease.rs`), and one is kept free so a command can always be stopped even when every
/// other session is busy.
const MAX_COMMANDS: usize = 8;

/// Margin of the remote `timeout` over the local one: the local timer stops the command first
/// (and says so); the remote one only matters if this process died meanwhile.
const REMOTE_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

/// A live connection to one host.
#[derive(Debug)]
pub struct Ssh {
    label: String,
    session: Arc<Session>,
    master: connect::Master,
    commands: Arc<Semaphore>,
    /// The host lease's ear: each step's process group, as it starts (`+PGID`) and ends
    /// (`-PGID`), so that a run that dies leaves on the host the list of what it left running.
    lease: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<String>>,
    /// The account's login shell is `sh` (the lease says so, `learn_login_shell`): a step's
    /// wrapper is then given to it as it is, not through an `exec sh -c` of its own.
    login_sh: AtomicBool,
}

impl Ssh {
    /// Starts the master connection: `BatchMode=yes`, strict host keys (or accept-new), no agent
    /// or X11 forwarding, control socket in a short private directory.
    pub async fn connect(dest: &str, opts: &SshOptions) -> Result<Ssh, ConnectError> {
        let parsed = Destination::parse(dest).map_err(|e| ConnectError {
            dest: dest.to_string(),
            reason: e.to_string(),
            detail: String::new(),
        })?;
        let master = connect::Master::start(dest, &parsed, opts).await?;
        let session = Arc::new(Session::resume_mux(
            master.control_socket().into(),
            Some(master.log().into()),
        ));
        Ok(Ssh {
            label: dest.to_string(),
            session,
            master,
            commands: Arc::new(Semaphore::new(MAX_COMMANDS)),
            lease: std::sync::OnceLock::new(),
            login_sh: AtomicBool::new(false),
        })
    }

    /// From now on the lease on this host hears of every step's process group.
    pub fn tell_lease(&self, notices: tokio::sync::mpsc::UnboundedSender<String>) {
        let _ = self.lease.set(notices);
    }

    /// What the host said its login shell is (`SHELL`, a path). Unknown, or anything but
    /// `sh` (bash, zsh, fish, csh...), and every step goes through `exec sh -c`.
    pub(crate) fn learn_login_shell(&self, shell: Option<&str>) {
        self.login_sh.store(shell.is_some_and(is_sh), Ordering::Relaxed);
    }

    fn notice(&self, line: String) {
        if let Some(lease) = self.lease.get() {
            let _ = lease.send(line);
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Right after login, sshd sends a small packet (its `hostkeys-00` notice) that Nagle holds
    /// until the client acknowledges the one before; the client, with nothing to send, delays
    /// that ACK ~40 ms, and the first session's confirmation waits behind it (measured: 43 ms to
    /// open the run's first session, 0.5 ms for the next ones; `ssh host true` pays it too). A
    /// second channel opened a moment later (once that notice has arrived) carries the ACK: a
    /// session that only runs `exit`, not waited for. Only a matter of speed: whatever the timing,
    /// nothing waits on it. It costs the host a session and a shell: worth it where the run waits
    /// on this connection, not for a fleet that keeps the machine busy meanwhile.
    pub fn nudge(&self) {
        let session = self.session.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let _ = session
                .raw_command("exit")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
        });
    }

    /// The multiplexed session, for work that outlives one command (the host lease).
    pub(crate) fn session(&self) -> Arc<Session> {
        self.session.clone()
    }

    /// The master's control socket, for `ssh -S` (benchmarks, debugging).
    pub fn control_socket(&self) -> &Path {
        self.master.control_socket()
    }

    /// When `accept_new_host_keys` trusted this host for the first time: ssh's words for it
    /// (`Warning: Permanently added '[10.0.0.5]:2222' (ED25519) to the list of known hosts.`).
    pub fn host_key_added(&self) -> Option<&str> {
        self.master.host_key_added()
    }

    /// The accepted host key's type and fingerprint: `ssh-ed25519 SHA256:...`.
    pub fn host_key(&self) -> Option<&str> {
        self.master.host_key()
    }

    /// The user, host and port ssh resolved this destination to, as `ssh -G` would.
    pub fn endpoint(&self) -> Option<&super::canonical::Canonical> {
        self.master.endpoint()
    }

    /// Whether the master connection is still up.
    pub async fn is_alive(&self) -> bool {
        self.session.check().await.is_ok()
    }

    pub async fn close(self) {
        let Ssh { session, master, .. } = self;
        if let Ok(session) = Arc::try_unwrap(session) {
            let _ = session.close().await;
        }
        master.shutdown().await;
    }

    pub async fn run(&self, job: Job<'_>) -> Result<Ending, TransportError> {
        let (spec, out, cancel, recorded) = (job.spec, job.out, job.cancel, job.recorded);
        let text = script(&spec.env, &spec.command)?;
        let _permit = self
            .commands
            .acquire()
            .await
            .expect("the semaphore is never closed");
        self.master.forget_log();
        let token = new_token();
        let mut child = Session::to_raw_command(
            self.session.clone(),
            remote_command(
                &token,
                spec.timeout,
                text.len(),
                self.login_sh.load(Ordering::Relaxed),
            ),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .await
        .map_err(|e| TransportError::Spawn {
            program: "ssh",
            source: std::io::Error::other(e),
        })?;
        let (Some(mut stdout), Some(mut stderr)) = (child.stdout().take(), child.stderr().take()) else {
            unreachable!("both pipes were requested");
        };
        // The session opened while the start was being put on disk; the script goes only once
        // it is there. Dropped unsent on failure: the remote shell reads an empty script.
        // A stop while the disk is slow ends the attempt before anything was sent.
        tokio::select! {
            on_disk = recorded.wait() => on_disk.map_err(TransportError::NotRecorded)?,
            () = cancel.cancelled() => return Ok(Ending::Cancelled),
        }
        if let Some(mut stdin) = child.stdin().take() {
            // The script travels through the channel, never argv (design §14), written beside
            // the reading of the output so that a big one cannot wait on it.
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = stdin.write_all(text.as_bytes()).await;
                let _ = stdin.shutdown().await;
            });
        }
        let mut remote = RemoteGroup {
            session: self.session.clone(),
            pgid: None,
            armed: true,
        };
        let mut marker = MarkerFilter::new(&token);
        let deadline = spec.timeout.map(|t| Instant::now() + t);
        let mut stopping: Option<Stopping> = None;
        // If the command cannot be confirmed stopped by then, the step is `Lost`.
        let mut give_up_at = None;
        let mut drain_until = None;
        let (mut out_open, mut err_open) = (true, true);
        let (mut oread, mut eread) = (Reader::new(&stdout), Reader::new(&stderr));
        // Stdout is held until the marker names the process group (up to a bound), so whoever
        // sees output can also stop the command: a `run` dropped then still kills it.
        let mut early: Option<Vec<u8>> = Some(Vec::new());

        // The exit status is asked for only once both pipes are closed (or drained after the
        // wrapper reported the end): the master sends it as soon as sshd does, which can be
        // before the last of the output, and hanging up on the master then makes it throw that
        // output away (issue 22, docs/ssh.md "Output and exit status").
        while out_open || err_open {
            let running = marker.exited().is_none();
            let kill_at = stopping.as_ref().filter(|s| !s.killed).and_then(|s| s.kill_at);
            tokio::select! {
                piece = oread.read(&mut stdout), if out_open => match piece {
                    Some(piece) => match early.as_mut() {
                        Some(held) if held.len() + piece.len() <= EARLY_OUTPUT_LIMIT => held.extend_from_slice(&piece),
                        _ => {
                            flush_early(&out, &mut early).await;
                            emit(&out, Chunk::Stdout(piece)).await;
                        }
                    },
                    None => out_open = false,
                },
                piece = eread.read(&mut stderr), if err_open => match piece {
                    Some(piece) => {
                        let shown = marker.push(&piece);
                        if remote.pgid.is_none() && marker.pid().is_some() {
                            remote.pgid = marker.pid();
                            if let Some(pgid) = remote.pgid {
                                self.notice(format!("+{pgid}"));
                                emit(&out, Chunk::Group(pgid)).await;
                            }
                            flush_early(&out, &mut early).await;
                            // A stop asked for before the command's group was known.
                            if let Some(s) = stopping.as_mut().filter(|s| s.kill_at.is_none()) {
                                remote.signal("TERM").await;
                                s.kill_at = Some(Instant::now() + GRACE);
                            }
                        }
                        if marker.exited().is_some() && drain_until.is_none() {
                            // Ended: a background job may hold the pipes open, not the step.
                            drain_until = Some(Instant::now() + DRAIN);
                        }
                        emit(&out, Chunk::Stderr(shown)).await;
                    }
                    None => {
                        err_open = false;
                        emit(&out, Chunk::Stderr(marker.finish())).await;
                    }
                },
                _ = sleep_until(or_never(deadline)), if running && deadline.is_some() && stopping.is_none() => {
                    stopping = Some(remote.stop(Ending::TimedOut).await);
                    give_up_at = Some(Instant::now() + GRACE * 3);
                }
                _ = cancel.cancelled(), if running && stopping.is_none() => {
                    stopping = Some(remote.stop(Ending::Cancelled).await);
                    give_up_at = Some(Instant::now() + GRACE * 3);
                }
                _ = sleep_until(or_never(kill_at)), if running && kill_at.is_some() => {
                    remote.signal("KILL").await;
                    if let Some(s) = stopping.as_mut() {
                        s.killed = true;
                    }
                }
                _ = sleep_until(or_never(give_up_at)), if running && give_up_at.is_some() => {
                    return Ok(self.unconfirmed_stop());
                }
                _ = sleep_until(or_never(drain_until)), if drain_until.is_some() => break,
            }
        }
        flush_early(&out, &mut early).await;
        remote.armed = false;
        if let Some(pgid) = remote.pgid {
            self.notice(format!("-{pgid}"));
        }

        // Every byte is in; the status is on its way or already waiting on the control socket.
        let status = match give_up_at {
            Some(at) => match tokio::time::timeout_at(at, child.wait()).await {
                Ok(status) => status,
                Err(_) => return Ok(self.unconfirmed_stop()),
            },
            None => child.wait().await,
        };
        let ending = match status {
            Ok(status) => match status.code() {
                Some(code) => Ending::Exited(code),
                None => Ending::Lost(format!("the local ssh client ended abnormally ({status})")),
            },
            // process-mux reports exits 255 and 127 as errors; only a dead master makes them
            // a lost connection rather than the command's own exit code.
            Err(openssh::Error::RemoteProcessTerminated) => self.exit_or_lost(255).await,
            Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                self.exit_or_lost(127).await
            }
            Err(e) => Ending::Lost(self.lost_reason(&e)),
        };
        Ok(match (stopping, ending) {
            (_, lost @ Ending::Lost(_)) => lost,
            (Some(stopping), _) => stopping.reason,
            (None, ending) => ending,
        })
    }

    fn unconfirmed_stop(&self) -> Ending {
        Ending::Lost(format!(
            "could not confirm that the command stopped on {}: it may still be running there",
            self.label
        ))
    }

    /// Whether process group `pgid` still exists on the host.
    pub async fn group_alive(&self, pgid: i32) -> bool {
        let cmd = format!("sh -c 'kill -0 -{pgid} 2>/dev/null'");
        self.session
            .raw_command(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }

    /// TERM to the group, then KILL after `GRACE` if it is still there.
    pub async fn stop_group(&self, pgid: i32) {
        send_signal(&self.session, pgid, "TERM").await;
        let until = Instant::now() + GRACE;
        while Instant::now() < until {
            if !self.group_alive(pgid).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        send_signal(&self.session, pgid, "KILL").await;
    }

    async fn exit_or_lost(&self, code: i32) -> Ending {
        match self.session.check().await {
            Ok(()) => Ending::Exited(code),
            Err(e) => Ending::Lost(self.lost_reason(&e)),
        }
    }

    fn lost_reason(&self, e: &openssh::Error) -> String {
        let mut reason = format!("connection to {} lost: {e}", self.label);
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason.push_str(&format!(": {s}"));
            source = s.source();
        }
        reason
    }
}

/// What the remote login shell is given, for a script of `script_len` bytes. Spelled out:
///
/// ```sh
/// exec sh -c 'if kill -0 -$$ 2>/dev/null; then echo "TOKEN $$" >&2; RUN; fi
///   exec 3<&0; setsid sh -c '\''echo "TOKEN $$" >&2; RUN'\'' 0<&3 3<&- & exec 3<&-; wait $!'
/// ```
///
/// The step needs a process group of its own whose id is announced first thing on stderr, so
/// that a second command on the same connection can stop all of it. OpenSSH's sshd already
/// makes each command a session leader (`setsid` in `do_exec_no_pty`), and `exec` keeps its
/// pid: the shell is the leader of its group when `kill -0 -$$` finds that group, and runs
/// the step itself (no `setsid`, no second `sh`, no waiting parent). Elsewhere `setsid` makes
/// the group, in a background job whose exit code the outer `sh` passes on.
///
/// RUN is `(READ); r=$?; echo "TOKEN exit $r" >&2; exit $r`: READ reads the script from the
/// channel's stdin (saved on fd 3 for the background job; no value is ever in an argv on the
/// host) and runs it in a subshell, so that whatever the script does (`exit`, `exec 2>&-`)
/// the wrapper then reports the end on stderr. That line is how the client knows the command
/// ended while a background job still holds the pipes, without asking the master for the
/// status too early (issue 22). Under a timeout RUN is first `exec timeout -k 5 T sh -c RUN`:
/// GNU `timeout` keeps the group (it is already its leader) and kills the whole of it. `exec
/// sh -c` makes this work whatever the login shell is, and the shells are all named `sh`, so
/// a step's own errors read `sh: 1: ...` as they do locally. Where the login shell is `sh`
/// itself (`login_sh`), the wrapper is given to it as it is: the same shell under the same
/// name, one program started fewer per step (about 1 ms of the host's CPU, docs/speed.md).
fn remote_command(token: &str, timeout: Option<Duration>, script_len: usize, login_sh: bool) -> String {
    let report = format!(
        "({}); r=$?; echo \"{token} exit $r\" >&2; exit $r",
        read_and_run(script_len)
    );
    let run = match timeout {
        Some(t) => {
            let secs = (t + REMOTE_TIMEOUT_MARGIN).as_secs_f64().ceil() as u64;
            format!(
                "if command -v timeout >/dev/null 2>&1; then exec timeout -k 5 {secs} sh -c {}; fi; {report}",
                shell_quote(&report)
            )
        }
        None => report,
    };
    let announce = format!("echo \"{token} $$\" >&2");
    // A background job's stdin is /dev/null unless redirected from a saved descriptor.
    let wrapper = format!(
        "if kill -0 -$$ 2>/dev/null; then {announce}; {run}; fi; exec 3<&0; setsid sh -c {} 0<&3 3<&- & exec 3<&-; wait $!",
        shell_quote(&format!("{announce}; {run}"))
    );
    if login_sh {
        wrapper
    } else {
        format!("exec sh -c {}", shell_quote(&wrapper))
    }
}

/// A step's command as `run` sends it to a host whose login shell is `sh` (no timeout, no
/// variables): the command line sshd runs, and the script written on its standard input. For
/// `examples/session_floor.rs`, which measures what the wrapper adds to a bare session.
pub fn wire_form(command: &str) -> Result<(String, String), ScriptError> {
    let text = script(&[], command)?;
    Ok((remote_command(&new_token(), None, text.len(), true), text))
}

/// Whether a login shell at `path` is `sh`: run by sshd as `sh -c COMMAND`, as the wrapper
/// would run itself.
fn is_sh(path: &str) -> bool {
    path.rsplit('/').next() == Some("sh")
}

/// How much stdout is held while waiting for the marker line.
const EARLY_OUTPUT_LIMIT: usize = 256 * 1024;

/// Emits the stdout held before the marker, once.
async fn flush_early(out: &Sender<Chunk>, early: &mut Option<Vec<u8>>) {
    if let Some(held) = early.take().filter(|h| !h.is_empty()) {
        emit(out, Chunk::Stdout(held)).await;
    }
}

/// The remote process group of one running command. If `run` is abandoned midway (its
/// future dropped), the group is still stopped, from a task of its own.
struct RemoteGroup {
    session: Arc<Session>,
    pgid: Option<i32>,
    armed: bool,
}

impl RemoteGroup {
    /// Sends `signal` to the group (falling back to the process, for a host without `setsid`).
    async fn signal(&self, signal: &str) {
        if let Some(pgid) = self.pgid {
            send_signal(&self.session, pgid, signal).await;
        }
    }

    async fn stop(&self, reason: Ending) -> Stopping {
        let mut stopping = Stopping::new(reason);
        if self.pgid.is_some() {
            self.signal("TERM").await;
            stopping.kill_at = Some(Instant::now() + GRACE);
        }
        stopping
    }
}

async fn send_signal(session: &Session, pgid: i32, signal: &str) {
    // dash's `kill` refuses `--`; `-PID` alone names the group. Errors (the group is already
    // gone, the connection too) are not actionable here: the caller sees how the command ends.
    let cmd = format!("sh -c 'kill -{signal} -{pgid} 2>/dev/null || kill -{signal} {pgid} 2>/dev/null'");
    let _ = session
        .raw_command(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

impl Drop for RemoteGroup {
    fn drop(&mut self) {
        let (Some(pgid), true) = (self.pgid, self.armed) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let session = self.session.clone();
        runtime.spawn(async move {
            send_signal(&session, pgid, "TERM").await;
            tokio::time::sleep(GRACE).await;
            send_signal(&session, pgid, "KILL").await;
        });
    }
}

#[cfg(test)]
mod tests;
