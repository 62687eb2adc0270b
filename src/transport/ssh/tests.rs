use super::*;

/// Runs the remote command in a local `sh`, the script on its stdin: as sshd does (the
/// shell a group leader) when `leader`, else as a server that leaves it in its parent's
/// group.
fn run(cmd: &str, script: &str, leader: bool) -> std::process::Output {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if leader {
        command.process_group(0);
    }
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// The script runs verbatim, and the announced id is the group the step runs in, with
/// and without a timeout, whether the login shell leads its group or not, and whether the
/// script is read by lines or by `cat`.
#[test]
fn the_remote_command_runs_the_script_verbatim_in_its_announced_group() {
    let script = "v='it'\\''s'\nexport v\nprintf '%s|%s|' \"$v\" \"$1\"; cat; cut -d' ' -f5 /proc/$$/stat";
    for timeout in [Some(Duration::from_secs(1)), None] {
        for (leader, login_sh) in [(true, true), (true, false), (false, true), (false, false)] {
            for len in [script.len(), 100_000] {
                let cmd = remote_command("TOKEN", timeout, len, login_sh);
                assert!(!cmd.contains("it'"), "the script is not in the command: {cmd}");
                let out = run(&cmd, script, leader);
                let stdout = String::from_utf8_lossy(&out.stdout);
                // `cat` reads nothing: the step's stdin is empty.
                let group = stdout
                    .strip_prefix("it's||")
                    .unwrap_or_else(|| panic!("{timeout:?} {leader}: {stdout}"));
                let stderr = String::from_utf8_lossy(&out.stderr);
                let (first, last) = stderr.split_once('\n').unwrap_or_else(|| panic!("{stderr}"));
                let pid: i32 = first.strip_prefix("TOKEN ").unwrap().parse().unwrap();
                assert!(pid > 1);
                assert_eq!(group.trim(), pid.to_string(), "{timeout:?} leader {leader}");
                // The end is reported last, once the script is done.
                assert_eq!(last, "TOKEN exit 0\n", "{timeout:?} leader {leader}");
            }
        }
    }
}

/// The exit code reaches sshd and is reported on stderr too, also when the script leaves
/// by `exit` or closes its own stderr; the step's errors name `sh`, not the wrapper.
#[test]
fn the_remote_command_passes_the_exit_code_on_and_reports_it() {
    for timeout in [Some(Duration::from_secs(5)), None] {
        for (leader, login_sh) in [(true, true), (true, false), (false, true), (false, false)] {
            for (command, code) in [
                ("exit 42", 42),
                ("false", 1),
                ("true", 0),
                ("exec 2>&-; exit 7", 7),
                ("sh -c 'kill -TERM $$'", 143),
            ] {
                let text = script(&[], command).unwrap();
                let out = run(&remote_command("T", timeout, text.len(), login_sh), &text, leader);
                let what = format!("{command} leader {leader} login sh {login_sh} timeout {timeout:?}");
                assert_eq!(out.status.code(), Some(code), "{what}");
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(stderr.ends_with(&format!("T exit {code}\n")), "{what}: {stderr}");
            }
            let text = script(&[], "cat /nonexistent/file").unwrap();
            let out = run(&remote_command("T", timeout, text.len(), login_sh), &text, leader);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let error = stderr.lines().nth(1).unwrap();
            assert!(error.starts_with("cat: "), "{error}");
            let text = script(&[], "> /nonexistent/file").unwrap();
            let out = run(&remote_command("T", timeout, text.len(), login_sh), &text, leader);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let error = stderr.lines().nth(1).unwrap();
            assert!(
                error.starts_with("sh: "),
                "the wrapper's text named as the program: {error}"
            );
        }
    }
}

/// Only a login shell named `sh` runs the wrapper as it is.
#[test]
fn only_sh_is_taken_for_sh() {
    for (path, sh) in [
        ("/bin/sh", true),
        ("/usr/bin/sh", true),
        ("sh", true),
        ("/bin/bash", false),
        ("/usr/bin/fish", false),
        ("/bin/dash", false),
        ("/bin/csh", false),
        ("/opt/sh/zsh", false),
        ("", false),
    ] {
        assert_eq!(is_sh(path), sh, "{path}");
    }
    let cmd = remote_command("T", None, 10, true);
    assert!(cmd.starts_with("if kill -0 -$$"), "{cmd}");
    let cmd = remote_command("T", None, 10, false);
    assert!(cmd.starts_with("exec sh -c 'if kill -0 -$$"), "{cmd}");
}

/// The wire form the session floor measures is what a step sends: its command runs from the
/// script on stdin (not from the command line), under a group line, and its exit code is
/// passed on and reported.
#[test]
fn the_wire_form_runs_its_command_as_a_step_does() {
    let (cmd, script) = wire_form("echo ran; exit 7").unwrap();
    assert!(!cmd.contains("echo ran"), "the command travels on stdin: {cmd}");
    assert!(
        !cmd.starts_with("exec sh -c"),
        "a login shell that is sh runs it as it is: {cmd}"
    );
    let out = run(&cmd, &script, true);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    assert_eq!(out.status.code(), Some(7));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("rb-pgid-") && stderr.ends_with(" exit 7\n"),
        "{stderr}"
    );
}
