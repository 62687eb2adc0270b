//! The writer of a run's audit file: serializes each event in the documented member order,
//! chains it to the previous one, and appends it with one write so that a crash leaves at most
//! a torn last line. The chain (seq, prev) advances only once a line is on disk.
//!
//! A new trail gets its name only once its first line is on disk: it is written to
//! `<run>.jsonl.new`, synced, then linked to `<run>.jsonl`. A full disk at the very first line
//! used to leave an empty trail that could not be resumed and showed in `history` as a ghost.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use super::GENESIS;
use super::dir::{AuditDir, RunDir, file_safe};
use super::record::{self, Record};
use super::sign::{AUDIT_NAMESPACE, Signature, Signer};
use super::syncer::Recorded;
use crate::error::Error;

mod files;
mod recover;
mod render;
mod reopen;
#[cfg(test)]
use super::{RESERVED, event_hash};
pub(crate) use render::timestamp;
use render::{EventParts, line_of, map_members, render_members};
#[cfg(test)]
use render::{render, render_body};

/// An open, append-only audit file and the state of its hash chain.
#[derive(Debug)]
pub struct AuditLog {
    file: File,
    path: PathBuf,
    /// The audit dir: output files go to `<dir>/<run_id>/`.
    dir: PathBuf,
    /// The same, open: the trail is named, and its temporary name removed, relative to it.
    audit_dir: AuditDir,
    /// `<dir>/<run_id>/`, open: output files are created in it, never through a planted link.
    outputs: RunDir,
    /// `<run_id>.jsonl.new` while the first line is not on disk yet: the name `file` has until
    /// then. `None` once the trail has its own name (and always for a reopened trail).
    pending: Option<String>,
    run_id: String,
    operator: String,
    started: Instant,
    /// Added to `started.elapsed()`: a resumed run keeps counting from the original start.
    mono_offset_ms: u64,
    /// The seq of the next event.
    seq: u64,
    /// The hash of the last event on disk, or 64 zeros.
    prev: String,
    /// The length of the file's complete lines: where a partial write is cut back to.
    len: u64,
    sealed: bool,
    /// Set when a failed write left bytes that could not be removed: appending after them
    /// would bury a broken line mid-file, so the log refuses to go on.
    poisoned: Option<String>,
    /// Signs resume events, checkpoints and the seal (design §12); `None`: an unsigned run.
    signer: Option<Arc<Signer>>,
    /// `mono_ms` of the last signed event: a checkpoint is due 60 s of run time later.
    last_signed_ms: u64,
    /// The lines written since the last `take_written`, when someone reads along (the run's
    /// tally); `None`: nobody does, nothing is kept.
    written: Option<Vec<String>>,
    /// Fsyncs for `sync_soon`, started at its first use.
    syncer: Option<super::syncer::Syncer>,
    /// While set (`hold_syncs`), durable events are written but fsynced together at
    /// `release_syncs`; `unsynced` says one is waiting.
    held: bool,
    unsynced: bool,
}

/// Run time between signed checkpoints, so a crashed run keeps a signed prefix.
pub(super) const CHECKPOINT_EVERY_MS: u64 = 60_000;

fn record_members(record: &Record) -> Result<String, Error> {
    record::members(record).map_err(|e| Error::runtime(format!("cannot serialize an audit event: {e}")))
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::runtime(format!("cannot {what} `{}`: {e}", path.display()))
}

