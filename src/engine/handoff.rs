//! The end of a run handed off at a prompt (design §19): what the colleague pastes to take it
//! over. The walk has stopped and recorded `handed off`; `launch` releases the lock and the
//! leases, then prints this.

use std::path::Path;

use crate::transport::{AuditHost, SshOptions};

/// The exact `runbook resume` command that continues the run from this machine's trail, with
/// every option the colleague cannot guess: the audit dir when it is not the default one (and
/// no audit host), the inventory and SSH files this run was given, and the audit host it
/// mirrors to (from there, a colleague on another machine fetches the run into their own
/// audit dir: design §19). Paths are absolute (the
/// colleague's shell may be elsewhere) and quoted for a POSIX shell when they need it.
pub(crate) fn resume_command(
    run_id: &str,
    audit_dir: &Path,
    ssh: &SshOptions,
    inventory: Option<&Path>,
    audit_host: Option<&AuditHost>,
) -> String {
    let mut words = vec!["runbook".to_string(), "resume".to_string(), run_id.to_string()];
    if let Some(host) = audit_host {
        words.push("--audit-host".to_string());
        words.push(host.to_string());
    }
    let mut path = |flag: &str, p: &Path| {
        let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        words.push(flag.to_string());
        words.push(p.display().to_string());
    };
    // With an audit host the run is fetched from there into the colleague's own audit dir:
    // this machine's directory would be no place on theirs (nor writable by them here).
    if audit_host.is_none() && !same_dir(audit_dir, &crate::audit::default_audit_dir()) {
        path("--audit-dir", audit_dir);
    }
    if let Some(inventory) = inventory {
        path("--inventory", inventory);
    }
    for (flag, file) in [
        ("--ssh-config", &ssh.config),
        ("--identity", &ssh.identity),
        ("--known-hosts", &ssh.known_hosts),
    ] {
        if let Some(file) = file {
            path(flag, file);
        }
    }
    words
        .iter()
        .map(|w| match shlex::try_quote(w) {
            Ok(quoted) => quoted.into_owned(),
            // A NUL cannot be in an argument; quoted the project's way all the same.
            Err(_) => crate::script::shell_quote(w),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The same directory, however it was spelled (`./runs` and its absolute path).
fn same_dir(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).or_else(|_| std::path::absolute(p));
    match (canonical(a), canonical(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// What the operator who handed off sees last (stderr, as every message of a run), once the
/// lock and leases are released; the exit code of a hand-off (0: design §19). `audit_file` is
/// the trail, `<audit-dir>/<run-id>.jsonl`.
pub(crate) fn tell(
    audit_file: &str,
    ssh: &SshOptions,
    inventory: &crate::inventory::Inventory,
    audit_host: Option<&AuditHost>,
) -> u8 {
    let file = Path::new(audit_file);
    let run_id = file.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default();
    let dir = file.parent().unwrap_or(Path::new("."));
    let command = resume_command(&run_id, dir, ssh, inventory.path.as_deref(), audit_host);
    crate::stderr::ewriteln!(
        "runbook: the run is handed off: its lock and leases are released, its audit trail is open (not sealed): {}\n  To take over, paste (as yourself: add --operator NAME, or set RUNBOOK_OPERATOR):\n\n    {}\n",
        crate::secrets::escape::value(audit_file),
        crate::secrets::escape::value(&command)
    );
    crate::error::exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(config: Option<&str>) -> SshOptions {
        SshOptions {
            config: config.map(Into::into),
            ..SshOptions::default()
        }
    }

    #[test]
    fn the_command_quotes_what_a_shell_would_split_and_splits_back_to_the_same_words() {
        let dir = Path::new("/tmp/runs of 'team'");
        let command = resume_command(
            "20261207-0501-ab12",
            dir,
            &options(Some("/etc/ssh cfg")),
            None,
            None,
        );
        assert_eq!(
            shlex::split(&command).unwrap(),
            [
                "runbook",
                "resume",
                "20261207-0501-ab12",
                "--audit-dir",
                "/tmp/runs of 'team'",
                "--ssh-config",
                "/etc/ssh cfg",
            ]
        );
    }

    #[test]
    fn the_default_audit_dir_is_not_spelled_out() {
        let command = resume_command(
            "r1",
            &crate::audit::default_audit_dir(),
            &options(None),
            None,
            None,
        );
        assert_eq!(command, "runbook resume r1");
    }

    #[test]
    fn a_relative_path_is_made_absolute() {
        let command = resume_command(
            "r1",
            Path::new("runs"),
            &options(None),
            Some(Path::new("inv.yaml")),
            None,
        );
        let words = shlex::split(&command).unwrap();
        assert!(Path::new(&words[4]).is_absolute(), "{command}");
        assert!(words[4].ends_with("/runs"), "{command}");
        assert_eq!(words[5], "--inventory");
        assert!(Path::new(&words[6]).is_absolute(), "{command}");
    }

    #[test]
    fn a_mirrored_run_names_its_audit_host_for_a_colleague_on_another_machine() {
        let host = AuditHost::parse("ssh://audit@logs.example:2222/srv/runs").unwrap();
        // Not this machine's audit dir: the colleague's is theirs.
        let command = resume_command(
            "r1",
            Path::new("/home/alice/runs"),
            &options(None),
            None,
            Some(&host),
        );
        assert_eq!(
            shlex::split(&command).unwrap(),
            [
                "runbook",
                "resume",
                "r1",
                "--audit-host",
                "ssh://audit@logs.example:2222/srv/runs"
            ]
        );
    }
}
