//! What `pause`, `unpause` and `resolved` take (design §20).

use std::path::PathBuf;

use clap::Args;

use super::SshArgs;

#[derive(Debug, Args)]
pub(crate) struct PauseArgs {
    /// Pause for this long (`30m`, `2h`, `1d`); without it, until `runbook unpause`
    #[arg(long = "for", value_name = "DURATION", value_parser = crate::duration::parse_arg)]
    pub duration: Option<std::time::Duration>,
    /// Why (shown in every refusal)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Who pauses [default: $RUNBOOK_OPERATOR, else $USER]
    #[arg(long, value_name = "NAME", env = "RUNBOOK_OPERATOR")]
    pub operator: Option<String>,
    #[command(flatten)]
    pub place: PauseOptions,
}

#[derive(Debug, Args)]
pub(crate) struct UnpauseArgs {
    #[command(flatten)]
    pub place: PauseOptions,
}

/// Where `pause` and `unpause` act: the audit host of the flag, the environment or the
/// inventory, reached with the SSH options; else the audit dir.
#[derive(Debug, Args)]
pub(crate) struct PauseOptions {
    /// The inventory naming the audit host (`audit_host:`) [default: $RUNBOOK_INVENTORY, else ./inventory.yaml when present]
    #[arg(long, value_name = "FILE", env = "RUNBOOK_INVENTORY")]
    pub inventory: Option<PathBuf>,
    /// How the audit host is reached (with --audit-host, or the inventory's audit_host)
    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ResolvedArgs {
    /// The resolved Alertmanager (v4) or PagerDuty (v3) webhook payload: a file, or `-` for stdin
    #[arg(long, value_name = "FILE|-")]
    pub alert: String,
}
