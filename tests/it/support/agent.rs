//! A real `ssh-agent` holding one throwaway key, for runs that sign their trail (design §12),
//! and the `allowed_signers` file that trusts it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::sshd::keygen;

/// An `ssh-agent` started here (`-D`, its own socket) with one fresh ed25519 key; killed on drop.
pub struct Agent {
    pub socket: PathBuf,
    /// The key's public half (`ssh-ed25519 AAAA…`), as an `allowed_signers` line needs it.
    pub public: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Agent {
    #[track_caller]
    pub fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent starts (apt-get install openssh-client)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "ssh-agent did not open its socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        let key = keygen(dir.path(), "signer");
        let added = Command::new("ssh-add")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &socket)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(added.success(), "ssh-add failed");
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let public = public.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        Agent {
            socket,
            public,
            child,
            _dir: dir,
        }
    }

    /// An `allowed_signers` file at `dir/allowed_signers` naming this key `principal`.
    pub fn allowed_signers(&self, dir: &Path, principal: &str) -> PathBuf {
        let file = dir.join("allowed_signers");
        std::fs::write(&file, format!("{principal} {}\n", self.public)).unwrap();
        file
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
