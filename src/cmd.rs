//! One module per subcommand; `execute` dispatches what the user typed to it.

mod approve;
mod audit;
pub(crate) mod completions;
mod drills;
mod evidence;
mod history;
mod import;
mod list;
mod matching;
mod replay;
mod resume;
mod review;
mod run;
mod schema;
mod show;
mod test;
mod union;
mod validate;
mod watch;

use crate::cli::{AuditCommand, Cli, Command};
use crate::error::Result;

/// Runs the command; returns the exit code (design §9).
pub(crate) fn execute(cli: Cli) -> Result<u8> {
    let config = &crate::cli::config::Config::resolve(&cli.global);
    match cli.command {
        Command::Validate(args) => validate::execute(config, &args),
        Command::Test(args) => test::execute(config, &args),
        Command::List(args) => list::execute(config, &args),
        Command::Show(args) => show::execute(config, &args),
        Command::Schema => schema::execute(),
        Command::Import(args) => import::execute(&args),
        Command::Completions(args) => completions::execute(&args),
        Command::Man => completions::man(),
        Command::Run(args) => run::execute(config, &args, None),
        Command::Drill(args) => run::execute(config, &args.run, Some(args.allow_prod)),
        Command::Resume(args) => resume::execute(config, &args),
        Command::Audit(AuditCommand::Verify(args)) => audit::verify(config, &args),
        Command::Review(args) => review::execute(config, &args),
        Command::History(args) => history::execute(config, &args),
        Command::Approve(args) => approve::execute(config, &args),
        Command::Drills(args) => drills::execute(config, &args),
        Command::Evidence(args) => evidence::execute(config, &args),
        Command::Replay(args) => replay::execute(config, &args),
        Command::Match(args) => matching::execute(config, &args),
        Command::Watch(args) => watch::execute(config, &args),
        Command::Pause(args) => {
            let (host, ssh) = pause_place(config, &args.place)?;
            crate::unattended::pause(
                crate::unattended::Place {
                    dir: &config.audit_dir,
                    audit_host: host.as_ref(),
                    ssh: &ssh,
                },
                args.duration,
                args.reason.as_deref(),
                &crate::identity::operator_name(args.operator.as_deref()),
            )
        }
        Command::Unpause(args) => {
            let (host, ssh) = pause_place(config, &args.place)?;
            crate::unattended::unpause(crate::unattended::Place {
                dir: &config.audit_dir,
                audit_host: host.as_ref(),
                ssh: &ssh,
            })
        }
        Command::Resolved(args) => {
            crate::unattended::resolved(&config.audit_dir, &crate::alert::Alert::read(&args.alert)?)
        }
    }
}

/// The audit host `pause` and `unpause` act on (flag, environment, else the inventory's), and
/// how it is reached.
fn pause_place(
    config: &crate::cli::config::Config,
    place: &crate::cli::PauseOptions,
) -> Result<(Option<crate::transport::AuditHost>, crate::transport::SshOptions)> {
    let host = match &config.audit_host {
        Some(host) => Some(host.clone()),
        None => crate::inventory::Inventory::load(place.inventory.as_deref())?.audit_host()?,
    };
    Ok((host, place.ssh.options()))
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
