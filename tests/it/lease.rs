//! The host lease against the real sshd: a second run on the same host is refused naming the
//! first, whatever the spelling of the host; the host is free again once the first lets go,
//! drops its lease or loses its connection; `--break-lock` displaces a live holder.

use std::time::{Duration, Instant};

use runbook::lease::{Lease, LeaseError, take};
use runbook::lock::{Holder, Taken};
use runbook::transport::{Ssh, Transport};

use crate::support::sshd::{self, Sshd};

/// Every sshd fixture is this machine and the same login user, so every lease here is the same
/// lease: these tests take turns.
static SAME_HOST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn connect(sshd: &Sshd, dest: &str) -> Ssh {
    match Transport::connect(dest, &sshd.options()).await {
        Ok(Transport::Ssh(ssh)) => ssh,
        Ok(_) => unreachable!("an SSH destination"),
        Err(e) => panic!("{e}\n{}\nsshd log:\n{}", e.detail, sshd.log()),
    }
}

/// A holder as another operator's `runbook` on another machine would send it.
fn holder(run: &str, operator: &str) -> Holder {
    Holder {
        machine: format!("{operator}-laptop"),
        ..Holder::me(run, operator)
    }
}

#[track_caller]
fn refused(got: Result<Lease, LeaseError>) -> Holder {
    match got {
        Err(LeaseError::Held { holder, .. }) => *holder,
        Err(e) => panic!("refused, but not for a holder: {e}"),
        Ok(lease) => panic!("leased {lease:?}, but the host is held"),
    }
}

/// Takes the lease, retrying while the previous holder is still letting go.
async fn take_within(ssh: &Ssh, holder: &Holder, limit: Duration) -> Lease {
    let until = Instant::now() + limit;
    loop {
        match take(ssh, holder, false).await {
            Ok(lease) => return lease,
            Err(e) if Instant::now() > until => panic!("still not free after {limit:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test]
async fn a_second_run_is_refused_naming_the_first_until_it_releases() {
    let _turn = SAME_HOST.lock().await;
    let sshd = Sshd::start();
    let (a, b) = (
        connect(&sshd, &sshd.dest()).await,
        connect(&sshd, &sshd.dest()).await,
    );
    let alice = holder("run-alice", "alice");
    let first = take(&a, &alice, false).await.unwrap();
    assert!(!matches!(first.taken(), Taken::Broken(_)), "{first:?}");
    assert!(first.file().starts_with("/tmp/runbook-lease-"), "{first:?}");

    let err = take(&b, &holder("run-bob", "bob"), false).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "`{}` is in use by another run: run `run-alice` of alice on `alice-laptop`, since ",
            sshd.dest()
        )),
        "{message}"
    );
    assert!(message.contains("pass --break-lock"), "{message}");
    assert_eq!(refused(Err(err)), alice);

    first.release().await;
    let second = take(&b, &holder("run-bob", "bob"), false).await.unwrap();
    assert!(
        matches!(second.taken(), Taken::Free),
        "a clean release: {second:?}"
    );
    second.release().await;
}

#[tokio::test]
async fn another_spelling_of_the_host_is_the_same_lease() {
    let _turn = SAME_HOST.lock().await;
    let sshd = Sshd::start();
    let (a, b) = (
        connect(&sshd, &sshd.dest()).await,
        connect(&sshd, sshd::ALIAS).await,
    );
    let first = take(&a, &holder("run-alice", "alice"), false).await.unwrap();
    assert_eq!(
        refused(take(&b, &holder("run-bob", "bob"), false).await).run,
        "run-alice"
    );
    first.release().await;
}

#[tokio::test]
async fn a_dropped_lease_frees_the_host() {
    let _turn = SAME_HOST.lock().await;
    let sshd = Sshd::start();
    let (a, b) = (
        connect(&sshd, &sshd.dest()).await,
        connect(&sshd, &sshd.dest()).await,
    );
    let first = take(&a, &holder("run-alice", "alice"), false).await.unwrap();
    drop(first);
    let second = take_within(&b, &holder("run-bob", "bob"), Duration::from_secs(5)).await;
    second.release().await;
}

#[tokio::test]
async fn a_lost_connection_frees_the_host() {
    let _turn = SAME_HOST.lock().await;
    let sshd = Sshd::start();
    let a = connect(&sshd, &sshd.dest()).await;
    let _first = take(&a, &holder("run-alice", "alice"), false).await.unwrap();
    sshd.kill_connections();
    let b = connect(&sshd, &sshd.dest()).await;
    let second = take_within(&b, &holder("run-bob", "bob"), Duration::from_secs(10)).await;
    // The remote side saw its stdin end, as on a clean release.
    assert!(!matches!(second.taken(), Taken::Broken(_)), "{second:?}");
    second.release().await;
}

#[tokio::test]
async fn break_lock_displaces_a_live_holder_without_stopping_it() {
    let _turn = SAME_HOST.lock().await;
    let sshd = Sshd::start();
    let a = connect(&sshd, &sshd.dest()).await;
    let b = connect(&sshd, &sshd.dest()).await;
    let c = connect(&sshd, &sshd.dest()).await;
    let alice = holder("run-alice", "alice");
    let first = take(&a, &alice, false).await.unwrap();
    let breaker = take(&b, &holder("run-bob", "bob"), true).await.unwrap();
    assert!(
        matches!(breaker.taken(), Taken::Broken(h) if *h == alice),
        "{breaker:?}"
    );
    assert!(a.is_alive().await, "the displaced run's connection is untouched");
    assert_eq!(
        refused(take(&c, &holder("run-carol", "carol"), false).await).run,
        "run-bob"
    );
    first.release().await;
    assert_eq!(
        refused(take(&c, &holder("run-carol", "carol"), false).await).run,
        "run-bob"
    );
    breaker.release().await;
    take(&c, &holder("run-carol", "carol"), false)
        .await
        .unwrap()
        .release()
        .await;
}
