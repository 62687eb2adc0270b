//! Where audit files live (design §5, §10) and how a run is named: run ids that sort by time,
//! and `RUN` arguments that are either a run id or the path of its audit file.

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The audit directory: `--audit-dir`, else `$RUNBOOK_AUDIT_DIR`, else
/// `$XDG_STATE_HOME/runbook/runs`, else `~/.local/state/runbook/runs`.
pub fn audit_dir(global_flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = global_flag {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("RUNBOOK_AUDIT_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    // The XDG spec says a relative $XDG_STATE_HOME is invalid and must be ignored.
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from)
        && state.is_absolute()
    {
        return state.join("runbook").join("runs");
    }
    let home = std::env::home_dir().unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/runbook/runs")
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
pub fn resolve_run(dir: &Path, run: &str) -> Result<PathBuf, Error> {
    let as_path = Path::new(run);
    if run.contains('/') || run.ends_with(".jsonl") {
        if as_path.is_file() {
            return Ok(as_path.to_path_buf());
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
    let id = run.strip_suffix(".jsonl").unwrap_or(run);
    let exact = dir.join(format!("{id}.jsonl"));
    if exact.is_file() {
        return Ok(exact);
    }
    let mut matches: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|name| name.strip_suffix(".jsonl").map(str::to_string))
            .filter(|name| !id.is_empty() && name.starts_with(id))
            .collect(),
        Err(_) => Vec::new(),
    };
    matches.sort();
    match matches.as_slice() {
        [one] => Ok(dir.join(format!("{one}.jsonl"))),
        [] => Err(Error::usage(format!(
            "no run `{run}` in the audit dir `{}` (set it with --audit-dir or RUNBOOK_AUDIT_DIR, or give the path of the .jsonl file)",
            dir.display()
        ))),
        many => Err(Error::usage(format!(
            "`{run}` matches {} runs in `{}`: {}; give more of the run id",
            many.len(),
            dir.display(),
            many.join(", ")
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
