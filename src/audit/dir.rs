//! Where audit files live (design §5, §10, §14 "Files") and how a run is named: run ids that
//! sort by time, and `RUN` arguments that are either a run id or the path of its audit file.
//! A trail is only as trustworthy as the directory that holds it, so the audit dir must be
//! ours, a real directory and writable by nobody else; it is opened once and every file of a
//! run is made relative to that descriptor (`openat`), never through a link someone planted.

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::Error;

/// Directories the tool makes: the audit dir, its missing parents, a run's output directory.
const DIR_MODE: u32 = 0o700;
/// Every file the tool makes there.
const FILE_MODE: u32 = 0o600;

/// The audit directory: `--audit-dir`, else `$RUNBOOK_AUDIT_DIR`, else
/// `$XDG_STATE_HOME/runbook/runs`, else `~/.local/state/runbook/runs`.
pub(crate) fn audit_dir(global_flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = global_flag {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("RUNBOOK_AUDIT_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    default_audit_dir()
}

/// The audit directory nobody chose: `$XDG_STATE_HOME/runbook/runs`, else
/// `~/.local/state/runbook/runs` (what a command pasted without `--audit-dir` reads).
pub(crate) fn default_audit_dir() -> PathBuf {
    // The XDG spec says a relative $XDG_STATE_HOME is invalid and must be ignored.
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from)
        && state.is_absolute()
    {
        return state.join("runbook").join("runs");
    }
    let home = std::env::home_dir().unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/runbook/runs")
}

/// Makes `dir` ready to receive a run before anything is connected or run (pre-flight): creates
/// it 0700 (missing parents too) or checks the one there (see `AuditDir::open`), and that it
/// can be written to. Problems are usage errors (exit 2): nothing has run yet.
pub(crate) fn prepare_audit_dir(dir: &Path) -> Result<(), Error> {
    let open = AuditDir::open(dir, true)?;
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK).map_err(|e| {
        Error::usage(format!(
            "cannot write to the audit dir `{}`: {}; give a writable directory with --audit-dir or RUNBOOK_AUDIT_DIR",
            open.path.display(),
            std::io::Error::from(e)
        ))
    })
}

/// Makes an existing trail ready to be continued (`resume`), before anything is connected:
/// its directory as for a new run, and the trail itself a file, not a link to one. Usage errors.
pub(crate) fn prepare_trail(path: &Path) -> Result<(), Error> {
    prepare_audit_dir(trail_dir(path))?;
    if path.is_symlink() {
        return Err(trail_is_a_link(path));
    }
    Ok(())
}

/// The directory of the trail `path`.
pub(crate) fn trail_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A link where a trail should be: never followed.
pub(crate) fn trail_is_a_link(path: &Path) -> Error {
    Error::usage(format!(
        "the audit file `{}` is a symbolic link: refusing to append through it; give the path of the file itself",
        path.display()
    ))
}

/// The audit dir, checked and open.
#[derive(Debug)]
pub(crate) struct AuditDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl AuditDir {
    /// Opens `dir` (creating it and its missing parents 0700 when `create`), refusing a
    /// symbolic link, something that is not a directory, a directory of another user, and one
    /// that group or others may write to (they could plant, swap or remove trails). Usage errors.
    pub(crate) fn open(dir: &Path, create: bool) -> Result<AuditDir, Error> {
        let shown = dir.display();
        // Anything but an entry of its own (missing, or under a file): let mkdir say why.
        if create && std::fs::symlink_metadata(dir).is_err() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(|e| {
                    Error::usage(format!(
                        "cannot create the audit dir `{shown}`: {e}; give a writable directory with --audit-dir or RUNBOOK_AUDIT_DIR"
                    ))
                })?;
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(dir, flags, Mode::empty()) {
            Ok(fd) => fd,
            // A link to a directory fails either way, depending on which flag is checked first.
            Err(Errno::LOOP | Errno::NOTDIR) if dir.is_symlink() => {
                return Err(Error::usage(format!(
                    "the audit dir `{shown}` is a symbolic link: runbook does not follow one there (it could be pointed elsewhere); give the directory itself with --audit-dir, or replace the link with a directory"
                )));
            }
            Err(Errno::NOTDIR) => {
                return Err(Error::usage(format!(
                    "the audit dir `{shown}` is not a directory; give a directory with --audit-dir or RUNBOOK_AUDIT_DIR"
                )));
            }
            Err(e) => {
                return Err(Error::usage(format!(
                    "cannot open the audit dir `{shown}`: {}; give a readable directory with --audit-dir or RUNBOOK_AUDIT_DIR",
                    std::io::Error::from(e)
                )));
            }
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| {
            Error::usage(format!(
                "cannot inspect the audit dir `{shown}`: {}",
                std::io::Error::from(e)
            ))
        })?;
        check_private("the audit dir", &shown.to_string(), stat.st_uid, stat.st_mode)?;
        Ok(AuditDir {
            fd,
            path: dir.to_path_buf(),
        })
    }

