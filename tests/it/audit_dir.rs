//! The audit dir and the files in it (design §14 "Files"): created private, refused when
//! others could change it, never reached through a link; pre-flight problems exit 2 before
//! anything runs; a full disk at the first line leaves no trail behind.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::cmd::{bin, runbook};
use crate::support::tmpfs::Tmpfs;
use crate::support::trail::{audit_files, wait_for_started};

/// A runbook whose one command leaves a mark at `marker`, so a test can tell it ran.
fn book(dir: &Path, marker: &Path) -> PathBuf {
    let path = dir.join("tiny.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\nid: tiny\ntitle: Tiny\nrto: 1m\nsteps:\n  - {{id: mark, title: Mark, run: echo hello > {}}}\n  - {{id: done, title: Done, end: resolved}}\n",
            marker.display()
        ),
    )
    .unwrap();
    path
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `runbook run --yes --audit-dir AUDIT BOOK`, expecting `code`; returns stderr.
#[track_caller]
fn run(audit: &Path, book: &Path, code: i32) -> String {
    runbook(["run", "--yes", "--audit-dir"])
        .arg(audit)
        .arg(book)
        .expect_code(code)
        .stderr
}

#[test]
fn the_audit_dir_its_parents_and_a_runs_files_are_private() {
    let base = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("ran");
    let audit = base.path().join("state/runbook/runs");
    run(&audit, &book(scratch.path(), &marker), 0);
    for dir in ["state", "state/runbook", "state/runbook/runs"] {
        assert_eq!(mode(&base.path().join(dir)), 0o700, "{dir}");
    }
    let trail = &audit_files(&audit)[0];
    let run_id = trail.file_stem().unwrap().to_str().unwrap();
    assert_eq!(mode(trail), 0o600);
    assert_eq!(mode(&audit.join(run_id)), 0o700);
    assert_eq!(mode(&audit.join(run_id).join("mark-1.out")), 0o600);
    assert!(
        !names_in(&audit).iter().any(|n| n.ends_with(".new")),
        "{:?}",
        names_in(&audit)
    );
}

#[test]
fn an_audit_dir_others_can_write_to_is_refused_before_anything_runs() {
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("ran");
    let book = book(scratch.path(), &marker);
    for mode in [0o770, 0o777, 0o1777] {
        let audit = tempfile::tempdir().unwrap();
        std::fs::set_permissions(audit.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        let d = audit.path().display();
        assert_eq!(
            run(audit.path(), &book, 2),
            format!(
                "runbook: error: the audit dir `{d}` is writable by group or others (mode {mode:04o}): they could plant, replace or remove trails; `chmod 700 {d}` and run again\n"
            )
        );
        assert!(names_in(audit.path()).is_empty(), "nothing is written there");
    }
    assert!(!marker.exists(), "the command ran");
}

#[test]
fn an_audit_dir_of_another_user_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("ran");
    let audit = tempfile::tempdir().unwrap();
    let nobody = uid_of("nobody");
    std::os::unix::fs::chown(audit.path(), Some(nobody), None).unwrap();
    let me = unsafe { libc::geteuid() };
    let d = audit.path().display();
    assert_eq!(
        run(audit.path(), &book(scratch.path(), &marker), 2),
        format!(
            "runbook: error: the audit dir `{d}` belongs to uid {nobody}, not to you (uid {me}): a trail must be kept where nobody else can change it; use a directory of your own (--audit-dir), or `chown` this one\n"
        )
    );
    assert!(!marker.exists());
}

#[test]
fn an_audit_dir_that_is_a_link_is_not_followed() {
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("ran");
    let real = tempfile::tempdir().unwrap();
    let link = scratch.path().join("runs");
    std::os::unix::fs::symlink(real.path(), &link).unwrap();
    assert_eq!(
        run(&link, &book(scratch.path(), &marker), 2),
        format!(
            "runbook: error: the audit dir `{}` is a symbolic link: runbook does not follow one there (it could be pointed elsewhere); give the directory itself with --audit-dir, or replace the link with a directory\n",
            link.display()
        )
    );
    assert!(names_in(real.path()).is_empty());
    assert!(!marker.exists());
}

#[test]
fn an_audit_dir_that_is_a_file_is_a_usage_error() {
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("ran");
    let file = scratch.path().join("runs");
    std::fs::write(&file, "").unwrap();
    assert_eq!(
        run(&file, &book(scratch.path(), &marker), 2),
        format!(
            "runbook: error: the audit dir `{}` is not a directory; give a directory with --audit-dir or RUNBOOK_AUDIT_DIR\n",
            file.display()
        )
    );
    // Under a file, the dir cannot be made at all.
    let below = file.join("runs");
    assert_eq!(
        run(&below, &book(scratch.path(), &marker), 2),
        format!(
            "runbook: error: cannot create the audit dir `{}`: Not a directory (os error 20); give a writable directory with --audit-dir or RUNBOOK_AUDIT_DIR\n",
            below.display()
        )
    );
    assert!(!marker.exists());
}

