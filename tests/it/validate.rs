//! `runbook validate`: every rule's full report (in `validate/`), the design example, a
//! corpus of broken files that must each fail fast with a located message, the command's
//! outputs and exit codes, and a fuzz loop that must never panic.

mod fields;
mod fuzz;
mod graph;
mod inventory;
mod references;
mod yaml;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::cmd::{root, runbook};

/// Validates `yaml` as `rb.yaml` in a fresh directory (no catalog around it) and asserts the
/// exit code and the whole of stderr.
#[track_caller]
pub(crate) fn check(yaml: &str, code: i32, stderr: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rb.yaml"), yaml).unwrap();
    let out = runbook(["validate", "rb.yaml"])
        .current_dir(dir.path())
        .expect_code(code);
    assert_eq!(out.stderr, stderr, "stderr differs; stdout: {}", out.stdout);
    assert_eq!(out.stdout, "");
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

const ROLLBACK: &str = "version: 1\nid: rollback\ntitle: Roll back\nrto: 5m\nsteps:\n  - {id: done, title: Done, end: resolved}\n";

#[test]
fn the_design_example_validates_against_a_catalog_with_rollback() {
    let catalog = tempfile::tempdir().unwrap();
    write(catalog.path(), "rollback.yaml", ROLLBACK);
    let example = root().join("tests/data/design-example.yaml");
    let out = runbook(["validate", "--dir"])
        .current_dir(catalog.path())
        .output();
    assert_eq!(out.code, Some(2), "--dir without a path is a usage error");
    let out = runbook([
        "validate".as_ref(),
        "--dir".as_ref(),
        catalog.path().as_os_str(),
        example.as_os_str(),
    ])
    .expect_code(0);
    assert_eq!(out.stderr, "checked 1 file: ok\n");
}

#[test]
fn a_call_may_name_a_runbook_validated_alongside_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rollback.yaml", ROLLBACK);
    write(
        dir.path(),
        "deploy.yaml",
        "version: 1\nid: deploy\ntitle: Deploy\nrto: 5m\nsteps:\n  - {id: back, title: Back, call: rollback}\n  - {id: done, title: Done, end: resolved}\n",
    );
    let out = runbook(["validate", "deploy.yaml", "rollback.yaml"])
        .current_dir(dir.path())
        .expect_code(0);
    assert_eq!(out.stderr, "checked 2 files: ok\n");
    // Alone, with no catalog, the same call is an error.
    let out = runbook(["validate", "deploy.yaml"])
        .current_dir(dir.path())
        .expect_code(2);
    assert!(
        out.stderr
            .starts_with("deploy.yaml:6:35: error: step `back` calls unknown runbook `rollback`\n"),
        "{}",
        out.stderr
    );
}

/// Each broken file: exit 2, and a message with a line and column, fast. The bound is a hang
/// guard; the target figure (≤ 1 s) is measured by scripts/bench-validate.sh.
#[test]
fn every_broken_file_fails_fast_with_a_located_error() {
    let expected = [
        (
            "alias-bomb.yaml",
            "10:144: error: refused: the file's anchors and aliases expand too far (an alias bomb?)",
        ),
        (
            "bad-duration.yaml",
            "4:6: error: invalid duration in `rto`: `90` has no unit",
        ),
        (
            "bad-regex.yaml",
            "9:22: error: invalid regex in `expect.stdout` of step `count`: unclosed group",
        ),
        (
            "binary.yaml",
            "1:1: error: the file is not UTF-8 text (binary data?)",
        ),
        (
            "dangling-next.yaml",
            "9:11: error: step `drain` goes to unknown step `restrat`",
        ),
        (
            "deep-nesting.yaml",
            "5:263: error: refused: the file nests deeper than a runbook ever needs",
        ),
        (
            "duplicate-key.yaml",
            "8:5: error: key `run` appears twice in this mapping (first at line 7): remove one",
        ),
        ("empty.yaml", "1:1: error: the file is empty"),
        (
            "loop-no-exit.yaml",
            "6:9: error: steps `check`, `wait` loop with no way to reach an `end` step",
        ),
        (
            "undefined-alias.yaml",
            "8:14: error: alias `*wait` refers to no anchor: define `&wait` on an earlier value, or write the value out",
        ),
        ("unknown-field.yaml", "9:5: error: unknown field `timout`"),
        (
            "yaml-syntax.yaml",
            "4:1: error: invalid indentation in multiline quoted scalar",
        ),
    ];
    let dir = root().join("tests/data/broken");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        expected.map(|(n, _)| n.to_string()),
        "every corpus file has an expectation"
    );
    for (name, headline) in expected {
        let start = Instant::now();
        let out = runbook(["validate", &format!("tests/data/broken/{name}")])
            .current_dir(root())
            .expect_code(2);
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_secs(5), "{name} took {elapsed:?}");
        let want = format!("tests/data/broken/{name}:{headline}");
        assert!(
            out.stderr.starts_with(&want),
            "{name}:\n{}\nwanted a start of:\n{want}",
            out.stderr
        );
        assert!(
            out.stderr.ends_with("checked 1 file: 1 error\n") || name == "loop-no-exit.yaml",
            "{}",
            out.stderr
        );
    }
}

