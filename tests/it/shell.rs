//! A shell on the target from a step's prompt (design §17), in a real pseudo-terminal over the
//! real sshd: it opens over the run's master, runs what is typed there, follows the window's
//! size, and comes back to the same prompt; its recording is asciicast v2 that Debian's
//! `asciinema` reads, holds the commands' output and no secret, is chained into the trail and
//! checked by `audit verify`; `--no-shell`, `shell: false` and `--yes` never offer it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::cmd::{bin, runbook};
use crate::support::pty::{self, DOWN, Session, keys, wait_exit};
use crate::support::sshd::Sshd;
use crate::support::trail::audit_files;
use crate::support::trail::events;

/// The secret given through the environment (`--set-from pg_password=env:RB_SHELL_SECRET`).
const SECRET: &str = "hunter2-shell-secret";

/// A runbook with a step on role `app` that fails when `fail` is set, then an end.
fn book(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("shell.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\nid: shell-book\ntitle: Shell book\nrto: 10m\n{extra}inputs:\n  db_name: {{default: appdb}}\n  pg_password: {{secret: true}}\n  fail: {{default: \"\"}}\ntargets:\n  app: {{}}\nsteps:\n  - id: look\n    title: Look around\n    run: 'echo \"step-ran $db_name\"; test -z \"$fail\"'\n  - id: done\n    title: Done\n    end: resolved\n"
        ),
    )
    .unwrap();
    path
}

/// `runbook ARGS... --audit-dir AUDIT` in a pty, the secret in its environment.
fn start(args: &[&str], audit: &Path) -> Session {
    let mut command = Command::new(bin());
    command
        .args(args)
        .arg("--audit-dir")
        .arg(audit)
        .env("TERM", "xterm")
        .env("SHELL", "/bin/sh")
        .env("RB_SHELL_SECRET", SECRET)
        .env_remove("NO_COLOR")
        .env_remove("RUNBOOK_PATH")
        .env_remove("RUNBOOK_SIGNING_KEY")
        .env_remove("SSH_AUTH_SOCK")
        .env("USER", "tester");
    pty::start(command)
}

fn ssh_args(sshd: &Sshd, book: &Path) -> Vec<String> {
    vec![
        "run".into(),
        book.display().to_string(),
        "--target".into(),
        format!("app={}", sshd.dest()),
        "--identity".into(),
        sshd.identity.display().to_string(),
        "--known-hosts".into(),
        sshd.known_hosts.display().to_string(),
        "--ssh-config".into(),
        sshd.ssh_config.display().to_string(),
        "--set-from".into(),
        "pg_password=env:RB_SHELL_SECRET".into(),
    ]
}

/// Types a line in the shell once its prompt is there.
fn typed(s: &mut Session, line: &str) {
    keys(s, &format!("{line}\r"));
}

/// The Shell choice comes just before "Abort the run" (the last of the step prompt's seven).
const SHELL_AT_THE_STEP_PROMPT: usize = 5;

