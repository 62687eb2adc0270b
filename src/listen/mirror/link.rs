//! One connection to the audit host: its own OpenSSH master (`Ssh::connect`, the options of
//! the run's targets) and one long-lived `sh` there (`remote.sh`) that takes frames on its
//! stdin. Values reach it as positional arguments or as frame data, never as command text.

use std::time::Duration;

use openssh::{ChildStdin, ChildStdout, Session};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};

use crate::transport::{AuditHost, Ssh, SshOptions, Started};

const SCRIPT: &str = include_str!("remote.sh");

/// How long an answer may take beyond the time to move the bytes (one more second per MiB).
pub(super) const ANSWER_WAIT: Duration = Duration::from_secs(2);

/// Output files up to this size, without a NUL, are copied as lines (`t`/`u` frames).
const TEXT_COPY: usize = 64 << 10;

pub(super) struct Link {
    ssh: Ssh,
    child: openssh::Child<std::sync::Arc<Session>>,
    stdin: ChildStdin,
    answers: Lines<BufReader<ChildStdout>>,
    /// The trail's size on the audit host.
    pub size: u64,
}

impl Link {
    /// Connects and starts the remote side, which says how much of the trail it holds.
    pub(super) async fn open(host: &AuditHost, opts: &SshOptions, run_id: &str) -> Result<Link, String> {
        let ssh = Ssh::connect(&host.dest(), opts)
            .await
            .map_err(|e| e.to_string())?;
        let started = match host.start(&ssh, "rb-mirror", SCRIPT, &[run_id]).await {
            Ok(started) => started,
            Err(e) => {
                ssh.close().await;
                return Err(format!("cannot start the mirror's shell there: {e}"));
            }
        };
        let Started {
            child,
            stdin,
            stdout,
            mut stderr,
        } = started;
        let mut answers = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(ANSWER_WAIT * 5, answers.next_line()).await;
        let size = match first {
            Ok(Ok(Some(line))) => line
                .strip_prefix("size ")
                .and_then(|s| s.trim().parse::<u64>().ok()),
            _ => None,
        };
        let Some(size) = size else {
            let mut said = String::new();
            let _ = tokio::time::timeout(Duration::from_secs(1), stderr.read_to_string(&mut said)).await;
            ssh.close().await;
            let said = said.trim();
            return Err(if said.is_empty() {
                format!("the directory `{}` cannot be written there", host.path)
            } else {
                format!("the directory `{}` cannot be written there: {said}", host.path)
            });
        };
        Ok(Link {
            ssh,
            child,
            stdin,
            answers,
            size,
        })
    }

    /// Appends whole trail lines (each ending in `\n`) there: the warm path, no process
    /// started there.
    pub(super) async fn lines(&mut self, bytes: &[u8]) -> Result<(), String> {
        let count = bytes.iter().filter(|b| **b == b'\n').count();
        let header = format!("l {count}\n");
        self.appended(&header, bytes).await
    }

    /// Appends any bytes to the trail there (catching up, maybe from within a line).
    pub(super) async fn append(&mut self, bytes: &[u8]) -> Result<(), String> {
        let header = format!("a {}\n", bytes.len());
        self.appended(&header, bytes).await
    }

    async fn appended(&mut self, header: &str, bytes: &[u8]) -> Result<(), String> {
        match self.frame(header, bytes).await?.as_str() {
            "ok" => {
                self.size += bytes.len() as u64;
                Ok(())
            }
            other => Err(format!("unexpected answer `{other}`")),
        }
    }

    /// Writes the run's output file `name` there (a whole copy: it is closed): a small text
    /// file as lines (no process started there), any other as bytes.
    pub(super) async fn copy(&mut self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let text = bytes.len() <= TEXT_COPY && !bytes.contains(&0);
        let answer = if text {
            let lines = bytes.iter().filter(|b| **b == b'\n').count();
            let (kind, count, body) = match bytes.last() {
                None | Some(b'\n') => ('t', lines, std::borrow::Cow::Borrowed(bytes)),
                Some(_) => ('u', lines + 1, std::borrow::Cow::Owned([bytes, b"\n"].concat())),
            };
            self.frame(&format!("{kind} {count} {name}\n"), &body).await?
        } else {
            self.frame(&format!("f {} {name}\n", bytes.len()), bytes).await?
        };
        match answer.as_str() {
            "ok" => Ok(()),
            other => Err(format!("unexpected answer `{other}`")),
        }
    }

    async fn frame(&mut self, header: &str, bytes: &[u8]) -> Result<String, String> {
        let within = ANSWER_WAIT + Duration::from_secs(bytes.len() as u64 >> 20);
        let exchange = async {
            self.stdin.write_all(header.as_bytes()).await?;
            self.stdin.write_all(bytes).await?;
            self.stdin.flush().await?;
            self.answers.next_line().await
        };
        match tokio::time::timeout(within, exchange).await {
            Ok(Ok(Some(answer))) => Ok(answer),
            Ok(Ok(None)) => Err("the connection ended".into()),
            Ok(Err(e)) => Err(format!("the connection failed: {e}")),
            Err(_) => Err(format!("no answer within {} s", within.as_secs())),
        }
    }

    /// Ends the remote side (end of file on its stdin) and the connection.
    pub(super) async fn close(self) {
        let Link {
            ssh, child, stdin, ..
        } = self;
        drop(stdin);
        let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), ssh.close()).await;
    }
}
