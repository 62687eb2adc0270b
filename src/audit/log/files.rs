//! The files of a run beside its trail, in `<dir>/<run_id>/`: step outputs, shell
//! recordings, and what comes after the seal.

use std::io::Write;

use super::super::dir::file_safe;
use super::super::output::OutputRecorder;
use super::AuditLog;
use crate::error::Error;

impl AuditLog {
    /// Writes one of the files that come after the seal (`notifications.jsonl`, exempt from
    /// the outputs check of a sealed trail) into `<run-id>/`: created 0600, never through a link.
    pub fn write_after_seal(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let mut file = self
            .outputs
            .create_file(name)
            .map_err(|e| Error::runtime(format!("cannot create `{}/{name}`: {e}", self.run_id)))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::runtime(format!("cannot write `{}/{name}`: {e}", self.run_id)))
    }

    /// A recorder of one step attempt's full (already masked) output:
    /// `<dir>/<run_id>/<step>-<attempt>.out`.
    pub fn output(&self, step: &str, attempt: u32, host: Option<&str>) -> Result<OutputRecorder, Error> {
        let name = output_file(step, attempt, host);
        OutputRecorder::create(&self.outputs, &self.dir, &self.run_id, &name)
    }

    /// `<run_id>/<step>-<attempt>.out`, relative to the audit dir; a sub-run's `call/step`
    /// becomes `call__step`.
    /// A fleet host's is `<step>@<host>-<attempt>.out`.
    pub fn output_name(&self, step: &str, attempt: u32, host: Option<&str>) -> String {
        format!("{}/{}", self.run_id, output_file(step, attempt, host))
    }

    /// Creates the recording of shell session `n` of the run, `<run_id>/shell-<n>.cast`
    /// (design §17), as every output file: 0600, never an existing file, never through a link.
    pub fn shell_recording(&self, n: u32) -> Result<OutputRecorder, Error> {
        OutputRecorder::create(&self.outputs, &self.dir, &self.run_id, &shell_file(n))
    }

    /// `<run_id>/shell-<n>.cast`, relative to the audit dir.
    pub fn shell_recording_name(&self, n: u32) -> String {
        format!("{}/{}", self.run_id, shell_file(n))
    }

    /// The number of the run's next shell session: one more than the highest recording in its
    /// directory (a resumed run goes on counting, and never meets a file of its own).
    pub fn next_shell_number(&self) -> u32 {
        let highest = std::fs::read_dir(self.dir.join(&self.run_id))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("shell-")?
                    .strip_suffix(".cast")?
                    .parse::<u32>()
                    .ok()
            })
            .max()
            .unwrap_or(0);
        highest + 1
    }
}

/// A shell session's recording: `shell-<n>.cast` (no step's output file ends in `.cast`).
fn shell_file(n: u32) -> String {
    format!("shell-{n}.cast")
}

/// `<step>-<attempt>.out`, or `<step>@<host>-<attempt>.out` for a fleet host; a sub-run's
/// `call/step` becomes `call__step`.
fn output_file(step: &str, attempt: u32, host: Option<&str>) -> String {
    let step = file_safe(&step.replace('/', "__"));
    match host {
        Some(host) => format!("{step}@{}-{attempt}.out", file_safe(host)),
        None => format!("{step}-{attempt}.out"),
    }
}
