use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A shell asking for completions (the script of `runbook completions SHELL`) is answered
    // here, and the process ends.
    runbook::cmd::completions::answer_shell();
    let cli = runbook::cli::Cli::parse();
    match runbook::cmd::execute(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let message = error.to_string();
            if !message.is_empty() {
                runbook::ewriteln!("runbook: error: {message}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}
