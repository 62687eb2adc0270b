//! `runbook history`: past runs of the audit dir, one line each (or JSON), newest first,
//! filtered by runbook, mode and date.

use crate::cli::config::Config;
use crate::cli::{HistoryArgs, HistoryMode};
use crate::error::{Error, Result, exit};
use crate::output;
use crate::review::history::{self, Filter};

pub(super) fn execute(config: &Config, args: &HistoryArgs) -> Result<u8> {
    let dir = config.audit_dir.clone();
    let filter = Filter {
        runbook: args.runbook.clone(),
        mode: args.mode.map(|m| match m {
            HistoryMode::Drill => "drill".to_string(),
            HistoryMode::Incident => "incident".to_string(),
        }),
        since: args.since,
    };
    let (runs, warnings) = history::scan(&dir, &filter)?;
    for warning in &warnings {
        crate::stderr::ewriteln!("runbook: {warning}");
    }
    if args.json {
        let text = serde_json::to_string_pretty(&runs)
            .map_err(|e| Error::runtime(format!("cannot serialize the history: {e}")))?;
        output::print(&format!("{text}\n"))?;
    } else if runs.is_empty() {
        crate::stderr::ewriteln!(
            "no runs in `{}` match (set the audit dir with --audit-dir or RUNBOOK_AUDIT_DIR)",
            dir.display()
        );
    } else {
        output::print(&history::render(&runs))?;
    }
    Ok(exit::OK)
}