    /// Creates the file `name` 0600: never an existing one (`O_EXCL`), never through a link
    /// (`O_NOFOLLOW`). Write-only, appending.
    pub(crate) fn create_file(&self, name: &str) -> Result<File, Errno> {
        create_file_at(&self.fd, name)
    }

    /// Gives the file `from` the name `to` as well (`link(2)`: fails if `to` exists).
    pub(crate) fn link(&self, from: &str, to: &str) -> Result<(), Errno> {
        rustix::fs::linkat(&self.fd, from, &self.fd, to, AtFlags::empty())
    }

    /// Removes the file `name`, or the (empty) directory with `dir`.
    pub(crate) fn remove(&self, name: &str, dir: bool) {
        let flags = if dir { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        let _ = rustix::fs::unlinkat(&self.fd, name, flags);
    }

    /// Whether anything (a file, a link, a directory) is named `name`.
    pub(crate) fn exists(&self, name: &str) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Makes the new names in the directory survive a crash, as the lines in the files do.
    pub(crate) fn sync(&self) {
        let _ = rustix::fs::fsync(&self.fd);
    }

    /// A run's output directory `<run_id>/`, created 0700 when `create`; when it is already
    /// there it must be a real directory of ours (a planted link or file is refused, never
    /// followed). A new run's (`create` and `fresh`) must not exist at all.
    pub(crate) fn outputs(&self, run_id: &str, fresh: bool) -> Result<RunDir, Error> {
        let shown = self.path.join(run_id);
        let shown = shown.display();
        match rustix::fs::mkdirat(&self.fd, run_id, Mode::from_raw_mode(DIR_MODE)) {
            Ok(()) => {}
            Err(Errno::EXIST) if !fresh => {}
            Err(Errno::EXIST) => {
                return Err(Error::usage(format!(
                    "the output directory `{shown}` of this new run already exists: something was put there before the run started; remove it (and look at what it is) and run again"
                )));
            }
            Err(e) => {
                return Err(Error::usage(format!(
                    "cannot create the output directory `{shown}`: {}; give a writable audit dir with --audit-dir",
                    std::io::Error::from(e)
                )));
            }
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&self.fd, run_id, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::LOOP | Errno::NOTDIR) => {
                return Err(Error::usage(format!(
                    "the output directory `{shown}` is not a directory (a symbolic link or a file?): refusing to write step outputs through it; remove it and try again"
                )));
            }
            Err(e) => {
                return Err(Error::usage(format!(
                    "cannot open the output directory `{shown}`: {}",
                    std::io::Error::from(e)
                )));
            }
        };
        let stat = rustix::fs::fstat(&fd)
            .map_err(|e| Error::usage(format!("cannot inspect `{shown}`: {}", std::io::Error::from(e))))?;
        check_private(
            "the output directory",
            &shown.to_string(),
            stat.st_uid,
            stat.st_mode,
        )?;
        Ok(RunDir { fd })
    }
}

/// A run's output directory, open: output files are created relative to it.
#[derive(Debug)]
pub(crate) struct RunDir {
    fd: OwnedFd,
}

impl RunDir {
    /// See `AuditDir::create_file`.
    pub(crate) fn create_file(&self, name: &str) -> Result<File, Errno> {
        create_file_at(&self.fd, name)
    }
}

