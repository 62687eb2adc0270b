//! `runbook approve [REQUEST] [--deny --reason TEXT] [--yes]`: the second person of the
//! two-person rule (design §15, §22). Without REQUEST, lists the requests a run waits for; with
//! it, shows exactly what would run and where, asks, then signs the request's bytes.

use std::io::Write;

use crate::approval::{NAMESPACE, REQUEST_KIND, Request, next_signature_file, signed_message};
use crate::audit::sign::Signing;
use std::path::{Path, PathBuf};

use crate::cli::ApproveArgs;
use crate::cli::config::Config;
use crate::error::{Error, Result, exit};
use crate::secrets::escape::{text as esc_text, value as esc};

mod remote;

pub(super) fn execute(config: &Config, args: &ApproveArgs) -> Result<u8> {
    // A path names a local file, whatever the audit host; otherwise, with an audit host
    // (flag, environment, or the inventory's `audit_host:`), its spool is the one (design §19).
    // `ssh://USER@HOST/PATH/approvals/NAME`, as the waiting run names its request there.
    if let Some(url) = args
        .request
        .as_ref()
        .and_then(|r| r.to_str())
        .filter(|r| r.starts_with("ssh://"))
    {
        let (host, name) = remote::parse_url(url)?;
        return remote::execute(host, Some(name), args);
    }
    let is_path = args.request.as_ref().is_some_and(|n| n.components().count() > 1);
    if !is_path {
        let host = match &config.audit_host {
            Some(host) => Some(host.clone()),
            None => crate::inventory::Inventory::load(args.inventory.as_deref())?.audit_host()?,
        };
        if let Some(host) = host {
            let name = args.request.as_ref().map(|r| r.to_string_lossy().into_owned());
            return remote::execute(host, name, args);
        }
    }
    let spool = || -> Result<PathBuf> {
        let inventory = crate::inventory::Inventory::load(args.inventory.as_deref())?;
        let audit = config.audit_dir.clone();
        Ok(crate::approval::Config::resolve(&inventory, &audit).spool)
    };
    let Some(named) = &args.request else {
        return list(&spool()?);
    };
    // A path, or a request's name in the spool (as `runbook approve` lists it).
    let path = &if named.exists() || named.components().count() > 1 {
        named.clone()
    } else {
        spool()?.join(named)
    };
    let bytes = read_request(path).map_err(|e| {
        Error::usage(format!(
            "cannot read the request {}: {e} (the waiting run prints its path; `runbook approve` lists the requests that wait)",
            path.display()
        ))
    })?;
    let signed = decide(args, &bytes, &path.display().to_string(), || {
        crate::approval::waits(path)
    })?;
    let sig_file = publish(path, signed.reason.as_deref(), &signed.armored)?;
    signed.said(&sig_file.display().to_string());
    Ok(exit::OK)
}

/// An answer signed: the armored signature, by which key, and a denial's reason.
struct Signed {
    armored: String,
    fingerprint: String,
    reason: Option<String>,
}

impl Signed {
    fn said(&self, file: &str) {
        let word = if self.reason.is_some() {
            "denied"
        } else {
            "approved"
        };
        crate::stderr::ewriteln!(
            "{word}: {file} (signed with {}); the waiting run checks it against its approvers file",
            self.fingerprint
        );
    }
}

