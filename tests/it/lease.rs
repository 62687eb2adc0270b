//! The host lease against the real sshd: a second run on the same host is refused naming the
//! first, whatever the spelling of the host; the host is free again once the first lets go,
//! drops its lease or loses its connection; `--break-lock` displaces a live holder.

use std::time::{Duration, Instant};

use runbook::testing::lease::{Lease, LeaseError, take};
use runbook::testing::lock::{Holder, Taken};
use runbook::testing::transport::{Ssh, Transport};

use crate::support::sshd::{self, Sshd};

/// These tests take turns (each fixture is its own lease host since `SetEnv
/// RUNBOOK_LEASE_BASE`, but a turn keeps their timing independent of one another).
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
    // The fixture's sshd moves the lease to its own directory (`SetEnv RUNBOOK_LEASE_BASE`),
    // so servers of parallel tests are separate hosts; by default it is /tmp/runbook-lease-UID.
    let base = sshd.dir.path().join("leases/runbook-lease-");
    assert!(first.file().starts_with(base.to_str().unwrap()), "{first:?}");

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

/// A run waiting on `flag`, against the fixture's host spelled `dest`, from `audit`.
fn waiting_run(
    sshd: &Sshd,
    book: &std::path::Path,
    dest: &str,
    audit: &std::path::Path,
) -> crate::support::cmd::Run {
    crate::support::cmd::runbook(["run"])
        .arg(book)
        .args(["--yes", "--audit-dir"])
        .arg(audit)
        .args(["--target", &format!("app={dest}"), "--identity"])
        .arg(&sshd.identity)
        .arg("--known-hosts")
        .arg(&sshd.known_hosts)
        .arg("--ssh-config")
        .arg(&sshd.ssh_config)
}

/// Two runs against one host: the second is refused, by the local lock when it uses the same
/// audit dir whatever the spelling of the host, by the remote lease when it comes from
/// another audit dir (another laptop, another account: the lease is on the host).
#[tokio::test]
async fn a_second_run_on_the_same_host_is_refused_by_the_lock_or_the_lease() {
    let _turn = SAME_HOST.lock().await;
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let flag = format!("/tmp/rb-lease-flag-{}", std::process::id());
    std::fs::write(&flag, "").unwrap();
    let book = dir.path().join("hold.yaml");
    std::fs::write(
        &book,
        format!("version: 1\nid: hold\ntitle: Hold\nrto: 5m\ntargets:\n  app: {{}}\nsteps:\n  - id: hold\n    title: Hold the host\n    run: while [ -e {flag} ]; do sleep 0.1; done\n    timeout: 60s\n  - id: done\n    title: Done\n    end: resolved\n"),
    )
    .unwrap();
    let (audit_a, audit_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dest = sshd.dest();
    let book_a = book.clone();
    let first = {
        let run = waiting_run(&sshd, &book_a, &dest, audit_a.path());
        std::thread::spawn(move || run.output())
    };
    let trail = crate::support::trail::wait_for_started(audit_a.path());
    let run_a = trail.file_stem().unwrap().to_str().unwrap().to_string();

    // Same audit dir, another spelling of the same destination: the local lock.
    let other_spelling = format!("ssh://{dest}/");
    let out = waiting_run(&sshd, &book, &other_spelling, audit_a.path()).expect_code(2);
    assert!(
        out.stderr.contains("locked by tester") && out.stderr.contains(&run_a),
        "{}",
        out.stderr
    );
    // Another audit dir (another operator's machine): the lease on the host itself.
    let out = waiting_run(&sshd, &book, &dest, audit_b.path()).expect_code(2);
    assert!(
        out.stderr.contains("is in use by another run") && out.stderr.contains(&run_a),
        "{}",
        out.stderr
    );
    assert!(
        crate::support::trail::audit_files(audit_b.path()).is_empty(),
        "nothing was run"
    );

    std::fs::remove_file(&flag).unwrap();
    let done = first.join().unwrap();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    // Both let go: the host can be had again.
    waiting_run(&sshd, &book, &dest, audit_b.path()).expect_code(0);
}
