//! `runbook completions SHELL` (not yet built).

use crate::cli::CompletionsArgs;
use crate::error::{Error, Result};

pub fn execute(_args: &CompletionsArgs) -> Result<u8> {
    Err(Error::usage("`runbook completions` is not built yet"))
}
