//! A fleet of N real hosts on one machine, for one step on many hosts (design §13).
//!
//! Every host is its own loopback address (`web-1` is 127.0.0.2, `web-2` 127.0.0.3, ...: the
//! whole 127.0.0.0/8 is loopback; 127.0.0.1 is left to the single-host fixture). One sshd holds
//! at most 16 listening sockets, so the hosts are served by `ceil(N/15)` sshd instances, each on
//! one port and up to 15 addresses. Each host is still a host of its own to the remote side:
//!
//! - its sessions get their own `RUNBOOK_LEASE_BASE` (`Match LocalAddress` + `SetEnv`), so a run
//!   holds one lease per host, as it would on real machines (src/lease/remote.sh);
//! - `SSH_CONNECTION`'s third field is the address it was reached on, and its sessions also see
//!   `RBTEST_HOST=web-3` and `RBTEST_FLEET=<this fleet>`, which is how [`Fleet::remote_processes`]
//!   tells this fleet's commands from the local `ssh` clients and from other tests' fleets.
//!
//! The login user is `rbtest` (shell `/bin/sh`, no rc files), as for [`super::sshd::Sshd`];
//! missing pieces fail loudly: these tests are never skipped.

use std::ffi::OsString;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use runbook::testing::transport::SshOptions;
use tempfile::TempDir;

use super::sshd::{self, SSHD, USER};

/// The inventory group of every host of the fleet.
pub const GROUP: &str = "web";
/// Addresses per sshd instance (sshd's limit is 16 listening sockets).
pub const PER_SSHD: usize = 15;
/// In the environment of every session: which fleet it belongs to.
pub const FLEET_VAR: &str = "RBTEST_FLEET";
/// In the environment of every session: the host's inventory name (`web-3`).
pub const HOST_VAR: &str = "RBTEST_HOST";

pub struct Fleet {
    pub hosts: Vec<FleetHost>,
    /// The client's private key, authorised for `USER` on every host.
    pub identity: PathBuf,
    /// One `[127.0.0.x]:PORT key` line per host.
    pub known_hosts: PathBuf,
    /// `Host web-N` aliases, then `Host *` with the key, known_hosts and `BatchMode yes`.
    pub ssh_config: PathBuf,
    /// `hosts: web-N: {ssh: rbtest@127.0.0.x:PORT}` and `groups: web: [web-1, ...]`.
    pub inventory: PathBuf,
    pub dir: TempDir,
    /// This fleet's mark in its sessions' environment (`RBTEST_FLEET`).
    id: String,
    servers: Vec<Mutex<Server>>,
}

pub struct FleetHost {
    /// The inventory name: `web-1`, `web-2`, ...
    pub name: String,
    /// `127.0.0.2`, `127.0.0.3`, ...
    pub addr: String,
    pub port: u16,
    /// `rbtest@127.0.0.2:PORT`
    pub dest: String,
    /// The public host key line (`ssh-ed25519 AAAA...`), shared by the hosts of one sshd.
    pub host_key: String,
    /// `RUNBOOK_LEASE_BASE` of this host's sessions: its lease is
    /// `<lease_base>/runbook-lease-<uid>/lease`.
    pub lease_base: PathBuf,
    /// Index of the sshd instance serving it.
    server: usize,
}

/// One sshd instance and the hosts it serves.
struct Server {
    port: u16,
    /// Indices of the hosts it serves, and of those [`Fleet::kill_host`] took down.
    hosts: Vec<usize>,
    down: Vec<usize>,
    config: PathBuf,
    pid_file: PathBuf,
    log: PathBuf,
    /// `None` once every host it served is down.
    child: Option<Child>,
}

/// What an sshd instance's config is written from.
struct Spec<'a> {
    dir: &'a Path,
    index: usize,
    host_key: &'a Path,
    authorized: &'a Path,
    id: &'a str,
}

impl Fleet {
    /// `n` hosts `web-1`..`web-n` on `ceil(n/15)` sshd instances.
    #[track_caller]
    pub fn start(n: usize) -> Fleet {
        Fleet::start_with(n, &[])
    }

