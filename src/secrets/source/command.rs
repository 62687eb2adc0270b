//! Runs a `cmd:` source (design §14 "Sources"): a password manager's own command line (`pass
//! show db/prod`, `vault kv get -field=password secret/db`, `op read op://vault/db/password`),
//! split as a shell would split it but run without one, so no shell sees the command or what it
//! prints, and the output stays out of every error.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};

use super::{LIMIT, ReadContext, Source, SourceError, missing, strip_newline};

pub(super) fn argv(command: &str) -> Result<Vec<String>, SourceError> {
    shlex::split(command).ok_or_else(|| SourceError::Unbalanced(command.to_string()))
}

/// Runs a `cmd:` source: no shell, no standard input, stdout bounded and kept out of every
/// error, stderr shown only when it fails.
pub(super) fn run(source: &Source, command: &str, ctx: &ReadContext) -> Result<String, SourceError> {
    let argv = argv(command)?;
    let Some((program, args)) = argv.split_first() else {
        return Err(missing("cmd"));
    };
    let mut child = Command::new(program)
        .args(args)
        .envs(ctx.cmd_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SourceError::NotFound {
                program: program.clone(),
            },
            _ => SourceError::Spawn {
                program: program.clone(),
                source: e,
            },
        })?;
    let spawn_error = |source| SourceError::Spawn {
        program: program.clone(),
        source,
    };
    // Read apart, so that a program filling its stderr pipe does not block on it while we
    // wait for its stdout.
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let stderr = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = (&mut stderr).take(LIMIT as u64).read_to_end(&mut bytes);
        // Drain the rest unkept: the program must not block on a full pipe.
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        bytes
    });
    let mut stdout = Vec::new();
    let read = child
        .stdout
        .take()
        .expect("stdout is piped")
        .take(LIMIT as u64 + 1)
        .read_to_end(&mut stdout);
    if read.is_err() || stdout.len() > LIMIT {
        let _ = child.kill();
        let _ = child.wait();
        let _ = stderr.join();
        return Err(match read {
            Err(e) => spawn_error(e),
            Ok(_) => SourceError::TooLarge { spec: source.clone() },
        });
    }
    let status = child.wait().map_err(spawn_error)?;
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        return Err(SourceError::Failed {
            program: program.clone(),
            status: describe(status),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        });
    }
    let text = String::from_utf8(stdout).map_err(|_| SourceError::OutputNotUtf8 {
        program: program.clone(),
    })?;
    Ok(strip_newline(&text).to_string())
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::process::{Command, Stdio};

    use crate::secrets::source::tests::{ctx, parse, read_error, read_ok};

    #[test]
    fn runs_a_command_with_quoted_arguments_without_a_shell() {
        let read = read_ok(r#"cmd:printf '%s|%s|%s\n' 'a b' "c \"d\"" $HOME"#);
        // `$HOME` is not expanded: there is no shell.
        assert_eq!(read.value, r#"a b|c "d"|$HOME"#);
        // Exactly one line ending is stripped.
        assert_eq!(read_ok(r"cmd:printf 'x\n\n'").value, "x\n");
        assert_eq!(read_ok(r"cmd:printf 'x\r\n'").value, "x");
        assert_eq!(read_ok("cmd:printf x").value, "x");
        // Variables for the child only.
        let ctx = ctx().with_cmd_env("RUNBOOK_TEST_CHILD_ONLY", "from ctx");
        let read = parse(r#"cmd:sh -c 'printf %s "$RUNBOOK_TEST_CHILD_ONLY"'"#)
            .read(&ctx)
            .unwrap();
        assert_eq!(read.value, "from ctx");
        assert_eq!(std::env::var_os("RUNBOOK_TEST_CHILD_ONLY"), None);
    }

    #[test]
    fn explains_a_failed_command_without_its_output() {
        let error = read_error(
            r#"cmd:sh -c 'echo the-secret-output; for i in 1 2 3 4 5 6; do echo "line $i" >&2; done; printf "\033]0;x\007" >&2; exit 3'"#,
        );
        assert_eq!(
            error,
            "`sh` failed (exit code 3)\n  line 3\n  line 4\n  line 5\n  line 6\n  \\x1b]0;x\\x07"
        );
        assert!(!error.contains("the-secret-output"));
        assert_eq!(
            read_error("cmd:sh -c 'kill -9 $$'"),
            "`sh` failed (killed by signal 9)"
        );
        assert_eq!(
            read_error("cmd:runbook-no-such-program show db"),
            "`runbook-no-such-program` not found: is it installed and on `PATH`?"
        );
    }

    #[test]
    fn refuses_empty_and_oversized_output() {
        // `cat` reads a null stdin: it ends at once, with nothing.
        assert_eq!(
            read_error("cmd:cat"),
            "`cmd:cat` gave an empty value for `db_password`"
        );
        assert_eq!(
            read_error("cmd:head -c 2000000 /dev/zero"),
            "`cmd:head -c 2000000 /dev/zero` gave more than 1 MiB: not a secret value"
        );
        assert_eq!(
            read_error("cmd:yes"),
            "`cmd:yes` gave more than 1 MiB: not a secret value"
        );
        assert_eq!(
            read_error("file:/dev/zero"),
            "`file:/dev/zero` gave more than 1 MiB: not a secret value"
        );
    }

    /// Runs a setup command of the `pass` test, panicking with its stderr when it fails.
    #[track_caller]
    fn setup(command: &mut Command, stdin: &str) {
        use std::io::Write;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?}: {e}: apt-get install -y pass gnupg"));
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops the throwaway store's gpg-agent however the test ends.
    struct Agent<'a>(&'a Path);

    impl Drop for Agent<'_> {
        fn drop(&mut self) {
            let _ = Command::new("gpgconf")
                .env("GNUPGHOME", self.0)
                .args(["--kill", "all"])
                .status();
        }
    }

    #[test]
    fn reads_a_real_pass_store() {
        for program in ["pass", "gpg", "gpgconf"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .unwrap();
            assert!(
                found.status.success(),
                "`{program}` is missing: apt-get install -y pass gnupg"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let gnupg = dir.path().join("gnupg");
        std::fs::create_dir(&gnupg).unwrap();
        std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700)).unwrap();
        let store = dir.path().join("store");
        let _agent = Agent(&gnupg);
        let env = [
            ("GNUPGHOME", gnupg.as_os_str()),
            ("PASSWORD_STORE_DIR", store.as_os_str()),
        ];
        let uid = "runbook test <t@example.invalid>";
        setup(
            Command::new("gpg").envs(env).args([
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                uid,
                "default",
                "default",
                "never",
            ]),
            "",
        );
        setup(
            Command::new("pass").envs(env).args(["init", "t@example.invalid"]),
            "",
        );
        let secret = "s3cr3t with spaces, 'quotes', \"doubles\" & ünïcode";
        setup(
            Command::new("pass").envs(env).args(["insert", "-m", "db/prod"]),
            &format!("{secret}\n"),
        );

        let ctx = ctx()
            .with_cmd_env("GNUPGHOME", gnupg.to_str().unwrap())
            .with_cmd_env("PASSWORD_STORE_DIR", store.to_str().unwrap());
        let read = parse("cmd:pass show db/prod").read(&ctx).unwrap();
        assert_eq!(read.value, secret);
        assert_eq!(
            parse("cmd:pass show db/missing")
                .read(&ctx)
                .unwrap_err()
                .to_string(),
            "`pass` failed (exit code 1)\n  Error: db/missing is not in the password store."
        );
    }
}