impl AuditLog {
    /// Prepares `<dir>/<run_id>.jsonl` (never reusing a file, mode 0600; `dir` is created 0700
    /// or checked, see `AuditDir::open`) and creates `<dir>/<run_id>/` for step outputs. The
    /// trail appears under its name with its first line (the first `append`); a log dropped
    /// before that leaves nothing behind. Every problem here is a usage error: nothing has run.
    pub fn create(dir: &Path, run_id: &str, operator: &str, started: Instant) -> Result<AuditLog, Error> {
        if run_id.is_empty() || file_safe(run_id) != run_id {
            return Err(Error::runtime(format!(
                "run id `{run_id}` cannot name a file; make one with `new_run_id`"
            )));
        }
        let audit_dir = AuditDir::open(dir, true)?;
        let name = format!("{run_id}.jsonl");
        let path = dir.join(&name);
        if audit_dir.exists(&name) {
            return Err(Error::usage(format!(
                "the audit file `{}` already exists: a run id is never reused; run again for a new one",
                path.display()
            )));
        }
        let temp = format!("{name}.new");
        let file = audit_dir.create_file(&temp).map_err(|e| {
            Error::usage(format!(
                "cannot create the audit file `{}`: {}; give a writable audit dir with --audit-dir or RUNBOOK_AUDIT_DIR",
                dir.join(&temp).display(),
                std::io::Error::from(e)
            ))
        })?;
        let outputs = match audit_dir.outputs(run_id, true) {
            Ok(outputs) => outputs,
            Err(e) => {
                audit_dir.remove(&temp, false);
                return Err(e);
            }
        };
        let mut log = AuditLog::at_start(
            file,
            path,
            dir.to_path_buf(),
            audit_dir,
            outputs,
            run_id.into(),
            operator,
        );
        log.pending = Some(temp);
        log.started = started;
        Ok(log)
    }

    /// A log of `run_id` on `file` at the chain's start, writing at once: what the constructors
    /// share (a new trail's pending name, a reopened one's place in its chain, are theirs).
    fn at_start(
        file: File,
        path: PathBuf,
        dir: PathBuf,
        audit_dir: AuditDir,
        outputs: RunDir,
        run_id: String,
        operator: &str,
    ) -> AuditLog {
        AuditLog {
            file,
            path,
            dir,
            audit_dir,
            outputs,
            pending: None,
            run_id,
            operator: operator.to_string(),
            started: Instant::now(),
            mono_offset_ms: 0,
            seq: 0,
            prev: GENESIS.to_string(),
            len: 0,
            sealed: false,
            poisoned: None,
            syncer: None,
            held: false,
            unsynced: false,
            signer: None,
            last_signed_ms: 0,
            written: None,
        }
    }

    /// Appends one event; `fields` follow the common members in their given order. The line
    /// goes out in one write; `durable` fsyncs it before returning (step started, run
    /// started/finished). Returns the event's seq. The untyped path: deliveries, which
    /// `notify` builds member by member, and tests; everything else is a `Record`.
    pub fn append(
        &mut self,
        event: &str,
        step: Option<&str>,
        host: Option<&str>,
        fields: Map<String, Value>,
        durable: bool,
    ) -> Result<u64, Error> {
        let members = map_members(event, &fields)?;
        self.append_as(event, step, host, members, durable, false)
    }

    /// Appends one record, as `append`: the record's own members follow the common ones in
    /// the order `Record` declares them.
    pub fn append_record(
        &mut self,
        record: &Record,
        step: Option<&str>,
        host: Option<&str>,
        durable: bool,
    ) -> Result<u64, Error> {
        let members = record_members(record)?;
        self.append_as(record.name(), step, host, members, durable, false)
    }

    /// Like `append_record`, with a signature over the event's own hash when the run signs
    /// (resume and hand-off events, checkpoints). Always durable.
    pub fn append_signed(
        &mut self,
        record: &Record,
        step: Option<&str>,
        host: Option<&str>,
    ) -> Result<u64, Error> {
        let members = record_members(record)?;
        self.append_as(record.name(), step, host, members, true, true)
    }

