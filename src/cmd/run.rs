//! `runbook run` and `runbook drill`: pre-flight (validate, bind, check answers and inputs),
//! then `launch` connects, locks, walks and seals.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::cli::RunArgs;
use crate::config::Config;
use crate::error::{Error, Result, exit};
use crate::events::{Event, Mode};
use crate::executor::Start;
use crate::inventory::Inventory;
use crate::launch::{Launch, Trail};
use crate::plan::Plan;
use crate::prompt::Answers;

/// `drill_allow_prod`: `None` for `run`, `Some(allow_prod)` for `drill`.
pub fn execute(config: &Config, args: &RunArgs, drill_allow_prod: Option<bool>) -> Result<u8> {
    let mode = if drill_allow_prod.is_some() {
        Mode::Drill
    } else {
        Mode::Incident
    };
    let allow_prod = drill_allow_prod.unwrap_or(false);
    let launched = Instant::now();
    let opts = &args.opts;
    if !args.dry_run {
        crate::launch::require_terminal(opts.yes)?;
    }
    let answers = Answers::parse(&opts.answers)?;
    let operator = crate::prompt::operator(opts.yes, answers.clone());
    let inventory = Inventory::load(opts.inventory.as_deref())?;
    let plan = Plan::load(config, &args.runbook, &opts.targets, &inventory)?;
    plan.check_answers(&answers)?;
    plan.check_fleet_captures()?;
    let mut approvals = crate::approval::Config::resolve(&inventory, &config.audit_dir.clone());
    if plan.needs_approval() {
        approvals.check()?;
        approvals.needed = true;
    }
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
    let ssh = crate::launch::ssh_options(opts)?;
    crate::launch::refuse_prod(&plan, mode, allow_prod)?;
    if opts.yes {
        crate::launch::refuse_unanswered(plan.needs_human(&answers, args.start_at.as_deref()))?;
    }

    let operator_name = crate::launch::operator_name(opts);
    // The alert's values first: a --set or --set-from of the same input wins.
    let alert = args.alert.as_deref().map(crate::alert::Alert::read).transpose()?;
    let mut sets = Vec::new();
    if let Some(alert) = &alert {
        let (given, missing) = alert.inputs(&runbook);
        for warning in missing {
            crate::ewriteln!("runbook: warning: --alert: {warning}");
        }
        let named = |s: &String| s.split_once('=').map(|(n, _)| n.to_string());
        let explicit: Vec<String> = opts
            .sets
            .iter()
            .chain(&opts.set_froms)
            .filter_map(named)
            .collect();
        sets.extend(
            given
                .into_iter()
                .filter(|s| named(s).is_none_or(|n| !explicit.contains(&n))),
        );
    }
    sets.extend(opts.sets.iter().cloned());
    // A dry run asks nobody and reads no secret source: it says where each value would come from.
    let mut vars = if args.dry_run {
        plan.planned_inputs(&sets, &opts.set_froms, opts.yes)?
    } else {
        plan.inputs(&sets, &opts.set_froms, &*operator)?
    };
    let run_id = crate::audit::new_run_id(runbook.id());
    vars.set("run_id", run_id.clone(), false);
    vars.set("operator", operator_name.clone(), false);
    vars.set("mode", mode.as_str(), false);
    vars.refuse_nul()?;

    if args.dry_run {
        crate::output::print(&crate::dry_run::render(&plan, &vars, args.start_at.as_deref()))?;
        return Ok(exit::OK);
    }
    // Webhook URLs from their secret sources, before anything runs (a missing one is exit 2).
    let notify = crate::notify::Setup::resolve(
        &inventory.notify,
        &opts.notify,
        opts.notify_timeout,
        runbook.escalate.as_ref(),
        opts.otlp.as_deref(),
    )?;
    let dir = config.audit_dir.clone();
    // Before connecting to anything: a trail that cannot be kept stops the run (exit 2).
    crate::audit::prepare_audit_dir(&dir)?;
    let signing = crate::launch::signing(opts)?;
    let first = Event::RunStarted {
        runbook: runbook.id().to_string(),
        title: runbook.title.clone(),
        file: plan.main.path.display().to_string(),
        file_sha256: crate::audit::sha256_hex(plan.main.source.text.as_bytes()),
        mode,
        targets: plan.targets.clone(),
        inputs: vars
            .masked()
            .into_iter()
            .filter(|(k, _)| runbook.inputs.contains_key(k))
            .collect(),
        rto: runbook.rto.get().unwrap_or_default(),
        since_offset,
        allow_prod,
        accept_new_host_keys: ssh.accept_new_host_keys,
        start_at: args.start_at.clone(),
        no_shell: opts.no_shell,
        who: crate::launch::who(&signing),
        alert: alert.as_ref().map(crate::alert::Alert::identity),
        unattended: opts.yes,
    };
    crate::launch::launch(Launch {
        plan,
        mode,
        operator,
        operator_name,
        run_id,
        vars,
        ssh,
        trail: Trail::Create {
            dir,
            first: Box::new(first),
        },
        start: Start::Fresh(args.start_at.clone()),
        break_lock: opts.break_lock,
        launched,
        since_offset,
        attempts: HashMap::new(),
        deviations: Vec::new(),
        signing,
        forks: usize::from(opts.forks),
        approvals,
        no_shell: opts.no_shell,
        notify,
        recap: Vec::new(),
    })
}

/// `--since 07:02` (today, local time; yesterday if that is in the future) or RFC 3339: how
/// long ago the RTO clock started.
pub(crate) fn since_offset(text: &str) -> Result<Duration> {
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
