//! Team (design §15): notifications to real loopback receivers (CloudEvents, Slack,
//! PagerDuty), retries, dead receivers that never delay a step, the escalation deadline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cmd::runbook;
use crate::support::http::{Answer, Receiver, closed_port};
use crate::support::trail::audit_files;
use crate::support::trail::events;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A runbook whose one step runs `command`, with this RTO (and more).
fn book(dir: &Path, rto: &str, command: &str, extra: &str) -> PathBuf {
    write(
        dir,
        "book.yaml",
        &format!(
            "version: 1\nid: team-book\ntitle: Team book\nrto: {rto}\n{extra}steps:\n  - id: work\n    title: Work\n    run: {command}\n  - id: done\n    title: Done\n    end: resolved\n"
        ),
    )
}

fn types(requests: &[crate::support::http::Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn duration_of(events: &[Value], step: &str) -> u64 {
    events
        .iter()
        .find(|e| e["event"] == "step finished" && e["step"] == step)
        .and_then(|e| e["duration_ms"].as_u64())
        .expect("the step finished")
}

#[test]
fn the_warning_and_the_breach_arrive_while_a_long_step_runs() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let receiver = Receiver::start(Answer::Ok);
    // RTO 2s: the warning at 1.6s and the breach at 2s, both while `sleep 4` runs silently.
    let file = book(dir.path(), "2s", "sleep 4", "");
    let started = Instant::now();
    let out = runbook(["run", "--yes", "--notify"])
        .arg(receiver.url("/hook/secret-token"))
        .arg(&file)
        .arg("--audit-dir")
        .arg(audit.path())
        .expect_code(0);
    let requests = receiver.requests();
    let kinds = types(&requests);
    assert_eq!(
        kinds,
        [
            "runbook.run.started",
            "runbook.rto.warning",
            "runbook.rto.breached",
            "runbook.run.finished"
        ],
        "{}",
        out.stderr
    );
    // Sent when the clock passed them, not when the step ended (4 s in).
    let launch = started.duration_since(receiver.started);
    let at = |i: usize| requests[i].at.saturating_sub(launch);
    assert!(
        at(1) >= Duration::from_millis(1500) && at(1) < Duration::from_millis(3000),
        "warning at {:?}",
        at(1)
    );
    assert!(
        at(2) >= Duration::from_millis(1900) && at(2) < Duration::from_millis(3500),
        "breach at {:?}",
        at(2)
    );
    // Structured-mode CloudEvents 1.0.
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/hook/secret-token");
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("application/cloudevents+json"),
            "{:?}",
            r.headers
        );
        let e = r.json();
        for attr in [
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "datacontenttype",
            "data",
        ] {
            assert!(e.get(attr).is_some(), "no `{attr}` in {e}");
        }
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["data"]["runbook"], "team-book");
    }
    let ids: std::collections::HashSet<String> = requests
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 4, "every event has its own id");
    // The end carries the full head: the seal's hash.
    let files = audit_files(audit.path());
    let trail = events(&files[0]);
    let seal = trail.last().unwrap();
    assert_eq!(seal["event"], "run finished");
    let finished = requests[3].json();
    assert_eq!(finished["data"]["head"], seal["hash"]);
    assert_eq!(finished["data"]["outcome"], "resolved");
    assert_eq!(finished["data"]["within_rto"], false);
    // Every delivery before the seal is chained; the URL is there as scheme and host only.
    let chained: Vec<&Value> = trail.iter().filter(|e| e["event"] == "notification").collect();
    assert_eq!(chained.len(), 3, "{trail:#?}");
    for n in &chained {
        assert_eq!(n["channel"], "http://127.0.0.1");
        assert_eq!(n["outcome"], "delivered");
        assert_eq!(n["status"], 200);
        assert_eq!(n["format"], "cloudevents");
    }
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!text.contains("secret-token"), "the URL's path is never recorded");
    // The last one goes beside the trail, after the seal; the trail still verifies.
    let run = seal["run"].as_str().unwrap();
    let after = std::fs::read_to_string(audit.path().join(run).join("notifications.jsonl")).unwrap();
    let after: Vec<Value> = after.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["type"], "runbook.run.finished");
    assert_eq!(after[0]["outcome"], "delivered");
    runbook(["audit", "verify"]).arg(&files[0]).expect_code(0);
}

#[test]
fn a_receiver_that_answers_500_then_200_gets_the_retry() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let receiver = Receiver::start(Answer::FailFirst(1));
    let file = book(dir.path(), "5m", "true", "");
    let inventory = write(
        dir.path(),
        "inventory.yaml",
        "notify:\n  - url_from: env:HOOK_URL\n    events: [run.started]\n",
    );
    runbook(["run", "--yes"])
        .arg(&file)
        .arg("--inventory")
        .arg(&inventory)
        .env("HOOK_URL", receiver.url("/x"))
        .arg("--audit-dir")
        .arg(audit.path())
        .expect_code(0);
    let requests = receiver.wait_for(Duration::from_secs(5), "two tries", |r| r.len() >= 2);
    assert_eq!(requests.len(), 2, "only run.started, tried twice");
    assert_eq!(requests[0].body, requests[1].body, "the same event is retried");
    assert!(
        requests[1].at - requests[0].at >= Duration::from_millis(400),
        "with a backoff"
    );
    // Delivered after the seal (the run is quicker than the backoff): beside the trail.
    let trail = events(&audit_files(audit.path())[0]);
    let run = trail[0]["run"].as_str().unwrap();
    let after = std::fs::read_to_string(audit.path().join(run).join("notifications.jsonl")).unwrap();
    let n: Value = serde_json::from_str(after.lines().next().unwrap()).unwrap();
    assert_eq!(n["type"], "runbook.run.started");
    assert_eq!(n["outcome"], "delivered");
    assert_eq!(n["attempts"], 2);
    assert_eq!(n["tries"][0]["status"], 500);
    assert_eq!(n["tries"][1]["status"], 200);
}

