//! What a trail's signatures say (design §12): each must match the hash of the event it is on
//! and the key it names; with an `allowed_signers` file, each key must be listed there, and
//! the head (the seal, or the last event of a crashed run) must be covered by one.

use std::path::Path;

use serde::Serialize;

use super::sign::{Against, check};
use super::verify::{Status, Verification};

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct SignatureReport {
    pub count: usize,
    /// Distinct key fingerprints, in order of first use.
    pub keys: Vec<String>,
    /// Principals of `allowed_signers` that matched, when checked against a file.
    pub principals: Vec<String>,
    /// The seq of the last signed event.
    pub last_signed_seq: Option<u64>,
    /// Whether the signed event is the head of the trail (the seal, when sealed).
    pub head_signed: bool,
    /// Each signature that fails, or what is missing when an `allowed_signers` file is given.
    pub problems: Vec<String>,
}

impl SignatureReport {
    /// `signed by SHA256:… (3 signatures)`, `UNSIGNED`, for one-line reports.
    pub(crate) fn summary(&self) -> String {
        if self.count == 0 {
            return "UNSIGNED".into();
        }
        let who = if self.principals.is_empty() {
            self.keys.join(", ")
        } else {
            format!("{} ({})", self.principals.join(", "), self.keys.join(", "))
        };
        let n = if self.count == 1 {
            "1 signature".to_string()
        } else {
            format!("{} signatures", self.count)
        };
        let head = if self.head_signed {
            String::new()
        } else {
            match self.last_signed_seq {
                Some(seq) => format!(", the events after seq {seq} are not covered"),
                None => String::new(),
            }
        };
        format!("signed by {who} ({n}{head})")
    }
}

/// Checks every signature of `v`; with `signers`, against that `allowed_signers` file.
pub(crate) fn check_signatures(v: &Verification, signers: Option<&Path>) -> SignatureReport {
    let mut report = SignatureReport {
        count: v.signatures.len(),
        last_signed_seq: v.signatures.last().map(|s| s.seq),
        ..SignatureReport::default()
    };
    report.head_signed = report.last_signed_seq.is_some() && report.last_signed_seq == v.last_seq;
    for signed in &v.signatures {
        let key = &signed.signature.key;
        if !report.keys.contains(key) {
            report.keys.push(key.clone());
        }
        let message = signed.hash.as_bytes();
        let what = format!("the signature of seq {} (`{}`)", signed.seq, signed.event);
        if signed.signature.namespace != super::sign::AUDIT_NAMESPACE {
            report.problems.push(format!(
                "{what} is in namespace `{}`, not `{}`",
                signed.signature.namespace,
                super::sign::AUDIT_NAMESPACE
            ));
            continue;
        }
        if let Err(why) = check(&signed.signature, message, Against::ItsOwnKey) {
            report.problems.push(format!("{what}: {why}"));
            continue;
        }
        if let Some(file) = signers {
            match check(&signed.signature, message, Against::AllowedSigners(file)) {
                Ok(principal) if !report.principals.contains(&principal) => report.principals.push(principal),
                Ok(_) => {}
                Err(why) => report.problems.push(format!("{what}: {why}")),
            }
        }
    }
    if let Some(file) = signers {
        if v.signatures.is_empty() {
            report.problems.push(format!(
                "the trail is unsigned: no signature to check against {}",
                file.display()
            ));
        } else if v.status == Status::IntactSealed && !report.head_signed {
            report.problems.push(format!(
                "the seal (seq {}) is unsigned: the events after seq {} are covered by no signature",
                v.last_seq.unwrap_or(0),
                report.last_signed_seq.unwrap_or(0)
            ));
        }
    }
    report
}
