//! Where a secret input's value comes from (design §14 "Sources"): an input's `from:` or
//! `--set-from NAME=SOURCE`, read once at pre-flight. A source spec names where the secret
//! lives, never the secret itself, so it may be printed; what it reads is never put in an error.

use std::fmt;
use std::io::{BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::diagnostic::did_you_mean;
use crate::secrets::escape;

mod command;

/// Largest value a source may give: a secret is a password, a token or a key, not a data file;
/// the bound keeps `cmd:cat /dev/urandom` or `file:/dev/zero` from filling the memory.
const LIMIT: usize = 1 << 20;

/// How many of a failed `cmd:` program's last stderr lines its error shows.
const STDERR_LINES: usize = 5;

const SCHEMES: [&str; 5] = ["env", "file", "file-all", "cmd", "stdin"];
const FORMS: &str = "`env:VAR`, `file:PATH`, `file-all:PATH`, `cmd:COMMAND` or `stdin`";

/// Where one secret value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `env:VAR`: the variable's value; the variable is then removed from the environment.
    Env(String),
    /// `file:PATH`: the file's first line, without its line ending.
    File(PathBuf),
    /// `file-all:PATH`: the whole file, exactly.
    FileAll(PathBuf),
    /// `cmd:COMMAND`: what the command prints, less one trailing newline. Split like a shell
    /// would split it, but run without one.
    Cmd(String),
    /// `stdin`: one line of standard input, or a hidden prompt on a terminal.
    Stdin,
}

/// A value read from a source, with what the operator should hear about how it was kept.
pub(crate) struct Sourced {
    pub value: String,
    pub warnings: Vec<String>,
}

impl fmt::Debug for Sourced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sourced")
            .field("value", &"***")
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// What reading a source needs to know besides the source.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadContext {
    /// The input the value is for: named in the prompt and in errors.
    pub input: String,
    /// Variables set for a `cmd:` source's process only (a password store's location), on top
    /// of this process's environment.
    pub cmd_env: Vec<(String, String)>,
}

