//! `runbook run` and `runbook drill`: resolve what was typed, pre-flight (validate, bind, check
//! answers and inputs), then a dry run or `launch` (connect, lock, walk, seal).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::cli::config::{Config, RunConfig};
use crate::cli::{Pair, RunArgs};
use crate::engine::executor::Start;
use crate::engine::launch::{Launch, Trail};
use crate::error::{Error, Result, exit};
use crate::events::{Event, Mode};
use crate::plan::preflight::Prepared;

/// `drill_allow_prod`: `None` for `run`, `Some(allow_prod)` for `drill`.
pub(super) fn execute(config: &Config, args: &RunArgs, drill_allow_prod: Option<bool>) -> Result<u8> {
    let mode = if drill_allow_prod.is_some() {
        Mode::Drill
    } else {
        Mode::Incident
    };
    let allow_prod = drill_allow_prod.unwrap_or(false);
    let launched = Instant::now();
    // `--unattended` implies `--yes`: nobody is asked.
    let mut opts = args.opts.clone();
    opts.yes |= args.unattended;
    let run = RunConfig::resolve(&opts, !args.dry_run, config.audit_host.as_ref())?;
    let operator = run.operator();
    let Prepared { plan, approvals } =
        crate::plan::preflight::prepare(config, &run, &args.runbook, &run.targets)?;
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
    let since_offset = args
        .since
        .map(|at| (chrono::Utc::now() - at).to_std().unwrap_or_default())
        .unwrap_or(Duration::ZERO);
    crate::plan::preflight::refuse_prod(&plan, mode, allow_prod)?;
    if run.unattended {
        crate::plan::preflight::refuse_unanswered(plan.needs_human(&run.answers, args.start_at.as_deref()))?;
    }

    // The alert's values first: a --set or --set-from of the same input wins.
    let alert = args.alert.as_deref().map(crate::alert::Alert::read).transpose()?;
    let mut sets = Vec::new();
    if let Some(alert) = &alert {
        let (given, missing) = alert.inputs(&runbook);
        for warning in missing {
            crate::stderr::ewriteln!("runbook: warning: --alert: {warning}");
        }
        let explicit: Vec<&str> = run
            .sets
            .iter()
            .chain(&run.set_froms)
            .map(|p| p.name.as_str())
            .collect();
        sets.extend(
            given
                .into_iter()
                .filter(|(name, _)| !explicit.contains(&name.as_str()))
                .map(|(name, value)| Pair::new(name, value)),
        );
    }
    sets.extend(run.sets.iter().cloned());
    let run_id = crate::audit::new_run_id(runbook.id());
    // The policy decides before any secret is read or anything connected (design §20); a dry
    // run is never refused: it runs nothing.
    let mut rails = crate::engine::executor::Rails::default();
    if args.unattended && !args.dry_run {
        let admitted = crate::unattended::admit(crate::unattended::Ask {
            dir: &config.audit_dir,
            inventory: &run.inventory,
            runbook: runbook.id(),
            title: &runbook.title,
            hosts: plan.bindings.len(),
            alert: alert.as_ref(),
            run_id: &run_id,
            operator: &run.operator_name,
            notify: run.notify(None).ok(),
            audit_host: run.audit_host.as_ref(),
            ssh: &run.ssh,
        })?;
        if admitted.stop_when_resolved && !admitted.fingerprints.is_empty() {
            rails.resolved = Some(crate::engine::executor::ResolvedWatch {
                dir: config.audit_dir.clone(),
                fingerprints: admitted.fingerprints,
                since: std::time::SystemTime::now(),
            });
        }
    }
    // A dry run asks nobody and reads no secret source: it says where each value would come from.
    let mut vars = if args.dry_run {
        plan.planned_inputs(&sets, &run.set_froms, run.unattended)?
    } else {
        plan.inputs(&sets, &run.set_froms, &*operator)?
    };
    vars.set("run_id", run_id.clone(), false);
    vars.set("operator", run.operator_name.clone(), false);
    vars.set("mode", mode.as_str(), false);
    vars.refuse_nul()?;

    if args.dry_run {
        crate::output::print(&crate::plan::dry_run::render(
            &plan,
            &vars,
            args.start_at.as_deref(),
        ))?;
        return Ok(exit::OK);
    }
    // Webhook URLs from their secret sources, before anything runs (a missing one is exit 2).
    let notify = run.notify(runbook.escalate.as_ref())?;
    let dir = config.audit_dir.clone();
    // Before connecting to anything: a trail that cannot be kept stops the run (exit 2).
    crate::audit::prepare_audit_dir(&dir)?;
    let signing = run.signing()?;
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
        accept_new_host_keys: run.ssh.accept_new_host_keys,
        start_at: args.start_at.clone(),
        no_shell: run.no_shell,
        who: crate::plan::preflight::who(&signing),
        alert: alert.as_ref().map(crate::alert::Alert::identity),
        unattended: run.unattended,
    };
    crate::engine::launch::launch(Launch {
        run,
        plan,
        mode,
        operator,
        run_id,
        vars,
        trail: Trail::Create {
            dir,
            first: Box::new(first),
        },
        start: Start::Fresh(args.start_at.clone()),
        launched,
        since_offset,
        attempts: HashMap::new(),
        deviations: Vec::new(),
        signing,
        approvals,
        notify,
        recap: Vec::new(),
        rails,
    })
}
