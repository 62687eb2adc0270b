//! A small builder that runs the real `runbook` binary and checks status, stdout and stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_runbook"))
}

/// The repository root, for `runbooks/`, `docs/` and `tests/data/`.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Run {
    command: Command,
    stdin: Option<Vec<u8>>,
}

/// `runbook ARGS...` with a clean environment: no catalog, audit dir, inventory or operator
/// leaking in from the developer's shell, and no colours.
pub fn runbook<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = Command::new(bin());
    command
        .args(args)
        .env_remove("RUNBOOK_PATH")
        .env_remove("RUNBOOK_AUDIT_DIR")
        .env_remove("RUNBOOK_INVENTORY")
        .env_remove("RUNBOOK_OPERATOR")
        .env_remove("RUNBOOK_SIGNING_KEY")
        .env_remove("RUNBOOK_AUDIT_HOST")
        .env_remove("SSH_AUTH_SOCK")
        .env("NO_COLOR", "1")
        .env("USER", "tester")
        .stdin(Stdio::null());
    Run { command, stdin: None }
}

pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs to completion and returns what it printed.
    #[track_caller]
    pub fn output(mut self) -> Outcome {
        use std::io::Write;
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped());
        if self.stdin.is_some() {
            self.command.stdin(Stdio::piped());
        }
        let mut child = self.command.spawn().expect("the runbook binary starts");
        if let Some(bytes) = self.stdin.take() {
            child.stdin.take().unwrap().write_all(&bytes).unwrap();
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        Outcome {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Runs and asserts the exit code, printing both streams when it differs.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Outcome {
        let out = self.output();
        assert_eq!(
            out.code,
            Some(code),
            "unexpected exit status\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.stdout,
            out.stderr
        );
        out
    }
}