    fn append_as(
        &mut self,
        event: &str,
        step: Option<&str>,
        host: Option<&str>,
        mut members: String,
        durable: bool,
        sign: bool,
    ) -> Result<u64, Error> {
        if self.sealed {
            return Err(Error::runtime(format!(
                "the audit file `{}` is sealed (run finished); `{event}` cannot be appended",
                self.path.display()
            )));
        }
        if self.poisoned.is_none() {
            self.poisoned = self.syncer.as_ref().and_then(super::syncer::Syncer::failure);
        }
        if let Some(why) = &self.poisoned {
            return Err(Error::runtime(why.clone()));
        }
        let ts = timestamp(chrono::Utc::now());
        let mono_ms = self.mono_offset_ms + self.started.elapsed().as_millis() as u64;
        let no_fields = Map::new();
        let body_of = |members: &str| {
            render_members(
                &EventParts {
                    seq: self.seq,
                    ts: &ts,
                    mono_ms,
                    run: &self.run_id,
                    event,
                    operator: &self.operator,
                    step,
                    host,
                    fields: &no_fields,
                    prev: &self.prev,
                },
                members,
            )
        };
        let (mut body, mut hash) = body_of(&members)?;
        let mut signature: Option<Signature> = None;
        if let (true, Some(signer)) = (sign, self.signer.as_ref()) {
            match signer.sign(AUDIT_NAMESPACE, hash.as_bytes()) {
                Ok(s) => signature = Some(s),
                Err(why) => {
                    // Never lose the event for want of a signature: record why it has none
                    // (the last member of every signed record: `signature_error`).
                    let why = serde_json::to_string(&why)
                        .map_err(|e| Error::runtime(format!("cannot serialize an audit event: {e}")))?;
                    members.push_str(&format!(",\"signature_error\":{why}"));
                    (body, hash) = body_of(&members)?;
                }
            }
        }
        let line = line_of(body, &hash, signature.as_ref())?;
        match self.pending.take() {
            None => self.write_line(line.as_bytes())?,
            Some(temp) => self.write_first_line(&temp, line.as_bytes())?,
        }
        let seq = self.seq;
        self.seq += 1;
        self.prev = hash;
        self.len += line.len() as u64;
        if signature.is_some() {
            self.last_signed_ms = mono_ms;
        }
        if let Some(written) = self.written.as_mut() {
            written.push(line);
        }
        if durable && self.held {
            self.unsynced = true;
        } else if durable {
            self.sync()?;
        }
        Ok(seq)
    }

    fn sync(&mut self) -> Result<(), Error> {
        self.file
            .sync_data()
            .map_err(|e| io_error("flush to disk (fsync) the audit file", &self.path, e))
    }

    /// Fsyncs what was written so far without waiting for it (`syncer`), for events that
    /// need not be on disk before the run goes on (a step's finish); returns what resolves
    /// once they are. Without a thread to be had, the fsync is done here, as it used to be.
    pub fn sync_soon(&mut self) -> Result<Recorded, Error> {
        if self.syncer.is_none()
            && let Ok(syncer) = super::syncer::Syncer::start(&self.file, &self.path)
        {
            self.syncer = Some(syncer);
        }
        match self.syncer.as_mut() {
            Some(syncer) => Ok(syncer.request()),
            None => {
                self.sync()?;
                Ok(Recorded::done())
            }
        }
    }

    /// From here to `release_syncs`, durable events are written at once and fsynced together
    /// at `release_syncs`: a fleet's wave of starts costs one fsync, still before any of its
    /// commands runs.
    pub fn hold_syncs(&mut self) {
        self.held = true;
    }

    /// Fsyncs the durable events written since `hold_syncs`, if any.
    pub fn release_syncs(&mut self) -> Result<(), Error> {
        self.held = false;
        if std::mem::take(&mut self.unsynced) {
            self.sync()?;
        }
        Ok(())
    }

    /// Like `release_syncs`, without waiting: the fsync goes to the `syncer`, and what
    /// resolves once it is done is returned. Whoever runs a command on the strength of those
    /// events waits for it first (a step's start is on disk before its command runs).
    pub fn release_syncs_later(&mut self) -> Result<Recorded, Error> {
        self.held = false;
        if std::mem::take(&mut self.unsynced) {
            self.sync_soon()
        } else {
            Ok(Recorded::done())
        }
    }

    /// The first line goes to the temporary name, is synced, and only then is the trail named
    /// (`link(2)`, which fails rather than replace a file). On failure nothing is left: neither
    /// the temporary file nor the run's (empty) output directory, and the log refuses to go on.
    fn write_first_line(&mut self, temp: &str, line: &[u8]) -> Result<(), Error> {
        let name = format!("{}.jsonl", self.run_id);
        let written = self
            .file
            .write_all(line)
            .and_then(|()| self.file.sync_data())
            .and_then(|()| self.audit_dir.link(temp, &name).map_err(std::io::Error::from));
        self.audit_dir.remove(temp, false);
        if let Err(e) = written {
            self.audit_dir.remove(&self.run_id, true);
            self.audit_dir.sync();
            let message = format!(
                "cannot write the first line of the audit file `{}`: {e}; nothing was run and no trail was left: free some space (or give another --audit-dir) and run again",
                self.path.display()
            );
            self.poisoned = Some(message.clone());
            return Err(Error::usage(message));
        }
        self.audit_dir.sync();
        Ok(())
    }

