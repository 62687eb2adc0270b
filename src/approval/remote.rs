//! The approvals spool on the team's audit host (design §19): `PATH/approvals/` there, reached
//! over an SSH master like a target. Only the fixed script `remote.sh` runs there, every value a
//! quoted positional argument. The audit host only stores and hands over bytes: whatever it
//! returns, a signature counts only once it verifies here against the approvers file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openssh::{Session, Stdio};
use tokio::io::AsyncWriteExt;

use crate::transport::{AuditHost, Ssh, SshOptions};

const SCRIPT: &str = include_str!("remote.sh");

/// A request whose heartbeat is older than this has no run waiting for it (the run died, or
/// lost the audit host): its run touches it at every look, twice a second.
pub(crate) const STALE: Duration = Duration::from_secs(10);

/// How long one exchange with the audit host may take before it is given up.
const EXCHANGE: Duration = Duration::from_secs(20);

/// How long a run that stops waiting spends saying so there.
const END_WAIT: Duration = Duration::from_secs(5);

/// The audit host's spool, and one connection to it, opened when first needed.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    pub host: AuditHost,
    ssh: SshOptions,
    conn: Arc<tokio::sync::Mutex<Option<Arc<Ssh>>>>,
}

/// One frame of the script's answer: `KIND WORD NAME` (and the bytes of a file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub kind: String,
    pub word: String,
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A request of the audit host's spool, as `list` and `get` find it.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub name: String,
    pub bytes: Vec<u8>,
    /// Its run still touches its heartbeat.
    pub waits: bool,
}

impl Remote {
    pub(crate) fn new(host: AuditHost, ssh: SshOptions) -> Remote {
        Remote {
            host,
            ssh,
            conn: Arc::default(),
        }
    }

    /// A file of the spool, as a person finds it: `ssh://USER@HOST/PATH/approvals/NAME`.
    pub(crate) fn url(&self, name: &str) -> String {
        format!("{}/approvals/{name}", self.host)
    }

    async fn connection(&self) -> Result<Arc<Ssh>, String> {
        let mut conn = self.conn.lock().await;
        if let Some(ssh) = conn.as_ref() {
            return Ok(ssh.clone());
        }
        let ssh = Ssh::connect(&self.host.dest(), &self.ssh)
            .await
            .map_err(|e| e.to_string())?;
        let ssh = Arc::new(ssh);
        *conn = Some(ssh.clone());
        Ok(ssh)
    }

    /// Runs the script's `verb` with `args` (and `input` on its stdin); its frames. After a
    /// failure the connection is let go: the next call connects again.
    async fn call(&self, verb: &str, args: &[&str], input: &[u8]) -> Result<Vec<Frame>, String> {
        let ssh = self.connection().await?;
        let mut all = vec![verb];
        all.extend_from_slice(args);
        let result = match tokio::time::timeout(EXCHANGE, exchange(&ssh, &self.host, &all, input)).await {
            Ok(result) => result.and_then(|out| frames(&out)),
            Err(_) => Err(format!("no answer within {} s", EXCHANGE.as_secs())),
        };
        if result.is_err() {
            drop(ssh);
            self.conn.lock().await.take();
        }
        result
    }

    /// Writes a request as `<stem>.json` (or `<stem>.N.json` when taken), 0640, its heartbeat
    /// beside it. The local copy, in a private directory, is where its answers are read.
    pub(crate) async fn write(&self, stem: &str, bytes: &[u8]) -> Result<Waiting, String> {
        let frames = self.call("request", &[stem], bytes).await?;
        let name = frames
            .into_iter()
            .find(|f| f.kind == "name")
            .map(|f| f.word)
            .filter(|n| plain(n))
            .ok_or("the audit host did not say the request's name")?;
        let dir = tempfile::Builder::new()
            .prefix("runbook-approval-")
            .tempdir()
            .map_err(|e| format!("cannot make a private directory for its answers: {e}"))?;
        let request = dir.path().join(&name);
        std::fs::write(&request, bytes).map_err(|e| format!("cannot keep a copy of it: {e}"))?;
        Ok(Waiting {
            remote: self.clone(),
            name,
            dir,
            request,
        })
    }

    /// Every request of the spool, waited for or not.
    pub(crate) async fn list(&self) -> Result<Vec<Found>, String> {
        Ok(found(self.call("list", &[], &[]).await?))
    }

    /// The request `name`, if the spool has it.
    pub(crate) async fn get(&self, name: &str) -> Result<Option<Found>, String> {
        Ok(found(self.call("get", &[name], &[]).await?).into_iter().next())
    }

    /// Writes an answer beside the request `name` under the first free name; that name, or
    /// `None` when the request is gone.
    pub(crate) async fn answer(
        &self,
        name: &str,
        armored: &str,
        deny_reason: Option<&str>,
    ) -> Result<Option<String>, String> {
        let verb = if deny_reason.is_some() { "deny" } else { "approve" };
        let frames = self
            .call(
                "answer",
                &[name, verb, armored, deny_reason.unwrap_or_default()],
                &[],
            )
            .await?;
        if frames.iter().any(|f| f.kind == "gone") {
            return Ok(None);
        }
        frames
            .into_iter()
            .find(|f| f.kind == "wrote")
            .map(|f| Some(f.word))
            .ok_or_else(|| "the audit host did not say where it wrote the answer".to_string())
    }

