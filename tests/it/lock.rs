//! The run lock against real races: threads that each open the lock file themselves (flock
//! locks belong to open file descriptions, so they race exactly as processes do), a planted
//! symbolic link, and the modes of what is created.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use indexmap::IndexMap;
use runbook::testing::lock::{Holder, LockError, RunLock, Taken, acquire, lock_path};

const RACERS: usize = 8;
const ROUNDS: usize = 50;

fn targets() -> IndexMap<String, String> {
    [("db".to_string(), "ops@10.0.0.5:22".to_string())].into()
}

/// A holder whose process is gone: a pid far above any pid_max.
fn dead() -> Holder {
    Holder {
        pid: 999_999_999,
        ..Holder::me("dead-run", "mallory")
    }
}

/// One racer's `acquire`.
type Attempt = Result<(RunLock, Taken), LockError>;

/// Every racer tries once, all at the same moment; the results come back once all have tried
/// (a winner holds its lock until then, so a late racer cannot simply come after it).
fn race(path: &Path, break_lock: bool) -> Vec<(String, Attempt)> {
    let start = Arc::new(Barrier::new(RACERS));
    let tried = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|n| {
            let (path, start, tried) = (path.to_path_buf(), start.clone(), tried.clone());
            std::thread::spawn(move || {
                let run = format!("racer-{n}");
                start.wait();
                let got = acquire(&path, Holder::me(&run, "ops"), break_lock);
                tried.wait();
                (run, got)
            })
        })
        .collect();
    racers.into_iter().map(|r| r.join().unwrap()).collect()
}

/// Pins the fault injector's finding against the hard-link lock: two runs both took over a
/// dead holder's lock in 1 of 40 races of 8 racers, and a racer that found the file gone was
/// told to pass `--break-lock`.
#[test]
fn racers_on_a_dead_holders_lock_have_exactly_one_winner() {
    let audit = tempfile::tempdir().unwrap();
    let path = lock_path(audit.path(), "failover", &targets());
    // Creates the directory and the file; the lock is then left by a run that died.
    drop(acquire(&path, Holder::me("setup", "ops"), false).unwrap());
    for round in 0..ROUNDS {
        std::fs::write(&path, serde_json::to_vec(&dead()).unwrap()).unwrap();
        let results = race(&path, false);
        let winners: Vec<&String> = results
            .iter()
            .filter(|(_, got)| got.is_ok())
            .map(|(run, _)| run)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let winner = winners[0].clone();
        for (run, got) in &results {
            match got {
                Ok((_, Taken::Stale(previous))) => assert_eq!(previous.run, "dead-run", "round {round}"),
                Ok((_, taken)) => panic!("round {round}: {run} took it {taken:?}, not from the dead holder"),
                // A loser names the winner: never a dead holder, never "pass --break-lock"
                // for a lock that only changed hands.
                Err(LockError::Held { holder, .. }) => assert_eq!(holder.run, winner, "round {round}"),
                Err(e) => panic!("round {round}: {run} lost with: {e}"),
            }
        }
    }
}

#[test]
fn racing_breakers_each_displace_one_holder_never_the_same_one_twice() {
    let audit = tempfile::tempdir().unwrap();
    let path = lock_path(audit.path(), "failover", &targets());
    for round in 0..10 {
        let (original, _) = acquire(&path, Holder::me("original", "alice"), false).unwrap();
        let results = race(&path, true);
        let mut displaced: Vec<String> = Vec::new();
        let mut holders = Vec::new();
        for (run, got) in results {
            match got {
                Ok((lock, Taken::Broken(previous))) => {
                    displaced.push(previous.run);
                    holders.push((run, lock));
                }
                Ok((_, taken)) => panic!("round {round}: {run} took a held lock as {taken:?}"),
                Err(e) => panic!("round {round}: {run}: {e}"),
            }
        }
        // Breaks go one after another: each holder was displaced once, the original first
        // among them, and exactly one breaker is left holding the lock.
        let mut sorted = displaced.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), RACERS, "round {round}: displaced {displaced:?}");
        assert!(displaced.contains(&"original".to_string()));
        let displaced_breakers: Vec<&String> = displaced.iter().filter(|r| *r != "original").collect();
        let current: Vec<&String> = holders
            .iter()
            .map(|(run, _)| run)
            .filter(|run| !displaced_breakers.contains(run))
            .collect();
        assert_eq!(current.len(), 1, "round {round}: {current:?}");
        match acquire(&path, Holder::me("late", "bob"), false) {
            Err(LockError::Held { holder, .. }) => assert_eq!(&holder.run, current[0]),
            other => panic!("round {round}: {other:?}"),
        }
        drop(holders);
        drop(original);
    }
    let left: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        left.len() <= 3 + RACERS,
        "displaced generations pile up: {left:?}"
    );
}

#[test]
fn a_symlinked_locks_directory_is_refused() {
    let audit = tempfile::tempdir().unwrap();
    let elsewhere = audit.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, audit.path().join("locks")).unwrap();
    let path = lock_path(audit.path(), "failover", &targets());
    let err = acquire(&path, Holder::me("r", "ops"), false).unwrap_err();
    assert!(matches!(err, LockError::UnsafeDir { .. }), "{err}");
    let locks: PathBuf = audit.path().join("locks");
    assert_eq!(
        err.to_string(),
        format!(
            "the lock directory `{}` is a symbolic link (runbook makes this directory itself: remove the link): refusing to keep locks there",
            locks.display()
        )
    );
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "nothing went through it"
    );
}

#[test]
fn the_directory_is_0700_and_the_lock_file_0600() {
    let audit = tempfile::tempdir().unwrap();
    let path = lock_path(audit.path(), "failover", &targets());
    let (lock, _) = acquire(&path, Holder::me("r", "ops"), false).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(lock.path()), 0o600);
}
