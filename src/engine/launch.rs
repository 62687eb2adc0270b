//! The part of a run that `run`, `drill` and `resume` share once pre-flight has passed:
//! connect every target, take the lock, open the audit trail, walk, seal, and turn the ending
//! into an exit code (design §9).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::audit::AuditLog;
use crate::audit::sign::Signing;
use crate::book::runbook::Outcome;
use crate::cli::config::RunConfig;
use crate::engine::executor::{Executor, Start};
use crate::error::{Error, Result, exit};
use crate::events::{Event, Mode, RunOutcome};
use crate::inventory::Binding;
use crate::listen::sink::Sink;
use crate::listen::ui::Ui;
use crate::lock::{Holder, Taken};
use crate::plan::Plan;
use crate::prompt::Operator;
use crate::transport::{SshOptions, Transport};
use crate::vars::Vars;

mod connect;
use connect::{close_all, connect_all};

/// The audit file: a new one, or an interrupted run's, continued.
pub(crate) enum Trail {
    Create { dir: PathBuf, first: Box<Event> },
    Continue { path: PathBuf, resumed: Box<Event> },
}

/// Everything pre-flight resolved.
pub(crate) struct Launch {
    /// What the user typed, resolved.
    pub run: RunConfig,
    pub plan: Plan,
    pub mode: Mode,
    pub operator: Box<dyn Operator>,
    pub run_id: String,
    pub vars: Vars,
    pub trail: Trail,
    pub start: Start,
    pub launched: Instant,
    /// How much of the RTO was spent before this process started.
    pub since_offset: Duration,
    /// Attempts so far by step (a resumed run's counts).
    pub attempts: HashMap<String, u32>,
    /// Deviations so far (a resumed run's).
    pub deviations: Vec<crate::events::Deviation>,
    pub signing: Signing,
    /// The two-person rule's spool and approvers (design §15).
    pub approvals: crate::approval::Config,
    /// Where notifications go, and the escalation deadline (design §15).
    pub notify: crate::listen::notify::Setup,
    /// A resumed run: what already happened, shown under the header before the first question
    /// (`ui::recap`). Empty for a new run.
    pub recap: Vec<String>,
    /// A resolved alert, guards (design §20).
    pub rails: crate::engine::executor::Rails,
}

/// Connects, locks, records, walks and seals; returns the exit code.
pub(crate) fn launch(l: Launch) -> Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(walk(l))
}

