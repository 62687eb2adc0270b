//! `runbook match --alert FILE`: the runbooks of the catalog an alert is for (design §15).

use crate::book::catalog::{self, Entry};
use crate::cli::MatchArgs;
use crate::cli::config::Config;
use crate::error::{Error, Result, exit};

pub(super) fn execute(config: &Config, args: &MatchArgs) -> Result<u8> {
    let alert = crate::alert::Alert::read(&args.alert)?;
    let mut found = Vec::new();
    for (id, path) in catalog::index(&config.catalog) {
        let Ok(Entry {
            parsed: Ok(runbook), ..
        }) = Entry::load(&path)
        else {
            continue;
        };
        if let Some(why) = alert.matches(&runbook) {
            found.push(serde_json::json!({
                "id": id,
                "title": runbook.title,
                "path": path.display().to_string(),
                "why": why,
            }));
        }
    }
    let text = if args.json {
        format!(
            "{}\n",
            serde_json::to_string_pretty(&found)
                .map_err(|e| Error::runtime(format!("cannot write JSON: {e}")))?
        )
    } else {
        found
            .iter()
            .map(|m| {
                format!(
                    "{}\t{}\t({})\n",
                    m["id"].as_str().unwrap_or_default(),
                    crate::secrets::escape::value(m["title"].as_str().unwrap_or_default()),
                    m["why"].as_str().unwrap_or_default()
                )
            })
            .collect()
    };
    crate::output::print(&text)?;
    if found.is_empty() {
        crate::stderr::ewriteln!(
            "runbook: no runbook of the catalog matches this {} alert",
            alert.kind.as_str()
        );
        return Ok(exit::RUNTIME);
    }
    Ok(exit::OK)
}
