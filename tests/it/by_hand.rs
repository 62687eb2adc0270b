//! A step run by hand, or skipped, in a real pseudo-terminal: what it would have captured is
//! asked for (secret when the step received a secret), and a decision whose `when` names an
//! unset variable preselects nothing and says why.

use std::process::Command;

use rexpect::session::spawn_with_options;

use crate::support::pty::{DOWN, keys, wait_exit};

const BOOK: &str = r#"version: 1
id: hand
title: By hand
rto: 5m
inputs:
  token: {description: A token, secret: true}
steps:
  - id: check
    title: Check
    run: echo ok
    capture: status
  - id: healthy
    title: Healthy?
    choose:
      - {label: Healthy, goto: done, when: {var: status, equals: ok}}
      - {label: Still failing, goto: broken}
  - id: done
    title: Done
    end: resolved
  - id: broken
    title: Broken
    end: failed
"#;

struct Run {
    session: crate::support::pty::Session,
    audit: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

fn spawn(book: &str) -> Run {
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hand.yaml");
    std::fs::write(&file, book).unwrap();
    let args = ["run", file.to_str().unwrap(), "--set", "token=tok-s3cr3t"];
    Run {
        session: crate::support::pty::spawn(&args, audit.path()),
        audit,
        _dir: dir,
    }
}

fn trail(audit: &std::path::Path) -> (String, Vec<serde_json::Value>) {
    let path = crate::support::trail::audit_files(audit).pop().unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let events = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (text, events)
}

#[test]
fn a_capture_run_by_hand_is_asked_for_and_judges_the_decision() {
    let mut r = spawn(BOOK);
    let s = &mut r.session;
    s.exp_string("What now?").unwrap();
    keys(s, &format!("{}\r", DOWN.repeat(3))); // Run it by hand
    s.exp_string("How did it go?").unwrap();
    keys(s, "\r"); // Done
    s.exp_string("the value of `status`, which the step captures")
        .unwrap();
    keys(s, "ok\r");
    s.exp_string("Decision").unwrap();
    // `status` is `ok`: Healthy is preselected.
    keys(s, "\r");
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(s), 0);
    let (_, events) = trail(r.audit.path());
    assert!(
        events.iter().any(|e| e["event"] == "answer"
            && e["question"] == "value of `status` (captured by hand)"
            && e["answer"] == "ok"),
        "{events:#?}"
    );
    let finished = events
        .iter()
        .find(|e| e["event"] == "step finished" && e["step"] == "check")
        .unwrap();
    assert_eq!(finished["capture"]["value"], "ok", "{finished}");
}

#[test]
fn the_capture_of_a_step_given_a_secret_is_typed_unseen_and_recorded_masked() {
    let book = BOOK.replace("run: echo ok", "run: test -n \"$token\" && echo ok");
    let mut r = spawn(&book);
    let s = &mut r.session;
    s.exp_string("What now?").unwrap();
    keys(s, &format!("{}\r", DOWN.repeat(3)));
    s.exp_string("How did it go?").unwrap();
    keys(s, "\r");
    s.exp_string("the value of `status`, which the step captures")
        .unwrap();
    keys(s, "ok-captured-unseen\r");
    s.exp_string("Decision").unwrap();
    // `status` is set (to something else than `ok`): the fallback is preselected.
    keys(s, "\r");
    let shown = s.exp_string("run failed").unwrap();
    assert!(
        !shown.contains("ok-captured-unseen"),
        "the typed secret was echoed: {shown}"
    );
    assert_eq!(wait_exit(s), 3);
    let (text, events) = trail(r.audit.path());
    assert!(!text.contains("ok-captured-unseen"), "{text}");
    assert!(
        events.iter().any(|e| e["event"] == "answer"
            && e["question"] == "value of `status` (captured by hand)"
            && e["answer"] == "***"),
        "{events:#?}"
    );
}

/// Regression: after the capturing step was skipped, the decision preselected "Still failing"
/// (its `when` read the unset `status` as empty), and a reflexive Enter took it.
#[test]
fn a_decision_on_a_skipped_capture_preselects_nothing_and_says_why() {
    let mut r = spawn(BOOK);
    let s = &mut r.session;
    s.exp_string("What now?").unwrap();
    keys(s, &format!("{DOWN}\r")); // Skip it
    s.exp_string(
        "`status` is not set: the step that captures it (`check`) was skipped, so no option is preselected",
    )
    .unwrap();
    s.exp_string("Decision").unwrap();
    // Enter picks nothing (no default); Down then selects the first option.
    keys(s, &format!("\r{DOWN}\r"));
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(s), 0);
    let (_, events) = trail(r.audit.path());
    let decision = events.iter().find(|e| e["event"] == "decision").unwrap();
    assert_eq!(decision["label"], "Healthy", "{decision}");
}

