//! A test that owns its world (issue 26, after casey/just's `Test::new()`): one temporary
//! directory holding the catalog (`catalog/`), the audit dir (`audit/`), an optional
//! `inventory.yaml` and a scratch dir; the command to run, its answers and environment; and what
//! the run gave back: the exit code, both streams and the trail it wrote.
//!
//! ```ignore
//! let world = World::new()
//!     .runbook("restart", RESTART)
//!     .args(["run", "restart", "--yes"])
//!     .answer("look", "done");
//! let out = world.run().expect_code(0);
//! assert_eq!(out.trail.last().unwrap()["outcome"], "resolved");
//! insta::assert_snapshot!(redact(&out.stderr, &world));
//! ```
//!
//! The binary is started by [`super::cmd::runbook`] (a clean environment: no catalog, audit dir,
//! inventory, operator or signing key of the developer's shell, no colours), in the world's
//! directory, with `RUNBOOK_PATH` and `RUNBOOK_AUDIT_DIR` set to the world's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tempfile::TempDir;

use super::cmd::runbook;
use super::trail;

pub struct World {
    /// Shared with every [`Outcome`]: the files a run wrote outlive the builder that ran it.
    dir: Arc<TempDir>,
    args: Vec<OsString>,
    envs: Vec<(String, OsString)>,
    stdin: Option<Vec<u8>>,
}

/// What one `runbook` invocation in a world gave back.
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The events of the trail this invocation wrote (empty when it wrote none).
    pub trail: Vec<Value>,
    /// The audit file this invocation wrote, if any.
    pub file: Option<PathBuf>,
    /// The world's audit dir.
    pub audit_dir: PathBuf,
    /// The world's environment, for the commands that follow in it (`review`).
    envs: Vec<(String, OsString)>,
    dir: Arc<TempDir>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// An empty world: `catalog/`, `audit/` (0700, as `runbook` makes it) and `scratch/`.
    pub fn new() -> World {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("rb-world-")
            .tempdir()
            .expect("create the world's directory");
        for sub in ["catalog", "audit", "scratch"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::set_permissions(dir.path().join("audit"), std::fs::Permissions::from_mode(0o700)).unwrap();
        World {
            dir: Arc::new(dir),
            args: Vec::new(),
            envs: Vec::new(),
            stdin: None,
        }
    }

    /// The world's directory (the current directory of every invocation).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `catalog/`: `RUNBOOK_PATH`.
    pub fn catalog(&self) -> PathBuf {
        self.root().join("catalog")
    }

    /// `audit/`: `RUNBOOK_AUDIT_DIR`.
    pub fn audit_dir(&self) -> PathBuf {
        self.root().join("audit")
    }

    /// `scratch/`: a directory for the runbooks' own files (a `state_dir` input).
    pub fn scratch(&self) -> PathBuf {
        self.root().join("scratch")
    }

    /// `catalog/NAME.yaml` holding `yaml`: `runbook run NAME` finds it by its id.
    pub fn runbook(self, name: &str, yaml: &str) -> World {
        std::fs::write(self.catalog().join(format!("{name}.yaml")), yaml).unwrap();
        self
    }

    /// `inventory.yaml` in the world's directory (found there as `./inventory.yaml`).
    pub fn inventory(self, yaml: &str) -> World {
        std::fs::write(self.root().join("inventory.yaml"), yaml).unwrap();
        self
    }

    /// Any other file, at `path` relative to the world's directory.
    pub fn write(self, path: &str, text: &str) -> World {
        let path = self.root().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, text).unwrap();
        self
    }

    /// The arguments of the next invocation, replacing the previous ones and their answers.
    pub fn args<I, S>(mut self, args: I) -> World
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// One more argument of the next invocation.
    pub fn arg(mut self, arg: impl Into<OsString>) -> World {
        self.args.push(arg.into());
        self
    }

    /// `--answer STEP=VALUE` for the next invocation.
    pub fn answer(self, step: &str, value: &str) -> World {
        self.arg("--answer").arg(format!("{step}={value}"))
    }

    /// `--set NAME=VALUE` for the next invocation.
    pub fn set(self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> World {
        let mut pair = OsString::from(format!("{name}="));
        pair.push(value.as_ref());
        self.arg("--set").arg(pair)
    }

    /// An environment variable of every invocation in the world.
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> World {
        self.envs.push((key.to_string(), value.into()));
        self
    }

    /// Bytes on the standard input of the next invocations (else it is `/dev/null`).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> World {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs `runbook ARGS... [--answer ...]` in the world and returns what it gave back.
    #[track_caller]
    pub fn run(&self) -> Outcome {
        let before = trail::audit_files(&self.audit_dir());
        let mut command = runbook(&self.args)
            .current_dir(self.root())
            .env("RUNBOOK_PATH", self.catalog())
            .env("RUNBOOK_AUDIT_DIR", self.audit_dir());
        for (k, v) in &self.envs {
            command = command.env(k, v);
        }
        if let Some(bytes) = &self.stdin {
            command = command.stdin(bytes.clone());
        }
        let out = command.output();
        let mut fresh: Vec<PathBuf> = trail::audit_files(&self.audit_dir())
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        assert!(
            fresh.len() <= 1,
            "one invocation wrote {} trails: {fresh:?}",
            fresh.len()
        );
        let file = fresh.pop();
        Outcome {
            code: out.code,
            stdout: out.stdout,
            stderr: out.stderr,
            trail: file.as_deref().map(trail::events).unwrap_or_default(),
            file,
            audit_dir: self.audit_dir(),
            envs: self.envs.clone(),
            dir: Arc::clone(&self.dir),
        }
    }
}

