//! `runbook test` (design §21): the shipped cases pass with every step and option reached; a
//! failing case names its first divergence and why; the JUnit report parses back; an invalid
//! case file is reported at its line and column and nothing is walked; coverage lists what no
//! case reaches; and nothing runs, connects or is recorded while the cases walk.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::cmd::{root, runbook};

fn write(dir: &Path, name: &str, text: &str) {
    if let Some(parent) = dir.join(name).parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(dir.join(name), text).unwrap();
}

/// `runbook test ARGS` with the shipped catalog as the catalog.
fn test_with_catalog<I, S>(args: I) -> crate::support::cmd::Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    runbook([
        "test".as_ref(),
        "--dir".as_ref(),
        root().join("runbooks").as_os_str(),
    ])
    .args(args)
}

#[test]
fn the_shipped_cases_pass_and_reach_every_step_and_option() {
    let cases = std::fs::read_dir(root().join("runbooks/tests"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".test.yaml")
        })
        .count();
    assert!(cases >= 7, "a case per shipped runbook at least");
    let out = runbook(["test", "runbooks/", "--coverage"])
        .current_dir(root())
        .expect_code(0);
    assert!(
        out.stdout
            .contains(&format!("{cases} cases: {cases} passed, 0 failed")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("coverage: every step and option of the runbooks under test is reached\n"),
        "{}",
        out.stdout
    );
    // Every shipped runbook is the subject of a case of its own, not only reached by a call.
    for entry in std::fs::read_dir(root().join("runbooks")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let id = path.file_stem().unwrap().to_string_lossy().to_string();
            assert!(
                out.stdout.contains(&format!("PASS  {id}: ")),
                "no case tests {id}"
            );
        }
    }
    // The default PATH is the catalog.
    let out = runbook(["test"]).current_dir(root()).expect_code(0);
    assert!(out.stdout.contains(&format!("{cases} cases: {cases} passed")));
}

const CRASHED: &str = "runbook: service-down\nname: the unit crashed\nsteps:\n  service-status: {exit: 3, stdout: \"Active: inactive (dead)\"}\nexpect:\n  path: [service-status, recent-logs, crashed, verify-health, done]\n";

const RUNNING: &str = "runbook: service-down\nname: the unit runs\nsteps:\n  service-status: {stdout: \"Active: active (running) since 07:02\"}\nexpect:\n  path: [service-status, recent-logs, crashed, restart, verify-health, done]\n  outcome: resolved\n";

#[test]
fn a_failing_case_names_its_first_divergence_and_why() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "crashed.test.yaml", CRASHED);
    write(dir.path(), "running.test.yaml", RUNNING);
    let out = test_with_catalog([dir.path()]).expect_code(1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let crashed = lines
        .iter()
        .position(|l| l.starts_with("FAIL  service-down: the unit crashed"))
        .unwrap();
    assert_eq!(
        lines[crashed + 1].trim(),
        "after `crashed` expected `verify-health`, took `restart`: no `when` held (`unit_status` is \"Active: inactive (dead)\"), so the fallback \"Crashed or stopped: restart it\" was taken"
    );
    let running = lines
        .iter()
        .position(|l| l.starts_with("FAIL  service-down: the unit runs"))
        .unwrap();
    assert_eq!(
        lines[running + 1].trim(),
        "after `crashed` expected `restart`, took `verify-health`: `when` on `unit_status` matched \"Active: active\""
    );
    assert!(out.stdout.ends_with(&format!(
        "2 cases: 0 passed, 2 failed ({})\n",
        out.stdout.rsplit('(').next().unwrap().trim_end_matches(")\n")
    )));

    // A failed step's divergence says how it failed and where `on_failure` led.
    write(
        dir.path(),
        "crashed.test.yaml",
        "runbook: service-down\nsteps:\n  service-status: {exit: 3, stdout: \"Active: failed\"}\n  restart: {exit: 1, stderr: \"Job failed\"}\n  verify-health: [{exit: 7}, {exit: 7}, {exit: 7}, {exit: 7}, {exit: 0}]\nexpect:\n  path: [service-status, recent-logs, crashed, restart, done]\n",
    );
    std::fs::remove_file(dir.path().join("running.test.yaml")).unwrap();
    let out = test_with_catalog([dir.path()]).expect_code(1);
    assert!(
        out.stdout.contains(
            "after `restart` expected `done`, took `verify-health`: `restart` failed (exit 1: exit code not expected), and its `on_failure` goes to `verify-health`"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn the_junit_report_parses_back_with_each_case_and_its_failure() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "crashed.test.yaml", CRASHED);
    write(
        dir.path(),
        "restart.test.yaml",
        "runbook: service-down\nname: a restart <works> & \"helps\"\nsteps:\n  service-status: {exit: 3, stdout: \"Active: failed\"}\nexpect:\n  outcome: resolved\n",
    );
    let out =
        test_with_catalog(["--format".as_ref(), "junit".as_ref(), dir.path().as_os_str()]).expect_code(1);
    let xml = roxmltree::Document::parse(&out.stdout).expect("well-formed XML");
    let root = xml.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("2"));
    assert_eq!(root.attribute("failures"), Some("1"));
    let suite = root.children().find(|n| n.has_tag_name("testsuite")).unwrap();
    assert_eq!(suite.attribute("name"), Some("service-down"));
    let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 2);
    let failed = cases
        .iter()
        .find(|c| c.attribute("name") == Some("the unit crashed"))
        .unwrap();
    assert_eq!(failed.attribute("classname"), Some("service-down"));
    let failure = failed.children().find(|n| n.has_tag_name("failure")).unwrap();
    assert!(
        failure
            .attribute("message")
            .unwrap()
            .starts_with("after `crashed` expected `verify-health`, took `restart`: no `when` held"),
        "{:?}",
        failure.attribute("message")
    );
    let passed = cases
        .iter()
        .find(|c| c.attribute("name") == Some("a restart <works> & \"helps\""))
        .expect("a name with XML's special characters comes back as written");
    assert!(!passed.children().any(|n| n.has_tag_name("failure")));
}