/// Shows the request (`named`), refuses the approver's own run and a request no run waits for
/// (`waits`, asked only then), asks, and signs the request's bytes (with a denial's reason).
fn decide(args: &ApproveArgs, bytes: &[u8], named: &str, waits: impl FnOnce() -> bool) -> Result<Signed> {
    let request: Request = serde_json::from_slice(bytes)
        .ok()
        .filter(|r: &Request| r.kind == REQUEST_KIND)
        .ok_or_else(|| Error::usage(format!("{} is not a runbook approval request", esc(named))))?;
    let reason = match (args.deny, args.reason.as_deref().map(str::trim)) {
        (true, None | Some("")) => {
            return Err(Error::usage(
                "--deny needs --reason TEXT: the operator and the trail are told why",
            ));
        }
        (true, Some(r)) => Some(r.to_string()),
        (false, _) => None,
    };
    show(&request);
    // The waiting run would refuse it anyway (design §22): said now, and nothing is signed.
    if let Some(name) = own_request(&request) {
        return Err(Error::usage(format!(
            "this is your own run's request (its operator is `{}`, account `{}`; you are `{}`): nobody approves their own step, so nothing was signed. Ask a colleague to run `runbook approve {}`",
            esc(&request.operator),
            esc(&request.account),
            esc(&name),
            esc(named)
        )));
    }
    if !waits() {
        return Err(Error::usage(format!(
            "no run waits for this request any more (run {} timed out, was answered, stopped or ended): nothing was signed",
            esc(&request.run)
        )));
    }
    if !args.yes && !asked(reason.is_some())? {
        return Err(Error::usage("not signed: you answered no"));
    }
    let signing = Signing::choose(args.signing_key.as_deref(), false)?;
    let Some(signer) = signing.signer() else {
        return Err(Error::usage(
            "no key to sign with: pass --signing-key FILE, set RUNBOOK_SIGNING_KEY, or load your key into ssh-agent",
        ));
    };
    let message = signed_message(bytes, reason.as_deref());
    let signature = signer
        .sign(NAMESPACE, &message)
        .map_err(|e| Error::usage(format!("cannot sign with {}: {e}", signer.fingerprint)))?;
    Ok(Signed {
        armored: signature.armored,
        fingerprint: signer.fingerprint.clone(),
        reason,
    })
}

/// `Approve? [y/N]` on the terminal (or `Deny?`); with no terminal to ask on, `--yes` is needed.
fn asked(deny: bool) -> Result<bool> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::usage(
            "no terminal to ask `Approve? [y/N]` on: pass --yes to sign without asking (nothing was signed)",
        ));
    }
    dialoguer::Confirm::new()
        .with_prompt(if deny { "Deny?" } else { "Approve?" })
        .default(false)
        .wait_for_newline(true)
        .interact()
        .map_err(|e| Error::usage(format!("not signed: {e}")))
}

/// The requests of the spool that a run still waits for, oldest first: run, step, hosts,
/// operator, age, and the name to give `runbook approve`.
fn list(spool: &Path) -> Result<u8> {
    let waiting: Vec<(PathBuf, Request)> = std::fs::read_dir(spool)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter_map(|p| {
                    let bytes = read_request(&p).ok()?;
                    let r: Request = serde_json::from_slice(&bytes).ok()?;
                    (r.kind == REQUEST_KIND && crate::approval::waits(&p)).then_some((p, r))
                })
                .collect()
        })
        .unwrap_or_default();
    let waiting = waiting
        .into_iter()
        .map(|(path, r)| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            (name.unwrap_or_default(), r)
        })
        .collect();
    table(waiting, &spool.display().to_string())
}