/// A closed port and a receiver that accepts and never answers: the step takes what its
/// command takes, and the run ends within `--notify-timeout` of the seal.
#[test]
fn a_dead_receiver_never_delays_a_step() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let silent = Receiver::start(Answer::Never);
    let closed = format!("http://127.0.0.1:{}/hook", closed_port());
    let file = write(
        dir.path(),
        "book.yaml",
        "version: 1\nid: dead\ntitle: Dead receivers\nrto: 5m\nsteps:\n  - id: fail\n    title: Fail\n    run: exit 3\n    on_failure: work\n  - id: work\n    title: Work\n    run: sleep 0.2\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    let started = Instant::now();
    let out = runbook(["run", "--yes", "--notify-timeout", "2s", "--notify"])
        .arg(format!("{},{}", silent.url("/hook"), closed))
        .arg(&file)
        .arg("--audit-dir")
        .arg(audit.path())
        .expect_code(0);
    let took = started.elapsed();
    let trail = events(&audit_files(audit.path())[0]);
    // The step after a failure (whose notice is stuck at both receivers) is not delayed.
    let work = duration_of(&trail, "work");
    assert!(work < 1200, "the step took {work} ms");
    // The whole run: its steps, then at most --notify-timeout (2 s) waiting for the senders.
    assert!(
        took < Duration::from_secs(6),
        "the run took {took:?}\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("not delivered"), "{}", out.stderr);
    // Every delivery is recorded, the dead ones too.
    let run = trail[0]["run"].as_str().unwrap();
    let after = std::fs::read_to_string(audit.path().join(run).join("notifications.jsonl")).unwrap();
    let mut all: Vec<Value> = trail
        .iter()
        .filter(|e| e["event"] == "notification")
        .cloned()
        .collect();
    all.extend(after.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
    for kind in [
        "runbook.run.started",
        "runbook.step.failed",
        "runbook.run.finished",
    ] {
        assert_eq!(
            all.iter().filter(|n| n["type"] == kind).count(),
            2,
            "{kind} once per receiver: {all:#?}"
        );
    }
    assert!(all.iter().all(|n| n["outcome"] != "delivered"), "{all:#?}");
    assert!(all.iter().any(|n| n["error"] == "connection refused"), "{all:#?}");
    runbook(["audit", "verify"])
        .arg(&audit_files(audit.path())[0])
        .expect_code(0);
}

#[test]
fn pagerduty_triggers_on_a_failure_and_resolves_on_a_resolved_end() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let receiver = Receiver::start(Answer::Ok);
    let file = write(
        dir.path(),
        "book.yaml",
        "version: 1\nid: paged\ntitle: Paged\nrto: 5m\nsteps:\n  - id: check\n    title: Check\n    run: exit 1\n    on_failure: fix\n  - id: fix\n    title: Fix\n    run: 'true'\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    let key = write(dir.path(), "pd.key", "R0UT1NGKEY0000000000000000000000\n");
    let inventory = write(
        dir.path(),
        "inventory.yaml",
        &format!(
            "notify:\n  - url: {}\n    format: pagerduty\n    routing_key_from: file:{}\n",
            receiver.url("/v2/enqueue"),
            key.display()
        ),
    );
    runbook(["run", "--yes"])
        .arg(&file)
        .arg("--inventory")
        .arg(&inventory)
        .arg("--audit-dir")
        .arg(audit.path())
        .expect_code(0);
    let requests = receiver.wait_for(Duration::from_secs(5), "trigger and resolve", |r| r.len() >= 2);
    let run = events(&audit_files(audit.path())[0])[0]["run"]
        .as_str()
        .unwrap()
        .to_string();
    let trigger = requests[0].json();
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "R0UT1NGKEY0000000000000000000000");
    assert_eq!(trigger["dedup_key"], run.as_str());
    for field in ["summary", "source", "severity"] {
        assert!(
            trigger["payload"][field].is_string(),
            "payload.{field}: {trigger}"
        );
    }
    assert_eq!(trigger["payload"]["severity"], "critical");
    let details = &trigger["payload"]["custom_details"];
    assert_eq!(details["step"], "check");
    assert_eq!(details["outcome"], "failed");
    assert_eq!(details["exit"], 1);
    assert_eq!(details["attempt"], 1);
    let summary = trigger["payload"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("step `check` failed on ") && summary.contains("(attempt 1) in Paged (paged)"),
        "{summary}"
    );
    let resolve = requests[1].json();
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], run.as_str());
    assert_eq!(requests.len(), 2, "start is not paged");
    let text = std::fs::read_to_string(&audit_files(audit.path())[0]).unwrap();
    assert!(!text.contains("R0UT1NGKEY"), "the routing key is a secret");
}