#[test]
fn an_invalid_case_file_is_located_and_nothing_is_walked() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "good.test.yaml", CRASHED);
    write(
        dir.path(),
        "bad.test.yaml",
        "runbook: service-down\nsteps:\n  service-stauts: {exit: 3}\n  free-disk: maybe\nexpect:\n  outcome: resolvd\n",
    );
    write(
        dir.path(),
        "typo.test.yaml",
        "runbook: service-down\nexpect:\n  outcome: resolved\n  within_rt0: true\n",
    );
    let out = test_with_catalog([dir.path()]).expect_code(2);
    assert_eq!(out.stdout, "", "no case was walked");
    let bad = dir.path().join("bad.test.yaml").display().to_string();
    let typo = dir.path().join("typo.test.yaml").display().to_string();
    let headlines: Vec<&str> = out.stderr.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(
        headlines,
        [
            format!("{bad}:3:3: error: `service-down` has no step `service-stauts`"),
            format!("{bad}:4:14: error: manual step `free-disk`: `maybe` is not a report"),
            format!("{bad}:6:12: error: `resolvd` is not an outcome"),
            format!("{typo}:4:3: error: unknown field `within_rt0`"),
        ]
    );
    assert!(out.stderr.contains("  = help: did you mean `service-status`?"));
    assert!(out.stderr.contains("  = help: did you mean `within_rto`?"));
    assert!(
        out.stderr
            .ends_with("runbook test: 4 problems in 2 files: no case was run\n"),
        "{}",
        out.stderr
    );
}

const SMALL: &str = "version: 1
id: small
title: A small runbook
rto: 5m
steps:
  - id: check
    title: Check
    run: touch \"$marker\"
    capture: state
  - id: decide
    title: Decide
    choose:
      - {label: Broken, goto: fix, when: {var: state, matches: broken}}
      - {label: Fine, goto: done}
  - id: fix
    title: Fix
    run: touch \"$marker.fix\"
    timeout: 30s
    on_failure: escalate
  - {id: done, title: Done, end: resolved}
  - {id: escalate, title: Escalate, end: escalated}
inputs:
  marker: {description: a file the commands would create}
";