/// Regression: the by-hand script was the raw command after `export` lines: pasted, its
/// `exit 1` closed the operator's shell, its variables stayed exported there, and its
/// `read -rs` for a secret does not exist in dash. Now it is a POSIX subshell, pasted here
/// into a real interactive dash.
#[test]
fn the_by_hand_script_pasted_into_dash_runs_and_leaves_the_shell_as_it_was() {
    let book = r#"version: 1
id: paste
title: Paste
rto: 5m
inputs:
  token: {description: A token, secret: true}
  db_name: {default: "app db's"}
steps:
  - id: poke
    title: Poke
    run: |
      echo "db is $db_name"
      test "${#token}" -eq 10 && echo "token""-ok"
      exit 1
  - id: done
    title: Done
    end: resolved
"#;
    let mut r = spawn(book);
    let s = &mut r.session;
    s.exp_string("What now?").unwrap();
    keys(s, &format!("{}\r", DOWN.repeat(3))); // Run it by hand
    let printed = s.exp_string("How did it go?").unwrap().replace("\r\n", "\n");
    let start = printed.find("\n(\n").expect("the script opens a subshell") + 1;
    let end = start + printed[start..].find("\n)\n").expect("and closes it") + 3;
    let script = &printed[start..end];
    assert!(!script.contains("tok-s3cr3t"), "{script}");
    assert!(!script.contains("read -rs"), "{script}");

    let scratch = tempfile::tempdir().unwrap();
    let env_file = scratch.path().join("env");
    let mut command = Command::new("dash");
    command
        .arg("-i")
        .env_clear()
        .env("PS1", "$ ")
        .env("PATH", std::env::var("PATH").unwrap());
    let options = rexpect::reader::Options::new().timeout_ms(Some(20_000));
    let mut dash = spawn_with_options(command, options).unwrap();
    dash.exp_string("$ ").unwrap();
    dash.send(&script.replace('\n', "\r")).unwrap();
    dash.flush().unwrap();
    // Echo is off once the prompt shows (`stty -echo` comes first): the secret is not shown.
    dash.exp_string("token: ").unwrap();
    dash.send("tok-s3cr3t\r").unwrap();
    dash.flush().unwrap();
    dash.exp_string("db is app db's").unwrap();
    let seen = dash.exp_string("token-ok").unwrap();
    assert!(!seen.contains("tok-s3cr3t"), "the secret was echoed: {seen}");
    // `exit 1` left the subshell only: the same shell answers, with its status.
    dash.send(&format!(
        "echo \"still \"\"here $?\"; env > '{}'; echo \"sa\"\"ved\"\r",
        env_file.display()
    ))
    .unwrap();
    dash.flush().unwrap();
    dash.exp_string("still here 1").unwrap();
    dash.exp_string("saved").unwrap();
    let env = std::fs::read_to_string(&env_file).unwrap();
    for name in ["token", "db_name", "run_id", "operator", "mode"] {
        assert!(
            !env.lines().any(|l| l.starts_with(&format!("{name}="))),
            "`{name}` stayed exported in the operator's shell:\n{env}"
        );
    }
    dash.send("exit\r").unwrap();
    dash.flush().unwrap();
    dash.exp_eof().unwrap();

    keys(s, "\r"); // Done
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(s), 0);
}

/// Issue 25, item 4: "Run it by hand" on a remote step said "Paste this into your shell" and
/// never named the host; pasted on the laptop, it ran there. Now it names the host, and also
/// prints the ready `ssh ... sh -s` form, which, pasted into a shell here, runs the step there
/// with its variables (and never carries a secret).
#[test]
fn by_hand_on_a_remote_host_names_it_and_prints_a_form_that_runs_there() {
    let sshd = crate::support::sshd::Sshd::start();
    let mark = format!("/tmp/rb-by-hand-{}", std::process::id());
    let _ = std::fs::remove_file(&mark);
    let book = format!(
        "version: 1\nid: remote-hand\ntitle: Remote by hand\nrto: 5m\ninputs:\n  who: {{default: \"it's me\"}}\n  token: {{description: A token, secret: true}}\ntargets:\n  app: {{}}\nsteps:\n  - id: poke\n    title: Poke\n    run: echo \"$who via ${{SSH_CONNECTION%% *}}\" > {mark}\n  - id: done\n    title: Done\n    end: resolved\n"
    );
    let audit = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hand.yaml");
    std::fs::write(&file, book).unwrap();
    let target = format!("app={}", sshd.dest());
    let ssh = sshd.ssh_args();
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--set",
        "token=tok-s3cr3t",
        "--target",
        &target,
    ];
    args.extend(ssh.iter().map(String::as_str));
    let mut s = crate::support::pty::spawn(&args, audit.path());
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(3))); // Run it by hand
    let printed = s.exp_string("How did it go?").unwrap().replace("\r\n", "\n");
    let host = sshd.dest();
    assert!(
        printed.contains(&format!(
            "Run this on {host}, not here: paste it into a shell on {host}"
        )),
        "{printed}"
    );
    let start = printed.find("\nssh ").expect("the ssh form") + 1;
    let end =
        start + printed[start..].find("\nRUNBOOK_BY_HAND\n").expect("its end") + "\nRUNBOOK_BY_HAND\n".len();
    let form = &printed[start..end];
    assert!(!form.contains("tok-s3cr3t"), "{form}");
    assert!(form.contains("`token` is a secret"), "{form}");
    let ran = Command::new("sh")
        .arg("-c")
        .arg(form)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{form}\n{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&mark).unwrap(),
        "it's me via 127.0.0.1\n",
        "it ran over ssh, with its variables"
    );
    let _ = std::fs::remove_file(&mark);
    keys(&mut s, "\r"); // Done
    s.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut s), 0);
}
