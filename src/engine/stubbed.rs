//! A walk of the real executor over the stub transport (`runbook test`, design §21): the same
//! `expect`, retries, captures, decisions, `on_failure` and sub-runs as a run, with every
//! command's reply scripted by a test case. Nothing runs, nothing connects, no trail is written
//! and nothing is shown: the sink has no audit writer and a muted terminal, and a tap keeps
//! what the case judges. Time is virtual: the runtime's clock is paused (a retry's delay
//! passes at once, and counts), and the stub adds each reply's `took`. Guards are stubbed
//! too: failing from a step on, polled in that virtual time (`executor::guarding::script`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::engine::executor::guarding::script::{GuardStub, Script};
use crate::engine::executor::{End, Executor, Start};
use crate::error::Error;
use crate::events::Mode;
use crate::listen::sink::Sink;
use crate::listen::tap::{Seen, Tap};
use crate::plan::Plan;
use crate::prompt::{Answers, Scripted};
use crate::transport::{Clock, Reply, SshOptions, Stub, Transport, Watcher};
use crate::vars::Vars;

/// What a test case gives the walk.
pub(crate) struct Rehearsal {
    /// Shared by every case of the same runbook.
    pub plan: std::sync::Arc<Plan>,
    pub answers: Answers,
    pub vars: Vars,
    /// Replies by step id (`call-step/step` in a sub-run), one per attempt.
    pub replies: HashMap<String, Vec<Reply>>,
    /// The guards the case stubs (the others always pass).
    pub guards: Vec<GuardStub>,
    /// Walked as `run --unattended`: a trip stops the running step and diverts at once.
    /// Otherwise as at a terminal: the trip is offered at the next boundary, answered by
    /// `divert` (by guard; unlisted: yes).
    pub unattended: bool,
    pub divert: HashMap<String, bool>,
}

/// What the walk did.
#[derive(Debug)]
pub(crate) struct Rehearsed {
    pub seen: Vec<Seen>,
    /// How the run ended, or the error that stopped it.
    pub end: Result<End, Error>,
    /// Virtual time from the first step to the seal: replies' `took` and retries' delays.
    pub took: Duration,
}

/// The runtime cases walk on: one thread's, its clock paused. One serves every case a
/// thread walks (a walk leaves nothing running on it), rather than one built per case.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the async runtime: {e}")))
}

/// Walks the plan's main runbook, then its cleanup, as `run --yes` would.
pub(crate) fn rehearse(runtime: &tokio::runtime::Runtime, r: Rehearsal) -> Rehearsed {
    runtime.block_on(walk(r))
}

async fn walk(r: Rehearsal) -> Rehearsed {
    let Rehearsal {
        plan,
        answers,
        mut vars,
        replies,
        guards,
        unattended,
        divert,
    } = r;
    let clock = Clock::start();
    let (guards, watcher) = if plan.main.runbook.guards.is_empty() {
        (None, None)
    } else {
        // Even unstubbed, they are scripted: a rehearsal never polls for real.
        let (g, script) = Script::start(&plan, &guards, clock.clone(), unattended);
        (Some(g), Some(script as std::sync::Arc<dyn Watcher>))
    };
    let stub = Stub::new(replies, clock.clone(), watcher);
    // Every role is bound to `local` (`Plan::unbound`): one stub serves them all.
    let transports = HashMap::from([("local".to_string(), Transport::Stub(stub.clone()))]);
    // No handlers installed: a Ctrl-C ends `runbook test` itself, as for any command.
    let (_signals_kept, signals) = tokio::sync::watch::channel(crate::signals::now());
    let rto = plan.main.runbook.rto.get().unwrap_or_default();
    let mode = if plan.main.runbook.drill.is_some() {
        Mode::Drill
    } else {
        Mode::Incident
    };
    let sink = Sink {
        ui: crate::listen::ui::Ui::muted(),
        audit: None,
        notify: None,
        traces: None,
        tally: crate::review::Tally::default(),
        mirror: None,
        tap: Some(Tap::default()),
    };
    let approvals = crate::approval::Config {
        assumed: true,
        ..Default::default()
    };
    let mut executor = Executor {
        unapproved: None,
        plan,
        mode,
        operator: Box::new(Scripted::agreeable(answers)),
        sink,
        transports,
        launched: Instant::now(),
        since_offset: Duration::ZERO,
        rto,
        ssh: SshOptions::default(),
        attempts: HashMap::new(),
        signals,
        handled_stops: crate::signals::now().effective_stops(),
        cleaning: false,
        deviations: Vec::new(),
        typed: vars.masker(),
        forks: 1,
        approvals,
        rerun: None,
        no_shell: true,
        shell_vars: vars.clone(),
        presented: HashSet::new(),
        rails: crate::engine::executor::Rails {
            guards,
            asked: (!unattended).then_some(divert),
            ..Default::default()
        },
    };
    let end = executor.run(&mut vars, Start::Fresh(None)).await;
    let took = clock.now();
    let seen = executor.sink.tap.take().map(|t| t.seen).unwrap_or_default();
    Rehearsed { seen, end, took }
}
