//! Unattended runs (design §20): the inventory's `unattended:` policy (`inventory::policy`)
//! enforced before an `--unattended` run connects to anything (`admit`); the pause switch
//! (`runbook pause`); and `runbook resolved`, which asks the matching run to stop at its next
//! step boundary.

mod admit;
mod ledger;
mod pause;
mod remote;
mod resolved;

pub(crate) use admit::{Ask, admit};
pub(crate) use pause::{Place, pause, unpause};
pub(crate) use resolved::{resolved, resolved_flag};
