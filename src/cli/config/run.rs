//! What `run`, `drill` and `resume` were told (`RunOptions`), resolved once before anything
//! runs: the answers, the inventory, the operator's name, the SSH options, and the flags the
//! walk obeys. Nothing below reads a `RunOptions` again.

use std::path::PathBuf;
use std::time::Duration;

use crate::audit::sign::Signing;
use crate::cli::{Pair, RunOptions};
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::prompt::{Answers, Operator};
use crate::transport::SshOptions;

#[derive(Debug)]
pub(crate) struct RunConfig {
    /// `--yes`: nobody is asked; every question has its answer in `answers`.
    pub unattended: bool,
    pub answers: Answers,
    pub inventory: Inventory,
    /// `--target ROLE=DEST`, in the order given.
    pub targets: Vec<Pair>,
    /// `--set NAME=VALUE` and `--set-from NAME=SOURCE`.
    pub sets: Vec<Pair>,
    pub set_froms: Vec<Pair>,
    /// `--operator`, else `$RUNBOOK_OPERATOR`, else `$USER`, else the login name.
    pub operator_name: String,
    pub ssh: SshOptions,
    pub break_lock: bool,
    /// `--no-shell`: the step prompts offer no shell.
    pub no_shell: bool,
    /// At most this many hosts connect or run at once (`--forks`).
    pub forks: usize,
    pub signing_key: Option<PathBuf>,
    pub no_sign: bool,
    /// `--notify` URLs, `--notify-timeout` and `--otlp`, with the inventory's `notify:`.
    pub notify_urls: Vec<String>,
    pub notify_timeout: Duration,
    pub otlp: Option<String>,
    /// Where the trail is mirrored (design §19): `--audit-host`, else `RUNBOOK_AUDIT_HOST`,
    /// else the inventory's `audit_host`.
    pub audit_host: Option<crate::transport::AuditHost>,
}

impl RunConfig {
    /// `needs_terminal`: a run that will ask (not a dry run) refuses at once when prompts could
    /// not work, rather than hang waiting on a pipe.
    pub(crate) fn resolve(
        opts: &RunOptions,
        needs_terminal: bool,
        audit_host: Option<&crate::transport::AuditHost>,
    ) -> Result<RunConfig> {
        if needs_terminal {
            require_terminal(opts.yes)?;
        }
        let inventory = Inventory::load(opts.inventory.as_deref())?;
        let audit_host = match audit_host {
            Some(flag) => Some(flag.clone()),
            None => inventory.audit_host()?,
        };
        Ok(RunConfig {
            unattended: opts.yes,
            answers: Answers::new(
                opts.answers
                    .iter()
                    .map(|p| (p.name.trim().to_string(), p.value.clone())),
            ),
            inventory,
            targets: opts.targets.clone(),
            sets: opts.sets.clone(),
            set_froms: opts.set_froms.clone(),
            operator_name: crate::identity::operator_name(opts.operator.as_deref()),
            ssh: opts.ssh.options(),
            break_lock: opts.break_lock,
            no_shell: opts.no_shell,
            forks: usize::from(opts.forks),
            signing_key: opts.signing_key.clone(),
            no_sign: opts.no_sign,
            notify_urls: opts.notify.clone(),
            notify_timeout: opts.notify_timeout,
            otlp: opts.otlp.clone(),
            audit_host,
        })
    }

    /// Who answers the run's questions: the terminal, or the answers given ahead (`--yes`).
    pub(crate) fn operator(&self) -> Box<dyn Operator> {
        crate::prompt::operator(self.unattended, self.answers.clone())
    }

    /// The signing key of `--signing-key`/`RUNBOOK_SIGNING_KEY`, the agent's, or none; chosen
    /// only for a run that writes a trail (a dry run probes no agent).
    pub(crate) fn signing(&self) -> Result<Signing> {
        Signing::choose(self.signing_key.as_deref(), self.no_sign)
    }

    /// Where notifications go and the escalation deadline (webhook URLs read from their secret
    /// sources now: a missing one stops the run before anything runs).
    pub(crate) fn notify(
        &self,
        escalate: Option<&crate::book::runbook::Escalate>,
    ) -> Result<crate::listen::notify::Setup> {
        crate::listen::notify::Setup::resolve(
            &self.inventory.notify,
            &self.notify_urls,
            self.notify_timeout,
            escalate,
            self.otlp.as_deref(),
        )
    }
}

/// Refuses at once when prompts could not work: never hang waiting on a pipe.
fn require_terminal(yes: bool) -> Result<()> {
    if yes || crate::prompt::has_terminal() {
        return Ok(());
    }
    Err(Error::usage(
        "no terminal to ask on (stdin or stderr is not a TTY), and --yes was not given: nothing was run.\n  To run unattended: --yes, with --answer STEP=VALUE for each typed confirmation, decision and manual step.\n  To see the plan: --dry-run.",
    ))
}
