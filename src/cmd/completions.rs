//! `runbook completions SHELL` and the man page (`runbook man`, hidden): both generated from the
//! clap declaration in `cli.rs`, so they list exactly the commands and options that exist.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::{Error, Result, exit};
use crate::output;

pub fn execute(args: &CompletionsArgs) -> Result<u8> {
    let mut buffer = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "runbook", &mut buffer);
    output::print(&String::from_utf8_lossy(&buffer))?;
    Ok(exit::OK)
}

/// Prints the man page (roff), as committed in `docs/runbook.1`.
pub fn man() -> Result<u8> {
    let mut buffer = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buffer)
        .map_err(|e| Error::runtime(format!("cannot render the man page: {e}")))?;
    output::print(&String::from_utf8_lossy(&buffer))?;
    Ok(exit::OK)
}