    /// Like [`Fleet::start`], but each host of `alone` gets an sshd instance of its own, so that
    /// [`Fleet::kill_host`] on it never disturbs another host (see there).
    #[track_caller]
    pub fn start_with(n: usize, alone: &[usize]) -> Fleet {
        assert!(n > 0, "a fleet has at least one host");
        assert!(
            alone.iter().all(|&i| i < n),
            "{alone:?}: not hosts of a fleet of {n}"
        );
        sshd::ensure_prerequisites();
        let dir = tempfile::Builder::new()
            .prefix("rb-fleet-")
            .tempdir()
            .expect("create a temporary directory");
        // sshd reads authorized_keys as the user: the directory must be readable by it.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let id = dir.path().file_name().unwrap().to_string_lossy().into_owned();

        let mut groups: Vec<Vec<usize>> = alone.iter().map(|&i| vec![i]).collect();
        let shared: Vec<usize> = (0..n).filter(|i| !alone.contains(i)).collect();
        groups.extend(shared.chunks(PER_SSHD).map(<[usize]>::to_vec));

        // The keys, all at once: one client key, one host key per sshd instance.
        let (identity, host_keys) = std::thread::scope(|s| {
            let client = s.spawn(|| sshd::keygen(dir.path(), "client"));
            let hosts: Vec<_> = (0..groups.len())
                .map(|k| {
                    let dir = dir.path();
                    s.spawn(move || sshd::keygen(dir, &format!("hostkey-{k}")))
                })
                .collect();
            let hosts: Vec<PathBuf> = hosts.into_iter().map(|h| h.join().unwrap()).collect();
            (client.join().unwrap(), hosts)
        });
        let authorized = dir.path().join("authorized_keys");
        fs::copy(identity.with_extension("pub"), &authorized).unwrap();
        fs::set_permissions(&authorized, fs::Permissions::from_mode(0o644)).unwrap();

        let names: Vec<String> = (1..=n).map(|i| format!("{GROUP}-{i}")).collect();
        let addrs: Vec<Ipv4Addr> = (0..n).map(address).collect();
        for addr in &addrs {
            let leases = lease_base(dir.path(), *addr);
            fs::create_dir(&leases).unwrap();
            // Any login user may keep its lease there, as in /tmp.
            fs::set_permissions(&leases, fs::Permissions::from_mode(0o1777)).unwrap();
        }

        // The sshd instances, all at once.
        let servers: Vec<Server> = std::thread::scope(|s| {
            let started: Vec<_> = groups
                .iter()
                .enumerate()
                .map(|(k, hosts)| {
                    let spec = Spec {
                        dir: dir.path(),
                        index: k,
                        host_key: &host_keys[k],
                        authorized: &authorized,
                        id: &id,
                    };
                    let (names, addrs) = (&names, &addrs);
                    s.spawn(move || spawn_server(&spec, hosts, names, addrs))
                })
                .collect();
            started.into_iter().map(|h| h.join().unwrap()).collect()
        });

        let mut hosts: Vec<Option<FleetHost>> = (0..n).map(|_| None).collect();
        for (k, server) in servers.iter().enumerate() {
            let host_key = public_key(&host_keys[k]);
            for &i in &server.hosts {
                let addr = addrs[i].to_string();
                hosts[i] = Some(FleetHost {
                    name: names[i].clone(),
                    dest: format!("{USER}@{addr}:{}", server.port),
                    lease_base: lease_base(dir.path(), addrs[i]),
                    addr,
                    port: server.port,
                    host_key: host_key.clone(),
                    server: k,
                });
            }
        }
        let hosts: Vec<FleetHost> = hosts.into_iter().map(Option::unwrap).collect();

        let known_hosts = dir.path().join("known_hosts");
        let lines: String = hosts
            .iter()
            .map(|h| format!("[{}]:{} {}\n", h.addr, h.port, h.host_key))
            .collect();
        fs::write(&known_hosts, lines).unwrap();

        let ssh_config = dir.path().join("ssh_config");
        let mut config: String = hosts
            .iter()
            .map(|h| format!("Host {}\n  HostName {}\n  Port {}\n", h.name, h.addr, h.port))
            .collect();
        config.push_str(&format!(
            "Host *\n  User {USER}\n  IdentityFile {identity}\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {known_hosts}\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
            identity = identity.display(),
            known_hosts = known_hosts.display(),
        ));
        fs::write(&ssh_config, config).unwrap();

        let inventory = dir.path().join("inventory.yaml");
        let mut yaml = String::from("hosts:\n");
        for h in &hosts {
            yaml.push_str(&format!("  {}: {{ssh: \"{}\"}}\n", h.name, h.dest));
        }
        yaml.push_str(&format!("groups:\n  {GROUP}: [{}]\n", names.join(", ")));
        fs::write(&inventory, yaml).unwrap();

        Fleet {
            hosts,
            identity,
            known_hosts,
            ssh_config,
            inventory,
            dir,
            id,
            servers: servers.into_iter().map(Mutex::new).collect(),
        }
    }

