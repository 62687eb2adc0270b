//! Builds the shell script a step runs: its variables exported as quoted values, then the
//! command itself untouched, so no value can ever inject shell syntax (design §2 "Variables").

/// A variable that cannot be passed to a shell safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error(
        "variable `{name}` cannot be exported: names are letters, digits and `_`, not starting with a digit"
    )]
    InvalidName { name: String },
    #[error("variable `{name}` contains a NUL byte, which no shell variable can hold")]
    NulInValue { name: String },
    #[error("the command contains a NUL byte, which no shell can run")]
    NulInCommand,
}

/// Quotes `s` as one shell word: `'...'`, with every `'` written as `'\''`.
///
/// Inside single quotes a POSIX shell expands nothing (`$`, `` ` ``, `\`, `"` and newlines are
/// all literal), so this is the one quoting that holds for any byte but NUL.
pub fn shell_quote(s: &str) -> String {
    let mut quoted = String::with_capacity(s.len() + 2);
    quoted.push('\'');
    for c in s.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// The longest `name=value` one environment string may be (Linux's `MAX_ARG_STRLEN`, 32
/// pages, with its NUL): a longer exported variable would make every `exec` of the step fail
/// with "Argument list too long". Such a value is set but not exported: `"$name"` works in
/// the step's script (and for shell built-ins such as `printf`), not in its programs' env.
pub(crate) const MAX_EXPORTED: usize = 32 * 4096 - 1;

/// What `sh` is given as its argv, locally and on a remote host: a fixed wrapper that reads
/// the script from standard input, then gives the step an empty standard input of its own.
/// The script (and every value in it) never appears in any process's argv (design §14).
///
/// The command arrives quoted in `COMMAND_VAR` and is evaluated on its own, from the wrapper's
/// first line: a syntax error's line number (dash's and bash's alike) counts the operator's
/// command, not the variables set before it.
pub(crate) const READ_AND_RUN: &str =
    "script=$(cat); exec </dev/null; eval \"$script\"; unset script; eval \"$__runbook_command\"";

/// `READ_AND_RUN` with the script read by the shell's own `read`, line by line: no `cat`
/// process (a fork and an exec, about 1 ms of a trivial remote step). `read` takes a pipe one
/// byte per system call, so this is for short scripts only (`read_and_run`). The newline put
/// back after each line is the last character of `IFS`, which every POSIX shell starts with
/// set to space, tab, newline: a literal one would make the wrapper two lines, and bash would
/// count the command's lines from the second.
const READ_LINES_AND_RUN: &str = "n=${IFS#??}; script=; while IFS= read -r l; do script=\"$script$l$n\"; done; script=\"$script$l\"; unset l n; exec </dev/null; eval \"$script\"; unset script; eval \"$__runbook_command\"";

/// Up to this many bytes, a script is read with `read` rather than `cat`.
const READ_LINES_MAX: usize = 4096;

/// The wrapper for a script of `len` bytes: `READ_LINES_AND_RUN` when short, else
/// `READ_AND_RUN`.
pub(crate) fn read_and_run(len: usize) -> &'static str {
    if len <= READ_LINES_MAX {
        READ_LINES_AND_RUN
    } else {
        READ_AND_RUN
    }
}

/// The shell variable holding the step's command (not exported).
const COMMAND_VAR: &str = "__runbook_command";

