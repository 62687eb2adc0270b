//! Waiting for an effect, with a deadline: a test proves what it observes, never that a fixed
//! sleep was long enough.

use std::path::Path;
use std::time::{Duration, Instant};

/// Polls `done` every 20 ms until it holds; panics naming `what` after `limit`.
#[track_caller]
pub fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `path` exists and contains `needle` (a command's own effect).
#[track_caller]
pub fn for_text(path: &Path, needle: &str) {
    until(
        Duration::from_secs(30),
        &format!("`{needle}` in {}", path.display()),
        || std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)),
    );
}

/// Like [`until`], for what is looked at whole (a screen): `look` says whether it holds and
/// what it saw, and the panic shows what was seen last.
#[track_caller]
pub fn until_seen(limit: Duration, what: &str, mut look: impl FnMut() -> (bool, String)) {
    let deadline = Instant::now() + limit;
    loop {
        let (done, seen) = look();
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not after {limit:?}; last seen:\n{seen}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exit code of `child` once it ends within `limit` (`None`: killed by a signal); kills it
/// and panics when it does not.
#[track_caller]
pub fn exit(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
