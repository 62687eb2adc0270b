//! Audit files as tests see them: which a run wrote, and waiting until a run is mid-step.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The `.jsonl` files of `dir`, sorted.
pub fn audit_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Waits until a run in `dir` has a step on disk as started (its command is running), and
/// returns its audit file; panics after 30 s rather than hang.
#[track_caller]
pub fn wait_for_started(dir: &Path) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let started = audit_files(dir).into_iter().find(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .contains("\"step started\"")
        });
        if let Some(file) = started {
            return file;
        }
        assert!(Instant::now() < deadline, "no step started in {}", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}
