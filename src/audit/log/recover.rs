//! What a resume writes about the crash before the run goes on: the torn last line set
//! aside, the outputs a crash cut off digested into the chain.

use std::io::Write;

use super::super::record::{self, Record};
use super::super::sha256_hex;
use super::{AuditLog, io_error};
use crate::error::Error;

impl AuditLog {
    /// The output of an attempt a crash cut off is evidence too: its size and SHA-256 go into
    /// the chain before the run goes on, so `verify` can check it from then on.
    pub(super) fn record_cut_off_output(
        &mut self,
        unfinished: &super::super::UnfinishedOutput,
    ) -> Result<(), Error> {
        // Only a file of the run's own folder is evidence; `verify` reports any other path.
        if super::super::outputs::plain_output(Some(&self.run_id), &unfinished.path).is_none() {
            return Ok(());
        }
        let file = self.dir.join(&unfinished.path);
        let mut buf = vec![0u8; 1 << 20];
        let (size, sha256) = match super::super::outputs::digest(&file, &mut buf) {
            Ok(found) => found,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error("read the cut-off output", &file, e)),
        };
        let recovered = record::OutputRecovered {
            attempt: unfinished.attempt,
            output: record::Output {
                path: unfinished.path.clone(),
                size,
                sha256,
                tail: None,
            },
        };
        self.append_record(
            &Record::OutputRecovered(recovered),
            unfinished.step.as_deref(),
            unfinished.host.as_deref(),
            true,
        )?;
        Ok(())
    }

    /// Saves the bytes after `good_len` beside the run's outputs, cuts them from the file and
    /// records that in the chain.
    pub(super) fn set_aside_torn_line(&mut self, line: usize, good_len: u64) -> Result<(), Error> {
        use std::io::{Read, Seek, SeekFrom};
        let mut bytes = Vec::new();
        self.file
            .seek(SeekFrom::Start(good_len))
            .and_then(|_| self.file.read_to_end(&mut bytes))
            .map_err(|e| io_error("read the torn last line of", &self.path, e))?;
        let name = format!("torn-line-{line}.bin");
        let relative = format!("{}/{name}", self.run_id);
        let saved = self.dir.join(&relative);
        let mut out = self
            .outputs
            .create_file(&name)
            .map_err(|e| io_error("save the torn last line to", &saved, e.into()))?;
        out.write_all(&bytes)
            .and_then(|()| out.sync_all())
            .map_err(|e| io_error("save the torn last line to", &saved, e))?;
        self.file
            .set_len(good_len)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| io_error("cut the torn last line from", &self.path, e))?;
        let recovery = record::Recovery {
            torn_line: line as u64,
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            saved_to: relative,
        };
        self.append_record(&Record::Recovery(recovery), None, None, true)?;
        Ok(())
    }
}
