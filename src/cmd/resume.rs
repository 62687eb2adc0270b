//! `runbook resume RUN`: continue an interrupted run in the same audit file, possibly as another
//! operator (a hand-off). The chain is verified first; secrets are asked again.

use std::time::Instant;

use crate::audit::Status;
use crate::cli::config::{Config, RunConfig};
use crate::cli::{Pair, ResumeArgs};
use crate::engine::executor::{Continue, Start};
use crate::engine::launch::{Launch, Trail};
use crate::error::{Error, Result, exit};
use crate::events::Event;
use crate::plan::Plan;
use crate::plan::preflight::Prepared;
use crate::prompt::Operator;
use crate::vars::{MASK, Vars};

pub(super) fn execute(config: &Config, args: &ResumeArgs) -> Result<u8> {
    let launched = Instant::now();
    let mut run = RunConfig::resolve(&args.opts, true, config.audit_host.as_ref())?;
    let expect_head = match &args.expect_head {
        Some(hex) => Some(super::audit::expected_head(hex)?),
        None => None,
    };
    let dir = config.audit_dir.clone();
    let path = match &run.audit_host {
        // From another machine: the audit host's copy, fetched and verified (design §19).
        Some(host) => {
            let expect = crate::engine::fetch::Expect {
                signers: args.signers.as_deref(),
                head: expect_head.as_deref(),
            };
            crate::engine::fetch::trail(host, &run.ssh, &dir, &args.run, &expect)?
        }
        None => crate::audit::resolve_run(&dir, &args.run)?,
    };
    // The chain goes on where it is: that directory must be as safe as a new run's.
    crate::audit::prepare_trail(&path)?;
    // As `audit verify` checks it: the chain, the output files, the signatures.
    let mut check = crate::audit::check(&path, args.signers.as_deref())?;
    let head = check.verification.head.clone().unwrap_or_default();
    if let Some(want) = &expect_head
        && !head.starts_with(want.as_str())
    {
        check
            .problems
            .push(format!("the head is {head}, not the expected {want}…"));
    }
    match &check.verification.status {
        Status::Tampered { seq, line, reason } => {
            crate::stderr::ewriteln!(
                "runbook: error: {} was tampered with at seq {seq} (line {line}): {reason}.\n  A run whose record cannot be trusted is not resumed; keep the file as evidence.",
                path.display()
            );
            return Err(Error::Exit(exit::RUNTIME));
        }
        Status::IntactSealed => {
            return Err(Error::usage(format!(
                "{} is sealed: that run has finished, there is nothing to resume",
                path.display()
            )));
        }
        Status::Incomplete => {}
    }
    if !check.problems.is_empty() {
        eprintln!(
            "runbook: error: {} does not match its record, as `runbook audit verify` says:\n{}\n  A run whose record cannot be trusted is not resumed; keep the file and its folder as evidence. If the trail was copied without its outputs, put its folder `{}/` back beside it and resume again.",
            path.display(),
            check
                .problems
                .iter()
                .map(|p| format!("  - {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
            check.verification.run.as_deref().unwrap_or("<run-id>"),
        );
        return Err(Error::Exit(exit::RUNTIME));
    }
    let events = crate::audit::record::read(&path)?;
    let started = match events.first().map(|l| &l.record) {
        Some(crate::audit::record::Record::RunStarted(started)) => Some(started),
        _ => None,
    };
    let operator = run.operator();

    let file = started.map(|s| s.file.clone()).unwrap_or_default();
    // Recorded bindings first, then any the operator gives now (a host renamed, a new bastion).
    let recorded_targets: Vec<Pair> = started
        .map(|s| {
            s.targets
                .iter()
                .map(|(r, h)| Pair::new(r.as_str(), h.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let targets: Vec<Pair> = recorded_targets
        .into_iter()
        .chain(run.targets.iter().cloned())
        .collect();
    let Prepared { plan, approvals } = crate::plan::preflight::prepare(config, &run, &file, &targets)?;
    let recorded = crate::engine::resume::rebuild(&events, &plan.main.runbook)?;
    if crate::audit::sha256_hex(plan.main.source.text.as_bytes()) != recorded.file_sha256 {
        return Err(Error::usage(format!(
            "{file} has changed since the run started (its SHA-256 differs from the one recorded): resuming would walk a different runbook. Restore the original file (git) and resume again"
        )));
    }
    let runbook = plan.main.runbook.clone();
    // A step of the walk or of the cleanup: the same rule (design §6).
    let unknown = match &recorded.continue_at {
        Continue::Unknown {
            step, started, host, ..
        } => Some((step, started, host, runbook.step(step))),
        Continue::Cleanup { cut: Some(c), .. } => Some((
            &c.step,
            &c.started,
            &c.host,
            runbook.cleanup.iter().find(|s| s.id() == c.step),
        )),
        _ => None,
    };
    if let Some((step, started, host, found)) = unknown {
        let idempotent = found.is_some_and(|s| s.idempotent);
        if run.unattended && !idempotent {
            crate::stderr::ewriteln!(
                "runbook: error: step `{step}` started at {} on {host} and never finished: its outcome is unknown, and it is not marked `idempotent: true`, so an unattended resume will not re-run it.\n  Check the host, then resume without --yes to re-run it, mark it done or failed, or abort.",
                crate::listen::ui::local_time::stamp(started)
            );
            return Err(Error::Exit(exit::NOT_RESOLVED));
        }
    }
    crate::plan::preflight::refuse_prod(&plan, recorded.mode, recorded.allow_prod)?;
    if run.unattended {
        let needs = match &recorded.continue_at {
            Continue::Step(s) | Continue::AfterFailure(s) | Continue::Unknown { step: s, .. } => {
                plan.needs_human(&run.answers, Some(s))
            }
            Continue::Cleanup { .. } => plan
                .needs_human(&run.answers, None)
                .into_iter()
                .filter(|n| n.contains("cleanup"))
                .collect(),
        };
        crate::plan::preflight::refuse_unanswered(needs)?;
    }

    let vars = variables(&plan, &recorded, &run, &*operator)?;
    vars.refuse_nul()?;
    let now = chrono::Utc::now();
    let since_offset = (now - recorded.started_at).to_std().unwrap_or_default() + recorded.since_offset;
    let signing = run.signing()?;
    let mut notify = run.notify(plan.main.runbook.escalate.as_ref())?;
    (notify.already, notify.sent_before) = crate::listen::notify::already_sent(&events);
    // What already happened, as `runbook review` counts it, for whoever takes over.
    let review = crate::review::from_lines(
        events.iter().cloned(),
        &path.display().to_string(),
        crate::review::Integrity::Incomplete {
            torn_tail: check.verification.torn_tail.is_some(),
        },
    );
    let recap = crate::listen::ui::recap::lines(&review, unknown_step(&recorded.continue_at));
    let resumed = Event::RunResumed {
        operator: run.operator_name.clone(),
        previous_operator: recorded.operator.clone(),
        who: crate::plan::preflight::who(&signing),
        gap: (now - recorded.last_ts).to_std().unwrap_or_default(),
        from: crate::engine::resume::describe(&recorded.continue_at, str::to_string),
        shown: crate::engine::resume::describe(&recorded.continue_at, crate::listen::ui::local_time::stamp),
        unattended: run.unattended,
    };
    // A run started with --no-shell keeps it when resumed.
    run.no_shell |= started.is_some_and(|s| s.no_shell);
    crate::engine::launch::launch(Launch {
        run,
        plan,
        mode: recorded.mode,
        operator,
        run_id: recorded.run_id.clone(),
        vars,
        trail: Trail::Continue {
            path,
            resumed: Box::new(resumed),
        },
        start: Start::Resume(recorded.continue_at.clone()),
        launched,
        since_offset,
        attempts: recorded.attempts.clone(),
        deviations: recorded.deviations.clone(),
        signing,
        approvals,
        notify,
        recap,
        rails: crate::engine::executor::Rails::default(),
    })
}

/// The step whose outcome is unknown (started, never finished), in the walk or the cleanup.
fn unknown_step(at: &Continue) -> Option<&str> {
    match at {
        Continue::Unknown { step, .. } => Some(step),
        Continue::Cleanup { cut: Some(c), .. } => Some(&c.step),
        _ => None,
    }
}

/// The run's variables again: recorded inputs and captures, secrets asked anew (they were never
/// stored), built-ins with the new operator.
fn variables(
    plan: &Plan,
    recorded: &crate::engine::resume::Recorded,
    run: &RunConfig,
    operator: &dyn Operator,
) -> Result<Vars> {
    let runbook = &plan.main.runbook;
    let given = crate::plan::given::Given::parse(&run.sets, &run.set_froms, runbook)?;
    for name in runbook.inputs.keys() {
        if given.names(name) && !runbook.inputs[name].value.secret {
            return Err(Error::usage(format!(
                "--set `{name}`: a resumed run keeps its recorded inputs; only secret inputs are given again"
            )));
        }
    }
    let mut vars = Vars::default();
    let mut missing = Vec::new();
    for (name, input) in &runbook.inputs {
        if input.value.secret {
            // Secrets were never stored: from where they live again, or asked.
            let input = crate::book::runbook::Input {
                default: None,
                ..input.value.clone()
            };
            match given
                .value(name, &input)?
                .map_or_else(|| operator.ask_input(name, &input), |v| Ok(Some(v)))?
            {
                Some(value) => vars.set(name, value, true),
                None => missing.push(name.clone()),
            }
        } else if let Some(value) = recorded.inputs.get(name) {
            vars.set(name, value.clone(), false);
        }
    }
    if !missing.is_empty() {
        let flags = missing
            .iter()
            .map(|m| format!("--set-from {m}=SOURCE"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(Error::usage(format!(
            "secrets are never stored, so give them again: {flags} (nothing was run)"
        )));
    }
    for (name, value) in &recorded.captures {
        if value == MASK {
            crate::stderr::ewriteln!(
                "runbook: warning: the capture `{name}` was secret and was not recorded; it is empty in the resumed run"
            );
            vars.set(name, "", true);
        } else {
            vars.set(name, value.clone(), false);
        }
    }
    vars.set("run_id", recorded.run_id.clone(), false);
    vars.set("operator", run.operator_name.clone(), false);
    vars.set("mode", recorded.mode.as_str(), false);
    Ok(vars)
}
