//! The tamper-evident audit trail of design §5: one append-only, hash-chained JSON Lines file per
//! run, the step outputs beside it, and the verifier that recomputes the chain from the bytes on
//! disk. The file format and the hash are documented in `docs/audit.md`; keep the two in step.

pub(crate) mod agent;
mod dir;
mod log;
mod output;
mod outputs;
pub(crate) mod record;
pub(crate) mod sign;
mod signatures;
mod syncer;
mod trail_check;
mod verify;
mod write_behind;

pub use dir::new_run_id;
pub(crate) use dir::{
    AuditDir, audit_dir, default_audit_dir, file_safe, is_run_file, one_match, prepare_audit_dir,
    prepare_trail, resolve_run, trail_dir, trail_is_a_link,
};
pub use log::AuditLog;
pub(crate) use output::{BackgroundRecorder, OutputRecorder, OutputSummary};
pub(crate) use outputs::{OutputCheck, check_outputs};
pub(crate) use signatures::{SignatureReport, check_signatures};
pub(crate) use syncer::{Acknowledged, Recorded};
pub(crate) use trail_check::{TrailCheck, check};
pub(crate) use verify::{ChainFollower, UnfinishedOutput, Verification, verify_chain};
pub use verify::{Status, read_events, verify};

use sha2::{Digest, Sha256};

/// The format version written in every event's `v`.
pub(crate) const FORMAT_VERSION: u64 = 1;

/// The `prev` of the first event (seq 0): 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Members every event carries, in this order, before the caller's fields; a caller's field
/// may not reuse one of these names (or `prev`, `hash`), or a reader could not tell them apart.
pub(crate) const RESERVED: [&str; 11] = [
    "v", "seq", "ts", "mono_ms", "run", "event", "operator", "step", "host", "prev", "hash",
];

/// The length of the member that ends every line: `,"hash":"<64 hex>"}`.
pub(crate) const HASH_MEMBER_LEN: usize = ",\"hash\":\"".len() + 64 + "\"}".len();

/// `hash = SHA-256(prev_hex ‖ body)`, as lowercase hex, where `body` is the serialized event
/// without its hash member, i.e. ending in `,"prev":"<64 hex>"}`.
pub fn event_hash(prev_hex: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hex.as_bytes());
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// `event_hash` of a body given in pieces, so a verifier need not copy each line.
pub(crate) fn event_hash_parts(prev_hex: &str, body: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hex.as_bytes());
    for part in body {
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// The SHA-256 of some bytes as lowercase hex (file digests in events).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash definition of docs/audit.md, pinned to a vector computed outside this crate:
    /// `printf '%s%s' "$prev" "$body" | sha256sum`.
    #[test]
    fn hash_matches_a_known_vector() {
        let body = br#"{"v":1,"seq":0,"ts":"2026-11-22T03:02:11.123Z","mono_ms":0,"run":"20261122T030211Z-db-restore-3f9a","event":"run started","operator":"alice","prev":"0000000000000000000000000000000000000000000000000000000000000000"}"#;
        assert_eq!(
            event_hash(GENESIS, body),
            "c30c2b4616c7aee1d16b5e581073376b2e7875c53563275e3ed8207f7626644d",
        );
    }

    #[test]
    fn hash_member_length_is_that_of_a_real_member() {
        let member = format!(",\"hash\":\"{}\"}}", GENESIS);
        assert_eq!(member.len(), HASH_MEMBER_LEN);
    }
}
