//! The two-person rule (design §15): before a step marked `approve:` runs, the run writes a
//! request into the approvals spool and waits until enough people other than the operator
//! have signed it (`runbook approve`), each signature checked against an `allowed_signers`
//! file the operator cannot write. The request holds no secret: names of secrets, never values.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audit::sign::{Against, Signature, check};
use crate::error::Error;

mod remote;
mod waiting;

pub(crate) use remote::Remote;
pub(crate) use waiting::Waiting;

/// The namespace of approval signatures: an audit signature can never pass for one.
pub(crate) const NAMESPACE: &str = "runbook-approve";

/// Where requests go and whose signatures count, resolved once before the run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Config {
    /// The spool: `approvals_dir:` of the inventory, else `<audit-dir>/approvals/`.
    pub spool: PathBuf,
    /// With an audit host, the spool is its `PATH/approvals/` instead (design §19).
    pub remote: Option<Remote>,
    /// `approvers_file:` of the inventory (an `allowed_signers` file).
    pub approvers: Option<PathBuf>,
    /// The operator's own keys (`SHA256:...`): the run's signing key, the ssh-agent's keys,
    /// `--identity`. A signature by one of them is refused: nobody approves their own step.
    pub own_keys: Vec<String>,
    /// A step of the run needs approvals: the operator's keys are then gathered.
    pub needed: bool,
    /// The approvers file's bytes, read once by [`Config::check`]: every signature is checked
    /// against them, never against the file as it is later.
    pub approvers_keys: Vec<u8>,
    /// A test case's walk (`runbook test`): every approval is taken as given and nobody is
    /// asked to sign; what the case judges is the graph, not the two-person rule.
    pub assumed: bool,
}

/// What a step needs before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    pub quorum: u32,
    pub timeout: Duration,
}

/// The default wait when a step or host does not say: long enough to find a colleague.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What is approved, exactly: written once, signed byte for byte.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Request {
    pub kind: String,
    pub run: String,
    pub runbook: String,
    pub step: String,
    pub title: String,
    pub operator: String,
    pub account: String,
    pub machine: String,
    pub requested_at: String,
    pub quorum: u32,
    pub timeout_ms: u64,
    /// Each target host, with the host key it was connected with.
    pub hosts: Vec<RequestHost>,
    /// The exact command, as it will run.
    pub script: String,
    /// Its non-secret environment.
    pub env: indexmap::IndexMap<String, String>,
    /// The names of the secrets it receives (their values are never here).
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RequestHost {
    pub host: String,
    pub host_key: Option<String>,
}

pub(crate) const REQUEST_KIND: &str = "runbook approval request";

/// One approver's answer, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub principal: String,
    pub key: String,
    pub approve: bool,
    pub reason: Option<String>,
    pub file: PathBuf,
}

/// A signature file that does not count, and why (recorded, so a forged try is seen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub file: PathBuf,
    pub why: String,
}

impl Config {
    /// From the inventory (`approvals_dir:`, `approvers_file:`, relative to it) and the audit
    /// dir. The operator's own keys are added at launch (`own_keys`), when a step needs them.
    pub(crate) fn resolve(inventory: &crate::inventory::Inventory, audit_dir: &Path) -> Config {
        let beside = |p: &str| -> PathBuf {
            let p = PathBuf::from(p);
            match (&inventory.path, p.is_relative()) {
                (Some(inv), true) => inv.parent().unwrap_or(Path::new(".")).join(p),
                _ => p,
            }
        };
        Config {
            spool: inventory
                .approvals_dir
                .as_ref()
                .map(|d| beside(&d.value))
                .unwrap_or_else(|| audit_dir.join("approvals")),
            remote: None,
            approvers: inventory.approvers_file.as_ref().map(|f| beside(&f.value)),
            own_keys: Vec::new(),
            needed: false,
            approvers_keys: Vec::new(),
            assumed: false,
        }
    }

