//! Recomputes a run's hash chain from the bytes on disk, line by line, and says whether the
//! file is intact and sealed, incomplete (a crash, maybe with a torn last line), or tampered
//! with, naming the first line where the chain does not hold.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::record::{Line, Record, RunFinished};
use super::sign::Signature;
use super::{FORMAT_VERSION, GENESIS, HASH_MEMBER_LEN, event_hash_parts};
use crate::error::Error;

mod follow;
pub(crate) use follow::ChainFollower;

/// The verdict on one audit file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    #[serde(flatten)]
    pub status: Status,
    /// Events whose chain holds (before the first bad line, if any; a torn line is not one).
    pub events: u64,
    pub last_seq: Option<u64>,
    pub torn_tail: Option<TornTail>,
    /// The run id every event names.
    pub run: Option<String>,
    /// The hash of the last good event.
    pub head: Option<String>,
    /// The `event` and `step` of the last good event, to say where an incomplete run stopped.
    pub last_event: Option<String>,
    pub last_step: Option<String>,
    /// A sealed trail whose seal lacks only its final newline (still sealed, never resumed).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub seal_missing_newline: bool,
    /// Every signed event of the good lines, in order.
    #[serde(skip)]
    pub signatures: Vec<SignedEvent>,
    /// Every file beside the trail that an event accounts for, with its size and digest.
    #[serde(skip)]
    pub outputs: Vec<DeclaredOutput>,
    /// Output files of step attempts that started and never finished (a crash).
    #[serde(skip)]
    pub unfinished_outputs: Vec<UnfinishedOutput>,
}

/// The output file of a step attempt whose start is recorded and whose end is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfinishedOutput {
    pub step: Option<String>,
    pub host: Option<String>,
    pub attempt: Option<u64>,
    /// Relative to the audit dir.
    pub path: String,
}

/// An event that carries a signature over its own hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvent {
    pub seq: u64,
    pub event: String,
    pub hash: String,
    pub signature: Signature,
}

/// A file an event names with its size and SHA-256 (a step's output, a set-aside torn line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredOutput {
    pub seq: u64,
    pub step: Option<String>,
    /// Relative to the audit dir: `<run>/<name>`.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Every line chains, and the last is the `run finished` seal.
    IntactSealed,
    /// Every line chains but there is no seal: the run was interrupted (or is still going).
    Incomplete,
    /// The first line where the chain breaks. `seq` is the seq that line claims, or the seq
    /// expected there when it has none; `line` is 1-based.
    Tampered { seq: u64, line: usize, reason: String },
}

/// A last line without its `\n`: a write cut short by a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TornTail {
    /// 1-based line number.
    pub line: usize,
    pub bytes: usize,
}

/// A verification plus what the writer needs to continue the chain.
pub(crate) struct Scan {
    pub verification: Verification,
    /// The last good event.
    pub last: Option<Value>,
    /// The length of the good, complete lines (where a torn tail starts).
    pub good_len: u64,
    /// Every good event, when asked for.
    pub events: Vec<Value>,
}

/// Verifies the audit file at `path`. I/O problems are errors; a bad chain is a `Status`.
pub fn verify(path: &Path) -> Result<Verification, Error> {
    Ok(scan(path, false)?.verification)
}

/// `verify` without the list of outputs (`outputs` left empty): what a review needs, in
/// memory that does not grow with the run's steps (it runs beside the review's own).
pub(crate) fn verify_chain(path: &Path) -> Result<Verification, Error> {
    Ok(scan_with(path, false, false)?.verification)
}

/// Every event of an audit file that is not tampered with (a torn last line is left out).
pub fn read_events(path: &Path) -> Result<Vec<Value>, Error> {
    let scan = scan(path, true)?;
    if let Status::Tampered { seq, line, reason } = &scan.verification.status {
        return Err(Error::runtime(format!(
            "`{}` was tampered with at seq {seq} (line {line}): {reason}; its events cannot be trusted",
            path.display()
        )));
    }
    Ok(scan.events)
}

/// What one good line holds.
struct Checked {
    /// The whole event, parsed only when it is needed (collecting, or checking a seal).
    value: Option<Value>,
    hash: String,
    event: String,
    step: Option<String>,
    run: String,
    signature: Option<Signature>,
    host: Option<String>,
    attempt: Option<u64>,
    /// `step started`: the output file the attempt will write.
    output_file: Option<String>,
    /// A file the event accounts for: (path, size, sha256).
    output: Option<(String, u64, String)>,
}