#[test]
fn a_shell_from_the_step_prompt_runs_on_the_host_is_recorded_and_comes_back() {
    let sshd = Sshd::start();
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = book(dir.path(), "");
    let args = ssh_args(&sshd, &book);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut s = start(&args, audit.path());
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(SHELL_AT_THE_STEP_PROMPT)));
    s.exp_string("its output recorded to").unwrap();
    // The prompt names the run and the step.
    s.exp_string("step look] $ ").unwrap();
    // The run's non-secret variables are there; its secret is not; this is the host's user.
    typed(
        &mut s,
        "echo \"db=$db_name pw=[$pg_password] run=$RUNBOOK_RUN\"; id -un",
    );
    s.exp_string("db=appdb pw=[] run=").unwrap();
    s.exp_string("rbtest").unwrap();
    // Typed and echoed: shown live, masked in the recording.
    typed(&mut s, &format!("echo {SECRET} | tr a-z A-Z"));
    s.exp_string("HUNTER2-SHELL-SECRET").unwrap();
    // The window's size reaches the remote terminal, and follows a resize.
    typed(&mut s, "stty size");
    s.exp_string("24 100").unwrap();
    s.resize(30, 120);
    std::thread::sleep(std::time::Duration::from_millis(500));
    typed(&mut s, "stty size");
    s.exp_string("30 120").unwrap();
    typed(&mut s, "exit");
    s.exp_string("shell closed after").unwrap();
    // The same prompt again; the run goes on from it.
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("step-ran appdb").unwrap();
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);

    let trail = audit_files(audit.path()).pop().unwrap();
    let events = events(&trail);
    let opened = events
        .iter()
        .find(|e| e["event"] == "shell opened")
        .expect("shell opened");
    let closed = events
        .iter()
        .find(|e| e["event"] == "shell closed")
        .expect("shell closed");
    assert_eq!(opened["step"], "look");
    assert_eq!(opened["host"], sshd.dest());
    assert_eq!(
        (opened["cols"].as_u64(), opened["rows"].as_u64()),
        (Some(100), Some(24))
    );
    assert_eq!(
        (closed["cols"].as_u64(), closed["rows"].as_u64()),
        (Some(120), Some(30))
    );
    assert!(closed["duration_ms"].as_u64().unwrap() > 0);
    assert_eq!(closed["exit"], 0);
    let run = opened["run"].as_str().unwrap().to_string();
    let path = closed["output"]["path"].as_str().unwrap();
    assert_eq!(path, format!("{run}/shell-1.cast"));
    assert_eq!(opened["output_file"], path);
    // The shell came before the step started: presented, shell, started.
    let at = |name: &str| events.iter().position(|e| e["event"] == name).unwrap();
    assert!(at("step presented") < at("shell opened") && at("shell closed") < at("step started"));

    let cast = audit.path().join(path);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cast).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&cast).unwrap();
    assert_eq!(closed["output"]["size"].as_u64(), Some(text.len() as u64));
    check_asciicast(&text);
    assert!(text.contains("db=appdb pw=[] run="), "{text}");
    assert!(text.contains("30 120"), "{text}");
    assert!(!text.contains(SECRET), "the secret is in the recording: {text}");
    assert!(text.contains("echo ***"), "the typed secret, masked: {text}");
    // A tool nobody here wrote reads it.
    let shown = asciinema_cat(&cast);
    assert!(shown.contains("db=appdb pw=[] run="), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");

    // Chained and checked: intact, then an edited recording is tampering.
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
    let replayed = runbook(["replay", run.as_str(), "--speed", "1000", "--audit-dir"])
        .arg(audit.path())
        .expect_code(0);
    assert!(replayed.stdout.contains("db=appdb"), "{}", replayed.stdout);
    runbook(["replay", run.as_str(), "2", "--audit-dir"])
        .arg(audit.path())
        .expect_code(2);
    let review = runbook(["review", run.as_str(), "--format", "json", "--audit-dir"])
        .arg(audit.path())
        .expect_code(0);
    let review: Value = serde_json::from_str(&review.stdout).unwrap();
    let visit = &review["runs"][0]["steps"][0];
    assert_eq!(visit["step"], "look");
    assert_eq!(visit["shells"][0]["recording"], path);
    std::fs::write(&cast, text.replace("db=appdb", "db=forged")).unwrap();
    let out = runbook(["audit", "verify"]).arg(&trail).expect_code(1);
    assert!(
        out.stdout.contains("shell-1.cast") || out.stderr.contains("shell-1.cast"),
        "{}{}",
        out.stdout,
        out.stderr
    );
}

/// Header `{version: 2, width, height, timestamp, env: {TERM, SHELL}}`, then `[t, "o", text]`
/// and `[t, "r", "COLSxROWS"]` events in time order, and never an `"i"` (input) event.
#[track_caller]
fn check_asciicast(text: &str) {
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert_eq!(
        (header["width"].as_u64(), header["height"].as_u64()),
        (Some(100), Some(24))
    );
    assert!(header["timestamp"].as_i64().unwrap() > 1_600_000_000);
    assert_eq!(header["env"]["TERM"], "xterm");
    assert!(header["env"]["SHELL"].is_string());
    let mut last = 0.0;
    for line in lines {
        let event: (f64, String, String) = serde_json::from_str(line).unwrap();
        assert!(event.0 >= last, "events in time order: {line}");
        last = event.0;
        assert!(event.1 == "o" || event.1 == "r", "no input events: {line}");
    }
    assert!(
        text.contains("\"r\",\"120x30\""),
        "the resize is recorded: {text}"
    );
}