    /// `--inventory INV --identity KEY --known-hosts KH --ssh-config CFG`, for `runbook run`.
    pub fn ssh_args(&self) -> Vec<OsString> {
        vec![
            "--inventory".into(),
            self.inventory.clone().into(),
            "--identity".into(),
            self.identity.clone().into(),
            "--known-hosts".into(),
            self.known_hosts.clone().into(),
            "--ssh-config".into(),
            self.ssh_config.clone().into(),
        ]
    }

    /// Transport options that reach every host of the fleet and nothing of the developer's
    /// own ssh setup.
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

    /// `ssh -F CFG -i KEY -p PORT rbtest@ADDR` to host `i`, without a command yet (add it
    /// with `.arg(...)`); stdin is null.
    pub fn ssh(&self, i: usize) -> Command {
        let host = &self.hosts[i];
        let mut command = Command::new("ssh");
        command
            .arg("-F")
            .arg(&self.ssh_config)
            .arg("-i")
            .arg(&self.identity)
            .args(["-o", "ConnectTimeout=10", "-p", &host.port.to_string()])
            .arg(format!("{USER}@{}", host.addr))
            .stdin(Stdio::null());
        command
    }

    /// How many processes whose command line matches `pattern` (`pgrep -f`) run on the
    /// fleet's hosts: started through this fleet's sshd, told apart by `RBTEST_FLEET` in their
    /// environment. Neither the local `ssh` clients (whose argv holds the remote command too)
    /// nor other tests' fleets count, as they would with a bare `pgrep -f -c`. A remote
    /// command that empties its environment (`env -i`) is not seen. A command run through the
    /// login shell is two processes, `sh -c CMD` and `CMD`: anchor the pattern (`^sleep 9`) to
    /// count the command alone.
    pub fn remote_processes(&self, pattern: &str) -> usize {
        self.matching(pattern, None).len()
    }

    /// The pids of [`Fleet::remote_processes`].
    pub fn remote_pids(&self, pattern: &str) -> Vec<u32> {
        self.matching(pattern, None)
    }

    /// [`Fleet::remote_processes`] on host `i` only.
    pub fn remote_processes_on(&self, i: usize, pattern: &str) -> usize {
        self.matching(pattern, Some(&self.hosts[i].name)).len()
    }

