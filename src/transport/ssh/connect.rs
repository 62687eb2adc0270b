//! Starts the SSH master connection itself (rather than through `openssh::SessionBuilder`) so
//! agent and X11 forwarding can be turned off and `ssh`'s own words are at hand to explain a
//! refusal; the `openssh` crate then drives commands over its control socket.
//!
//! The master is our own child, in the foreground (`-N`, no `-f`, no `ControlPersist`), and
//! dies with us: a `runbook` killed with SIGKILL used to leave its masters running (55 runs in
//! 58) and their control directories behind. The kernel now sends the master SIGTERM when
//! `runbook` dies (`PR_SET_PDEATHSIG`); it lives in a process group of its own, so a Ctrl-C on
//! the terminal reaches `runbook` (which decides what to stop) and not the connection.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::process::Child;

use super::SshOptions;
use crate::transport::canonical::Canonical;
use crate::transport::destination::Destination;

mod appearing;
mod explain;
use appearing::{Appearing, appeared};
use explain::explain;

/// How often a starting master's control socket is looked for, should inotify not say first
/// that it appeared (logging in takes ~150 ms).
const READY_POLL: Duration = Duration::from_millis(20);

/// The control socket's name in the master's directory.
const SOCKET_NAME: &str = "m";

/// How long a closing master is given to leave after being asked (`-O exit`, then SIGTERM)
/// before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Keepalives: a peer that stops answering is declared dead after this many probes of
/// `SshOptions::keepalive` (2 s by default: a stalled link is noticed within 6–8 s).
const ALIVE_COUNT: u32 = 3;

/// Why a host could not be reached, in plain words, with `ssh`'s own message kept as detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    pub dest: String,
    pub reason: String,
    pub detail: String,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot connect to `{}`: {}", self.dest, self.reason)
    }
}

impl std::error::Error for ConnectError {}

impl ConnectError {
    /// Refused, reset or closed before login: what a busy sshd or bastion (`MaxStartups`)
    /// does to connections beyond its limit, worth trying again shortly. A host key, a name
    /// or an authentication failure is not.
    pub fn transient(&self) -> bool {
        let d = &self.detail;
        !d.contains("Permission denied")
            && !d.contains("Host key")
            && !d.contains("host key")
            && (d.contains("Connection refused")
                || d.contains("Connection reset")
                || d.contains("Connection closed by"))
    }
}

/// The running master and its private control directory (`/tmp/rb-XXXXXX`).
#[derive(Debug)]
pub(super) struct Master {
    /// The `ssh -N` process; `None` until it is ready (a failed start kills it on drop).
    /// Boxed: a `Child` is large, and `Transport` holds an `Ssh` by value.
    child: Option<Box<Child>>,
    dir: Option<TempDir>,
    socket: PathBuf,
    log: PathBuf,
    /// ssh's own line when `accept-new` recorded the host's key: the audit trail records it.
    host_key_added: Option<String>,
    /// The type and fingerprint of the host key the server presented and ssh accepted
    /// (`ssh-ed25519 SHA256:...`), from the master's debug log (`Facts`).
    host_key: Option<String>,
    /// The user, host and port ssh resolved the destination to (what `ssh -G` would say),
    /// from the same log: no `ssh -G` process per host.
    /// Boxed, as `child` is: `Transport` holds an `Ssh` by value.
    endpoint: Option<Box<Canonical>>,
}

