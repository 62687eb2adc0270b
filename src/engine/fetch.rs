//! `runbook resume RUN --audit-host URL` on another machine (design §19): the run's trail and
//! output files come from the audit host over one SSH connection (the options of the targets),
//! into a private directory inside the audit dir; they are checked there as `audit verify`
//! checks them, and only then renamed into place. A local trail is never overwritten unless it
//! is a byte prefix of the audit host's (the same run, further on there); one that differs is a
//! divergence, refused naming both heads.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::audit::Status;
use crate::error::{Error, Result, exit};
use crate::transport::audit_host::{receive_file, within};
use crate::transport::{AuditHost, Ssh, SshOptions, Started};

const SCRIPT: &str = include_str!("fetch/remote.sh");

/// How the fetched trail must verify, as `audit verify` takes it.
pub(crate) struct Expect<'a> {
    /// `--signers`: an `allowed_signers` file.
    pub signers: Option<&'a Path>,
    /// `--expect-head`: lower-case hex the head starts with.
    pub head: Option<&'a str>,
}

/// The trail to resume: the audit host's copy of `run`, fetched and verified when the audit
/// dir has none or a shorter one; the local one when it holds as much or more (the mirror then
/// sends the rest). Refusals are printed here and returned as `Error::Exit(1)`.
pub(crate) fn trail(
    host: &AuditHost,
    ssh: &SshOptions,
    audit_dir: &Path,
    run: &str,
    expect: &Expect,
) -> Result<PathBuf> {
    // A path names its own audit dir and run id; anything else is asked of the audit host.
    let given = (run.contains('/') || run.ends_with(".jsonl")).then(|| PathBuf::from(run));
    let (dir, want) = match &given {
        Some(path) => (
            crate::audit::trail_dir(path).to_path_buf(),
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        None => (audit_dir.to_path_buf(), run.to_string()),
    };
    let local = || match &given {
        Some(path) => crate::audit::resolve_run(&dir, &path.display().to_string()),
        None => crate::audit::resolve_run(&dir, run),
    };
    crate::audit::prepare_audit_dir(&dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the async runtime: {e}")))?;
    let fetched = runtime.block_on(fetch(host, ssh, &dir, &want));
    let fetched = match fetched {
        Ok(Found::One(fetched)) => fetched,
        Ok(Found::Many(names)) => {
            return Err(Error::usage(format!(
                "`{run}` matches {} runs on the audit host {host}: {}; give more of the run id",
                names.len(),
                names.join(", ")
            )));
        }
        Ok(Found::None) => {
            // Never mirrored there (the audit host was away all along): the local trail, if any.
            return local().map_err(|_| {
                Error::usage(format!(
                    "no run `{run}` on the audit host {host}, nor in the audit dir `{}`",
                    dir.display()
                ))
            });
        }
        Err(why) => {
            if let Ok(path) = local() {
                crate::stderr::ewriteln!(
                    "runbook: warning: the audit host {host} cannot be read ({why}): resuming from the local trail {}; the mirror sends it there once it can",
                    path.display()
                );
                return Ok(path);
            }
            crate::stderr::ewriteln!(
                "runbook: error: the run `{run}` cannot be fetched from the audit host {host}: {why}"
            );
            return Err(Error::Exit(exit::RUNTIME));
        }
    };
    let result = settle(&fetched, &dir, given.as_deref(), expect);
    let _ = std::fs::remove_dir_all(&fetched.tmp);
    result
}

/// What the audit host has of the run asked for.
enum Found {
    None,
    /// A prefix that names several runs there.
    Many(Vec<String>),
    One(Fetched),
}

/// What was fetched into `tmp` (`tmp/<run>.jsonl`, `tmp/<run>/`).
struct Fetched {
    tmp: PathBuf,
    run: String,
    files: Vec<String>,
}

impl Fetched {
    fn trail(&self) -> PathBuf {
        self.tmp.join(format!("{}.jsonl", self.run))
    }
}

/// Compares the fetched trail with the local one, verifies it, and moves it into place.
fn settle(fetched: &Fetched, dir: &Path, given: Option<&Path>, expect: &Expect) -> Result<PathBuf> {
    let target = given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(format!("{}.jsonl", fetched.run)));
    let remote = std::fs::read(fetched.trail())?;
    if target.is_symlink() {
        return Err(crate::audit::trail_is_a_link(&target));
    }
    let local = match std::fs::read(&target) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::runtime(format!("cannot read `{}`: {e}", target.display()))),
    };
    if let Some(local) = &local {
        if local.starts_with(&remote) {
            // As much or more here: the mirror sends what the audit host lacks.
            return Ok(target);
        }
        if !remote.starts_with(local) {
            let head = |p: &Path| {
                crate::audit::verify_chain(p)
                    .ok()
                    .and_then(|v| v.head)
                    .unwrap_or_else(|| "none".into())
            };
            crate::stderr::ewriteln!(
                "runbook: error: the run `{}` has diverged: the trail here ({}, head {}) is not the start of the audit host's copy (head {}), nor the other way round.\n  One of them was changed or continued apart from the other: keep both as evidence; nothing was resumed.",
                fetched.run,
                target.display(),
                head(&target),
                head(&fetched.trail()),
            );
            return Err(Error::Exit(exit::RUNTIME));
        }
    }
    verify(fetched, expect)?;
    install(fetched, dir, &target)?;
    Ok(target)
}

