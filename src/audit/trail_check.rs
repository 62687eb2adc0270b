//! A trail checked as a whole, as `audit verify` and `evidence` both need it: its chain, its
//! output files (only where the chain holds: a broken chain says nothing about them) and its
//! signatures, with every reason not to trust it besides a broken chain, in words.

use std::path::Path;

use super::outputs::{OutputCheck, check_outputs};
use super::signatures::{SignatureReport, check_signatures};
use super::verify::{Status, Verification, verify};
use crate::error::{Error, Result};

pub(crate) struct TrailCheck {
    pub verification: Verification,
    pub outputs: OutputCheck,
    pub signatures: SignatureReport,
    /// Outputs that do not match the trail and signatures that do not hold.
    pub problems: Vec<String>,
}

/// Checks the trail at `path`, its signatures against `signers` (an `allowed_signers` file)
/// when given; refuses a `signers` file that is not there before reading anything.
pub(crate) fn check(path: &Path, signers: Option<&Path>) -> Result<TrailCheck> {
    if let Some(file) = signers
        && !file.is_file()
    {
        return Err(Error::usage(format!(
            "--signers `{}`: no such file (an allowed_signers file: `PRINCIPAL KEYTYPE KEY` per line)",
            file.display()
        )));
    }
    let verification = verify(path)?;
    let outputs = if matches!(verification.status, Status::Tampered { .. }) {
        OutputCheck::default()
    } else {
        check_outputs(path, &verification)
    };
    let signatures = check_signatures(&verification, signers);
    let mut problems: Vec<String> = outputs
        .problems
        .iter()
        .map(|p| match &p.step {
            Some(step) => format!("output of step `{step}` `{}` {}", p.file, p.problem),
            None => format!("`{}` {}", p.file, p.problem),
        })
        .collect();
    problems.extend(signatures.problems.iter().cloned());
    Ok(TrailCheck {
        verification,
        outputs,
        signatures,
        problems,
    })
}
