//! The golden trail (issue 26): a real run's trail and outputs, committed. What the writer
//! becomes, a trail already on disk must still verify (chain, outputs, signature) and review
//! the same. Its bytes are pinned line by line in `src/audit/log/tests.rs`.

use std::path::{Path, PathBuf};

use crate::support::cmd::runbook;

const RUN: &str = "20261207T000515Z-local-drill-c793";

/// A copy of the golden audit dir (a checkout does not keep the 0600/0700 modes a trail has).
fn golden_copy(to: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden");
    let outputs = to.join(RUN);
    std::fs::create_dir(&outputs).unwrap();
    std::fs::set_permissions(&outputs, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(from.join(RUN)).unwrap() {
        let entry = entry.unwrap();
        let copy = outputs.join(entry.file_name());
        std::fs::copy(entry.path(), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let trail = to.join(format!("{RUN}.jsonl"));
    std::fs::copy(from.join(format!("{RUN}.jsonl")), &trail).unwrap();
    std::fs::set_permissions(&trail, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::copy(from.join("allowed_signers"), to.join("allowed_signers")).unwrap();
    trail
}

#[test]
fn the_golden_trail_verifies_with_its_signer_and_reviews_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let trail = golden_copy(dir.path());
    let verified = runbook(["audit", "verify", "--signers"])
        .arg(dir.path().join("allowed_signers"))
        .arg(&trail)
        .expect_code(0);
    assert!(
        verified.stdout.contains("intact and sealed, 26 events"),
        "{}",
        verified.stdout
    );
    assert!(
        verified.stdout.contains("outputs: 6 files checked"),
        "{}",
        verified.stdout
    );
    assert!(
        verified.stdout.contains("signed by golden"),
        "{}",
        verified.stdout
    );
    let review = runbook(["review"]).arg(&trail).expect_code(0);
    insta::assert_snapshot!("golden_review", review.stdout);
}
