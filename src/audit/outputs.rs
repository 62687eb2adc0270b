//! The files beside a trail are part of the record (design §12): every output an event
//! accounts for must have the size and SHA-256 the event says, and every file in the run's
//! directory must be accounted for by some event. Files are hashed on several threads, so
//! checking a gigabyte of output costs about what `sha256sum` does.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::verify::{DeclaredOutput, Status, Verification};

/// Files written into a run's directory after its seal, so no chained event can name them.
const AFTER_THE_SEAL: [&str; 1] = ["notifications.jsonl"];

/// One file that does not match the record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct OutputProblem {
    /// The event that accounts for the file, when one does.
    pub seq: Option<u64>,
    pub step: Option<String>,
    /// Relative to the audit dir.
    pub file: String,
    pub problem: String,
}

/// What checking the files found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct OutputCheck {
    /// Files compared with their events.
    pub checked: usize,
    pub bytes: u64,
    pub problems: Vec<OutputProblem>,
    /// Outputs of attempts cut off by a crash (an incomplete trail): present, not yet recorded.
    pub cut_off: Vec<String>,
}

/// Checks every file the verified events of `audit_file` account for, and looks for files
/// they do not account for.
pub(crate) fn check_outputs(audit_file: &Path, v: &Verification) -> OutputCheck {
    let dir = audit_file.parent().unwrap_or(Path::new("."));
    let mut check = OutputCheck::default();
    // The last record of a file counts (a torn line saved twice cannot happen; be lenient).
    let mut declared: Vec<&DeclaredOutput> = Vec::new();
    let mut seen = HashSet::new();
    for o in v.outputs.iter().rev() {
        if seen.insert(o.path.as_str()) {
            declared.push(o);
        }
    }
    declared.reverse();
    let problems = Mutex::new(Vec::new());
    let bytes = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(declared.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(o) = declared.get(i) else { break };
                    let problem = match plain_output(v.run.as_deref(), &o.path)
                        .map(|_| digest(&dir.join(&o.path), &mut buf))
                    {
                        None => Some(format!(
                            "is not a plain file name inside `{}/`: an output lives in its run's own folder, so it was not read",
                            v.run.as_deref().unwrap_or("RUN")
                        )),
                        Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Some("is missing".to_string()),
                        Some(Err(e)) => Some(format!("cannot be read: {e}")),
                        Some(Ok((size, _))) if size != o.size => {
                            Some(format!("has {size} bytes, the event says {}", o.size))
                        }
                        Some(Ok((_, sha))) if sha != o.sha256 => {
                            Some(format!("has SHA-256 {sha}, the event says {}", o.sha256))
                        }
                        Some(Ok((size, _))) => {
                            bytes.fetch_add(size as usize, Ordering::Relaxed);
                            None
                        }
                    };
                    if let Some(problem) = problem {
                        problems
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(OutputProblem {
                                seq: Some(o.seq),
                                step: o.step.clone(),
                                file: o.path.clone(),
                                problem,
                            });
                    }
                }
            });
        }
    });
    check.checked = declared.len();
    check.bytes = bytes.into_inner() as u64;
    check.problems = problems.into_inner().unwrap_or_else(|p| p.into_inner());
    check.problems.sort_by_key(|p| p.seq);

    let sealed = v.status == Status::IntactSealed;
    for unfinished in &v.unfinished_outputs {
        let file = &unfinished.path;
        if plain_output(v.run.as_deref(), file).is_none() {
            check.problems.push(OutputProblem {
                seq: None,
                step: unfinished.step.clone(),
                file: file.clone(),
                problem: format!(
                    "is not a plain file name inside `{}/`: an output lives in its run's own folder, so it was not read",
                    v.run.as_deref().unwrap_or("RUN")
                ),
            });
            continue;
        }
        if seen.contains(file.as_str()) || !dir.join(file).exists() {
            continue;
        }
        if sealed {
            check.problems.push(OutputProblem {
                seq: None,
                step: unfinished.step.clone(),
                file: file.clone(),
                problem: "was cut off by a crash and never recorded by a resume".into(),
            });
        } else {
            check.cut_off.push(file.clone());
        }
    }
    // Every file of the run's directory must be one of those.
    if let Some(run) = &v.run {
        let known: HashSet<&str> = seen
            .iter()
            .copied()
            .chain(v.unfinished_outputs.iter().map(|u| u.path.as_str()))
            .collect();
        let mut names: Vec<String> = std::fs::read_dir(dir.join(run))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let relative = format!("{run}/{name}");
            let after_the_seal = sealed && AFTER_THE_SEAL.contains(&name.as_str());
            if !known.contains(relative.as_str()) && !after_the_seal {
                check.problems.push(OutputProblem {
                    seq: None,
                    step: None,
                    file: relative,
                    problem: "is named by no event of the trail".into(),
                });
            }
        }
    }
    check
}

/// The name of an output inside the run's folder, when `path` (as an event records it,
/// relative to the audit dir) is `<run>/<name>` with a plain `name`: never absolute, never
/// `..`, never deeper. Anything else names a file outside the record, which is never read.
pub(crate) fn plain_output<'a>(run: Option<&str>, path: &'a str) -> Option<&'a str> {
    let name = path.strip_prefix(run?)?.strip_prefix('/')?;
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0']);
    plain.then_some(name)
}

/// Size and SHA-256 of a regular file, never following a symlink, and never waiting on a
/// FIFO or a device (opened non-blocking, refused unless regular).
pub(crate) fn digest(path: &Path, buf: &mut [u8]) -> std::io::Result<(u64, String)> {
    let mut file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let n = file.read(buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}
