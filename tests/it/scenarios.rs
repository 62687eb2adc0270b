//! The shipped scenarios (`runbooks/`), each walked end to end over SSH against the sandbox
//! (`support::sandbox`): a real PostgreSQL, a real HTTP service run by the systemctl stand-in, a
//! git checkout with tagged versions and two LLM provider stand-ins. Every test checks the real
//! effect (health answers 200, rows are back, the checkout is at the last good commit), not just
//! the exit status; and every runbook also ends `escalated` on at least one failure branch.

use std::time::Duration;

use crate::support::cmd::root;
use crate::support::sandbox::{PortSquatter, Sandbox};

/// Asserts the run output says `run <outcome>`.
#[track_caller]
fn ended(out: &crate::support::cmd::Outcome, outcome: &str) {
    assert!(
        out.stderr.contains(&format!("run {outcome}")),
        "expected `run {outcome}`\n--- stderr ---\n{}",
        out.stderr
    );
}

/// Polls `cond` for up to 10 s.
#[track_caller]
fn wait_for(cond: impl Fn() -> bool, what: &str) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

const SERVICE_DOWN: &[&str] = &[
    "restart=app-api",
    "free-disk=done",
    "rollback/restart=app-api",
    "rollback/downgrade=done",
    "rollback/notify=done",
];
const ROLLBACK: &[&str] = &["restart=app-api", "downgrade=done", "notify=done"];
const DB_RESTORE: &[&str] = &[
    "stop-api=app-api",
    "drop-recreate=app",
    "restore=app",
    "check-integrity=done",
];
const DB_DOWN: &[&str] = &[
    "restore/stop-api=app-api",
    "restore/drop-recreate=app",
    "restore/restore=app",
    "restore/check-integrity=done",
];
const LLM: &[&str] = &["status-pages=done", "restart-api=app-api"];
const ROLLBACK_DRILL: &[&str] = &[
    "restart-marker=app-api",
    "roll-back/restart=app-api",
    "roll-back/downgrade=done",
    "roll-back/notify=done",
];
const RESTORE_DRILL: &[&str] = &["create-staging=app_restore_drill"];

#[test]
fn service_down_restarts_a_crashed_api_and_escalates_on_a_port_conflict() {
    let sb = Sandbox::start();
    let before = sb.sh("cat run/app-api.pid");
    sb.sh("kill -KILL $(cat run/app-api.pid)");
    wait_for(
        || sb.unit_state("app-api") == "failed",
        "the killed API to show as failed",
    );
    assert_eq!(sb.http_get("/health").0, 0, "the API should be down");

    let out = sb
        .runbook("run", "service-down", &[], SERVICE_DOWN)
        .expect_code(0);
    ended(&out, "resolved");
    assert!(
        out.stderr.contains("decided \"Crashed or stopped: restart it\""),
        "{}",
        out.stderr
    );
    let (code, body) = sb.http_get("/health");
    assert_eq!(code, 200, "{body}");
    assert_ne!(sb.sh("cat run/app-api.pid"), before, "a new process serves");

    // Another process takes the port: the restart fails, the checks find the listener, the
    // rollback's restart fails too, and the run escalates.
    sb.systemctl(&["stop", "app-api"]);
    let _squatter = PortSquatter::hold(sb.api_port);
    let out = sb
        .runbook("run", "service-down", &[], SERVICE_DOWN)
        .expect_code(3);
    ended(&out, "escalated");
    assert!(
        out.stderr.contains("Job for app-api.service failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{}", sb.api_port)),
        "check-port shows the listener\n{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("decided \"Persistent failure: roll back to the last good version\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Address already in use") || sb.log("app-api").contains("Address already in use")
    );
    assert_ne!(sb.unit_state("app-api"), "active");
}

