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

/// `name='value'` then `export name`, one per line for each variable, then the command.
///
/// The same text is run locally, over SSH, and printed for "run it by hand", so what the
/// operator pastes behaves exactly like what the tool runs.
pub fn script(env: &[(String, String)], command: &str) -> Result<String, ScriptError> {
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
        text.push_str("\nexport ");
        text.push_str(name);
        text.push('\n');
    }
    text.push_str(command);
    Ok(text)
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what every POSIX shell accepts as a variable name.
pub fn is_valid_name(name: &str) -> bool {
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
        assert_eq!(text, "db='x'\\''y'\nexport db\n_n2=''\nexport _n2\necho \"$db\"");
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

    #[test]
    fn values_arrive_literally_in_a_real_shell() {
        let nasty = "'; echo INJECTED; ' $(echo INJECTED) `echo INJECTED` \"\n\\ $HOME";
        let text = script(&vars(&[("v", nasty)]), "printf '%s' \"$v\"").unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&text)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), nasty);
    }
}
