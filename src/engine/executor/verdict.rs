//! A drill's verdict: PASS or FAIL from how the run ended, its time and its deviations
//! (design §12).

use std::time::Duration;

use super::End;
use crate::book::runbook::Outcome;
use crate::events::{Deviation, RunOutcome, Verdict};

/// PASS when the run ended resolved, within the RTO, with every cleanup step done and no
/// step skipped, marked done after a failure or passed over (design §12); otherwise FAIL with
/// the reason, naming each deviating step. Steps run by hand or edited are listed, not failed.
pub fn verdict(end: &End, elapsed: Duration, rto: Duration, deviations: &[Deviation]) -> Verdict {
    let took = crate::listen::ui::fmt_secs(elapsed);
    let rto_text = crate::duration::format(rto);
    let named = |allowed: bool| {
        deviations
            .iter()
            .filter(|d| d.kind.allowed() == allowed)
            .map(|d| format!("`{}` {}", d.step, d.kind.as_str()))
            .collect::<Vec<_>>()
    };
    let (blocking, listed) = (named(false), named(true));
    let over = (elapsed > rto).then(|| crate::listen::ui::fmt_secs(elapsed - rto));
    let mut v = match end.outcome {
        RunOutcome::Ended(Outcome::Resolved) if !blocking.is_empty() => Verdict {
            pass: false,
            reason: format!(
                "resolved in {took}, but not as written: {}{}",
                blocking.join(", "),
                over.map(|o| format!("; and over the {rto_text} RTO by {o}"))
                    .unwrap_or_default()
            ),
        },
        RunOutcome::Ended(Outcome::Resolved) => match over {
            None => Verdict {
                pass: true,
                reason: format!("resolved in {took}, within the {rto_text} RTO"),
            },
            Some(o) => Verdict {
                pass: false,
                reason: format!("resolved in {took}, over the {rto_text} RTO by {o}"),
            },
        },
        other => Verdict {
            pass: false,
            reason: format!("the run ended {} after {took}", other.as_str()),
        },
    };
    if !listed.is_empty() {
        v.reason
            .push_str(&format!(" (deviations: {})", listed.join(", ")));
    }
    v
}

/// Whether a drill failed for a deviation rather than for time alone (exit 3, not 4).
pub(crate) fn deviated(deviations: &[Deviation]) -> bool {
    deviations.iter().any(|d| !d.kind.allowed())
}