#[test]
fn slack_gets_text_and_blocks() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let receiver = Receiver::start(Answer::Ok);
    let file = book(dir.path(), "5m", "'true'", "");
    let inventory = write(
        dir.path(),
        "inventory.yaml",
        &format!(
            "notify:\n  - url: {}\n    format: slack\n    events: [run.finished]\n",
            receiver.url("/services/T/B/X")
        ),
    );
    runbook(["run", "--yes"])
        .arg(&file)
        .arg("--inventory")
        .arg(&inventory)
        .arg("--audit-dir")
        .arg(audit.path())
        .expect_code(0);
    let requests = receiver.wait_for(Duration::from_secs(5), "the end", |r| !r.is_empty());
    let m = requests[0].json();
    let text = m["text"].as_str().unwrap();
    assert!(
        text.contains("runbook.run.finished") && text.contains("resolved"),
        "{text}"
    );
    assert_eq!(m["blocks"][0]["type"], "section");
}

#[test]
fn the_escalation_deadline_is_loud_recorded_and_notified() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let receiver = Receiver::start(Answer::Ok);
    let file = book(
        dir.path(),
        "1s",
        "sleep 3",
        "escalate: {after: 2s, to: the service owner (+1 555 0100)}\n",
    );
    let out = runbook(["run", "--yes", "--notify"])
        .arg(receiver.url("/"))
        .arg(&file)
        .arg("--audit-dir")
        .arg(audit.path())
        .expect_code(0);
    assert!(
        out.stderr.contains(
            "ESCALATE NOW: not resolved 2s into the incident: call the service owner (+1 555 0100)"
        ),
        "{}",
        out.stderr
    );
    // Said while the step ran, not after it.
    let escalate_at = out.stderr.find("ESCALATE NOW").unwrap();
    let finished_at = out.stderr.find("work: ok").unwrap_or(usize::MAX);
    assert!(escalate_at < finished_at, "{}", out.stderr);
    let trail = events(&audit_files(audit.path())[0]);
    let due = trail
        .iter()
        .find(|e| e["event"] == "escalation due")
        .expect("recorded");
    assert_eq!(due["to"], "the service owner (+1 555 0100)");
    assert_eq!(due["after_ms"], 2000);
    let kinds = types(&receiver.requests());
    assert!(kinds.contains(&"runbook.escalation.due".to_string()), "{kinds:?}");
    let e = receiver
        .requests()
        .into_iter()
        .map(|r| r.json())
        .find(|e| e["type"] == "runbook.escalation.due")
        .unwrap();
    assert_eq!(e["data"]["to"], "the service owner (+1 555 0100)");
}

