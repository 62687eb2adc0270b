//! A trail on the team's audit host (design §19), as a watch `Source`: one SSH connection
//! (`Ssh::connect`, the options targets are reached with), the run resolved from the trails
//! there, then `tail -c +N -f` of `PATH/<run-id>.jsonl` whose stdout bytes are handed over as
//! they come. Read-only there. Values reach the remote shell as positional arguments, never as
//! command text. A dropped connection is reconnected at once, from the byte reached; a
//! reconnection that fails, or a connection lost again within 30 s of one, ends the watch.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openssh::{ChildStdin, ChildStdout, Session, Stdio};
use tokio::io::AsyncReadExt;

use super::source::{Next, Source};
use crate::error::Error;
use crate::transport::{AuditHost, Ssh, SshOptions, Started};

const TAIL: &str = include_str!("remote/tail.sh");

/// The trails of the directory, newest modified first (`ls -t`); the newest *run* is chosen
/// here from their names, as `last` is locally.
const LIST: &str = r#"cd -- "$1" || exit 3
ls -t | while IFS= read -r f; do
  case $f in *.jsonl) if [ -f "$f" ]; then printf '%s\n' "$f"; fi ;; esac
done"#;

/// Bytes read at most at once.
const CHUNK: usize = 64 << 10;

/// A connection lost within this long of its reconnection is not reconnected again.
const RECONNECT_CALM: Duration = Duration::from_secs(30);

/// How long hanging up may take (the remote tail ended, the connection closed).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

pub(crate) struct Remote {
    runtime: tokio::runtime::Runtime,
    host: AuditHost,
    opts: SshOptions,
    run: String,
    conn: Option<Conn>,
    /// Bytes of the trail handed over so far.
    offset: u64,
    /// When it last reconnected: a connection lost again within `RECONNECT_CALM` of that is
    /// not tried again (a link that cannot hold).
    reconnected: Option<Instant>,
}

struct Conn {
    ssh: Ssh,
    child: openssh::Child<Arc<Session>>,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    /// What the remote side said on stderr (tail's complaints).
    said: Arc<Mutex<String>>,
}

impl Remote {
    /// Connects to `host` and resolves `run` (`last`, a run id or a unique prefix of one) among
    /// its trails; returns the source, following from the first byte, and the run id.
    pub(crate) fn open(host: &AuditHost, opts: &SshOptions, run: &str) -> Result<(Remote, String), Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::runtime(format!("cannot start the SSH client: {e}")))?;
        let ssh = runtime.block_on(connect(host, opts))?;
        let listed = runtime.block_on(list(&ssh, host));
        let names = match listed {
            Ok(names) => names,
            Err(e) => {
                runtime.block_on(ssh.close());
                return Err(e);
            }
        };
        let id = match resolve(&names, run, host) {
            Ok(id) => id,
            Err(e) => {
                runtime.block_on(ssh.close());
                return Err(e);
            }
        };
        let mut remote = Remote {
            runtime,
            host: host.clone(),
            opts: opts.clone(),
            run: id.clone(),
            conn: None,
            offset: 0,
            reconnected: None,
        };
        let conn = remote.runtime.block_on(tail(ssh, host, &id, 0))?;
        remote.conn = Some(conn);
        Ok((remote, id))
    }

    /// The connection ended without the trail's tail saying why: lost. Reconnects, unless it
    /// did so a moment ago.
    fn lost(&mut self, why: String) -> Result<(), Error> {
        if let Some(conn) = self.conn.take() {
            self.runtime.block_on(conn.close());
        }
        let fail = |why: &str| {
            Error::runtime(format!(
                "lost the audit host {} while following {} ({why}); stopped watching",
                self.host, self.run
            ))
        };
        if self.reconnected.is_some_and(|at| at.elapsed() < RECONNECT_CALM) {
            return Err(fail(&format!(
                "{why}, again within {} s",
                RECONNECT_CALM.as_secs()
            )));
        }
        self.reconnected = Some(Instant::now());
        let again = self.runtime.block_on(async {
            let ssh = connect(&self.host, &self.opts).await?;
            tail(ssh, &self.host, &self.run, self.offset).await
        });
        match again {
            Ok(conn) => {
                crate::stderr::ewriteln!(
                    "runbook: the connection to the audit host dropped ({why}); reconnected, following on from byte {}",
                    self.offset
                );
                self.conn = Some(conn);
                Ok(())
            }
            Err(e) => Err(fail(&format!("{why}; then {e}"))),
        }
    }
}