    /// Makes host `i` unreachable, as if it had crashed: its sshd stops listening on its
    /// address (a new connection is refused), its established connections are cut, and the
    /// processes started on it are killed. Its lease directory stays.
    ///
    /// When the host shares its sshd with others, that sshd is restarted (SIGHUP, re-reading
    /// a config without the address): the others' established connections and commands are
    /// untouched, but for the ~25 ms of the restart a *new* connection to them is refused.
    /// This returns only once they accept again. A test that kills a host while the engine is
    /// still connecting should give that host an sshd of its own: [`Fleet::start_with`].
    #[track_caller]
    pub fn kill_host(&self, i: usize) {
        let host = &self.hosts[i];
        let mut server = self.servers[host.server].lock().unwrap();
        if server.down.contains(&i) {
            return;
        }
        server.down.push(i);
        let live: Vec<usize> = server
            .hosts
            .iter()
            .copied()
            .filter(|h| !server.down.contains(h))
            .collect();
        let addr: Ipv4Addr = host.addr.parse().unwrap();
        if live.is_empty() {
            kill_sessions(server.child.as_ref().unwrap().id(), None, server.port);
            let mut child = server.child.take().unwrap();
            let _ = child.kill();
            let _ = child.wait();
        } else {
            let addrs: Vec<Ipv4Addr> = live
                .iter()
                .map(|&h| self.hosts[h].addr.parse().unwrap())
                .collect();
            let names: Vec<&str> = live.iter().map(|&h| self.hosts[h].name.as_str()).collect();
            let spec = Spec {
                dir: self.dir.path(),
                index: host.server,
                host_key: &self.dir.path().join(format!("hostkey-{}", host.server)),
                authorized: &self.dir.path().join("authorized_keys"),
                id: &self.id,
            };
            fs::write(&server.config, sshd_config(&spec, server.port, &addrs, &names)).unwrap();
            // sshd writes its pid file once every listener is bound: gone first, it tells when
            // the restarted sshd is ready.
            let _ = fs::remove_file(&server.pid_file);
            let pid = server.child.as_ref().unwrap().id();
            // SAFETY: kill(2) on our own sshd.
            unsafe {
                libc::kill(pid as i32, libc::SIGHUP);
            }
            let port = server.port;
            let ready = wait_until(Duration::from_secs(10), || {
                server.pid_file.exists() && {
                    let listening = listeners(port);
                    !listening.contains(&addr) && addrs.iter().all(|a| listening.contains(a))
                }
            });
            let exited = server.child.as_mut().unwrap().try_wait().ok().flatten();
            assert!(
                ready && exited.is_none(),
                "sshd did not restart without {addr} ({exited:?}); its log:\n{}",
                fs::read_to_string(&server.log).unwrap_or_default()
            );
            kill_sessions(pid, Some(addr), port);
        }
        drop(server);
        kill_marked(&self.id, Some(&host.name));
    }

    /// Brings host `i` back after [`Fleet::kill_host`], as a crashed machine that rebooted:
    /// the same address, port and host key accept connections again (nothing of its old
    /// sessions survives). Returns once it listens.
    #[track_caller]
    pub fn revive_host(&self, i: usize) {
        let host = &self.hosts[i];
        let mut server = self.servers[host.server].lock().unwrap();
        if !server.down.contains(&i) {
            return;
        }
        server.down.retain(|&h| h != i);
        let live: Vec<usize> = server
            .hosts
            .iter()
            .copied()
            .filter(|h| !server.down.contains(h))
            .collect();
        let addrs: Vec<Ipv4Addr> = live
            .iter()
            .map(|&h| self.hosts[h].addr.parse().unwrap())
            .collect();
        let names: Vec<&str> = live.iter().map(|&h| self.hosts[h].name.as_str()).collect();
        let spec = Spec {
            dir: self.dir.path(),
            index: host.server,
            host_key: &self.dir.path().join(format!("hostkey-{}", host.server)),
            authorized: &self.dir.path().join("authorized_keys"),
            id: &self.id,
        };
        let port = server.port;
        fs::write(&server.config, sshd_config(&spec, port, &addrs, &names)).unwrap();
        // Gone first, the pid file tells when the (re)started sshd has bound every listener.
        let _ = fs::remove_file(&server.pid_file);
        match &server.child {
            // SAFETY: kill(2) on our own sshd: it re-reads its config.
            Some(child) => unsafe {
                libc::kill(child.id() as i32, libc::SIGHUP);
            },
            None => {
                let log = fs::OpenOptions::new().append(true).open(&server.log).unwrap();
                let child = Command::new(SSHD)
                    .args(["-D", "-e", "-f"])
                    .arg(&server.config)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
                server.child = Some(child);
            }
        }
        let pid_file = server.pid_file.clone();
        let ready = wait_until(Duration::from_secs(10), || {
            pid_file.exists() && {
                let listening = listeners(port);
                addrs.iter().all(|a| listening.contains(a))
            }
        });
        let exited = server.child.as_mut().unwrap().try_wait().ok().flatten();
        assert!(
            ready && exited.is_none(),
            "sshd did not come back on {}:{port} ({exited:?}); its log:\n{}",
            host.addr,
            fs::read_to_string(&server.log).unwrap_or_default()
        );
    }

