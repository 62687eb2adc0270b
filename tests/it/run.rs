//! `runbook run` and `runbook drill` on the local transport: unattended walks, pre-flight
//! refusals, masking, injection, exit codes and the audit trail they leave.

use std::time::{Duration, Instant};

use crate::support::cmd::{root, runbook};
use crate::support::trail::events;
use crate::support::trail::{audit_files, wait_for_started};
use crate::support::world::World;

fn data(name: &str) -> String {
    root().join("tests/data/run").join(name).display().to_string()
}

#[test]
fn the_readme_drill_passes_and_leaves_a_sealed_trail() {
    let audit = tempfile::tempdir().unwrap();
    let demo = tempfile::tempdir().unwrap();
    let out = runbook(["drill", "examples/local-drill.yaml", "--yes", "--set"])
        .arg(format!("demo_dir={}/svc", demo.path().display()))
        .args(["--audit-dir"])
        .arg(audit.path())
        .current_dir(root())
        .expect_code(0);
    assert!(out.stderr.contains("drill verdict: PASS"), "{}", out.stderr);
    assert!(out.stderr.contains("service restarted"), "{}", out.stderr);
    assert!(
        !demo.path().join("svc").exists(),
        "cleanup removes the service directory"
    );
    let files = audit_files(audit.path());
    assert_eq!(files.len(), 1);
    runbook(["audit", "verify"]).arg(&files[0]).expect_code(0);
    let events = events(&files[0]);
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"run started"));
    assert_eq!(kinds.last(), Some(&"run finished"));
    assert!(kinds.contains(&"decision"));
    assert_eq!(events.last().unwrap()["verdict"]["pass"], true);
}

