use super::*;

#[test]
fn a_run_id_names_its_runbook() {
    assert!(named_after(
        "20261122T030211Z-restore-drill-3f9a",
        "restore-drill"
    ));
    assert!(!named_after("20261122T030211Z-restore-drill-3f9a", "drill"));
    assert!(!named_after("20261122T030211Z-rollback-3f9a", "rollback-drill"));
}
