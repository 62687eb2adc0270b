//! `runbook approve [REQUEST] --audit-host URL` (design §19): the spool is `PATH/approvals/`
//! on the team's audit host, read and written over SSH from the approver's own machine, with
//! their own key. Signing is the same as for the local spool (`decide`): only where the request
//! comes from and where the answer goes differ.

use crate::approval::{REQUEST_KIND, Remote, Request};
use crate::cli::ApproveArgs;
use crate::error::{Error, Result, exit};
use crate::secrets::escape::value as esc;
use crate::transport::{AuditHost, SshOptions};

/// `ssh://USER@HOST[:PORT]/PATH/approvals/NAME` (how the waiting run names its request): the
/// audit host and the request's name.
pub(super) fn parse_url(url: &str) -> Result<(AuditHost, String)> {
    let wrong = |why: &str| {
        Error::usage(format!(
            "`{}` does not name a request on an audit host: {why} (expected ssh://USER@HOST[:PORT]/PATH/approvals/NAME, as the waiting run prints it)",
            esc(url)
        ))
    };
    let Some((host, name)) = url.rsplit_once("/approvals/") else {
        return Err(wrong("no `/approvals/` before the request's name"));
    };
    if name.is_empty() || name.contains('/') {
        return Err(wrong("the request's name after `/approvals/` is missing"));
    }
    let host = AuditHost::parse(host).map_err(|e| wrong(&e))?;
    Ok((host, name.to_string()))
}

pub(super) fn execute(host: AuditHost, request: Option<String>, args: &ApproveArgs) -> Result<u8> {
    let ssh = &args.ssh;
    let options = SshOptions {
        config: ssh.ssh_config.clone(),
        identity: ssh.identity.clone(),
        known_hosts: ssh.known_hosts.clone(),
        connect_timeout: ssh.connect_timeout,
        accept_new_host_keys: ssh.accept_new_host_keys,
        keepalive: ssh.keepalive,
    };
    let remote = Remote::new(host, options);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the async runtime: {e}")))?;
    let done = runtime.block_on(approve(&remote, request.as_deref(), args));
    runtime.block_on(remote.close());
    done
}

async fn approve(remote: &Remote, request: Option<&str>, args: &ApproveArgs) -> Result<u8> {
    let cannot = |why: String| {
        Error::runtime(format!(
            "cannot read the approvals spool on the audit host {}: {why}",
            remote.host
        ))
    };
    let Some(name) = request else {
        let found = remote.list().await.map_err(cannot)?;
        let waiting = found
            .into_iter()
            .filter(|f| f.waits)
            .filter_map(|f| {
                let r: Request = serde_json::from_slice(&f.bytes).ok()?;
                (r.kind == REQUEST_KIND).then_some((f.name, r))
            })
            .collect();
        return super::table(waiting, &remote.url(""));
    };
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\n']) {
        return Err(Error::usage(format!(
            "`{}` is not the name of a request: `runbook approve --audit-host {}` lists them",
            esc(name),
            remote.host
        )));
    }
    let Some(found) = remote.get(name).await.map_err(cannot)? else {
        return Err(Error::usage(format!(
            "no request `{}` in {}: `runbook approve --audit-host {}` lists the requests that wait",
            esc(name),
            remote.url(""),
            remote.host
        )));
    };
    let url = remote.url(&found.name);
    let signed = super::decide(args, &found.bytes, &url, || found.waits)?;
    match remote
        .answer(&found.name, &signed.armored, signed.reason.as_deref())
        .await
    {
        Ok(Some(written)) => {
            signed.said(&remote.url(&written));
            Ok(exit::OK)
        }
        Ok(None) => Err(Error::usage(format!(
            "the request {url} is gone from the audit host: nothing was signed there"
        ))),
        Err(why) => Err(Error::runtime(format!(
            "cannot write the answer beside {url}: {why} (nothing was written; try again)"
        ))),
    }
}
