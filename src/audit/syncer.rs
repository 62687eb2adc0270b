//! Fsyncs the audit file on a thread of its own, for events that must reach the disk soon but
//! need not hold the run up while they do:
//!
//! - a step's finish (the next step's start, fsynced before its command runs, would carry it
//!   anyway): written, it already survives a crash of this process; the thread makes it
//!   survive a crash of the machine within about a millisecond;
//! - a step's start, whose command is held back until the fsync is done (`Recorded`): the
//!   connection's session opens while the disk works, and the command reaches the host only
//!   once its record is on disk.
//!
//! A failed fsync is kept: every `Recorded` waiting on it fails, and the log stops at its next
//! append.

use std::fs::File;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::watch;

/// How far the fsyncs have come: every request up to this generation is on disk, or why the
/// last one failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Synced {
    Up(u64),
    Failed(String),
}

#[derive(Debug)]
pub(super) struct Syncer {
    requests: Option<mpsc::Sender<u64>>,
    /// The generation of the last request.
    asked: u64,
    synced: watch::Receiver<Synced>,
    worker: Option<JoinHandle<()>>,
}

/// Resolves once what was written before it was asked for is on disk (`Recorded::wait`).
#[derive(Debug, Clone)]
pub struct Recorded {
    synced: watch::Receiver<Synced>,
    want: u64,
    /// A second copy to wait for as well (the audit host's mirror, design §19), bounded.
    acknowledged: Option<Acknowledged>,
}

/// A copy elsewhere that says how many bytes of the trail it holds (`u64::MAX` once it is
/// lost: nobody waits for it then): resolved once it holds `want`, or after `within` anyway.
#[derive(Debug, Clone)]
pub struct Acknowledged {
    pub held: watch::Receiver<u64>,
    pub want: u64,
    pub within: std::time::Duration,
}

impl Recorded {
    /// Already on disk: nothing to wait for.
    pub fn done() -> Recorded {
        Recorded {
            synced: watch::channel(Synced::Up(0)).1,
            want: 0,
            acknowledged: None,
        }
    }

    /// Resolves only once `copy` holds the trail too (or has not answered in time): its wait
    /// runs beside the fsync's.
    pub fn and_acknowledged(mut self, copy: Acknowledged) -> Recorded {
        self.acknowledged = Some(copy);
        self
    }

    /// Waits for the fsync; the error says why it failed (nothing must then be run).
    pub async fn wait(mut self) -> Result<(), String> {
        let want = self.want;
        let copy = self.acknowledged.take();
        let acknowledged = async move {
            if let Some(Acknowledged {
                mut held,
                want,
                within,
            }) = copy
            {
                // Late or gone, the copy's keeper says so; the command runs anyway.
                let _ = tokio::time::timeout(within, held.wait_for(|n| *n >= want)).await;
            }
        };
        let synced = async {
            self.synced
                .wait_for(|s| matches!(s, Synced::Failed(_)) || matches!(s, Synced::Up(n) if *n >= want))
                .await
                .map(|s| s.clone())
                .map_err(|_| "the audit file's fsync thread ended".to_string())
        };
        let (state, ()) = tokio::join!(synced, acknowledged);
        match state? {
            Synced::Failed(why) => Err(why),
            Synced::Up(_) => Ok(()),
        }
    }
}

#[cfg(test)]
impl Recorded {
    /// Not on disk until the returned sender says so (`Synced::Up(1)`), or never
    /// (`Synced::Failed`).
    pub(crate) fn pending() -> (Recorded, impl Fn(Result<(), String>)) {
        let (publish, synced) = watch::channel(Synced::Up(0));
        let open = move |result: Result<(), String>| {
            publish.send_replace(match result {
                Ok(()) => Synced::Up(1),
                Err(why) => Synced::Failed(why),
            });
        };
        (
            Recorded {
                synced,
                want: 1,
                acknowledged: None,
            },
            open,
        )
    }
}

impl Syncer {
    /// A thread with its own handle on `file` (the same open file: an fsync through either
    /// flushes both).
    pub(super) fn start(file: &File, path: &Path) -> std::io::Result<Syncer> {
        let file = file.try_clone()?;
        let (requests, asked) = mpsc::channel::<u64>();
        let (publish, synced) = watch::channel(Synced::Up(0));
        let path = path.to_path_buf();
        let worker = std::thread::Builder::new()
            .name("audit-fsync".into())
            .spawn(move || {
                while let Ok(mut top) = asked.recv() {
                    // One fsync covers every request so far.
                    while let Ok(next) = asked.try_recv() {
                        top = top.max(next);
                    }
                    if let Err(e) = file.sync_data() {
                        let why = format!(
                            "cannot flush to disk (fsync) the audit file `{}`: {e}",
                            path.display()
                        );
                        publish.send_replace(Synced::Failed(why));
                        return;
                    }
                    publish.send_replace(Synced::Up(top));
                }
            })?;
        Ok(Syncer {
            requests: Some(requests),
            asked: 0,
            synced,
            worker: Some(worker),
        })
    }

    /// Asks for an fsync of everything written so far; returns at once, with what resolves
    /// once it is done.
    pub(super) fn request(&mut self) -> Recorded {
        self.asked += 1;
        if let Some(requests) = &self.requests {
            let _ = requests.send(self.asked);
        }
        Recorded {
            synced: self.synced.clone(),
            want: self.asked,
            acknowledged: None,
        }
    }

    /// Why a background fsync failed, if one did.
    pub(super) fn failure(&self) -> Option<String> {
        match &*self.synced.borrow() {
            Synced::Failed(why) => Some(why.clone()),
            Synced::Up(_) => None,
        }
    }
}

impl Drop for Syncer {
    /// Waits for the fsync under way, if any: nothing outlives the log.
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_resolves_once_synced_and_later_ones_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        let mut syncer = Syncer::start(&file, &path).unwrap();
        let first = syncer.request();
        let second = syncer.request();
        assert_eq!(second.clone().wait().await, Ok(()));
        assert_eq!(first.wait().await, Ok(()));
        assert_eq!(syncer.failure(), None);
    }
}
