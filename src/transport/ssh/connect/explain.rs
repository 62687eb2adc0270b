//! Why a connection failed, from ssh's own log: words the operator can act on (a changed or
//! unknown host key, a refused login, a refused or closed port, a name not in DNS, no route),
//! naming the host and port ssh tried.

use crate::transport::SshOptions;
use crate::transport::destination::Destination;

/// Where the connection went: the host and port ssh says it tried (`connect to host H port
/// P:`), else what `ssh -G` resolves the destination to (an alias's `HostName` and `Port`), else
/// what the destination says (port 22 by default). `shown` names the host for a person: the
/// alias beside the address it stands for.
struct Endpoint {
    host: String,
    port: u16,
    shown: String,
}

fn endpoint(log: &str, dest: &Destination, opts: &SshOptions) -> Endpoint {
    let tried = log.lines().find_map(|l| {
        let rest = &l[l.find("connect to host ")? + "connect to host ".len()..];
        let (host, rest) = rest.split_once(" port ")?;
        let port = rest.split(':').next()?.trim().parse().ok()?;
        Some((host.to_string(), port))
    });
    let (host, port) = tried
        .or_else(|| {
            crate::transport::canonical::canonical(&dest.to_string(), opts)
                .ok()
                .map(|c| (c.host, c.port))
        })
        .unwrap_or_else(|| (dest.host.clone(), dest.port.unwrap_or(22)));
    let shown = if host.eq_ignore_ascii_case(&dest.host) {
        dest.host.clone()
    } else {
        format!("{} ({host})", dest.host)
    };
    Endpoint { host, port, shown }
}

/// Turns ssh's log into a reason the operator can act on.
pub(super) fn explain(log: &str, dest: &Destination, opts: &SshOptions, timeout_secs: u64) -> String {
    let at = endpoint(log, dest, opts);
    let (host, port) = (&at.shown, at.port);
    let known_hosts = opts
        .known_hosts
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "~/.ssh/known_hosts".to_string());
    // How the key is filed in known_hosts: `host`, or `[host]:port` off port 22.
    let key_name = between(log, "Host key for ", " has changed")
        .or_else(|| between(log, "host key is known for ", " and you have"))
        .map(str::to_string)
        .unwrap_or_else(|| match at.port {
            22 => at.host.clone(),
            p => format!("[{}]:{p}", at.host),
        });

    if log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || log.contains("has changed and you have requested strict checking")
    {
        let file = between(log, "Offending ", "\n")
            .and_then(|s| s.split_once(" key in "))
            .map(|(_, f)| f.trim().rsplit_once(':').map_or(f.trim(), |(f, _)| f).to_string())
            .unwrap_or(known_hosts);
        return format!(
            "the host key of {key_name} has changed since it was recorded in {file} \
             (possible man-in-the-middle attack, or the host was reinstalled); nothing was run. \
             If the change is expected, check the new key's fingerprint, then remove the old one \
             with `ssh-keygen -R '{key_name}' -f {file}`"
        );
    }
    if log.contains("host key is known for") || log.contains("Host key verification failed") {
        let scan = match at.port {
            22 => format!("ssh-keyscan {}", at.host),
            p => format!("ssh-keyscan -p {p} {}", at.host),
        };
        return format!(
            "host key unknown: {key_name} is not in {known_hosts}; add it to known_hosts \
             (after checking its fingerprint, e.g. from `{scan}`) or pass --accept-new-host-keys"
        );
    }
    if log.contains("Permission denied") {
        // ssh says `USER@HOST: Permission denied (publickey).`
        let user = log
            .lines()
            .find_map(|l| l.split_once(": Permission denied"))
            .and_then(|(who, _)| who.rsplit_once('@'))
            .map(|(user, _)| user.trim().to_string())
            .or_else(|| dest.user.clone())
            .unwrap_or_else(|| "(from your ssh config)".to_string());
        return format!(
            "authentication refused: no key accepted for user {user} (no password prompts in \
             batch mode: load a key into ssh-agent, pass --identity, or check the user)"
        );
    }
    if log.contains("Connection refused") {
        return format!(
            "connection refused by {host} port {port}: is sshd running there, and is the port right?"
        );
    }
    if log.contains("timed out") {
        return format!("timed out after {timeout_secs}s");
    }
    if log.contains("Could not resolve hostname") {
        return if at.host.eq_ignore_ascii_case(&dest.host) {
            format!(
                "unknown host name `{}`: it is neither in DNS nor a Host alias of the ssh config",
                dest.host
            )
        } else {
            format!(
                "unknown host name `{}` (the HostName of `{}` in the ssh config): it is not in DNS",
                at.host, dest.host
            )
        };
    }
    if log.contains("No route to host") || log.contains("Network is unreachable") {
        return format!("{host} is unreachable from here (no route to it)");
    }
    if log.contains("Connection closed by") || log.contains("Connection reset") {
        return format!(
            "{host} port {port} closed the connection before login (not an SSH server, or it refuses this client)"
        );
    }
    match log.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(last) => format!("ssh failed: {}", last.trim()),
        None => "ssh failed without saying why".to_string(),
    }
}

/// The text between the first `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}
