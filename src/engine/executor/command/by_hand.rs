//! A step run by hand: where it must run (here, one host, each host of a fleet), and the
//! script the operator pastes there, with the `ssh` form that runs it from here.

use crate::engine::executor::Executor;
use crate::inventory::Binding;
use crate::transport::Transport;
use crate::vars::Vars;

/// Where a step run by hand must run (issue 25: pasted on the laptop, a remote step ran there).
pub(super) enum Place {
    Here,
    /// One host: its name and the `ssh` words that reach it as this run does.
    Host {
        name: String,
        ssh: Vec<String>,
    },
    Fleet(Vec<String>),
}

impl Executor {
    pub(super) fn by_hand_place(&self, host: &str) -> Place {
        let members = self.plan.members(host);
        if members.len() > 1 {
            return Place::Fleet(members);
        }
        let Some(Binding::Ssh { dest, .. }) = self.plan.bindings.get(host) else {
            return Place::Here;
        };
        let quote = |p: &std::path::Path| crate::script::shell_quote(&p.display().to_string());
        let mut ssh = vec!["ssh".to_string()];
        if let Some(config) = &self.ssh.config {
            ssh.extend(["-F".to_string(), quote(config)]);
        }
        if let Some(identity) = &self.ssh.identity {
            ssh.extend([
                "-i".to_string(),
                quote(identity),
                "-o".into(),
                "IdentitiesOnly=yes".into(),
            ]);
        }
        if let Some(known) = &self.ssh.known_hosts {
            ssh.extend(["-o".to_string(), format!("UserKnownHostsFile={}", quote(known))]);
        }
        match self.transports.get(host).and_then(Transport::endpoint) {
            Some(at) => ssh.extend([
                "-p".to_string(),
                at.port.to_string(),
                crate::script::shell_quote(&format!("{}@{}", at.user, at.host)),
            ]),
            None => ssh.push(crate::script::shell_quote(dest)),
        }
        Place::Host {
            name: host.to_string(),
            ssh,
        }
    }
}

/// The exact command with its variables, for the operator to paste into their own shell. It
/// is one POSIX subshell: the parser reads it whole before anything runs (so a secret's `read`
/// does not swallow the lines pasted after it), nothing stays exported in the operator's shell,
/// and an `exit` in the command leaves only the subshell. Secret values are never printed: the
/// script reads them without echo (`stty -echo` first, so the prompt means echo is off), in a
/// form dash has too. Unindented, so a heredoc's terminator still ends it.
pub(super) fn by_hand_script(vars: &Vars, command: &str, place: &Place) -> String {
    let mut out = match place {
        Place::Here => "    Paste this into your shell on this machine".to_string(),
        Place::Host { name, .. } => {
            format!("    Run this on {name}, not here: paste it into a shell on {name}")
        }
        Place::Fleet(hosts) => format!(
            "    Run this on each of {}: paste it into a shell on each",
            hosts.join(", ")
        ),
    };
    out.push_str(
        ", then report how it went (one subshell: nothing stays\n    exported in your shell, and an `exit` leaves only the subshell):\n\n(\n",
    );
    out.push_str(&script_lines(vars, command, |name| {
        format!(
            "stty -echo; printf '%s: ' {name} >&2; IFS= read -r {name}; stty echo; echo >&2; export {name}"
        )
    }));
    out.push_str(")\n");
    if let Place::Host { name, ssh } = place {
        out.push_str(&ssh_form(vars, command, name, ssh));
    }
    out
}

/// Each variable exported (a secret as `secret(name)` says, never its value), then the
/// command's lines, each ending in a newline.
fn script_lines(vars: &Vars, command: &str, secret: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    for (name, value) in vars.iter() {
        let line = if value.secret {
            secret(name)
        } else {
            format!(
                "{name}={}; export {name}",
                crate::script::shell_quote(&value.text)
            )
        };
        out.push_str(&line);
        out.push('\n');
    }
    for line in command.lines() {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The same, ready to paste on this machine: `ssh HOST sh -s` with the script as a quoted
/// here-document. The variables come along; a secret never does (it would be printed).
fn ssh_form(vars: &Vars, command: &str, name: &str, ssh: &[String]) -> String {
    let mut end = "RUNBOOK_BY_HAND".to_string();
    while command.lines().any(|l| l == end) {
        end.push('_');
    }
    let mut out = format!(
        "\n    Or from here, in one go, on {name}:\n\n{} sh -s <<'{end}'\n",
        ssh.join(" ")
    );
    out.push_str(&script_lines(vars, command, |name| {
        format!("# `{name}` is a secret: not in this form (use the one above)")
    }));
    out.push_str(&end);
    out.push('\n');
    out
}