/// `output` of `step finished` (and `output recovered`, `shell closed`).
#[derive(serde::Deserialize)]
struct OutputRef {
    path: String,
    size: u64,
    sha256: String,
}

/// The members verification reads; the rest of the line is only checked to be JSON. Parsing
/// this instead of a whole `Value` per line keeps `verify` (and so `review`) fast on big trails.
#[derive(serde::Deserialize, Default)]
struct Head<'a> {
    v: Option<u64>,
    seq: Option<u64>,
    #[serde(borrow)]
    run: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    event: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    step: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    prev: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    hash: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    host: Option<std::borrow::Cow<'a, str>>,
    attempt: Option<u64>,
    #[serde(borrow)]
    output_file: Option<std::borrow::Cow<'a, str>>,
    output: Option<OutputRef>,
    // `recovery`: the torn line set aside.
    #[serde(borrow)]
    saved_to: Option<std::borrow::Cow<'a, str>>,
    bytes: Option<u64>,
    #[serde(borrow)]
    sha256: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> Head<'a> {
    /// The same members from an already parsed event, for lines whose members have odd types.
    fn of(value: &'a Value) -> Head<'a> {
        let text = |k: &str| {
            value
                .get(k)
                .and_then(Value::as_str)
                .map(std::borrow::Cow::Borrowed)
        };
        Head {
            v: value.get("v").and_then(Value::as_u64),
            seq: value.get("seq").and_then(Value::as_u64),
            run: text("run"),
            event: text("event"),
            step: text("step"),
            prev: text("prev"),
            hash: text("hash"),
            host: text("host"),
            attempt: value.get("attempt").and_then(Value::as_u64),
            output_file: text("output_file"),
            output: value
                .get("output")
                .and_then(|o| serde_json::from_value(o.clone()).ok()),
            saved_to: text("saved_to"),
            bytes: value.get("bytes").and_then(Value::as_u64),
            sha256: text("sha256"),
        }
    }
}

/// A step attempt: step, host, attempt number.
type AttemptKey = (Option<String>, Option<String>, Option<u64>);

/// Where a line breaks the chain: the seq to name, and why.
struct Broken {
    seq: u64,
    reason: String,
}

pub(crate) fn scan(path: &Path, collect: bool) -> Result<Scan, Error> {
    scan_with(path, collect, true)
}