impl Source for Remote {
    fn next(&mut self, wait: Duration) -> Result<Next, Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::runtime("the audit host's connection is closed"));
        };
        let heard = conn.said.clone();
        let mut buf = vec![0u8; CHUNK];
        let read = self
            .runtime
            .block_on(async { tokio::time::timeout(wait, conn.stdout.read(&mut buf)).await });
        if let Some(shrank) = self.shrank() {
            return Err(shrank);
        }
        match read {
            Err(_) => Ok(Next::Idle),
            Ok(Ok(n)) if n > 0 => {
                buf.truncate(n);
                self.offset += n as u64;
                Ok(Next::Bytes(buf))
            }
            ended => {
                // Its stderr may come a moment after its stdout ended.
                let said = self.runtime.block_on(async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    heard.lock().map(|s| s.trim().to_string()).unwrap_or_default()
                });
                if !said.is_empty() {
                    return Err(Error::runtime(format!(
                        "`{}` cannot be followed any more: {said}; stopped watching",
                        self.name()
                    )));
                }
                let why = match ended {
                    Ok(Err(e)) => format!("the connection failed: {e}"),
                    _ => "the connection ended".to_string(),
                };
                self.lost(why)?;
                Ok(Next::Idle)
            }
        }
    }

    fn name(&self) -> String {
        format!("{}/{}.jsonl", self.host, self.run)
    }

    /// A trail truncated there is followed from its new start by `tail`, which says so on
    /// stderr, maybe after those bytes broke the chain: then that is the story told.
    fn explain(&mut self, error: Error) -> Error {
        if self.conn.is_some() {
            let said = self.conn.as_ref().map(|c| c.said.clone());
            self.runtime.block_on(async {
                for _ in 0..10 {
                    if said
                        .as_ref()
                        .is_some_and(|s| s.lock().is_ok_and(|s| s.contains("truncated")))
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            });
        }
        self.shrank().unwrap_or(error)
    }
}

impl Remote {
    /// `tail` said the trail was truncated there.
    fn shrank(&self) -> Option<Error> {
        let said = self.conn.as_ref()?.said.lock().ok()?.trim().to_string();
        said.contains("truncated").then(|| {
            Error::runtime(format!(
                "`{}` shrank on the audit host ({said}): an audit trail is only ever appended to; stopped watching",
                self.name()
            ))
        })
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.runtime.block_on(conn.close());
        }
    }
}

impl Conn {
    /// Hangs up: end of file on the remote side's stdin ends its tail; then the connection.
    async fn close(self) {
        let Conn {
            ssh, child, stdin, ..
        } = self;
        drop(stdin);
        let _ = tokio::time::timeout(CLOSE_WAIT, child.wait()).await;
        let _ = tokio::time::timeout(CLOSE_WAIT, ssh.close()).await;
    }
}

async fn connect(host: &AuditHost, opts: &SshOptions) -> Result<Ssh, Error> {
    Ssh::connect(&host.dest(), opts)
        .await
        .map_err(|e| Error::runtime(format!("the audit host {host} cannot be reached: {e}")))
}