    /// Checks the configuration for a run that needs approvals, then reads the approvers once:
    /// the file and every directory above it (as named and as resolved) must be neither owned
    /// nor writable by the operator (mode, group or ACL: what the kernel answers), else they
    /// could list themselves. A sticky directory (`/tmp`) counts only for its own entries.
    pub(crate) fn check(&mut self) -> Result<(), Error> {
        let Some(file) = &self.approvers else {
            return Err(Error::usage(
                "a step needs approval (`approve:`), but the inventory names no `approvers_file:` (an allowed_signers file of the people who may approve): nothing was run",
            ));
        };
        let named = std::path::absolute(file).unwrap_or_else(|_| file.clone());
        let resolved = match std::fs::canonicalize(&named) {
            Ok(p) if p.is_file() => p,
            _ => {
                return Err(Error::usage(format!(
                    "approvers_file {} does not exist: nothing was run",
                    file.display()
                )));
            }
        };
        let me = rustix::process::geteuid();
        for chain in [&named, &resolved] {
            // From the file up to `/`, each with the entry below it (for a sticky directory).
            let mut below: Option<&Path> = None;
            for path in chain.ancestors() {
                if let Some(why) = replaceable(path, below, me) {
                    return Err(Error::usage(format!(
                        "approvers_file {}: {} {why}: you, the operator, could list yourself and approve your own steps. Keep it and every directory above it owned and writable by someone else only (e.g. root, mode 0644 in 0755 directories): nothing was run",
                        file.display(),
                        path.display()
                    )));
                }
                below = Some(path);
            }
        }
        // Read once, from the file that was checked: a file changed later changes nothing.
        use std::io::Read;
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let checked = std::fs::metadata(&resolved).ok();
        let mut keys = Vec::new();
        let read = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&resolved)
            .and_then(|mut f| {
                let m = f.metadata()?;
                let same = checked.is_some_and(|c| c.dev() == m.dev() && c.ino() == m.ino());
                if !m.is_file() || !same {
                    return Err(std::io::Error::other("it changed while it was checked"));
                }
                f.read_to_end(&mut keys)
            });
        if let Err(e) = read {
            return Err(Error::usage(format!(
                "cannot read approvers_file {}: {e}: nothing was run",
                file.display()
            )));
        }
        self.approvers_keys = keys;
        Ok(())
    }

    /// Writes `request` into the spool as `<run>-<step>-<attempt>.json`, mode 0644, never over
    /// an existing file: when that name is taken (the same attempt asked again after a stop, a
    /// retry or a resume), as `<run>-<step>-<attempt>.<n>.json`. Returns its path, its bytes,
    /// and the file held locked: the run waits for as long as it keeps it (`waits`).
    pub(crate) fn write(
        &self,
        request: &Request,
        attempt: u32,
    ) -> Result<(PathBuf, Vec<u8>, std::fs::File), Error> {
        std::fs::create_dir_all(&self.spool).map_err(|e| {
            Error::runtime(format!(
                "cannot create the approvals spool {}: {e}",
                self.spool.display()
            ))
        })?;
        let (stem, bytes) = stem_and_bytes(request, attempt);
        // Written whole and locked under a random hidden name, then linked to its own: a
        // request is never seen half written, or before the lock says the run waits for it
        // (an approver who looked in between was told nobody waits).
        let cannot = |what: &Path, e: std::io::Error| {
            Error::runtime(format!(
                "cannot write the request {}: {e} (the approvals spool {} must be writable by you)",
                what.display(),
                self.spool.display()
            ))
        };
        let partial = tempfile::Builder::new()
            .prefix(&format!(".{stem}."))
            .suffix(".partial")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(&self.spool)
            .map_err(|e| cannot(&self.spool.join(format!("{stem}.json")), e))?;
        let (mut file, partial) = partial.into_parts();
        // Held while the run waits: a crash, a timeout or a stop lets go by itself.
        let _ = rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive);
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| cannot(&partial, e))?;
        // The umask may have narrowed it: approvers of other accounts must read it.
        let _ = std::fs::set_permissions(&partial, std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let mut n = 1;
        let path = loop {
            let path = match n {
                1 => self.spool.join(format!("{stem}.json")),
                _ => self.spool.join(format!("{stem}.{n}.json")),
            };
            match std::fs::hard_link(&partial, &path) {
                Ok(()) => break path,
                // A request written before, or a name planted by another user of the spool.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
                Err(e) => return Err(cannot(&path, e)),
            }
        };
        drop(partial);
        Ok((path, bytes, file))
    }

    /// Every answer to the request at `path` so far: the signatures beside it, each checked
    /// against the approvers file and refused if by the operator's own key; those in `seen`
    /// were checked already.
    pub(crate) fn answers(
        &self,
        path: &Path,
        request: &[u8],
        seen: &[PathBuf],
    ) -> (Vec<Answer>, Vec<Refused>) {
        let (mut answers, mut refused) = (Vec::new(), Vec::new());
        let Some(approvers) = &self.approvers else {
            return (answers, refused);
        };
        // The operator's login and declared name, as the request says them.
        let asked: Option<Request> = serde_json::from_slice(request).ok();
        let own_names: Vec<&str> = asked
            .iter()
            .flat_map(|r| [r.operator.as_str(), r.account.as_str()])
            .filter(|n| !n.is_empty())
            .collect();
        for (file, deny) in signature_files(path)
            .into_iter()
            .filter(|(f, _)| !seen.contains(f))
        {
            let armored = match read_answer(&file) {
                Ok(Some(text)) => text,
                Ok(None) => continue,
                Err(why) => {
                    refused.push(Refused { file, why });
                    continue;
                }
            };
            let reason = match deny.then(|| read_answer(&deny_file(&file))) {
                None => None,
                Some(Ok(reason)) => Some(reason.unwrap_or_default()),
                Some(Err(why)) => {
                    let why = format!("its reason file {} {why}", deny_file(&file).display());
                    refused.push(Refused { file, why });
                    continue;
                }
            };
            let message = signed_message(request, reason.as_deref());
            let mut sig = Signature {
                format: "sshsig".into(),
                namespace: NAMESPACE.into(),
                key: String::new(),
                armored: armored.trim().to_string(),
            };
            let key = match check(&sig, &message, Against::ItsOwnKey) {
                Ok(key) => key,
                Err(why) => {
                    refused.push(Refused { file, why });
                    continue;
                }
            };
            if self.own_keys.contains(&key) {
                refused.push(Refused {
                    file,
                    why: format!("signed with the operator's own key {key}: nobody approves their own step"),
                });
                continue;
            }
            // Named in what is refused next ("key SHA256:... is not in FILE").
            sig.key = key.clone();
            let against = Against::AllowedSignersRead {
                file: approvers,
                text: &self.approvers_keys,
            };
            match check(&sig, &message, against) {
                Ok(principal) if own_names.contains(&principal.as_str()) => refused.push(Refused {
                    file,
                    why: format!(
                        "signed as `{principal}`, the operator's own login or declared name (key {key}): nobody approves their own step"
                    ),
                }),
                Ok(principal) => answers.push(Answer {
                    principal,
                    key,
                    approve: !deny,
                    reason: reason.map(|r| r.trim().to_string()),
                    file,
                }),
                Err(why) => refused.push(Refused { file, why }),
            }
        }
        (answers, refused)
    }
}

