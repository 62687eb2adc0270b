//! The team's audit host (design §19): `ssh://USER@HOST[:PORT]/PATH`, read once from the flag,
//! the environment or the inventory, and reached like a target.

use std::fmt;
use std::sync::Arc;

use openssh::{ChildStderr, ChildStdin, ChildStdout, Session, Stdio};

use super::ssh::Ssh;

mod receive;
pub(crate) use receive::{STALL, receive_file, within};

/// Where a run's trail is mirrored: an SSH destination and the absolute directory there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditHost {
    pub user: String,
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
}

impl AuditHost {
    /// Reads `ssh://USER@HOST[:PORT]/PATH`; the error names what is wrong.
    pub(crate) fn parse(url: &str) -> Result<AuditHost, String> {
        let expected = "expected `ssh://USER@HOST[:PORT]/PATH`";
        let fail = |problem: &str| format!("`{url}` is not an audit host: {problem} ({expected})");
        let Some(rest) = url.strip_prefix("ssh://") else {
            return Err(fail("it does not start with `ssh://`"));
        };
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail("it contains a space or a control character"));
        }
        let Some(slash) = rest.find('/') else {
            return Err(fail("the absolute PATH after the host is missing"));
        };
        let (authority, path) = rest.split_at(slash);
        let Some((user, hostport)) = authority.rsplit_once('@') else {
            return Err(fail("the USER before `@` is missing"));
        };
        if user.is_empty() {
            return Err(fail("the USER before `@` is empty"));
        }
        let dest = super::Destination::parse(&format!("{user}@{hostport}")).map_err(|e| fail(&e.problem))?;
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return Err(fail("the PATH is `/`: give the directory the runs go to"));
        }
        if path.split('/').any(|c| c == "..") {
            return Err(fail("the PATH contains `..`"));
        }
        Ok(AuditHost {
            user: user.to_string(),
            host: dest.host,
            port: dest.port,
            path: path.to_string(),
        })
    }

    /// The SSH destination, as `Ssh::connect` takes it: `USER@HOST[:PORT]`.
    pub(crate) fn dest(&self) -> String {
        super::Destination {
            user: Some(self.user.clone()),
            host: self.host.clone(),
            port: self.port,
        }
        .to_string()
    }
}

impl AuditHost {
    /// The command that runs one of our fixed scripts there (nothing but `sh` and coreutils):
    /// `exec sh -c SCRIPT NAME PATH ARGS...`. The directory and every value are quoted
    /// positional arguments, never command text.
    pub(crate) fn script(&self, name: &str, script: &str, args: &[&str]) -> String {
        let mut command = format!(
            "exec sh -c {} {name} {}",
            crate::script::shell_quote(script),
            crate::script::shell_quote(&self.path)
        );
        for arg in args {
            command.push(' ');
            command.push_str(&crate::script::shell_quote(arg));
        }
        command
    }
}

/// One of our fixed scripts running on the audit host, its three pipes taken.
pub(crate) struct Started {
    pub child: openssh::Child<Arc<Session>>,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

impl AuditHost {
    /// Starts `script` (see `script`) over `ssh`'s master with every pipe.
    pub(crate) async fn start(
        &self,
        ssh: &Ssh,
        name: &str,
        script: &str,
        args: &[&str],
    ) -> Result<Started, openssh::Error> {
        spawn(ssh, self.script(name, script, args)).await
    }
}

/// Starts `command` (one of our fixed scripts, from `AuditHost::script`) over `ssh`'s master
/// with every pipe.
pub(crate) async fn spawn(ssh: &Ssh, command: String) -> Result<Started, openssh::Error> {
    let mut child = Session::to_raw_command(ssh.session(), command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .await?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin().take(), child.stdout().take(), child.stderr().take())
    else {
        unreachable!("every pipe was requested");
    };
    Ok(Started {
        child,
        stdin,
        stdout,
        stderr,
    })
}

impl fmt::Display for AuditHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ssh://{}{}", self.dest(), self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_host_port_and_path() {
        let h = AuditHost::parse("ssh://audit@logs.example:2222/srv/runbook/").unwrap();
        assert_eq!(
            h,
            AuditHost {
                user: "audit".into(),
                host: "logs.example".into(),
                port: Some(2222),
                path: "/srv/runbook".into()
            }
        );
        assert_eq!(h.dest(), "audit@logs.example:2222");
        assert_eq!(h.to_string(), "ssh://audit@logs.example:2222/srv/runbook");
        let h = AuditHost::parse("ssh://a@[::1]/d").unwrap();
        assert_eq!(
            (h.host.as_str(), h.port, h.dest()),
            ("::1", None, "a@::1".to_string())
        );
    }

    #[test]
    fn names_what_is_wrong() {
        for (url, problem) in [
            ("audit@h/srv", "does not start with `ssh://`"),
            ("ssh://audit@h", "PATH after the host is missing"),
            ("ssh://h/srv", "USER before `@` is missing"),
            ("ssh://@h/srv", "USER before `@` is empty"),
            ("ssh://a@h:99999/srv", "port `99999`"),
            ("ssh://a@h/", "the PATH is `/`"),
            ("ssh://a@-oProxyCommand=x/srv", "cannot start with `-`"),
            ("ssh://a@h/srv/../etc", "contains `..`"),
            ("ssh://a@h/s rv", "space"),
        ] {
            let e = AuditHost::parse(url).unwrap_err();
            assert!(e.contains(problem), "{url}: {e}");
        }
    }

    /// What the remote shell gets: the script's `$1` is the directory, then each value as it
    /// was, whatever quotes, spaces or `$(...)` it holds (run here by the same `sh`).
    #[test]
    fn a_script_gets_the_path_and_every_value_verbatim() {
        let h = AuditHost::parse("ssh://audit@logs/srv/run's$(dir)").unwrap();
        let odd = ["a b", "it's", "$(touch /tmp/rb-never)", "`x`", "-n", ""];
        let command = h.script("rb-test", r#"printf '%s\n' "$0" "$@""#, &odd);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .output()
            .unwrap();
        let got = String::from_utf8(out.stdout).unwrap();
        let mut want = vec!["rb-test", "/srv/run's$(dir)"];
        want.extend(odd);
        assert_eq!(got.lines().collect::<Vec<_>>(), want, "{command}");
    }
}