    /// Lets the connection go (`runbook approve` ends, a run's last wait ended).
    pub(crate) async fn close(&self) {
        let taken = self.conn.lock().await.take();
        if let Some(ssh) = taken.and_then(|ssh| Arc::try_unwrap(ssh).ok()) {
            ssh.close().await;
        }
    }
}

/// A request a run waits for on the audit host.
pub(crate) struct Waiting {
    remote: Remote,
    name: String,
    dir: tempfile::TempDir,
    /// The request's local copy: the answers fetched are put beside it.
    pub request: PathBuf,
}

impl Waiting {
    /// Touches the request's heartbeat and fetches every answer not fetched yet. An answer once
    /// fetched is kept as it was: what the audit host says later changes nothing.
    pub(crate) async fn refresh(&self) -> Result<(), String> {
        let frames = self.remote.call("poll", &[&self.name], &[]).await?;
        for f in frames
            .into_iter()
            .filter(|f| f.kind == "sig" || f.kind == "reason")
        {
            let beside = f
                .name
                .strip_prefix(&self.name)
                .is_some_and(|r| r.starts_with('.'));
            if !plain(&f.name) || !beside {
                continue;
            }
            let path = self.dir.path().join(&f.name);
            if std::fs::symlink_metadata(&path).is_err() {
                std::fs::write(&path, &f.bytes).map_err(|e| format!("cannot keep {}: {e}", f.name))?;
            }
        }
        Ok(())
    }

    /// Where a fetched answer (a file beside the local copy) is on the audit host.
    pub(crate) fn url_of(&self, local: &Path) -> String {
        let name = local.file_name().unwrap_or_default().to_string_lossy();
        self.remote.url(&name)
    }

    pub(crate) fn url(&self) -> String {
        self.remote.url(&self.name)
    }

    /// The run waits no more: the heartbeat goes, tried twice within `END_WAIT` (an audit
    /// host away does not hold the run: its heartbeat then goes stale by itself).
    pub(crate) async fn end(self) {
        let done = async {
            for _ in 0..2 {
                if self.remote.call("done", &[&self.name], &[]).await.is_ok() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(END_WAIT, done).await;
    }
}

/// A name the spool may hold: no path, nothing hidden, no line break.
fn plain(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\n', '\0'])
}

async fn exchange(ssh: &Ssh, host: &AuditHost, args: &[&str], input: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Session::to_raw_command(ssh.session(), host.script("rb-approvals", SCRIPT, args))
        .stdin(if input.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .await
        .map_err(|e| format!("cannot start a shell there: {e}"))?;
    if let Some(mut stdin) = child.stdin().take() {
        stdin
            .write_all(input)
            .await
            .map_err(|e| format!("the connection failed: {e}"))?;
        drop(stdin);
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("the connection failed: {e}"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let said = crate::secrets::escape::value(said.trim()).into_owned();
        return Err(match out.status.code() {
            Some(3) => format!("its directory cannot be used: {said}"),
            _ => format!("the spool there cannot be used ({}): {said}", out.status),
        });
    }
    Ok(out.stdout)
}

/// Reads the script's frames: a line `KIND WORD NAME`; for a file (`sig`, `reason`, `request`)
/// WORD is its size and that many bytes follow the line.
pub(crate) fn frames(out: &[u8]) -> Result<Vec<Frame>, String> {
    let mut rest = out;
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return Err("the audit host's answer was cut short".into());
        };
        let line = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 1..];
        let mut parts = line.splitn(3, ' ');
        let kind = parts.next().unwrap_or_default().to_string();
        let word = parts.next().unwrap_or_default().to_string();
        let name = parts.next().unwrap_or_default().to_string();
        let mut bytes = Vec::new();
        if matches!(kind.as_str(), "sig" | "reason" | "request") {
            let size: usize = word
                .parse()
                .map_err(|_| format!("the audit host's answer is garbled at `{line}`"))?;
            if size > rest.len() {
                return Err("the audit host's answer was cut short".into());
            }
            bytes = rest[..size].to_vec();
            rest = &rest[size..];
        }
        frames.push(Frame {
            kind,
            word,
            name,
            bytes,
        });
    }
    Ok(frames)
}

/// The requests in `list`'s or `get`'s frames: `alive AGE NAME` then `request SIZE NAME`.
fn found(frames: Vec<Frame>) -> Vec<Found> {
    let mut age: Option<(String, String)> = None;
    let mut found = Vec::new();
    for f in frames {
        match f.kind.as_str() {
            "alive" => age = Some((f.name, f.word)),
            "request" if plain(&f.name) => {
                let waits = age
                    .take()
                    .filter(|(name, _)| *name == f.name)
                    .and_then(|(_, age)| age.parse::<u64>().ok())
                    .is_some_and(|age| age <= STALE.as_secs());
                found.push(Found {
                    name: f.name,
                    bytes: f.bytes,
                    waits,
                });
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests;
