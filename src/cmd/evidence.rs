//! `runbook evidence RUN -o FILE.html` (design §16): the run's trail verified as `audit verify`
//! does, the runbook file as it was run found and checked against the trail's `file_sha256`,
//! and one self-contained page written (`review/evidence.rs`). Exit 0 written, 1 the trail is
//! tampered or not signed by `--signers` (the page is still written, and says so at the top),
//! 2 bad input: an unknown run, or no runbook file with the trail's SHA-256.
//! With `--audit-host`, RUN is looked up in the team's record too (design §19).

use std::path::{Path, PathBuf};

use crate::audit::{self, Status};
use crate::cli::EvidenceArgs;
use crate::cli::config::Config;
use crate::error::{Error, Result, exit};
use crate::review::evidence::{self, Evidence, MAX_EMBEDDED_TRAIL, RunbookFile};
use crate::review::{self, Review};

pub(super) fn execute(config: &Config, args: &EvidenceArgs) -> Result<u8> {
    if let Some(file) = &args.runbook
        && !file.exists()
    {
        return Err(Error::usage(format!(
            "--runbook `{}`: no such file (give the runbook file as it was run, e.g. from `git show REV:PATH > FILE`)",
            file.display()
        )));
    }
    let (found, _copies) = super::union::find_one(config, &args.ssh, &args.run)?;
    let path = found.path.clone();
    let shown = Path::new(&found.shown);
    let mut review = review::load(&path)?;
    review.path = found.shown.clone();
    let audit::TrailCheck {
        verification,
        outputs,
        signatures,
        mut problems,
    } = audit::check(&path, args.signers.as_deref())?;
    // The team's record (design §19): two copies of the run that differ are tampered.
    problems.extend(found.diverged.clone());
    let tampered = matches!(verification.status, Status::Tampered { .. });
    let untrusted = tampered || !problems.is_empty();

    let runbook = match runbook_as_run(config, (&path, shown), &review, args.runbook.as_deref()) {
        Ok((found, text)) => RunbookFile::Matched {
            path: found.display().to_string(),
            text,
        },
        // A sound trail's evidence without the runbook it ran would be no evidence: refused.
        Err(reason) if !untrusted => return Err(Error::usage(reason)),
        Err(reason) => RunbookFile::Missing { reason },
    };

    let sealed = verification.status == Status::IntactSealed;
    let seal = verification
        .signatures
        .last()
        .filter(|s| sealed && Some(s.seq) == verification.last_seq);
    let principal = match (&args.signers, seal) {
        (Some(file), Some(seal)) => Some((
            file.display().to_string(),
            audit::sign::check(
                &seal.signature,
                seal.hash.as_bytes(),
                audit::sign::Against::AllowedSigners(file),
            )
            .ok(),
        )),
        (Some(file), None) => Some((file.display().to_string(), None)),
        _ => None,
    };
    let bytes =
        std::fs::read(&path).map_err(|e| Error::runtime(format!("cannot read `{}`: {e}", path.display())))?;
    let trail_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{}.jsonl", review.run));
    let page = evidence::render(&Evidence {
        review: &review,
        trail: (bytes.len() <= MAX_EMBEDDED_TRAIL).then_some(bytes.as_slice()),
        trail_name,
        chain: super::audit::describe(shown, &verification),
        outputs: (outputs.checked, outputs.bytes),
        signatures: signatures.summary(),
        problems: problems.clone(),
        seal_signature: seal.map(|s| &s.signature),
        seal_hash: if sealed {
            verification.head.as_deref()
        } else {
            None
        },
        signers: principal,
        runbook,
        generated: format!(
            "{} by runbook {}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ"),
            env!("CARGO_PKG_VERSION")
        ),
    });
    super::create_private(&args.output)
        .and_then(|mut f| std::io::Write::write_all(&mut f, page.as_bytes()))
        .map_err(|e| {
            Error::runtime(format!(
                "cannot write the evidence page to `{}`: {e}",
                args.output.display()
            ))
        })?;
    if untrusted {
        crate::stderr::ewriteln!(
            "runbook: {}: the trail does not hold; the page says so at the top:",
            shown.display()
        );
        if let Some(warning) = review.integrity_warning().filter(|_| tampered) {
            crate::stderr::ewriteln!("  {warning}");
        }
        for p in &problems {
            crate::stderr::ewriteln!("  TAMPERED or untrusted: {p}");
        }
        crate::stderr::ewriteln!("wrote {}", args.output.display());
        return Ok(exit::RUNTIME);
    }
    crate::stderr::ewriteln!(
        "wrote {}: {} of {}, {}, head {}",
        args.output.display(),
        review.verdict,
        review.run,
        signatures.summary(),
        verification.head.as_deref().unwrap_or("none")
    );
    Ok(exit::OK)
}