    /// Whether [`Fleet::kill_host`] took host `i` down.
    pub fn is_down(&self, i: usize) -> bool {
        let host = &self.hosts[i];
        self.servers[host.server].lock().unwrap().down.contains(&i)
    }

    /// Every sshd instance's log, for a failing test's message.
    pub fn log(&self) -> String {
        self.servers
            .iter()
            .map(|s| {
                let s = s.lock().unwrap();
                format!(
                    "--- sshd on port {} ---\n{}",
                    s.port,
                    fs::read_to_string(&s.log).unwrap_or_default()
                )
            })
            .collect()
    }

    fn matching(&self, pattern: &str, host: Option<&str>) -> Vec<u32> {
        let out = Command::new("pgrep")
            .args(["-f", pattern])
            .output()
            .expect("run pgrep (procps)");
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "pgrep -f {pattern}: {out:?}"
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .filter(|&pid| marked(pid, &self.id, host))
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for server in &self.servers {
            let mut server = server.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(mut child) = server.child.take() {
                for pid in sshd::descendants(child.id()) {
                    // SAFETY: kill(2) on a process of our own fixture.
                    unsafe {
                        libc::kill(pid as i32, libc::SIGKILL);
                    }
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // What outlived its session (`setsid`, `nohup`): the hosts are gone.
        kill_marked(&self.id, None);
    }
}

/// Host `j`'s address: 127.0.0.2 for the first, up to 127.0.0.254, then 127.0.1.2, ...
pub fn address(j: usize) -> Ipv4Addr {
    let (third, fourth) = (j / 253, j % 253 + 2);
    Ipv4Addr::new(
        127,
        0,
        u8::try_from(third).expect("at most 64768 hosts"),
        fourth as u8,
    )
}

fn lease_base(dir: &Path, addr: Ipv4Addr) -> PathBuf {
    dir.join(format!("leases-{addr}"))
}

fn public_key(private: &Path) -> String {
    fs::read_to_string(private.with_extension("pub"))
        .unwrap()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One sshd listening on `port` on each of `addrs`, each address with its own environment.
fn sshd_config(spec: &Spec, port: u16, addrs: &[Ipv4Addr], names: &[&str]) -> String {
    let mut config = format!("Port {port}\n");
    for addr in addrs {
        config.push_str(&format!("ListenAddress {addr}\n"));
    }
    config.push_str(&format!(
        "HostKey {hostkey}\nAuthorizedKeysFile {authorized}\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile {pid}\n\
         AllowUsers {USER}\nPrintMotd no\nPrintLastLog no\n\
         # {PER_SSHD} hosts share this sshd: its limit of unauthenticated connections must not\n\
         # be theirs (a real host would have the default 10:30:100 to itself).\n\
         MaxStartups 200\n",
        hostkey = spec.host_key.display(),
        authorized = spec.authorized.display(),
        pid = pid_file(spec).display(),
    ));
    // Each address its own host: its own lease base, and its name and fleet in the session.
    for (addr, name) in addrs.iter().zip(names) {
        config.push_str(&format!(
            "Match LocalAddress {addr}\n  SetEnv RUNBOOK_LEASE_BASE={leases} {FLEET_VAR}={id} \
             {HOST_VAR}={name}\n",
            leases = lease_base(spec.dir, *addr).display(),
            id = spec.id,
        ));
    }
    config
}

fn pid_file(spec: &Spec) -> PathBuf {
    spec.dir.join(format!("sshd-{}.pid", spec.index))
}

/// Starts the sshd serving `hosts`, on a free port, retrying another port if one is taken.
fn spawn_server(spec: &Spec, hosts: &[usize], names: &[String], addrs: &[Ipv4Addr]) -> Server {
    let config = spec.dir.join(format!("sshd_config-{}", spec.index));
    let log = spec.dir.join(format!("sshd-{}.log", spec.index));
    let pid_file = pid_file(spec);
    let my_addrs: Vec<Ipv4Addr> = hosts.iter().map(|&i| addrs[i]).collect();
    let my_names: Vec<&str> = hosts.iter().map(|&i| names[i].as_str()).collect();
    for _attempt in 0..5 {
        let port = free_port(my_addrs[0]);
        fs::write(&config, sshd_config(spec, port, &my_addrs, &my_names)).unwrap();
        let _ = fs::remove_file(&pid_file);
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
        // The pid file comes once every listener is bound; a bind that failed (the port taken
        // on one of the addresses) is in the log by then. No probing connection: each would
        // cost a re-exec of sshd.
        let bound = wait_until(Duration::from_secs(10), || {
            pid_file.exists() || matches!(child.try_wait(), Ok(Some(_)))
        });
        let listening = bound
            && matches!(child.try_wait(), Ok(None))
            && !fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("Bind to port")
            && {
                let listening = listeners(port);
                my_addrs.iter().all(|a| listening.contains(a))
            };
        if listening {
            return Server {
                port,
                hosts: hosts.to_vec(),
                down: Vec::new(),
                config,
                pid_file,
                log,
                child: Some(child),
            };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!(
        "sshd did not start listening on {my_addrs:?}; its log:\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
}

fn free_port(addr: Ipv4Addr) -> u16 {
    TcpListener::bind(SocketAddr::from((addr, 0)))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills the processes below sshd `root` that hold a TCP connection on `addr:port` (every
/// address when `None`): to the client, the connection just died.
fn kill_sessions(root: u32, addr: Option<Ipv4Addr>, port: u16) {
    let inodes = connections(addr, port);
    if inodes.is_empty() {
        return;
    }
    for pid in sshd::descendants(root) {
        let holds = fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|fd| fs::read_link(fd.path()).ok())
            .any(|link| {
                let link = link.to_string_lossy();
                link.strip_prefix("socket:[")
                    .and_then(|s| s.strip_suffix(']'))
                    .is_some_and(|inode| inodes.iter().any(|i| i == inode))
            });
        if holds {
            // SAFETY: kill(2) on a process of our own fixture.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}

/// Socket inodes of the TCP connections (not listeners) whose local end is `addr:port`
/// (any address when `None`).
fn connections(addr: Option<Ipv4Addr>, port: u16) -> Vec<String> {
    tcp_table()
        .into_iter()
        .filter(|s| s.port == port && !s.listening && addr.is_none_or(|a| a == s.addr))
        .map(|s| s.inode)
        .collect()
}

/// The addresses with a listener on `port`.
fn listeners(port: u16) -> Vec<Ipv4Addr> {
    tcp_table()
        .into_iter()
        .filter(|s| s.port == port && s.listening)
        .map(|s| s.addr)
        .collect()
}

/// A line of /proc/net/tcp: the local end, whether it listens, the socket's inode.
struct Socket {
    addr: Ipv4Addr,
    port: u16,
    listening: bool,
    inode: String,
}

/// /proc/net/tcp, where `0200007F:9C41` is 127.0.0.2:40001 (the address in the machine's
/// byte order) and state `0A` is LISTEN.
fn tcp_table() -> Vec<Socket> {
    let table = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (addr, port) = f.get(1)?.split_once(':')?;
            let addr = u32::from_str_radix(addr, 16).ok()?.to_ne_bytes();
            Some(Socket {
                addr: Ipv4Addr::from(addr),
                port: u16::from_str_radix(port, 16).ok()?,
                listening: *f.get(3)? == "0A",
                inode: f.get(9)?.to_string(),
            })
        })
        .collect()
}

/// Whether process `pid` runs on fleet `id` (on host `host`, when given): its environment has
/// `RBTEST_FLEET=id` (and `RBTEST_HOST=host`).
fn marked(pid: u32, id: &str, host: Option<&str>) -> bool {
    let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let fleet = format!("{FLEET_VAR}={id}");
    let name = host.map(|h| format!("{HOST_VAR}={h}"));
    let vars: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
    vars.contains(&fleet.as_bytes()) && name.is_none_or(|n| vars.contains(&n.as_bytes()))
}

/// Kills every process of fleet `id` (on `host`, when given), until none is left: a shell
/// killed mid-fork may leave a child.
fn kill_marked(id: &str, host: Option<&str>) {
    for _round in 0..10 {
        let pids: Vec<u32> = fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
            .filter(|&pid| pid != std::process::id() && marked(pid, id, host))
            .collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: kill(2) on a process started through our own fixture's sshd.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