/// The escalation deadline passes while the operator is typing at a prompt, in a real pty: the
/// loud line is on the screen at once, on a row of its own, and what is being typed is untouched
/// (its row, the cursor after it); the prompt then takes the rest of the answer, the run goes on
/// and ends, and the line is left in what was printed, once.
#[test]
fn the_escalation_line_shows_while_a_prompt_is_open_without_disturbing_it() {
    use crate::support::pty::{self, COLS, ROWS, keys, wait_exit};
    use crate::support::wait;
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A manual step with a typed confirmation: the run's first prompt is the one typed into,
    // open from the start of the RTO clock.
    let file = write(
        dir.path(),
        "book.yaml",
        "version: 1\nid: esc-prompt\ntitle: Escalation at a prompt\nrto: 5m\nescalate: {after: 3s, to: the duty manager}\nsteps:\n  - id: drop\n    title: Drop it\n    manual: Drop it by hand.\n    confirm: drop\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    let line = "⚠⚠ ESCALATE NOW: not resolved 3s into the incident: call the duty manager";
    let asked = "Type `drop` to go ahead (empty to cancel) ›";
    let mut s = pty::spawn(&["run", file.to_str().unwrap()], audit.path());
    s.exp_string("to go ahead").unwrap();
    keys(&mut s, "dr");
    // The prompt's row (text and index) and the cursor, as a person sees them.
    let prompt = |s: &pty::Session| {
        let screen = s.screen();
        let rows: Vec<String> = screen.rows(0, COLS).map(|r| r.trim_end().to_string()).collect();
        let at: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].contains(asked)).collect();
        (at, rows, screen.cursor_position(), screen.contents())
    };
    let typed = |s: &pty::Session, text: &str| {
        let (at, rows, _, shown) = prompt(s);
        let ok = at.len() == 1 && rows[at[0]].ends_with(&format!("{asked} {text}"));
        (ok, shown)
    };
    wait::until_seen(Duration::from_secs(10), "`dr` after the prompt", || {
        typed(&s, "dr")
    });
    let (_, _, (_, column), shown) = prompt(&s);
    assert!(
        !shown.contains("ESCALATE"),
        "the escalation came before the prompt was open (the prompt must be there within 3s): {shown}"
    );

    // The deadline passes while the prompt waits: the line is on the screen before any answer.
    wait::until_seen(
        Duration::from_secs(10),
        "the escalation at the open prompt",
        || {
            let shown = s.screen().contents();
            (shown.contains(line), shown)
        },
    );
    let (at, rows, (cursor_row, cursor_column), shown) = prompt(&s);
    assert_eq!(at.len(), 1, "the prompt is on the screen once: {shown}");
    let row = at[0];
    assert!(
        rows[row].ends_with(&format!("{asked} dr")),
        "the typing is intact: {shown}"
    );
    // The cursor is where the typing goes on: right after `dr`, on the prompt's row.
    assert_eq!(usize::from(cursor_row), row, "{shown}");
    assert_eq!(cursor_column, column, "{shown}");
    assert_eq!(usize::from(cursor_column), rows[row].chars().count(), "{shown}");
    // The line is a row of its own, loud, and the budget still ticks on the last row.
    let loud = rows
        .iter()
        .position(|r| r == line)
        .unwrap_or_else(|| panic!("{shown}"));
    assert_ne!(loud, row);
    let cell = s.screen().cell(loud as u16, 0).cloned().unwrap();
    assert!(cell.inverse() && cell.bold(), "the line is loud: {cell:?}");
    assert!(rows[usize::from(ROWS) - 1].contains("RTO left"), "{shown}");

    keys(&mut s, "op");
    wait::until_seen(Duration::from_secs(10), "`drop` after the prompt", || {
        typed(&s, "drop")
    });
    keys(&mut s, "\r");
    s.exp_string("How did it go?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
    let shown = s.screen().contents();
    assert_eq!(
        shown.matches(line).count(),
        1,
        "left in what was printed, once: {shown}"
    );
    let trail = events(&audit_files(audit.path())[0]);
    let answer = trail
        .iter()
        .find(|e| e["event"] == "answer" && e["step"] == "drop")
        .expect("the typed confirmation is recorded");
    assert_eq!(
        answer["answer"], "drop",
        "what was typed reached the prompt whole: {answer}"
    );
    assert!(
        trail.iter().any(|e| e["event"] == "escalation due"),
        "recorded: {trail:#?}"
    );
}

#[test]
fn escalate_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let file = book(dir.path(), "5m", "'true'", "escalate: {after: 15, to: ''}\n");
    let out = runbook(["validate"]).arg(&file).expect_code(2);
    assert!(
        out.stderr.contains("invalid duration in `escalate.after`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("`escalate.to` is empty"), "{}", out.stderr);
}

#[test]
fn a_bad_notify_entry_is_a_validation_error_and_stops_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = write(
        dir.path(),
        "inventory.yaml",
        "notify:\n  - url_from: env:NOPE_UNSET_HOOK\n    format: slak\n    events: [rto.breach]\n",
    );
    let out = runbook(["validate", "--inventory"])
        .arg(&inventory)
        .expect_code(2);
    assert!(out.stderr.contains("unknown format `slak`"), "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown event `rto.breach`"),
        "{}",
        out.stderr
    );
    let ok = write(
        dir.path(),
        "ok.yaml",
        "notify:\n  - url_from: env:NOPE_UNSET_HOOK\n",
    );
    let file = book(dir.path(), "5m", "'true'", "");
    let audit = tempfile::tempdir().unwrap();
    let out = runbook(["run", "--yes"])
        .arg(&file)
        .arg("--inventory")
        .arg(&ok)
        .arg("--audit-dir")
        .arg(audit.path())
        .expect_code(2);
    assert!(out.stderr.contains("NOPE_UNSET_HOOK"), "{}", out.stderr);
    assert!(audit_files(audit.path()).is_empty(), "nothing ran");
}