/// A request's name without its `.json` (`<run>-<step>-<attempt>`), and its bytes.
fn stem_and_bytes(request: &Request, attempt: u32) -> (String, Vec<u8>) {
    let stem = format!("{}-{}-{attempt}", request.run, request.step.replace('/', "__"));
    let mut bytes = serde_json::to_vec_pretty(request).expect("a request serializes");
    bytes.push(b'\n');
    (stem, bytes)
}

/// Whether a run still waits for the request at `path`: it holds the request locked for as
/// long as it waits (`Config::write`), and no longer once it timed out, was answered, was
/// stopped or died.
pub(crate) fn waits(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return false;
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared).is_err()
}

/// A file of the spool as text: `Err` when it can never be an answer (a FIFO, a device, a
/// link: anyone may plant one in a shared spool), `Ok(None)` when it cannot be read now.
/// Opened non-blocking and without following links, so nothing planted can hold the run.
fn read_answer(path: &Path) -> Result<Option<String>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err("is a symbolic link, not a regular file: an answer is a plain file".into());
        }
        Err(_) => return Ok(None),
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err("is not a regular file (a FIFO or a device): an answer is a plain file".into());
    }
    // An armored signature or a reason is small; a planted giant is cut, and then fails.
    let mut text = String::new();
    match file.take(1 << 16).read_to_string(&mut text) {
        Ok(_) => Ok(Some(text)),
        Err(e) => Err(format!("cannot be read as text: {e}")),
    }
}

