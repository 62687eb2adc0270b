//! Plain mode (`TERM=dumb`, `NO_COLOR`, no TTY): every status line carries the local time,
//! and a long step says it is still running every 10 s, so a log read later tells the story.

use crate::support::cmd::runbook;

#[test]
fn a_long_step_in_plain_mode_has_timestamped_status_lines_and_heartbeats() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = dir.path().join("long.yaml");
    std::fs::write(
        &file,
        "version: 1\nid: long\ntitle: Long\nrto: 15m\nsteps:\n  - id: restore\n    title: Restore\n    run: sleep 25\n    rto: 5m\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    let out = runbook(["run", "--yes", "--audit-dir"])
        .arg(audit.path())
        .arg(&file)
        .env("TERM", "dumb")
        .expect_code(0);
    let stamp = r"[0-2][0-9]:[0-5][0-9]:[0-5][0-9]";
    let started = regex::Regex::new(&format!(r"(?m)^{stamp} \[1/2\] restore: started on local$")).unwrap();
    assert!(started.is_match(&out.stderr), "{}", out.stderr);
    let beat = regex::Regex::new(&format!(
        r"(?m)^{stamp} \[1/2\] restore: still running, 10s of its 5m target, 14m[0-9]{{2}}s of the 15m RTO left$"
    ))
    .unwrap();
    assert!(beat.is_match(&out.stderr), "{}", out.stderr);
    // Never recorded: a heartbeat is for the eyes, the trail keeps what happened.
    let trail = crate::support::trail::audit_files(audit.path()).pop().unwrap();
    assert!(!std::fs::read_to_string(trail).unwrap().contains("still running"));
}
