//! `runbook import FILE.md`: Markdown runbooks of three shapes (the seeds' numbered lists,
//! `###` step headings with console prompts, checklists) become runbooks that the real
//! `runbook validate` accepts, with the steps a reader of the Markdown expects; `show --format
//! md` gives the source's steps back in order; existing files are never overwritten unasked.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::list::scratch;
use crate::support::cmd::{root, runbook};

/// The fixture copied into a fresh directory (so that the notes name it `NAME.md:LINE`),
/// imported into `out/`, and `runbook validate --deny-warnings out` passing.
fn import(fixture: &str, test: &str) -> (PathBuf, String, String) {
    let dir = scratch(&format!("import-{test}"));
    let name = format!("{fixture}.md");
    std::fs::copy(root().join("tests/data/import").join(&name), dir.join(&name)).unwrap();
    let out = runbook(["import", name.as_str(), "-o", "out"])
        .current_dir(&dir)
        .expect_code(0);
    let validated = runbook(["validate", "--deny-warnings", "out"])
        .current_dir(&dir)
        .expect_code(0);
    // No warning either: every destructive-looking command asks for a confirmation.
    assert!(validated.stderr.ends_with(" files: ok\n"), "{}", validated.stderr);
    (dir, out.stdout, out.stderr)
}

/// One imported runbook: its text and its YAML as data.
fn load(dir: &Path, id: &str) -> (String, Value) {
    let text = std::fs::read_to_string(dir.join("out").join(format!("{id}.yaml"))).unwrap();
    let value: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, value)
}

fn step<'a>(runbook: &'a Value, id: &str) -> &'a Value {
    runbook["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {runbook:#}"))
}

