//! The running ssh-agent, asked directly over its socket (`ssh-agent-client-rs`) rather than
//! through `ssh-add` and `ssh-keygen` processes: listing its keys and signing a trail's head
//! cost a socket round trip each, not a process each (issue 26: signing within 5 ms a run).
//! The signatures are the SSHSIG that `ssh-keygen -Y sign` makes (`ssh-key` assembles them), so
//! `ssh-keygen -Y verify` checks them as before.

use std::path::{Path, PathBuf};

use ssh_agent_client_rs::{Client, Identity};
use ssh_key::{HashAlg, LineEnding, PublicKey, SshSig};

/// `SSH_AUTH_SOCK`, when set.
pub(crate) fn socket() -> Option<PathBuf> {
    std::env::var_os("SSH_AUTH_SOCK")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// The plain public keys the agent holds, in its order (certificates left out).
pub(crate) fn keys(socket: &Path) -> Result<Vec<PublicKey>, String> {
    let mut client = Client::connect(socket)
        .map_err(|e| format!("cannot reach the ssh-agent at {}: {e}", socket.display()))?;
    let identities = client
        .list_all_identities()
        .map_err(|e| format!("the ssh-agent at {} did not list its keys: {e}", socket.display()))?;
    Ok(identities
        .into_iter()
        .filter_map(|identity| match identity {
            Identity::PublicKey(key) => Some(key.into_owned()),
            Identity::Certificate(_) => None,
        })
        .collect())
}

/// `SHA256:...`, as `ssh-keygen -l` and `ssh-add -l` print it.
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The fingerprints of the agent's keys; none when there is no agent or it cannot be reached.
pub(crate) fn fingerprints() -> Vec<String> {
    socket()
        .and_then(|s| keys(&s).ok())
        .unwrap_or_default()
        .iter()
        .map(fingerprint)
        .collect()
}

/// `message` signed in `namespace` by the agent's `key`: an armored SSHSIG, SHA-512 as
/// `ssh-keygen -Y sign` makes it.
pub(crate) fn sign(
    socket: &Path,
    key: &PublicKey,
    namespace: &str,
    message: &[u8],
) -> Result<String, String> {
    let data = SshSig::signed_data(namespace, HashAlg::Sha512, message)
        .map_err(|e| format!("cannot frame the data to sign: {e}"))?;
    let mut client = Client::connect(socket)
        .map_err(|e| format!("cannot reach the ssh-agent at {}: {e}", socket.display()))?;
    let signature = client
        .sign(key, &data)
        .map_err(|e| format!("the ssh-agent did not sign: {e}"))?;
    SshSig::new(key.key_data().clone(), namespace, HashAlg::Sha512, signature)
        .and_then(|sig| sig.to_pem(LineEnding::LF))
        .map(|pem| pem.trim().to_string())
        .map_err(|e| format!("cannot encode the signature: {e}"))
}

#[cfg(test)]
mod tests {
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
}
