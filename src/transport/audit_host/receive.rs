//! Receiving what a fixed script on the audit host sends: a read that gives up when nothing
//! comes for a while, and a file copied from the stream into a new private file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

/// How long a transfer may stall before it is given up.
pub(crate) const STALL: Duration = Duration::from_secs(30);

/// `read`, given up after `STALL` without progress.
pub(crate) async fn within<T>(
    read: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(STALL, read).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("the connection failed: {e}")),
        Err(_) => Err(format!("nothing came for {} s", STALL.as_secs())),
    }
}

/// `size` bytes of `reader` into the new file `path` (0600, never an existing one or a link),
/// on disk before this returns when `durable`.
pub(crate) async fn receive_file<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    size: u64,
    path: &Path,
    durable: bool,
) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| format!("cannot create `{}`: {e}", path.display()))?;
    let mut left = size;
    let mut buf = vec![0u8; 64 << 10];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = within(reader.read(&mut buf[..want])).await?;
        if n == 0 {
            return Err("it ended before everything was sent".into());
        }
        file.write_all(&buf[..n])
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        left -= n as u64;
    }
    if durable {
        file.sync_all()
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    }
    Ok(())
}
