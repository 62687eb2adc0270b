//! One name per SSH host for locks and leases (design §18): the user, host and port that
//! `ssh -G` resolves a destination to, so `ssh://u@h:p`, `u@h:p`, `ssh://u@h:p/` and an
//! `~/.ssh/config` alias pointing there are the same key. Asking `ssh` itself (rather than
//! reading the config here) gets `Host` patterns, `Match` blocks and `Include`s right.

use std::fmt;
use std::process::{Command, Stdio};

use super::SshOptions;
use super::destination::Destination;

/// Where a destination really goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Canonical {
    pub user: String,
    /// Lowercase: host names are case-insensitive.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Canonical {
    /// `user@host:port`, with an IPv6 address in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

/// Resolves `dest` with `ssh -G` (no connection is made), using the operator's `--ssh-config`
/// when given. Blocks for the few milliseconds `ssh -G` takes.
pub fn canonical(dest: &str, opts: &SshOptions) -> Result<Canonical, String> {
    let parsed = Destination::parse(dest).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("ssh");
    cmd.arg("-G");
    if let Some(config) = &opts.config {
        cmd.arg("-F").arg(config);
    }
    if let Some(user) = &parsed.user {
        cmd.arg("-l").arg(user);
    }
    if let Some(port) = parsed.port {
        cmd.arg("-p").arg(port.to_string());
    }
    // `--`: the host can never be read as an option.
    cmd.arg("--").arg(&parsed.host);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ssh -G`: {e} (is the OpenSSH client installed?)"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no reason given");
        return Err(format!("`ssh -G` cannot resolve `{dest}`: {}", why.trim()));
    }
    parse(dest, &String::from_utf8_lossy(&out.stdout))
}

/// Reads `user`, `hostname` and `port` from `ssh -G`'s `keyword value` lines.
fn parse(dest: &str, config: &str) -> Result<Canonical, String> {
    let value = |key: &str| {
        config
            .lines()
            .find_map(|l| {
                l.split_once(' ')
                    .filter(|(k, _)| *k == key)
                    .map(|(_, v)| v.trim())
            })
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("`ssh -G` printed no `{key}` for `{dest}`"))
    };
    let port = value("port")?;
    Ok(Canonical {
        user: value("user")?.to_string(),
        host: value("hostname")?.to_ascii_lowercase(),
        port: port
            .parse()
            .map_err(|_| format!("`ssh -G` printed port `{port}` for `{dest}`"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options that read only `config`, never the developer's own `~/.ssh/config`.
    fn with_config(config: &str) -> (tempfile::TempDir, SshOptions) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ssh_config");
        std::fs::write(&path, config).unwrap();
        let opts = SshOptions {
            config: Some(path),
            ..SshOptions::default()
        };
        (dir, opts)
    }

    #[test]
    fn every_spelling_of_a_host_is_one_key() {
        let (_dir, opts) = with_config("Host db-alias\n  HostName 10.1.2.3\n  User ops\n  Port 2222\n");
        for dest in [
            "ssh://ops@10.1.2.3:2222",
            "ops@10.1.2.3:2222",
            "ssh://ops@10.1.2.3:2222/",
            "db-alias",
            "ssh://db-alias",
            "ops@db-alias",
        ] {
            let c = canonical(dest, &opts).unwrap_or_else(|e| panic!("{dest}: {e}"));
            assert_eq!(c.to_string(), "ops@10.1.2.3:2222", "{dest}");
        }
    }

    #[test]
    fn what_the_destination_says_beats_the_config() {
        let (_dir, opts) = with_config("Host db-alias\n  HostName 10.1.2.3\n  User ops\n  Port 2222\n");
        let c = canonical("root@db-alias:22", &opts).unwrap();
        assert_eq!(
            c,
            Canonical {
                user: "root".into(),
                host: "10.1.2.3".into(),
                port: 22
            }
        );
    }

    #[test]
    fn defaults_fill_what_nobody_said_and_case_does_not_matter() {
        let (_dir, opts) = with_config("");
        let a = canonical("ops@DB1.Example.com", &opts).unwrap();
        let b = canonical("ssh://ops@db1.example.com:22/", &opts).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "ops@db1.example.com:22");
        let v6 = canonical("ops@[::1]:2200", &opts).unwrap();
        assert_eq!(v6.to_string(), "ops@[::1]:2200");
    }

    #[test]
    fn a_bad_destination_or_config_says_why() {
        let (_dir, opts) = with_config("");
        let err = canonical("-oProxyCommand=x", &opts).unwrap_err();
        assert!(err.contains("cannot start with `-`"), "{err}");
        let (_dir, opts) = with_config("Host x\n  NoSuchKeyword yes\n");
        let err = canonical("x", &opts).unwrap_err();
        assert!(err.contains("`ssh -G` cannot resolve `x`"), "{err}");
    }
}
