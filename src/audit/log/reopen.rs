//! Reopening an interrupted run's trail to continue its chain (resume, hand-off): checked,
//! its torn last line set aside, its clock going on.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::super::GENESIS;
use super::super::dir::{AuditDir, file_safe, trail_dir, trail_is_a_link};
use super::super::verify::{Status, scan};
use super::{AuditLog, io_error};
use crate::error::Error;

impl AuditLog {
    /// Reopens an interrupted run's audit file to continue its chain (resume, hand-off).
    ///
    /// The file must verify as incomplete: a tampered or sealed file is refused. A torn last
    /// line is set aside, never dropped: its bytes are saved to
    /// `<dir>/<run_id>/torn-line-<line>.bin`, the file is cut back to its last complete line,
    /// and a `recovery` event records the line number, size, SHA-256 and where the bytes went.
    /// `mono_ms` goes on from the last event's value plus the wall-clock gap.
    pub fn open_append(path: &Path, operator: &str) -> Result<AuditLog, Error> {
        let parent = trail_dir(path);
        let audit_dir = AuditDir::open(parent, false)?;
        if path.is_symlink() {
            return Err(trail_is_a_link(path));
        }
        let scan = scan(path, false)?;
        let v = &scan.verification;
        match &v.status {
            Status::Tampered { seq, line, reason } => {
                return Err(Error::runtime(format!(
                    "`{}` was tampered with at seq {seq} (line {line}): {reason}; its chain cannot be continued",
                    path.display()
                )));
            }
            Status::IntactSealed => {
                return Err(Error::runtime(format!(
                    "run `{}` has finished (its audit file is sealed); nothing can be appended",
                    v.run.as_deref().unwrap_or("?")
                )));
            }
            Status::Incomplete => {}
        }
        let dir = parent.to_path_buf();
        let run_id = match &v.run {
            Some(run) => run.clone(),
            None => path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string)
                .ok_or_else(|| Error::runtime(format!("cannot tell the run id of `{}`", path.display())))?,
        };
        if file_safe(&run_id) != run_id {
            return Err(Error::runtime(format!(
                "`{}` names run `{run_id}`, which cannot name a file; refusing to write beside it",
                path.display()
            )));
        }
        let last = scan.last.as_ref().and_then(super::record::Line::from_value);
        let mono_offset_ms = last.map_or(0, |last| {
            let last_mono = last.common.mono_ms;
            let gap = chrono::DateTime::parse_from_rfc3339(&last.common.ts)
                .ok()
                .map_or(0, |ts| {
                    (chrono::Utc::now() - ts.with_timezone(&chrono::Utc))
                        .num_milliseconds()
                        .max(0) as u64
                });
            last_mono + gap
        });
        // Never through a link: one swapped in since the check above would send the chain
        // (and the truncation of a torn line) to another file.
        let file = match OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
        {
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(trail_is_a_link(path)),
            other => other.map_err(|e| io_error("open the audit file", path, e))?,
        };
        if !file
            .metadata()
            .map_err(|e| io_error("inspect the audit file", path, e))?
            .is_file()
        {
            return Err(Error::usage(format!(
                "`{}` is not a regular file; give the path of a run's .jsonl audit file",
                path.display()
            )));
        }
        let outputs = audit_dir.outputs(&run_id, false)?;
        let mut log = AuditLog::at_start(
            file,
            path.to_path_buf(),
            dir,
            audit_dir,
            outputs,
            run_id,
            operator,
        );
        log.mono_offset_ms = mono_offset_ms;
        log.seq = v.last_seq.map_or(0, |s| s + 1);
        log.prev = v.head.clone().unwrap_or_else(|| GENESIS.to_string());
        log.len = scan.good_len;
        log.last_signed_ms = mono_offset_ms;
        if let Some(torn) = &v.torn_tail {
            log.set_aside_torn_line(torn.line, scan.good_len)?;
        }
        for unfinished in &v.unfinished_outputs {
            log.record_cut_off_output(unfinished)?;
        }
        Ok(log)
    }
}
