//! `runbook review` on audit files written by real runs: the unattended drill (a failure, a
//! retry, an over-target step), the same runbook run by a person in a pseudo-terminal (a note,
//! an edit, a retry chosen by hand), a crashed run, a resumed one and a tampered one.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::support::cmd::runbook;
use crate::support::runs::{Retime, drill, interactive, retime, retime_with, review_yaml, unattended};
use crate::support::world::{Outcome, World};

fn review(args: &[&str], code: i32) -> String {
    runbook(["review"]).args(args).expect_code(code).stdout
}

/// The review drill, unattended, in a world of its own: PASS, with a failed step, a retry and
/// an over-target step (what [`drill`] runs, without the test's own directories).
fn review_drill() -> Outcome {
    let world = World::new();
    let state = world.scratch().join("state");
    world
        .args(["drill", review_yaml().to_str().unwrap(), "--yes"])
        .set("state_dir", state)
        .run()
        .expect_code(0)
}

fn json_review(path: &Path) -> Value {
    let out = review(&[path.to_str().unwrap(), "--format", "json"], 0);
    serde_json::from_str(&out).unwrap()
}

fn visits<'a>(run: &'a Value, step: &str) -> Vec<&'a Value> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["step"] == step)
        .collect()
}

#[test]
fn an_unattended_drill_shows_the_failure_the_retry_and_the_step_over_target() {
    let ran = review_drill();
    let file = ran.file();
    let doc = json_review(file);
    assert_eq!(doc["schema"], "runbook-review/1");
    let run = &doc["runs"][0];
    assert_eq!(run["integrity"]["status"], "intact_sealed");
    assert_eq!(
        (run["mode"].as_str(), run["verdict"].as_str()),
        (Some("drill"), Some("PASS"))
    );
    assert_eq!(run["outcome"], "resolved");
    let slow = visits(run, "slow")[0];
    assert!(slow["exec_ms"].as_u64().unwrap() >= 400, "{slow}");
    assert!(slow["over_ms"].as_i64().unwrap() >= 300, "{slow}");
    assert_eq!(run["over_target"][0]["step"], "slow", "the worst first");
    let flaky = visits(run, "flaky")[0];
    let outcomes: Vec<&str> = flaky["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "ok"]);
    // The 200 ms retry delay is neither the human's nor the machine's.
    assert!(flaky["after_ms"].as_u64().unwrap() >= 190, "{flaky}");
    let broken = visits(run, "broken")[0];
    assert_eq!(
        (broken["outcome"].as_str(), broken["exit"].as_i64()),
        (Some("failed"), Some(3))
    );
    assert_eq!(visits(run, "route")[0]["decisions"][0]["goto"], "done");
    // The parts add up to the total.
    let t = &run["time"];
    let sum: u64 = ["human_ms", "machine_ms", "between_ms", "gaps_ms"]
        .iter()
        .map(|k| t[k].as_u64().unwrap())
        .sum();
    assert_eq!(sum, run["total_ms"].as_u64().unwrap());
    assert!(t["machine_ms"].as_u64().unwrap() >= 400);
}

#[test]
fn a_run_driven_by_a_person_shows_the_note_the_edit_and_the_wait() {
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = interactive(audit.path(), scratch.path());
    let doc = json_review(&file);
    let run = &doc["runs"][0];
    assert_eq!(run["mode"], "incident");
    assert_eq!(run["verdict"], "WITHIN RTO");
    let slow = visits(run, "slow")[0];
    assert_eq!(slow["notes"][0]["text"], "waiting for the DBA");
    assert_eq!(slow["edits"][0]["before"], "sleep 0.4");
    assert_eq!(slow["edits"][0]["after"], "sleep 0.4; echo edited");
    // Three prompts answered (note, edit, run), each after a 300 ms pause: the human's share.
    assert!(slow["wait_ms"].as_u64().unwrap() >= 900, "{slow}");
    let flaky = visits(run, "flaky")[0];
    assert_eq!(flaky["attempts"].as_array().unwrap().len(), 2, "{flaky}");
    let broken = visits(run, "broken")[0];
    assert_eq!(broken["outcome"], "failed");
    assert_eq!(broken["answers"][0]["answer"], "follow on_failure");
    assert!(run["time"]["human_ms"].as_u64().unwrap() > run["time"]["machine_ms"].as_u64().unwrap());
    let text = review(&[file.to_str().unwrap()], 0);
    assert!(text.contains("slow: command edited by tester"), "{text}");
    // The edit as a diff: the change itself is visible, not a shared prefix.
    assert!(
        text.contains("      - sleep 0.4\n      + sleep 0.4; echo edited\n"),
        "{text}"
    );
    assert!(
        text.contains("slow: deviation: edited [allowed, listed]"),
        "{text}"
    );
    assert!(text.contains("slow: note by tester"), "{text}");
}

/// Snapshots of every format, from the person's run with its times made regular.
#[test]
fn every_format_of_one_run_is_stable() {
    let (audit, scratch, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let real = interactive(audit.path(), scratch.path());
    let file = retime(
        &real,
        out.path(),
        "20261122T030211Z-review-drill-0001",
        "2026-11-22T03:02:11Z",
        250,
    );
    let path = file.to_str().unwrap();
    let normal = |text: String| stable(text, out.path());
    insta::assert_snapshot!("text", normal(review(&[path], 0)));
    insta::assert_snapshot!("markdown", normal(review(&[path, "--format", "md"], 0)));
    insta::assert_snapshot!("json", normal(review(&[path, "--format", "json"], 0)));
    insta::assert_snapshot!("html", normal(review(&[path, "--format", "html"], 0)));
}

/// A review with what differs between machines replaced: the directory of the copies, and
/// heads (they cover every byte of the trail, the lock's path included).
fn stable(text: String, dir: &std::path::Path) -> String {
    let head = regex::Regex::new("[0-9a-f]{64}").unwrap();
    head.replace_all(&text.replace(dir.to_str().unwrap(), "<dir>"), "<head>")
        .into_owned()
}

/// Five drills, each faster than the one before: the comparison says so with the numbers.
#[test]
fn several_runs_are_compared_and_the_trend_is_told() {
    let (audit, scratch, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let real = drill(audit.path(), scratch.path());
    let mut paths = Vec::new();
    for (i, step) in [400, 350, 300, 250, 200].iter().enumerate() {
        let run = format!("2026112{}T030211Z-review-drill-000{i}", i + 1);
        let base = format!("2026-11-2{}T03:02:11Z", i + 1);
        paths.push(
            retime(&real, out.path(), &run, &base, *step)
                .display()
                .to_string(),
        );
    }
    // Given newest first, compared oldest first.
    paths.reverse();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let text = stable(review(&args, 0), out.path());
    insta::assert_snapshot!("comparison_text", text);
    let mut json_args = args.clone();
    json_args.extend(["--format", "json"]);
    let doc: Value = serde_json::from_str(&review(&json_args, 0)).unwrap();
    let trend = &doc["comparison"]["trend"];
    assert_eq!(trend["direction"], "faster");
    assert_eq!(trend["monotonic"], true);
    assert_eq!(trend["change_pct"], -50.0);
    let md = review(&[args.as_slice(), &["--format", "md"]].concat(), 0);
    assert!(md.contains("**Trend:** Over the last 5 runs"), "{md}");
    // The snapshot holds the text table; the same rows in markdown and HTML.
    let total = md
        .lines()
        .find(|l| l.starts_with("| **total** |"))
        .unwrap_or_else(|| panic!("{md}"));
    assert_eq!(
        total.matches("| **").count(),
        6,
        "the label and 5 totals in bold: {total}"
    );
    assert!(md.contains("| verdict |") && md.contains("| mode |"), "{md}");
    let html = review(&[args.as_slice(), &["--format", "html"]].concat(), 0);
    for label in ["total", "verdict", "mode"] {
        assert!(html.contains(&format!("<tr><td>{label}</td>")), "{label}: {html}");
    }
}

/// A run killed mid-step has no seal: reviewed with what it holds, marked INCOMPLETE; then
/// resumed by someone else (a hand-off through the audit library) the gap shows.
#[test]
fn a_crashed_run_is_incomplete_and_its_resume_is_a_gap_and_a_hand_off() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let yaml = dir.path().join("hang.yaml");
    std::fs::write(&yaml, "version: 1\nid: hang\ntitle: Hangs\nrto: 1m\nsteps:\n  - id: hang\n    title: Hang\n    run: sleep 3\n  - id: done\n    title: Done\n    end: resolved\n").unwrap();
    let mut child = std::process::Command::new(crate::support::cmd::bin())
        .args([
            "run",
            yaml.to_str().unwrap(),
            "--yes",
            "--audit-dir",
            audit.path().to_str().unwrap(),
        ])
        .env("USER", "alice")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let file = crate::support::trail::wait_for_started(audit.path());
    child.kill().unwrap();
    child.wait().unwrap();
    let path = file.to_str().unwrap();
    let text = review(&[path], 0);
    assert!(text.starts_with("!! INCOMPLETE: "), "{text}");
    assert!(text.contains("  verdict          INCOMPLETE"), "{text}");
    let run = &json_review(&file)["runs"][0];
    assert_eq!(
        run["integrity"],
        json!({"status": "incomplete", "torn_tail": false})
    );
    assert_eq!(visits(run, "hang")[0]["outcome"], "unfinished");
    assert_eq!(run["outcome"], Value::Null);

    std::thread::sleep(std::time::Duration::from_millis(1200));
    let mut log = runbook::testing::audit::AuditLog::open_append(&file, "bob").unwrap();
    let f = |v: Value| -> Map<String, Value> { v.as_object().unwrap().clone() };
    log.append("run resumed", None, None, f(json!({"by": "bob"})), true)
        .unwrap();
    log.append(
        "step presented",
        Some("done"),
        Some("local"),
        f(json!({"kind": "end", "title": "Done"})),
        false,
    )
    .unwrap();
    log.seal(f(
        json!({"outcome": "resolved", "duration_ms": 1300, "rto_ms": 60000}),
    ))
    .unwrap();
    let run = &json_review(&file)["runs"][0];
    assert_eq!(run["operators"], json!(["alice", "bob"]));
    assert_eq!(run["integrity"]["status"], "intact_sealed");
    let gap = run["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "crash_until_resume")
        .unwrap();
    assert!(gap["ms"].as_u64().unwrap() >= 1000, "{gap}");
    let text = review(&[path], 0);
    assert!(
        text.contains("  operators        alice → bob (hand-off)"),
        "{text}"
    );
}

/// A tampered file is flagged before anything else, reviewed only up to the break, exit 1.
#[test]
fn a_tampered_file_is_flagged_first_and_reviewed_up_to_the_break() {
    let ran = review_drill();
    let file = ran.file();
    let text = std::fs::read_to_string(file).unwrap();
    // Make `broken` look like it succeeded.
    let forged = text.replacen(
        "\"outcome\":\"failed\",\"exit\":3",
        "\"outcome\":\"ok\",\"exit\":0",
        1,
    );
    assert_ne!(forged, text);
    std::fs::write(file, forged).unwrap();
    let out = runbook(["review", file.to_str().unwrap()]).expect_code(1);
    assert!(out.stdout.starts_with("!! TAMPERED: "), "{}", out.stdout);
    assert!(out.stderr.contains("TAMPERED"), "{}", out.stderr);
    assert!(
        out.stdout.contains("  verdict          TAMPERED"),
        "{}",
        out.stdout
    );
    let doc: Value = serde_json::from_str(
        &runbook(["review", file.to_str().unwrap(), "--format", "json"])
            .expect_code(1)
            .stdout,
    )
    .unwrap();
    let run = &doc["runs"][0];
    assert_eq!(run["integrity"]["status"], "tampered");
    assert!(
        visits(run, "flaky").len() == 1 && visits(run, "broken")[0]["outcome"] == "unfinished",
        "{run}"
    );
    let html = runbook(["review", file.to_str().unwrap(), "--format", "html"])
        .expect_code(1)
        .stdout;
    let body = html.find("<body>").unwrap();
    assert!(
        html[body..]
            .trim_start_matches("<body>\n")
            .starts_with("<p class=\"banner\" role=\"alert\">TAMPERED")
    );
}

#[test]
fn markdown_holds_a_valid_mermaid_gantt() {
    let ran = review_drill();
    let file = ran.file();
    let md = review(&[file.to_str().unwrap(), "--format", "md"], 0);
    let start = md.find("```mermaid\n").expect("a mermaid block") + "```mermaid\n".len();
    let block = &md[start..start + md[start..].find("```").unwrap()];
    check_gantt(block, 7);
}

/// The grammar of a Mermaid gantt as the review writes it: `gantt`, `title`, `dateFormat`,
/// `axisFormat`, `todayMarker`, `section` lines and tasks `name :[tags,] id, start, end`, the
/// RTO as `milestone`, every date in the declared format and every id unique.
fn check_gantt(block: &str, steps: usize) {
    let date = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}$").unwrap();
    let duration = regex::Regex::new(r"^\d+(ms|s|m|h|d)$").unwrap();
    let mut lines = block.lines();
    assert_eq!(lines.next(), Some("gantt"));
    let (mut tasks, mut milestones, mut sections, mut ids) = (0, 0, 0, std::collections::HashSet::new());
    let mut format = None;
    for line in lines {
        let line = line.trim();
        if let Some(f) = line.strip_prefix("dateFormat ") {
            format = Some(f.to_string());
        } else if line.starts_with("title ") || line.starts_with("axisFormat ") || line == "todayMarker off" {
        } else if line.starts_with("section ") {
            sections += 1;
        } else {
            assert!(
                format.is_some() && sections > 0,
                "a task before dateFormat or a section: {line}"
            );
            let (name, data) = line
                .split_once(" :")
                .unwrap_or_else(|| panic!("not a task: {line}"));
            assert!(
                !name.trim().is_empty() && !name.contains(':') && !name.contains('#'),
                "{line}"
            );
            let parts: Vec<&str> = data.split(',').map(str::trim).collect();
            let tags: Vec<&str> = parts
                .iter()
                .copied()
                .take_while(|p| ["crit", "done", "active", "milestone"].contains(p))
                .collect();
            let rest = &parts[tags.len()..];
            assert_eq!(rest.len(), 3, "id, start, end: {line}");
            assert!(ids.insert(rest[0].to_string()), "duplicate id: {line}");
            assert!(date.is_match(rest[1]), "start not in the date format: {line}");
            assert!(
                date.is_match(rest[2]) || duration.is_match(rest[2]),
                "end: {line}"
            );
            if date.is_match(rest[2]) {
                assert!(rest[1] <= rest[2], "ends before it starts: {line}");
            }
            if tags.contains(&"milestone") {
                milestones += 1;
            } else {
                tasks += 1;
            }
        }
    }
    assert_eq!(format.as_deref(), Some("YYYY-MM-DDTHH:mm:ss.SSS"));
    assert_eq!(milestones, 1, "the RTO deadline");
    assert!(tasks >= steps, "a task per step: {block}");
    assert!(block.contains(":crit, "), "the over-target step is crit: {block}");
}

#[test]
fn html_is_one_well_formed_self_contained_file_with_an_svg_timeline() {
    let ran = review_drill();
    let file = ran.file();
    let out_file = ran.audit_dir.join("review.html");
    let out = runbook([
        "review",
        file.to_str().unwrap(),
        "--format",
        "html",
        "-o",
        out_file.to_str().unwrap(),
    ])
    .expect_code(0);
    assert_eq!(out.stdout, "");
    let html = std::fs::read_to_string(&out_file).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("the HTML is well-formed XML");
    let svg = doc
        .descendants()
        .find(|n| n.has_tag_name("svg"))
        .expect("an inline svg");
    assert_eq!(svg.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
    let step_groups = svg
        .descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("class").is_some_and(|c| c.starts_with("step")))
        .count();
    assert_eq!(step_groups, 7, "a bar per step visit");
    assert!(
        svg.descendants().any(|n| n.attribute("class") == Some("rto")),
        "the RTO line"
    );
    assert!(
        svg.descendants().any(|n| n.attribute("class") == Some("target")),
        "target ticks"
    );
    assert!(
        svg.descendants()
            .any(|n| n.attribute("class") == Some("step over")),
        "the over-target step"
    );
    assert!(
        svg.descendants().any(|n| n.has_tag_name("pattern")),
        "wait is hatched, not only coloured"
    );
    for needed in [
        "prefers-color-scheme: dark",
        "@media print",
        "wait (human)",
        "exec (machine)",
    ] {
        assert!(html.contains(needed), "missing {needed}");
    }
    // Self-contained: nothing to fetch.
    for node in doc.descendants() {
        for attr in ["src", "href"] {
            assert!(
                node.attribute(attr).is_none(),
                "<{}> has {attr}",
                node.tag_name().name()
            );
        }
    }
    assert!(!html.contains("url(http") && !html.contains("@import") && !html.contains("<script"));
}

#[test]
fn runs_are_found_by_prefix_and_unknown_runs_are_usage_errors() {
    let ran = review_drill();
    let file = ran.file();
    let id = file.file_stem().unwrap().to_str().unwrap();
    let by_prefix = runbook([
        "review",
        &id[..12],
        "--audit-dir",
        ran.audit_dir.to_str().unwrap(),
    ])
    .expect_code(0);
    assert!(by_prefix.stdout.contains(&format!("Review of run {id}")));
    let by_env = runbook(["review", id])
        .env("RUNBOOK_AUDIT_DIR", &ran.audit_dir)
        .expect_code(0);
    assert_eq!(by_env.stdout, by_prefix.stdout);
    let unknown = runbook(["review", "nope", "--audit-dir", ran.audit_dir.to_str().unwrap()]).expect_code(2);
    assert!(
        unknown.stderr.contains("no run `nope` in the audit dir"),
        "{}",
        unknown.stderr
    );
    let _ = unattended; // used by the history tests
}

/// `review last` is the run that started last, whatever the files' mtimes (a resume writes to
/// an old file); `-o` picks the format from its extension; the text review shows step titles.
#[test]
fn review_last_infers_the_format_from_the_output_file_and_shows_titles() {
    let (audit, scratch, dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let real = drill(audit.path(), scratch.path());
    let newer = "20261123T040000Z-review-drill-0002";
    retime(&real, dir.path(), newer, "2026-11-23T04:00:00Z", 250);
    // Written after the newer run: the newest file, but not the newest run.
    std::thread::sleep(std::time::Duration::from_millis(20));
    retime(
        &real,
        dir.path(),
        "20261122T030211Z-review-drill-0001",
        "2026-11-22T03:02:11Z",
        250,
    );
    let d = dir.path().to_str().unwrap();
    let text = review(&["last", "--audit-dir", d], 0);
    assert!(text.contains(&format!("Review of run {newer}")), "{text}");
    let steps = text
        .lines()
        .skip_while(|l| !l.starts_with("Steps"))
        .nth(1)
        .unwrap();
    assert!(steps.starts_with("  #  step "), "{steps}");
    assert!(steps.contains(" title "), "{steps}");
    assert!(text.contains("Prepare the scratch directory"), "{text}");

    for (name, starts) in [
        ("r.html", "<!DOCTYPE html>"),
        ("r.md", "# "),
        ("r.json", "{"),
        ("r.txt", "Review of run"),
    ] {
        let file = dir.path().join(name);
        runbook(["review", "last", "--audit-dir", d, "-o"])
            .arg(&file)
            .expect_code(0);
        let written = std::fs::read_to_string(&file).unwrap();
        assert!(
            written.starts_with(starts),
            "{name}: {}",
            &written[..written.len().min(200)]
        );
    }
    serde_json::from_str::<Value>(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    // --format still wins over the extension.
    let file = dir.path().join("forced.html");
    runbook(["review", "last", "--format", "md", "--audit-dir", d, "-o"])
        .arg(&file)
        .expect_code(0);
    assert!(std::fs::read_to_string(&file).unwrap().starts_with("# "));

    let empty = tempfile::tempdir().unwrap();
    let out = runbook(["review", "last", "--audit-dir", empty.path().to_str().unwrap()]).expect_code(2);
    assert_eq!(
        out.stderr,
        format!(
            "runbook: error: `last`: no runs in the audit dir `{}` (set it with --audit-dir or RUNBOOK_AUDIT_DIR)\n",
            empty.path().display()
        )
    );
}

/// Each step's wall-clock time (UTC, as every time of a review) beside its offset on the RTO
/// clock, in text, Markdown and HTML: what an operator lines up with logs and dashboards.
#[test]
fn the_timeline_shows_each_steps_clock_time() {
    let ran = review_drill();
    let file = ran.file();
    let path = file.to_str().unwrap();
    let doc = json_review(file);
    let run = &doc["runs"][0];
    let start = chrono::DateTime::parse_from_rfc3339(run["clock_start"].as_str().unwrap()).unwrap();
    let clock = |ms: &Value| {
        (start + chrono::Duration::milliseconds(ms.as_i64().unwrap()))
            .with_timezone(&chrono::Utc)
            .format("%H:%M:%S")
            .to_string()
    };
    let text = review(&[path], 0);
    let md = review(&[path, "--format", "md"], 0);
    let html = review(&[path, "--format", "html"], 0);
    assert!(text.contains(" time (UTC) "), "{text}");
    for (i, visit) in run["steps"].as_array().unwrap().iter().enumerate() {
        let at = clock(&visit["start_ms"]);
        let step = visit["step"].as_str().unwrap();
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("  {}  {step} ", i + 1)))
            .unwrap_or_else(|| panic!("no row for {step} in:\n{text}"));
        let after = row
            .split_once(&format!(" {at} "))
            .map(|(_, rest)| rest.trim_start());
        assert!(
            after.is_some_and(|rest| rest.starts_with('+')),
            "{at} then the offset: {row}"
        );
        assert!(md.contains(&format!("| {} | {step} | {at} | +", i + 1)), "{md}");
        assert!(
            html.contains(&format!("<td>{step}</td><td>{at}</td>")),
            "{step} at {at}"
        );
        assert!(
            html.contains(&format!("{}. {step} at {at} UTC: took", i + 1)),
            "tooltip of {step}"
        );
    }
    // The failed attempt in the record has its time too.
    let broken = visits(run, "broken")[0];
    let attempt = &broken["attempts"][0];
    let failed_at = attempt["start_ms"].as_u64().unwrap() + attempt["exec_ms"].as_u64().unwrap();
    let at = clock(&Value::from(failed_at));
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("  {at} +")) && l.contains("broken: attempt 1 failed")),
        "{text}"
    );
}

