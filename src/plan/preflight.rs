//! What `run`, `drill` and `resume` check before they connect to anything: the plan loads and
//! binds, answers and approvals are in order, a drill keeps off production, an unattended run
//! has every answer it needs. A refusal here is exit 2: nothing was run.

use crate::audit::sign::Signing;
use crate::cli::Pair;
use crate::cli::config::{Config, RunConfig};
use crate::error::{Error, Result};
use crate::events::{Mode, Who};
use crate::inventory::Binding;
use crate::plan::Plan;

/// A plan that passed pre-flight, with the two-person rule's spool and approvers.
pub(crate) struct Prepared {
    pub plan: Plan,
    pub approvals: crate::approval::Config,
}

/// Loads and binds `spec` with `targets`, then checks the answers, the fleet captures and the
/// approvals set-up.
pub(crate) fn prepare(config: &Config, run: &RunConfig, spec: &str, targets: &[Pair]) -> Result<Prepared> {
    let plan = Plan::load(config, spec, targets, &run.inventory)?;
    plan.check_answers(&run.answers)?;
    plan.check_fleet_captures()?;
    let mut approvals = crate::approval::Config::resolve(&run.inventory, &config.audit_dir);
    // With an audit host, approvers on other machines find the request there (design §19).
    approvals.remote = run
        .audit_host
        .clone()
        .map(|host| crate::approval::Remote::new(host, run.ssh.clone()));
    if plan.needs_approval() {
        approvals.check()?;
        approvals.needed = true;
    }
    Ok(Prepared { plan, approvals })
}

/// Who is at the keyboard, as the machine says, and how the trail is signed.
pub(crate) fn who(signing: &Signing) -> Who {
    let (signed_by, unsigned) = signing.who();
    Who {
        account: crate::identity::Account::current(),
        machine: crate::identity::machine(),
        signed_by,
        unsigned,
    }
}

/// A drill never touches production unless told so (and that is recorded).
pub(crate) fn refuse_prod(plan: &Plan, mode: Mode, allow_prod: bool) -> Result<()> {
    if mode != Mode::Drill || allow_prod {
        return Ok(());
    }
    let prod: Vec<String> = plan
        .bindings
        .values()
        .filter(|b| b.is_prod())
        .map(Binding::label)
        .collect();
    if prod.is_empty() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "this drill would act on production hosts ({}), marked `env: prod` in the inventory: nothing was run. Point it at staging with --target, or pass --allow-prod (recorded in the audit trail)",
        prod.join(", ")
    )))
}

/// Unattended pre-flight: every step that would need a human must have its answer.
pub(crate) fn refuse_unanswered(needs: Vec<String>) -> Result<()> {
    if needs.is_empty() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "--yes, but these steps need a human and have no answer: nothing was run.\n  {}",
        needs.join("\n  ")
    )))
}
