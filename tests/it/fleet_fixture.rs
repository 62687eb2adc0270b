//! The fleet fixture itself (support::fleet): N real hosts on one machine, each reached on its
//! own address, each its own lease holder, one of them killed while the others go on.

use std::collections::HashSet;
use std::process::{Child, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use runbook::testing::inventory::{Binding, Inventory};
use runbook::testing::lease::{LeaseError, take};
use runbook::testing::lock::{Holder, Taken};
use runbook::testing::transport::{Ssh, Transport};

use crate::support::fleet::{Fleet, GROUP, PER_SSHD};
use crate::support::wait;

/// What each host says it is, asked of every host at once: `SSH_CONNECTION`, the host's name
/// and its lease base, one line.
const WHO: &str = "echo ${SSH_CONNECTION} ${RBTEST_HOST} ${RUNBOOK_LEASE_BASE}";

/// Runs `command` on each of `hosts` at once; the outputs in the same order.
fn on_each(fleet: &Fleet, hosts: &[usize], command: &str) -> Vec<Output> {
    thread::scope(|s| {
        let running: Vec<_> = hosts
            .iter()
            .map(|&i| s.spawn(move || fleet.ssh(i).arg(command).output().unwrap()))
            .collect();
        running.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Host `i` answered `WHO` as itself: from its own address and port, with its own name and
/// lease base.
#[track_caller]
fn answered_as_itself(fleet: &Fleet, i: usize, out: &Output) {
    let host = &fleet.hosts[i];
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: {out:?}\nsshd logs:\n{}",
        host.name,
        fleet.log()
    );
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    let lease_base = host.lease_base.display().to_string();
    // SSH_CONNECTION is `client_ip client_port server_ip server_port`.
    assert_eq!(
        fields[2..],
        [
            host.addr.as_str(),
            &host.port.to_string(),
            &host.name,
            &lease_base
        ],
        "{}: {stdout}",
        host.name
    );
}

#[test]
fn every_host_answers_from_its_own_address() {
    let fleet = Fleet::start(20);
    assert_eq!(fleet.hosts.len(), 20);
    let addrs: HashSet<&str> = fleet.hosts.iter().map(|h| h.addr.as_str()).collect();
    assert_eq!(addrs.len(), 20, "distinct addresses");
    assert!(
        !addrs.contains("127.0.0.1"),
        "127.0.0.1 is the single-host fixture's"
    );
    let ports: HashSet<u16> = fleet.hosts.iter().map(|h| h.port).collect();
    assert_eq!(
        ports.len(),
        20usize.div_ceil(PER_SSHD),
        "one sshd per {PER_SSHD} hosts"
    );
    assert_eq!(fleet.hosts[0].name, "web-1");
    assert_eq!(fleet.hosts[0].addr, "127.0.0.2");
    assert_eq!(
        fleet.hosts[0].dest,
        format!("rbtest@127.0.0.2:{}", fleet.hosts[0].port)
    );

    let all: Vec<usize> = (0..20).collect();
    for (i, out) in on_each(&fleet, &all, WHO).iter().enumerate() {
        answered_as_itself(&fleet, i, out);
    }

    // The inventory as runbook reads it: every host by name, and the group of all of them.
    let inventory = Inventory::load(Some(&fleet.inventory)).unwrap();
    let group: Vec<&str> = inventory.groups[GROUP]
        .value
        .iter()
        .map(|m| m.value.as_str())
        .collect();
    let names: Vec<&str> = fleet.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(group, names);
    for host in &fleet.hosts {
        match inventory.bind("web", &host.name).unwrap() {
            Binding::Ssh { dest, .. } => assert_eq!(dest, host.dest),
            other => panic!("{other:?}"),
        }
    }
    // And the ssh_config's aliases reach the same hosts.
    let last = fleet.hosts.last().unwrap();
    let out = std::process::Command::new("ssh")
        .arg("-F")
        .arg(&fleet.ssh_config)
        .args([&last.name, "echo ${RBTEST_HOST}"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), last.name, "{out:?}");
}

/// `sleep` with a figure no other test uses, to count on the hosts.
const MARK: &str = "sleep 7301";
/// The sleep itself, not the `sh -c 'sleep 7301'` of the login shell that runs it.
const ONLY_MARK: &str = "^sleep 7301";

fn start_mark(fleet: &Fleet, i: usize) -> Child {
    fleet
        .ssh(i)
        .arg(MARK)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_killed_host_is_unreachable_while_the_others_still_answer() {
    let fleet = Fleet::start(20);
    // web-3 shares its sshd with web-2; web-20 is on the other one.
    let (killed, sibling, other) = (2, 1, 19);
    assert_eq!(fleet.hosts[killed].port, fleet.hosts[sibling].port);
    assert_ne!(fleet.hosts[killed].port, fleet.hosts[other].port);
    let mut clients: Vec<Child> = [killed, sibling, other]
        .iter()
        .map(|&i| start_mark(&fleet, i))
        .collect();
    wait::until(Duration::from_secs(10), "the marks run", || {
        fleet.remote_processes(ONLY_MARK) == 3
    });
    // Unanchored, the words are also those of each host's `sh -c`, but never of the local
    // `ssh` clients, whose argv holds them too.
    assert_eq!(fleet.remote_processes(MARK), 6);
    assert_eq!(fleet.remote_processes_on(killed, ONLY_MARK), 1);

    fleet.kill_host(killed);
    assert!(fleet.is_down(killed));
    // Its established connection is cut, its command is gone.
    let status = wait_exit(&mut clients[0], Duration::from_secs(10));
    assert_eq!(status, Some(255), "the killed host's client");
    assert_eq!(fleet.remote_processes_on(killed, MARK), 0);
    assert_eq!(fleet.remote_processes_on(sibling, ONLY_MARK), 1);
    // A new connection is refused, at once.
    let t0 = Instant::now();
    let out = fleet.ssh(killed).arg("true").output().unwrap();
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

    // The others, its sibling on the same sshd included, answer as themselves; their
    // connections and commands lived on.
    let others: Vec<usize> = (0..20).filter(|&i| i != killed).collect();
    for (&i, out) in others.iter().zip(on_each(&fleet, &others, WHO)) {
        answered_as_itself(&fleet, i, &out);
    }
    assert_eq!(fleet.remote_processes(ONLY_MARK), 2);
    assert!(clients[1].try_wait().unwrap().is_none(), "the sibling's client");
    assert!(
        clients[2].try_wait().unwrap().is_none(),
        "the other sshd's client"
    );

    // Killing it again is harmless; killing the last host of an sshd ends that sshd.
    fleet.kill_host(killed);
    fleet.kill_host(other);
    assert_eq!(wait_exit(&mut clients[2], Duration::from_secs(10)), Some(255));
    let out = fleet.ssh(other).arg("true").output().unwrap();
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    answered_as_itself(&fleet, sibling, &on_each(&fleet, &[sibling], WHO)[0]);

    // Dropped, the fleet takes every host down, and what ran there.
    let left = fleet.remote_pids(MARK);
    assert_eq!(left.len(), 2, "{left:?}");
    drop(fleet);
    assert_eq!(wait_exit(&mut clients[1], Duration::from_secs(10)), Some(255));
    wait::until(Duration::from_secs(10), "no mark left", || {
        left.iter().all(|pid| !alive(*pid))
    });
}

#[test]
fn a_host_with_its_own_sshd_dies_alone() {
    let fleet = Fleet::start_with(4, &[1]);
    let lone = fleet.hosts[1].port;
    assert!(
        fleet
            .hosts
            .iter()
            .enumerate()
            .all(|(i, h)| (h.port == lone) == (i == 1))
    );
    let (a, b) = (&fleet.hosts[0], &fleet.hosts[2]);
    // The others never refuse a connection while it goes down (no sshd of theirs restarts).
    let probing = std::sync::atomic::AtomicBool::new(true);
    let refused = thread::scope(|s| {
        let probe = s.spawn(|| {
            let mut refused = 0;
            while probing.load(std::sync::atomic::Ordering::Relaxed) {
                for h in [a, b] {
                    if std::net::TcpStream::connect((h.addr.as_str(), h.port)).is_err() {
                        refused += 1;
                    }
                }
                thread::sleep(Duration::from_millis(2));
            }
            refused
        });
        thread::sleep(Duration::from_millis(50));
        fleet.kill_host(1);
        thread::sleep(Duration::from_millis(50));
        probing.store(false, std::sync::atomic::Ordering::Relaxed);
        probe.join().unwrap()
    });
    assert_eq!(refused, 0);
    let out = fleet.ssh(1).arg("true").output().unwrap();
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    for (&i, out) in [0, 2, 3].iter().zip(on_each(&fleet, &[0, 2, 3], WHO)) {
        answered_as_itself(&fleet, i, &out);
    }
}

#[test]
fn a_killed_host_comes_back_as_itself() {
    // Host 1 has an sshd of its own, host 2 shares one with the others.
    let fleet = Fleet::start_with(4, &[1]);
    for i in [1, 2] {
        fleet.kill_host(i);
        let out = fleet.ssh(i).arg("true").output().unwrap();
        assert_eq!(out.status.code(), Some(255), "{out:?}");
        fleet.revive_host(i);
        assert!(!fleet.is_down(i));
    }
    for (&i, out) in [0, 1, 2, 3].iter().zip(on_each(&fleet, &[0, 1, 2, 3], WHO)) {
        answered_as_itself(&fleet, i, &out);
    }
}

async fn connect(fleet: &Fleet, i: usize) -> Ssh {
    match Transport::connect(&fleet.hosts[i].dest, &fleet.options()).await {
        Ok(Transport::Ssh(ssh)) => ssh,
        Ok(_) => unreachable!("an SSH destination"),
        Err(e) => panic!("{e}\n{}\nsshd logs:\n{}", e.detail, fleet.log()),
    }
}

#[tokio::test]
async fn each_host_is_its_own_lease_holder() {
    let fleet = Fleet::start(20);
    // Two hosts of one sshd, one of the other.
    let hosts = [0, 1, 15];
    let run = Holder::me("run-fleet", "alice");
    let mut leases = Vec::new();
    for &i in &hosts {
        let ssh = connect(&fleet, i).await;
        let lease = take(&ssh, &run, false)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", fleet.hosts[i].name));
        assert!(matches!(lease.taken(), Taken::Free), "{lease:?}");
        let base = fleet.hosts[i].lease_base.join("runbook-lease-");
        assert!(
            lease.file().starts_with(base.to_str().unwrap()),
            "{}: {lease:?}",
            fleet.hosts[i].name
        );
        leases.push((ssh, lease));
    }
    // And the lease is in force on each: another run is refused there, naming this one.
    let other = connect(&fleet, 1).await;
    match take(&other, &Holder::me("run-bob", "bob"), false).await {
        Err(LeaseError::Held { holder, .. }) => assert_eq!(holder.run, "run-fleet"),
        got => panic!("web-2 is held: {got:?}"),
    }
    for (_ssh, lease) in leases {
        lease.release().await;
    }
}

#[test]
fn a_fleet_of_50_starts_in_moments() {
    let t0 = Instant::now();
    let fleet = Fleet::start(50);
    let took = t0.elapsed();
    eprintln!("Fleet::start(50) took {took:?}");
    assert_eq!(
        fleet.hosts.iter().map(|h| h.port).collect::<HashSet<_>>().len(),
        4
    );
    assert_eq!(fleet.hosts[49].addr, "127.0.0.51");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // The first and last host of each sshd answer as themselves.
    let probe = [0, 14, 15, 29, 30, 44, 45, 49];
    for (&i, out) in probe.iter().zip(on_each(&fleet, &probe, WHO)) {
        answered_as_itself(&fleet, i, &out);
    }
}

/// The exit code of `child` once it ends within `limit` (None if killed by a signal).
#[track_caller]
fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` runs (a zombie, killed but not reaped by its new parent, does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        !state.is_some_and(|s| s.starts_with('Z'))
    })
}
