//! A real `sshd` on 127.0.0.1 for the SSH transport tests: a throwaway host key, a client key
//! in `authorized_keys`, a free port, and the login user `rbtest` (shell `/bin/sh`, no rc
//! files). Missing pieces fail loudly: these tests are never skipped.

use std::collections::HashMap;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use runbook::testing::transport::SshOptions;
use tempfile::TempDir;

/// The account the tests log in as.
pub const USER: &str = "rbtest";
/// An account whose login shell is bash (`support::users::account_with_shell`), also let in.
pub const BASH_USER: &str = "rb-bash";
/// The `Host` alias written in `ssh_config`.
pub const ALIAS: &str = "rbtest-host";
pub const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    pub port: u16,
    /// The client's private key, authorised for `USER`.
    pub identity: PathBuf,
    /// A known_hosts file with the right `[127.0.0.1]:PORT` line.
    pub known_hosts: PathBuf,
    /// An ssh config with `Host rbtest-host` set up for this server.
    pub ssh_config: PathBuf,
    /// The server's public host key line (`ssh-ed25519 AAAA...`).
    pub host_key: String,
    pub dir: TempDir,
    child: Child,
    config: PathBuf,
}

impl Sshd {
    #[track_caller]
    pub fn start() -> Sshd {
        ensure_prerequisites();
        let dir = tempfile::Builder::new()
            .prefix("rb-sshd-")
            .tempdir()
            .expect("create a temporary directory");
        // sshd reads authorized_keys as the user: the directory must be readable by it.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let host_key_path = keygen(dir.path(), "hostkey");
        let identity = keygen(dir.path(), "client");
        let authorized = dir.path().join("authorized_keys");
        fs::copy(identity.with_extension("pub"), &authorized).unwrap();
        fs::set_permissions(&authorized, fs::Permissions::from_mode(0o644)).unwrap();
        let host_key = fs::read_to_string(host_key_path.with_extension("pub"))
            .unwrap()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");

        // Each server is its own host to the runs' leases: tests against two servers at once
        // must not refuse each other, as two real hosts would not.
        let leases = dir.path().join("leases");
        fs::create_dir(&leases).unwrap();
        fs::set_permissions(&leases, fs::Permissions::from_mode(0o1777)).unwrap();
        for _attempt in 0..5 {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {hostkey}\n\
                     AuthorizedKeysFile {authorized}\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                     PidFile {pid}\nAllowUsers {USER} {BASH_USER}\nPrintMotd no\nPrintLastLog no\n\
                     SetEnv RUNBOOK_LEASE_BASE={leases}\n",
                    hostkey = host_key_path.display(),
                    authorized = authorized.display(),
                    pid = dir.path().join("sshd.pid").display(),
                    leases = leases.display(),
                ),
            )
            .unwrap();
            let log = fs::File::create(dir.path().join("sshd.log")).unwrap();
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
            if wait_for_port(port, &mut child) {
                let known_hosts = dir.path().join("known_hosts");
                fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_key}\n")).unwrap();
                let ssh_config = dir.path().join("ssh_config");
                fs::write(
                    &ssh_config,
                    format!(
                        "Host {ALIAS}\n  HostName 127.0.0.1\n  Port {port}\n  User {USER}\n  \
                         IdentityFile {identity}\n  IdentitiesOnly yes\n  \
                         UserKnownHostsFile {known_hosts}\n  StrictHostKeyChecking yes\n",
                        identity = identity.display(),
                        known_hosts = known_hosts.display(),
                    ),
                )
                .unwrap();
                return Sshd {
                    port,
                    identity,
                    known_hosts,
                    ssh_config,
                    host_key,
                    dir,
                    child,
                    config,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "sshd did not start listening; its log:\n{}",
            fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default()
        );
    }

    /// `rbtest@127.0.0.1:PORT`
    pub fn dest(&self) -> String {
        format!("{USER}@127.0.0.1:{}", self.port)
    }

    /// `--identity KEY --known-hosts KH --ssh-config CFG`: this server's, for `runbook run`.
    pub fn ssh_args(&self) -> Vec<String> {
        [
            ("--identity", &self.identity),
            ("--known-hosts", &self.known_hosts),
            ("--ssh-config", &self.ssh_config),
        ]
        .into_iter()
        .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
        .collect()
    }

    /// Options that reach this server and nothing of the developer's own ssh setup: this
    /// fixture's config file (not `~/.ssh/config`), key and known_hosts.
    pub fn options(&self) -> SshOptions {
        SshOptions {
            config: Some(self.ssh_config.clone()),
            identity: Some(self.identity.clone()),
            known_hosts: Some(self.known_hosts.clone()),
            connect_timeout: Duration::from_secs(10),
            accept_new_host_keys: false,
            keepalive: Duration::from_secs(2),
        }
    }

    /// Kills the sshd processes serving this server's connections (not the listener, and not
    /// the commands they started): to the client, the connection just died.
    pub fn kill_connections(&self) {
        for pid in descendants(self.child.id()) {
            if comm(pid).as_deref() == Some("sshd") {
                // SAFETY: kill(2) on a process of our own fixture.
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
            }
        }
    }

    /// Stops the server, listener and connections: to a client, the host is gone.
    pub fn stop(&mut self) {
        // The listener is held first (SIGSTOP), so that it forks no connection between our look
        // at its connections and its end: a client reconnecting just then (a guard's master
        // under load) would otherwise keep a live server. A second pass takes what a
        // connection forked while the first was killing.
        // SAFETY: kill(2) on our own fixture's process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGSTOP);
        }
        self.kill_connections();
        std::thread::sleep(Duration::from_millis(50));
        self.kill_connections();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port, with the same keys (after `stop`).
    #[track_caller]
    pub fn restart(&mut self) {
        let log = fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("sshd.log"))
            .unwrap();
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
        assert!(
            wait_for_port(self.port, &mut child),
            "sshd did not listen again; its log:\n{}",
            self.log()
        );
        self.child = child;
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill_connections();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// sshd, ssh-keygen, `/run/sshd` and the `rbtest` user, once per test run.
#[track_caller]
pub fn ensure_prerequisites() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        if !Path::new(SSHD).exists() {
            return Err(format!(
                "{SSHD} is missing: install openssh-server (apt-get install openssh-server)"
            ));
        }
        fs::create_dir_all("/run/sshd").map_err(|e| format!("cannot create /run/sshd: {e}"))?;
        if !succeeds(Command::new("id").args(["-u", USER])) {
            // Another test binary may be creating it at the same moment: judge by the result.
            let _ = Command::new("useradd")
                .args(["-M", "-d", "/home/rbtest", "-s", "/bin/sh", USER])
                .stderr(Stdio::null())
                .status();
        }
        if !succeeds(Command::new("id").args(["-u", USER])) {
            return Err(format!(
                "cannot create the test user `{USER}` (the SSH tests need root, and \
                 openssh-server installed: apt-get install openssh-server)"
            ));
        }
        // A home without rc files (nothing slows or pollutes a command), and an account
        // that is not locked (a `!` password field refuses even key logins).
        fs::create_dir_all("/home/rbtest").map_err(|e| e.to_string())?;
        let _ = Command::new("chown").args([USER, "/home/rbtest"]).status();
        if !succeeds(Command::new("usermod").args(["-p", "*", USER])) {
            return Err(format!("cannot unlock `{USER}` for key login (usermod -p '*')"));
        }
        Ok(())
    });
    if let Err(e) = ready {
        panic!("the SSH test fixture cannot start: {e}");
    }
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh ed25519 key pair `dir/name` and `dir/name.pub`; returns the private key's path.
pub fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "rbtest", "-f"])
        .arg(&path)
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ssh-keygen failed: install openssh-client");
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

/// True once the port accepts; false if sshd exited first (e.g. the port was taken).
fn wait_for_port(port: u16, child: &mut Child) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Every process below `root`, read from /proc.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some(ppid) = stat_field(pid, 1).and_then(|s| s.parse().ok()) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            found.push(c);
            stack.push(c);
        }
    }
    found
}

pub fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Field `n` after the `(comm)` of /proc/PID/stat (0 = state, 1 = ppid).
fn stat_field(pid: u32, n: usize) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(n).map(str::to_string)
}

/// The uid of a local account (`id -u NAME`).
#[track_caller]
pub fn uid(name: &str) -> u32 {
    let out = Command::new("id").args(["-u", name]).output().expect("`id` runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no account `{name}`"))
}
