//! Runs one step's command where its target is (design §4): `sh -c` on this machine, or over
//! one multiplexed SSH connection per host; streams its output, and stops it — the whole process
//! group, on the remote host too — on timeout or when the operator asks.

pub(crate) mod audit_host;
mod canonical;
mod destination;
mod local;
mod ssh;
mod stub;

use std::time::Duration;

use tokio::sync::mpsc::Sender;

use crate::audit::Recorded;
pub use tokio_util::sync::CancellationToken;

pub(crate) use audit_host::{AuditHost, Started};
pub use canonical::canonical;
pub(crate) use destination::Destination;
pub(crate) use local::Local;
pub use ssh::{ConnectError, Ssh, SshOptions, wire_form};
pub(crate) use stub::{Clock, DEFAULT_TOOK, Reply, Stub, Watcher};

use crate::script::ScriptError;

/// Time between TERM and KILL when a command is stopped: long enough for a well-behaved
/// command to clean up, short enough that the operator is not left waiting.
pub(crate) const GRACE: Duration = Duration::from_secs(3);

/// How long output is still read after the command ended, for a background job that kept the
/// pipes open (`daemon &`): it must not hold the step forever.
const DRAIN: Duration = Duration::from_millis(300);

/// One command to run: what, where its output goes, what stops it, and what it waits for
/// before it is sent (the step's start on disk).
pub struct Job<'a> {
    pub spec: &'a CommandSpec,
    pub out: Sender<Chunk>,
    pub cancel: CancellationToken,
    pub recorded: Recorded,
}

/// One command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The step's shell text, never modified.
    pub command: String,
    /// Exported, quoted, before the command runs (design §2 "Variables").
    pub env: Vec<(String, String)>,
    /// Hard limit: past it the command is stopped and the step ends `TimedOut`.
    pub timeout: Option<Duration>,
    /// Whose command: the step id as recorded (`call-step/step` in a sub-run) and its attempt
    /// (counted across retries and revisits). Only the stub transport reads them.
    pub step: String,
    pub attempt: u32,
}

/// A piece of output, as it arrived. Not masked: secrets are the caller's to mask (`Masker`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The remote command's process group, once the wrapper announced it (SSH only).
    Group(i32),
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this code (over SSH, a command killed by a signal shows as 128 + signal).
    Exited(i32),
    /// It was killed by this signal (local commands only).
    Signaled(i32),
    /// It outlived its timeout and was stopped.
    TimedOut,
    /// The cancel token fired and it was stopped.
    Cancelled,
    /// The connection died while it ran: whether it finished, and how, is unknown.
    Lost(String),
}

/// A command could not be started at all (nothing ran).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The start of the step could not be put on disk: its command was never sent.
    #[error("its start could not be recorded, so it was not run: {0}")]
    NotRecorded(String),
}

/// Where steps run. Known cases, so an enum rather than a trait object: this machine, a host
/// over SSH, or nowhere (`runbook test`: replies scripted by a test case).
#[derive(Debug)]
pub enum Transport {
    Local(Local),
    Ssh(Ssh),
    Stub(Stub),
}

impl Transport {
    pub fn local() -> Transport {
        Transport::Local(Local)
    }

    /// Connects one multiplexed master to `dest` (see `Ssh::connect`).
    pub async fn connect(dest: &str, opts: &SshOptions) -> Result<Transport, ConnectError> {
        Ssh::connect(dest, opts).await.map(Transport::Ssh)
    }

    /// Spares a fresh SSH connection's first session a ~40 ms delayed ACK (`Ssh::nudge`).
    pub fn nudge(&self) {
        if let Transport::Ssh(ssh) = self {
            ssh.nudge();
        }
    }

    /// `local`, or the destination as the operator gave it.
    pub fn label(&self) -> String {
        match self {
            Transport::Local(_) | Transport::Stub(_) => "local".to_string(),
            Transport::Ssh(ssh) => ssh.label().to_string(),
        }
    }

    /// When `--accept-new-host-keys` trusted this host for the first time: ssh's words for it.
    pub fn host_key_added(&self) -> Option<&str> {
        match self {
            Transport::Local(_) | Transport::Stub(_) => None,
            Transport::Ssh(ssh) => ssh.host_key_added(),
        }
    }

    /// The type and fingerprint of the host key accepted at connection (`None` locally).
    pub fn host_key(&self) -> Option<&str> {
        match self {
            Transport::Local(_) | Transport::Stub(_) => None,
            Transport::Ssh(ssh) => ssh.host_key(),
        }
    }

    /// The user, host and port an SSH host's connection resolved to (`ssh -G`'s answer).
    pub fn endpoint(&self) -> Option<&canonical::Canonical> {
        match self {
            Transport::Local(_) | Transport::Stub(_) => None,
            Transport::Ssh(ssh) => ssh.endpoint(),
        }
    }