impl Master {
    pub(super) async fn start(
        dest: &str,
        parsed: &Destination,
        opts: &SshOptions,
    ) -> Result<Master, ConnectError> {
        let fail = |reason: String, detail: String| ConnectError {
            dest: dest.to_string(),
            reason,
            detail,
        };
        sweep_once();
        // Short on purpose: the socket path must fit in 104–108 bytes with what ssh appends.
        let dir = tempfile::Builder::new()
            .prefix("rb-")
            .tempdir_in("/tmp")
            .map_err(|e| {
                fail(
                    format!("cannot create a control directory in /tmp: {e}"),
                    String::new(),
                )
            })?;
        let _ = std::fs::write(dir.path().join("runbook-owner"), std::process::id().to_string());
        let mut master = Master {
            child: None,
            socket: dir.path().join(SOCKET_NAME),
            log: dir.path().join("log"),
            dir: Some(dir),
            host_key_added: None,
            host_key: None,
            endpoint: None,
        };

        let mut cmd = tokio::process::Command::new("ssh");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C on the terminal is not delivered to it.
            .process_group(0)
            .args(master_args(&master, parsed, opts));
        let parent = std::process::id();
        // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
        // functions (prctl, getppid), allocating nothing.
        unsafe {
            cmd.pre_exec(move || die_with(parent));
        }
        let secs = opts.connect_timeout.as_secs().max(1);
        // ssh's ConnectTimeout covers the TCP connect only; a ProxyCommand or a server that
        // accepts and then says nothing must not hang the run either.
        let limit = Duration::from_secs(secs) + Duration::from_secs(5);
        let deadline = tokio::time::Instant::now() + limit;
        // Set before ssh starts: the socket cannot appear unseen.
        let mut appears = master.dir.as_ref().and_then(|d| Appearing::watch(d.path()));
        let mut child = cmd.spawn().map_err(|e| {
            fail(
                format!("cannot run `ssh`: {e} (is the OpenSSH client installed?)"),
                String::new(),
            )
        })?;
        // Ready when the control socket appears (inotify: ssh listens on a temporary name,
        // then links it into place) and answers, or when a look finds it so; failed when ssh
        // exits first, and its log says why.
        loop {
            tokio::select! {
                status = child.wait() => {
                    let detail = master.read_log();
                    if matches!(status, Ok(s) if s.success()) {
                        // Only a fork (`ForkAfterAuthentication` in the ssh config) ends it
                        // with success: that master is no child of ours to keep or stop.
                        if master.socket.exists() {
                            exit_master(&master.socket);
                        }
                        return Err(fail(
                            "ssh went to the background on its own (`ForkAfterAuthentication` in the ssh config?): runbook keeps its master connections as its own processes; turn that off for this host".into(),
                            detail,
                        ));
                    }
                    return Err(fail(explain(&detail, parsed, opts, secs), detail));
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Err(fail(format!("timed out after {secs}s"), master.read_log()));
                }
                () = appeared(&mut appears, SOCKET_NAME) => {
                    if answers(&master.socket).await {
                        break;
                    }
                }
                () = tokio::time::sleep(READY_POLL) => {
                    if master.socket.exists()
                        && tokio::time::timeout_at(deadline, answers(&master.socket)).await == Ok(true)
                    {
                        break;
                    }
                }
            }
        }
        master.child = Some(Box::new(child));
        let log = std::fs::read_to_string(&master.log).unwrap_or_default();
        let facts = Facts::of(&log);
        master.host_key_added = facts.host_key_added;
        master.host_key = facts.host_key;
        master.endpoint = facts.endpoint.map(Box::new);
        // From here on the log only holds what each session adds (`Master::forget_log`).
        master.forget_log();
        Ok(master)
    }

    /// Empties the master's log: at `LogLevel=DEBUG1` each session adds a few lines to it
    /// (~1 KiB), and nothing reads them; ssh appends (`O_APPEND`), so it writes on from the
    /// start. Called as each command starts, it keeps a long run's log small.
    pub(super) fn forget_log(&self) {
        if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&self.log) {
            let _ = file.set_len(0);
        }
    }

    /// Ends the master once its sessions are closed (`Session::close` has told it to stop
    /// listening): SIGTERM, then SIGKILL if it is still there after `EXIT_GRACE`. Awaited,
    /// unlike `Drop`'s blocking wait: a fleet's 50 masters end side by side.
    pub(super) async fn shutdown(mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) on our own child, which has not been reaped yet.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            if tokio::time::timeout(EXIT_GRACE, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
        drop(self.dir.take());
    }

    pub(super) fn control_socket(&self) -> &Path {
        &self.socket
    }

    pub(super) fn host_key_added(&self) -> Option<&str> {
        self.host_key_added.as_deref()
    }

    pub(super) fn host_key(&self) -> Option<&str> {
        self.host_key.as_deref()
    }

    pub(super) fn endpoint(&self) -> Option<&Canonical> {
        self.endpoint.as_deref()
    }

    pub(super) fn log(&self) -> &Path {
        &self.log
    }

    /// What ssh said, for a failure's detail: its own words, without the debug lines.
    fn read_log(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter(|l| !l.starts_with("debug"))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string()
    }
}