/// Why `path` lets the operator (`me`) replace or rewrite what lies below it, if it does:
/// owned by them (they can change its mode), or writable by them, unless it is a sticky
/// directory whose entry `below` is someone else's.
fn replaceable(path: &Path, below: Option<&Path>, me: rustix::fs::Uid) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot be looked at ({e})")),
    };
    // A link itself cannot be changed, only replaced in its directory (checked in turn).
    if meta.file_type().is_symlink() {
        return None;
    }
    let writable = rustix::fs::access(path, rustix::fs::Access::WRITE_OK).is_ok();
    let sticky = meta.is_dir() && meta.mode() & 0o1000 != 0;
    let below_mine = below
        .and_then(|b| std::fs::symlink_metadata(b).ok())
        .is_some_and(|b| b.uid() == me.as_raw());
    let mode = meta.mode() & 0o7777;
    if meta.uid() == me.as_raw() {
        let and = if writable { ", and writable by you" } else { "" };
        Some(format!(
            "is owned by you{and} (mode {mode:o}: its owner can change that)"
        ))
    } else if writable && (!sticky || below_mine) {
        Some(format!(
            "is writable by you (mode {mode:o}, owner uid {}, group gid {}, or an ACL)",
            meta.uid(),
            meta.gid()
        ))
    } else {
        None
    }
}

/// The fingerprints of the keys the operator's ssh-agent holds (`ssh-add -l`).
pub(crate) fn agent_keys() -> Vec<String> {
    crate::audit::agent::fingerprints()
}

/// What an approver signs: the request's bytes, and for a denial the reason after them.
pub(crate) fn signed_message(request: &[u8], deny_reason: Option<&str>) -> Vec<u8> {
    let mut message = request.to_vec();
    if let Some(reason) = deny_reason {
        message.extend_from_slice(b"\n--\ndeny: ");
        message.extend_from_slice(reason.trim().as_bytes());
        message.push(b'\n');
    }
    message
}

/// `REQUEST.sig`, `REQUEST.2.sig`, ... (approvals) and `REQUEST.deny.sig`, `REQUEST.2.deny.sig`
/// (denials), in order; `true` for a denial.
pub(crate) fn signature_files(request: &Path) -> Vec<(PathBuf, bool)> {
    let name = request
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let dir = request.parent().unwrap_or(Path::new("."));
    let mut files: Vec<(PathBuf, bool)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let file = entry.file_name().to_str()?.to_string();
            let rest = file.strip_prefix(&name)?.strip_suffix(".sig")?;
            let deny = rest.ends_with(".deny");
            let number = rest.trim_end_matches(".deny");
            let ok = number.is_empty()
                || number
                    .strip_prefix('.')
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            ok.then(|| (entry.path(), deny))
        })
        .collect();
    files.sort();
    files
}

/// The reason file of a denial's signature: `REQUEST.deny.sig` → `REQUEST.deny`.
pub(crate) fn deny_file(sig: &Path) -> PathBuf {
    sig.with_extension("")
}

/// The first free name for a new answer: `REQUEST.sig`, else `REQUEST.2.sig`, ...
pub(crate) fn next_signature_file(request: &Path, deny: bool) -> PathBuf {
    let base = request.display().to_string();
    let suffix = if deny { ".deny" } else { "" };
    let mut n = 1;
    loop {
        let candidate = if n == 1 {
            PathBuf::from(format!("{base}{suffix}.sig"))
        } else {
            PathBuf::from(format!("{base}.{n}{suffix}.sig"))
        };
        // Anything there, even a dangling link, takes the name.
        let there = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        let taken = there(&candidate) || (deny && there(&deny_file(&candidate)));
        if !taken {
            return candidate;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests;
