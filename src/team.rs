//! The team's record (design §19): with `--audit-host` (or `RUNBOOK_AUDIT_HOST`), `history`,
//! `review`, `drills`, `evidence`, `replay` and `audit verify` read the union of the local audit
//! dir and the audit host's runs, one row per run id. What they need of the audit host is
//! copied over ONE SSH connection (the options of the targets: strict host keys, `BatchMode`),
//! by one fixed script whose every value is a positional argument (`copy.sh`), into a private
//! temporary directory (0700, files 0600, removed at the end); the commands' own readers then
//! read those files as they read the audit dir's. A run in both places is compared byte for
//! byte (`union.rs`): the same, or one the start of the other (a mirror behind, a run that
//! went on elsewhere), is one run; anything else is tampered, naming both copies.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::transport::{AuditHost, Ssh, SshOptions};

mod receive;
mod union;

pub(crate) use union::{Run, all, resolve};

const SCRIPT: &str = include_str!("team/copy.sh");

/// Run ids per request: a command line the remote sshd takes whatever the number of runs.
const BATCH: usize = 200;

/// A connection to the audit host and the private directory its copies go to.
pub(crate) struct Team {
    runtime: tokio::runtime::Runtime,
    ssh: Option<Ssh>,
    host: AuditHost,
    copy: tempfile::TempDir,
}

impl Team {
    /// Connects to `host` (one master for every request that follows). An audit host that
    /// cannot be reached is an error naming it: the team's record was asked for, and the local
    /// part alone would be taken for it.
    pub(crate) fn open(host: &AuditHost, opts: &SshOptions) -> Result<Team> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::runtime(format!("cannot start the SSH client: {e}")))?;
        let ssh = runtime.block_on(Ssh::connect(&host.dest(), opts)).map_err(|e| {
            Error::runtime(format!(
                "the audit host {host} cannot be reached: {e} (without --audit-host and RUNBOOK_AUDIT_HOST, only the local audit dir is read)"
            ))
        })?;
        // tempfile creates it 0700: nobody else reads what is copied into it.
        let copy = tempfile::Builder::new()
            .prefix("runbook-team-")
            .tempdir()
            .map_err(|e| {
                Error::runtime(format!(
                    "cannot create a private directory for the audit host's copy: {e}"
                ))
            })?;
        Ok(Team {
            runtime,
            ssh: Some(ssh),
            host: host.clone(),
            copy,
        })
    }

    pub(crate) fn host(&self) -> &AuditHost {
        &self.host
    }

    /// Where the copies are: `<run>.jsonl` and `<run>/` as in an audit dir.
    pub(crate) fn dir(&self) -> &Path {
        self.copy.path()
    }

    /// How a run's trail there is named to the user: `ssh://USER@HOST[:PORT]/PATH/<run>.jsonl`.
    pub(crate) fn there(&self, run: &str) -> String {
        format!("{}/{run}.jsonl", self.host)
    }

    /// The copy of `run`'s trail, once copied.
    pub(crate) fn trail(&self, run: &str) -> PathBuf {
        self.dir().join(format!("{run}.jsonl"))
    }

    /// The run ids there.
    pub(crate) fn list(&mut self) -> Result<Vec<String>> {
        Ok(self.ask("list", &[])?.listed)
    }

    /// Copies every trail there (not their outputs); returns their run ids.
    pub(crate) fn trails(&mut self) -> Result<Vec<String>> {
        Ok(self.ask("trails", &[])?.trails)
    }

    /// Copies the trails and output files of `runs` (run ids it has).
    pub(crate) fn runs(&mut self, runs: &[String]) -> Result<()> {
        for batch in runs.chunks(BATCH) {
            self.ask("runs", batch)?;
        }
        Ok(())
    }

    /// Copies the output files of `runs`, whose trails were copied by `trails`.
    pub(crate) fn outputs(&mut self, runs: &[String]) -> Result<()> {
        for batch in runs.chunks(BATCH) {
            self.ask("outputs", batch)?;
        }
        Ok(())
    }

    fn ask(&mut self, what: &str, runs: &[String]) -> Result<receive::Received> {
        let Some(ssh) = &self.ssh else {
            return Err(Error::runtime("the audit host's connection is closed"));
        };
        let mut args: Vec<&str> = vec![what];
        args.extend(runs.iter().map(String::as_str));
        let command = self.host.script("rb-record", SCRIPT, &args);
        let dir = self.copy.path().to_path_buf();
        let host = &self.host;
        self.runtime
            .block_on(receive::run(ssh, &command, &dir))
            .map_err(|why| Error::runtime(format!("cannot read the runs on the audit host {host}: {why}")))
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        if let Some(ssh) = self.ssh.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(2), ssh.close()).await
            });
        }
    }
}

#[cfg(test)]
mod tests;
