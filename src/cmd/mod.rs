//! One module per subcommand; `execute` dispatches what the user typed to it.

mod approve;
mod audit;
pub mod completions;
mod drills;
mod evidence;
mod history;
mod list;
mod matching;
mod replay;
mod resume;
mod review;
mod run;
mod schema;
mod show;
mod validate;

use crate::cli::{AuditCommand, Cli, Command};
use crate::error::Result;

/// Runs the command; returns the exit code (design §9).
pub fn execute(cli: Cli) -> Result<u8> {
    let global = &cli.global;
    match cli.command {
        Command::Validate(args) => validate::execute(global, &args),
        Command::List(args) => list::execute(global, &args),
        Command::Show(args) => show::execute(global, &args),
        Command::Schema => schema::execute(),
        Command::Completions(args) => completions::execute(&args),
        Command::Man => completions::man(),
        Command::Run(args) => run::execute(global, &args, None),
        Command::Drill(args) => run::execute(global, &args.run, Some(args.allow_prod)),
        Command::Resume(args) => resume::execute(global, &args),
        Command::Audit(AuditCommand::Verify(args)) => audit::verify(global, &args),
        Command::Review(args) => review::execute(global, &args),
        Command::History(args) => history::execute(global, &args),
        Command::Approve(args) => approve::execute(global, &args),
        Command::Drills(args) => drills::execute(global, &args),
        Command::Evidence(args) => evidence::execute(global, &args),
        Command::Replay(args) => replay::execute(global, &args),
        Command::Match(args) => matching::execute(global, &args),
    }
}

/// A file the user named with `-o`, opened for writing: 0600 whatever the umask (a review or
/// an evidence page holds the trail), also when it was there before, never through a link.
pub(crate) fn create_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}