#[test]
fn service_down_rolls_back_a_bad_deploy() {
    let sb = Sandbox::start();
    let good = sb.last_good();
    sb.deploy("v1.1.0");
    assert_eq!(sb.http_get("/health").0, 500, "v1.1.0 is the broken release");

    let out = sb
        .runbook("run", "service-down", &[], SERVICE_DOWN)
        .expect_code(0);
    ended(&out, "resolved");
    assert!(
        out.stderr.contains("decided \"Running: verify its health\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("rollback/restart: ok"), "{}", out.stderr);
    assert_eq!(sb.head(), good, "the checkout is at the last good commit");
    let (code, body) = sb.http_get("/health");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(&good), "{body}");
}

#[test]
fn rollback_returns_to_the_last_good_version_and_escalates_when_that_version_fails() {
    let sb = Sandbox::start();
    let good = sb.last_good();
    sb.deploy("v1.1.0");
    let out = sb.runbook("run", "rollback", &[], ROLLBACK).expect_code(0);
    ended(&out, "resolved");
    assert!(
        out.stderr.contains("migrations/002_deal_stage.sql"),
        "the migration is named\n{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("decided \"Migrations changed: check and downgrade\""),
        "{}",
        out.stderr
    );
    assert_eq!(sb.head(), good);
    let (code, body) = sb.http_get("/health");
    assert_eq!(
        (code, body.contains("\"version\": \"1.0.0\"")),
        (200, true),
        "{body}"
    );

    // Rolling "back" to a version that is itself broken: restarted for real, then escalated.
    let out = sb
        .runbook("run", "rollback", &[("version", "v1.1.0")], ROLLBACK)
        .expect_code(3);
    ended(&out, "escalated");
    assert!(out.stderr.contains("verify: failed"), "{}", out.stderr);
    assert_eq!(sb.http_get("/health").0, 500, "v1.1.0 really serves");
}