impl Outcome {
    /// Asserts the exit code, printing both streams when it differs.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Outcome {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit status\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The `event` of each record of the trail, in order.
    pub fn kinds(&self) -> Vec<&str> {
        self.trail.iter().map(|e| e["event"].as_str().unwrap()).collect()
    }

    /// The trail's file, which this invocation must have written.
    #[track_caller]
    pub fn file(&self) -> &Path {
        self.file
            .as_deref()
            .unwrap_or_else(|| panic!("the run wrote no trail\n{}", self.stderr))
    }

    /// `runbook review last --format FORMAT` in the same world: its standard output (exit 0).
    #[track_caller]
    pub fn review(&self, format: &str) -> String {
        let mut command = runbook(["review", "last", "--format", format])
            .current_dir(self.dir.path())
            .env("RUNBOOK_AUDIT_DIR", &self.audit_dir);
        for (k, v) in &self.envs {
            command = command.env(k, v);
        }
        command.expect_code(0).stdout
    }
}

/// What changes from one run, or one machine, to the next, replaced by a placeholder so a
/// snapshot holds the wording and nothing else:
///
/// - the world's directory (`[world]`) and other temporary directories (`[tmp]`);
/// - run ids (`[run:ID]`, the runbook's id kept), date-times (`[datetime]`), clock times
///   (`[hh:mm:ss]`, `[hh:mm]`);
/// - measured durations (`[dur]`): `12ms` and `0.2s` anywhere; whole seconds and minutes
///   (`12s`, `1m05s`: a run or step past ten seconds) only where a measured time is said (`in`,
///   `after`, `(step ... of`, `... of the RTO`), so a target or an RTO as written stays;
/// - percentages (`[n%]`), hashes (`[hash]`), process ids (`[pid]`), and who ran it where
///   (`[login] (uid [uid]) on [host]`).
///
/// Columns are aligned on the real widths, so runs of two or more spaces inside a line become
/// two: a table keeps its columns in order, not its padding.
pub fn redact(text: &str, world: &World) -> String {
    use regex::Regex;
    use std::sync::LazyLock;
    const WHOLE: &str = r"(\d+h\d{2}m(\d{2}s)?|\d+m(\d{2}s)?|\d+s)";
    static RULES: LazyLock<Vec<(Regex, String)>> = LazyLock::new(|| {
        let tmp = std::env::temp_dir();
        let tmp = regex::escape(tmp.to_str().unwrap().trim_end_matches('/'));
        [
            (format!(r"{tmp}/\.tmp[A-Za-z0-9]+"), "[tmp]".into()),
            (
                r"\b\d{8}T\d{6}Z-([a-z0-9][a-z0-9-]*)-[0-9a-f]{4}\b".into(),
                "[run:$1]".into(),
            ),
            (
                r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?".into(),
                "[datetime]".into(),
            ),
            (r"\b\d{2}:\d{2}:\d{2}\b".into(), "[hh:mm:ss]".into()),
            (r"\b\d{2}:\d{2}\b".into(), "[hh:mm]".into()),
            (r"\b\d+ms\b".into(), "[dur]".into()),
            (r"\b\d+\.\d+s\b".into(), "[dur]".into()),
            (format!(r"\b{WHOLE} of the "), "[dur] of the ".into()),
            (format!(r"\b(in|after) {WHOLE}\b"), "$1 [dur]".into()),
            (format!(r"\(step {WHOLE} of "), "(step [dur] of ".into()),
            (r"\b\d+%".into(), "[n%]".into()),
            (r"\b[0-9a-f]{64}\b".into(), "[hash]".into()),
            (r"\b(pid|process group) \d+".into(), "$1 [pid]".into()),
            (
                r"[\w.-]+ \(uid \d+\) on [\w.-]+".into(),
                "[login] (uid [uid]) on [host]".into(),
            ),
        ]
        .into_iter()
        .map(|(re, to)| (Regex::new(&re).unwrap(), to))
        .collect()
    });
    static PADDING: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(\S) {2,}").unwrap());
    let mut text = text.replace(world.root().to_str().unwrap(), "[world]");
    for (re, to) in RULES.iter() {
        text = re.replace_all(&text, to.as_str()).into_owned();
    }
    text.lines()
        .map(|l| PADDING.replace_all(l.trim_end(), "$1  ").into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}
