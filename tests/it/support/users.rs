//! Two people on one machine: OS accounts (`rb-alice`, `rb-bob`) with their own homes and keys
//! (`~/.ssh/id_ed25519`), and per test their own `ssh-agent` (holding that key) and audit dir.
//! `Person::runbook` runs the real binary as that account, with a clean environment and that
//! agent, as if on their own laptop. Accounts and keys are made once and kept (the tests run as
//! root); making them is safe when several tests or test binaries do it at once (a lock file).
//! The team's audit host is the loopback `sshd` fixture: `authorize` lets both log in there.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::sshd::{self, Sshd};

pub const ALICE: &str = "rb-alice";
pub const BOB: &str = "rb-bob";

/// Where an account's files are, once made.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// `~/.ssh/id_ed25519`, the account's own key (for SSH and for signing).
    pub key: PathBuf,
    /// Its public half, `ssh-ed25519 AAAA...`, as `authorized_keys` and `allowed_signers` take it.
    pub public: String,
}

/// The account `name` with its home and key, made when missing.
#[track_caller]
pub fn account(name: &str) -> Account {
    account_with_shell(name, "/bin/sh")
}

/// The account `name`, its login shell `shell` when it is made.
#[track_caller]
pub fn account_with_shell(name: &str, shell: &str) -> Account {
    sshd::ensure_prerequisites();
    // One maker at a time, across the threads and processes of the test run.
    let lock = std::fs::File::create("/tmp/rb-test-users.lock").expect("the users' lock file");
    // SAFETY: flock(2) on a file we hold open; released when it is closed.
    let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(locked, 0, "cannot lock /tmp/rb-test-users.lock");
    let home = PathBuf::from(format!("/home/{name}"));
    if !succeeds(Command::new("id").args(["-u", name])) {
        let made = succeeds(
            Command::new("useradd")
                .args(["-m", "-d"])
                .arg(&home)
                .args(["-s", shell, name]),
        );
        assert!(
            made,
            "cannot create the account {name} with useradd (the team tests need root)"
        );
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, name]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let (uid, gid) = (id("-u"), id("-g"));
    let ssh = home.join(".ssh");
    let key = ssh.join("id_ed25519");
    if !key.with_extension("pub").exists() {
        std::fs::create_dir_all(&ssh).unwrap();
        let _ = std::fs::remove_file(&key);
        let made = sshd::keygen(&ssh, "id_ed25519");
        assert_eq!(made, key);
    }
    // Theirs alone, as ssh insists; the home readable by others (the binary's files are not in it).
    for path in [&home, &ssh, &key, &key.with_extension("pub")] {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let public = public.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    Account {
        name: name.to_string(),
        uid,
        gid,
        home,
        key,
        public,
    }
}

/// An account at work in one test: its own ssh-agent holding its key, and an audit dir of its
/// own. The agent is stopped when this is dropped.
pub struct Person {
    pub account: Account,
    pub agent: PathBuf,
    pub audit: PathBuf,
    agent_process: Child,
    _dir: tempfile::TempDir,
}

impl Person {
    #[track_caller]
    pub fn start(name: &str) -> Person {
        let account = account(name);
        let dir = tempfile::Builder::new().prefix("rb-person-").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(dir.path(), Some(account.uid), Some(account.gid)).unwrap();
        let agent = dir.path().join("agent.sock");
        let audit = dir.path().join("audit");
        // The agent runs as the account: ssh-agent refuses other users' clients.
        let agent_process = as_account(&account, "ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&agent)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent starts (apt-get install openssh-client)");
        // Its socket is there a moment before it listens: asked until it answers
        // (`ssh-add -l`: 1 no keys yet, 2 no agent to talk to).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let listed = as_account(&account, "ssh-add")
                .arg("-l")
                .env("SSH_AUTH_SOCK", &agent)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            if listed.code() != Some(2) {
                break;
            }
            assert!(Instant::now() < deadline, "{name}'s ssh-agent does not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
        let added = as_account(&account, "ssh-add")
            .arg(&account.key)
            .env("SSH_AUTH_SOCK", &agent)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(added.success(), "ssh-add failed for {name}");
        Person {
            account,
            agent,
            audit,
            agent_process,
            _dir: dir,
        }
    }

    pub fn name(&self) -> &str {
        &self.account.name
    }

    /// `runbook ARGS...` as this person: their uid and groups, a clean environment (HOME, USER,
    /// PATH, their agent, `--audit-dir`'s default their own), stdin closed.
    pub fn runbook<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = as_account(&self.account, super::cmd::bin());
        command
            .args(args)
            .env("SSH_AUTH_SOCK", &self.agent)
            .env("RUNBOOK_AUDIT_DIR", &self.audit)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }

    /// The SSH options that reach `sshd` as this person: their own key, the fixture's host key.
    pub fn ssh_args(&self, sshd: &Sshd) -> Vec<String> {
        vec![
            "--identity".into(),
            self.account.key.display().to_string(),
            "--known-hosts".into(),
            sshd.known_hosts.display().to_string(),
        ]
    }
}

impl Drop for Person {
    fn drop(&mut self) {
        let _ = self.agent_process.kill();
        let _ = self.agent_process.wait();
    }
}

/// Lets each of `people` log in to `sshd` (as its user) with their own key: both reach the
/// team's audit host there.
pub fn authorize(sshd: &Sshd, people: &[&Person]) {
    use std::io::Write;
    let mut keys = std::fs::OpenOptions::new()
        .append(true)
        .open(sshd.dir.path().join("authorized_keys"))
        .unwrap();
    for person in people {
        writeln!(keys, "{}", person.account.public).unwrap();
    }
}

/// `program` as `account`, exec'd in place (`setpriv`, so that killing the child kills the
/// program), with only the environment a login would give.
fn as_account(account: &Account, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={}", account.uid))
        .arg(format!("--regid={}", account.gid))
        .arg("--init-groups")
        .arg("--")
        .arg(program)
        .env_clear()
        .env("HOME", &account.home)
        .env("USER", &account.name)
        .env("LOGNAME", &account.name)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .current_dir(&account.home);
    command
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A directory anyone may read (for runbooks, inventories, approvers files), owned by root.
pub fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("rb-team-").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Makes `path` belong to `person`.
pub fn give(path: &Path, person: &Person) {
    std::os::unix::fs::chown(path, Some(person.account.uid), Some(person.account.gid)).unwrap();
}
