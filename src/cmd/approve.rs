//! `runbook approve REQUEST [--deny --reason TEXT]`: the second person of the two-person rule
//! (design §15). Shows exactly what would run and where, then signs the request's bytes.

use std::io::Write;

use crate::approval::{NAMESPACE, REQUEST_KIND, Request, next_signature_file, signed_message};
use crate::audit::sign::Signing;
use crate::cli::ApproveArgs;
use crate::error::{Error, Result, exit};
use crate::secrets::escape::{text as esc_text, value as esc};

pub fn execute(args: &ApproveArgs) -> Result<u8> {
    let path = &args.request;
    let bytes = std::fs::read(path).map_err(|e| {
        Error::usage(format!(
            "cannot read the request {}: {e} (the waiting run prints its path)",
            path.display()
        ))
    })?;
    let request: Request = serde_json::from_slice(&bytes)
        .ok()
        .filter(|r: &Request| r.kind == REQUEST_KIND)
        .ok_or_else(|| Error::usage(format!("{} is not a runbook approval request", path.display())))?;
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
    // The waiting run refuses it anyway; the approver hears why now, not from a colleague.
    if let Some(name) = own_request(&request) {
        eprintln!(
            "this is your own request (its operator is `{}`, account `{}`; you are `{}`): the waiting run does not count your signature, since nobody approves their own step. Ask a colleague to run `runbook approve {}`",
            esc(&request.operator),
            esc(&request.account),
            esc(&name),
            path.display()
        );
    }
    let signing = Signing::choose(args.signing_key.as_deref(), false)?;
    let Some(signer) = signing.signer() else {
        return Err(Error::usage(
            "no key to sign with: pass --signing-key FILE, set RUNBOOK_SIGNING_KEY, or load your key into ssh-agent",
        ));
    };
    let message = signed_message(&bytes, reason.as_deref());
    let signature = signer
        .sign(NAMESPACE, &message)
        .map_err(|e| Error::usage(format!("cannot sign with {}: {e}", signer.fingerprint)))?;
    let sig_file = next_signature_file(path, reason.is_some());
    if let Some(reason) = &reason {
        write_new(&crate::approval::deny_file(&sig_file), reason.as_bytes())?;
    }
    // Whole or not at all: the waiting run must never read half a signature.
    let partial = sig_file.with_extension("sig.partial");
    write_new(&partial, format!("{}\n", signature.armored).as_bytes())?;
    let linked = std::fs::hard_link(&partial, &sig_file);
    let _ = std::fs::remove_file(&partial);
    linked.map_err(|e| Error::usage(format!("cannot write {}: {e}", sig_file.display())))?;
    let word = if reason.is_some() { "denied" } else { "approved" };
    eprintln!(
        "{word}: {} (signed with {}); the waiting run checks it against its approvers file",
        sig_file.display(),
        signer.fingerprint
    );
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
    eprint!("{out}");
}

/// Writes a new file, 0644 (the waiting run, maybe another account, reads it), never over one.
fn write_new(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::usage(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::usage(format!("cannot write {}: {e}", path.display())))?;
    let _ = std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o644));
    Ok(())
}
