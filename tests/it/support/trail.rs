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

/// Every file under `dir`, recursively (an audit dir, or the audit host's directory as root).
pub fn every_file(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// The events of `trail` named `event`.
pub fn named<'a>(trail: &'a [serde_json::Value], event: &str) -> Vec<&'a serde_json::Value> {
    trail.iter().filter(|e| e["event"] == event).collect()
}

/// The one `run resumed` of `trail`, which must say that step `step`'s outcome was unknown (a
/// machine that died mid-step).
#[track_caller]
pub fn resumed_after_unknown<'a>(trail: &'a [serde_json::Value], step: &str) -> &'a serde_json::Value {
    let resumed = named(trail, "run resumed");
    assert_eq!(resumed.len(), 1);
    let from = resumed[0]["from"].as_str().unwrap();
    assert!(
        from.contains(&format!("`{step}`")) && from.contains("outcome unknown"),
        "{from}"
    );
    resumed[0]
}

/// The events of a trail, parsed, in order.
#[track_caller]
pub fn events(trail: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(trail)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The events of the newest trail of the audit dir `dir`.
#[track_caller]
pub fn last_run_events(dir: &Path) -> Vec<serde_json::Value> {
    events(&audit_files(dir).pop().expect("a trail in the audit dir"))
}

/// The records of a trail, typed as the writer wrote them (`runbook::testing::audit`: the
/// format's one definition), in order. Panics on a line that is not an event.
#[track_caller]
pub fn records(trail: &Path) -> Vec<runbook::testing::audit::Line> {
    std::fs::read_to_string(trail)
        .unwrap()
        .lines()
        .map(|l| runbook::testing::audit::Line::decode(l.as_bytes()).expect("an event"))
        .collect()
}

/// The records of the newest trail of the audit dir `dir`.
#[track_caller]
pub fn last_run_records(dir: &Path) -> Vec<runbook::testing::audit::Line> {
    records(&audit_files(dir).pop().expect("a trail in the audit dir"))
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

/// How `age` treats the signatures of the trail it copies.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Signatures {
    /// Dropped: they are over hashes the copy no longer has, so the copy is unsigned.
    Drop,
    /// Kept as they were: what a forger who back-dates a signed trail gets (they no longer
    /// match their events' hashes).
    Keep,
}

/// A copy of the audit file `src` in `dir`, as if the run had started `ago` before now: every
/// `ts` moved by the same amount (`mono_ms`, so every duration, unchanged), the run id renamed
/// after the new start (`<UTC start>-<runbook>-<4 hex>`, the hex kept), its output directory
/// copied beside it, and the hash chain (`prev`, `hash`, the seal's `head`) recomputed, so the
/// copy verifies as a real trail of that date. Returns the copy's path.
#[track_caller]
pub fn age(src: &Path, dir: &Path, ago: chrono::Duration, signatures: Signatures) -> PathBuf {
    use chrono::{DateTime, Utc};
    use serde_json::Value;
    let text = std::fs::read_to_string(src).unwrap();
    let old_run = src.file_stem().unwrap().to_str().unwrap().to_string();
    let first: Value = serde_json::from_str(text.lines().next().expect("a trail")).unwrap();
    let start: DateTime<Utc> = first["ts"].as_str().unwrap().parse().unwrap();
    let new_start = Utc::now() - ago;
    let shift = new_start - start;
    let (_, rest) = old_run.split_once('-').expect("a run id");
    let new_run = format!("{}-{rest}", new_start.format("%Y%m%dT%H%M%SZ"));
    assert_ne!(new_run, old_run, "age a trail by at least a second");
    let mut prev = runbook::testing::audit::GENESIS.to_string();
    let mut out = String::new();
    for line in text.lines() {
        let line = line.replace(&old_run, &new_run);
        let mut v: Value = serde_json::from_str(&line).unwrap();
        let obj = v.as_object_mut().unwrap();
        let ts: DateTime<Utc> = obj["ts"].as_str().unwrap().parse().unwrap();
        obj.insert(
            "ts".into(),
            (ts + shift).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string().into(),
        );
        obj.remove("hash");
        let signature = obj.remove("signature");
        if obj["event"] == "run finished" {
            obj.insert("head".into(), prev.clone().into());
        }
        obj.remove("prev");
        obj.insert("prev".into(), prev.clone().into());
        let body = serde_json::to_string(&v).unwrap();
        let hash = runbook::testing::audit::event_hash(&prev, body.as_bytes());
        out.push_str(&body[..body.len() - 1]);
        if let (Signatures::Keep, Some(sig)) = (signatures, signature) {
            out.push_str(&format!(",\"signature\":{sig}"));
        }
        out.push_str(&format!(",\"hash\":\"{hash}\"}}\n"));
        prev = hash;
    }
    let outputs = src.with_file_name(&old_run);
    if outputs.is_dir() {
        let copy = dir.join(&new_run);
        std::fs::create_dir_all(&copy).unwrap();
        for entry in std::fs::read_dir(&outputs).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
    }
    let path = dir.join(format!("{new_run}.jsonl"));
    std::fs::write(&path, out).unwrap();
    path
}
