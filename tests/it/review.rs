//! `runbook review` on audit files written by real runs: the unattended drill (a failure, a
//! retry, an over-target step), the same runbook run by a person in a pseudo-terminal (a note,
//! an edit, a retry chosen by hand), a crashed run, a resumed one and a tampered one.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::support::cmd::runbook;
use crate::support::runs::{drill, interactive, retime, unattended};

fn review(args: &[&str], code: i32) -> String {
    runbook(["review"]).args(args).expect_code(code).stdout
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
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = drill(audit.path(), scratch.path());
    let doc = json_review(&file);
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
    let mut log = runbook::audit::AuditLog::open_append(&file, "bob").unwrap();
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
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = drill(audit.path(), scratch.path());
    let text = std::fs::read_to_string(&file).unwrap();
    // Make `broken` look like it succeeded.
    let forged = text.replacen(
        "\"outcome\":\"failed\",\"exit\":3",
        "\"outcome\":\"ok\",\"exit\":0",
        1,
    );
    assert_ne!(forged, text);
    std::fs::write(&file, forged).unwrap();
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
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = drill(audit.path(), scratch.path());
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
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = drill(audit.path(), scratch.path());
    let out_file = audit.path().join("review.html");
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
    let (audit, scratch) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = drill(audit.path(), scratch.path());
    let id = file.file_stem().unwrap().to_str().unwrap();
    let by_prefix =
        runbook(["review", &id[..12], "--audit-dir", audit.path().to_str().unwrap()]).expect_code(0);
    assert!(by_prefix.stdout.contains(&format!("Review of run {id}")));
    let by_env = runbook(["review", id])
        .env("RUNBOOK_AUDIT_DIR", audit.path())
        .expect_code(0);
    assert_eq!(by_env.stdout, by_prefix.stdout);
    let unknown = runbook(["review", "nope", "--audit-dir", audit.path().to_str().unwrap()]).expect_code(2);
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