/// What `asciinema cat FILE` prints (it needs a terminal: in a pty).
fn asciinema_cat(cast: &Path) -> String {
    let found = Command::new("asciinema").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "`asciinema` is missing: install it (apt-get install asciinema; scripts/test.sh does)"
    );
    let mut command = Command::new("asciinema");
    command.arg("cat").arg(cast).env("TERM", "xterm");
    let mut s = pty::start(command);
    let shown = s.exp_eof().unwrap();
    assert_eq!(wait_exit(&mut s), 0, "asciinema cat failed: {shown}");
    shown
}

#[test]
fn a_shell_after_a_failure_comes_back_to_the_failure_prompt_locally() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = book(dir.path(), "");
    let args = [
        "run",
        book.to_str().unwrap(),
        "--target",
        "app=local",
        "--set",
        "fail=yes",
        "--set-from",
        "pg_password=env:RB_SHELL_SECRET",
    ];
    let mut s = start(&args, audit.path());
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("The step did not succeed. What now?").unwrap();
    // Retry, Skip, Go to, Mark done, Note, then Shell (Abort stays last).
    keys(&mut s, &format!("{}\r", DOWN.repeat(5)));
    s.exp_string("step look] $ ").unwrap();
    typed(
        &mut s,
        "echo \"local fail=$fail secret=[$pg_password] shell=$RUNBOOK_SHELL\"",
    );
    s.exp_string("local fail=yes secret=[] shell=1").unwrap();
    // Ctrl-D leaves it, as exit does.
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.send_control('d').unwrap();
    s.exp_string("shell closed after").unwrap();
    s.exp_string("The step did not succeed. What now?").unwrap();
    // Skip it: the run goes on, to the resolved end, which nothing checks (issue 25, item 3).
    keys(&mut s, &format!("{DOWN}\r"));
    s.exp_string("End the incident as resolved, unverified?").unwrap();
    keys(&mut s, "y\r");
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
    let trail = audit_files(audit.path()).pop().unwrap();
    let events = events(&trail);
    let opened = events.iter().find(|e| e["event"] == "shell opened").unwrap();
    assert_eq!(
        (opened["host"].as_str(), opened["from"].as_str()),
        (Some("local"), Some("after failure"))
    );
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
    // The recording's time is the operator's, on that step.
    let review = runbook(["review"]).arg(&trail).expect_code(0);
    assert!(review.stdout.contains("shell-1.cast"), "{}", review.stdout);
}

/// Ctrl-C twice at a prompt: the run is aborted (and its lock let go).
fn abort(mut s: Session) {
    s.send_control('c').unwrap();
    s.exp_string("Ctrl-C: abort the run?").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.send_control('c').unwrap();
    assert_eq!(wait_exit(&mut s), 3);
}

/// The step prompt as drawn, once it is there.
fn step_prompt(args: &[&str], audit: &Path) -> (Session, String) {
    let mut s = start(args, audit);
    s.exp_string("What now?").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let screen = s.screen().contents();
    (s, screen)
}

