//! `runbook run` and `runbook drill`: pre-flight (validate, bind, connect, check answers),
//! then the walk, then the exit code of design §9.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::cli::{Global, RunArgs};
use crate::error::{Error, Result, exit};
use crate::events::{Event, Mode, RunOutcome};
use crate::executor::Executor;
use crate::inventory::{Binding, Inventory};
use crate::plan::Plan;
use crate::prompt::{Answers, Operator};
use crate::runbook::Outcome;
use crate::sink::Sink;
use crate::transport::{SshOptions, Transport};
use crate::ui::Ui;

/// `drill_allow_prod`: `None` for `run`, `Some(allow_prod)` for `drill`.
pub fn execute(global: &Global, args: &RunArgs, drill_allow_prod: Option<bool>) -> Result<u8> {
    let mode = if drill_allow_prod.is_some() {
        Mode::Drill
    } else {
        Mode::Incident
    };
    let allow_prod = drill_allow_prod.unwrap_or(false);
    let launched = Instant::now();
    if !args.yes && !args.dry_run && !crate::prompt::has_terminal() {
        return Err(Error::usage(
            "no terminal to ask on (stdin or stderr is not a TTY), and --yes was not given: nothing was run.\n  To run unattended: --yes, with --answer STEP=VALUE for each typed confirmation, decision and manual step.\n  To see the plan: --dry-run.",
        ));
    }
    let answers = Answers::parse(&args.answers)?;
    let operator = if args.yes {
        Operator::Unattended(answers.clone())
    } else {
        Operator::Terminal
    };
    let (inventory, _) = Inventory::load(args.inventory.as_deref())?;
    let plan = Plan::load(global, &args.runbook, &args.targets, &inventory)?;
    let runbook = plan.main.runbook.clone();
    if let Some(start) = args.start_at.as_ref().filter(|s| runbook.step_index(s).is_none()) {
        let hint = crate::diagnostic::did_you_mean(start, runbook.steps.iter().map(|s| s.id()))
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        return Err(Error::usage(format!(
            "--start-at: `{}` has no step `{start}`{hint}",
            runbook.id()
        )));
    }
    let since_offset = match &args.since {
        Some(text) => since_offset(text)?,
        None => Duration::ZERO,
    };
    let connect_timeout = crate::duration::parse(&args.ssh.connect_timeout)
        .map_err(|e| Error::usage(format!("--connect-timeout: {e}")))?;
    if mode == Mode::Drill && !allow_prod {
        let prod: Vec<String> = plan
            .bindings
            .values()
            .filter(|b| b.is_prod())
            .map(Binding::label)
            .collect();
        if !prod.is_empty() {
            return Err(Error::usage(format!(
                "this drill would act on production hosts ({}), marked `env: prod` in the inventory: nothing was run. Point it at staging with --target, or pass --allow-prod (recorded in the audit trail)",
                prod.join(", ")
            )));
        }
    }
    if args.yes {
        let needs = plan.needs_human(&answers, args.start_at.as_deref());
        if !needs.is_empty() {
            return Err(Error::usage(format!(
                "--yes, but these steps need a human and have no answer: nothing was run.\n  {}",
                needs.join("\n  ")
            )));
        }
    }

    let operator_name = args
        .operator
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    let mut vars = plan.inputs(&args.sets, &operator)?;
    let audit_dir = crate::audit::audit_dir(global.audit_dir.as_deref());
    let run_id = crate::audit::new_run_id(runbook.id());
    vars.set("run_id", run_id.clone(), false);
    vars.set("operator", operator_name.clone(), false);
    vars.set("mode", mode.as_str(), false);

    if args.dry_run {
        crate::output::print(&crate::dry_run::render(&plan, &vars, args.start_at.as_deref()))?;
        return Ok(exit::OK);
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the async runtime: {e}")))?;
    let ssh = SshOptions {
        config: args.ssh.ssh_config.clone(),
        identity: args.ssh.identity.clone(),
        known_hosts: args.ssh.known_hosts.clone(),
        connect_timeout,
        accept_new_host_keys: args.ssh.accept_new_host_keys,
    };
    runtime.block_on(async move {
        let transports = connect_all(&plan, &ssh).await?;
        let audit = crate::audit::AuditLog::create(&audit_dir, &run_id, &operator_name, launched)?;
        let audit_path = audit.path().display().to_string();
        let mut sink = Sink {
            ui: Ui::new(),
            audit: Some(audit),
        };
        let file_sha256 = sha256_hex(plan.main.source.text.as_bytes());
        let started = Event::RunStarted {
            runbook: runbook.id().to_string(),
            title: runbook.title.clone(),
            file: plan.main.path.display().to_string(),
            file_sha256,
            mode,
            targets: plan.targets.clone(),
            inputs: vars
                .masked()
                .into_iter()
                .filter(|(k, _)| runbook.inputs.contains_key(k))
                .collect(),
            rto: runbook.rto.get().unwrap_or_default(),
            since_offset,
            audit_file: Some(audit_path.clone()),
            allow_prod,
            accept_new_host_keys: ssh.accept_new_host_keys,
        };
        sink.emit(&started)?;
        for (label, _) in plan.bindings.iter() {
            let role = plan
                .targets
                .iter()
                .find(|(_, h)| *h == label)
                .map(|(r, _)| r.clone())
                .unwrap_or_default();
            let host_key_added = transports
                .get(label)
                .and_then(|t| t.host_key_added())
                .map(str::to_string);
            sink.emit(&Event::TargetConnected {
                role,
                host: label.clone(),
                host_key_added,
                reconnected: false,
            })?;
        }
        let rto = runbook.rto.get().unwrap_or_default();
        let mut executor = Executor {
            plan,
            mode,
            operator,
            sink,
            transports,
            launched,
            since_offset,
            rto,
            over_target: Vec::new(),
            ssh: ssh.clone(),
            attempts: HashMap::new(),
        };
        let end = executor.run(&mut vars, args.start_at.as_deref()).await?;
        let elapsed = executor.elapsed();
        executor.sink.ui.restore();
        eprintln!("audit trail: {audit_path}");
        for (_, transport) in executor.transports.drain() {
            transport.close().await;
        }
        Ok(exit_code(mode, end.outcome, elapsed, rto))
    })
}

/// Connects every SSH host of the plan, all before anything runs; reports every failure.
async fn connect_all(plan: &Plan, ssh: &SshOptions) -> Result<HashMap<String, Transport>> {
    let mut transports = HashMap::new();
    let mut failures = Vec::new();
    for (label, binding) in &plan.bindings {
        match binding {
            Binding::Local => {
                transports.insert(label.clone(), Transport::local());
            }
            Binding::Ssh { dest, .. } => match Transport::connect(dest, ssh).await {
                Ok(t) => {
                    transports.insert(label.clone(), t);
                }
                Err(e) => failures.push(format!("{label}: {}", e.reason)),
            },
        }
    }
    if failures.is_empty() {
        Ok(transports)
    } else {
        for (_, t) in transports.drain() {
            t.close().await;
        }
        Err(Error::usage(format!(
            "cannot reach every target: nothing was run.\n  {}",
            failures.join("\n  ")
        )))
    }
}

fn exit_code(mode: Mode, outcome: RunOutcome, elapsed: Duration, rto: Duration) -> u8 {
    match outcome {
        RunOutcome::Ended(Outcome::Resolved) if mode == Mode::Drill && elapsed > rto => {
            exit::OVER_RTO_OR_INCOMPLETE
        }
        RunOutcome::Ended(Outcome::Resolved) => exit::OK,
        RunOutcome::Ended(_) | RunOutcome::Aborted => exit::NOT_RESOLVED,
        RunOutcome::Interrupted => exit::INTERRUPTED,
        RunOutcome::Lost => exit::RUNTIME,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `--since 07:02` (today, local time; yesterday if that is in the future) or RFC 3339: how
/// long ago the RTO clock started.
fn since_offset(text: &str) -> Result<Duration> {
    use chrono::{Local, NaiveTime, TimeZone};
    let now = chrono::Utc::now();
    let at = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        t.with_timezone(&chrono::Utc)
    } else {
        let time = NaiveTime::parse_from_str(text, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
            .map_err(|_| {
                Error::usage(format!(
                    "--since `{text}`: write a time like 07:02 or an RFC 3339 timestamp"
                ))
            })?;
        let today = Local::now().date_naive().and_time(time);
        let local = Local.from_local_datetime(&today).earliest().ok_or_else(|| {
            Error::usage(format!("--since `{text}` does not exist today (a clock change?)"))
        })?;
        let mut at = local.with_timezone(&chrono::Utc);
        if at > now {
            at -= chrono::Duration::days(1);
        }
        at
    };
    (now - at)
        .to_std()
        .map_err(|_| Error::usage(format!("--since `{text}` is in the future")))
}
