//! `runbook list`: the catalog table and JSON, and what it says about broken, repeated and
//! missing catalogs.

use std::path::PathBuf;

use crate::support::cmd::{root, runbook};

/// A fresh directory under cargo's per-test scratch space, emptied first.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("it-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const TABLE: &str = "\
ID            TITLE                               RTO    STEPS
cert-expiry   TLS certificate about to expire     1h30m  2
rollback      Roll back to the last good version  5m     6
service-down  API service down                    10m    7
";

#[test]
fn lists_the_catalog_as_an_aligned_table_sorted_by_id() {
    let out = runbook(["list", "--dir", "tests/data/catalog"])
        .current_dir(root())
        .expect_code(0);
    assert_eq!(out.stdout, TABLE);
    assert_eq!(out.stderr, "");
}

#[test]
fn reads_the_catalog_from_runbook_path() {
    let out = runbook(["list"])
        .current_dir(root())
        .env("RUNBOOK_PATH", "tests/data/catalog:")
        .expect_code(0);
    assert_eq!(out.stdout, TABLE);
}

#[test]
fn defaults_to_the_runbooks_directory() {
    let dir = scratch("list-default");
    std::fs::create_dir(dir.join("runbooks")).unwrap();
    std::fs::copy(
        root().join("tests/data/catalog/cert-expiry.yml"),
        dir.join("runbooks/cert-expiry.yml"),
    )
    .unwrap();
    let out = runbook(["list"]).current_dir(&dir).expect_code(0);
    assert_eq!(
        out.stdout,
        "ID           TITLE                            RTO    STEPS\ncert-expiry  TLS certificate about to expire  1h30m  2\n"
    );
}

#[test]
fn prints_json_with_rto_in_seconds_and_paths() {
    let out = runbook(["list", "--dir", "tests/data/catalog", "--json"])
        .current_dir(root())
        .expect_code(0);
    assert_eq!(
        out.stdout,
        r#"[
  {
    "id": "cert-expiry",
    "title": "TLS certificate about to expire",
    "rto": "1h30m",
    "rto_seconds": 5400,
    "steps": 2,
    "path": "tests/data/catalog/cert-expiry.yml"
  },
  {
    "id": "rollback",
    "title": "Roll back to the last good version",
    "rto": "5m",
    "rto_seconds": 300,
    "steps": 6,
    "path": "tests/data/catalog/rollback.yaml"
  },
  {
    "id": "service-down",
    "title": "API service down",
    "rto": "10m",
    "rto_seconds": 600,
    "steps": 7,
    "path": "tests/data/catalog/service-down.yaml"
  }
]
"#
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn warns_about_broken_files_and_repeated_ids_and_lists_the_rest() {
    let dir = scratch("list-broken");
    let catalog = root().join("tests/data/catalog");
    std::fs::copy(catalog.join("rollback.yaml"), dir.join("a-rollback.yaml")).unwrap();
    std::fs::copy(catalog.join("rollback.yaml"), dir.join("b-rollback.yaml")).unwrap();
    std::fs::write(
        dir.join("broken.yaml"),
        "version: 1\nid: broken\ntitle: Broken\nrto: 5m\nsteps:\n  - id: a\n    title: A\n    timout: 5s\n    end: resolved\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a runbook").unwrap();
    let out = runbook(["list", "--dir", "."]).current_dir(&dir).expect_code(0);
    assert_eq!(
        out.stdout,
        "ID        TITLE                               RTO  STEPS\nrollback  Roll back to the last good version  5m   6\n"
    );
    assert_eq!(
        out.stderr,
        "runbook: warning: runbook id `rollback` is in both ./a-rollback.yaml and ./b-rollback.yaml; `runbook show rollback` uses ./a-rollback.yaml\n\
         ./broken.yaml:8:5: warning: unknown field `timout` (skipped; run `runbook validate ./broken.yaml`)\n"
    );
}

#[test]
fn a_missing_catalog_directory_is_a_usage_error_naming_it() {
    let dir = scratch("list-missing");
    let out = runbook(["list"]).current_dir(&dir).expect_code(2);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "runbook: error: catalog directory `runbooks` does not exist; pick the catalog with `--dir DIR` (repeatable) or RUNBOOK_PATH=DIR1:DIR2\n"
    );
}

#[test]
fn an_empty_catalog_says_so_and_succeeds() {
    let dir = scratch("list-empty");
    let out = runbook(["list", "--dir", "."]).current_dir(&dir).expect_code(0);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "runbook: no runbooks in `.`; add *.yaml files there, or pick another catalog with `--dir DIR` or RUNBOOK_PATH\n"
    );
    let out = runbook(["list", "--dir", ".", "--json"])
        .current_dir(&dir)
        .expect_code(0);
    assert_eq!(out.stdout, "[]\n");
}

#[test]
fn a_file_given_as_catalog_directory_is_named() {
    let out = runbook(["list", "--dir", "tests/data/catalog/rollback.yaml"])
        .current_dir(root())
        .expect_code(2);
    assert_eq!(
        out.stderr,
        "runbook: error: catalog directory `tests/data/catalog/rollback.yaml` is a file, not a directory; pick the catalog with `--dir DIR` (repeatable) or RUNBOOK_PATH=DIR1:DIR2\n"
    );
}

/// Regression: an `inventory.yaml` kept beside the runbooks (design §10) was listed as a
/// broken runbook ("unknown field `hosts`").
#[test]
fn an_inventory_beside_the_runbooks_is_not_a_broken_runbook() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        crate::support::cmd::root().join("runbooks/db-down.yaml"),
        dir.path().join("db-down.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("inventory.yaml"),
        "hosts:\n  db-1: {ssh: deploy@db-1}\n",
    )
    .unwrap();
    let out = crate::support::cmd::runbook(["--dir"])
        .arg(dir.path())
        .arg("list")
        .expect_code(0);
    assert!(out.stdout.contains("db-down"), "{}", out.stdout);
    assert!(!out.stderr.contains("inventory.yaml"), "{}", out.stderr);
}
