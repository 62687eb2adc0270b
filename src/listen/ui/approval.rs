//! The two-person rule on the terminal: the wait for approvals (what to tell the approver, a
//! spinner of its own), each approval or refusal, and signatures that do not count.

use console::style;

use super::Ui;
use super::spinner::approval_spinner;
use crate::duration::format as fmt_duration;
use crate::events::{Answer, Event};
use crate::secrets::escape::value as esc;

impl Ui {
    /// `Event::ApprovalRequested` on the terminal.
    pub(super) fn approval_requested(&mut self, event: &Event) {
        let Event::ApprovalRequested {
            step,
            request,
            quorum,
            timeout,
            ..
        } = event
        else {
            return;
        };
        let people = approvals_word(*quorum);
        // The step fails at a time the operator can tell the approver.
        let fails_at =
            (chrono::Local::now() + chrono::Duration::from_std(*timeout).unwrap_or_default()).format("%H:%M");
        self.line(&format!(
            "{} {step}: {} (two-person rule; the step fails at {fails_at}, after {}). Another person runs:\n\n    runbook approve {request}\n",
            self.position(step),
            style(format!("waiting for {people}")).yellow().bold(),
            fmt_duration(*timeout)
        ));
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        match self.clock.get().cloned() {
            Some(clock) if self.rich => {
                self.awaiting_approval = true;
                self.bar = Some(approval_spinner(
                    clock,
                    format!("{step}: waiting for {people}"),
                    *timeout,
                ));
            }
            _ => self.line(&format!("{} {step}: Ctrl-C to stop waiting", self.position(step))),
        }
    }

    /// `Event::Approval`: an approver's answer.
    pub(super) fn approval(&mut self, a: &Answer) {
        let word = if a.approve {
            style("approved").green().to_string()
        } else {
            style("DENIED").red().bold().to_string()
        };
        let why = (a.reason.as_deref())
            .map(|r| format!(": {}", esc(r)))
            .unwrap_or_default();
        let (step, key) = (&a.step, &a.key);
        self.line(&format!(
            "{} {step}: {word} by {} ({key}){why}",
            self.position(step),
            esc(&a.principal)
        ));
    }

    /// `Event::ApprovalRefused`: a signature that does not count.
    pub(super) fn approval_refused(&mut self, step: &str, file: &str, why: &str) {
        self.line(&format!(
            "{} {step}: {} {file}: {}",
            self.position(step),
            style("not counted:").yellow(),
            esc(why)
        ));
    }
}

/// `1 approval`, `2 approvals`.
pub(super) fn approvals_word(quorum: u32) -> String {
    if quorum == 1 {
        "1 approval".to_string()
    } else {
        format!("{quorum} approvals")
    }
}
