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
mod tests;