#[test]
fn coverage_lists_the_steps_and_options_no_case_reaches() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "small.yaml", SMALL);
    let marker = dir.path().join("ran");
    write(
        dir.path(),
        "tests/fine.test.yaml",
        &format!(
            "runbook: small\ninputs: {{marker: '{}'}}\nexpect: {{outcome: resolved}}\n",
            marker.display()
        ),
    );
    let out = runbook(["test", "--coverage"]).arg(dir.path()).expect_code(0);
    let file = dir.path().join("small.yaml").display().to_string();
    assert!(
        out.stdout.ends_with(&format!(
            "coverage: 3 steps or options not reached by any case:\n  {file}:13:31: `small`: option \"Broken\" of `decide` (to `fix`) is never taken\n  {file}:15:9: `small`: step `fix` is never entered\n  {file}:21:10: `small`: step `escalate` is never entered\n"
        )),
        "{}",
        out.stdout
    );
    assert!(!marker.exists(), "a test case ran a command");
}

#[test]
fn nothing_runs_nothing_is_recorded_and_stubbed_time_is_never_slept() {
    let dir = tempfile::tempdir().unwrap();
    let audit = tempfile::tempdir().unwrap();
    write(dir.path(), "small.yaml", SMALL);
    let marker = dir.path().join("ran");
    // Ten hours of stubbed commands, a timeout that cuts one short, and its `on_failure`.
    write(
        dir.path(),
        "slow.test.yaml",
        &format!(
            "runbook: small\ninputs: {{marker: '{}'}}\nsteps:\n  check: {{stdout: broken, took: 10h}}\n  fix: {{took: 2m}}\nexpect:\n  path: [check, decide, fix, escalate]\n  outcome: escalated\n  within_rto: false\n",
            marker.display()
        ),
    );
    let started = Instant::now();
    let out = runbook(["test"])
        .arg(dir.path().join("slow.test.yaml"))
        .env("RUNBOOK_AUDIT_DIR", audit.path())
        .expect_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stubbed time was slept"
    );
    assert!(
        out.stdout.contains("ended escalated, 10h30s of 5m RTO"),
        "{}",
        out.stdout
    );
    assert!(
        !marker.exists() && !dir.path().join("ran.fix").exists(),
        "a command ran"
    );
    assert_eq!(
        std::fs::read_dir(audit.path()).unwrap().count(),
        0,
        "a trail was written"
    );
}

/// A deploy whose guard (every 10 s, 3 failures in a row) rolls it back; `rollback` is reached
/// only through the guard.
const GUARDED: &str = "version: 1
id: guarded
title: A guarded deploy
rto: 5m
guards:
  - {id: health, run: 'true', every: 10s, failures: 3, goto: rollback}
steps:
  - {id: deploy, title: Deploy, run: 'true'}
  - {id: soak, title: Soak, run: 'true', timeout: 1h}
  - {id: verify, title: Verify, run: 'true'}
  - {id: done, title: Done, end: resolved}
  - {id: rollback, title: Roll back, run: 'true'}
  - {id: rolled-back, title: Rolled back, end: failed}
";

/// The outcome line of the case named `name` in a text report.
fn case_line<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.contains(&format!("guarded: {name}")))
        .unwrap_or_else(|| panic!("no line for {name}:\n{stdout}"))
}

