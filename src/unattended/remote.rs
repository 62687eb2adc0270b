//! The policy's state on the team's audit host (design §20): its pause (`PATH/pause.json`: a
//! pause there holds every machine) and its ledger of admitted runs
//! (`PATH/unattended/runs.jsonl`), which `max_runs` counts and dedup looks fingerprints up in,
//! with the runs' mirrored trails saying which are sealed. One fixed script (`remote.sh`), one
//! SSH command per admission: the script holds the audit host's lock while this side decides,
//! so two machines admitting at once still start one run.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::transport::{AuditHost, Ssh, SshOptions, audit_host};

const SCRIPT: &str = include_str!("remote.sh");

/// How long one admission's exchange may take, connecting aside.
const EXCHANGE: Duration = Duration::from_secs(30);

/// What the audit host holds, read under its lock.
pub(super) struct Seen {
    /// The pause file's text; `Err` when it is there and cannot be read.
    pub pause: Option<Result<String, String>>,
    pub ledger: Vec<Value>,
}

/// An admission under way on the audit host: its lock is held until `finish` (or drop).
pub(super) struct Admission {
    runtime: tokio::runtime::Runtime,
    conn: Conn,
    pub host: AuditHost,
}

/// The connection and the script's pipes.
struct Conn {
    ssh: Option<Ssh>,
    pipes: Option<Pipes>,
}

struct Pipes {
    child: openssh::Child<std::sync::Arc<openssh::Session>>,
    stdin: openssh::ChildStdin,
    reader: BufReader<openssh::ChildStdout>,
    stderr: openssh::ChildStderr,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the SSH client: {e}"))
}

/// `work`, given up after `EXCHANGE`.
async fn bounded<T>(work: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    match tokio::time::timeout(EXCHANGE, work).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} s", EXCHANGE.as_secs())),
    }
}

impl Admission {
    /// Connects, takes the audit host's lock and reads its pause and ledger. The error says why,
    /// naming the audit host.
    pub(super) fn open(host: &AuditHost, opts: &SshOptions) -> Result<(Admission, Seen), String> {
        let runtime = runtime()?;
        let fail = |why: String| format!("the audit host {host} cannot be reached: {why}");
        let ssh = runtime
            .block_on(Ssh::connect(&host.dest(), opts))
            .map_err(|e| fail(e.to_string()))?;
        let mut admission = Admission {
            runtime,
            conn: Conn {
                ssh: Some(ssh),
                pipes: None,
            },
            host: host.clone(),
        };
        let seen = admission
            .runtime
            .block_on(bounded(admission.conn.begin(&admission.host)))
            .map_err(fail)?;
        Ok((admission, seen))
    }

    /// The last line of each run's trail there (`None`: no trail there).
    pub(super) fn last_lines(&mut self, runs: &[&str]) -> Result<HashMap<String, Option<String>>, String> {
        let mut asked = String::from("last");
        for run in runs {
            asked.push(' ');
            asked.push_str(run);
        }
        asked.push('\n');
        let conn = &mut self.conn;
        self.runtime
            .block_on(bounded(async {
                conn.say(&asked).await?;
                let mut found: HashMap<String, Option<String>> = HashMap::new();
                for (kind, word, bytes) in conn.frames().await? {
                    match kind.as_str() {
                        "trail" => {
                            found.insert(word, Some(String::from_utf8_lossy(&bytes).trim().to_string()));
                        }
                        "missing" => {
                            found.insert(word, None);
                        }
                        _ => {}
                    }
                }
                Ok(found)
            }))
            .map_err(|why| format!("the audit host {} stopped answering: {why}", self.host))
    }

    /// Appends `line` to the audit host's ledger (`Some`), or lets the lock go (`None`).
    pub(super) fn finish(mut self, line: Option<&Value>) -> Result<(), String> {
        let said = match line {
            Some(line) => format!("admit\n{line}\n"),
            None => "refuse\n".to_string(),
        };
        let conn = &mut self.conn;
        self.runtime
            .block_on(bounded(async {
                conn.say(&said).await?;
                let mut answer = String::new();
                let n = audit_host::within(conn.pipes()?.reader.read_line(&mut answer)).await?;
                if n == 0 {
                    return Err(conn.stopped().await);
                }
                match answer.trim() {
                    "admitted" | "refused" => Ok(()),
                    other => Err(format!(
                        "unexpected answer `{}`",
                        crate::secrets::escape::value(other)
                    )),
                }
            }))
            .map_err(|why| {
                format!(
                    "the run could not be entered in the ledger of the audit host {}: {why}",
                    self.host
                )
            })
    }
}