#[test]
fn no_shell_and_shell_false_hide_the_choice() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let offered = book(dir.path(), "");
    let base = [
        "run",
        offered.to_str().unwrap(),
        "--target",
        "app=local",
        "--set",
        "pg_password=x",
    ];
    let (s, screen) = step_prompt(&base, audit.path());
    assert!(screen.contains("Open a shell on this machine"), "{screen}");
    abort(s);

    let with = |extra: &[&str]| -> Vec<String> { base.iter().chain(extra).map(|a| a.to_string()).collect() };
    let no_shell = with(&["--no-shell"]);
    let (s, screen) = step_prompt(
        &no_shell.iter().map(String::as_str).collect::<Vec<_>>(),
        audit.path(),
    );
    assert!(!screen.contains("Open a shell"), "{screen}");
    abort(s);

    let forbidden = dir.path().join("forbidden");
    std::fs::create_dir(&forbidden).unwrap();
    let book = book(&forbidden, "shell: false\n");
    let args = [
        "run",
        book.to_str().unwrap(),
        "--target",
        "app=local",
        "--set",
        "pg_password=x",
    ];
    let (s, screen) = step_prompt(&args, audit.path());
    assert!(!screen.contains("Open a shell"), "{screen}");
    abort(s);

    // An inventory host that says `shell: false` (its connection is never needed: the run
    // is stopped at the prompt).
    let sshd = Sshd::start();
    let inventory = dir.path().join("inventory.yaml");
    std::fs::write(
        &inventory,
        format!("hosts:\n  locked: {{ssh: \"{}\", shell: false}}\n", sshd.dest()),
    )
    .unwrap();
    let mut args = ssh_args(&sshd, &offered);
    args[3] = "app=locked".into();
    args.extend(["--inventory".into(), inventory.display().to_string()]);
    let (s, screen) = step_prompt(&args.iter().map(String::as_str).collect::<Vec<_>>(), audit.path());
    assert!(!screen.contains("Open a shell"), "{screen}");
    abort(s);
}

#[test]
fn unattended_runs_never_offer_a_shell() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = book(dir.path(), "");
    runbook([
        "run",
        book.to_str().unwrap(),
        "--yes",
        "--target",
        "app=local",
        "--set",
        "pg_password=x",
        "--audit-dir",
    ])
    .arg(audit.path())
    .expect_code(0);
    let trail = audit_files(audit.path()).pop().unwrap();
    assert!(
        !events(&trail)
            .iter()
            .any(|e| e["event"].as_str().is_some_and(|n| n.starts_with("shell")))
    );
    // And a run with no shell has no recording to replay.
    let run = trail.file_stem().unwrap().to_str().unwrap().to_string();
    let out = runbook(["replay", run.as_str(), "--audit-dir"])
        .arg(audit.path())
        .expect_code(2);
    assert!(out.stderr.contains("no shell recording"), "{}", out.stderr);
}

/// A fleet step asks which host; one the inventory marks `shell: false` is listed as such and
/// refused, naming why; another opens, on that host.
#[test]
fn a_fleet_step_asks_which_host_and_refuses_one_marked_shell_false() {
    let fleet = crate::support::fleet::Fleet::start(2);
    let inventory = std::fs::read_to_string(&fleet.inventory).unwrap();
    let locked = format!("  web-2: {{ssh: \"{}\"}}", fleet.hosts[1].dest);
    assert!(inventory.contains(&locked), "{inventory}");
    std::fs::write(
        &fleet.inventory,
        inventory.replace(
            &locked,
            &format!("  web-2: {{ssh: \"{}\", shell: false}}", fleet.hosts[1].dest),
        ),
    )
    .unwrap();
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = book(dir.path(), "");
    let mut args: Vec<String> = [
        "run",
        book.to_str().unwrap(),
        "--target",
        "app=web",
        "--set",
        "pg_password=x",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(fleet.ssh_args().into_iter().map(|a| a.into_string().unwrap()));
    let mut s = start(&args.iter().map(String::as_str).collect::<Vec<_>>(), audit.path());
    s.exp_string("What now?").unwrap();
    s.exp_string("Open a shell on a host of web").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(SHELL_AT_THE_STEP_PROMPT)));
    s.exp_string("A shell on which host?").unwrap();
    s.exp_string("web-2 (shell: false in the inventory)").unwrap();
    keys(&mut s, &format!("{DOWN}\r"));
    s.exp_string("no shell on web-2: the inventory says `shell: false` for web-2")
        .unwrap();
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(SHELL_AT_THE_STEP_PROMPT)));
    s.exp_string("A shell on which host?").unwrap();
    keys(&mut s, "\r");
    // The prompt names the host it is on (issue 25, item 10).
    s.exp_string("[runbook web-1 ").unwrap();
    s.exp_string("step look] $ ").unwrap();
    typed(&mut s, "echo \"on $RBTEST_HOST\"");
    s.exp_string("on web-1").unwrap();
    typed(&mut s, "exit");
    s.exp_string("What now?").unwrap();
    abort(s);
    let trail = audit_files(audit.path()).pop().unwrap();
    let opened: Vec<Value> = events(&trail)
        .into_iter()
        .filter(|e| e["event"] == "shell opened")
        .collect();
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["host"], "web-1");
}