#[test]
fn branches_retries_captures_and_masking() {
    let world = World::new();
    let state = world.scratch().join("s");
    let out = world
        .args(["run", &data("branches.yaml"), "--yes"])
        .set("state_dir", state)
        .run()
        .expect_code(0);
    assert!(out.stderr.contains("try 3"), "{}", out.stderr);
    assert!(out.stderr.contains("said: hello world"), "{}", out.stderr);
    assert!(
        out.stderr.contains("token is *** and again ***"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("s3cr3t-t0ken"),
        "the secret never reaches the terminal:\n{}",
        out.stderr
    );
    let file = out.file();
    let trail = std::fs::read_to_string(file).unwrap();
    assert!(
        !trail.contains("s3cr3t-t0ken"),
        "the secret never reaches the audit trail"
    );
    let outputs = file.with_extension("");
    for entry in std::fs::read_dir(&outputs).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(
            !text.contains("s3cr3t-t0ken"),
            "the secret never reaches an output file: {text}"
        );
    }
    let flaky: Vec<_> = out
        .trail
        .iter()
        .filter(|e| e["event"] == "step finished" && e["step"] == "flaky")
        .map(|e| e["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(flaky, ["failed", "failed", "ok"]);
}

#[test]
fn values_are_never_spliced_into_commands() {
    let audit = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let pwned = scratch.path().join("pwned");
    let payloads = [
        format!("'; touch {} ; '", pwned.display()),
        format!("$(touch {})", pwned.display()),
        format!("`touch {}`", pwned.display()),
        format!("x\ntouch {}", pwned.display()),
        format!("\"; touch {}; \"", pwned.display()),
    ];
    for payload in payloads {
        let out = runbook(["run", &data("branches.yaml"), "--yes", "--audit-dir"])
            .arg(audit.path())
            .arg("--set")
            .arg(format!("state_dir={}/s", scratch.path().display()))
            .arg("--set")
            .arg(format!("greeting={payload}"))
            .output();
        // The greeting does not match `^hello world$`, so the run escalates or fails; what
        // matters is that the payload arrived as data.
        assert_ne!(out.code, Some(0), "{}", out.stderr);
        assert!(
            !pwned.exists(),
            "payload {payload:?} was executed:\n{}",
            out.stderr
        );
    }
}

#[test]
fn without_a_terminal_and_without_yes_it_refuses_at_once() {
    let start = Instant::now();
    let out = runbook(["run", &data("failing.yaml")]).expect_code(2);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(out.stderr.contains("no terminal to ask on"), "{}", out.stderr);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
}

#[test]
fn unattended_refuses_steps_that_need_a_human_and_lists_them() {
    let world = World::new().args(["run", &data("manual.yaml"), "--yes"]);
    let out = world.run().expect_code(2);
    assert!(
        out.stderr
            .contains("look: manual step (--answer look=done|skip|failed)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("drop: typed confirmation (--answer drop=PHRASE)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("pick: decision without a fallback option"),
        "{}",
        out.stderr
    );
    assert!(
        audit_files(&out.audit_dir).is_empty(),
        "nothing was run, nothing recorded"
    );
}

#[test]
fn a_wrong_phrase_stops_before_the_step_acts() {
    let with_phrase = |world: World, phrase: &str| {
        world
            .args(["run", &data("manual.yaml"), "--yes"])
            .answer("look", "done")
            .answer("drop", phrase)
            .answer("pick", "Fine")
    };
    let world = with_phrase(World::new(), "wrong");
    let out = world.run().expect_code(3);
    assert!(!out.stderr.contains("dropping app"), "{}", out.stderr);
    assert!(out.stderr.contains("typed confirmation"), "{}", out.stderr);
    let out = with_phrase(world, "app").run().expect_code(0);
    assert!(out.stderr.contains("dropping app"), "{}", out.stderr);
}

#[test]
fn a_failed_step_follows_on_failure_and_exits_3() {
    let world = World::new().args(["run", &data("failing.yaml"), "--yes"]);
    let out = world.run().expect_code(3);
    assert!(out.stderr.contains("check: failed (exit 3)"), "{}", out.stderr);
    assert!(out.stderr.contains("run escalated"), "{}", out.stderr);
    assert!(out.stderr.contains("check failed"), "{}", out.stderr);
    let drill = world
        .args(["drill", &data("failing.yaml"), "--yes"])
        .run()
        .expect_code(3);
    assert!(
        drill
            .stderr
            .contains("drill verdict: FAIL — the run ended escalated"),
        "{}",
        drill.stderr
    );
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let world = World::new().args(["run", &data("branches.yaml"), "--dry-run"]);
    let out = world.run().expect_code(0);
    assert!(
        out.stdout.contains("[2/7] flaky — Succeeds on the third try"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("option \"Greeted\" → done (when said = \"hello world\")"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("var token=***"), "{}", out.stdout);
    assert!(!out.stdout.contains("s3cr3t-t0ken"), "{}", out.stdout);
    assert!(audit_files(&out.audit_dir).is_empty());
}

/// Each step says where it runs: its role and what the role is bound to (an inventory host
/// with its destination and env, an SSH destination, or this machine), cleanup steps too.
#[test]
fn dry_run_shows_each_steps_target() {
    let world = World::new()
        .inventory("hosts:\n  prod-db: {ssh: deploy@db-1.example.com:2222, env: prod}\n")
        .write(
            "rb.yaml",
            r#"version: 1
id: two-hosts
title: Two hosts
rto: 5m
targets:
  db: {description: the database}
  app: {description: the API host, default: "ops@app-1.example.com"}
steps:
  - {id: stop, title: Stop the API, target: app, run: systemctl stop api}
  - {id: dump, title: Dump, target: db, run: pg_dump app > /tmp/app.sql}
  - {id: note, title: Write it down, target: local, run: echo done}
  - {id: done, title: Done, end: resolved}
cleanup:
  - {id: start, title: Start the API, target: app, run: systemctl start api}
"#,
        )
        .args(["run", "rb.yaml", "--dry-run", "--target", "db=prod-db"]);
    let out = world.run().expect_code(0);
    for line in [
        "  target app → ops@app-1.example.com (ssh)\n",
        "  target db → prod-db (deploy@db-1.example.com:2222, ssh, env prod)\n",
        "[1/4] stop — Stop the API\n    run on app → ops@app-1.example.com (ssh):\n      systemctl stop api\n",
        "[2/4] dump — Dump\n    run on db → prod-db (deploy@db-1.example.com:2222, ssh, env prod):\n",
        "[3/4] note — Write it down\n    run on local (this machine):\n",
        "cleanup start — Start the API\n    run on app → ops@app-1.example.com (ssh):\n",
    ] {
        assert!(out.stdout.contains(line), "no {line:?} in:\n{}", out.stdout);
    }
}

/// Regression: a secret input without a value made `--dry-run` ask for it, and with stdin not
/// a terminal it ended "the terminal went away while asking" (exit 129). A dry run now asks
/// nobody and reads no source (a `cmd:` would run a command): it says where each value would
/// come from. Unattended, a missing input is still the run's own refusal.
#[test]
fn dry_run_asks_for_no_secret_and_reads_no_source() {
    let world = World::new();
    let witness = world.root().join("source-ran");
    let world = world.write(
        "rb.yaml",
        &format!(
            r#"version: 1
id: secrets
title: Secrets
rto: 5m
inputs:
  pg_password: {{description: Superuser password, secret: true}}
  token: {{secret: true, from: "cmd:touch {}"}}
  db_name: {{default: app}}
  ticket: {{description: Incident ticket}}
steps:
  - id: count
    title: Count rows in {{{{ db_name }}}}
    run: PGPASSWORD="$pg_password" TOKEN="$token" psql -c "select 1" "$db_name"
  - {{id: done, title: Done, end: resolved}}
"#,
            witness.display()
        ),
    );
    let world = world.args(["run", "rb.yaml", "--dry-run"]);
    let out = world.run().expect_code(0);
    for line in [
        "  var pg_password=<secret: asked when the run starts, not in a dry run>\n",
        &format!(
            "  var token=<from cmd:touch {}: read when the run starts>\n",
            witness.display()
        ),
        "  var db_name=app\n",
        "  var ticket=<asked when the run starts>\n",
        "[1/2] count — Count rows in app\n",
    ] {
        assert!(out.stdout.contains(line), "no {line:?} in:\n{}", out.stdout);
    }
    assert!(!witness.exists(), "a dry run ran the cmd: source");
    // A value given is used, a secret one masked.
    let world = world
        .args(["run", "rb.yaml", "--dry-run"])
        .set("pg_password", "hunter2")
        .set("ticket", "INC-7");
    let out = world.run().expect_code(0);
    assert!(out.stdout.contains("  var pg_password=***\n"), "{}", out.stdout);
    assert!(out.stdout.contains("  var ticket=INC-7\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("hunter2"), "{}", out.stdout);
    // Unattended, what nobody gives is the run's own refusal, before anything.
    let world = world.args(["run", "rb.yaml", "--dry-run", "--yes"]);
    let out = world.run().expect_code(2);
    assert!(
        out.stderr
            .contains("inputs without a value: pg_password, ticket — pass --set-from pg_password=SOURCE"),
        "{}",
        out.stderr
    );
    assert!(!witness.exists(), "a dry run ran the cmd: source");
}

#[test]
fn kill_9_mid_step_leaves_a_verifiable_incomplete_trail() {
    use std::process::{Command, Stdio};
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow.yaml");
    std::fs::write(
        &file,
        "version: 1\nid: slow\ntitle: Slow\nrto: 1m\nsteps:\n  - id: wait\n    title: Wait\n    run: echo started; sleep 30\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    let mut child = Command::new(crate::support::cmd::bin())
        .args(["run", "--yes", "--audit-dir"])
        .arg(audit.path())
        .arg(&file)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the step to be on disk as started, then kill without warning.
    wait_for_started(audit.path());
    child.kill().unwrap();
    child.wait().unwrap();
    let files = audit_files(audit.path());
    let out = runbook(["audit", "verify"]).arg(&files[0]).expect_code(4);
    assert!(out.stdout.contains("incomplete"), "{}", out.stdout);
}

#[test]
fn a_drill_refuses_production_hosts_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("prod.yaml");
    std::fs::write(
        &book,
        "version: 1\nid: prod\ntitle: Prod\nrto: 1m\ntargets:\n  api: {}\nsteps:\n  - id: look\n    title: Look\n    run: 'true'\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    let inventory = dir.path().join("inventory.yaml");
    std::fs::write(
        &inventory,
        "hosts:\n  prod-api: {ssh: deploy@192.0.2.10, env: prod}\ngroups:\n  web: [prod-api, prod-api]\n",
    )
    .unwrap();
    let out = runbook(["drill", "--yes", "--target", "api=prod-api", "--inventory"])
        .arg(&inventory)
        .arg(&book)
        .expect_code(2);
    assert!(
        out.stderr.contains("production hosts (prod-api)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--allow-prod"), "{}", out.stderr);
    // A group is refused the same way: its production host is there whatever it is called.
    let out = runbook(["drill", "--yes", "--target", "api=web", "--inventory"])
        .arg(&inventory)
        .arg(&book)
        .expect_code(2);
    assert!(
        out.stderr.contains("production hosts (prod-api)"),
        "{}",
        out.stderr
    );
}

#[test]
fn since_starts_the_rto_clock_at_detection_and_start_at_skips_ahead() {
    let audit = tempfile::tempdir().unwrap();
    let since = (chrono::Utc::now() - chrono::Duration::minutes(2)).to_rfc3339();
    let out = runbook([
        "drill",
        &data("failing.yaml"),
        "--yes",
        "--start-at",
        "done",
        "--since",
        &since,
        "--audit-dir",
    ])
    .arg(audit.path())
    .expect_code(4);
    assert!(
        !out.stderr.contains("check: "),
        "--start-at skips the first step:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("drill verdict: FAIL — resolved in 2m"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("over the 1m RTO"), "{}", out.stderr);
    let out = runbook(["run", &data("failing.yaml"), "--yes", "--start-at", "dne"]).expect_code(2);
    assert!(out.stderr.contains("did you mean `done`?"), "{}", out.stderr);
}

/// Regression: a step entered a second time (through `on_failure` and `next`) reused attempt
/// number 1, and its output file already existed.
#[test]
fn a_step_visited_twice_keeps_both_outputs() {
    let world = World::new();
    let state = world.scratch().join("s");
    let out = world
        .args(["run", &data("revisit.yaml"), "--yes"])
        .set("state_dir", state)
        .run()
        .expect_code(0);
    let file = out.file();
    let attempts: Vec<(String, i64)> = out
        .trail
        .iter()
        .filter(|e| e["event"] == "step finished" && e["step"] == "check")
        .map(|e| {
            (
                e["outcome"].as_str().unwrap().to_string(),
                e["attempt"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts, [("failed".to_string(), 1), ("ok".to_string(), 2)]);
    let outputs = file.with_extension("");
    assert!(outputs.join("check-1.out").exists() && outputs.join("check-2.out").exists());
}

/// A full disk mid-step: the run stops (exit 1) with the OS error and how to go on, and the
/// trail it leaves is intact, unsealed, and resumable. Needs root to mount a tiny tmpfs.
#[test]
fn a_full_disk_stops_the_run_and_leaves_a_resumable_trail() {
    let disk = crate::support::tmpfs::Tmpfs::mount("128k");
    let dir = disk.path();
    let book = tempfile::NamedTempFile::new().unwrap();
    // The flood goes on (a marker in argv) until it is stopped, or writes a mark if it ran on.
    let ran_on = tempfile::tempdir().unwrap();
    let mark = ran_on.path().join("ran-to-the-end");
    std::fs::write(
        book.path(),
        format!(
            "version: 1\nid: flood\ntitle: Flood\nrto: 1m\nsteps:\n  - {{id: flood, title: Flood, run: \"head -c 300000 /dev/zero | tr '\\\\0' x; sleep 3; touch {}\"}}\n  - {{id: after, title: After, run: echo after-ran}}\n  - {{id: done, title: Done, end: resolved}}\n",
            mark.display()
        ),
    )
    .unwrap();
    let out = runbook(["run", "--yes", "--audit-dir"])
        .arg(dir)
        .arg(book.path())
        .output();
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("No space left on device"),
        "{}",
        &out.stderr[out.stderr.len().saturating_sub(600)..]
    );
    assert!(
        out.stderr.contains("runbook resume"),
        "{}",
        &out.stderr[out.stderr.len().saturating_sub(600)..]
    );
    assert!(
        !out.stderr.contains("after-ran\n"),
        "nothing runs after the trail cannot be written"
    );
    let trail = audit_files(dir);
    let verify = runbook(["audit", "verify"]).arg(&trail[0]).expect_code(4);
    assert!(verify.stdout.contains("incomplete"), "{}", verify.stdout);
    // The step whose output could not be written was stopped, not left to run to its end
    // (which it would have reached 3 s after its flood).
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        !mark.exists(),
        "the command ran on after its output could not be written"
    );
}

/// SIGTERM (or Ctrl-C) on an unattended run: the command is stopped, the cleanup still runs,
/// and the trail is sealed with the run `interrupted` (exit 130).
#[test]
fn a_signal_stops_the_command_runs_cleanup_and_seals() {
    use std::process::{Command, Stdio};
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("sigterm-marker-{}", std::process::id());
    let book = dir.path().join("slow.yaml");
    let cleaned = dir.path().join("cleaned");
    std::fs::write(
        &book,
        format!(
            "version: 1\nid: slow\ntitle: Slow\nrto: 1m\nsteps:\n  - id: wait\n    title: Wait\n    run: echo started; sh -c 'sleep 300' {marker}\n  - id: done\n    title: Done\n    end: resolved\ncleanup:\n  - id: tidy\n    title: Tidy\n    run: touch {}\n",
            cleaned.display()
        ),
    )
    .unwrap();
    let child = Command::new(crate::support::cmd::bin())
        .args(["run", "--yes", "--audit-dir"])
        .arg(audit.path())
        .arg(&book)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_started(audit.path());
    // The command itself is running (its marker is in an argv), not just recorded as started.
    let running = || {
        !std::process::Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .unwrap()
            .stdout
            .is_empty()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !running() {
        assert!(std::time::Instant::now() < deadline, "the command never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("wait: cancelled"), "{stderr}");
    // Named for what it was: SIGTERM is not "Ctrl-C".
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGTERM during `wait`"),
        "{stderr}"
    );
    assert!(stderr.contains("run interrupted"), "{stderr}");
    assert!(cleaned.exists(), "the cleanup ran");
    let gone = std::process::Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .unwrap();
    assert!(gone.stdout.is_empty(), "the command outlived the signal");
    let trail = &audit_files(audit.path())[0];
    runbook(["audit", "verify"]).arg(trail).expect_code(0);
    assert_eq!(events(trail).last().unwrap()["outcome"], "interrupted");
}

/// Durations, `NAME=VALUE` pairs and times on the command line are checked where clap parses
/// them, before anything else (issue 26: they were strings parsed deep in the run): a bad one
/// is a usage error that names the flag, nothing runs, and a bad `--set` (perhaps a secret
/// typed in the wrong place) is never echoed.
#[test]
fn a_bad_duration_flag_is_a_usage_error_naming_the_flag() {
    let audit = tempfile::tempdir().unwrap();
    for (flag, value, says) in [
        ("--keepalive", "0s", "at least 1s"),
        ("--connect-timeout", "banana", "--connect-timeout"),
        ("--notify-timeout", "5 parsecs", "--notify-timeout"),
        (
            "--target",
            "deploy@db-1",
            "--target `deploy@db-1` is not ROLE=DEST",
        ),
        (
            "--set-from",
            "pg_password",
            "--set-from `pg_password` is not NAME=SOURCE",
        ),
        ("--answer", "drop-db", "--answer `drop-db` is not STEP=VALUE"),
        (
            "--set",
            "hunter2",
            "--set is not NAME=VALUE (its text is not shown",
        ),
        (
            "--since",
            "7 o'clock",
            "--since `7 o'clock` is not a time: write a time like 07:02",
        ),
    ] {
        let out = runbook([
            "run",
            "--yes",
            flag,
            value,
            "examples/local-drill.yaml",
            "--audit-dir",
        ])
        .arg(audit.path())
        .expect_code(2);
        assert!(
            out.stderr.contains(flag) && out.stderr.contains(says),
            "{flag}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("hunter2"),
            "a --set value was echoed: {}",
            out.stderr
        );
        assert!(
            crate::support::trail::audit_files(audit.path()).is_empty(),
            "{flag}: a run started"
        );
    }
}