#[test]
fn db_down_starts_postgres_restores_corrupt_data_and_escalates_when_it_cannot_start() {
    let sb = Sandbox::start();
    let counts = sb.counts("app");
    sb.systemctl(&["stop", "postgresql"]);
    assert!(sb.http_get("/health/deep").1.contains("\"postgres\": \"failed\""));

    let out = sb.runbook("run", "db-down", &[], DB_DOWN).expect_code(0);
    ended(&out, "resolved");
    assert!(
        out.stderr.contains("decided \"Stopped: start it\""),
        "{}",
        out.stderr
    );
    assert_eq!(sb.unit_state("postgresql"), "active");
    assert_eq!(sb.counts("app"), counts);
    assert!(sb.http_get("/health/deep").1.contains("\"postgres\": \"ok\""));

    // Damaged data: a table is gone. The runbook calls db-restore, which brings it back.
    sb.sh("psql -q -d app -c 'DROP TABLE deals'");
    let out = sb.runbook("run", "db-down", &[], DB_DOWN).expect_code(0);
    ended(&out, "resolved");
    assert!(
        out.stderr
            .contains("decided \"Corrupt or missing: restore from backup\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("restore/verify-counts: ok"), "{}", out.stderr);
    assert_eq!(
        sb.counts("app"),
        counts,
        "the dropped table is back with its rows"
    );
    assert_eq!(sb.unit_state("app-api"), "active");

    // PostgreSQL cannot start (its configuration file is gone): escalated.
    sb.systemctl(&["stop", "postgresql"]);
    sb.sh("mv pgdata/postgresql.conf pgdata/postgresql.conf.moved");
    let out = sb.runbook("run", "db-down", &[], DB_DOWN).expect_code(3);
    ended(&out, "escalated");
    assert!(
        out.stderr.contains("Job for postgresql.service failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("postgresql.conf"),
        "the logs name the cause\n{}",
        out.stderr
    );
    assert_ne!(sb.unit_state("postgresql"), "active");
}

#[test]
fn db_restore_brings_back_deleted_rows_and_escalates_without_a_backup() {
    let sb = Sandbox::start();
    let counts = sb.counts("app");
    sb.sh("psql -q -d app -c 'DELETE FROM deals WHERE id > 5'");
    assert_eq!(sb.counts("app"), "leads=40 deals=5");

    let out = sb.runbook("run", "db-restore", &[], DB_RESTORE).expect_code(0);
    ended(&out, "resolved");
    assert!(
        out.stderr.contains("deals: 12 rows, as in the backup"),
        "{}",
        out.stderr
    );
    assert_eq!(sb.counts("app"), counts);
    assert_eq!(sb.unit_state("app-api"), "active");
    assert!(sb.http_get("/health/deep").1.contains("\"postgres\": \"ok\""));
    // The safety snapshot holds the state before the restore: 5 deals.
    let snapshot = sb.sh("ls tmp/app_pre_restore_*.sql.gz");
    let rows = sb.sh(&format!(
        "gunzip -c {snapshot} | awk '/^COPY public.deals /{{c=1;next}} /^\\\\\\.$/{{c=0}} c' | wc -l"
    ));
    assert_eq!(rows, "5", "the snapshot keeps the damaged state");

    // No backup to restore: escalated before anything is dropped.
    sb.sh("psql -q -d app -c 'DELETE FROM deals WHERE id > 5'");
    sb.sh("mkdir -p empty-backups");
    let empty = sb.root().join("empty-backups").display().to_string();
    let out = sb
        .runbook("run", "db-restore", &[("backup_dir", &empty)], DB_RESTORE)
        .expect_code(3);
    ended(&out, "escalated");
    assert!(out.stderr.contains("list-backups: failed"), "{}", out.stderr);
    assert_eq!(sb.counts("app"), "leads=40 deals=5", "nothing was dropped");
    assert_eq!(
        sb.unit_state("app-api"),
        "inactive",
        "the API was stopped, and stays stopped"
    );
    // Both runs left a sealed, intact audit trail.
    let trails: Vec<_> = std::fs::read_dir(sb.audit.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    assert_eq!(trails.len(), 2);
    for trail in trails {
        crate::support::cmd::runbook(["audit", "verify"])
            .arg(&trail)
            .expect_code(0);
    }
}

#[test]
fn llm_failover_verifies_the_fallback_rotates_an_expired_key_and_escalates_when_both_are_down() {
    let sb = Sandbox::start();
    sb.systemctl(&["stop", "llm-primary"]);
    let out = sb.runbook("run", "llm-failover", &[], LLM).expect_code(0);
    ended(&out, "resolved");
    assert!(out.stderr.contains("\"primary\": \"down\""), "{}", out.stderr);
    assert!(
        out.stderr.contains("\"provider\": \"fallback\""),
        "{}",
        out.stderr
    );

    // Both providers now refuse the key: rotate it (a secret) and restart the API.
    sb.set_provider_key("llm-primary", "sandbox-key-2");
    sb.set_provider_key("llm-fallback", "sandbox-key-2");
    assert_eq!(sb.http_post("/api/v1/ai-agents/test-prompt").0, 502);
    let pid = sb.sh("cat run/app-api.pid");
    let out = sb
        .runbook(
            "run",
            "llm-failover",
            &[("new_llm_api_key", "sandbox-key-2")],
            LLM,
        )
        .expect_code(0);
    ended(&out, "resolved");
    assert!(
        out.stderr.contains("decided \"A key is refused: rotate it\""),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("sandbox-key-2"),
        "the new key is never shown\n{}",
        out.stderr
    );
    let leaked = std::process::Command::new("grep")
        .args(["-rl", "sandbox-key-2"])
        .arg(sb.audit.path())
        .output()
        .unwrap();
    assert!(
        leaked.stdout.is_empty(),
        "the key is in the audit trail: {}",
        String::from_utf8_lossy(&leaked.stdout)
    );
    assert!(sb.sh("cat srv/app/.env").contains("LLM_API_KEY=sandbox-key-2"));
    assert!(
        sb.sh("cat srv/app/.env.bak.*")
            .contains("LLM_API_KEY=sandbox-key-1"),
        "the old .env is kept"
    );
    assert_ne!(sb.sh("cat run/app-api.pid"), pid, "the API was restarted");
    let (code, body) = sb.http_post("/api/v1/ai-agents/test-prompt");
    assert_eq!(
        (code, body.contains("\"provider\": \"primary\"")),
        (200, true),
        "{body}"
    );

    // Both providers down, keys fine: nothing to fix on our side; escalated.
    sb.systemctl(&["stop", "llm-primary", "llm-fallback"]);
    let out = sb.runbook("run", "llm-failover", &[], LLM).expect_code(3);
    ended(&out, "escalated");
    assert!(out.stderr.contains("Both LLM providers fail"), "{}", out.stderr);
    assert_eq!(sb.http_get("/health").0, 200, "the core keeps working");
}

#[test]
fn rollback_drill_passes_within_its_rto_and_fails_when_live_is_not_the_last_good_version() {
    let sb = Sandbox::start();
    let good = sb.last_good();
    let out = sb
        .runbook("drill", "rollback-drill", &[], ROLLBACK_DRILL)
        .expect_code(0);
    assert!(out.stderr.contains("drill verdict: PASS"), "{}", out.stderr);
    assert_eq!(sb.head(), good);
    let (code, body) = sb.http_get("/health");
    assert_eq!((code, body.contains(&good)), (200, true), "{body}");
    // The marker really served: the app logged a start on a commit that is not the last good.
    let starts: Vec<String> = sb
        .log("app-api")
        .lines()
        .filter(|l| l.contains(" listening on "))
        .map(str::to_string)
        .collect();
    assert!(starts.len() >= 3, "started, marker, rolled back: {starts:?}");
    assert!(starts.iter().any(|l| !l.contains(&good[..12])), "{starts:?}");

    // Live is not the last good version: the drill refuses to deploy anything.
    sb.deploy("v1.1.0");
    let bad = sb.head();
    let out = sb
        .runbook("drill", "rollback-drill", &[], ROLLBACK_DRILL)
        .expect_code(3);
    assert!(out.stderr.contains("drill verdict: FAIL"), "{}", out.stderr);
    assert!(out.stderr.contains("live-is-last-good: failed"), "{}", out.stderr);
    assert_eq!(
        sb.head(),
        bad,
        "the drill and its cleanup left the checkout alone"
    );
}

#[test]
fn restore_drill_validates_row_counts_and_fails_on_a_mismatch() {
    let sb = Sandbox::start();
    let out = sb
        .runbook("drill", "restore-drill", &[], RESTORE_DRILL)
        .expect_code(0);
    assert!(out.stderr.contains("drill verdict: PASS"), "{}", out.stderr);
    assert!(
        out.stderr.contains("deals: source 12, restored 12: ok"),
        "{}",
        out.stderr
    );
    assert_eq!(sb.counts("app_restore_drill"), sb.counts("app"));

    // The source gained a row the backup does not have.
    sb.sh("psql -q -d app -c 'INSERT INTO deals (lead_id, amount) VALUES (1, 1)'");
    let out = sb
        .runbook("drill", "restore-drill", &[], RESTORE_DRILL)
        .expect_code(3);
    assert!(out.stderr.contains("drill verdict: FAIL"), "{}", out.stderr);
    assert!(
        out.stderr.contains("deals: source 13, restored 12: MISMATCH"),
        "{}",
        out.stderr
    );
}

/// Every shipped runbook validates without a warning and renders as a document and a flowchart.
#[test]
fn shipped_runbooks_validate_without_warnings_and_render() {
    let dir = crate::support::cmd::root().join("runbooks");
    let out = crate::support::cmd::runbook(["validate", "--deny-warnings"])
        .arg(&dir)
        .expect_code(0);
    assert!(
        out.stdout.contains("checked 7 files: ok") || out.stderr.contains("checked 7 files: ok"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    for id in [
        "service-down",
        "db-down",
        "llm-failover",
        "db-restore",
        "rollback",
        "rollback-drill",
        "restore-drill",
    ] {
        for format in ["text", "md", "mermaid"] {
            let out = crate::support::cmd::runbook(["--dir"])
                .arg(&dir)
                .args(["show", id, "--format", format])
                .expect_code(0);
            assert!(!out.stdout.trim().is_empty(), "{id} {format}");
        }
    }
}

const BEGIN: &str = "<!-- BEGIN GENERATED from runbooks/*.yaml by tests/it/scenarios.rs; UPDATE_DOCS=1 cargo test scenarios_md rewrites it -->";
const END: &str = "<!-- END GENERATED -->";

/// docs/scenarios.md's tables are generated from the YAML: a runbook changed without the page
/// fails here (run with `UPDATE_DOCS=1` to rewrite the generated part).
#[test]
fn scenarios_md_is_generated_from_the_runbooks() {
    let root = crate::support::cmd::root();
    let path = root.join("docs/scenarios.md");
    let page = std::fs::read_to_string(&path).expect("docs/scenarios.md exists");
    let (Some(start), Some(end)) = (page.find(BEGIN), page.find(END)) else {
        panic!("docs/scenarios.md lacks the generated-section markers:\n{BEGIN}\n{END}");
    };
    let generated = scenarios_tables(&root.join("runbooks"));
    let expected = format!("{}{BEGIN}\n{generated}{}", &page[..start], &page[end..]);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    assert!(
        page == expected,
        "docs/scenarios.md is out of date with runbooks/: run `UPDATE_DOCS=1 cargo test scenarios_md`"
    );
}

fn scenarios_tables(dir: &std::path::Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let books: Vec<runbook::testing::runbook::Runbook> = files
        .iter()
        .map(|p| {
            let source = runbook::testing::parse::Source::read(p).unwrap();
            source
                .parse()
                .unwrap_or_else(|d| panic!("{}: {d:?}", p.display()))
        })
        .collect();
    let cell = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace('|', "\\|")
    };
    let mut out = String::from("| id | when to use | RTO | inputs | targets |\n|---|---|---|---|---|\n");
    for rb in &books {
        let description = rb.description.clone().unwrap_or_default();
        let when = description
            .split("\n\n")
            .find_map(|p| p.trim().strip_prefix("**When to use it:**"))
            .map(|w| {
                let w = w.trim();
                let mut chars = w.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            })
            .unwrap_or_else(|| rb.title.clone());
        let inputs: Vec<String> = rb.inputs.keys().map(|k| format!("`{k}`")).collect();
        let targets: Vec<String> = rb.targets.keys().map(|k| format!("`{k}`")).collect();
        out.push_str(&format!(
            "| [`{id}`](#{id}) | {} | {} | {} | {} |\n",
            cell(&when),
            rb.rto.0.value,
            inputs.join(", "),
            targets.join(", "),
            id = rb.id(),
        ));
    }
    for rb in &books {
        let cadence = rb
            .drill
            .as_ref()
            .map(|d| format!("; a drill to pass at least every {}", d.every.0.value))
            .unwrap_or_default();
        out.push_str(&format!(
            "\n### {}\n\n{} (RTO {}{cadence}).\n\n",
            rb.id(),
            cell(&rb.title),
            rb.rto.0.value
        ));
        out.push_str("| input | default | meaning |\n|---|---|---|\n");
        for (name, input) in &rb.inputs {
            let default = match (&input.value.default, input.value.secret) {
                (_, true) => "(secret)".to_string(),
                (Some(d), _) if d.is_empty() => "(empty)".to_string(),
                (Some(d), _) => format!("`{}`", d.replace('|', "\\|")),
                (None, _) => "(required)".to_string(),
            };
            let meaning = cell(input.value.description.as_deref().unwrap_or(""));
            out.push_str(&format!("| `{name}` | {default} | {meaning} |\n"));
        }
        out.push_str("\n| target | meaning |\n|---|---|\n");
        for (name, target) in &rb.targets {
            out.push_str(&format!(
                "| `{name}` | {} |\n",
                cell(target.value.description.as_deref().unwrap_or(""))
            ));
        }
    }
    out
}

/// The shipped `service-down` declares a health guard that diverts to its rollback (design
/// §20): here with its timing shortened (a copy of the catalog), the API broken by a bad
/// deploy, the guard trips before the walk reaches the rollback by itself, and the
/// unattended run is diverted there.
#[test]
fn service_down_health_guard_diverts_to_the_rollback() {
    let shipped = std::fs::read_to_string(root().join("runbooks/service-down.yaml")).unwrap();
    let guard = "guards:\n  - {id: api-health, target: app, run: 'curl -sS -f --max-time 5 \"$api_url/health\"', every: 30s, failures: 4, goto: rollback}\n";
    assert!(
        shipped.contains(guard),
        "the shipped guard changed: update this test"
    );
    let catalog = tempfile::tempdir().unwrap();
    // The runbooks only (their test cases live in `runbooks/tests/`).
    for entry in std::fs::read_dir(root().join("runbooks")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, catalog.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    // Checked every 300ms, tripped at the second failure; the walk is held at its first
    // step until the guard has tripped (a `sleep` the trip stops).
    let quick = shipped
        .replace("every: 30s, failures: 4", "every: 300ms, failures: 2")
        .replace(
            "    run: $sudo systemctl status \"$api_service\" --no-pager\n",
            "    run: sleep 30; $sudo systemctl status \"$api_service\" --no-pager\n",
        )
        .replace("    timeout: 30s\n", "    timeout: 1m\n");
    std::fs::write(catalog.path().join("service-down.yaml"), quick).unwrap();

    let sb = Sandbox::start();
    let good = sb.last_good();
    sb.deploy("v1.1.0");
    assert_eq!(sb.http_get("/health").0, 500, "v1.1.0 is the broken release");
    let started = std::time::Instant::now();
    let out = sb
        .runbook_in(catalog.path(), "run", "service-down", &[], SERVICE_DOWN)
        .expect_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the trip stopped the held step"
    );
    ended(&out, "resolved");
    assert!(out.stderr.contains("GUARD TRIPPED:"), "{}", out.stderr);
    assert!(out.stderr.contains("divert to `rollback`"), "{}", out.stderr);
    assert!(out.stderr.contains("rollback/restart: ok"), "{}", out.stderr);
    assert_eq!(sb.head(), good, "the checkout is at the last good commit");
    assert_eq!(sb.http_get("/health").0, 200);
    let events = crate::support::trail::last_run_events(sb.audit.path());
    let tripped: Vec<_> = events.iter().filter(|e| e["event"] == "guard tripped").collect();
    assert_eq!(tripped.len(), 1, "{events:?}");
    assert_eq!(tripped[0]["goto"], "rollback");
    let status = events
        .iter()
        .find(|e| e["event"] == "step finished" && e["step"] == "service-status")
        .expect("the held step is recorded");
    assert_eq!(status["outcome"], "timeout", "{status}");
}