#[test]
fn a_50_mib_file_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    let line = "# a comment line that pads the file to fifty mebibytes...........................\n";
    let mut text = String::with_capacity(50 << 20);
    text.push_str("version: 1\n");
    while text.len() < 50 << 20 {
        text.push_str(line);
    }
    std::fs::write(&path, text).unwrap();
    let start = Instant::now();
    let out = runbook(["validate", "huge.yaml"])
        .current_dir(dir.path())
        .expect_code(2);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        out.stderr.starts_with("huge.yaml: error: the file is 52428")
            && out
                .stderr
                .contains("runbooks are limited to 1048576 bytes (1 MiB)"),
        "{}",
        out.stderr
    );
}

#[test]
fn json_lists_the_diagnostics_on_stdout_and_the_summary_stays_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rb.yaml",
        "version: 1\nid: t\ntitle: T\nrto: 5m\nsteps:\n  - {id: wipe, title: Wipe, run: rm -rf /srv/cache, next: don}\n  - {id: done, title: Done, end: resolved}\n",
    );
    let out = runbook(["validate", "--json", "rb.yaml"])
        .current_dir(dir.path())
        .expect_code(2);
    assert_eq!(out.stderr, "checked 1 file: 1 error, 1 warning\n");
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"severity": "warning", "file": "rb.yaml", "line": 6, "col": 34,
             "message": "step `wipe` runs a destructive-looking command (`rm -rf`) without `confirm`",
             "help": "add `confirm: true` (a yes/no question) or `confirm: PHRASE` (the operator types it), so it runs only when meant"},
            {"severity": "error", "file": "rb.yaml", "line": 6, "col": 59,
             "message": "step `wipe` goes to unknown step `don`", "help": "did you mean `done`?"},
        ])
    );
}

#[test]
fn warnings_pass_unless_denied() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rb.yaml",
        "version: 1\nid: t\ntitle: T\nrto: 1m\nsteps:\n  - {id: wait, title: Wait, manual: Wait for the replica, rto: 2m}\n  - {id: done, title: Done, end: resolved}\n",
    );
    let ok = runbook(["validate", "rb.yaml"])
        .current_dir(dir.path())
        .expect_code(0);
    let denied = runbook(["validate", "--deny-warnings", "rb.yaml"])
        .current_dir(dir.path())
        .expect_code(2);
    assert_eq!(ok.stderr, denied.stderr);
    assert!(
        ok.stderr.ends_with("checked 1 file: 1 warning\n"),
        "{}",
        ok.stderr
    );
}

#[test]
fn a_missing_path_is_an_error_and_the_others_are_still_checked() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rollback.yaml", ROLLBACK);
    let out = runbook(["validate", "nope.yaml", "rollback.yaml"])
        .current_dir(dir.path())
        .expect_code(2);
    assert_eq!(
        out.stderr,
        "nope.yaml: error: no such file or directory\n  = help: give runbook files, or directories of them\nchecked 1 file: 1 error\n"
    );
}

#[test]
fn a_directory_is_its_yaml_files_and_ids_must_be_unique_across_them() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", ROLLBACK);
    write(dir.path(), "b.yml", ROLLBACK);
    write(dir.path(), "notes.txt", "not a runbook");
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let out = runbook(["validate", ".", "empty"])
        .current_dir(dir.path())
        .expect_code(2);
    assert_eq!(
        out.stderr,
        r"empty: warning: no runbook files (*.yaml, *.yml) in this directory
  = help: runbook files are looked for directly in the directory, not in its subdirectories
./b.yml:2:5: error: runbook id `rollback` is also used by ./a.yaml
  |
2 | id: rollback
  |     ^^^^^^^^
  = help: ids must be unique in a catalog: `runbook run rollback` would not know which file you mean
checked 2 files: 1 error, 1 warning
"
    );
}