impl ReadContext {
    pub(crate) fn new(input: impl Into<String>) -> ReadContext {
        ReadContext {
            input: input.into(),
            cmd_env: Vec::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn with_cmd_env(mut self, name: impl Into<String>, value: impl Into<String>) -> ReadContext {
        self.cmd_env.push((name.into(), value.into()));
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    /// Only the scheme is echoed: what follows it could be a secret typed in the wrong place.
    #[error("unknown secret source{}: expected {FORMS}{}", shown_scheme(.scheme), shown_help(.help))]
    Unknown {
        scheme: Option<String>,
        help: Option<String>,
    },
    #[error("secret source `{scheme}:` needs {what}: `{scheme}:{example}`")]
    MissingArgument {
        scheme: &'static str,
        what: &'static str,
        example: &'static str,
    },
    #[error("`env:{0}`: `{0}` is not a variable name (letters, digits and `_`)")]
    BadVariableName(String),
    #[error("`cmd:{0}` has an unbalanced quote or ends with a backslash")]
    Unbalanced(String),
    #[error("environment variable `{0}` is not set")]
    Unset(String),
    #[error("environment variable `{0}` is not valid UTF-8")]
    EnvNotUtf8(String),
    #[error("cannot read `{}`: {source}", .path.display())]
    File { path: PathBuf, source: std::io::Error },
    #[error("`{}` is not UTF-8 text", .0.display())]
    FileNotUtf8(PathBuf),
    #[error("`{program}` not found: is it installed and on `PATH`?")]
    NotFound { program: String },
    #[error("cannot run `{program}`: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("`{program}` failed ({status}){}", stderr_tail(.stderr))]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("`{program}` printed bytes that are not UTF-8 text")]
    OutputNotUtf8 { program: String },
    #[error("`{spec}` gave more than {} MiB: not a secret value", LIMIT >> 20)]
    TooLarge { spec: Source },
    #[error("`{spec}` gave an empty value for `{input}`")]
    Empty { spec: Source, input: String },
    #[error("cannot read standard input for `{input}`: {source}")]
    Stdin { input: String, source: std::io::Error },
    #[error("interrupted while asking for `{0}`")]
    Interrupted(String),
}

fn shown_scheme(scheme: &Option<String>) -> String {
    scheme.as_ref().map(|s| format!(" `{s}:`")).unwrap_or_default()
}

fn shown_help(help: &Option<String>) -> String {
    help.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
}

fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(STDERR_LINES)..];
    tail.iter()
        .map(|line| format!("\n  {}", escape::value(line)))
        .collect()
}

impl Source {
    /// Reads `env:VAR`, `file:PATH`, `file-all:PATH`, `cmd:COMMAND` or `stdin`. A `file:` path
    /// may start with `~/` (the home directory).
    pub(crate) fn parse(text: &str) -> Result<Source, SourceError> {
        let Some((scheme, rest)) = text.split_once(':') else {
            return match text {
                "stdin" => Ok(Source::Stdin),
                "env" | "file" | "file-all" | "cmd" => Err(missing(text)),
                // Not echoed: it may be the secret itself, typed where its source should be.
                _ => Err(SourceError::Unknown {
                    scheme: None,
                    help: did_you_mean(text, ["stdin"]),
                }),
            };
        };
        match scheme {
            "env" if rest.is_empty() => Err(missing(scheme)),
            "env" if !is_variable_name(rest) => Err(SourceError::BadVariableName(rest.to_string())),
            "env" => Ok(Source::Env(rest.to_string())),
            "file" | "file-all" if rest.is_empty() => Err(missing(scheme)),
            "file" => Ok(Source::File(expand_home(rest))),
            "file-all" => Ok(Source::FileAll(expand_home(rest))),
            "cmd" if rest.trim().is_empty() => Err(missing(scheme)),
            "cmd" => {
                command::argv(rest)?;
                Ok(Source::Cmd(rest.trim().to_string()))
            }
            _ => {
                let word = scheme.len() <= 16
                    && scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                Err(SourceError::Unknown {
                    scheme: word.then(|| scheme.to_string()),
                    help: did_you_mean(&scheme.to_ascii_lowercase(), SCHEMES),
                })
            }
        }
    }

    /// Whether reading this source takes standard input: only one source may (the caller
    /// refuses a second).
    pub(crate) fn reads_stdin(&self) -> bool {
        matches!(self, Source::Stdin)
    }

    /// Reads the value. Never puts it, or any part of what was read, in an error.
    pub(crate) fn read(&self, ctx: &ReadContext) -> Result<Sourced, SourceError> {
        let mut warnings = Vec::new();
        let value = match self {
            Source::Env(var) => read_env(var)?,
            Source::File(path) => text(path, first_line(&read_file(self, path, &mut warnings)?))?,
            Source::FileAll(path) => text(path, &read_file(self, path, &mut warnings)?)?,
            Source::Cmd(command) => command::run(self, command, ctx)?,
            Source::Stdin => read_stdin(ctx)?,
        };
        if value.is_empty() {
            return Err(SourceError::Empty {
                spec: self.clone(),
                input: ctx.input.clone(),
            });
        }
        Ok(Sourced { value, warnings })
    }
}

impl FromStr for Source {
    type Err = SourceError;

    fn from_str(text: &str) -> Result<Source, SourceError> {
        Source::parse(text)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env(var) => write!(f, "env:{var}"),
            Source::File(path) => write!(f, "file:{}", path.display()),
            Source::FileAll(path) => write!(f, "file-all:{}", path.display()),
            Source::Cmd(command) => write!(f, "cmd:{command}"),
            Source::Stdin => f.write_str("stdin"),
        }
    }
}