/// The requests that wait, oldest first, as `list` prints them (`REQUEST` is the name to
/// give `runbook approve`); `spool` is named when there is none.
fn table(mut waiting: Vec<(String, Request)>, spool: &str) -> Result<u8> {
    if waiting.is_empty() {
        crate::stderr::ewriteln!("no request waits for approval in {spool}");
        return Ok(exit::OK);
    }
    waiting.sort_by(|a, b| a.1.requested_at.cmp(&b.1.requested_at));
    let now = chrono::Utc::now();
    let mut out = String::from("RUN | STEP | HOSTS | OPERATOR | AGE | REQUEST\n");
    for (name, r) in &waiting {
        let age = chrono::DateTime::parse_from_rfc3339(&r.requested_at)
            .map(|t| {
                crate::duration::format((now - t.with_timezone(&chrono::Utc)).to_std().unwrap_or_default())
            })
            .unwrap_or_else(|_| "?".into());
        let hosts: Vec<String> = r.hosts.iter().map(|h| esc(&h.host).into_owned()).collect();
        out.push_str(&format!(
            "{} | {} | {} | {} ({} on {}) | {age} | {}\n",
            esc(&r.run),
            esc(&r.step),
            hosts.join(","),
            esc(&r.operator),
            esc(&r.account),
            esc(&r.machine),
            esc(name)
        ));
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(exit::OK)
}

/// The approver's login or declared name when the request's operator or account is theirs.
fn own_request(r: &Request) -> Option<String> {
    let login = crate::identity::Account::current().login;
    let declared = crate::identity::operator_name(None);
    [login.unwrap_or_default(), declared]
        .into_iter()
        .find(|me| !me.is_empty() && (*me == r.operator || *me == r.account))
}

/// What the approver is asked to sign, escaped: a request written by a hostile runbook must
/// not drive their terminal.
fn show(r: &Request) {
    let mut out = format!(
        "Approval request for step `{}` ({}) of run {} ({})\n  operator: {} ({} on {}), requested at {}\n  quorum: {}, waits {}\n",
        esc(&r.step),
        esc(&r.title),
        esc(&r.run),
        esc(&r.runbook),
        esc(&r.operator),
        esc(&r.account),
        esc(&r.machine),
        esc(&r.requested_at),
        r.quorum,
        crate::duration::format(std::time::Duration::from_millis(r.timeout_ms)),
    );
    for h in &r.hosts {
        out.push_str(&format!(
            "  on {}{}\n",
            esc(&h.host),
            h.host_key
                .as_deref()
                .map(|k| format!(" (host key {})", esc(k)))
                .unwrap_or_default()
        ));
    }
    out.push_str("  command:\n");
    for line in esc_text(&r.script).lines() {
        out.push_str(&format!("    │ {line}\n"));
    }
    for (name, value) in &r.env {
        out.push_str(&format!("  env {}={}\n", esc(name), esc(value)));
    }
    if !r.secrets.is_empty() {
        out.push_str(&format!(
            "  and the secrets {} (values not shown)\n",
            r.secrets.join(", ")
        ));
    }
    crate::stderr::ewrite!("{out}");
}

/// The request's bytes: a regular file only, opened non-blocking and without following a link
/// (a FIFO planted in a shared spool must not hold the approver).
fn read_request(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Writes the signature (and a denial's reason) beside the request under the first free name,
/// whole or not at all: written to a partial file of a random name (a planted one cannot
/// block it), then linked into place, the next name taken if another answer got there first.
fn publish(request: &std::path::Path, reason: Option<&str>, armored: &str) -> Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let spool = request.parent().unwrap_or(std::path::Path::new("."));
    let cannot = |what: &std::path::Path, e: std::io::Error| {
        Error::usage(format!(
            "cannot write {}: {e} (the approvals spool must be writable by you)",
            what.display()
        ))
    };
    let mut partial = tempfile::Builder::new()
        .prefix(".runbook-approve-")
        .suffix(".partial")
        .tempfile_in(spool)
        .map_err(|e| cannot(spool, e))?;
    partial
        .write_all(format!("{armored}\n").as_bytes())
        .and_then(|()| partial.as_file().sync_all())
        .and_then(|()| {
            partial
                .as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .map_err(|e| cannot(partial.path(), e))?;
    for _ in 0..100 {
        let sig_file = next_signature_file(request, reason.is_some());
        if let Some(reason) = reason {
            match write_new(&crate::approval::deny_file(&sig_file), reason.as_bytes()) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(cannot(&crate::approval::deny_file(&sig_file), e)),
                Ok(()) => {}
            }
        }
        match std::fs::hard_link(partial.path(), &sig_file) {
            Ok(()) => return Ok(sig_file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(cannot(&sig_file, e)),
        }
    }
    Err(Error::usage(format!(
        "cannot write a signature beside {}: every name is taken",
        request.display()
    )))
}

/// Writes a new file, 0644 (the waiting run, maybe another account, reads it), never over one.
fn write_new(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
}
