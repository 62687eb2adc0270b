//! The team's audit host in tests (design §19): a directory on the sshd fixture, owned by its
//! login user, and the `ssh://` URL that names it.

use std::path::Path;

use super::sshd::{self, Sshd};

/// A directory the ssh user owns, as the audit host's PATH.
pub fn dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("audit-host-").tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(sshd::uid(sshd::USER)), None).unwrap();
    dir
}

/// `ssh://USER@127.0.0.1:PORT/DIR` for `dir` on `sshd`.
pub fn url(sshd: &Sshd, dir: &Path) -> String {
    format!("ssh://{}@127.0.0.1:{}{}", sshd::USER, sshd.port, dir.display())
}