fn missing(scheme: &str) -> SourceError {
    let (scheme, what, example) = match scheme {
        "env" => ("env", "a variable name", "DB_PASSWORD"),
        "file" => ("file", "a path", "/run/secrets/db"),
        "file-all" => ("file-all", "a path", "/run/secrets/tls.key"),
        _ => ("cmd", "a command", "pass show db/prod"),
    };
    SourceError::MissingArgument {
        scheme,
        what,
        example,
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn read_env(var: &str) -> Result<String, SourceError> {
    let value = std::env::var_os(var).ok_or_else(|| SourceError::Unset(var.to_string()))?;
    // SAFETY: `remove_var` races with any other thread reading or writing the environment
    // (std serialises only its own accesses, not libc's `getenv`). Precondition: sources are
    // read at pre-flight, before the runtime, the UI or any other thread starts; a `cmd:`
    // source's stderr reader is joined before its `read` returns. Removed even when the value
    // is unusable: no child may inherit it.
    unsafe { std::env::remove_var(var) };
    value
        .into_string()
        .map_err(|_| SourceError::EnvNotUtf8(var.to_string()))
}

/// The whole file, following symlinks (Kubernetes mounts secrets as links). A file that group
/// or others may read is used, with a warning.
fn read_file(source: &Source, path: &Path, warnings: &mut Vec<String>) -> Result<Vec<u8>, SourceError> {
    use std::os::unix::fs::PermissionsExt;
    let error = |source| SourceError::File {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(error)?;
    // The mode of the file opened, not of whatever the path names a moment later.
    let mode = file.metadata().map_err(error)?.permissions().mode() & 0o7777;
    if mode & 0o044 != 0 {
        warnings.push(format!(
            "`{}` is readable by group or others (mode {mode:04o}): `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    let mut bytes = Vec::new();
    file.take(LIMIT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(error)?;
    if bytes.len() > LIMIT {
        return Err(SourceError::TooLarge { spec: source.clone() });
    }
    Ok(bytes)
}

fn text(path: &Path, bytes: &[u8]) -> Result<String, SourceError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| SourceError::FileNotUtf8(path.to_path_buf()))
}

/// Up to the first `\n`, without a `\r` before it: only the first line need be text.
fn first_line(bytes: &[u8]) -> &[u8] {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Without its one trailing line ending: what `$(...)` would give, less the stripping of
/// every trailing newline.
fn strip_newline(text: &str) -> &str {
    text.strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text)
}

fn read_stdin(ctx: &ReadContext) -> Result<String, SourceError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return prompt(ctx);
    }
    one_line(&mut stdin.lock(), ctx)
}

/// One line of `reader`, without its line ending.
fn one_line(reader: &mut impl BufRead, ctx: &ReadContext) -> Result<String, SourceError> {
    let mut bytes = Vec::new();
    reader
        .take(LIMIT as u64 + 1)
        .read_until(b'\n', &mut bytes)
        .map_err(|source| SourceError::Stdin {
            input: ctx.input.clone(),
            source,
        })?;
    if bytes.len() > LIMIT {
        return Err(SourceError::TooLarge { spec: Source::Stdin });
    }
    let text = String::from_utf8(bytes).map_err(|_| SourceError::Stdin {
        input: ctx.input.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
    })?;
    Ok(strip_newline(&text).to_string())
}

/// A hidden prompt, named after the input.
fn prompt(ctx: &ReadContext) -> Result<String, SourceError> {
    dialoguer::Password::with_theme(&dialoguer::theme::ColorfulTheme::default())
        .with_prompt(escape::value(&ctx.input))
        .interact()
        .map_err(|e| {
            let dialoguer::Error::IO(io) = e;
            if io.kind() == std::io::ErrorKind::Interrupted {
                SourceError::Interrupted(ctx.input.clone())
            } else {
                SourceError::Stdin {
                    input: ctx.input.clone(),
                    source: io,
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    pub(super) fn ctx() -> ReadContext {
        ReadContext::new("db_password")
    }

    pub(super) fn parse(text: &str) -> Source {
        Source::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// The source `text`, read as `db_password`.
    #[track_caller]
    pub(super) fn read_ok(text: &str) -> Sourced {
        parse(text).read(&ctx()).unwrap()
    }

    #[track_caller]
    fn parse_error(text: &str) -> String {
        Source::parse(text).unwrap_err().to_string()
    }

    #[track_caller]
    pub(super) fn read_error(text: &str) -> String {
        parse(text).read(&ctx()).unwrap_err().to_string()
    }

    #[test]
    fn parses_each_scheme_and_prints_it_back() {
        for text in [
            "env:DB_PASSWORD",
            "file:/run/secrets/db",
            "file-all:rel/tls.key",
            "cmd:pass show db/prod",
            "stdin",
        ] {
            assert_eq!(parse(text).to_string(), text);
        }
        assert_eq!(parse("env:_x1"), Source::Env("_x1".into()));
        assert_eq!(parse("file-all:a:b"), Source::FileAll("a:b".into()));
        assert_eq!(
            parse("cmd:  vault kv get -field=password secret/db "),
            Source::Cmd("vault kv get -field=password secret/db".into())
        );
        assert_eq!(
            "cmd:op read op://vault/db/password"
                .parse::<Source>()
                .unwrap()
                .to_string(),
            "cmd:op read op://vault/db/password"
        );
        let home = std::env::var("HOME").unwrap();
        assert_eq!(parse("file:~/.db"), Source::File(Path::new(&home).join(".db")));
        assert!(parse("stdin").reads_stdin());
        assert!(!parse("env:X").reads_stdin());
    }

    #[test]
    fn explains_a_bad_source_without_echoing_what_could_be_a_secret() {
        let forms = "expected `env:VAR`, `file:PATH`, `file-all:PATH`, `cmd:COMMAND` or `stdin`";
        assert_eq!(
            parse_error("evn:DB"),
            format!("unknown secret source `evn:`: {forms} (did you mean `env`?)")
        );
        assert_eq!(
            parse_error("fille:/x"),
            format!("unknown secret source `fille:`: {forms} (did you mean `file`?)")
        );
        assert_eq!(
            parse_error("file_all:/x"),
            format!("unknown secret source `file_all:`: {forms} (did you mean `file-all`?)")
        );
        assert_eq!(
            parse_error("ENV:DB"),
            format!("unknown secret source `ENV:`: {forms} (did you mean `env`?)")
        );
        assert_eq!(
            parse_error("stdni"),
            format!("unknown secret source: {forms} (did you mean `stdin`?)")
        );
        assert_eq!(parse_error("hunter2"), format!("unknown secret source: {forms}"));
        assert_eq!(
            parse_error("p@ss w0rd:x"),
            format!("unknown secret source: {forms}")
        );
        assert_eq!(
            parse_error("env"),
            "secret source `env:` needs a variable name: `env:DB_PASSWORD`"
        );
        assert_eq!(
            parse_error("file:"),
            "secret source `file:` needs a path: `file:/run/secrets/db`"
        );
        assert_eq!(
            parse_error("cmd: "),
            "secret source `cmd:` needs a command: `cmd:pass show db/prod`"
        );
        assert_eq!(
            parse_error("env:DB PW"),
            "`env:DB PW`: `DB PW` is not a variable name (letters, digits and `_`)"
        );
        assert_eq!(
            parse_error("cmd:pass show 'db/prod"),
            "`cmd:pass show 'db/prod` has an unbalanced quote or ends with a backslash"
        );
    }

    /// A variable name no other test uses.
    fn variable(name: &str, value: &str) -> String {
        let var = format!("RUNBOOK_TEST_{name}_{}", std::process::id());
        // SAFETY: std serialises its own environment accesses, and no test reads the
        // environment through libc; the name is this test's own.
        unsafe { std::env::set_var(&var, value) };
        var
    }

    #[test]
    fn reads_an_environment_variable_and_removes_it() {
        let var = variable("ENV", "s3cr3t value");
        let read = read_ok(&format!("env:{var}"));
        assert_eq!(read.value, "s3cr3t value");
        assert!(read.warnings.is_empty());
        assert_eq!(std::env::var_os(&var), None);
        // No child inherits it: a `cmd:` source, here.
        let child = read_ok(&format!("cmd:sh -c 'printf %s \"${{{var}:-gone}}\"'"));
        assert_eq!(child.value, "gone");
        assert_eq!(
            read_error(&format!("env:{var}")),
            format!("environment variable `{var}` is not set")
        );
    }

    #[test]
    fn refuses_an_empty_environment_variable_and_removes_it_too() {
        let var = variable("EMPTY", "");
        assert_eq!(
            read_error(&format!("env:{var}")),
            format!("`env:{var}` gave an empty value for `db_password`")
        );
        assert_eq!(std::env::var_os(&var), None);
    }

    fn write(dir: &Path, name: &str, text: &[u8], mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn reads_the_first_line_or_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "db", b"pw line\r\nsecond\n\xff\n", 0o600);
        let read = read_ok(&format!("file:{}", path.display()));
        assert_eq!(read.value, "pw line");
        assert!(read.warnings.is_empty(), "{:?}", read.warnings);
        let key = write(
            dir.path(),
            "key",
            b"-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
            0o400,
        );
        let all = read_ok(&format!("file-all:{}", key.display()));
        assert_eq!(all.value, "-----BEGIN KEY-----\nabc\n-----END KEY-----\n");
        // A symlink is followed (Kubernetes mounts secrets so).
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        assert_eq!(read_ok(&format!("file-all:{}", link.display())).value, all.value);
    }

    #[test]
    fn warns_about_a_file_others_may_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "db", b"pw\n", 0o640);
        let read = read_ok(&format!("file:{}", path.display()));
        assert_eq!(read.value, "pw");
        let p = path.display();
        assert_eq!(
            read.warnings,
            [format!(
                "`{p}` is readable by group or others (mode 0640): `chmod 600 {p}`"
            )]
        );
    }

    #[test]
    fn explains_a_file_that_cannot_be_used() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert_eq!(
            read_error(&format!("file:{}", missing.display())),
            format!(
                "cannot read `{}`: No such file or directory (os error 2)",
                missing.display()
            )
        );
        let empty = write(dir.path(), "empty", b"\nsecond line", 0o600);
        let spec = format!("file:{}", empty.display());
        assert_eq!(
            read_error(&spec),
            format!("`{spec}` gave an empty value for `db_password`")
        );
        assert_eq!(
            read_error("file:/dev/zero"),
            "`file:/dev/zero` gave more than 1 MiB: not a secret value"
        );
        let binary = write(dir.path(), "bin", b"\xff\xfe", 0o600);
        assert_eq!(
            read_error(&format!("file-all:{}", binary.display())),
            format!("`{}` is not UTF-8 text", binary.display())
        );
    }

    #[test]
    fn reads_one_line_of_piped_input() {
        let mut input = std::io::Cursor::new(b"pw from pipe\r\nnext line\n".to_vec());
        assert_eq!(one_line(&mut input, &ctx()).unwrap(), "pw from pipe");
        assert_eq!(one_line(&mut input, &ctx()).unwrap(), "next line");
        assert_eq!(one_line(&mut input, &ctx()).unwrap(), "");
        let mut last = std::io::Cursor::new(b"no newline".to_vec());
        assert_eq!(one_line(&mut last, &ctx()).unwrap(), "no newline");
    }

    #[test]
    fn never_shows_a_value_in_debug_output() {
        let read = Sourced {
            value: "hunter2".into(),
            warnings: vec![],
        };
        assert_eq!(format!("{read:?}"), r#"Sourced { value: "***", warnings: [] }"#);
    }
}