fn create_file_at(dir: &OwnedFd, name: &str) -> Result<File, Errno> {
    let flags =
        OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(FILE_MODE))?;
    Ok(File::from(fd))
}

/// A directory that holds trails must be ours and writable by nobody else.
fn check_private(what: &str, shown: &str, uid: u32, mode: u32) -> Result<(), Error> {
    if FileType::from_raw_mode(mode) != FileType::Directory {
        return Err(Error::usage(format!("{what} `{shown}` is not a directory")));
    }
    let me = rustix::process::geteuid().as_raw();
    if uid != me {
        return Err(Error::usage(format!(
            "{what} `{shown}` belongs to uid {uid}, not to you (uid {me}): a trail must be kept where nobody else can change it; use a directory of your own (--audit-dir), or `chown` this one"
        )));
    }
    let mode = mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Error::usage(format!(
            "{what} `{shown}` is writable by group or others (mode {mode:04o}): they could plant, replace or remove trails; `chmod 700 {shown}` and run again"
        )));
    }
    Ok(())
}

/// A new run id: `<UTC time>-<runbook id>-<4 hex>`, e.g. `20261122T030211Z-db-restore-3f9a`.
/// Sorts by start time; the random suffix keeps two runs started in the same second apart
/// (and `AuditLog::create` refuses to reuse a file, so a collision is an error, never a merge).
pub fn new_run_id(runbook_id: &str) -> String {
    let time = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    // `RandomState` is seeded from the OS's random source: enough for 16 bits, no new crate.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    let suffix = hasher.finish() as u16;
    format!("{time}-{}-{suffix:04x}", file_safe(runbook_id))
}

/// A run's trail in the audit dir: `<run-id>.jsonl`, the run id starting with its UTC start
/// (`refusals.jsonl` of unattended runs lives beside them and is no run).
pub(crate) fn is_run_file(name: &str) -> bool {
    name.ends_with(".jsonl") && name.starts_with(|c: char| c.is_ascii_digit())
}

/// `name` with every character that is not safe in a file name (or could climb out of the
/// directory) replaced by `_`.
pub(crate) fn file_safe(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match safe.as_str() {
        "" => "_".to_string(),
        "." | ".." => safe.replace('.', "_"),
        _ => safe,
    }
}

/// The audit file of `run`: the path of a file when `run` names one, else the run id
/// `<dir>/<run>.jsonl`, else the one run id in `dir` that starts with `run`.
pub(crate) fn resolve_run(dir: &Path, run: &str) -> Result<PathBuf, Error> {
    let as_path = Path::new(run);
    if run.contains('/') || run.ends_with(".jsonl") {
        if as_path.is_file() {
            return Ok(as_path.to_path_buf());
        }
        // A trail in a colleague's private audit dir is there, only not to be read by us.
        if let Err(e) = std::fs::metadata(as_path)
            && e.kind() == std::io::ErrorKind::PermissionDenied
        {
            return Err(permission_denied(as_path, "the audit file"));
        }
        if as_path.exists() {
            return Err(Error::usage(format!(
                "`{run}` is not a regular file; give a run id or the path of a run's .jsonl audit file"
            )));
        }
        if run.contains('/') {
            return Err(Error::usage(format!("no audit file at `{run}`")));
        }
    }
    if run == "last" {
        return newest(dir);
    }
    let id = run.strip_suffix(".jsonl").unwrap_or(run);
    let exact = dir.join(format!("{id}.jsonl"));
    if exact.is_file() {
        return Ok(exact);
    }
    let matches: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| is_run_file(name))
            .filter_map(|name| name.strip_suffix(".jsonl").map(str::to_string))
            .filter(|name| !id.is_empty() && name.starts_with(id))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(permission_denied(dir, "the audit dir"));
        }
        Err(_) => Vec::new(),
    };
    let none = || {
        format!(
            "no run `{run}` in the audit dir `{}` (set it with --audit-dir or RUNBOOK_AUDIT_DIR, or give the path of the .jsonl file)",
            dir.display()
        )
    };
    let one = one_match(matches, run, none, &format!("in `{}`", dir.display()))?;
    Ok(dir.join(format!("{one}.jsonl")))
}