/// The runbook file as it was run: `--runbook FILE`, else the file `run started` names (as
/// given then, so relative to where the run was started: tried from here), else the catalog's
/// file of that runbook id; whichever has the trail's SHA-256. `Err` says what was tried.
fn runbook_as_run(
    config: &Config,
    (trail, shown): (&Path, &Path),
    review: &Review,
    given: Option<&Path>,
) -> std::result::Result<(PathBuf, String), String> {
    let want = review.file_sha256.as_str();
    if want.is_empty() {
        return Err(format!(
            "`{}` records no `file_sha256` in its `run started`: there is no runbook file to check against",
            shown.display()
        ));
    }
    let read = |p: &Path| -> std::result::Result<(String, String), String> {
        let bytes = std::fs::read(p).map_err(|e| format!("`{}`: {e}", p.display()))?;
        let sha = crate::audit::sha256_hex(&bytes);
        let text = String::from_utf8(bytes).map_err(|_| format!("`{}` is not UTF-8 text", p.display()))?;
        Ok((sha, text))
    };
    if let Some(file) = given {
        let (sha, text) = read(file)?;
        if sha != want {
            return Err(format!(
                "--runbook `{}` has SHA-256 {sha}, not the {want} that `{}` recorded: it is not the file that ran (find it with `git log -p` and give it with `git show REV:PATH > FILE`)",
                file.display(),
                shown.display()
            ));
        }
        return Ok((file.to_path_buf(), text));
    }
    let recorded = first_event_file(trail);
    let mut tried: Vec<String> = Vec::new();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(file) = &recorded {
        candidates.push(PathBuf::from(file));
    }
    if let Some(file) = crate::book::catalog::index(&config.catalog).get(&review.runbook)
        && !candidates.contains(file)
    {
        candidates.push(file.clone());
    }
    for candidate in candidates {
        match read(&candidate) {
            Ok((sha, text)) if sha == want => return Ok((candidate, text)),
            Ok((sha, _)) => tried.push(format!(
                "`{}` has changed since the run (SHA-256 {sha})",
                candidate.display()
            )),
            Err(why) => tried.push(why),
        }
    }
    let tried = if tried.is_empty() {
        format!(
            "the trail names no runbook file, and the catalog has no runbook `{}`",
            review.runbook
        )
    } else {
        tried.join("; ")
    };
    Err(format!(
        "no runbook file with the SHA-256 {want} that `{}` recorded: {tried}. Give the file as it was run with --runbook FILE (e.g. `git show REV:{} > FILE`; `git log` finds REV)",
        shown.display(),
        recorded.as_deref().unwrap_or("PATH")
    ))
}

/// The `file` of the trail's `run started`.
fn first_event_file(trail: &Path) -> Option<String> {
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(trail).ok()?;
    let mut line = Vec::new();
    std::io::BufReader::new(file.take(1 << 20))
        .read_until(b'\n', &mut line)
        .ok()?;
    match crate::audit::record::Line::decode(line.trim_ascii_end())?.record {
        crate::audit::record::Record::RunStarted(first) => Some(first.file).filter(|f| !f.is_empty()),
        _ => None,
    }
}
