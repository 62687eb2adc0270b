//! `runbook show RUNBOOK`: the runbook as a readable document (text or Markdown) or a Mermaid
//! flowchart, from the same YAML that executes, so the printed plan cannot drift from the run.

use crate::book::catalog;
use crate::book::parse::Source;
use crate::cli::config::Config;
use crate::cli::{ShowArgs, ShowFormat};
use crate::error::{Error, Result, exit};
use crate::output;
use crate::render;

pub(super) fn execute(config: &Config, args: &ShowArgs) -> Result<u8> {
    let path = catalog::resolve(&config.catalog, &args.runbook)?;
    let source = Source::read(&path).map_err(|d| {
        crate::stderr::ewrite!("{}", d.render(None));
        Error::Exit(exit::USAGE)
    })?;
    let runbook = source.parse().map_err(|d| {
        crate::stderr::ewrite!("{}", d.render(Some(&source.text)));
        Error::Exit(exit::USAGE)
    })?;
    let unreadable = crate::book::validate::unreadable_values(&source, &runbook);
    if !unreadable.is_empty() {
        for d in &unreadable {
            crate::stderr::ewrite!("{}", d.render(Some(&source.text)));
        }
        return Err(Error::Exit(exit::USAGE));
    }
    let document = match args.format {
        ShowFormat::Text => render::text(&runbook),
        ShowFormat::Md => render::markdown(&runbook),
        ShowFormat::Mermaid => render::mermaid(&runbook),
    };
    output::print(&document)?;
    Ok(exit::OK)
}