    /// Whether commands can still reach the host (after a `Lost` ending: reconnect if not).
    pub async fn is_alive(&self) -> bool {
        match self {
            Transport::Local(_) | Transport::Stub(_) => true,
            Transport::Ssh(ssh) => ssh.is_alive().await,
        }
    }

    /// Runs one command, streaming its output to `out` as it arrives. On timeout or when
    /// `cancel` fires, its process group gets TERM, then KILL after `GRACE`.
    pub async fn run(
        &self,
        spec: &CommandSpec,
        out: Sender<Chunk>,
        cancel: CancellationToken,
    ) -> Result<Ending, TransportError> {
        let recorded = Recorded::done();
        self.run_after(Job {
            spec,
            out,
            cancel,
            recorded,
        })
        .await
    }

    /// `run`, the command sent only once `recorded` resolves (the step's start on disk): the
    /// shell, or the remote session, is started meanwhile and waits for its script, so the
    /// disk and the connection work at the same time. If the record fails, nothing is sent:
    /// the shell reads an empty script, and this returns `NotRecorded`.
    pub async fn run_after(&self, job: Job<'_>) -> Result<Ending, TransportError> {
        match self {
            Transport::Local(local) => local.run(job).await,
            Transport::Ssh(ssh) => ssh.run(job).await,
            Transport::Stub(stub) => stub.run(job).await,
        }
    }

    /// Whether a process group of an earlier command is still alive on the host (a lost
    /// connection, a crash); `false` locally (a local group dies with its session).
    pub async fn group_alive(&self, pgid: i32) -> bool {
        match self {
            Transport::Local(_) | Transport::Stub(_) => false,
            Transport::Ssh(ssh) => ssh.group_alive(pgid).await,
        }
    }

    /// Stops such a group: TERM, then KILL after `GRACE` if it is still there.
    pub async fn stop_group(&self, pgid: i32) {
        if let Transport::Ssh(ssh) = self {
            ssh.stop_group(pgid).await;
        }
    }

    /// Closes the SSH master connection; nothing to do locally.
    pub async fn close(self) {
        if let Transport::Ssh(ssh) = self {
            ssh.close().await;
        }
    }
}

/// Why a running command is being stopped, and how far the stopping has gone.
#[derive(Debug)]
struct Stopping {
    reason: Ending,
    /// When KILL follows the TERM; `None` until TERM could be sent.
    kill_at: Option<tokio::time::Instant>,
    killed: bool,
}

impl Stopping {
    fn new(reason: Ending) -> Stopping {
        Stopping {
            reason,
            kill_at: None,
            killed: false,
        }
    }
}

/// Most bytes one read of a command's stdout or stderr takes: big enough that a flood costs few
/// reads, sends and writes (each 64 KiB piece had its own), small enough that the pieces queued
/// between the transport and the output file stay a few MiB.
const READ_SIZE: usize = 128 * 1024;

/// The pipe of a command's stdout or stderr is enlarged to this: with the default 64 KiB the
/// writer (the command, or the ssh master) and runbook woke each other every 64 KiB.
const PIPE_SIZE: usize = 1024 * 1024;

/// Reads one output stream in pieces that are sent on as they are read, not copied again.
struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    /// Enlarges the pipe when the system lets it (`/proc/sys/fs/pipe-max-size`, the user's
    /// pipe quota): a smaller one only costs more wake-ups.
    fn new(pipe: &impl std::os::fd::AsFd) -> Reader {
        let _ = rustix::pipe::fcntl_setpipe_size(pipe, PIPE_SIZE);
        Reader {
            buf: Vec::with_capacity(READ_SIZE),
        }
    }

    /// The next piece, `None` at the end (or on an error: the stream is over either way).
    /// Cancel-safe, as `select!` needs: bytes are only taken out of the pipe by the poll
    /// that returns them.
    async fn read(&mut self, from: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        match from.read_buf(&mut self.buf).await {
            Ok(n) if n > 0 => {}
            _ => return None,
        }
        // The piece goes as it was read, and a new buffer takes its place. A small piece is
        // first shrunk (in place: the allocator splits the block, nothing is copied), so that
        // a queue of small pieces does not hold READ_SIZE each.
        let mut piece = std::mem::replace(&mut self.buf, Vec::with_capacity(READ_SIZE));
        if piece.len() < READ_SIZE / 2 {
            piece.shrink_to_fit();
        }
        Some(piece)
    }
}

/// A far-away instant, for a `select!` branch whose timer is not set.
fn or_never(at: Option<tokio::time::Instant>) -> tokio::time::Instant {
    at.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600))
}

/// Sends a chunk unless there is nothing to send or nobody listens any more (the step still
/// runs to its end: stopping it is the cancel token's job, not a dropped receiver's).
async fn emit(out: &Sender<Chunk>, chunk: Chunk) {
    let empty = match &chunk {
        Chunk::Stdout(b) | Chunk::Stderr(b) => b.is_empty(),
        Chunk::Group(_) => false,
    };
    if !empty {
        let _ = out.send(chunk).await;
    }
}