/// `scan`, keeping the outputs the trail declares only when `outputs` (for their check).
fn scan_with(path: &Path, collect: bool, outputs: bool) -> Result<Scan, Error> {
    let read_error = |e: std::io::Error| Error::runtime(format!("cannot read `{}`: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if !meta.is_file() {
        return Err(Error::runtime(format!(
            "`{}` is not a regular file, so not an audit file",
            path.display()
        )));
    }
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path).map_err(read_error)?);
    // Every line must name the run the file is named after (`<run>.jsonl`): another run's
    // trail, however well signed, never passes under this run's name.
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let named_run = file_name.strip_suffix(".jsonl").unwrap_or(&file_name).to_string();
    let mut v = Verification {
        status: Status::Incomplete,
        events: 0,
        last_seq: None,
        torn_tail: None,
        run: None,
        head: None,
        last_event: None,
        last_step: None,
        seal_missing_newline: false,
        signatures: Vec::new(),
        outputs: Vec::new(),
        unfinished_outputs: Vec::new(),
    };
    // (step, host, attempt) → output file, for attempts started and not yet finished.
    let mut running: Vec<(AttemptKey, String)> = Vec::new();
    let mut last_line: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut prev = GENESIS.to_string();
    let mut good_len = 0u64;
    let mut sealed_at: Option<usize> = None;
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(read_error)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let expected = v.events;
        if let Some(seal_line) = sealed_at {
            v.status = Status::Tampered {
                seq: claimed_seq(&buf).unwrap_or(expected),
                line: line_no,
                reason: format!("a line follows the seal (`run finished` on line {seal_line})"),
            };
            return Ok(Scan {
                verification: v,
                last: serde_json::from_slice(&last_line).ok(),
                good_len,
                events,
            });
        }
        let complete = buf.last() == Some(&b'\n');
        let content = if complete { &buf[..n - 1] } else { &buf[..] };
        let checked = check_line(content, expected, &prev, (&named_run, &file_name), collect);
        if !complete {
            // Only the last line can lack its newline: the writer's single write was cut
            // short. A whole, chain-valid seal missing only its newline still seals the run.
            let seal_ok = matches!(&checked, Ok(c) if c.event == "run finished"
                && c.value.as_ref().is_some_and(|obj| check_seal(obj, expected, &prev).is_none()));
            if !seal_ok {
                v.torn_tail = Some(TornTail {
                    line: line_no,
                    bytes: n,
                });
                break;
            }
            v.seal_missing_newline = true;
        }
        match checked {
            Err(broken) => {
                v.status = Status::Tampered {
                    seq: broken.seq,
                    line: line_no,
                    reason: broken.reason,
                };
                return Ok(Scan {
                    verification: v,
                    last: serde_json::from_slice(&last_line).ok(),
                    good_len,
                    events,
                });
            }
            Ok(checked) => {
                let event = checked.event.as_str();
                if event == "run finished" {
                    let sealed = checked.value.as_ref().map(|obj| check_seal(obj, expected, &prev));
                    if let Some(Some(reason)) = sealed {
                        v.status = Status::Tampered {
                            seq: expected,
                            line: line_no,
                            reason,
                        };
                        return Ok(Scan {
                            verification: v,
                            last: serde_json::from_slice(&last_line).ok(),
                            good_len,
                            events,
                        });
                    }
                    sealed_at = Some(line_no);
                }
                if v.run.is_none() {
                    v.run = Some(checked.run.clone());
                }
                let attempt_key = (checked.step.clone(), checked.host.clone(), checked.attempt);
                // A step's output file, or a shell session's recording (design §17): named
                // before it is written, accounted for by the event that closes it.
                if let Some(file) = checked
                    .output_file
                    .clone()
                    .filter(|_| event == "step started" || event == "shell opened")
                {
                    running.push((attempt_key.clone(), file));
                } else if event == "step finished" {
                    running.retain(|(key, _)| *key != attempt_key);
                }
                if let Some((path, _, _)) = &checked.output {
                    running.retain(|(_, file)| file != path);
                }
                if let (true, Some((path, size, sha256))) = (outputs, checked.output) {
                    v.outputs.push(DeclaredOutput {
                        seq: expected,
                        step: checked.step.clone(),
                        path,
                        size,
                        sha256,
                    });
                }
                if let Some(signature) = checked.signature.clone() {
                    v.signatures.push(SignedEvent {
                        seq: expected,
                        event: checked.event.clone(),
                        hash: checked.hash.clone(),
                        signature,
                    });
                }
                v.events += 1;
                v.last_seq = Some(expected);
                v.last_event = Some(checked.event);
                v.last_step = checked.step;
                v.head = Some(checked.hash.clone());
                prev = checked.hash;
                good_len += n as u64;
                last_line.clear();
                last_line.extend_from_slice(content);
                if let (true, Some(value)) = (collect, checked.value) {
                    events.push(value);
                }
            }
        }
    }
    if sealed_at.is_some() {
        v.status = Status::IntactSealed;
    }
    v.unfinished_outputs = running
        .into_iter()
        .map(|((step, host, attempt), path)| UnfinishedOutput {
            step,
            host,
            attempt,
            path,
        })
        .collect();
    Ok(Scan {
        verification: v,
        last: serde_json::from_slice(&last_line).ok(),
        good_len,
        events,
    })
}

/// The seq a line claims, if it can be read at all.
fn claimed_seq(line: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Value>(line.trim_ascii_end())
        .ok()?
        .get("seq")?
        .as_u64()
}

