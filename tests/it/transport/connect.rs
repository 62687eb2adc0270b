//! Connecting over SSH against the real sshd: host keys refused or trusted on first use,
//! aliases and URI forms, and refusals explained in plain words.

use std::time::{Duration, Instant};

use runbook::testing::transport::{ConnectError, SshOptions, Transport};

use super::{run, spec};
use crate::support::sshd::{self, Sshd};

async fn connect_err(dest: &str, opts: &SshOptions) -> ConnectError {
    match Transport::connect(dest, opts).await {
        Ok(t) => {
            t.close().await;
            panic!("connected to {dest}, but should have been refused")
        }
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_changed_host_key_is_refused() {
    let sshd = Sshd::start();
    let other = sshd::keygen(sshd.dir.path(), "impostor");
    let other_key = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let line = format!("[127.0.0.1]:{} {other_key}", sshd.port);
    std::fs::write(&sshd.known_hosts, &line).unwrap();
    let err = connect_err(&sshd.dest(), &sshd.options()).await;
    let key = format!("[127.0.0.1]:{}", sshd.port);
    assert!(
        err.reason.contains(&format!("host key of {key} has changed")),
        "{err}"
    );
    assert!(err.reason.contains("man-in-the-middle"), "{err}");
    assert!(err.reason.contains("nothing was run"), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to `{}`", sshd.dest()))
    );
    assert!(
        err.detail.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{}",
        err.detail
    );
    // --accept-new-host-keys does not override a changed key.
    let mut opts = sshd.options();
    opts.accept_new_host_keys = true;
    let err = connect_err(&sshd.dest(), &opts).await;
    assert!(err.reason.contains("has changed"), "{err}");
    assert_eq!(std::fs::read_to_string(&sshd.known_hosts).unwrap(), line);
}

#[tokio::test]
async fn an_unknown_host_key_is_refused_unless_accept_new() {
    let sshd = Sshd::start();
    std::fs::write(&sshd.known_hosts, "").unwrap();
    let err = connect_err(&sshd.dest(), &sshd.options()).await;
    assert!(err.reason.starts_with("host key unknown"), "{err}");
    assert!(err.reason.contains("--accept-new-host-keys"), "{err}");
    assert!(
        err.reason.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&sshd.known_hosts).unwrap(), "");

    let mut opts = sshd.options();
    opts.accept_new_host_keys = true;
    let t = Transport::connect(&sshd.dest(), &opts)
        .await
        .expect("trust on first use");
    assert_eq!(run(&t, &spec("echo in")).await.stdout(), "in\n");
    let Transport::Ssh(ssh) = &t else { unreachable!() };
    let added = ssh
        .host_key_added()
        .expect("the new key is reported, for the audit");
    assert!(added.contains(&format!("[127.0.0.1]:{}", sshd.port)), "{added}");
    t.close().await;
    // The key was recorded, so the next strict connection succeeds.
    let found = std::process::Command::new("ssh-keygen")
        .args(["-F", &format!("[127.0.0.1]:{}", sshd.port), "-f"])
        .arg(&sshd.known_hosts)
        .output()
        .unwrap();
    assert!(found.status.success(), "key not recorded");
    let strict = Transport::connect(&sshd.dest(), &sshd.options()).await.unwrap();
    strict.close().await;
}

#[tokio::test]
async fn an_alias_of_the_ssh_config_works() {
    let sshd = Sshd::start();
    let opts = SshOptions {
        config: Some(sshd.ssh_config.clone()),
        ..SshOptions::default()
    };
    let t = Transport::connect(sshd::ALIAS, &opts).await.unwrap();
    assert_eq!(t.label(), sshd::ALIAS);
    assert_eq!(run(&t, &spec("id -un")).await.stdout(), "rbtest\n");
    t.close().await;
}

/// The connection says where it went, as `ssh -G` would (the run lock's key, without an
/// `ssh -G` per host): an alias and the address it stands for are one endpoint.
#[tokio::test]
async fn a_connection_resolves_its_endpoint_as_ssh_g_does() {
    let sshd = Sshd::start();
    let opts = SshOptions {
        config: Some(sshd.ssh_config.clone()),
        ..SshOptions::default()
    };
    let by_alias = Transport::connect(sshd::ALIAS, &opts).await.unwrap();
    let by_address = Transport::connect(&sshd.dest(), &sshd.options()).await.unwrap();
    let expected = runbook::testing::transport::canonical(sshd::ALIAS, &opts).unwrap();
    assert_eq!(expected.to_string(), format!("rbtest@127.0.0.1:{}", sshd.port));
    assert_eq!(by_alias.endpoint(), Some(&expected));
    assert_eq!(by_address.endpoint(), Some(&expected));
    by_alias.close().await;
    by_address.close().await;
}

#[tokio::test]
async fn ssh_uri_form_works() {
    let sshd = Sshd::start();
    let dest = format!("ssh://rbtest@127.0.0.1:{}", sshd.port);
    // Paths with spaces reach ssh intact.
    let spaced = sshd.dir.path().join("with space");
    std::fs::create_dir(&spaced).unwrap();
    let mut opts = sshd.options();
    opts.known_hosts = Some(spaced.join("known hosts"));
    std::fs::copy(&sshd.known_hosts, opts.known_hosts.as_ref().unwrap()).unwrap();
    let t = Transport::connect(&dest, &opts).await.unwrap();
    assert!(t.is_alive().await);
    assert_eq!(run(&t, &spec("echo uri")).await.stdout(), "uri\n");
    t.close().await;
}

#[tokio::test]
async fn refusals_are_explained_in_plain_words() {
    let sshd = Sshd::start();
    // A key the server does not know.
    let mut opts = sshd.options();
    opts.identity = Some(sshd::keygen(sshd.dir.path(), "stranger"));
    let err = connect_err(&sshd.dest(), &opts).await;
    assert!(
        err.reason
            .starts_with("authentication refused: no key accepted for user rbtest"),
        "{err}"
    );
    // Nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = connect_err(&format!("rbtest@127.0.0.1:{closed}"), &sshd.options()).await;
    assert!(err.reason.starts_with("connection refused"), "{err}");
    // Not a destination at all.
    let err = connect_err("-oProxyCommand=touch", &sshd.options()).await;
    assert!(err.reason.contains("cannot start with `-`"), "{err}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Accepts TCP connections (the kernel does, from the backlog) but never speaks SSH.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let opts = SshOptions {
        connect_timeout: Duration::from_secs(1),
        ..SshOptions::default()
    };
    let started = Instant::now();
    let err = connect_err(&format!("nobody@127.0.0.1:{port}"), &opts).await;
    assert_eq!(err.reason, "timed out after 1s", "{}", err.detail);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}