fn ids(runbook: &Value) -> Vec<&str> {
    runbook["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

/// The choose step's options as (label, goto, has when).
fn options(step: &Value) -> Vec<(&str, &str, bool)> {
    step["choose"]
        .as_array()
        .unwrap_or_else(|| panic!("not a choose step: {step:#}"))
        .iter()
        .map(|o| {
            (
                o["label"].as_str().unwrap(),
                o["goto"].as_str().unwrap(),
                o.get("when").is_some(),
            )
        })
        .collect()
}

#[test]
fn the_seeds_runbook_imports_into_runbooks_validate_accepts() {
    let (dir, stdout, stderr) = import("RUNBOOK", "seeds");
    let written: Vec<&str> = stdout.lines().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        written,
        [
            "wrote out/service-down.yaml",
            "wrote out/database-down.yaml",
            "wrote out/llm-provider-down.yaml",
            "wrote out/database-restore-from-backup.yaml",
            "wrote out/rollback-to-previous-version.yaml",
        ]
    );
    assert!(
        stderr.contains("RUNBOOK.md:116: skipped `Quick Reference`: no steps under it"),
        "{stderr}"
    );

    let (text, down) = load(&dir, "service-down");
    assert_eq!(down["title"], "Service Down (API not responding)");
    assert_eq!(down["owner"], "Ops Lead");
    assert_eq!(down["rto"], "5m");
    assert!(
        text.contains("# review: from \"Recovery time target: < 5 minutes\" (RUNBOOK.md:25)\nrto: 5m\n"),
        "{text}"
    );
    assert_eq!(down["escalate"]["after"], "15m");
    assert_eq!(down["escalate"]["to"], "founder");
    // "SSH to server" names where the steps run; it is no step of its own.
    assert_eq!(down["targets"]["server"]["default"], "dealix_deploy@192.0.2.10");
    assert_eq!(
        ids(&down),
        [
            "check-systemd-status",
            "check-logs",
            "if-crashed",
            "run-sudo-systemctl-restart-dealix-api",
            "verify",
            "if-still-failing",
            "check-port-conflict",
            "check-disk-space",
            "check-memory",
            "if-persistent",
            "rollback-to-previous-version",
            "done",
        ]
    );
    let status = step(&down, "check-systemd-status");
    assert_eq!(status["title"], "Check systemd status");
    assert_eq!(status["run"], "sudo systemctl status dealix-api");
    assert_eq!(
        status["notes"],
        "From `RUNBOOK.md:16`:\n\n> 2. Check systemd status: `sudo systemctl status dealix-api`"
    );
    assert_eq!(step(&down, "check-disk-space")["run"], "df -h");
    // "If crashed: restart": the fallback skips the restart.
    assert_eq!(
        options(step(&down, "if-crashed")),
        [
            ("No, go on", "verify", false),
            (
                "Yes: Run `sudo systemctl restart dealix-api`",
                "run-sudo-systemctl-restart-dealix-api",
                false
            ),
        ]
    );
    assert_eq!(
        step(&down, "run-sudo-systemctl-restart-dealix-api")["run"],
        "sudo systemctl restart dealix-api"
    );
    // "(see Scenario 5)" calls the rollback runbook.
    assert_eq!(
        options(step(&down, "if-persistent"))[0],
        ("No, go on", "done", false)
    );
    assert_eq!(
        step(&down, "rollback-to-previous-version")["call"],
        "rollback-to-previous-version"
    );
    assert_eq!(step(&down, "done")["end"], "resolved");

    let (_, restore) = load(&dir, "database-restore-from-backup");
    assert_eq!(restore["rto"], "15m");
    let stop = step(&restore, "stop-the-api");
    assert_eq!(stop["confirm"], true);
    assert_eq!(stop["run"], "sudo systemctl stop dealix-api");
    let drop = step(&restore, "drop-and-recreate-database");
    assert_eq!(drop["confirm"], true);
    assert_eq!(
        drop["run"],
        "sudo -u postgres psql -c \"DROP DATABASE dealix;\"\nsudo -u postgres psql -c \"CREATE DATABASE dealix OWNER dealix;\""
    );
    assert_eq!(step(&restore, "restore")["confirm"], true);
    assert!(step(&restore, "list-available-backups").get("confirm").is_none());
    assert_eq!(
        step(&restore, "check-integrity")["manual"],
        "Check integrity: manually verify recent leads/deals in dashboard"
    );
    // The scenario names no host: the document's is used, and said to be a guess.
    assert_eq!(
        restore["targets"]["server"]["default"],
        "dealix_deploy@192.0.2.10"
    );

    let (db_text, db) = load(&dir, "database-down");
    assert_eq!(
        step(&db, "restore-from-backup").get("confirm"),
        Some(&Value::Bool(true))
    );
    assert_eq!(
        step(&db, "restore-from-backup")["call"],
        "database-restore-from-backup"
    );
    assert!(
        db_text.contains("# review: this scenario names no host"),
        "{db_text}"
    );

    let (llm_text, llm) = load(&dir, "llm-provider-down");
    assert_eq!(llm["rto"], "30m");
    assert!(
        llm_text.contains("# review: no recovery time target in the text (from \"Recovery time target: Automatic (fallback)."),
        "{llm_text}"
    );
    // Prose with code spans that are no commands is a manual step.
    let fallback = step(&llm, "system-should-auto-fallback-to-openai");
    assert_eq!(
        fallback["manual"],
        "system should auto-fallback to OpenAI (check `LLM_FALLBACK_PROVIDER` in `.env`)"
    );
}

#[test]
fn show_md_of_an_imported_runbook_reads_like_its_source() {
    let (dir, ..) = import("RUNBOOK", "show");
    let shown = runbook(["show", "--format", "md", "out/database-restore-from-backup.yaml"])
        .current_dir(&dir)
        .expect_code(0)
        .stdout;
    // Scenario 4's steps, titles and commands, in the source's order.
    let expected = [
        "Database Restore from Backup",
        "Stop the API",
        "sudo systemctl stop dealix-api",
        "List available backups",
        "ls -lt /var/backups/dealix/*.sql.gz",
        "Create safety snapshot of current state",
        "sudo -u postgres pg_dump dealix | gzip > /tmp/dealix_pre_restore_$(date +%Y%m%d_%H%M%S).sql.gz",
        "Drop and recreate database",
        "sudo -u postgres psql -c \"DROP DATABASE dealix;\"\nsudo -u postgres psql -c \"CREATE DATABASE dealix OWNER dealix;\"",
        "Restore",
        "gunzip -c /var/backups/dealix/LATEST.sql.gz | sudo -u postgres psql dealix",
        "Verify row counts",
        "Start API",
        "sudo systemctl start dealix-api",
        "Verify health",
        "curl http://localhost:8001/health/deep",
        "Check integrity",
        "manually verify recent leads/deals in dashboard",
    ];
    let mut at = 0;
    for text in expected {
        match shown[at..].find(text) {
            Some(found) => at += found + text.len(),
            None => panic!("`{text}` is not after byte {at} of:\n{shown}"),
        }
    }
    // Each step quotes its source line, so a reviewer diffs the two side by side.
    assert!(shown.contains("> 4. Drop and recreate database:"), "{shown}");
}

#[test]
fn step_headings_and_console_prompts() {
    let (dir, ..) = import("headings", "headings");
    let (text, backlog) = load(&dir, "queue-backlog");
    assert_eq!(backlog["rto"], "20m");
    assert_eq!(backlog["owner"], "payments-oncall");
    assert_eq!(backlog["escalate"]["after"], "30m");
    assert_eq!(backlog["escalate"]["to"], "payments lead");
    assert_eq!(
        backlog["targets"]["worker-host"]["default"],
        "ops@worker-1.example"
    );
    assert!(text.contains("ssh options left out: -p 2222"), "{text}");
    // `$ ` prompts are dropped; what follows them is output, kept in the notes.
    let depth = step(&backlog, "look-at-the-queue-depth");
    assert_eq!(depth["run"], "redis-cli llen payments");
    assert_eq!(depth["rto"], "2m");
    let notes = depth["notes"].as_str().unwrap();
    assert!(
        notes.contains("Expected output:\n\n```\n(integer) 1204\n```"),
        "{notes}"
    );
    assert!(notes.starts_with("From `headings.md:16`:"), "{notes}");
    assert_eq!(
        step(&backlog, "restart-the-workers")["run"],
        "sudo systemctl restart 'payments-worker@*'"
    );
    // "### If the backlog still grows" over a link to the other scenario: a decision and a call.
    assert_eq!(
        options(step(&backlog, "if-the-backlog-still-grows")),
        [
            ("No, go on", "tell-the-team", false),
            (
                "Yes: Move the dead letters aside first",
                "move-the-dead-letters-aside-first",
                false
            ),
        ]
    );
    assert_eq!(
        step(&backlog, "move-the-dead-letters-aside-first")["call"],
        "dead-letters"
    );
    assert_eq!(
        step(&backlog, "tell-the-team")["manual"],
        "Post in the payments channel that the queue is draining, with its depth."
    );

    // A sentence over a code block is one step; `user@host:~$ ` is a prompt too.
    let (_, dead) = load(&dir, "dead-letters");
    assert_eq!(dead["rto"], "15m");
    assert_eq!(
        ids(&dead),
        ["count-them", "purge-the-dead-letter-queue-once-they", "done"]
    );
    assert_eq!(step(&dead, "count-them")["run"], "redis-cli llen payments:dead");
    let purge = step(&dead, "purge-the-dead-letter-queue-once-they");
    assert_eq!(purge["confirm"], true);
    assert_eq!(
        purge["run"],
        "redis-cli --raw lrange payments:dead 0 -1 > /var/tmp/dead-letters.txt\nredis-cli del payments:dead"
    );
}

#[test]
fn checklists() {
    let (dir, _, stderr) = import("checklist", "checklist");
    assert!(stderr.contains("checklist.md:31: skipped `Contacts`"), "{stderr}");
    let (_, disk) = load(&dir, "disk-full-on-a-build-agent");
    assert_eq!(disk["rto"], "1h");
    assert_eq!(disk["targets"]["agent-7"]["default"], "ci@agent-7.example");
    // Plain bullets beside a checklist are prose, not steps.
    assert!(
        disk["description"]
            .as_str()
            .unwrap()
            .contains("- Workspaces are rebuilt on the next build.\n- The cache")
    );
    assert_eq!(
        ids(&disk),
        [
            "see-what-is-full",
            "pause-the-agent-in-the-ci-console-so",
            "remove-old-workspaces",
            "if-the-cache-is-corrupt",
            "wipe-it",
            "still-no-space-follow-certificate",
            "unpause-the-agent",
            "done",
        ]
    );
    let remove = step(&disk, "remove-old-workspaces");
    assert_eq!(
        (&remove["run"], &remove["confirm"]),
        (&Value::from("rm -rf /var/lib/ci/workspace/*"), &Value::Bool(true))
    );
    assert_eq!(
        options(step(&disk, "if-the-cache-is-corrupt")),
        [
            ("No, go on", "still-no-space-follow-certificate", false),
            ("Yes: Wipe it", "wipe-it", false)
        ]
    );
    assert_eq!(step(&disk, "wipe-it")["confirm"], true);
    assert_eq!(
        step(&disk, "still-no-space-follow-certificate")["call"],
        "certificate-expired"
    );
    assert_eq!(
        step(&disk, "pause-the-agent-in-the-ci-console-so")["manual"],
        "Pause the agent in the CI console so that no new build lands on it"
    );
    let (_, cert) = load(&dir, "certificate-expired");
    assert_eq!(cert["rto"], "45m");
    let kill = step(&cert, "kill-builds-stuck-on-the-old-certificate");
    assert_eq!(
        (&kill["run"], &kill["confirm"]),
        (&Value::from("pkill -f 'ci-build --stuck'"), &Value::Bool(true))
    );
    assert!(step(&cert, "check-the-expiry").get("confirm").is_none());
}

#[test]
fn existing_files_are_kept_unless_forced() {
    let (dir, ..) = import("checklist", "force");
    let kept = dir.join("out/certificate-expired.yaml");
    std::fs::write(&kept, "edited by hand\n").unwrap();
    let refused = runbook(["import", "checklist.md", "-o", "out"])
        .current_dir(&dir)
        .expect_code(2);
    assert!(
        refused.stderr.contains("runbook files are already there: out/disk-full-on-a-build-agent.yaml, out/certificate-expired.yaml; nothing was written"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "edited by hand\n");
    runbook(["import", "checklist.md", "-o", "out", "--force"])
        .current_dir(&dir)
        .expect_code(0);
    assert!(
        std::fs::read_to_string(&kept)
            .unwrap()
            .contains("id: certificate-expired")
    );
}

#[test]
fn nothing_importable_says_why() {
    let dir = scratch("import-nothing");
    std::fs::write(
        dir.join("notes.md"),
        "# Notes\n\nJust prose.\n\n## Contacts\n\nAsk in the team channel.\n",
    )
    .unwrap();
    let out = runbook(["import", "notes.md", "-o", "out"])
        .current_dir(&dir)
        .expect_code(2);
    assert!(
        out.stderr
            .contains("notes.md:5: skipped `Contacts`: no steps under it"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("notes.md: nothing to import: none of its 1 section(s) has steps"),
        "{}",
        out.stderr
    );
    assert!(!dir.join("out").exists());
    let missing = runbook(["import", "missing.md"]).current_dir(&dir).expect_code(2);
    assert!(
        missing
            .stderr
            .contains("missing.md: cannot import it: No such file"),
        "{}",
        missing.stderr
    );
}
