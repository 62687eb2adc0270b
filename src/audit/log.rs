//! The writer of a run's audit file: serializes each event in the documented member order,
//! chains it to the previous one, and appends it with one write so that a crash leaves at most
//! a torn last line. The chain (seq, prev) advances only once a line is on disk.
//!
//! A new trail gets its name only once its first line is on disk: it is written to
//! `<run>.jsonl.new`, synced, then linked to `<run>.jsonl`. A full disk at the very first line
//! used to leave an empty trail that could not be resumed and showed in `history` as a ghost.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use super::dir::{AuditDir, RunDir, file_safe, trail_dir, trail_is_a_link};
use super::output::OutputRecorder;
use super::sign::{AUDIT_NAMESPACE, Signature, Signer};
use super::syncer::Recorded;
use super::verify::{Status, scan};
use super::{FORMAT_VERSION, GENESIS, HASH_MEMBER_LEN, RESERVED, event_hash, sha256_hex};
use crate::error::Error;

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
pub const CHECKPOINT_EVERY_MS: u64 = 60_000;

/// What one event is made of, besides the chain state.
pub(crate) struct EventParts<'a> {
    pub seq: u64,
    pub ts: &'a str,
    pub mono_ms: u64,
    pub run: &'a str,
    pub event: &'a str,
    pub operator: &'a str,
    pub step: Option<&'a str>,
    pub host: Option<&'a str>,
    pub fields: &'a Map<String, Value>,
    pub prev: &'a str,
}

/// Serializes one event without its hash member (ending in `,"prev":"<64 hex>"}`) and
/// returns it with its hash.
pub(crate) fn render_body(parts: &EventParts) -> Result<(String, String), Error> {
    fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, Error> {
        serde_json::to_string(value)
            .map_err(|e| Error::runtime(format!("cannot serialize an audit event: {e}")))
    }
    let mut body = format!(
        "{{\"v\":{FORMAT_VERSION},\"seq\":{},\"ts\":{},\"mono_ms\":{},\"run\":{},\"event\":{},\"operator\":{}",
        parts.seq,
        json(parts.ts)?,
        parts.mono_ms,
        json(parts.run)?,
        json(parts.event)?,
        json(parts.operator)?,
    );
    for (key, value) in [("step", parts.step), ("host", parts.host)] {
        if let Some(value) = value {
            body.push_str(&format!(",\"{key}\":{}", json(value)?));
        }
    }
    for (key, value) in parts.fields {
        if RESERVED.contains(&key.as_str()) {
            return Err(Error::runtime(format!(
                "audit event `{}` has a field named `{key}`, which every event already has",
                parts.event
            )));
        }
        body.push_str(&format!(",{}:{}", json(key)?, json(value)?));
    }
    body.push_str(&format!(",\"prev\":\"{}\"}}", parts.prev));
    let hash = event_hash(parts.prev, body.as_bytes());
    Ok((body, hash))
}

/// An event's line from its body and hash: the hash member last, after the signature over
/// that hash when there is one (`docs/audit.md`), and the newline.
pub(crate) fn line_of(mut body: String, hash: &str, signature: Option<&Signature>) -> Result<String, Error> {
    body.pop(); // the closing brace, re-added after the hash member
    if let Some(signature) = signature {
        let json = serde_json::to_string(signature)
            .map_err(|e| Error::runtime(format!("cannot serialize a signature: {e}")))?;
        body.push_str(",\"signature\":");
        body.push_str(&json);
    }
    body.push_str(&format!(",\"hash\":\"{hash}\"}}\n"));
    debug_assert!(body.len() > HASH_MEMBER_LEN);
    Ok(body)
}

/// Serializes one unsigned event as its line (with the trailing `\n`) and returns it with its hash.
#[cfg(test)]
pub(crate) fn render(parts: &EventParts) -> Result<(String, String), Error> {
    let (body, hash) = render_body(parts)?;
    Ok((line_of(body, &hash, None)?, hash))
}

