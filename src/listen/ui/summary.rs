//! The end of a run on the terminal: its outcome against the RTO, the steps over target, the
//! operator's decisions, the deviations and the drill verdict.

use console::style;

use super::{Ui, fmt_secs};
use crate::duration::format as fmt_duration;
use crate::events::{RunFinished, RunOutcome};
use crate::secrets::escape::value as esc;

impl Ui {
    /// `Event::RunFinished` on the terminal.
    pub(super) fn run_finished(&mut self, f: &RunFinished) {
        let (outcome, message, elapsed, rto) = (&f.outcome, &f.message, &f.elapsed, &f.rto);
        let (verdict, over_target, deviations) = (&f.verdict, &f.over_target, &f.deviations);
        self.line("");
        let resolved = *outcome == RunOutcome::Ended(crate::book::runbook::Outcome::Resolved);
        let missed = elapsed > rto;
        // Resolved with nothing verifying it, or late, is not a success to celebrate in
        // green.
        let unverified = resolved
            && deviations
                .iter()
                .any(|d| d.kind == crate::events::DeviationKind::Unverified);
        let said = if unverified {
            format!("{} (unverified)", outcome.as_str())
        } else {
            outcome.as_str().to_string()
        };
        let word = match (resolved, missed || unverified) {
            (true, false) => style(said).green().bold(),
            (true, true) => style(said).yellow().bold(),
            _ => style(said).red().bold(),
        };
        let timing = if missed {
            style(format!(
                " — RTO MISSED: {} over the {} RTO",
                fmt_secs(*elapsed - *rto),
                fmt_duration(*rto)
            ))
            .red()
            .bold()
            .to_string()
        } else {
            format!(" (RTO {})", fmt_duration(*rto))
        };
        self.line(&format!("run {word} after {}{timing}", fmt_secs(*elapsed)));
        for line in message.iter().flat_map(|m| m.lines()) {
            self.line(&format!("  {}", esc(line)));
        }
        for (step, took, target) in over_target {
            self.line(&format!(
                "  over target: {step} took {} (target {})",
                fmt_secs(*took),
                fmt_duration(*target)
            ));
        }
        if !self.decisions.is_empty() {
            self.line("  operator decisions:");
            for d in std::mem::take(&mut self.decisions) {
                self.line(&format!("    {d}"));
            }
        }
        for d in deviations {
            let detail = d.detail.as_deref().map(|t| format!(" ({t})")).unwrap_or_default();
            let allowed = if d.kind.allowed() {
                ""
            } else {
                " — fails a drill"
            };
            self.line(&format!(
                "  deviation: `{}` {}{detail}{allowed}",
                d.step,
                d.kind.as_str()
            ));
        }
        if let Some(v) = verdict {
            let word = if v.pass {
                style("PASS").green().bold()
            } else {
                style("FAIL").red().bold()
            };
            self.line(&format!("drill verdict: {word} — {}", v.reason));
        }
    }
}
