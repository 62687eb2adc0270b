//! The mirror's thread: sends each batch of lines as it comes, copies each output file the
//! trail says is closed, and when the audit host is gone retries with a growing pause; back,
//! it compares the size there with the local trail and sends the local bytes from there.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::link::Link;
use super::{Msg, News};
use crate::transport::{AuditHost, SshOptions};

/// The pause between two attempts to reconnect: from the first to the longest.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(4);

/// What the seal's line holds: every output file goes before it.
const SEAL: &str = "\"event\":\"run finished\"";

/// What a step's start holds: output files are copied once it is acknowledged.
const STARTED: &str = "\"event\":\"step started\"";

/// How long lines nobody waits for are held for more (a step's start) before they are sent:
/// well under what `watch` may take to show an event.
const GATHER: Duration = Duration::from_millis(20);

/// Lines the run waits for (a step's start) or that end it (the seal): sent at once.
fn awaited(bytes: &[u8]) -> bool {
    let has = |what: &str| bytes.windows(what.len()).any(|w| w == what.as_bytes());
    has(STARTED) || has(SEAL)
}

/// How long the mirror waits for more lines before it copies output files anyway.
const COPY_IDLE: Duration = Duration::from_millis(200);

/// What a line that accounts for an output file holds.
const OUTPUT: &str = "\"output\":{";

/// The most trail bytes sent in one frame while catching up.
const CATCH_UP_FRAME: usize = 1 << 20;

/// What the run gives the worker: where the mirror goes, and how the worker reports back.
pub(super) struct Setup {
    pub host: AuditHost,
    pub ssh: SshOptions,
    pub run_id: String,
    pub audit_dir: PathBuf,
    /// How much of the trail the audit host holds (for a step's start to wait on).
    pub held: watch::Sender<u64>,
    pub news: std::sync::mpsc::Sender<News>,
    /// The first connection's result, told once.
    pub first: Option<oneshot::Sender<Result<(), String>>>,
    pub shout: Arc<dyn Fn(&str) + Send + Sync>,
}

pub(super) struct Worker {
    to: Setup,
    link: Option<Link>,
    /// The end of the last line given: the local trail holds at least this much.
    covered: u64,
    /// The output files the trail names as closed, in order, and how many of them are there.
    files: Vec<String>,
    named: std::collections::HashSet<String>,
    /// A resumed run's lines before this process: read once for the files they name.
    scanned: bool,
    files_sent: usize,
    /// The last lines sent hold a step's start: its command runs now.
    started_last: bool,
    /// Said lost and not caught up since.
    lost: bool,
    /// The audit host's copy cannot be made whole by appending: never retried.
    broken: bool,
}

impl Worker {
    pub(super) fn new(to: Setup) -> Worker {
        Worker {
            to,
            link: None,
            covered: 0,
            files: Vec::new(),
            named: Default::default(),
            scanned: false,
            files_sent: 0,
            started_last: false,
            lost: false,
            broken: false,
        }
    }

