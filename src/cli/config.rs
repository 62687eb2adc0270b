//! What the user typed, resolved once into what every command uses (issue 26): where runbooks
//! are looked up and where trails live, from the flags, then the environment, then the
//! defaults; and for `run`, `drill` and `resume`, a `RunConfig`. Nothing below reads `--dir`,
//! `--audit-dir`, `RUNBOOK_PATH`, `RUNBOOK_AUDIT_DIR` or a run's flags again.

use std::path::PathBuf;

use crate::cli::Global;

mod run;

pub(crate) use run::RunConfig;

#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The catalog directories, in lookup order (`--dir`, else `RUNBOOK_PATH`, else
    /// `./runbooks`).
    pub catalog: Vec<PathBuf>,
    /// The audit dir (`--audit-dir`, else `RUNBOOK_AUDIT_DIR`, else the XDG state dir).
    pub audit_dir: PathBuf,
    /// `--audit-host`, else `RUNBOOK_AUDIT_HOST` (clap reads both); a run falls back on the
    /// inventory's `audit_host` (`RunConfig::resolve`).
    pub audit_host: Option<crate::transport::AuditHost>,
}

impl Config {
    pub(crate) fn resolve(global: &Global) -> Config {
        Config {
            catalog: crate::book::catalog::dirs(&global.dirs),
            audit_dir: crate::audit::audit_dir(global.audit_dir.as_deref()),
            audit_host: global.audit_host.clone(),
        }
    }
}
