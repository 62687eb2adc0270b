//! What an operator reads, stated whole (issue 26): snapshots of the briefing, the end summary
//! of a resolved run, a failed run, and the text and Markdown reviews of a representative run,
//! each from a [`World`] and through the one [`redact`] (times, ids, paths and hashes out).
//! A change of wording on a 3 a.m. screen shows here as a diff to accept or fix.

use crate::support::world::{Outcome, World, redact};

/// A representative runbook: prose and a link, an input, a retry, a capture, a manual step
/// (answered by `--answer`), a decision on the capture, an end message, and a cleanup step.
const DEPLOY_CHECK: &str = r#"version: 1
id: deploy-check
title: Deploy check
description: |
  The API answers 502 after a deploy. Find out whether the new release is at fault and
  roll back if it is.
owner: on-call
rto: 5m
links:
  - {title: Dashboard, url: "https://grafana.example.com/d/api"}
inputs:
  state_dir: {description: Scratch directory for the flaky step's counter}
steps:
  - id: prepare
    title: Prepare the scratch directory
    run: rm -rf "$state_dir" && mkdir -p "$state_dir" && echo 0 > "$state_dir/tries"
  - id: probe
    title: Probe the health endpoint
    notes: Fails twice before it answers, as a warming cache does.
    run: |
      n=$(( $(cat "$state_dir/tries") + 1 )); echo $n > "$state_dir/tries"
      echo "try $n"
      [ "$n" -ge 3 ]
    retry: {attempts: 3, delay: 100ms}
    rto: 30s
  - id: release
    title: Which release is live?
    run: echo v1.1.0
    capture: live
  - id: look
    title: Look at the error rate on the dashboard
    manual: Open the dashboard and compare the error rate before and after the deploy.
  - id: route
    title: Live release is {{ live }}
    choose:
      - {label: "New release: roll back", goto: rollback, when: {var: live, equals: v1.1.0}}
      - {label: "Old release: escalate", goto: escalate}
  - id: rollback
    title: Roll back to v1.0.0
    run: echo "rolled back to v1.0.0"
  - id: done
    title: Rolled back
    end: resolved
    message: The API runs v1.0.0 again.
  - id: escalate
    title: Escalate
    end: escalated
    message: Not the deploy; call the API owner.
cleanup:
  - id: tidy
    title: Remove the scratch directory
    run: rm -rf "$state_dir"
"#;

/// A runbook whose check fails and sends the run to escalation.
const FAILING_CHECK: &str = r#"version: 1
id: failing-check
title: Failing check
rto: 5m
steps:
  - id: check
    title: Check the replica lag
    run: 'echo "replica lag 900 s" >&2; exit 3'
    on_failure: escalate
  - id: done
    title: Done
    end: resolved
  - id: escalate
    title: Escalate
    end: escalated
    message: The replica is behind; call the DBA.
"#;

/// The world of the representative run, ready to run it unattended.
fn deploy_check() -> World {
    let world = World::new().runbook("deploy-check", DEPLOY_CHECK);
    let scratch = world.scratch().join("state");
    world
        .args(["run", "deploy-check", "--yes"])
        .set("state_dir", scratch)
        .answer("look", "done")
}

/// The representative run, resolved: what `deploy_check()` gives back, checked.
fn resolved(world: &World) -> Outcome {
    let out = world.run().expect_code(0);
    assert_eq!(out.kinds().first(), Some(&"run started"));
    assert_eq!(out.trail.last().unwrap()["event"], "run finished");
    assert_eq!(out.trail.last().unwrap()["outcome"], "resolved");
    out
}

/// The lines before the first step is announced: the briefing.
fn briefing(stderr: &str) -> String {
    stderr
        .lines()
        .take_while(|l| !l.contains("prepare"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_briefing_of_a_representative_run() {
    let world = deploy_check();
    let out = resolved(&world);
    let briefing = briefing(&out.stderr);
    assert!(briefing.contains("Deploy check"), "{}", out.stderr);
    insta::assert_snapshot!("briefing", redact(&briefing, &world));
}

#[test]
fn the_end_summary_of_a_resolved_run() {
    let world = deploy_check();
    let out = resolved(&world);
    insta::assert_snapshot!("resolved_run", redact(&out.stderr, &world));
    assert_eq!(out.stdout, "", "an unattended run writes its screen on stderr");
}

#[test]
fn a_failed_step_escalates_the_run() {
    let world = World::new()
        .runbook("failing-check", FAILING_CHECK)
        .args(["run", "failing-check", "--yes"]);
    let out = world.run().expect_code(3);
    assert_eq!(out.trail.last().unwrap()["outcome"], "escalated");
    insta::assert_snapshot!(
        "escalated_run",
        redact(
            &format!(
                "exit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                out.code, out.stdout, out.stderr
            ),
            &world
        )
    );
}

#[test]
fn the_text_and_markdown_reviews_of_a_representative_run() {
    let world = deploy_check();
    let out = resolved(&world);
    insta::assert_snapshot!("review_text", redact(&out.review("text"), &world));
    insta::assert_snapshot!("review_markdown", redact(&out.review("md"), &world));
}

/// The redaction itself: what varies goes, what the runbook wrote stays.
#[test]
fn redaction_keeps_the_wording_and_drops_what_varies() {
    let world = World::new();
    let root = world.root().display().to_string();
    let screen = format!(
        "03:27:01 [2/8] probe: ok (exit 0) in 12ms (step 0.2s of 30s)\n\
         03:27:01   4m59s of the 5m RTO left\n\
         03:27:14 run resolved after 12s (RTO 5m)\n\
         audit: {root}/audit/20261207T032701Z-deploy-check-0a1f.jsonl\n\
         \x20 launched   2026-12-07 03:27:01Z, rto clock at 2026-12-07T03:27:01.123Z\n\
         \x20 total      1m05s of the 5m RTO (21%)\n\
         \x20 account    tester (uid 1000) on buildhost-7\n\
         head: {} · stopped process group 4242 at 03:27",
        "ab".repeat(32)
    );
    assert_eq!(
        redact(&screen, &world),
        "[hh:mm:ss] [2/8] probe: ok (exit 0) in [dur] (step [dur] of 30s)\n\
         [hh:mm:ss]  [dur] of the 5m RTO left\n\
         [hh:mm:ss] run resolved after [dur] (RTO 5m)\n\
         audit: [world]/audit/[run:deploy-check].jsonl\n\
         \x20 launched  [datetime], rto clock at [datetime]\n\
         \x20 total  [dur] of the 5m RTO ([n%])\n\
         \x20 account  [login] (uid [uid]) on [host]\n\
         head: [hash] · stopped process group [pid] at [hh:mm]"
    );
}