    pub(super) async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Msg>) {
        let mut pause = RETRY_FIRST;
        let mut next_try = Instant::now();
        let mut held_back: Option<Msg> = None;
        self.connect().await;
        loop {
            let msg = if let Some(msg) = held_back.take() {
                Some(msg)
            } else if self.link.is_some() && self.files_sent < self.files.len() {
                // Output files go while a command runs (its start just acknowledged) or once
                // nothing came for a moment, one at a time: a step's start, which follows a
                // step's finish closely, never queues behind a copy.
                let idle = if self.started_last {
                    Duration::ZERO
                } else {
                    COPY_IDLE
                };
                match tokio::time::timeout(idle, inbox.recv()).await {
                    Ok(msg) => msg,
                    Err(_) => {
                        self.copy_files(1).await;
                        continue;
                    }
                }
            } else if self.link.is_some() || self.broken {
                inbox.recv().await
            } else {
                match tokio::time::timeout_at(next_try, inbox.recv()).await {
                    Ok(msg) => msg,
                    Err(_) => {
                        pause = if self.connect().await {
                            RETRY_FIRST
                        } else {
                            (pause * 2).min(RETRY_MAX)
                        };
                        next_try = Instant::now() + pause;
                        continue;
                    }
                }
            };
            match msg {
                Some(Msg::Lines { mut end, mut bytes }) => {
                    // Whatever came meanwhile goes in the same frame; and lines nobody waits
                    // for wait a moment for the step's start that usually follows them, so
                    // that a step costs the run one exchange with the audit host, not two.
                    let until = Instant::now() + GATHER;
                    loop {
                        let next = match inbox.try_recv() {
                            Ok(next) => Some(next),
                            Err(_) if awaited(&bytes) => None,
                            Err(_) => tokio::time::timeout_at(until, inbox.recv()).await.ok().flatten(),
                        };
                        match next {
                            Some(Msg::Lines { end: e, bytes: b }) => {
                                end = e;
                                bytes.extend_from_slice(&b);
                            }
                            Some(other) => {
                                held_back = Some(other);
                                break;
                            }
                            None => break,
                        }
                    }
                    self.lines(end, bytes).await;
                }
                Some(Msg::Settle(done)) => {
                    self.copy_files(usize::MAX).await;
                    let _ = done.send(());
                }
                Some(Msg::Finish { by, done }) => {
                    let _ = done.send(self.finish(by.into()).await);
                    break;
                }
                None => break,
            }
        }
        if let Some(link) = self.link.take() {
            link.close().await;
        }
    }

    /// Tries to (re)connect and catch up; whether the audit host is whole again.
    async fn connect(&mut self) -> bool {
        let opened = Link::open(&self.to.host, &self.to.ssh, &self.to.run_id).await;
        if let Some(first) = self.to.first.take() {
            let _ = first.send(opened.as_ref().map(|_| ()).map_err(String::clone));
        }
        match opened {
            Ok(link) => {
                self.link = Some(link);
                self.catch_up().await
            }
            Err(why) => {
                self.lose(why);
                false
            }
        }
    }

    /// Sends the local trail from the size there up to what was given, then the files
    /// not copied yet.
    async fn catch_up(&mut self) -> bool {
        let Some(from) = self.link.as_ref().map(|l| l.size) else {
            return false;
        };
        if from > self.covered && self.covered > 0 {
            self.broken = true;
            let why = format!(
                "its copy of the trail is longer ({from} bytes) than the local one ({}): it is not appended to",
                self.covered
            );
            self.lose(why);
            return false;
        }
        let mut sent = 0u64;
        if from < self.covered {
            let bytes = match read_range(&self.trail_path(), from, self.covered) {
                Ok(bytes) => bytes,
                Err(why) => {
                    self.lose(why);
                    return false;
                }
            };
            for chunk in bytes.chunks(CATCH_UP_FRAME) {
                if let Err(why) = self.append(chunk).await {
                    self.lose(why);
                    return false;
                }
                sent += chunk.len() as u64;
            }
        }
        let files = self.files.len() - self.files_sent;
        if !self.copy_files(usize::MAX).await {
            return false;
        }
        let size = self.link.as_ref().map_or(0, |l| l.size);
        self.to.held.send_replace(size);
        if std::mem::take(&mut self.lost) {
            let _ = self.to.news.send(News::CaughtUp {
                bytes: sent,
                files: files as u64,
            });
        }
        true
    }

    async fn append(&mut self, bytes: &[u8]) -> Result<(), String> {
        match self.link.as_mut() {
            Some(link) => link.append(bytes).await,
            None => Err("not connected".into()),
        }
    }

    /// A batch of lines: their output files noted, then sent when connected (the seal only
    /// after every output file).
    async fn lines(&mut self, end: u64, bytes: Vec<u8>) {
        let start = end.saturating_sub(bytes.len() as u64);
        self.covered = end;
        if !std::mem::replace(&mut self.scanned, true)
            && start > 0
            && let Ok(before) = read_range(&self.trail_path(), 0, start)
        {
            // The outputs of the run so far (another process's, or a crash's recovered ones):
            // copied again, the copy there may be missing or cut.
            self.note_files(&before);
        }
        self.note_files(&bytes);
        let Some(size) = self.link.as_ref().map(|l| l.size) else {
            return;
        };
        // Not where the audit host's copy ends (a resumed run's first lines): from the file.
        if size != start {
            self.catch_up().await;
            return;
        }
        let sealing = bytes.windows(SEAL.len()).any(|w| w == SEAL.as_bytes());
        if sealing && !self.copy_files(usize::MAX).await {
            return;
        }
        let Some(link) = self.link.as_mut() else {
            return;
        };
        match link.lines(&bytes).await {
            Ok(()) => {
                self.to.held.send_replace(link.size);
                self.started_last = bytes.windows(STARTED.len()).any(|w| w == STARTED.as_bytes());
            }
            Err(why) => self.lose(why),
        }
    }

    /// The output files each line says are closed: a step's, a shell's recording.
    fn note_files(&mut self, bytes: &[u8]) {
        let prefix = format!("{}/", self.to.run_id);
        // Only the few lines that account for a file are parsed.
        let names_one = |l: &&[u8]| l.windows(OUTPUT.len()).any(|w| w == OUTPUT.as_bytes());
        for line in bytes.split(|b| *b == b'\n').filter(names_one) {
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            let Some(path) = value
                .get("output")
                .and_then(|o| o.get("path"))
                .and_then(|p| p.as_str())
            else {
                continue;
            };
            if let Some(name) = path.strip_prefix(&prefix).filter(|n| is_plain_name(n))
                && self.named.insert(name.to_string())
            {
                self.files.push(name.to_string());
            }
        }
    }

    /// Copies up to `most` of the output files not there yet; whether the link still holds.
    async fn copy_files(&mut self, most: usize) -> bool {
        let mut copied = 0;
        while self.files_sent < self.files.len() && copied < most {
            copied += 1;
            let name = self.files[self.files_sent].clone();
            let path = self.to.audit_dir.join(&self.to.run_id).join(&name);
            let copied = match std::fs::read(&path) {
                Ok(bytes) => match self.link.as_mut() {
                    Some(link) => link.copy(&name, &bytes).await,
                    None => return false,
                },
                // Gone locally (cleaned up): nothing to copy, nothing to wait for.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
            };
            if let Err(why) = copied {
                self.lose(why);
                return false;
            }
            self.files_sent += 1;
        }
        true
    }

    /// The link is gone: nobody waits for it any more, and it is said once.
    fn lose(&mut self, why: String) {
        self.link = None;
        self.to.held.send_replace(u64::MAX);
        if self.lost {
            return;
        }
        self.lost = true;
        // Unreachable at the start, the run's own warning said it already.
        if self.covered > 0 {
            (self.to.shout)(&format!(
                "⚠ the audit host {} is lost ({why}): the run goes on, its trail is kept here and sent there once it is back",
                self.to.host
            ));
        }
        let _ = self.to.news.send(News::Lost { reason: why });
    }

    /// The run is over: when the audit host is away, one last try, until `by` at most.
    async fn finish(&mut self, by: Instant) -> Result<(), String> {
        if self.link.is_none() && !self.broken {
            let _ = tokio::time::timeout_at(by, self.connect()).await;
        }
        if self.link.is_some() {
            let _ = tokio::time::timeout_at(by, self.copy_files(usize::MAX)).await;
        }
        match &self.link {
            Some(link) if link.size == self.covered && self.files_sent == self.files.len() => Ok(()),
            Some(link) => Err(format!(
                "it holds {} of the trail's {} bytes",
                link.size, self.covered
            )),
            None => Err("it cannot be reached".into()),
        }
    }

    fn trail_path(&self) -> PathBuf {
        self.to.audit_dir.join(format!("{}.jsonl", self.to.run_id))
    }
}

/// A file name the remote side takes: no directory, nothing hidden, nothing a shell or the
/// frame's line would read otherwise.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@:+=,".contains(c))
}

fn read_range(path: &std::path::Path, from: u64, to: u64) -> Result<Vec<u8>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let read = || -> std::io::Result<Vec<u8>> {
        let mut file = std::fs::File::open(path)?;
        file.seek(SeekFrom::Start(from))?;
        let mut bytes = Vec::with_capacity((to - from) as usize);
        file.take(to - from).read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    match read() {
        Ok(bytes) if bytes.len() as u64 == to - from => Ok(bytes),
        Ok(bytes) => Err(format!(
            "the local trail `{}` is shorter than written ({} bytes from {from})",
            path.display(),
            bytes.len()
        )),
        Err(e) => Err(format!("cannot read the local trail `{}`: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_copied() {
        for name in ["step.1.out", "deploy@web-1.2.out", "shell-1.cast"] {
            assert!(is_plain_name(name), "{name}");
        }
        for name in ["", ".hidden", "a/b", "a b", "a\nb", "$(x)", "../x"] {
            assert!(!is_plain_name(name), "{name:?}");
        }
    }
}
