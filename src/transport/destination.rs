//! Reads an SSH destination as the operator writes it (`user@host:port`, `ssh://user@host:port`
//! or an alias of `~/.ssh/config`) into the parts `ssh` takes as separate options.

use std::fmt;

/// Where to connect: `host` is a name, an address or a `~/.ssh/config` alias; `user` and `port`
/// are given only when the destination names them, so the config file decides otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{dest}` is not an SSH destination: {problem} (expected `user@host:port`, `ssh://user@host:port` or a host alias)"
)]
pub(crate) struct DestinationError {
    pub dest: String,
    pub problem: String,
}

impl Destination {
    pub(crate) fn parse(dest: &str) -> Result<Destination, DestinationError> {
        let fail = |problem: &str| DestinationError {
            dest: dest.to_string(),
            problem: problem.to_string(),
        };
        let rest = dest.strip_prefix("ssh://").unwrap_or(dest);
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(fail("it is empty"));
        }
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail("it contains a space or a control character"));
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((user, hostport)) => {
                if user.is_empty() {
                    return Err(fail("the user before `@` is empty"));
                }
                (Some(user.to_string()), hostport)
            }
            None => (None, rest),
        };
        let (host, port) = split_port(hostport).map_err(|p| fail(&p))?;
        if host.is_empty() {
            return Err(fail("the host is empty"));
        }
        // `ssh` would read a leading `-` as an option: refuse rather than let a destination
        // smuggle in `-oProxyCommand=...`.
        if host.starts_with('-') || user.as_deref().is_some_and(|u| u.starts_with('-')) {
            return Err(fail("a host or user cannot start with `-`"));
        }
        Ok(Destination {
            user,
            host: host.to_string(),
            port,
        })
    }
}

/// `host:port`, `[v6addr]:port`, `[v6addr]`, a bare IPv6 address (several colons: no port) or
/// a bare host.
fn split_port(hostport: &str) -> Result<(&str, Option<u16>), String> {
    if let Some(inner) = hostport.strip_prefix('[') {
        let Some((host, after)) = inner.split_once(']') else {
            return Err("`[` without a closing `]`".into());
        };
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(parse_port(port)?))),
                None => Err(format!("unexpected `{after}` after `]`")),
            },
        };
    }
    match hostport.split_once(':') {
        Some((host, port)) if !port.contains(':') => Ok((host, Some(parse_port(port)?))),
        _ => Ok((hostport, None)),
    }
}

fn parse_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("port `{port}` is not a number from 1 to 65535")),
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(port)) => write!(f, "[{}]:{port}", self.host),
            (false, Some(port)) => write!(f, "{}:{port}", self.host),
            (_, None) => write!(f, "{}", self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(user: Option<&str>, host: &str, port: Option<u16>) -> Destination {
        Destination {
            user: user.map(String::from),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn reads_every_accepted_form() {
        let cases = [
            ("db1", dest(None, "db1", None)),
            ("ops@db1", dest(Some("ops"), "db1", None)),
            ("ops@db1:2222", dest(Some("ops"), "db1", Some(2222))),
            ("db1:2222", dest(None, "db1", Some(2222))),
            (
                "ssh://ops@10.0.0.5:2222",
                dest(Some("ops"), "10.0.0.5", Some(2222)),
            ),
            ("ssh://db1", dest(None, "db1", None)),
            ("ssh://db1/", dest(None, "db1", None)),
            ("ops@[::1]:22", dest(Some("ops"), "::1", Some(22))),
            ("[fe80::1]", dest(None, "fe80::1", None)),
            ("fe80::1", dest(None, "fe80::1", None)),
            ("a.b@host", dest(Some("a.b"), "host", None)),
        ];
        for (text, want) in cases {
            assert_eq!(Destination::parse(text).as_ref(), Ok(&want), "{text}");
        }
    }

    #[test]
    fn prints_back_what_ssh_users_write() {
        for text in ["ops@db1:2222", "db1", "ops@[::1]:22"] {
            assert_eq!(Destination::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn refuses_what_would_mislead_ssh() {
        for (text, problem) in [
            ("", "empty"),
            ("ops@", "host is empty"),
            ("@db1", "user before `@` is empty"),
            ("db1:x", "port `x`"),
            ("db1:0", "port `0`"),
            ("db1:70000", "port `70000`"),
            ("-oProxyCommand=x", "cannot start with `-`"),
            ("-l@db1", "cannot start with `-`"),
            ("db 1", "space"),
            ("[::1", "closing"),
        ] {
            let err = Destination::parse(text).unwrap_err();
            assert!(err.to_string().contains(problem), "{text}: {err}");
        }
    }
}
