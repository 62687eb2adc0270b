//! Connecting every target of a run before anything runs, and letting go of them at its end.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::inventory::Binding;
use crate::plan::Plan;
use crate::transport::{SshOptions, Transport};

/// Lets go of every lease, then closes every master (a lease holds a session of its master).
pub(super) async fn close_all(transports: HashMap<String, Transport>, leases: Vec<crate::lease::Lease>) {
    // All at once: each is a round trip to its own host.
    futures::future::join_all(leases.into_iter().map(crate::lease::Lease::release)).await;
    futures::future::join_all(transports.into_values().map(Transport::close)).await;
}

/// Connects every SSH host of the plan, all before anything runs, `forks` at a time (a fleet of
/// 50 does not connect one by one); reports every failure.
pub(super) async fn connect_all(
    plan: &Plan,
    ssh: &SshOptions,
    forks: usize,
) -> Result<HashMap<String, Transport>> {
    use futures::StreamExt;
    let mut transports = HashMap::new();
    let mut failures = Vec::new();
    // Where the run waits on each connection (no more hosts than cores), its first session
    // is spared a delayed ACK; a bigger fleet keeps the cores busy meanwhile, and the extra
    // session would only cost them.
    let hosts = plan
        .bindings
        .values()
        .filter(|b| matches!(b, Binding::Ssh { .. }))
        .count();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let nudge = hosts <= cores;
    let connecting = futures::stream::iter(plan.bindings.iter())
        .map(|(label, binding)| async move {
            let connected = match binding {
                Binding::Local => Ok(Transport::local()),
                Binding::Ssh { dest, .. } => connect_retrying(dest, ssh).await,
            };
            if let (true, Ok(t)) = (nudge, &connected) {
                t.nudge();
            }
            (label.clone(), connected)
        })
        .buffer_unordered(forks.max(1));
    tokio::pin!(connecting);
    while let Some((label, connected)) = connecting.next().await {
        match connected {
            Ok(t) => {
                transports.insert(label, t);
            }
            Err(reason) => failures.push(format!("{label}: {reason}")),
        }
    }
    // In the plan's order, whatever order they failed in.
    failures.sort_by_key(|f| {
        plan.bindings
            .keys()
            .position(|l| f.starts_with(&format!("{l}: ")))
            .unwrap_or(usize::MAX)
    });
    if failures.is_empty() {
        return Ok(transports);
    }
    for (_, t) in transports.drain() {
        t.close().await;
    }
    Err(Error::usage(format!(
        "cannot reach every target: nothing was run.\n  {}",
        failures.join("\n  ")
    )))
}

/// Connects, retrying a connection refused or reset by the host with backoff (a bastion's
/// `MaxStartups` drops connections beyond its limit at random: a fleet must not fail for it).
/// Anything else (a host key, a name, authentication) fails at once.
async fn connect_retrying(dest: &str, ssh: &SshOptions) -> std::result::Result<Transport, String> {
    const TRIES: u32 = 4;
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=TRIES {
        match Transport::connect(dest, ssh).await {
            Ok(t) => return Ok(t),
            Err(e) if attempt < TRIES && e.transient() => {
                // Jittered, so that the hosts refused together do not come back together.
                let noise = std::hash::BuildHasher::hash_one(
                    &std::collections::hash_map::RandomState::new(),
                    (dest, attempt),
                );
                let jitter = Duration::from_millis(noise % 200);
                tokio::time::sleep(delay + jitter).await;
                delay *= 2;
            }
            Err(e) => return Err(e.reason),
        }
    }
    unreachable!("the last try returns")
}