/// The trails' file names in the audit host's directory, newest modified first.
async fn list(ssh: &Ssh, host: &AuditHost) -> Result<Vec<String>, Error> {
    let command = host.script("rb-watch-list", LIST, &[]);
    let out = Session::to_raw_command(ssh.session(), command)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| Error::runtime(format!("cannot list the runs on the audit host {host}: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(Error::runtime(format!(
            "cannot list the runs on the audit host {host}: the directory `{}` cannot be read there{}",
            host.path,
            if said.is_empty() {
                String::new()
            } else {
                format!(" ({said})")
            }
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// The run id `run` names among `names` (trail file names, newest modified first): `last` the
/// newest run (by the start its id begins with, then the newest written), else the id, else
/// the one id it is a prefix of.
fn resolve(names: &[String], run: &str, host: &AuditHost) -> Result<String, Error> {
    let ids: Vec<&str> = names.iter().filter_map(|n| n.strip_suffix(".jsonl")).collect();
    if run == "last" {
        let newest = ids
            .iter()
            .enumerate()
            .max_by_key(|(i, id)| (id.split('-').next().unwrap_or(""), std::cmp::Reverse(*i)))
            .map(|(_, id)| id.to_string());
        return newest.ok_or_else(|| Error::usage(format!("`last`: no runs on the audit host {host}")));
    }
    let id = run.strip_suffix(".jsonl").unwrap_or(run);
    if ids.contains(&id) {
        return Ok(id.to_string());
    }
    let matches: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|name| !id.is_empty() && name.starts_with(id))
        .collect();
    let none = || format!("no run `{run}` on the audit host {host}");
    crate::audit::one_match(matches, run, none, &format!("on the audit host {host}"))
}

/// Starts following `PATH/<run>.jsonl` from byte `offset` (0: the first).
async fn tail(ssh: Ssh, host: &AuditHost, run: &str, offset: u64) -> Result<Conn, Error> {
    let file = format!("{run}.jsonl");
    let from = (offset + 1).to_string();
    let args: [&str; 2] = [&file, &from];
    let Started {
        child,
        stdin,
        stdout,
        mut stderr,
    } = match host.start(&ssh, "rb-watch", TAIL, &args).await {
        Ok(started) => started,
        Err(e) => {
            ssh.close().await;
            return Err(Error::runtime(format!(
                "cannot follow {run} on the audit host {host}: {e}"
            )));
        }
    };
    let said = Arc::new(Mutex::new(String::new()));
    let heard = said.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = heard.lock()
                && s.len() < 4096
            {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    Ok(Conn {
        ssh,
        child,
        stdin: Some(stdin),
        stdout,
        said,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_is_the_newest_start_then_the_newest_written_and_a_prefix_must_be_unique() {
        let host = AuditHost::parse("ssh://a@h/srv/runs").unwrap();
        let names: Vec<String> = [
            "20261122T030211Z-b-2.jsonl",
            "20261122T030211Z-a-1.jsonl",
            "20261123T000000Z-old-mtime.jsonl",
            "20261101T000000Z-x.jsonl",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            resolve(&names, "last", &host).unwrap(),
            "20261123T000000Z-old-mtime"
        );
        let tie = &names[..2];
        assert_eq!(resolve(tie, "last", &host).unwrap(), "20261122T030211Z-b-2");
        assert_eq!(resolve(&names, "20261101", &host).unwrap(), "20261101T000000Z-x");
        assert_eq!(
            resolve(&names, "20261122T030211Z-a-1.jsonl", &host).unwrap(),
            "20261122T030211Z-a-1"
        );
        let many = resolve(&names, "20261122", &host).unwrap_err().to_string();
        assert!(
            many.contains("matches 2 runs on the audit host ssh://a@h/srv/runs"),
            "{many}"
        );
        let none = resolve(&names, "2099", &host).unwrap_err();
        assert_eq!(none.exit_code(), crate::error::exit::USAGE);
        assert!(
            none.to_string().contains("no run `2099` on the audit host"),
            "{none}"
        );
        let empty = resolve(&[], "last", &host).unwrap_err().to_string();
        assert!(empty.contains("no runs on the audit host"), "{empty}");
    }
}