fn check_line(
    line: &[u8],
    expected: u64,
    prev: &str,
    (run, file_name): (&str, &str),
    keep: bool,
) -> Result<Checked, Broken> {
    let broken = |seq: u64, reason: String| Broken { seq, reason };
    // Fast path: only the members checked. A line whose members have odd types falls back to a
    // whole parse, so its problem is named precisely.
    let parsed;
    let head = match serde_json::from_slice::<Head>(line) {
        Ok(head) => head,
        Err(_) => {
            parsed = serde_json::from_slice::<Value>(line)
                .map_err(|e| broken(expected, format!("the line is not valid JSON ({e})")))?;
            if !parsed.is_object() {
                return Err(broken(expected, "the line is not a JSON object".into()));
            }
            Head::of(&parsed)
        }
    };
    let claimed = head.seq;
    let seq = claimed.unwrap_or(expected);
    if head.v != Some(FORMAT_VERSION) {
        return Err(broken(seq, format!("`v` is not {FORMAT_VERSION}")));
    }
    match claimed {
        None => return Err(broken(seq, "the event has no `seq`".into())),
        Some(found) if found > expected => {
            return Err(broken(
                seq,
                format!("expected seq {expected}, found {found}: lines are missing or out of order"),
            ));
        }
        Some(found) if found < expected => {
            return Err(broken(
                seq,
                format!("expected seq {expected}, found {found}: a line was inserted, repeated or moved"),
            ));
        }
        Some(_) => {}
    }
    let Some(this_run) = head.run.as_deref() else {
        return Err(broken(seq, "the event has no `run`".into()));
    };
    if this_run != run {
        return Err(broken(
            seq,
            format!(
                "the event is of run `{this_run}`, the file `{file_name}` of run `{run}`: every line of a trail names the run its file is named after"
            ),
        ));
    }
    let Some(event) = head.event.as_deref() else {
        return Err(broken(seq, "the event has no `event` name".into()));
    };
    if head.prev.as_deref() != Some(prev) {
        return Err(broken(
            seq,
            if expected == 0 {
                "`prev` of the first event is not 64 zeros".into()
            } else {
                format!(
                    "`prev` is not the hash of the previous event (seq {})",
                    expected - 1
                )
            },
        ));
    }
    let hash = head.hash.as_deref().unwrap_or_default();
    if hash.len() != 64 || !ends_with_member(line, b",\"hash\":\"", hash, b"\"}") {
        return Err(broken(seq, "the line does not end with its `hash` member".into()));
    }
    // The body that was hashed ends with the `prev` member; a signature over the hash may
    // stand between it and the hash member.
    let rest = &line[..line.len() - HASH_MEMBER_LEN];
    let body_end = (1..=rest.len())
        .rev()
        .find(|&end| ends_with_member(&rest[..end], b",\"prev\":\"", prev, b"\""))
        .ok_or_else(|| broken(seq, "the `prev` member is not where the chain puts it".into()))?;
    let between = &rest[body_end..];
    let signature = if between.is_empty() {
        None
    } else {
        let json = between
            .strip_prefix(b",\"signature\":")
            .ok_or_else(|| broken(seq, "unexpected members between `prev` and `hash`".into()))?;
        Some(
            serde_json::from_slice::<Signature>(json)
                .map_err(|e| broken(seq, format!("the `signature` member does not read ({e})")))?,
        )
    };
    let recomputed = event_hash_parts(prev, &[&rest[..body_end], b"}"]);
    if recomputed != hash {
        return Err(broken(seq, "hash does not match the line's contents".into()));
    }
    let value = if keep || event == "run finished" {
        serde_json::from_slice(line).ok()
    } else {
        None
    };
    let output = match (&head.output, head.saved_to.as_deref()) {
        (Some(o), _) => Some((o.path.clone(), o.size, o.sha256.clone())),
        (None, Some(saved)) => Some((
            saved.to_string(),
            head.bytes.unwrap_or(0),
            head.sha256.as_deref().unwrap_or_default().to_string(),
        )),
        (None, None) => None,
    };
    Ok(Checked {
        value,
        hash: recomputed,
        event: event.to_string(),
        step: head.step.as_deref().map(str::to_string),
        run: this_run.to_string(),
        signature,
        host: head.host.as_deref().map(str::to_string),
        attempt: head.attempt,
        output_file: head.output_file.as_deref().map(str::to_string),
        output,
    })
}

/// Whether `bytes` ends with `open`, `value`, `close`: a member as the writer puts it, checked
/// in place (this runs for every line of a trail).
fn ends_with_member(bytes: &[u8], open: &[u8], value: &str, close: &[u8]) -> bool {
    let len = open.len() + value.len() + close.len();
    bytes.len() >= len && {
        let member = &bytes[bytes.len() - len..];
        member.starts_with(open)
            && &member[open.len()..len - close.len()] == value.as_bytes()
            && member.ends_with(close)
    }
}

/// A `run finished` event seals the file when it counts every event and names the last hash.
fn check_seal(obj: &Value, seq: u64, prev: &str) -> Option<String> {
    let seal = match Line::from_value(obj).map(|line| line.record) {
        Some(Record::RunFinished(seal)) => seal,
        _ => RunFinished::default(),
    };
    if seal.events != seq + 1 {
        return Some(format!(
            "the seal counts {} events, the file has {}",
            seal.events,
            seq + 1
        ));
    }
    if seal.head != prev {
        return Some("the seal's `head` is not the hash of the previous event".into());
    }
    None
}