/// UTC, RFC 3339, milliseconds, `Z`: `2026-11-22T03:02:11.123Z`.
pub(crate) fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
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
        Ok(AuditLog {
            file,
            path,
            dir: dir.to_path_buf(),
            audit_dir,
            outputs,
            pending: Some(temp),
            run_id: run_id.to_string(),
            operator: operator.to_string(),
            started,
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
        })
    }

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
        let mono_offset_ms = scan.last.as_ref().map_or(0, |last| {
            let last_mono = last.get("mono_ms").and_then(Value::as_u64).unwrap_or(0);
            let gap = last
                .get("ts")
                .and_then(Value::as_str)
                .and_then(|ts| chrono::DateTime::parse_from_rfc3339(ts).ok())
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
        let mut log = AuditLog {
            file,
            path: path.to_path_buf(),
            dir,
            audit_dir,
            outputs,
            pending: None,
            run_id,
            operator: operator.to_string(),
            started: Instant::now(),
            mono_offset_ms,
            seq: v.last_seq.map_or(0, |s| s + 1),
            prev: v.head.clone().unwrap_or_else(|| GENESIS.to_string()),
            len: scan.good_len,
            sealed: false,
            poisoned: None,
            syncer: None,
            held: false,
            unsynced: false,
            signer: None,
            last_signed_ms: mono_offset_ms,
            written: None,
        };
        if let Some(torn) = &v.torn_tail {
            log.set_aside_torn_line(torn.line, scan.good_len)?;
        }
        for unfinished in &v.unfinished_outputs {
            log.record_cut_off_output(unfinished)?;
        }
        Ok(log)
    }

    /// The output of an attempt a crash cut off is evidence too: its size and SHA-256 go into
    /// the chain before the run goes on, so `verify` can check it from then on.
    fn record_cut_off_output(&mut self, unfinished: &super::UnfinishedOutput) -> Result<(), Error> {
        // Only a file of the run's own folder is evidence; `verify` reports any other path.
        if super::outputs::plain_output(Some(&self.run_id), &unfinished.path).is_none() {
            return Ok(());
        }
        let file = self.dir.join(&unfinished.path);
        let mut buf = vec![0u8; 1 << 20];
        let (size, sha256) = match super::outputs::digest(&file, &mut buf) {
            Ok(found) => found,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error("read the cut-off output", &file, e)),
        };
        let mut fields = Map::new();
        if let Some(attempt) = unfinished.attempt {
            fields.insert("attempt".into(), attempt.into());
        }
        fields.insert(
            "output".into(),
            serde_json::json!({"path": unfinished.path, "size": size, "sha256": sha256}),
        );
        self.append(
            "output recovered",
            unfinished.step.as_deref(),
            unfinished.host.as_deref(),
            fields,
            true,
        )?;
        Ok(())
    }

    /// Saves the bytes after `good_len` beside the run's outputs, cuts them from the file and
    /// records that in the chain.
    fn set_aside_torn_line(&mut self, line: usize, good_len: u64) -> Result<(), Error> {
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
        let mut fields = Map::new();
        fields.insert("torn_line".into(), line.into());
        fields.insert("bytes".into(), bytes.len().into());
        fields.insert("sha256".into(), sha256_hex(&bytes).into());
        fields.insert("saved_to".into(), relative.into());
        self.append("recovery", None, None, fields, true)?;
        Ok(())
    }

    /// Appends one event; `fields` follow the common members in their given order. The line
    /// goes out in one write; `durable` fsyncs it before returning (step started, run
    /// started/finished). Returns the event's seq.
    pub fn append(
        &mut self,
        event: &str,
        step: Option<&str>,
        host: Option<&str>,
        fields: Map<String, Value>,
        durable: bool,
    ) -> Result<u64, Error> {
        self.append_as(event, step, host, fields, durable, false)
    }

    /// Like `append`, with a signature over the event's own hash when the run signs (resume
    /// and hand-off events, checkpoints). Always durable.
    pub fn append_signed(
        &mut self,
        event: &str,
        step: Option<&str>,
        host: Option<&str>,
        fields: Map<String, Value>,
    ) -> Result<u64, Error> {
        self.append_as(event, step, host, fields, true, true)
    }

    fn append_as(
        &mut self,
        event: &str,
        step: Option<&str>,
        host: Option<&str>,
        mut fields: Map<String, Value>,
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
        let body_of = |fields: &Map<String, Value>| {
            render_body(&EventParts {
                seq: self.seq,
                ts: &ts,
                mono_ms,
                run: &self.run_id,
                event,
                operator: &self.operator,
                step,
                host,
                fields,
                prev: &self.prev,
            })
        };
        let (mut body, mut hash) = body_of(&fields)?;
        let mut signature: Option<Signature> = None;
        if let (true, Some(signer)) = (sign, self.signer.as_ref()) {
            match signer.sign(AUDIT_NAMESPACE, hash.as_bytes()) {
                Ok(s) => signature = Some(s),
                Err(why) => {
                    // Never lose the event for want of a signature: record why it has none.
                    fields.insert("signature_error".into(), why.into());
                    (body, hash) = body_of(&fields)?;
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

    /// Seals the file: appends `run finished` with `fields`, then `events` (the count, this
    /// one included) and `head` (the hash of the previous event), fsynced. Nothing can follow.
    pub fn seal(&mut self, mut fields: Map<String, Value>) -> Result<u64, Error> {
        fields.insert("events".into(), (self.seq + 1).into());
        fields.insert("head".into(), self.prev.clone().into());
        let seq = self.append_as("run finished", None, None, fields, true, true)?;
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
        let mut fields = Map::new();
        fields.insert("events".into(), (self.seq + 1).into());
        self.append_signed("checkpoint", None, None, fields)?;
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

    /// The seq the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// Whether `run finished` is written: nothing can be chained any more.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

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

    /// The hash of the last event written (64 zeros before the first).
    pub fn head(&self) -> &str {
        &self.prev
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
