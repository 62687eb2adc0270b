//! `runbook import FILE.md [-o DIR] [--force]`: one runbook file per scenario of a Markdown
//! runbook (design §21). Each file is checked with the parser and validator `validate` uses
//! before anything is written, and nothing is written over an existing file without
//! `--force` (all files or none: a half-imported directory is worse than none).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::book::parse::{MAX_FILE_BYTES, Source};
use crate::cli::ImportArgs;
use crate::error::{Error, Result, exit};
use crate::import::{self, Imported};
use crate::output;

pub(super) fn execute(args: &ImportArgs) -> Result<u8> {
    let shown = args.file.display().to_string();
    let text = read(&args.file).map_err(|why| {
        Error::usage(format!(
            "{shown}: cannot import it: {why}\n  help: give the path of a Markdown file (at most 1 MiB of UTF-8 text)"
        ))
    })?;
    let (imported, skipped) = import::import(&shown, &text);
    for s in &skipped {
        crate::stderr::ewriteln!("{shown}:{}: skipped `{}`: {}", s.line, s.heading, s.why);
    }
    if imported.is_empty() {
        let why = if skipped.is_empty() {
            "it has no `##` heading (one per scenario) and no `#` headings to take instead".to_string()
        } else {
            format!("none of its {} section(s) has steps", skipped.len())
        };
        crate::stderr::ewriteln!(
            "{shown}: nothing to import: {why}\n  help: a scenario is a `##` heading followed by a numbered list, a checklist (`- [ ]`), `###` step headings or shell code blocks (docs/import.md)"
        );
        return Err(Error::Exit(exit::USAGE));
    }
    check(&imported)?;
    let paths: Vec<PathBuf> = imported
        .iter()
        .map(|i| args.output.join(format!("{}.yaml", i.id)))
        .collect();
    if !args.force {
        let there: Vec<String> = paths
            .iter()
            .filter(|p| p.symlink_metadata().is_ok())
            .map(|p| p.display().to_string())
            .collect();
        if !there.is_empty() {
            return Err(Error::usage(format!(
                "{} already there: {}; nothing was written\n  help: import into another directory (-o DIR), or pass --force to overwrite them",
                if there.len() == 1 {
                    "a runbook file is"
                } else {
                    "runbook files are"
                },
                there.join(", ")
            )));
        }
    }
    std::fs::create_dir_all(&args.output)
        .map_err(|e| Error::runtime(format!("cannot create {}: {e}", args.output.display())))?;
    let mut report = String::new();
    for (item, path) in imported.iter().zip(&paths) {
        write(path, &item.yaml, args.force)
            .map_err(|e| Error::runtime(format!("cannot write {}: {e}", path.display())))?;
        report.push_str(&format!(
            "wrote {}: {} steps, {} to review ({})\n",
            path.display(),
            item.steps,
            item.reviews,
            item.heading
        ));
    }
    output::print(&report)?;
    crate::stderr::ewriteln!(
        "next: read each `# review:` comment in them, then `runbook validate {}`",
        args.output.display()
    );
    Ok(exit::OK)
}

/// The Markdown file's text: a regular file of at most `MAX_FILE_BYTES` of UTF-8.
fn read(path: &Path) -> std::result::Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if meta.is_dir() {
        return Err("it is a directory".into());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err("it is larger than 1 MiB".into());
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "it is not UTF-8 text (byte {} is not)",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Every file parses and validates (calls among them resolved) before any is written: an
/// import that writes what `validate` refuses is a bug of the import, said as such.
fn check(imported: &[Imported]) -> Result<()> {
    let ids: BTreeSet<String> = imported.iter().map(|i| i.id.clone()).collect();
    let mut failed = false;
    for item in imported {
        let name = format!("{}.yaml", item.id);
        let source = Source::from_bytes(&name, item.yaml.clone().into_bytes())
            .map_err(|d| Error::runtime(d.message))?;
        let diagnostics = match crate::book::validate::parse(&source) {
            Ok(runbook) => crate::book::validate::validate(&source, &runbook, Some(&ids)),
            Err(diagnostics) => diagnostics,
        };
        for d in diagnostics.iter().filter(|d| d.is_error()) {
            failed = true;
            crate::stderr::ewrite!("{}", d.render(Some(&source.text)));
        }
    }
    if failed {
        return Err(Error::runtime(
            "the imported runbooks do not validate (a bug of `runbook import`: please report it with the Markdown file); nothing was written",
        ));
    }
    Ok(())
}

/// Writes a new file (or, with `force`, over one), never through a symbolic link.
fn write(path: &Path, text: &str, force: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).custom_flags(libc::O_NOFOLLOW);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