/// After a fleet step failed on one host of three, the shell picker lists each host with how
/// its attempt ended and preselects the one that failed (issue 25: it preselected the first
/// host, which had succeeded); Enter opens the shell there.
#[test]
fn after_a_fleet_step_failed_the_shell_picker_preselects_the_failed_host() {
    let fleet = crate::support::fleet::Fleet::start(3);
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = dir.path().join("fleet-shell.yaml");
    std::fs::write(
        &book,
        "version: 1\nid: fleet-shell\ntitle: Fleet shell\nrto: 10m\ntargets:\n  app: {}\nsteps:\n  - id: look\n    title: Look around\n    run: 'test \"$RBTEST_HOST\" != web-2'\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    let mut args: Vec<String> = ["run", book.to_str().unwrap(), "--target", "app=web"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend(fleet.ssh_args().into_iter().map(|a| a.into_string().unwrap()));
    let mut s = start(&args.iter().map(String::as_str).collect::<Vec<_>>(), audit.path());
    s.exp_string("What now?").unwrap();
    keys(&mut s, "\r");
    s.exp_string("The step did not succeed. What now?").unwrap();
    // Retry the failed hosts, retry on every host, skip, go to, mark done, note, then Shell.
    s.exp_string("Open a shell on a host of web").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(6)));
    s.exp_string("A shell on which host?").unwrap();
    s.exp_string("web-3 (ok)").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let screen = s.screen().contents();
    let rows: Vec<&str> = screen.lines().filter(|l| l.contains("web-")).collect();
    let selected: Vec<&&str> = rows.iter().filter(|l| l.contains('❯')).collect();
    assert_eq!(selected.len(), 1, "{screen}");
    assert!(selected[0].contains("web-2 (failed: exit 1)"), "{screen}");
    assert!(rows.iter().any(|l| l.contains("web-1 (ok)")), "{screen}");
    keys(&mut s, "\r");
    s.exp_string("step look] $ ").unwrap();
    typed(&mut s, "echo \"on $RBTEST_HOST\"");
    s.exp_string("on web-2").unwrap();
    typed(&mut s, "exit");
    s.exp_string("What now?").unwrap();
    abort(s);
    let trail = audit_files(audit.path()).pop().unwrap();
    let opened: Vec<Value> = events(&trail)
        .into_iter()
        .filter(|e| e["event"] == "shell opened")
        .collect();
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["host"], "web-2");
}

/// The run dies during a shell: its recording is part of an incomplete trail (exit 4), and
/// the resume records its size and SHA-256 before going on; then the trail verifies.
#[test]
fn a_run_killed_during_a_shell_leaves_its_recording_to_the_resume() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = book(dir.path(), "");
    let args = [
        "run",
        book.to_str().unwrap(),
        "--target",
        "app=local",
        "--set",
        "pg_password=x",
    ];
    let mut s = start(&args, audit.path());
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(SHELL_AT_THE_STEP_PROMPT)));
    s.exp_string("step look] $ ").unwrap();
    typed(&mut s, "echo before-the-crash");
    s.exp_string("before-the-crash").unwrap();
    s.process_mut().signal(nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = s.process_mut().wait();
    let trail = audit_files(audit.path()).pop().unwrap();
    runbook(["audit", "verify"]).arg(&trail).expect_code(4);
    runbook([
        "resume",
        trail.to_str().unwrap(),
        "--yes",
        "--set",
        "pg_password=x",
        "--audit-dir",
    ])
    .arg(audit.path())
    .expect_code(0);
    let events = events(&trail);
    let recovered = events
        .iter()
        .find(|e| e["event"] == "output recovered")
        .expect("the recording is recorded by the resume");
    assert!(
        recovered["output"]["path"]
            .as_str()
            .unwrap()
            .ends_with("/shell-1.cast")
    );
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
    let cast = audit.path().join(recovered["output"]["path"].as_str().unwrap());
    assert!(
        std::fs::read_to_string(cast)
            .unwrap()
            .contains("before-the-crash")
    );
}

