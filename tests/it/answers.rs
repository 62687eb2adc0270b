//! `--answer STEP=VALUE` checked in pre-flight (design §18): an answer naming no step of the
//! runbook, of the runbooks it calls (`CALL-STEP/STEP`) or of its cleanup is refused, exit 2,
//! with a "did you mean", before anything runs.

use crate::support::cmd::runbook;
use crate::support::trail::audit_files;

const MAIN: &str = r#"version: 1
id: outer
title: Outer
rto: 5m
steps:
  - id: look
    title: Look
    manual: Look at it.
  - id: fix
    title: Fix it
    call: inner
  - id: done
    title: Done
    end: resolved
cleanup:
  - id: tidy
    title: Tidy
    manual: Put things back.
"#;

const INNER: &str = r#"version: 1
id: inner
title: Inner
rto: 5m
steps:
  - id: check
    title: Check
    manual: Check it.
  - id: ok
    title: Ok
    end: resolved
"#;

struct Catalog {
    dir: tempfile::TempDir,
    audit: tempfile::TempDir,
}

fn catalog() -> Catalog {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("outer.yaml"), MAIN).unwrap();
    std::fs::write(dir.path().join("inner.yaml"), INNER).unwrap();
    Catalog {
        dir,
        audit: tempfile::tempdir().unwrap(),
    }
}

fn run(c: &Catalog, command: &str, answers: &[&str]) -> crate::support::cmd::Outcome {
    let mut r = runbook(["--dir"])
        .arg(c.dir.path())
        .arg("--audit-dir")
        .arg(c.audit.path())
        .args([command, "outer", "--yes"]);
    for a in answers {
        r = r.args(["--answer", a]);
    }
    r.output()
}

#[test]
fn an_answer_naming_no_step_is_refused_with_a_did_you_mean() {
    let c = catalog();
    for command in ["run", "drill"] {
        let out = run(
            &c,
            command,
            &["look=done", "fix/chek=done", "tidy=done", "nosuch=done"],
        );
        assert_eq!(out.code, Some(2), "{command}: {}", out.stderr);
        assert_eq!(
            out.stderr,
            "runbook: error: --answer `fix/chek=done`: `outer` has no step `fix/chek` (did you mean `fix/check`?)\n  \
             --answer `nosuch=done`: `outer` has no step `nosuch`: nothing was run.\n  \
             Name a step id of `outer`, or CALL-STEP/STEP for a step of a runbook it calls (`runbook show outer` lists them)\n",
            "{command}"
        );
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        assert!(
            audit_files(c.audit.path()).is_empty(),
            "nothing was run, nothing recorded"
        );
    }
}

#[test]
fn answers_to_called_and_cleanup_steps_are_accepted() {
    let c = catalog();
    let out = run(&c, "run", &["look=done", "fix/check=done", "tidy=done"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}