/// A read-only file system (a real read-only tmpfs: root may write anywhere else).
#[test]
fn a_read_only_audit_dir_is_a_usage_error() {
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("ran");
    let disk = Tmpfs::mount_with("size=64k,mode=0700,ro");
    assert_eq!(
        run(disk.path(), &book(scratch.path(), &marker), 2),
        format!(
            "runbook: error: cannot write to the audit dir `{}`: Read-only file system (os error 30); give a writable directory with --audit-dir or RUNBOOK_AUDIT_DIR\n",
            disk.path().display()
        )
    );
    assert!(!marker.exists());
}

/// Kills a run mid-step (after its command's own effect), leaving an incomplete trail.
fn crashed_run(audit: &Path, scratch: &Path) -> PathBuf {
    let log = scratch.join("ran.log");
    let path = scratch.join("crash.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\nid: crash\ntitle: Crash\nrto: 5m\nsteps:\n  - id: slow\n    title: Slow\n    idempotent: true\n    run: echo slow >> {log}; sleep 30\n  - {{id: done, title: Done, end: resolved}}\n",
            log = log.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(bin())
        .args(["run", "--yes", "--audit-dir"])
        .arg(audit)
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let trail = wait_for_started(audit);
    crate::support::wait::for_text(&log, "slow");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = Command::new("pkill")
        .args(["-f", &log.display().to_string()])
        .status();
    trail
}

/// Regression: resume followed a link planted as the run's output directory and wrote the
/// step's output wherever it pointed.
#[test]
fn resume_refuses_a_link_planted_as_the_runs_output_dir() {
    let audit = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let trail = crashed_run(audit.path(), scratch.path());
    let outputs = trail.with_extension("");
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::rename(&outputs, scratch.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), &outputs).unwrap();
    let out = runbook(["resume", "--yes", "--audit-dir"])
        .arg(audit.path())
        .arg(&trail)
        .expect_code(2);
    assert!(
        out.stderr.ends_with(&format!(
            "runbook: error: the output directory `{}` is not a directory (a symbolic link or a file?): refusing to write step outputs through it; remove it and try again\n",
            outputs.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        names_in(elsewhere.path()).is_empty(),
        "an output went through the link"
    );
}

#[test]
fn resume_refuses_a_trail_that_is_a_link() {
    let audit = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let trail = crashed_run(audit.path(), scratch.path());
    let real = scratch.path().join("real.jsonl");
    std::fs::rename(&trail, &real).unwrap();
    std::os::unix::fs::symlink(&real, &trail).unwrap();
    let before = std::fs::read(&real).unwrap();
    let out = runbook(["resume", "--yes", "--audit-dir"])
        .arg(audit.path())
        .arg(&trail)
        .expect_code(2);
    assert_eq!(
        out.stderr,
        format!(
            "runbook: error: the audit file `{}` is a symbolic link: refusing to append through it; give the path of the file itself\n",
            trail.display()
        )
    );
    assert_eq!(std::fs::read(&real).unwrap(), before);
}

/// Regression: a disk full at the very first line left an empty `.jsonl`, which could not be
/// resumed and showed in `history` as a ghost row. Now: the OS error, no trail, no history.
/// The tmpfs is filled to the brim but one page, which the run lock takes (its holder is
/// written before the trail is started): the trail's first line is what meets the full disk.
#[test]
fn a_full_disk_at_the_first_line_leaves_no_trail() {
    let disk = Tmpfs::mount("256k");
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("ran");
    let book = book(scratch.path(), &marker);
    disk.fill("filler");
    disk.free("filler", 4096);

    let out = runbook(["run", "--yes", "--audit-dir"])
        .arg(disk.path())
        .arg(&book)
        .output();
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("No space left on device"), "{}", out.stderr);
    assert!(!marker.exists(), "the command ran without a trail");
    assert_eq!(
        names_in(disk.path()),
        ["filler", "locks"],
        "nothing was left behind"
    );
    assert!(
        out.stderr
            .contains("cannot write the first line of the audit file"),
        "the lock took the last page, the trail met the full disk: {}",
        out.stderr
    );
    assert_eq!(out.code, Some(2), "nothing ran: a pre-flight failure");
    let history = runbook(["history", "--audit-dir"])
        .arg(disk.path())
        .expect_code(0);
    assert_eq!(history.stdout, "");
    assert!(!history.stderr.contains("jsonl"), "{}", history.stderr);
}

/// Issue 23 #10: a disk already full when the run lock is taken: nothing ran, so it is a
/// pre-flight failure (exit 2) naming the lock, the OS error and what to do, and no trail is
/// left.
#[test]
fn a_full_disk_at_the_run_lock_is_a_pre_flight_failure() {
    let disk = Tmpfs::mount("256k");
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("ran");
    let book = book(scratch.path(), &marker);
    disk.fill("filler");

    let out = runbook(["run", "--yes", "--audit-dir"])
        .arg(disk.path())
        .arg(&book)
        .output();
    assert!(out.stderr.contains("No space left on device"), "{}", out.stderr);
    assert!(out.stderr.contains("(the run lock)"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was run"), "{}", out.stderr);
    assert!(out.stderr.contains("free some space"), "{}", out.stderr);
    assert_eq!(out.code, Some(2), "nothing ran: a pre-flight failure");
    assert!(!marker.exists(), "the command ran without a trail");
    assert!(
        !names_in(disk.path()).iter().any(|n| n.ends_with(".jsonl")),
        "no trail: {:?}",
        names_in(disk.path())
    );
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}