/// Issue 23 item 7: a shell open at a prompt counts as that prompt, and a SIGTERM does not
/// wait for its operator to leave it: the shell is hung up (its recording closed and
/// recorded), then the run ends `interrupted` after its cleanup, exit 130.
#[test]
fn sigterm_while_a_shell_is_open_ends_the_run_interrupted() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = book(dir.path(), "");
    let args = [
        "run",
        book.to_str().unwrap(),
        "--target",
        "app=local",
        "--set-from",
        "pg_password=env:RB_SHELL_SECRET",
    ];
    let mut s = start(&args, audit.path());
    s.exp_string("What now?").unwrap();
    // Run, Skip, Edit, By hand, Note, then Shell (Abort stays last).
    keys(&mut s, &format!("{}\r", DOWN.repeat(5)));
    s.exp_string("step look] $ ").unwrap();
    s.process_mut().signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(
        pty::wait_exit_within(&mut s, std::time::Duration::from_secs(20)),
        130
    );
    let trail = audit_files(audit.path()).pop().unwrap();
    let events = events(&trail);
    assert!(events.iter().any(|e| e["event"] == "shell closed"), "{events:#?}");
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "step started" && e["step"] == "look"),
        "the step never ran: {events:#?}"
    );
    let last = events.last().unwrap();
    assert_eq!(last["outcome"], "interrupted", "{last}");
    assert!(last["message"].as_str().unwrap().contains("SIGTERM"), "{last}");
    runbook(["audit", "verify"]).arg(&trail).expect_code(0);
}

/// Issue 25 item 10: the prompt names the host, and stays so in a bash whose own start-up file
/// sets a prompt of its own before each one (`PROMPT_COMMAND`, as git prompts and prompt
/// frameworks do).
#[test]
fn a_local_bash_shell_prompt_names_the_host_despite_a_prompt_command() {
    let (audit, dir, home) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    std::fs::write(
        home.path().join(".bashrc"),
        "PS1='mine> '\nPROMPT_COMMAND='PS1=\"mine> \"'\n",
    )
    .unwrap();
    let book = book(dir.path(), "");
    let mut command = Command::new(bin());
    command
        .args([
            "run",
            book.to_str().unwrap(),
            "--target",
            "app=local",
            "--set",
            "pg_password=x",
        ])
        .arg("--audit-dir")
        .arg(audit.path())
        .env("TERM", "xterm")
        .env("SHELL", "/bin/bash")
        .env("HOME", home.path())
        .env_remove("NO_COLOR")
        .env_remove("RUNBOOK_PATH")
        .env_remove("RUNBOOK_SIGNING_KEY")
        .env_remove("SSH_AUTH_SOCK")
        .env("USER", "tester");
    let mut s = pty::start(command);
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(SHELL_AT_THE_STEP_PROMPT)));
    s.exp_string("its output recorded to").unwrap();
    s.exp_string("[runbook local ").unwrap();
    s.exp_string("step look] $ ").unwrap();
    // And again after a command: the prompt before each one is still the run's.
    typed(&mut s, "echo \"host=$RUNBOOK_HOST\"");
    s.exp_string("host=local").unwrap();
    s.exp_string("[runbook local ").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let screen = s.screen().contents();
    assert!(!screen.contains("mine> "), "{screen}");
    typed(&mut s, "exit");
    s.exp_string("What now?").unwrap();
    abort(s);
}
