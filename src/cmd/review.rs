//! `runbook review RUN...`: one run's timing review, or several runs compared, from their
//! audit files, as text, Markdown, JSON or HTML, to stdout or a file.

use crate::audit;
use crate::cli::{Global, ReviewArgs, ReviewFormat};
use crate::error::{Error, Result, exit};
use crate::output;
use crate::review::{self, Comparison, html, json, markdown, text};

pub fn execute(global: &Global, args: &ReviewArgs) -> Result<u8> {
    let dir = audit::audit_dir(global.audit_dir.as_deref());
    let mut reviews = Vec::with_capacity(args.runs.len());
    for run in &args.runs {
        let path = audit::resolve_run(&dir, run)?;
        if reviews.iter().any(|r: &review::Review| r.path == path.display().to_string()) {
            return Err(Error::usage(format!("`{run}` names a run given twice ({})", path.display())));
        }
        reviews.push(review::load(&path)?);
    }
    let comparison = (reviews.len() > 1).then(|| Comparison::new(&reviews.iter().collect::<Vec<_>>()));
    let document = match args.format {
        ReviewFormat::Text => text::render(&reviews, comparison.as_ref()),
        ReviewFormat::Md => markdown::render(&reviews, comparison.as_ref()),
        ReviewFormat::Json => json::render(&reviews, comparison.as_ref())?,
        ReviewFormat::Html => html::render(&reviews, comparison.as_ref()),
    };
    match &args.output {
        Some(file) => std::fs::write(file, document).map_err(|e| {
            Error::runtime(format!("cannot write the review to `{}`: {e}", file.display()))
        })?,
        None => output::print(&document)?,
    }
    // A tampered file is reviewed up to the break, and said loudly, but never passes quietly.
    let tampered: Vec<&review::Review> = reviews.iter().filter(|r| r.tampered()).collect();
    for r in &tampered {
        eprintln!("runbook: {}", r.integrity_warning().unwrap_or_default());
    }
    Ok(if tampered.is_empty() { exit::OK } else { exit::RUNTIME })
}