/// `validate --format sarif` is a SARIF 2.1.0 log that the official schema accepts, with a
/// result per diagnostic at its file:line:col and its level.
#[test]
fn validate_speaks_sarif_2_1_0() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "broken.yaml",
        "version: 1\nid: broken\ntitle: Broken\nrto: 5m\nsteps:\n  - id: a\n    title: A\n    run: rm -rf /tmp/x\n    next: nowhere\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    write(
        dir.path(),
        "typo.yaml",
        "version: 1\nid: typo\ntitle: Typo\nrto: 5m\nsteps:\n  - id: done\n    title: Done\n    end: resolved\n    timout: 5s\n",
    );
    let out = runbook(["validate", ".", "--format", "sarif"])
        .current_dir(dir.path())
        .expect_code(2);
    let log: Value = serde_json::from_str(&out.stdout).unwrap();
    let sarif = dir.path().join("out.sarif");
    std::fs::write(&sarif, &out.stdout).unwrap();
    let schema = crate::support::cmd::root().join("tests/data/team/sarif-schema-2.1.0.json");
    let check = std::process::Command::new("python3")
        .arg("-c")
        .arg("import json,sys,jsonschema\nschema=json.load(open(sys.argv[1]))\njsonschema.Draft4Validator(schema).validate(json.load(open(sys.argv[2])))\nprint('valid')")
        .arg(&schema)
        .arg(&sarif)
        .output()
        .expect("python3 runs");
    assert!(
        check.status.success(),
        "not valid SARIF 2.1.0: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "runbook");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    let find = |needle: &str| {
        results
            .iter()
            .find(|r| r["message"]["text"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no result about {needle}: {results:#?}"))
    };
    let unknown_step = find("unknown step `nowhere`");
    assert_eq!(unknown_step["level"], "error");
    let loc = &unknown_step["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "broken.yaml");
    assert_eq!(loc["region"]["startLine"], 9);
    assert_eq!(loc["region"]["startColumn"], 11);
    assert_eq!(loc["region"]["endColumn"], 18, "`nowhere` underlined");
    let index = unknown_step["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(rules[index]["id"], unknown_step["ruleId"]);
    assert_eq!(rules[index]["name"], "reference");
    let destructive = find("destructive");
    assert_eq!(destructive["level"], "warning");
    assert_eq!(
        destructive["locations"][0]["physicalLocation"]["region"]["startLine"],
        8
    );
    let typo = find("unknown field `timout`");
    assert_eq!(
        typo["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "typo.yaml"
    );
    assert_eq!(typo["locations"][0]["physicalLocation"]["region"]["startLine"], 9);
    assert!(
        typo["message"]["text"].as_str().unwrap().contains("timeout"),
        "the hint is kept"
    );
}

/// A small catalog: a runbook for `ServiceDown` alerts taking its input from a label, and one
/// found by the alert's `runbook_url` annotation.
fn alert_catalog(dir: &Path) -> PathBuf {
    let catalog = dir.join("catalog");
    std::fs::create_dir_all(&catalog).unwrap();
    write(
        &catalog,
        "api-down.yaml",
        "version: 1\nid: api-down\ntitle: API down\nrto: 5m\nalert:\n  match: {alertname: ServiceDown}\n  inputs: {service: labels.service, summary: commonAnnotations.summary}\ninputs:\n  service: {description: The unit}\n  summary: {description: What the alert says, default: none}\nsteps:\n  - id: look\n    title: Look\n    run: 'echo \"looking at $service: $summary\"'\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    write(
        &catalog,
        "disk-full.yaml",
        "version: 1\nid: disk-full\ntitle: Disk full\nrto: 5m\nsteps:\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    catalog
}

/// A real Alertmanager posts its own webhook (version 4) to a receiver; the body it captured
/// feeds `runbook match --alert` and `runbook run --alert`.
/// `runbook match [EXTRA] --alert ALERT --dir CATALOG`, expecting `code`.
fn match_alert(alert: &Path, catalog: &Path, extra: &[&str], code: i32) -> crate::support::cmd::Outcome {
    runbook(["match"])
        .args(extra)
        .arg("--alert")
        .arg(alert)
        .arg("--dir")
        .arg(catalog)
        .expect_code(code)
}

/// `runbook run ID --yes --alert ALERT --dir CATALOG` into an audit directory of its own:
/// what it printed and the trail's first event (`run started`).
fn run_for_alert(id: &str, alert: &Path, catalog: &Path) -> (crate::support::cmd::Outcome, Value) {
    let audit = tempfile::tempdir().unwrap();
    let out = runbook(["run", id, "--yes", "--alert"])
        .arg(alert)
        .arg("--dir")
        .arg(catalog)
        .arg("--audit-dir")
        .arg(audit.path())
        .expect_code(0);
    let started = events(&audit_files(audit.path())[0]).swap_remove(0);
    (out, started)
}

#[test]
fn an_alertmanager_webhook_names_the_runbook_and_gives_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Answer::Ok);
    let Some(am) = crate::support::alertmanager::Alertmanager::start(dir.path(), &receiver.url("/alert"))
    else {
        panic!(
            "{} is not installed: apt-get install prometheus-alertmanager (scripts/test.sh does)",
            crate::support::alertmanager::BINARY
        );
    };
    am.fire(&serde_json::json!([{
        "labels": {"alertname": "ServiceDown", "service": "team-api", "severity": "page"},
        "annotations": {"summary": "the API does not answer /health"}
    }]));
    let got = receiver.wait_for(Duration::from_secs(20), "Alertmanager's webhook", |r| {
        !r.is_empty()
    });
    let payload = got[0].json();
    assert_eq!(payload["version"], "4", "{payload}");
    let fingerprint = payload["alerts"][0]["fingerprint"].as_str().unwrap().to_string();
    let alert = write(dir.path(), "alert.json", &String::from_utf8_lossy(&got[0].body));
    let catalog = alert_catalog(dir.path());

    let out = match_alert(&alert, &catalog, &[], 0);
    assert!(
        out.stdout
            .starts_with("api-down\tAPI down\t(alert.match alertname=ServiceDown)"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("disk-full"), "{}", out.stdout);
    // The shipped catalog: service-down answers ServiceDown.
    let shipped = crate::support::cmd::root().join("runbooks");
    let out = match_alert(&alert, &shipped, &[], 0);
    assert!(out.stdout.starts_with("service-down\t"), "{}", out.stdout);

    let (out, started) = run_for_alert("api-down", &alert, &catalog);
    assert!(
        out.stderr
            .contains("looking at team-api: the API does not answer /health"),
        "{}",
        out.stderr
    );
    assert_eq!(started["inputs"]["service"], "team-api");
    assert_eq!(started["alert"]["source"], "alertmanager");
    assert_eq!(started["alert"]["fingerprints"], serde_json::json!([fingerprint]));
    assert_eq!(started["alert"]["alertname"], "ServiceDown");
    // From stdin too; an explicit --set wins over the alert.
    let audit = tempfile::tempdir().unwrap();
    let out = runbook([
        "run",
        "api-down",
        "--yes",
        "--alert",
        "-",
        "--set",
        "service=other",
    ])
    .stdin(got[0].body.clone())
    .arg("--dir")
    .arg(&catalog)
    .arg("--audit-dir")
    .arg(audit.path())
    .expect_code(0);
    assert!(out.stderr.contains("looking at other:"), "{}", out.stderr);
}

#[test]
fn match_by_runbook_url_pagerduty_payloads_and_no_match() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = alert_catalog(dir.path());
    let by_url = write(
        dir.path(),
        "url.json",
        r#"{"version":"4","status":"firing","alerts":[{"labels":{"alertname":"DiskFull"},"annotations":{"runbook_url":"https://wiki.example/runbooks/disk-full.md"},"fingerprint":"f1"}]}"#,
    );
    let out = match_alert(&by_url, &catalog, &["--json"], 0);
    let found: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(found[0]["id"], "disk-full");
    assert_eq!(found[0]["why"], "annotations.runbook_url");
    let none = write(
        dir.path(),
        "none.json",
        r#"{"version":"4","status":"firing","alerts":[{"labels":{"alertname":"Other"},"annotations":{},"fingerprint":"f2"}]}"#,
    );
    let out = match_alert(&none, &catalog, &[], 1);
    assert!(out.stdout.is_empty());
    // PagerDuty v3 webhook: the incident is recorded, `incident.X` paths give inputs.
    write(
        &catalog,
        "paged.yaml",
        "version: 1\nid: paged\ntitle: Paged\nrto: 5m\nalert:\n  match: {incident.service.summary: Checkout API}\n  inputs: {what: incident.title}\ninputs:\n  what: {description: The incident}\nsteps:\n  - id: look\n    title: Look\n    run: echo \"paged for $what\"\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    let pd = write(
        dir.path(),
        "pd.json",
        r#"{"event":{"id":"01DEN6Z6TUC0YNNBC2QA2WB8BD","event_type":"incident.triggered","resource_type":"incident","occurred_at":"2026-11-22T03:02:11.000Z","data":{"id":"PGR0VU2","type":"incident","number":42,"title":"Checkout API down","status":"triggered","html_url":"https://acme.pagerduty.com/incidents/PGR0VU2","service":{"id":"PF9KMXH","summary":"Checkout API","type":"service_reference"}}}}"#,
    );
    let out = match_alert(&pd, &catalog, &[], 0);
    assert!(out.stdout.starts_with("paged\t"), "{}", out.stdout);
    let (out, started) = run_for_alert("paged", &pd, &catalog);
    assert!(
        out.stderr.contains("paged for Checkout API down"),
        "{}",
        out.stderr
    );
    assert_eq!(started["alert"]["source"], "pagerduty");
    assert_eq!(started["alert"]["incident"], "PGR0VU2");
    // Not a payload: exit 2.
    let junk = write(dir.path(), "junk.json", "{\"hello\": 1}");
    match_alert(&junk, &catalog, &[], 2);
}

#[test]
fn alert_inputs_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "a.yaml",
        "version: 1\nid: a\ntitle: A\nrto: 5m\nalert:\n  inputs: {servce: labels.service, pw: labels.pw, x: body.x}\ninputs:\n  service: {}\n  pw: {secret: true}\n  x: {}\nsteps:\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    let out = runbook(["validate"]).arg(&file).expect_code(2);
    assert!(
        out.stderr.contains("maps unknown input `servce`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("did you mean `service`"), "{}", out.stderr);
    assert!(
        out.stderr.contains("maps the secret input `pw`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`body.x` is not a path of an alert"),
        "{}",
        out.stderr
    );
}

/// The run exported over OTLP/HTTP: a SERVER span for the run, one per step attempt, one per
/// host of a fleet step under it, with the CI/CD conventions and the runbook timings, decoded
/// by a receiver using the official protobuf definitions.
#[test]
fn the_run_is_exported_as_an_otlp_trace() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let collector = crate::support::otlp::Collector::start(dir.path());
    let file = write(
        dir.path(),
        "book.yaml",
        "version: 1\nid: traced\ntitle: Traced\nrto: 5m\ntargets:\n  web: {default: local}\nsteps:\n  - id: flaky\n    title: Flaky\n    target: local\n    run: test -e marker || { touch marker; exit 1; }\n    retry: {attempts: 2}\n    rto: 30s\n  - id: check\n    title: Check\n    run: echo ok\n    target: local\n  - id: done\n    title: Done\n    end: resolved\n",
    );
    let work = tempfile::tempdir().unwrap();
    // The base endpoint, as the specification defines it: /v1/traces is appended.
    runbook(["run", "--yes"])
        .arg(&file)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", collector.port),
        )
        .arg("--audit-dir")
        .arg(audit.path())
        .current_dir(work.path())
        .expect_code(0);
    let run_id = events(&audit_files(audit.path())[0])[0]["run"]
        .as_str()
        .unwrap()
        .to_string();
    let mut spans = collector.spans();
    for _ in 0..50 {
        if spans.len() >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        spans = collector.spans();
    }
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(spans.len(), 4, "{names:?}");
    assert!(spans.iter().all(|s| s["path"] == "/v1/traces"));
    assert!(
        spans
            .iter()
            .all(|s| s["content_type"] == "application/x-protobuf")
    );
    let run = spans
        .iter()
        .find(|s| s["name"] == "RUN traced")
        .expect("the run's span");
    assert_eq!(run["kind"], 2, "SPAN_KIND_SERVER");
    assert_eq!(run["parent_span_id"], "");
    assert_eq!(run["attributes"]["cicd.pipeline.name"], "traced");
    assert_eq!(run["attributes"]["cicd.pipeline.run.id"], run_id.as_str());
    assert_eq!(run["attributes"]["cicd.pipeline.result"], "success");
    assert_eq!(run["attributes"]["runbook.rto_ms"], 300000);
    assert_eq!(run["resource"]["service.name"], "runbook");
    assert_eq!(run["resource"]["cicd.pipeline.run.id"], run_id.as_str());
    let attempts: Vec<&Value> = spans.iter().filter(|s| s["name"] == "flaky").collect();
    assert_eq!(attempts.len(), 2, "one span per attempt");
    for a in &attempts {
        assert_eq!(a["parent_span_id"], run["span_id"]);
        assert_eq!(a["trace_id"], run["trace_id"]);
        assert_eq!(a["attributes"]["cicd.pipeline.task.name"], "flaky");
        assert_eq!(a["attributes"]["runbook.step.target_ms"], 30000);
        assert!(a["start"].as_u64() >= run["start"].as_u64() && a["end"].as_u64() <= run["end"].as_u64());
    }
    // The human wait (presented → started) is on the attempt that followed the presentation.
    assert!(
        attempts[0]["attributes"]["runbook.wait_ms"].is_u64(),
        "{}",
        attempts[0]
    );
    assert!(attempts[1]["attributes"].get("runbook.wait_ms").is_none());
    let results: Vec<&str> = attempts
        .iter()
        .map(|a| a["attributes"]["cicd.pipeline.task.run.result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["failure", "success"]);
    assert_eq!(
        attempts[0]["status"], 2,
        "STATUS_CODE_ERROR on the failed attempt"
    );
    let check = spans.iter().find(|s| s["name"] == "check").unwrap();
    assert_eq!(check["attributes"]["runbook.host"], "local");
    assert_eq!(check["attributes"]["runbook.exit_code"], 0);
    // The traces endpoint is used as given, and wins over the base one.
    runbook(["run", "--yes"])
        .arg(&file)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("http://127.0.0.1:{}/custom/traces", collector.port),
        )
        .arg("--audit-dir")
        .arg(audit.path())
        .current_dir(work.path())
        .expect_code(0);
    let mut spans = collector.spans();
    for _ in 0..50 {
        if spans.iter().any(|s| s["path"] == "/custom/traces") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        spans = collector.spans();
    }
    assert!(spans.iter().any(|s| s["path"] == "/custom/traces"), "{spans:#?}");
}

/// A fleet step on three real sshd hosts, one of which fails: one span per host, `<step>
/// <host>`, each a child of the step attempt's span, with `runbook.host`; the failed host's
/// span has the error status, the others do not; the step's span counts the hosts.
#[test]
fn a_fleet_step_is_exported_with_one_span_per_host() {
    use crate::support::fleet::{Fleet, GROUP};
    let fleet = Fleet::start(3);
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let collector = crate::support::otlp::Collector::start(dir.path());
    let file = write(
        dir.path(),
        "book.yaml",
        "version: 1\nid: traced-fleet\ntitle: Traced fleet\nrto: 5m\ntargets:\n  web: {}\nsteps:\n  - id: deploy\n    title: Deploy\n    run: '[ \"$RBTEST_HOST\" != web-2 ]'\n    on_failure: broken\n  - id: done\n    title: Done\n    end: resolved\n  - id: broken\n    title: Broken\n    end: failed\n",
    );
    let out = runbook(["run", "--yes", "--no-sign", "--otlp"])
        .arg(format!("http://127.0.0.1:{}/v1/traces", collector.port))
        .arg("--target")
        .arg(format!("web={GROUP}"))
        .args(fleet.ssh_args())
        .arg(&file)
        .arg("--audit-dir")
        .arg(audit.path())
        .expect_code(3);
    // The export is flushed before the run exits; the receiver wrote each span as it came.
    let mut spans = Vec::new();
    crate::support::wait::until(Duration::from_secs(10), "the run's five spans", || {
        spans = collector.spans();
        spans.len() >= 5
    });
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        spans.len(),
        5,
        "the run, the step, three hosts: {names:?}\n{}",
        out.stderr
    );
    let named = |name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no span `{name}` in {names:?}"))
    };
    let run = named("RUN traced-fleet");
    let step = named("deploy");
    assert_eq!(step["parent_span_id"], run["span_id"]);
    assert_eq!(step["trace_id"], run["trace_id"]);
    assert_eq!(step["attributes"]["cicd.pipeline.task.name"], "deploy");
    assert_eq!(step["attributes"]["runbook.fleet"], GROUP);
    assert_eq!(step["attributes"]["runbook.hosts_ok"], 2);
    assert_eq!(step["attributes"]["runbook.hosts_failed"], 1);
    assert_eq!(step["attributes"]["runbook.hosts_not_started"], 0);
    assert_eq!(step["attributes"]["cicd.pipeline.task.run.result"], "failure");
    assert_eq!(step["status"], 2, "STATUS_CODE_ERROR on the step: {step}");
    // The human wait (presented → started) is the step attempt's, not one host's.
    assert!(step["attributes"]["runbook.wait_ms"].is_u64(), "{step}");
    for host in ["web-1", "web-2", "web-3"] {
        let span = named(&format!("deploy {host}"));
        assert_eq!(span["parent_span_id"], step["span_id"], "{span}");
        assert_eq!(span["trace_id"], run["trace_id"]);
        assert_eq!(span["attributes"]["runbook.host"], host);
        assert_eq!(span["attributes"]["cicd.pipeline.task.name"], "deploy");
        assert!(span["attributes"].get("runbook.wait_ms").is_none(), "{span}");
        assert!(
            span["start"].as_u64() >= step["start"].as_u64() && span["end"].as_u64() <= step["end"].as_u64(),
            "{host}'s span lies within the step's: {span}\n{step}"
        );
        let failed = host == "web-2";
        assert_eq!(
            span["attributes"]["cicd.pipeline.task.run.result"],
            if failed { "failure" } else { "success" },
            "{span}"
        );
        assert_eq!(span["attributes"]["runbook.exit_code"], i64::from(failed));
        if failed {
            assert_eq!(span["status"], 2, "STATUS_CODE_ERROR on {host}: {span}");
            assert_eq!(span["attributes"]["error.type"], "failed");
        } else {
            assert_ne!(span["status"], 2, "{host} succeeded: {span}");
            assert!(span["attributes"].get("error.type").is_none(), "{span}");
        }
    }
    assert_eq!(run["attributes"]["cicd.pipeline.result"], "failure");
}

/// A dead OTLP endpoint costs the run nothing but the bounded wait at exit.
#[test]
fn a_dead_otlp_endpoint_never_touches_the_run() {
    let (dir, audit) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let silent = Receiver::start(Answer::Never);
    let file = book(dir.path(), "5m", "sleep 0.2", "");
    let started = Instant::now();
    runbook(["run", "--yes", "--notify-timeout", "1s", "--otlp"])
        .arg(silent.url("/v1/traces"))
        .arg(&file)
        .arg("--audit-dir")
        .arg(audit.path())
        .expect_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let trail = events(&audit_files(audit.path())[0]);
    assert!(duration_of(&trail, "work") < 1200);
    runbook(["audit", "verify"])
        .arg(&audit_files(audit.path())[0])
        .expect_code(0);
}

/// Issue 24 #11: a NUL byte in an input, from an alert's label or from a file, is refused
/// before anything runs (exit 2, no trail), naming the input: no shell variable can hold it.
#[test]
fn an_input_with_a_nul_byte_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = alert_catalog(dir.path());
    let alert = write(
        dir.path(),
        "alert.json",
        r#"{"version": "4", "status": "firing", "receiver": "runbook", "groupKey": "{}:{}",
            "groupLabels": {}, "commonLabels": {"alertname": "ServiceDown"},
            "commonAnnotations": {"summary": "down"}, "externalURL": "http://am",
            "alerts": [{"status": "firing", "fingerprint": "f00d",
                        "labels": {"alertname": "ServiceDown", "service": "api\u0000; rm -rf /"},
                        "annotations": {}, "startsAt": "2026-12-06T00:00:00Z"}]}"#,
    );
    let nul_file = dir.path().join("summary.txt");
    std::fs::write(&nul_file, b"down\0again\n").unwrap();
    for extra in [
        vec!["--alert".to_string(), alert.display().to_string()],
        vec![
            "--set".to_string(),
            "service=api".to_string(),
            "--set-from".to_string(),
            format!("summary=file-all:{}", nul_file.display()),
        ],
    ] {
        let audit = tempfile::tempdir().unwrap();
        let out = runbook(["run", "api-down", "--yes"])
            .args(&extra)
            .arg("--dir")
            .arg(&catalog)
            .arg("--audit-dir")
            .arg(audit.path())
            .expect_code(2);
        let input = if extra[0] == "--alert" {
            "service"
        } else {
            "summary"
        };
        assert!(
            out.stderr
                .contains(&format!("input `{input}` contains a NUL byte"))
                && out.stderr.contains("nothing was run"),
            "{extra:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("looking at"), "{}", out.stderr);
        assert!(
            audit_files(audit.path()).is_empty(),
            "{extra:?}: a trail was written"
        );
    }
}
