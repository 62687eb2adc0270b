//! Writing a command's data to stdout, where a closed pipe (`runbook list | head`) is success.

use std::io::Write;

use crate::error::{Error, exit};

/// Writes `text` to stdout; a broken pipe ends the program quietly with success.
pub(crate) fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::Exit(exit::OK)),
        Err(e) => Err(Error::runtime(format!("cannot write to stdout: {e}"))),
    }
}