impl Conn {
    async fn begin(&mut self, host: &AuditHost) -> Result<Seen, String> {
        let Some(ssh) = &self.ssh else {
            return Err("the connection is closed".into());
        };
        let started = host
            .start(ssh, "rb-unattended", SCRIPT, &["admit"])
            .await
            .map_err(|e| format!("cannot start a shell there: {e}"))?;
        self.pipes = Some(Pipes {
            child: started.child,
            stdin: started.stdin,
            reader: BufReader::new(started.stdout),
            stderr: started.stderr,
        });
        let mut seen = Seen {
            pause: None,
            ledger: Vec::new(),
        };
        for (kind, _name, bytes) in self.frames().await? {
            match kind.as_str() {
                "pause" => seen.pause = Some(Ok(String::from_utf8_lossy(&bytes).into_owned())),
                "pause-unreadable" => seen.pause = Some(Err("pause.json cannot be read".into())),
                "ledger" => {
                    seen.ledger = String::from_utf8_lossy(&bytes)
                        .lines()
                        .filter_map(|l| serde_json::from_str(l).ok())
                        .collect();
                }
                _ => {}
            }
        }
        Ok(seen)
    }

    fn pipes(&mut self) -> Result<&mut Pipes, String> {
        self.pipes
            .as_mut()
            .ok_or_else(|| "the exchange is over".to_string())
    }

    async fn say(&mut self, text: &str) -> Result<(), String> {
        let stdin = &mut self.pipes()?.stdin;
        match stdin.write_all(text.as_bytes()).await {
            Ok(()) => stdin
                .flush()
                .await
                .map_err(|e| format!("the connection failed: {e}")),
            Err(e) => Err(format!("the connection failed: {e}")),
        }
    }

    /// Frames up to `ready`: `(KIND, WORD, BYTES)`; for a file (`pause`, `ledger`, `trail`) WORD
    /// is its name and the bytes follow. The script's own words when it stopped.
    async fn frames(&mut self) -> Result<Vec<(String, String, Vec<u8>)>, String> {
        let mut frames = Vec::new();
        loop {
            let mut line = String::new();
            let n = audit_host::within(self.pipes()?.reader.read_line(&mut line)).await?;
            if n == 0 {
                return Err(self.stopped().await);
            }
            let mut parts = line.trim_end_matches('\n').splitn(3, ' ');
            let kind = parts.next().unwrap_or_default().to_string();
            match kind.as_str() {
                "ready" => return Ok(frames),
                "pause" | "ledger" | "trail" => {
                    let size: usize = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| {
                        format!(
                            "a garbled answer `{}`",
                            crate::secrets::escape::value(line.trim())
                        )
                    })?;
                    let name = parts.next().unwrap_or_default().to_string();
                    let mut bytes = vec![0u8; size];
                    audit_host::within(self.pipes()?.reader.read_exact(&mut bytes)).await?;
                    frames.push((kind, name, bytes));
                }
                _ => frames.push((kind, parts.next().unwrap_or_default().to_string(), Vec::new())),
            }
        }
    }

    /// Why the script ended before it was done: its exit and what it said on stderr.
    async fn stopped(&mut self) -> String {
        let Some(mut pipes) = self.pipes.take() else {
            return "the exchange is over".into();
        };
        let mut said = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), pipes.stderr.read_to_string(&mut said)).await;
        let status = tokio::time::timeout(Duration::from_secs(2), pipes.child.wait()).await;
        let said = crate::secrets::escape::value(said.trim()).into_owned();
        match status {
            Ok(Ok(s)) if s.code() == Some(3) => format!("its directory cannot be used: {said}"),
            Ok(Ok(s)) if s.code() == Some(6) => said,
            Ok(Ok(s)) => format!("the script there ended ({s}): {said}"),
            _ => format!("the connection ended: {said}"),
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        // Closing stdin ends the script, which lets the lock go.
        let pipes = self.conn.pipes.take();
        let ssh = self.conn.ssh.take();
        let _ = self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(3), async {
                if let Some(Pipes {
                    child, stdin, reader, ..
                }) = pipes
                {
                    drop(stdin);
                    drop(reader);
                    let _ = child.wait().await;
                }
                if let Some(ssh) = ssh {
                    ssh.close().await;
                }
            })
            .await
        });
    }
}

/// `pause` (the record on stdin) or `unpause` there; the script's first word (`paused`,
/// `removed`, `none`).
pub(super) fn switch(host: &AuditHost, opts: &SshOptions, verb: &str, input: &str) -> Result<String, String> {
    let runtime = runtime()?;
    let fail = |why: String| format!("the audit host {host} cannot be reached: {why}");
    runtime.block_on(async {
        let ssh = Ssh::connect(&host.dest(), opts)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let said = bounded(async {
            let mut started = host
                .start(&ssh, "rb-unattended", SCRIPT, &[verb])
                .await
                .map_err(|e| format!("cannot start a shell there: {e}"))?;
            started
                .stdin
                .write_all(input.as_bytes())
                .await
                .map_err(|e| format!("the connection failed: {e}"))?;
            drop(started.stdin);
            let mut out = String::new();
            let mut err = String::new();
            let _ = started.stdout.read_to_string(&mut out).await;
            let _ = started.stderr.read_to_string(&mut err).await;
            let status = started
                .child
                .wait()
                .await
                .map_err(|e| format!("the connection failed: {e}"))?;
            let word = out.split_whitespace().next().unwrap_or_default().to_string();
            if status.success() && !word.is_empty() {
                Ok(word)
            } else {
                Err(format!(
                    "the script there ended ({status}): {}",
                    crate::secrets::escape::value(err.trim())
                ))
            }
        })
        .await
        .map_err(fail);
        ssh.close().await;
        said
    })
}