/// `name='value'` then `export name`, one per line for each variable, then the command,
/// quoted, in `COMMAND_VAR`.
///
/// This text reaches the shell through its standard input (`READ_AND_RUN`), never argv.
pub(crate) fn script(env: &[(String, String)], command: &str) -> Result<String, ScriptError> {
    if command.contains('\0') {
        return Err(ScriptError::NulInCommand);
    }
    let mut text = String::new();
    for (name, value) in env {
        if !is_valid_name(name) {
            return Err(ScriptError::InvalidName { name: name.clone() });
        }
        if value.contains('\0') {
            return Err(ScriptError::NulInValue { name: name.clone() });
        }
        text.push_str(name);
        text.push('=');
        text.push_str(&shell_quote(value));
        text.push('\n');
        if name.len() + 1 + value.len() <= MAX_EXPORTED {
            text.push_str("export ");
            text.push_str(name);
            text.push('\n');
        }
    }
    text.push_str(COMMAND_VAR);
    text.push('=');
    text.push_str(&shell_quote(command));
    Ok(text)
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what every POSIX shell accepts as a variable name.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn quotes_single_quotes_only() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(x) `y` \"z\"\n"), "'$(x) `y` \"z\"\n'");
    }

    #[test]
    fn exports_each_variable_then_runs_the_command_unchanged() {
        let text = script(&vars(&[("db", "x'y"), ("_n2", "")]), "echo \"$db\"").unwrap();
        assert_eq!(
            text,
            "db='x'\\''y'\nexport db\n_n2=''\nexport _n2\n__runbook_command='echo \"$db\"'"
        );
    }

    #[test]
    fn refuses_names_a_shell_would_misread() {
        for bad in ["", "1a", "a-b", "a b", "a;b", "é"] {
            assert_eq!(
                script(&vars(&[(bad, "v")]), "true"),
                Err(ScriptError::InvalidName { name: bad.into() }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_nul_bytes() {
        assert_eq!(
            script(&vars(&[("a", "x\0y")]), "true"),
            Err(ScriptError::NulInValue { name: "a".into() })
        );
        assert_eq!(script(&[], "tr\0ue"), Err(ScriptError::NulInCommand));
    }

    /// Runs `text` the way the transports do: `sh -c` the wrapper for its length, the script
    /// on stdin.
    fn run(text: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .args(["-c", read_and_run(text.len())])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    #[test]
    fn values_arrive_literally_in_a_real_shell() {
        let nasty = "'; echo INJECTED; ' $(echo INJECTED) `echo INJECTED` \"\n\\ $HOME";
        let text = script(&vars(&[("v", nasty)]), "printf '%s' \"$v\"").unwrap();
        assert_eq!(String::from_utf8_lossy(&run(&text).stdout), nasty);
    }

    /// A syntax error on the command's second line says line 2 in dash and in bash, however
    /// many variables come first.
    #[test]
    fn syntax_errors_count_the_commands_own_lines() {
        use std::io::Write;
        let text = script(&vars(&[("a", "1"), ("b", "two\nlines")]), "echo hi\nif then fi").unwrap();
        for (shell, wrapper) in [
            ("dash", READ_AND_RUN),
            ("bash", READ_AND_RUN),
            ("dash", READ_LINES_AND_RUN),
            ("bash", READ_LINES_AND_RUN),
        ] {
            let mut child = std::process::Command::new(shell)
                .args(["-c", wrapper])
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let err = String::from_utf8(child.wait_with_output().unwrap().stderr).unwrap();
            assert!(
                err.contains(" 2: ") || err.contains("line 2:"),
                "{shell} says: {err}"
            );
        }
    }

    /// The two ways of reading the script run it alike: blank lines, leading blanks,
    /// backslashes, a carriage return and a last line with or without its newline.
    #[test]
    fn reading_by_lines_and_by_cat_run_the_same_script() {
        use std::io::Write;
        let nasty = "  lead\\ing\n\n\\\ntrail \r\n\\";
        let texts = [
            script(&vars(&[("v", nasty)]), "printf '%s|' \"$v\"; echo ok").unwrap(),
            script(&vars(&[("v", "x")]), "printf '%s' \"$v\"\n\n  echo '  two'\n").unwrap(),
        ];
        for text in texts {
            let outputs: Vec<Vec<u8>> = [READ_AND_RUN, READ_LINES_AND_RUN]
                .iter()
                .map(|wrapper| {
                    let mut child = std::process::Command::new("sh")
                        .args(["-c", wrapper])
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .spawn()
                        .unwrap();
                    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
                    child.wait_with_output().unwrap().stdout
                })
                .collect();
            assert_eq!(outputs[0], outputs[1], "{text:?}");
            assert!(!outputs[0].is_empty());
        }
        assert_eq!(read_and_run(10), READ_LINES_AND_RUN);
        assert_eq!(read_and_run(100_000), READ_AND_RUN);
    }

    /// The step's own stdin is empty: the script it was read from is not there to be read.
    #[test]
    fn the_step_reads_an_empty_stdin() {
        let text = script(&vars(&[("v", "x")]), "cat; echo end").unwrap();
        assert_eq!(String::from_utf8_lossy(&run(&text).stdout), "end\n");
    }

    /// A value too big for the environment (over 128 KiB) still reaches the script as a shell
    /// variable, and the programs the step runs still start.
    #[test]
    fn a_value_over_128_kib_works() {
        let big = "y".repeat(300 * 1024);
        let text = script(
            &vars(&[("big", &big)]),
            "printf %s \"$big\" | wc -c; /bin/true && echo ran",
        )
        .unwrap();
        let out = run(&text);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .collect::<Vec<_>>(),
            [&(300 * 1024).to_string(), "ran"]
        );
    }
}