/// The one run id among the `matches` of a prefix `run`; else an error: `none` says where
/// nothing was found, `many_in` where too many were (they are listed).
pub(crate) fn one_match<S: AsRef<str>>(
    mut matches: Vec<S>,
    run: &str,
    none: impl FnOnce() -> String,
    many_in: &str,
) -> Result<String, Error> {
    matches.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
    matches.dedup_by(|a, b| a.as_ref() == b.as_ref());
    match matches.as_slice() {
        [one] => Ok(one.as_ref().to_string()),
        [] => Err(Error::usage(none())),
        many => Err(Error::usage(format!(
            "`{run}` matches {} runs {many_in}: {}; give more of the run id",
            many.len(),
            many.iter().map(AsRef::as_ref).collect::<Vec<&str>>().join(", ")
        ))),
    }
}

/// A trail (or audit dir) that exists but this account may not read: said as such, with the
/// path, whose it is and what to do, never as a trail that is missing.
fn permission_denied(path: &Path, what: &str) -> Error {
    use std::os::unix::fs::MetadataExt;
    let named = |uid: u32, login: Option<String>| match login {
        Some(login) => format!("{login} (uid {uid})"),
        None => format!("uid {uid}"),
    };
    let me = crate::identity::Account::current();
    // The nearest directory that says whose it is: the one that keeps us out.
    let owner = path
        .ancestors()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .find_map(|p| std::fs::metadata(p).ok().map(|m| (p.to_path_buf(), m.uid())))
        .filter(|(_, uid)| *uid != me.uid);
    let (kept, todo) = match owner {
        Some((dir, uid)) => {
            let login = crate::identity::login_name(uid);
            let sudo = login.clone().unwrap_or_else(|| format!("#{uid}"));
            (
                format!(
                    "`{}` belongs to {}, and only that account may open it",
                    dir.display(),
                    named(uid, login)
                ),
                format!("run runbook as that account (`sudo -u {sudo} runbook ...`), or ask its operator to"),
            )
        }
        None => (
            "only its owner may open it".to_string(),
            "run runbook as the account that owns it, or ask its operator to".to_string(),
        ),
    };
    Error::usage(format!(
        "permission denied: cannot read {what} `{}` as your account, {}: {kept}.\n  \
         A run's trail is read and resumed by the account that keeps it: {todo}.",
        path.display(),
        named(me.uid, me.login),
    ))
}

/// `last`: the run that started last. Run ids begin with their start time to the second
/// (`new_run_id`), so that decides, not the file's mtime: a resume appends to an old file and
/// does not make it new. Within one second, the file written last.
fn newest(dir: &Path) -> Result<PathBuf, Error> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(permission_denied(dir, "the audit dir"));
        }
        entries => entries.ok(),
    };
    let newest = entries
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok().filter(|n| is_run_file(n))?;
            let started = name.strip_suffix(".jsonl")?.split('-').next()?.to_string();
            let written = e.metadata().and_then(|m| m.modified()).ok();
            Some((started, written, name))
        })
        .max();
    match newest {
        Some((_, _, name)) => Ok(dir.join(name)),
        None => Err(Error::usage(format!(
            "`last`: no runs in the audit dir `{}` (set it with --audit-dir or RUNBOOK_AUDIT_DIR)",
            dir.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time_and_name_the_runbook() {
        let id = new_run_id("db-restore");
        let (time, rest) = id.split_once('-').unwrap();
        assert_eq!(time.len(), "20261122T030211Z".len());
        assert!(time.ends_with('Z') && time.as_bytes()[8] == b'T');
        assert!(rest.starts_with("db-restore-"));
        let suffix = rest.strip_prefix("db-restore-").unwrap();
        assert!(suffix.len() == 4 && suffix.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn file_names_cannot_climb_out() {
        assert_eq!(file_safe("../etc/passwd"), ".._etc_passwd");
        assert_eq!(file_safe(".."), "__");
        assert_eq!(file_safe("ssh://deploy@api:22"), "ssh___deploy@api_22");
        assert_eq!(file_safe(""), "_");
    }
}
