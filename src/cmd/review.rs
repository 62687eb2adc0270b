//! `runbook review RUN...`: one run's timing review, or several runs compared, from their
//! audit files, as text, Markdown, JSON or HTML, to stdout or a file; with `--audit-host`, runs
//! of the team's record too.

use std::io::{BufWriter, Write};

use crate::cli::config::Config;
use crate::cli::{ReviewArgs, ReviewFormat};
use crate::error::{Error, Result, exit};
use crate::review::{self, Comparison, Review, html, json, markdown, text};

pub(super) fn execute(config: &Config, args: &ReviewArgs) -> Result<u8> {
    let lookup = super::union::find(config, &args.ssh, &args.runs)?;
    let mut reviews: Vec<Review> = Vec::with_capacity(args.runs.len());
    let mut diverged = Vec::new();
    for (run, found) in args.runs.iter().zip(&lookup.runs) {
        if reviews.iter().any(|r| r.path == found.shown) {
            return Err(Error::usage(format!(
                "`{run}` names a run given twice ({})",
                found.shown
            )));
        }
        let mut review = review::load(&found.path)?;
        review.path = found.shown.clone();
        reviews.push(review);
        diverged.extend(found.diverged.clone());
    }
    drop(lookup);
    let format = args.format.unwrap_or_else(|| inferred(args.output.as_deref()));
    let comparison = (reviews.len() > 1).then(|| Comparison::new(&reviews.iter().collect::<Vec<_>>()));
    let comparison = comparison.as_ref();
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        let mut out = BufWriter::with_capacity(1 << 16, out);
        match format {
            ReviewFormat::Text => out.write_all(text::render(&reviews, comparison).as_bytes())?,
            ReviewFormat::Md => out.write_all(markdown::render(&reviews, comparison).as_bytes())?,
            ReviewFormat::Json => json::write(&mut out, &reviews, comparison)?,
            ReviewFormat::Html => out.write_all(html::render(&reviews, comparison).as_bytes())?,
        }
        out.flush()
    };
    match &args.output {
        Some(file) => super::create_private(file)
            .and_then(|mut f| write(&mut f))
            .map_err(|e| Error::runtime(format!("cannot write the review to `{}`: {e}", file.display())))?,
        None => match write(&mut std::io::stdout().lock()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(exit::OK),
            Err(e) => return Err(Error::runtime(format!("cannot write to stdout: {e}"))),
        },
    }
    // A tampered file is reviewed up to the break, and said loudly, but never passes quietly.
    let tampered: Vec<&Review> = reviews.iter().filter(|r| r.tampered()).collect();
    for r in &tampered {
        crate::stderr::ewriteln!("runbook: {}", r.integrity_warning().unwrap_or_default());
    }
    // The team's record (design §19): a run whose two copies differ is tampered.
    for why in &diverged {
        crate::stderr::ewriteln!("runbook: TAMPERED: {why}");
    }
    Ok(if tampered.is_empty() && diverged.is_empty() {
        exit::OK
    } else {
        exit::RUNTIME
    })
}

/// `-o review.html` without `--format` means HTML: a text file named `.html` is never wanted.
fn inferred(output: Option<&std::path::Path>) -> ReviewFormat {
    match output
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("html" | "htm") => ReviewFormat::Html,
        Some("md" | "markdown") => ReviewFormat::Md,
        Some("json") => ReviewFormat::Json,
        _ => ReviewFormat::Text,
    }
}