/// Regression: the verdict said "resolved in 12s" (its words are recorded in the seal) and the
/// total beside it "12.8s": one formatter for both now, whatever the run's length.
#[test]
fn the_total_reads_as_the_verdict_says_it() {
    let (audit, scratch, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let real = drill(audit.path(), scratch.path());
    // The reason the executor itself words for a resolved drill of that length.
    let reason = |total_ms: u64| {
        use runbook::testing::events::RunOutcome;
        let end = runbook::testing::executor::End {
            outcome: RunOutcome::Ended(runbook::testing::runbook::Outcome::Resolved),
            message: None,
        };
        runbook::testing::executor::verdict(
            &end,
            std::time::Duration::from_millis(total_ms),
            std::time::Duration::from_secs(60),
            &[],
        )
        .reason
    };
    let file = retime_with(
        &real,
        out.path(),
        "20261122T030211Z-review-drill-0001",
        "2026-11-22T03:02:11Z",
        457,
        &Retime {
            reason: Some(&reason),
            ..Retime::default()
        },
    );
    let doc = json_review(&file);
    let total_ms = doc["runs"][0]["total_ms"].as_u64().unwrap();
    assert!(
        total_ms >= 10_000 && total_ms % 1000 >= 500,
        "a total whose rounding and cutting differ: {total_ms}"
    );
    let said = reason(total_ms);
    let took = said
        .strip_prefix("resolved in ")
        .and_then(|r| r.split_once(','))
        .map(|(t, _)| t.to_string())
        .unwrap();
    let text = review(&[file.to_str().unwrap()], 0);
    assert!(
        text.contains(&format!("  total            {took} of the 1m RTO")),
        "{took}:\n{text}"
    );
    assert!(
        text.contains(&format!("  verdict          PASS: {said}")),
        "{text}"
    );
    let md = review(&[file.to_str().unwrap(), "--format", "md"], 0);
    assert!(md.contains(&format!("| Total | {took} of the 1m RTO")), "{md}");
    // A comparison's totals and trend say it the same way.
    let other = retime_with(
        &real,
        out.path(),
        "20261123T030211Z-review-drill-0002",
        "2026-11-23T03:02:11Z",
        457,
        &Retime {
            reason: Some(&reason),
            ..Retime::default()
        },
    );
    let both = review(&[file.to_str().unwrap(), other.to_str().unwrap()], 0);
    let totals = both.lines().find(|l| l.starts_with("  TOTAL ")).unwrap();
    assert_eq!(
        totals.split_whitespace().collect::<Vec<_>>(),
        ["TOTAL", &took, &took]
    );
    assert!(
        both.contains(&format!("the total went from {took} to {took}")),
        "{both}"
    );
}

/// Several runs: the comparison, and how to see one run in full, not every full review after
/// it (five runs made a screenful each).
#[test]
fn several_runs_print_the_comparison_alone_with_how_to_see_one() {
    let (audit, scratch, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let real = drill(audit.path(), scratch.path());
    let a = retime(
        &real,
        out.path(),
        "20261122T030211Z-review-drill-0001",
        "2026-11-22T03:02:11Z",
        300,
    );
    let b = retime(
        &real,
        out.path(),
        "20261123T030211Z-review-drill-0002",
        "2026-11-23T03:02:11Z",
        250,
    );
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let text = review(&[a, b], 0);
    assert!(text.starts_with("Comparison of 2 runs"), "{text}");
    assert!(!text.contains("Review of run"), "{text}");
    let hint = format!("Each run in full: runbook review RUN (the newest: runbook review {b})");
    assert!(text.ends_with(&format!("\n{hint}\n")), "{text}");
    let md = review(&[a, b, "--format", "md"], 0);
    assert!(!md.contains("Review: "), "{md}");
    assert!(
        md.ends_with(&format!(
            "Each run in full: `runbook review RUN` (the newest: `runbook review {b}`)\n"
        )),
        "{md}"
    );
    let html = review(&[a, b, "--format", "html"], 0);
    assert!(!html.contains("<section class=\"run\">"), "{html}");
    assert!(html.contains(&html_escaped(&hint)), "{html}");
    // JSON keeps every run: it is for programs.
    let doc: Value = serde_json::from_str(&review(&[a, b, "--format", "json"], 0)).unwrap();
    assert_eq!(doc["runs"].as_array().unwrap().len(), 2);
    // The hint's command is one that works.
    let one = review(&[b], 0);
    assert!(
        one.starts_with("Review of run 20261123T030211Z-review-drill-0002\n"),
        "{one}"
    );
}

fn html_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Incidents and drills compared together are said to be mixed, each run's mode is in the
/// table, and each mode has its own trend (one across both would compare unlike runs).
#[test]
fn a_comparison_mixing_incidents_and_drills_says_so_and_trends_each() {
    let (audit, scratch, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let real = drill(audit.path(), scratch.path());
    let runs = [
        ("incident", 500),
        ("drill", 400),
        ("incident", 450),
        ("drill", 300),
        ("drill", 200),
    ];
    let mut paths = Vec::new();
    for (i, (mode, step)) in runs.iter().enumerate() {
        let run = format!("2026112{}T030211Z-review-drill-000{i}", i + 1);
        let base = format!("2026-11-2{}T03:02:11Z", i + 1);
        let with = Retime {
            mode: Some(mode),
            ..Retime::default()
        };
        paths.push(
            retime_with(&real, out.path(), &run, &base, *step, &with)
                .display()
                .to_string(),
        );
    }
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let text = review(&args, 0);
    assert!(
        text.contains("  note: this comparison mixes 2 incidents and 3 drills: "),
        "{text}"
    );
    let modes = text.lines().find(|l| l.starts_with("  mode ")).unwrap();
    assert_eq!(
        modes.split_whitespace().collect::<Vec<_>>(),
        ["mode", "incident", "drill", "incident", "drill", "drill"]
    );
    assert!(
        text.contains("\nTrend of the incidents: Over the last 2 incidents, the total went from "),
        "{text}"
    );
    assert!(
        text.contains("\nTrend of the drills: Over the last 3 drills, the total went from "),
        "{text}"
    );
    assert!(!text.contains("Over the last 5 runs"), "{text}");
    let doc: Value =
        serde_json::from_str(&review(&[args.as_slice(), &["--format", "json"]].concat(), 0)).unwrap();
    let c = &doc["comparison"];
    assert_eq!(
        c["modes"],
        json!([{"mode": "incident", "runs": 2}, {"mode": "drill", "runs": 3}])
    );
    assert_eq!(c["trend"], Value::Null);
    let trends: Vec<(&str, u64)> = c["trends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["mode"].as_str().unwrap(), t["runs"].as_u64().unwrap()))
        .collect();
    assert_eq!(trends, [("incident", 2), ("drill", 3)]);
    assert_eq!(c["trends"][1]["direction"], "faster");
    let md = review(&[args.as_slice(), &["--format", "md"]].concat(), 0);
    assert!(
        md.contains("> This comparison mixes 2 incidents and 3 drills"),
        "{md}"
    );
    assert!(
        md.contains("**Trend of the drills:** Over the last 3 drills"),
        "{md}"
    );
    let html = review(&[args.as_slice(), &["--format", "html"]].concat(), 0);
    assert!(
        html.contains("This comparison mixes 2 incidents and 3 drills"),
        "{html}"
    );
    // Runs of one mode: no note, one trend, as before.
    let drills: Vec<&str> = vec![args[1], args[3], args[4]];
    let text = review(&drills, 0);
    assert!(!text.contains("mixes"), "{text}");
    assert!(text.contains("\nTrend: Over the last 3 runs"), "{text}");
}