#[test]
fn a_stubbed_guard_that_trips_diverts_the_walk_at_its_failures_threshold() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "guarded.yaml", GUARDED);
    // Failing from `deploy` (0 s): polls at 0, 10 and 20 s fail, so it trips at 20 s, inside
    // the 10-minute soak.
    let trip = "guards:\n  health: {fails_from: deploy}\nsteps:\n  soak: {took: 10m}\n";
    // As at a terminal: the soak runs to its end, then the divert is offered (preselected).
    write(
        dir.path(),
        "attended.test.yaml",
        &format!(
            "runbook: guarded\nname: attended\n{trip}expect:\n  path: [deploy, soak, rollback, rolled-back]\n  outcome: failed\n  within_rto: false\n"
        ),
    );
    // Unattended: the soak is stopped at the trip, and the walk diverts at once.
    write(
        dir.path(),
        "unattended.test.yaml",
        &format!(
            "runbook: guarded\nname: unattended\nunattended: true\n{trip}expect:\n  path: [deploy, soak, rollback, rolled-back]\n  outcome: failed\n  within_rto: true\n"
        ),
    );
    // The operator declines the offer: the walk goes on.
    write(
        dir.path(),
        "declined.test.yaml",
        "runbook: guarded\nname: declined\nguards:\n  health: {fails_from: deploy, answer: go-on}\nsteps:\n  soak: {took: 10m}\nexpect:\n  path: [deploy, soak, verify, done]\n  outcome: resolved\n",
    );
    let out = runbook(["test"]).arg(dir.path()).expect_code(0);
    assert!(
        out.stdout.contains("3 cases: 3 passed, 0 failed"),
        "{}",
        out.stdout
    );
    // Virtual time: the soak's 10 minutes then the rollback's second, against the trip at 20 s
    // and the rollback's second.
    assert!(
        case_line(&out.stdout, "attended").contains("ended failed, 10m2s of 5m RTO"),
        "{}",
        out.stdout
    );
    assert!(
        case_line(&out.stdout, "unattended").contains("ended failed, 21s of 5m RTO"),
        "{}",
        out.stdout
    );

    // A case that expects the walk to go on is told which guard sent it elsewhere, and why.
    write(
        dir.path(),
        "attended.test.yaml",
        &format!("runbook: guarded\nname: attended\n{trip}expect:\n  path: [deploy, soak, verify, done]\n"),
    );
    let out = runbook(["test"]).arg(dir.path()).expect_code(1);
    assert!(
        out.stdout.contains(
            "after `soak` expected `verify`, took `rollback`: guard `health` tripped (3 failures in a row: stubbed: failing from `deploy`), and the walk diverted to `rollback`"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("3 cases: 2 passed, 1 failed"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_stubbed_guard_that_recovers_before_its_threshold_diverts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "guarded.yaml", GUARDED);
    // Failing from `deploy` (0 s) until `verify` is entered: with a 15 s soak, the polls at
    // 0 and 10 s fail and the one at 20 s passes; 2 failures never reach the 3 that trip it.
    let case = |soak: &str| {
        format!(
            "runbook: guarded\nname: recovers\nguards:\n  health: {{fails_from: deploy, recovers_from: verify}}\nsteps:\n  soak: {{took: {soak}}}\nexpect:\n  path: [deploy, soak, verify, done]\n  not_visits: [rollback]\n  outcome: resolved\n"
        )
    };
    write(dir.path(), "recovers.test.yaml", &case("15s"));
    for unattended in ["", "unattended: true\n"] {
        let text = case("15s").replace("guards:", &format!("{unattended}guards:"));
        write(dir.path(), "recovers.test.yaml", &text);
        let out = runbook(["test"]).arg(dir.path()).expect_code(0);
        assert!(
            out.stdout.contains("1 case: 1 passed, 0 failed"),
            "{}",
            out.stdout
        );
    }
    // The same case with a soak long enough for a third failing poll (at 20 s): it trips.
    write(dir.path(), "recovers.test.yaml", &case("25s"));
    let out = runbook(["test"]).arg(dir.path()).expect_code(1);
    assert!(
        out.stdout.contains("guard `health` tripped (3 failures in a row"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_case_naming_an_unknown_guard_or_step_is_located_and_nothing_is_walked() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "guarded.yaml", GUARDED);
    write(
        dir.path(),
        "bad.test.yaml",
        "runbook: guarded\nguards:\n  helth: {fails_from: deploy}\n  health: {fails_from: deplyo, answer: maybe}\nexpect:\n  outcome: resolved\n",
    );
    write(
        dir.path(),
        "unattended.test.yaml",
        "runbook: guarded\nunattended: true\nguards:\n  health: {recovers_from: verify, answer: divert}\nexpect:\n  outcome: resolved\n",
    );
    let out = runbook(["test"]).arg(dir.path()).expect_code(2);
    assert_eq!(out.stdout, "", "no case was walked");
    let bad = dir.path().join("bad.test.yaml").display().to_string();
    let unattended = dir.path().join("unattended.test.yaml").display().to_string();
    let headlines: Vec<&str> = out.stderr.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(
        headlines,
        [
            format!("{bad}:3:3: error: `guarded` has no guard `helth`"),
            format!("{bad}:4:24: error: guard `health`: fails_from: `guarded` has no step `deplyo`"),
            format!("{bad}:4:40: error: guard `health`: `maybe` answers no divert offer"),
            format!("{unattended}:4:3: error: guard `health`: from which step does its check fail?"),
            format!(
                "{unattended}:4:43: error: guard `health`: nobody is asked in an unattended walk: a trip diverts at once"
            ),
        ],
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("  = help: did you mean `health`?"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("  = help: did you mean `deploy`?"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .ends_with("runbook test: 5 problems in 2 files: no case was run\n"),
        "{}",
        out.stderr
    );
}
