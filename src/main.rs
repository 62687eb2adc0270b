use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = runbook::cli::Cli::parse();
    match runbook::cmd::execute(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let message = error.to_string();
            if !message.is_empty() {
                eprintln!("runbook: error: {message}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}
