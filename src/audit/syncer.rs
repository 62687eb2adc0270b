//! Fsyncs the audit file on a thread of its own, for events that must reach the disk soon but
//! need not hold the run up until they have: a step's finish (the next step's start, fsynced
//! before its command runs, would carry it anyway). Written, such an event already survives
//! a crash of this process; the thread makes it survive a crash of the machine within about a
//! millisecond instead of at the next durable event. A failed fsync is kept, and stops the log
//! at its next append.

use std::fs::File;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Debug)]
pub(super) struct Syncer {
    nudge: Option<mpsc::Sender<()>>,
    failed: Arc<Mutex<Option<String>>>,
    worker: Option<JoinHandle<()>>,
}

impl Syncer {
    /// A thread with its own handle on `file` (the same open file: an fsync through either
    /// flushes both).
    pub(super) fn start(file: &File, path: &Path) -> std::io::Result<Syncer> {
        let file = file.try_clone()?;
        let (nudge, nudges) = mpsc::channel::<()>();
        let failed = Arc::new(Mutex::new(None));
        let raised = failed.clone();
        let path = path.to_path_buf();
        let worker = std::thread::Builder::new()
            .name("audit-fsync".into())
            .spawn(move || {
                while nudges.recv().is_ok() {
                    // One fsync covers every event written so far.
                    while nudges.try_recv().is_ok() {}
                    if let Err(e) = file.sync_data() {
                        if let Ok(mut slot) = raised.lock() {
                            *slot = Some(format!(
                                "cannot flush to disk (fsync) the audit file `{}`: {e}",
                                path.display()
                            ));
                        }
                        return;
                    }
                }
            })?;
        Ok(Syncer {
            nudge: Some(nudge),
            failed,
            worker: Some(worker),
        })
    }

    /// Asks for an fsync of everything written so far; returns at once.
    pub(super) fn nudge(&self) {
        if let Some(nudge) = &self.nudge {
            let _ = nudge.send(());
        }
    }

    /// Why a background fsync failed, if one did.
    pub(super) fn failure(&self) -> Option<String> {
        self.failed.lock().ok().and_then(|f| f.clone())
    }
}

impl Drop for Syncer {
    /// Waits for the fsync under way, if any: nothing outlives the log.
    fn drop(&mut self) {
        drop(self.nudge.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}
