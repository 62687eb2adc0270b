//! Reads what `copy.sh` sends (`run RUN`, `trail SIZE RUN`, `file SIZE RUN/NAME`, `missing
//! RUN`, `end`) into the private directory: every name checked to stay in it, every file new
//! (0600, never through a link), every read bounded by `STALL`.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use crate::transport::audit_host::{STALL, receive_file, spawn, within};
use crate::transport::{Ssh, Started};

/// What one request brought.
#[derive(Debug, Default)]
pub(super) struct Received {
    /// `list`: the run ids there.
    pub listed: Vec<String>,
    /// The trails copied.
    pub trails: Vec<String>,
}

/// Runs `command` (one of our fixed scripts) over `ssh` and reads its answer into `dir`.
/// `Err`: why not, with what the shell there said.
pub(super) async fn run(ssh: &Ssh, command: &str, dir: &Path) -> Result<Received, String> {
    // Its stdin is closed at once: the script reads nothing.
    let Started {
        child,
        stdout,
        mut stderr,
        ..
    } = (spawn(ssh, command.to_string()).await).map_err(|e| format!("cannot start a shell there: {e}"))?;
    let mut reader = BufReader::new(stdout);
    let read = read_all(&mut reader, dir).await;
    let mut said = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut said)).await;
    // Its exit status says why it stopped early (a stalled shell there is left to the
    // master's close).
    let wait = if read.is_ok() {
        STALL
    } else {
        Duration::from_secs(2)
    };
    let status = tokio::time::timeout(wait, child.wait()).await;
    let failed = match (&read, status) {
        // `cd` failed: the directory is not there, or not ours to read.
        (_, Ok(Ok(s))) if s.code() == Some(3) => Some("its directory cannot be read".to_string()),
        (Err(why), _) => Some(why.clone()),
        (Ok(_), Ok(Ok(s))) if s.success() => None,
        (Ok(_), Ok(Ok(s))) => Some(format!("its shell ended with {s}")),
        (Ok(_), Ok(Err(e))) => Some(format!("the connection failed: {e}")),
        (Ok(_), Err(_)) => Some(format!("its shell did not end within {} s", wait.as_secs())),
    };
    match failed {
        None => read,
        Some(why) => {
            let said = crate::secrets::escape::value(said.trim()).into_owned();
            Err(if said.is_empty() {
                why
            } else {
                format!("{why} ({said})")
            })
        }
    }
}

pub(super) async fn read_all<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    dir: &Path,
) -> Result<Received, String> {
    let mut received = Received::default();
    loop {
        let line = header(reader).await?;
        let (kind, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match kind {
            "end" if rest.is_empty() => return Ok(received),
            "run" => received.listed.push(run_id(rest)?.to_string()),
            // Asked for and gone meanwhile: the caller finds it has no copy.
            "missing" => {}
            "trail" => {
                let (size, run) = sized(rest, &line)?;
                let run = run_id(run)?;
                receive_file(reader, size, &dir.join(format!("{run}.jsonl")), false).await?;
                received.trails.push(run.to_string());
            }
            "file" => {
                let (size, name) = sized(rest, &line)?;
                let (run, file) = name
                    .split_once('/')
                    .ok_or_else(|| format!("unexpected answer `{line}`"))?;
                let run = run_id(run)?;
                if !plain(file) {
                    return Err(format!(
                        "it sends an output file `{file}` that is not a plain file name"
                    ));
                }
                let outputs = dir.join(run);
                if !outputs.is_dir() {
                    std::fs::DirBuilder::new()
                        .mode(0o700)
                        .create(&outputs)
                        .map_err(|e| format!("cannot create `{}`: {e}", outputs.display()))?;
                }
                receive_file(reader, size, &outputs.join(file), false).await?;
            }
            _ => return Err(format!("unexpected answer `{line}`")),
        }
    }
}

/// A run id that is a plain file name, as the audit dir names trails.
fn run_id(run: &str) -> Result<&str, String> {
    if plain(run) && crate::audit::file_safe(run) == run {
        Ok(run)
    } else {
        Err(format!("it names a run `{run}` that is not a plain file name"))
    }
}

/// A name that stays in its directory.
fn plain(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains('/') && !name.contains('\0')
}

async fn header<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Result<String, String> {
    let mut line = Vec::new();
    let n = within(reader.read_until(b'\n', &mut line)).await?;
    if n == 0 || line.last() != Some(&b'\n') {
        return Err("it ended before everything was sent".into());
    }
    line.pop();
    String::from_utf8(line).map_err(|_| "it sent a name that is not UTF-8".to_string())
}

/// `SIZE NAME` of a `trail` or `file` header.
fn sized<'a>(rest: &'a str, line: &str) -> Result<(u64, &'a str), String> {
    match rest.split_once(' ') {
        Some((size, name)) if !name.is_empty() => size
            .parse()
            .map(|size| (size, name))
            .map_err(|_| format!("unexpected answer `{line}`")),
        _ => Err(format!("unexpected answer `{line}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames as the script sends them, read into a directory; names that would leave it
    /// are refused.
    #[tokio::test]
    async fn reads_frames_into_the_directory_and_refuses_names_that_leave_it() {
        let dir = tempfile::tempdir().unwrap();
        let sent = b"run r1\ntrail 3 r1\nabcfile 2 r1/s1-1.out\nxymissing r2\nend\n";
        let got = read_all(&mut BufReader::new(&sent[..]), dir.path())
            .await
            .unwrap();
        assert_eq!(
            (got.listed, got.trails),
            (vec!["r1".to_string()], vec!["r1".to_string()])
        );
        assert_eq!(std::fs::read(dir.path().join("r1.jsonl")).unwrap(), b"abc");
        assert_eq!(std::fs::read(dir.path().join("r1/s1-1.out")).unwrap(), b"xy");
        for bad in [
            &b"trail 1 ../x\nz\nend\n"[..],
            b"file 1 r1/../x\nz\nend\n",
            b"file 1 .r/x\nz\nend\n",
            b"trail 9 r3\nshort",
            b"trail x r3\n",
            b"run r4\n",
        ] {
            let dir = tempfile::tempdir().unwrap();
            assert!(
                read_all(&mut BufReader::new(bad), dir.path()).await.is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