impl Drop for Master {
    /// Tells the master to exit, makes sure it did (SIGTERM, then SIGKILL), then removes the
    /// control directory. After `Session::close` the master no longer listens: it is sent
    /// SIGTERM at once.
    fn drop(&mut self) {
        let asked = self.socket.exists() && exit_master(&self.socket);
        if let Some(mut child) = self.child.take()
            && !(asked && exits_within(&mut child, EXIT_GRACE))
        {
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) on our own child, which has not been reaped yet.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            if !exits_within(&mut child, EXIT_GRACE) {
                let _ = child.start_kill();
            }
        }
        drop(self.dir.take());
    }
}

/// Between fork and exec of the master: SIGTERM when `parent` dies, however it dies. The
/// signal follows the thread that forked: the runtime's own thread, which lives as long as
/// the process (`launch` runs a current-thread runtime). If `parent` died before this line,
/// the master must not start at all.
fn die_with(parent: u32) -> std::io::Result<()> {
    // SAFETY: prctl(2) with PR_SET_PDEATHSIG takes a signal number and nothing else.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: getppid(2) cannot fail.
    if unsafe { libc::getppid() } as u32 != parent {
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// Whether `child` has ended (it is reaped here), waiting up to `limit`. Blocking: only for
/// `Drop`, where a few milliseconds usually suffice.
fn exits_within(child: &mut Child, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= until => return false,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// `ssh -O check`: the master behind `socket` is up and logged in.
async fn answers(socket: &Path) -> bool {
    // ssh listens on its control socket once logged in: a connection accepted there is a
    // master ready for sessions (a process `ssh -O check` would cost ~20 ms more per host).
    tokio::net::UnixStream::connect(socket).await.is_ok()
}

/// `ssh -O exit`: true when the master behind `socket` took the request.
fn exit_master(socket: &Path) -> bool {
    std::process::Command::new("ssh")
        .arg("-S")
        .arg(socket)
        .args(["-o", "BatchMode=yes", "-O", "exit", "none"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Sweeps stale masters (below) once per process, beside the first connection rather than
/// before it: each sweep reads `/tmp` and the owner file of every `rb-*` there, so one per
/// connection cost a fleet of 50 ~8 % of runbook's CPU, the 50th start reading the 49 of this
/// very run (issue 30). Another run's leftovers are no more stale mid-run than at its start.
fn sweep_once() {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(sweep_stale_masters)),
        Err(_) => sweep_stale_masters(),
    });
}

/// Ends masters whose `runbook` died without closing them (an older `runbook`, or one killed
/// before the kernel's SIGTERM reached its master), and removes their directories: each
/// records its owner's pid. Only directories of ours: `/tmp` is shared, and another user's
/// `rb-*` (or a link named so) is theirs to keep, whatever its owner file says.
fn sweep_stale_masters() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    // SAFETY: geteuid(2) cannot fail.
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("rb-") {
            continue;
        }
        let dir = entry.path();
        let ours = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_dir() && m.uid() == me);
        if !ours {
            continue;
        }
        let Some(owner) = std::fs::read_to_string(dir.join("runbook-owner"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|&pid| pid > 0)
        else {
            continue;
        };
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(owner, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            exit_master(&dir.join("m"));
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn master_args(master: &Master, dest: &Destination, opts: &SshOptions) -> Vec<OsString> {
    let host_keys = if opts.accept_new_host_keys {
        "StrictHostKeyChecking=accept-new"
    } else {
        "StrictHostKeyChecking=yes"
    };
    let options = [
        "BatchMode=yes".to_string(),
        host_keys.to_string(),
        "ForwardAgent=no".to_string(),
        "ForwardX11=no".to_string(),
        "ClearAllForwardings=yes".to_string(),
        "ControlMaster=yes".to_string(),
        // A foreground master, whatever the ssh config says: with ControlPersist ssh would
        // fork to the background and outlive us.
        "ControlPersist=no".to_string(),
        format!("ConnectTimeout={}", opts.connect_timeout.as_secs().max(1)),
        format!("ServerAliveInterval={}", opts.keepalive.as_secs().max(1)),
        format!("ServerAliveCountMax={ALIVE_COUNT}"),
    ];
    let mut args: Vec<OsString> = Vec::new();
    for opt in options {
        args.extend(["-o".into(), opt.into()]);
    }
    // The key the server presented and ssh accepted (for the audit trail), and the user, host
    // and port ssh resolved (for the run lock), are in its debug log (`Facts`). A
    // `KnownHostsCommand` hook used to write them; ssh also runs it before the key exchange,
    // to order its host key algorithms, which held its KEXINIT back long enough for a delayed
    // ACK: 40 ms more on every connection, and two more programs per host (issue 30).
    args.extend(["-o".into(), "LogLevel=DEBUG1".into()]);
    args.push("-N".into());
    args.extend(["-E".into(), master.log.clone().into()]);
    args.extend(["-S".into(), master.socket.clone().into()]);
    if let Some(file) = &opts.known_hosts {
        // ssh splits this option's value at spaces (it takes several files): quote it.
        let mut opt = OsString::from("UserKnownHostsFile=\"");
        opt.push(file);
        opt.push("\"");
        args.extend(["-o".into(), opt]);
    }
    if let Some(key) = &opts.identity {
        args.extend(["-o".into(), "IdentitiesOnly=yes".into()]);
        args.extend(["-i".into(), key.clone().into()]);
    }
    if let Some(config) = &opts.config {
        args.extend(["-F".into(), config.clone().into()]);
    }
    if let Some(user) = &dest.user {
        args.extend(["-l".into(), user.into()]);
    }
    if let Some(port) = dest.port {
        args.extend(["-p".into(), port.to_string().into()]);
    }
    // `--`: the host can never be read as an option.
    args.extend(["--".into(), dest.host.clone().into()]);
    args
}

/// What a master's log says about the connection it made.
#[derive(Debug, Default, PartialEq, Eq)]
struct Facts {
    /// `ssh-ed25519 SHA256:...`, from `debug1: Server host key: ssh-ed25519 SHA256:...`.
    host_key: Option<String>,
    /// From `debug1: Authenticating to HOST:PORT as 'USER'`.
    endpoint: Option<Canonical>,
    /// ssh's line when `accept-new` recorded the host's key.
    host_key_added: Option<String>,
}

impl Facts {
    fn of(log: &str) -> Facts {
        let mut facts = Facts::default();
        for line in log.lines() {
            if let Some(key) = line.strip_prefix("debug1: Server host key: ") {
                facts.host_key = Some(key.trim().to_string()).filter(|k| !k.is_empty());
            } else if let Some(rest) = line.strip_prefix("debug1: Authenticating to ") {
                facts.endpoint = endpoint_of(rest);
            } else if line.contains("Permanently added") {
                facts.host_key_added = Some(line.trim().to_string());
            }
        }
        facts
    }
}

/// `HOST:PORT as 'USER'` (the host may be an IPv6 address, colons and all).
fn endpoint_of(rest: &str) -> Option<Canonical> {
    let (at, user) = rest.trim_end().split_once(" as '")?;
    let user = user.strip_suffix('\'')?;
    let (host, port) = at.rsplit_once(':')?;
    Some(Canonical {
        user: user.to_string(),
        host: host.to_ascii_lowercase(),
        port: port.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_says_which_key_was_accepted_and_where_ssh_logged_in() {
        let log = "debug1: Connecting to 127.0.0.2 [127.0.0.2] port 51645.\n\
            debug1: Authenticating to Web-1.example.com:2222 as 'deploy'\n\
            debug1: kex: host key algorithm: ssh-ed25519\n\
            debug1: Server host key: ssh-ed25519 SHA256:HJv8Xwk2jWp88HPCIfckVxBH4XrSd34ls3+yTXzIJzE\n\
            Warning: Permanently added '[web-1.example.com]:2222' (ED25519) to the list of known hosts.\n\
            Authenticated to web-1.example.com ([10.0.0.5]:2222) using \"publickey\".\n";
        assert_eq!(
            Facts::of(log),
            Facts {
                host_key: Some("ssh-ed25519 SHA256:HJv8Xwk2jWp88HPCIfckVxBH4XrSd34ls3+yTXzIJzE".into()),
                endpoint: Some(Canonical {
                    user: "deploy".into(),
                    host: "web-1.example.com".into(),
                    port: 2222,
                }),
                host_key_added: Some(
                    "Warning: Permanently added '[web-1.example.com]:2222' (ED25519) to the list of known hosts."
                        .into()
                ),
            }
        );
        let v6 = endpoint_of("::1:22 as 'root'").unwrap();
        assert_eq!((v6.host.as_str(), v6.port, v6.user.as_str()), ("::1", 22, "root"));
        assert_eq!(
            Facts::of("ssh: connect to host x port 22: Connection refused\n"),
            Facts::default()
        );
    }
}