async fn walk(l: Launch) -> Result<u8> {
    let Launch {
        run,
        plan,
        mode,
        operator,
        run_id,
        mut vars,
        trail,
        start,
        launched,
        since_offset,
        attempts,
        deviations,
        signing,
        mut approvals,
        notify,
        recap,
        rails,
    } = l;
    let RunConfig {
        operator_name,
        ssh,
        break_lock,
        forks,
        no_shell,
        audit_host,
        ..
    } = run;
    let runbook = plan.main.runbook.clone();
    // While the hosts connect: the client key's fingerprint (`ssh-keygen -l`).
    let identity = ssh.identity.clone();
    let fingerprinting = tokio::task::spawn_blocking(move || {
        identity.and_then(|key| crate::audit::sign::fingerprint(&key).ok())
    });
    let audit_dir = match &trail {
        Trail::Create { dir, .. } => dir.clone(),
        Trail::Continue { path, .. } => path.parent().map(PathBuf::from).unwrap_or_default(),
    };
    // Named in the command a hand-off prints, for a colleague on another machine.
    let handoff_host = audit_host.clone();
    // The audit host connects beside the targets, bounded (design §19).
    let mirror =
        crate::listen::mirror::begin(audit_host, &ssh, &run_id, &audit_dir, crate::listen::ui::shout);
    let (transports, mirror) = tokio::join!(connect_all(&plan, &ssh, forks), mirror);
    let transports = transports?;
    let client_key = fingerprinting.await.ok().flatten();
    if approvals.needed {
        approvals.own_keys.extend(crate::approval::agent_keys());
        approvals.own_keys.extend(client_key.clone());
    }
    let me = Holder::me(&run_id, &operator_name);
    let canonical = match canonical_targets(&plan, &transports, &ssh) {
        Ok(canonical) => canonical,
        Err(e) => {
            close_all(transports, Vec::new()).await;
            return Err(e);
        }
    };
    let lock_path = crate::lock::lock_path(&audit_dir, runbook.id(), &canonical);
    let (lock, taken) = match crate::lock::acquire(&lock_path, me.clone(), break_lock) {
        Ok(held) => held,
        Err(e) => {
            close_all(transports, Vec::new()).await;
            return Err(e.into_error());
        }
    };
    // Every host's lease, `forks` at a time: a fleet of 50 does not wait for them one by one.
    let (mut leases, mut refused) = (Vec::new(), None);
    {
        use futures::StreamExt;
        let taking = futures::stream::iter(transports.values().filter_map(|t| match t {
            Transport::Ssh(ssh) => Some(ssh),
            Transport::Local(_) | Transport::Stub(_) => None,
        }))
        .map(|ssh| crate::lease::take(ssh, &me, break_lock))
        .buffer_unordered(forks.max(1));
        tokio::pin!(taking);
        while let Some(taken) = taking.next().await {
            match taken {
                Ok(lease) => leases.push(lease),
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
    }
    if let Some(e) = refused {
        close_all(transports, leases).await;
        return Err(e.into_error());
    }
    let (mut audit, opening) = match trail {
        Trail::Create { dir, first } => (AuditLog::create(&dir, &run_id, &operator_name, launched)?, *first),
        Trail::Continue { path, resumed } => (AuditLog::open_append(&path, &operator_name)?, *resumed),
    };
    audit.set_signer(signing.signer());
    if let Signing::Signed(s) = &signing {
        approvals.own_keys.push(s.fingerprint.clone());
    }
    let audit_path = audit.path().display().to_string();
    let rto = runbook.rto.get().unwrap_or_default();
    let timeout = notify.timeout;
    let traces = notify.otlp.as_deref().and_then(|endpoint| {
        let facts = crate::listen::otlp::RunFacts {
            run_id: run_id.clone(),
            runbook: runbook.id().to_string(),
            title: runbook.title.clone(),
            mode: mode.as_str(),
            operator: operator_name.clone(),
            rto,
            resumed: matches!(opening, Event::RunResumed { .. }),
        };
        // A trace that cannot be set up costs the run nothing but this line.
        crate::listen::otlp::Traces::start(endpoint, facts, timeout)
            .map_err(|e| crate::stderr::ewriteln!("runbook: warning: no trace export: {e}"))
            .ok()
    });
    let notifier = (!notify.channels.is_empty() || notify.escalate.is_some()).then(|| {
        crate::listen::notify::Notifier::start(
            notify,
            crate::listen::notify::RunInfo {
                run_id: run_id.clone(),
                runbook: runbook.id().to_string(),
                title: runbook.title.clone(),
                mode: mode.as_str(),
                operator: operator_name.clone(),
                machine: crate::identity::machine(),
            },
            crate::listen::notify::RunClock {
                launched,
                since_offset,
                rto,
            },
            std::sync::Arc::new(crate::listen::ui::shout),
        )
    });
    // The trail so far (a resumed run's), then every line from here on.
    let tally = crate::review::Tally::of_file(audit.path());
    audit.take_written();
    let mut sink = Sink {
        ui: Ui::new(operator.clock()),
        audit: Some(audit),
        notify: notifier,
        traces,
        tally,
        mirror,
        tap: None,
    };
    sink.emit(&opening)?;
    let mut brief = briefing(&plan, mode, since_offset, &canonical, &transports);
    brief.audit_file = audit_path.clone();
    sink.emit(&Event::Briefing(brief))?;
    for line in &recap {
        sink.ui.say(line);
    }
    // The locks and connections of a fleet of 50 in one fsync, not 100.
    sink.hold_syncs();
    let (how, previous) = taken_words(taken);
    sink.emit(&Event::LockTaken {
        path: lock.path().display().to_string(),
        how,
        previous,
        stopped: Vec::new(),
    })?;
    for lease in &leases {
        let path = format!("{}:{}", lease.host(), lease.file());
        if let Some(holder) = lease.shared_with(&leases) {
            // Two names of one machine and account (design §22): one lease serves both.
            sink.emit(&Event::LeaseShared {
                path,
                host: lease.host().to_string(),
                with: holder.to_string(),
            })?;
            continue;
        }
        let (how, previous) = taken_words(lease.taken().clone());
        sink.emit(&Event::LockTaken {
            path,
            how,
            previous,
            stopped: lease.stopped().to_vec(),
        })?;
    }
    for transport in transports.values() {
        if let Transport::Ssh(ssh) = transport
            && let Some(notices) = leases
                .iter()
                .find(|l| l.host() == ssh.label())
                .and_then(|l| l.notices(&leases))
        {
            ssh.tell_lease(notices);
        }
    }
    for (label, _) in plan.bindings.iter() {
        let role = plan
            .targets
            .iter()
            .find(|(_, h)| *h == label)
            .map(|(r, _)| r.clone())
            .unwrap_or_default();
        let transport = transports.get(label);
        sink.emit(&Event::TargetConnected {
            role,
            host: label.clone(),
            host_key_added: transport.and_then(|t| t.host_key_added()).map(str::to_string),
            host_key: transport.and_then(|t| t.host_key()).map(str::to_string),
            client_key: transport
                .filter(|t| t.host_key().is_some())
                .and(client_key.clone()),
            reconnected: false,
        })?;
    }
    sink.release_syncs()?;
    let signals = crate::signals::listen().map_err(Error::runtime)?;
    let mut executor = Executor {
        plan: std::sync::Arc::new(plan),
        mode,
        operator,
        sink,
        transports,
        launched,
        since_offset,
        rto,
        ssh,
        presented: attempts.keys().cloned().collect(),
        attempts,
        signals,
        handled_stops: 0,
        cleaning: false,
        deviations,
        typed: vars.masker(),
        forks,
        approvals,
        rerun: None,
        unapproved: None,
        no_shell,
        shell_vars: vars.clone(),
        rails,
    };
    let end = match executor.run(&mut vars, start).await {
        Ok(end) => end,
        Err(e) => {
            // Nothing unrecorded ran: the trail is intact up to here, so the run can go on.
            executor.sink.ui.restore();
            executor.sink.close_notifications(timeout);
            executor.sink.close_mirror();
            close_all(std::mem::take(&mut executor.transports), leases).await;
            drop(lock);
            if let Error::HandedOff(_) = e {
                return Ok(super::handoff::tell(
                    &audit_path,
                    &executor.ssh,
                    &run.inventory,
                    handoff_host.as_ref(),
                ));
            }
            let resume = format!(
                "runbook resume {run_id} --audit-dir {}",
                crate::script::shell_quote(&audit_dir.display().to_string())
            );
            crate::stderr::ewriteln!(
                "runbook: the run stopped: {e}\n  its audit trail is intact up to here ({audit_path}), not sealed; once the cause is fixed: {resume}"
            );
            return Err(Error::Exit(e.exit_code().max(exit::RUNTIME)));
        }
    };
    let elapsed = executor.elapsed();
    executor.sink.ui.restore();
    let channels = executor.sink.notify.is_some();
    let undelivered = executor.sink.close_notifications(timeout);
    executor.sink.close_mirror();
    if channels && undelivered > 0 {
        crate::stderr::ewriteln!(
            "runbook: warning: {undelivered} notification(s) not delivered (the trail and {run_id}/notifications.jsonl say which and why)"
        );
    }
    crate::stderr::ewriteln!("audit trail: {audit_path}");
    if let Some(audit) = &executor.sink.audit {
        let signed = match &signing {
            Signing::Signed(s) => format!("signed by {} ({})", s.fingerprint, s.origin),
            Signing::Unsigned(why) => format!("UNSIGNED: {why}"),
        };
        crate::stderr::ewriteln!("head: {} ({signed})", audit.head());
    }
    close_all(std::mem::take(&mut executor.transports), leases).await;
    drop(lock);
    let deviated = crate::engine::executor::deviated(&executor.deviations);
    Ok(exit_code(mode, end.outcome, elapsed, rto, deviated))
}

/// How a lock or lease was had, in the trail's words.
fn taken_words(taken: Taken) -> (&'static str, Option<Holder>) {
    match taken {
        Taken::Free => ("free", None),
        Taken::Stale(h) => ("stale", Some(h)),
        Taken::Broken(h) => ("broken", Some(h)),
        Taken::Reclaimed(h) => ("reclaimed", Some(h)),
        Taken::Dead(h) => ("dead", Some(h)),
    }
}

/// The header of the run: the runbook's words, and where each role really acts.
fn briefing(
    plan: &Plan,
    mode: Mode,
    spent: Duration,
    canonical: &indexmap::IndexMap<String, String>,
    transports: &HashMap<String, Transport>,
) -> crate::events::Briefing {
    let runbook = &plan.main.runbook;
    let destinations = plan
        .targets
        .iter()
        .map(|(role, label)| {
            let binding = plan.bindings.get(label);
            let members = plan.members(label);
            let env = match binding {
                Some(Binding::Ssh { env, .. }) => env.clone(),
                // A fleet's env, when its hosts agree on one (a mixed fleet says so).
                None if members.len() > 1 => {
                    let envs: std::collections::BTreeSet<String> = members
                        .iter()
                        .map(|m| match plan.bindings.get(m) {
                            Some(Binding::Ssh { env: Some(e), .. }) => e.clone(),
                            _ => "-".to_string(),
                        })
                        .collect();
                    match envs.len() {
                        1 => envs.into_iter().next().filter(|e| e != "-"),
                        _ => Some(envs.into_iter().collect::<Vec<_>>().join("+")),
                    }
                }
                _ => None,
            };
            let address = match binding {
                Some(Binding::Ssh { .. }) => canonical.get(role).cloned().unwrap_or_else(|| label.clone()),
                // The header lists them, each as connected: a step's line stays short for 50.
                None if members.len() > 1 => format!("{} hosts", members.len()),
                _ => "this machine".to_string(),
            };
            let members = if members.len() > 1 { members } else { Vec::new() };
            // Each host of a fleet as its connection resolved it (every one is connected by
            // now): what the operator checks before anything runs.
            let addresses = members
                .iter()
                .map(|m| {
                    match (
                        plan.bindings.get(m),
                        transports.get(m).and_then(Transport::endpoint),
                    ) {
                        (_, Some(endpoint)) => endpoint.to_string(),
                        (Some(Binding::Ssh { dest, .. }), None) => dest.to_string(),
                        _ => "this machine".to_string(),
                    }
                })
                .collect();
            crate::events::Destination {
                role: role.clone(),
                label: label.clone(),
                address,
                env,
                members,
                addresses,
            }
        })
        .collect();
    crate::events::Briefing {
        title: runbook.title.clone(),
        runbook: runbook.id().to_string(),
        mode,
        rto: runbook.rto.get().unwrap_or_default(),
        spent,
        description: runbook.description.clone(),
        links: runbook
            .links
            .iter()
            .map(|l| (l.title.clone(), l.url.clone()))
            .collect(),
        destinations,
        steps: runbook.steps.iter().map(|s| s.id().to_string()).collect(),
        audit_file: String::new(),
        escalate: runbook
            .escalate
            .as_ref()
            .and_then(|e| e.after.get().map(|after| (after, e.to.clone()))),
    }
}

/// The run lock's key for each role: its hosts as ssh resolved them (`user@host:port`, what
/// `ssh -G` says), so that an alias and the address it stands for are one target. Each
/// connection says it (`Transport::endpoint`); `ssh -G` is asked only for a host whose
/// connection did not, 16 at a time.
fn canonical_targets(
    plan: &Plan,
    transports: &HashMap<String, Transport>,
    ssh: &SshOptions,
) -> Result<indexmap::IndexMap<String, String>> {
    let mut keys = indexmap::IndexMap::new();
    for (role, label) in &plan.targets {
        let all = plan.members(label);
        let mut resolved: Vec<Result<String>> = Vec::new();
        let mut ask: Vec<(&String, &String)> = Vec::new();
        for member in &all {
            match (
                plan.bindings.get(member),
                transports.get(member).and_then(Transport::endpoint),
            ) {
                (Some(Binding::Ssh { .. }), Some(endpoint)) => resolved.push(Ok(endpoint.to_string())),
                (Some(Binding::Ssh { dest, .. }), None) => ask.push((member, dest)),
                _ => resolved.push(Ok("local".to_string())),
            }
        }
        for chunk in ask.chunks(16) {
            std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|&(member, dest)| {
                        scope.spawn(move || {
                            crate::transport::canonical(dest, ssh)
                                .map(|c| c.to_string())
                                .map_err(|e| {
                                    Error::usage(format!("cannot resolve `{member}` with `ssh -G`: {e}"))
                                })
                        })
                    })
                    .collect();
                for h in handles {
                    resolved.push(
                        h.join()
                            .unwrap_or_else(|_| Err(Error::runtime("`ssh -G` panicked"))),
                    );
                }
            });
        }
        // A fleet's key is its hosts' keys, sorted: the same fleet however it was written.
        let mut members = resolved.into_iter().collect::<Result<Vec<String>>>()?;
        members.sort();
        keys.insert(role.clone(), members.join(","));
    }
    Ok(keys)
}

/// `deviated`: a step was skipped, marked done after a failure or passed over, or a cleanup
/// step failed; a drill then FAILs with 3, over the RTO or not (design §12).
pub(crate) fn exit_code(
    mode: Mode,
    outcome: RunOutcome,
    elapsed: Duration,
    rto: Duration,
    deviated: bool,
) -> u8 {
    match outcome {
        RunOutcome::Ended(Outcome::Resolved) if mode == Mode::Drill && deviated => exit::NOT_RESOLVED,
        RunOutcome::Ended(Outcome::Resolved) if mode == Mode::Drill && elapsed > rto => {
            exit::OVER_RTO_OR_INCOMPLETE
        }
        RunOutcome::Ended(Outcome::Resolved) => exit::OK,
        RunOutcome::Ended(_) | RunOutcome::Aborted => exit::NOT_RESOLVED,
        RunOutcome::Interrupted => exit::INTERRUPTED,
        RunOutcome::Lost => exit::RUNTIME,
    }
}
