//! The floor of a warm step, for `scripts/bench-run.sh` part 1: what a session over a warm
//! master's control socket costs with no runbook around it. It opens N sessions one after
//! another through the `openssh` crate's native mux, as runbook does, and waits for each:
//! first `true` as it is, then `true` as runbook sends a step (its wrapper, the script on
//! stdin, stdout and stderr read to their end).
//! Usage: session_floor SOCKET [N]; prints the two costs in ms per session: "BARE WRAPPED".

use std::path::PathBuf;
use std::time::Instant;

use openssh::{Session, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Failure = Box<dyn std::error::Error>;

/// `n` sessions one after another, each running `command` with `input` on its stdin; the
/// mean wall time of one, in ms.
async fn per_session(session: &Session, n: u32, command: &str, input: &str) -> Result<f64, Failure> {
    let start = Instant::now();
    for _ in 0..n {
        let mut child = session
            .raw_command(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await?;
        let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
            (child.stdin().take(), child.stdout().take(), child.stderr().take())
        else {
            return Err("a pipe was not opened".into());
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        // Moved in, so that stdin is closed (dropped) once written: the wrapper reads its
        // script to the end of its input.
        let write = async move {
            stdin.write_all(input.as_bytes()).await?;
            stdin.shutdown().await
        };
        let (written, read_out, read_err) =
            tokio::join!(write, stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        written?;
        read_out?;
        read_err?;
        let status = child.wait().await?;
        if !status.success() {
            return Err(format!("`{command}` failed ({status}): {}", String::from_utf8_lossy(&err)).into());
        }
    }
    Ok(start.elapsed().as_secs_f64() * 1000.0 / f64::from(n))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let socket = args.next().ok_or("usage: session_floor SOCKET [N]")?;
    let n: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(200);
    // Resumed, the session is not ours to close: the master outlives this program.
    let session = Session::resume_mux(PathBuf::from(socket).into_boxed_path(), None);
    let bare = per_session(&session, n, "true", "").await?;
    let (wrapper, script) = runbook::testing::transport::wire_form("true")?;
    let wrapped = per_session(&session, n, &wrapper, &script).await?;
    println!("{bare:.2} {wrapped:.2}");
    Ok(())
}