/// Checks the fetched copy as `audit verify` does; any problem is printed and refused.
fn verify(fetched: &Fetched, expect: &Expect) -> Result<()> {
    let check = crate::audit::check(&fetched.trail(), expect.signers)?;
    let mut problems = check.problems;
    if let Status::Tampered { seq, line, reason } = &check.verification.status {
        problems.insert(
            0,
            format!("the trail was tampered with at seq {seq} (line {line}): {reason}"),
        );
    }
    let head = check.verification.head.as_deref().unwrap_or_default();
    if let Some(want) = expect.head
        && !head.starts_with(want)
    {
        problems.push(format!("the head is {head}, not the expected {want}…"));
    }
    if problems.is_empty() {
        return Ok(());
    }
    crate::stderr::ewriteln!(
        "runbook: error: the audit host's copy of the run `{}` does not hold, as `runbook audit verify` says:\n{}\n  A run whose record cannot be trusted is not resumed; nothing was kept here.",
        fetched.run,
        problems
            .iter()
            .map(|p| format!("  - {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Err(Error::Exit(exit::RUNTIME))
}

/// Moves the verified copy into place: the output files first, the trail last (one rename).
fn install(fetched: &Fetched, dir: &Path, target: &Path) -> Result<()> {
    let outputs = dir.join(&fetched.run);
    if !fetched.files.is_empty() {
        let open = crate::audit::AuditDir::open(dir, false)?;
        open.outputs(&fetched.run, false)?;
    }
    for name in &fetched.files {
        std::fs::rename(fetched.tmp.join(&fetched.run).join(name), outputs.join(name))?;
    }
    std::fs::rename(fetched.trail(), target)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Connects, asks for `want`, and writes what comes into a new private directory of `dir`.
/// `Err`: why the audit host could not be read.
async fn fetch(
    host: &AuditHost,
    opts: &SshOptions,
    dir: &Path,
    want: &str,
) -> std::result::Result<Found, String> {
    let ssh = Ssh::connect(&host.dest(), opts)
        .await
        .map_err(|e| e.to_string())?;
    let result = receive(&ssh, host, dir, want).await;
    ssh.close().await;
    result
}

async fn receive(ssh: &Ssh, host: &AuditHost, dir: &Path, want: &str) -> std::result::Result<Found, String> {
    // Its stdin is closed at once: the script reads nothing.
    let Started {
        child,
        stdout,
        mut stderr,
        ..
    } = (host.start(ssh, "rb-fetch", SCRIPT, &[want]).await)
        .map_err(|e| format!("cannot start a shell there: {e}"))?;
    let mut reader = BufReader::new(stdout);
    let mut tmp = None;
    let read = read_all(&mut reader, dir, &mut tmp).await;
    let mut said = String::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        stderr.read_to_string(&mut said),
    )
    .await;
    // A stalled shell there is left to the master's close.
    let status = match read {
        Ok(_) => within(async { child.wait().await.map_err(std::io::Error::other) }).await,
        Err(_) => Err(String::new()),
    };
    let failed = match (&read, status) {
        (Err(why), _) => Some(why.clone()),
        (Ok(_), Ok(s)) if s.success() => None,
        (Ok(_), Ok(s)) => Some(format!("its shell ended with {s}")),
        (Ok(_), Err(e)) => Some(e),
    };
    if let Some(why) = failed {
        if let Some(tmp) = tmp {
            let _ = std::fs::remove_dir_all(tmp);
        }
        let said = said.trim();
        return Err(if said.is_empty() {
            why
        } else {
            format!("{why}: {said}")
        });
    }
    read
}

async fn read_all<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    dir: &Path,
    tmp: &mut Option<PathBuf>,
) -> std::result::Result<Found, String> {
    let first = header(reader).await?;
    if let Some(names) = first.strip_prefix("matches") {
        let names: Vec<String> = names.split_whitespace().map(str::to_string).collect();
        return Ok(if names.is_empty() {
            Found::None
        } else {
            Found::Many(names)
        });
    }
    let (size, run) = sized(&first, "trail")?;
    if !plain(&run) || crate::audit::file_safe(&run) != run {
        return Err(format!("it names a run `{run}` that is not a plain file name"));
    }
    let here = dir.join(format!(".fetch-{run}-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&here)
        .map_err(|e| format!("cannot create `{}`: {e}", here.display()))?;
    *tmp = Some(here.clone());
    receive_file(reader, size, &here.join(format!("{run}.jsonl")), true).await?;
    let mut files = Vec::new();
    loop {
        let line = header(reader).await?;
        if line == "end" {
            break;
        }
        let (size, name) = sized(&line, "file")?;
        if !plain(&name) {
            return Err(format!(
                "it sends an output file `{name}` that is not a plain file name"
            ));
        }
        let outputs = here.join(&run);
        if files.is_empty() {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&outputs)
                .map_err(|e| format!("cannot create `{}`: {e}", outputs.display()))?;
        }
        receive_file(reader, size, &outputs.join(&name), true).await?;
        files.push(name);
    }
    Ok(Found::One(Fetched {
        tmp: here,
        run,
        files,
    }))
}

/// A name that stays in its directory.
fn plain(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains('/') && !name.contains('\0')
}

async fn header<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> std::result::Result<String, String> {
    let mut line = String::new();
    let n = within(reader.read_line(&mut line)).await?;
    if n == 0 {
        return Err("it ended before the whole run was sent".into());
    }
    Ok(line.trim_end_matches('\n').to_string())
}

/// `KIND SIZE NAME`.
fn sized(line: &str, kind: &str) -> std::result::Result<(u64, String), String> {
    let mut parts = line.splitn(3, ' ');
    match (
        parts.next(),
        parts.next().and_then(|s| s.parse().ok()),
        parts.next(),
    ) {
        (Some(k), Some(size), Some(name)) if k == kind => Ok((size, name.to_string())),
        _ => Err(format!("unexpected answer `{line}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_strictly() {
        assert_eq!(sized("trail 12 r1", "trail").unwrap(), (12, "r1".to_string()));
        assert_eq!(sized("file 0 a b", "file").unwrap(), (0, "a b".to_string()));
        assert!(sized("file x a", "file").is_err());
        assert!(sized("trail 1 r", "file").is_err());
        assert!(!plain("../x") && !plain(".hidden") && !plain("") && plain("s1-1.out"));
    }
}
