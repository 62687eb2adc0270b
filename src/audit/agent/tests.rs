use std::process::{Command, Stdio};

use super::*;

/// A real ssh-agent holding a fresh ed25519 key: what we sign through its socket is what
/// `ssh-keygen -Y sign` makes through the same agent (ed25519 is deterministic), and
/// `ssh-keygen -Y verify` accepts it.
#[test]
fn an_agent_signature_is_the_one_ssh_keygen_makes() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let socket = dir.path().join("agent.sock");
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    /// Stops the agent however the test ends.
    struct Agent(std::process::Child);
    impl Drop for Agent {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Agent(
        Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client) must be installed"),
    );
    while !socket.exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let added = Command::new("ssh-add")
        .arg("-q")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(added.success());
    {
        let keys = keys(&socket).unwrap();
        assert_eq!(keys.len(), 1);
        let listed = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(key.with_extension("pub"))
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&listed.stdout).contains(&fingerprint(&keys[0])));

        let head = "a".repeat(64);
        let ours = sign(&socket, &keys[0], "runbook-audit", head.as_bytes()).unwrap();
        let mut keygen = Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "runbook-audit", "-f"])
            .arg(key.with_extension("pub"))
            .env("SSH_AUTH_SOCK", &socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        keygen.stdin.take().unwrap().write_all(head.as_bytes()).unwrap();
        let theirs = keygen.wait_with_output().unwrap();
        assert_eq!(ours, String::from_utf8_lossy(&theirs.stdout).trim());

        let signers = dir.path().join("allowed_signers");
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        std::fs::write(&signers, format!("op {public}")).unwrap();
        let sig = dir.path().join("head.sig");
        std::fs::write(&sig, format!("{ours}\n")).unwrap();
        let mut verify = Command::new("ssh-keygen")
            .args(["-Y", "verify", "-n", "runbook-audit", "-I", "op", "-f"])
            .arg(&signers)
            .arg("-s")
            .arg(&sig)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        verify.stdin.take().unwrap().write_all(head.as_bytes()).unwrap();
        assert!(
            verify.wait().unwrap().success(),
            "ssh-keygen -Y verify refused our signature"
        );
    }
}