    /// Writes the whole line; on failure removes whatever part of it reached the file, so the
    /// next append (or a resume) finds the file ending at a complete line.
    fn write_line(&mut self, line: &[u8]) -> Result<(), Error> {
        let mut written = 0;
        while written < line.len() {
            match self.file.write(&line[written..]) {
                Ok(0) => {
                    return self.undo_partial(written, std::io::ErrorKind::WriteZero.into());
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return self.undo_partial(written, e),
            }
        }
        Ok(())
    }

    fn undo_partial(&mut self, written: usize, e: std::io::Error) -> Result<(), Error> {
        let message = format!(
            "cannot write to the audit file `{}`: {e}; stopping so that nothing runs unrecorded",
            self.path.display()
        );
        if written > 0 && self.file.set_len(self.len).is_err() {
            self.poisoned = Some(format!(
                "{message} (and a partial line could not be removed; `runbook resume` sets it aside)"
            ));
        }
        Err(Error::runtime(message))
    }

    /// Seals the file: appends `run finished` with `seal`'s members, its `events` (the count,
    /// this one included) and `head` (the hash of the previous event) set here, fsynced.
    /// Nothing can follow.
    pub fn seal_record(&mut self, mut seal: record::RunFinished) -> Result<u64, Error> {
        seal.events = self.seq + 1;
        seal.head = self.prev.clone();
        let members = record_members(&Record::RunFinished(seal))?;
        self.seal_with(members)
    }

    /// `seal_record` from members built by hand (tests of damaged and odd trails).
    pub fn seal(&mut self, mut fields: Map<String, Value>) -> Result<u64, Error> {
        fields.insert("events".into(), (self.seq + 1).into());
        fields.insert("head".into(), self.prev.clone().into());
        let members = map_members("run finished", &fields)?;
        self.seal_with(members)
    }

    fn seal_with(&mut self, members: String) -> Result<u64, Error> {
        let seq = self.append_as("run finished", None, None, members, true, true)?;
        self.sealed = true;
        Ok(seq)
    }

    /// The lines written since the last call (and from now on, kept until the next one).
    pub fn take_written(&mut self) -> Vec<String> {
        std::mem::take(self.written.get_or_insert_default())
    }

    /// Signs what follows: resume events, checkpoints and the seal.
    pub fn set_signer(&mut self, signer: Option<Arc<Signer>>) {
        self.signer = signer;
    }

    /// Writes a signed `checkpoint` when the run signs and 60 s of run time have passed since
    /// the last signed event: a run that crashes later keeps a signed prefix.
    pub fn checkpoint_if_due(&mut self) -> Result<(), Error> {
        let now = self.mono_offset_ms + self.started.elapsed().as_millis() as u64;
        if self.signer.is_none() || self.sealed || now < self.last_signed_ms + CHECKPOINT_EVERY_MS {
            return Ok(());
        }
        let checkpoint = record::Checkpoint {
            events: self.seq + 1,
            signature_error: None,
        };
        self.append_signed(&Record::Checkpoint(checkpoint), None, None)?;
        Ok(())
    }

    /// The operator of the events that follow (a hand-off).
    pub fn set_operator(&mut self, operator: &str) {
        self.operator = operator.to_string();
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The trail's length in bytes: where the next line goes.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// The seq the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// Whether `run finished` is written: nothing can be chained any more.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// The hash of the last event written (64 zeros before the first).
    pub fn head(&self) -> &str {
        &self.prev
    }

    /// Test hook: replace the file handle (e.g. with `/dev/full`) to exercise real write errors.
    #[cfg(test)]
    pub(crate) fn replace_file(&mut self, file: File) {
        self.file = file;
    }
}

impl Drop for AuditLog {
    /// A log that never wrote its first line leaves nothing: no temporary file, no empty
    /// output directory.
    fn drop(&mut self) {
        if let Some(temp) = self.pending.take() {
            self.audit_dir.remove(&temp, false);
            self.audit_dir.remove(&self.run_id, true);
        }
    }
}

#[cfg(test)]
mod tests;
