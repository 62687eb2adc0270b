//! Runs a step on the operator's machine: `sh -c <script>` in a process group of its own, so
//! stopping it reaches every process it started, not just the shell.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use tokio::time::{Instant, sleep_until};

use super::{Chunk, DRAIN, Ending, GRACE, Job, Reader, Stopping, TransportError, emit, or_never};
use crate::script::{READ_AND_RUN, script};

/// This machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct Local;

impl Local {
    pub async fn run(&self, job: Job<'_>) -> Result<Ending, TransportError> {
        let (spec, out, cancel, recorded) = (job.spec, job.out, job.cancel, job.recorded);
        let text = script(&spec.env, &spec.command)?;
        // The script goes through a pipe, never argv: `ps` shows only the fixed wrapper.
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(READ_AND_RUN)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| TransportError::Spawn {
                program: "sh",
                source,
            })?;
        // The shell leads its own group: its id is the group's.
        let mut group = Group(child.id().map(|id| id as i32));
        // Dropped unsent on failure: the shell reads an empty script and runs nothing.
        // A stop while the disk is slow ends the attempt before anything was sent.
        tokio::select! {
            on_disk = recorded.wait() => on_disk.map_err(TransportError::NotRecorded)?,
            () = cancel.cancelled() => return Ok(Ending::Cancelled),
        }
        if let Some(mut stdin) = child.stdin.take() {
            // Written beside the reading of its output: a big script must not wait on it.
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = stdin.write_all(text.as_bytes()).await;
            });
        }
        let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            unreachable!("both pipes were requested");
        };

        let deadline = spec.timeout.map(|t| Instant::now() + t);
        let mut stopping: Option<Stopping> = None;
        let mut status = None;
        let mut drain_until = None;
        let (mut out_open, mut err_open) = (true, true);
        let (mut oread, mut eread) = (Reader::new(&stdout), Reader::new(&stderr));

        while status.is_none() || out_open || err_open {
            let running = status.is_none();
            let kill_at = stopping.as_ref().filter(|s| !s.killed).and_then(|s| s.kill_at);
            tokio::select! {
                piece = oread.read(&mut stdout), if out_open => match piece {
                    Some(piece) => emit(&out, Chunk::Stdout(piece)).await,
                    None => out_open = false,
                },
                piece = eread.read(&mut stderr), if err_open => match piece {
                    Some(piece) => emit(&out, Chunk::Stderr(piece)).await,
                    None => err_open = false,
                },
                st = child.wait(), if running => {
                    status = Some(st.map_err(|source| TransportError::Spawn { program: "sh", source })?);
                    drain_until = Some(Instant::now() + DRAIN);
                }
                _ = sleep_until(or_never(deadline)), if running && deadline.is_some() && stopping.is_none() => {
                    stopping = Some(group.stop(Ending::TimedOut));
                }
                _ = cancel.cancelled(), if running && stopping.is_none() => {
                    stopping = Some(group.stop(Ending::Cancelled));
                }
                _ = sleep_until(or_never(kill_at)), if running && kill_at.is_some() => {
                    group.signal(libc::SIGKILL);
                    if let Some(s) = stopping.as_mut() {
                        s.killed = true;
                    }
                }
                _ = sleep_until(or_never(drain_until)), if drain_until.is_some() => break,
            }
        }
        // Ended on its own or stopped: either way nothing of the group is ours to kill now.
        group.0 = None;

        if let Some(stopping) = stopping {
            return Ok(stopping.reason);
        }
        let status = status.expect("the loop only ends once the shell exited");
        Ok(match (status.code(), status.signal()) {
            (Some(code), _) => Ending::Exited(code),
            (None, Some(signal)) => Ending::Signaled(signal),
            (None, None) => Ending::Lost(format!("`sh` ended with an unknown status: {status}")),
        })
    }
}

/// The command's process group. If `run` is abandoned midway (its future dropped), the group
/// is killed rather than left running unseen.
struct Group(Option<i32>);

impl Group {
    fn signal(&self, signal: i32) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill(2) has no memory effects; a group already gone gives ESRCH, ignored.
            unsafe {
                libc::kill(-pgid, signal);
            }
        }
    }

    fn stop(&self, reason: Ending) -> Stopping {
        self.signal(libc::SIGTERM);
        let mut stopping = Stopping::new(reason);
        stopping.kill_at = Some(Instant::now() + GRACE);
        stopping
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::super::CommandSpec;
    use super::*;
    use crate::audit::Recorded;

    fn spec(command: &str) -> CommandSpec {
        CommandSpec {
            command: command.to_string(),
            env: Vec::new(),
            timeout: None,
            step: "s".into(),
            attempt: 1,
        }
    }

    /// The command is sent only once its start is on disk; a start that cannot be put there
    /// runs nothing and says why.
    #[tokio::test]
    async fn the_command_waits_for_its_record_and_a_failed_record_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let command = format!("touch '{}'", marker.display());

        let (recorded, open) = Recorded::pending();
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let spec = spec(&command);
        let run = Local.run(Job {
            spec: &spec,
            out: tx,
            cancel: CancellationToken::new(),
            recorded,
        });
        tokio::pin!(run);
        // The shell is up and waiting: nothing has run while the record is not on disk.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(300), &mut run)
                .await
                .is_err()
        );
        assert!(!marker.exists(), "ran before its start was recorded");
        open(Ok(()));
        assert!(matches!(run.await, Ok(Ending::Exited(0))));
        assert!(marker.exists());

        std::fs::remove_file(&marker).unwrap();
        let (recorded, open) = Recorded::pending();
        open(Err("disk gone".into()));
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        match Local
            .run(Job {
                spec: &spec,
                out: tx,
                cancel: CancellationToken::new(),
                recorded,
            })
            .await
        {
            Err(TransportError::NotRecorded(why)) => assert_eq!(why, "disk gone"),
            other => panic!("{other:?}"),
        }
        // A stop while the record is pending ends the attempt; nothing is sent.
        let (recorded, _open) = Recorded::pending();
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let cancel = CancellationToken::new();
        cancel.cancel();
        assert!(matches!(
            Local
                .run(Job {
                    spec: &spec,
                    out: tx,
                    cancel,
                    recorded
                })
                .await,
            Ok(Ending::Cancelled)
        ));
        // Its shell read an empty script and ended: give it the time a real run would.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!marker.exists(), "ran although its start was never recorded");
    }
}
