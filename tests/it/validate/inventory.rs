//! `runbook validate --inventory FILE` and inventories found beside runbooks (design §18, §8):
//! unknown fields and bad values are located errors, a group member that is no host is an ssh
//! alias and warned about. Each test asserts the full report and the exit code.

use crate::support::cmd::runbook;

fn validate_in(dir: &std::path::Path, args: &[&str], code: i32) -> String {
    let out = runbook(["validate"])
        .args(args)
        .current_dir(dir)
        .expect_code(code);
    assert_eq!(out.stdout, "");
    out.stderr
}

#[test]
fn an_inventory_alone_with_bad_values_and_an_unknown_member() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.yaml"),
        r#"hosts:
  prod-api: {ssh: deploy@api.example.com, env: Prod}
  staging-api: {ssh: "bad host", env: staging}
  web-1: {ssh: web-1.example.com}
groups:
  web: [web-1, prod-apo]
"#,
    )
    .unwrap();
    assert_eq!(
        validate_in(dir.path(), &["--inventory", "hosts.yaml"], 2),
        r#"hosts.yaml:2:48: error: host `prod-api`: `env: Prod` is not a lower-case word
  |
2 |   prod-api: {ssh: deploy@api.example.com, env: Prod}
  |                                                ^^^^
  = help: write it like `prod` or `staging`: `drill` refuses hosts whose env is exactly `prod`
hosts.yaml:3:22: error: host `staging-api`: `bad host` is not an SSH destination: it contains a space or a control character (expected `user@host:port`, `ssh://user@host:port` or a host alias)
  |
3 |   staging-api: {ssh: "bad host", env: staging}
  |                      ^^^^^^^^
hosts.yaml:6:16: warning: `prod-apo` of group `web` is not a host of this inventory: it is taken as an ssh alias
  |
6 |   web: [web-1, prod-apo]
  |                ^^^^^^^^
  = help: did you mean `prod-api`?
checked 1 file: 2 errors, 1 warning
"#
    );
}

#[test]
fn an_unknown_inventory_field_is_located_with_a_did_you_mean() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.yaml"),
        "hosts:\n  prod-api: {ssh: deploy@api.example.com, evn: prod}\n",
    )
    .unwrap();
    assert_eq!(
        validate_in(dir.path(), &["--inventory", "hosts.yaml"], 2),
        r#"hosts.yaml:2:43: error: unknown field `evn`
  |
2 |   prod-api: {ssh: deploy@api.example.com, evn: prod}
  |                                           ^^^
  = help: did you mean `env`?
checked 1 file: 1 error
"#
    );
}

/// Issue 23 #11 (design §22): an unknown field does not hide the rest of the file's problems;
/// the groups are checked in the same pass.
#[test]
fn an_unknown_inventory_field_still_has_its_groups_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.yaml"),
        "hosts:\n  prod-api: {ssh: deploy@api.example.com, evn: prod}\ngroups:\n  api: [prod-api, prod-apo]\n",
    )
    .unwrap();
    assert_eq!(
        validate_in(dir.path(), &["--inventory", "hosts.yaml"], 2),
        r#"hosts.yaml:2:43: error: unknown field `evn`
  |
2 |   prod-api: {ssh: deploy@api.example.com, evn: prod}
  |                                           ^^^
  = help: did you mean `env`?
hosts.yaml:4:19: warning: `prod-apo` of group `api` is not a host of this inventory: it is taken as an ssh alias
  |
4 |   api: [prod-api, prod-apo]
  |                   ^^^^^^^^
  = help: did you mean `prod-api`?
checked 1 file: 1 error, 1 warning
"#
    );
}

#[test]
fn an_alias_member_is_only_a_warning_and_deny_warnings_makes_it_fail() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.yaml"),
        "hosts:\n  web-1: {ssh: deploy@web-1}\ngroups:\n  web: [web-1, bastion-web]\n",
    )
    .unwrap();
    let expected = r#"hosts.yaml:4:16: warning: `bastion-web` of group `web` is not a host of this inventory: it is taken as an ssh alias
  |
4 |   web: [web-1, bastion-web]
  |                ^^^^^^^^^^^
  = help: add it under `hosts:` if it is meant to be one of them
checked 1 file: 1 warning
"#;
    assert_eq!(
        validate_in(dir.path(), &["--inventory", "hosts.yaml"], 0),
        expected
    );
    assert_eq!(
        validate_in(dir.path(), &["--deny-warnings", "--inventory", "hosts.yaml"], 2),
        expected
    );
}

/// Regression: `validate runbooks/` read `runbooks/inventory.yaml` as a runbook and reported
/// `hosts` and `groups` as unknown runbook fields.
#[test]
fn an_inventory_in_a_catalog_dir_is_checked_as_an_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("runbooks");
    std::fs::create_dir(&catalog).unwrap();
    std::fs::write(
        catalog.join("ok.yaml"),
        "version: 1\nid: ok\ntitle: Ok\nrto: 5m\nsteps:\n  - {id: done, title: Done, end: resolved}\n",
    )
    .unwrap();
    std::fs::write(
        catalog.join("inventory.yaml"),
        "hosts:\n  db-1: {ssh: deploy@db-1, env: prod}\ngroups:\n  db: [db-1]\n",
    )
    .unwrap();
    assert_eq!(validate_in(dir.path(), &["runbooks"], 0), "checked 2 files: ok\n");
    std::fs::write(catalog.join("inventory.yaml"), "hosts:\n  db-1: {ssh: \"\"}\n").unwrap();
    assert_eq!(
        validate_in(dir.path(), &["runbooks"], 2),
        r#"runbooks/inventory.yaml:2:15: error: host `db-1`: `` is not an SSH destination: it is empty (expected `user@host:port`, `ssh://user@host:port` or a host alias)
  |
2 |   db-1: {ssh: ""}
  |               ^
checked 2 files: 1 error
"#
    );
}

#[test]
fn validate_without_a_path_or_an_inventory_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = validate_in(dir.path(), &[], 2);
    assert!(stderr.contains("<PATH>"), "{stderr}");
}

/// Design §19: the inventory's `audit_host` is checked where it is written, naming what is
/// wrong with it.
#[test]
fn a_wrong_audit_host_in_the_inventory_is_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.yaml"),
        "audit_host: ssh://audit@logs.example\nhosts:\n  web-1: {ssh: web-1.example.com}\n",
    )
    .unwrap();
    let out = validate_in(dir.path(), &["--inventory", "hosts.yaml"], 2);
    assert!(
        out.starts_with("hosts.yaml:1:13: error: audit_host: `ssh://audit@logs.example` is not an audit host: the absolute PATH after the host is missing"),
        "{out}"
    );
}
