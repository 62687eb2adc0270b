//! A fleet step on the terminal: its hosts listed in the header, one spinner counting the hosts
//! running, ok and failed, and the fleet's line at the end with who failed how and the spread.

use console::style;

use super::spinner::spinner;
use super::step::timing;
use super::{Ui, fmt_secs};
use crate::events::{FleetFinished, StepOutcome};
use crate::secrets::escape::value as esc;

/// The live state of a fleet step, for its spinner.
pub(super) struct FleetView {
    step: String,
    fleet: String,
    again: String,
    /// The fleet's size; 0 when not known (a sub-run's fleet).
    total: usize,
    started: usize,
    running: usize,
    ok: usize,
    failed: usize,
}

impl FleetView {
    pub(super) fn message(&self) -> String {
        let mut text = format!(
            "{}{} on {}: {} running · {} ok · {} failed",
            self.step, self.again, self.fleet, self.running, self.ok, self.failed
        );
        if self.total > self.started {
            text.push_str(&format!(" · {} not started", self.total - self.started));
        }
        text
    }
}

impl Ui {
    /// One more host of a fleet step started: the spinner counts them (plain: a line each).
    pub(super) fn fleet_host_started(&mut self, step: &str, host: &str, fleet: &str) {
        let again = self.retrying.take();
        if self.fleet.as_ref().is_none_or(|v| v.step != step) {
            let total = self
                .destinations
                .iter()
                .find(|d| d.label == fleet)
                .map(|d| d.members.len())
                .unwrap_or(0);
            self.fleet = Some(FleetView {
                step: step.to_string(),
                fleet: fleet.to_string(),
                again: again
                    .map(|(n, of)| format!(" (attempt {n}/{of})"))
                    .unwrap_or_default(),
                total,
                started: 0,
                running: 0,
                ok: 0,
                failed: 0,
            });
            if let (true, Some(view)) = (self.rich, &self.fleet) {
                self.bar = self
                    .clock
                    .get()
                    .cloned()
                    .map(|clock| spinner(clock, view.message()));
            }
        }
        let Some(view) = self.fleet.as_mut() else {
            return;
        };
        view.started += 1;
        view.running += 1;
        let message = view.message();
        match &self.bar {
            Some(bar) => bar.set_message(message),
            None => {
                let line = format!("{} {step}: started on {host} ({fleet})", self.position(step));
                self.line(&line);
            }
        }
    }

    /// One host of a fleet step ended: its output's last line, and the spinner's counts.
    pub(super) fn fleet_host_finished(&mut self, host: &str, outcome: &StepOutcome) {
        self.host_output(host, b"", true);
        if let Some(view) = self.fleet.as_mut() {
            view.running = view.running.saturating_sub(1);
            if outcome.succeeded() {
                view.ok += 1;
            } else {
                view.failed += 1;
            }
            if let Some(bar) = &self.bar {
                bar.set_message(view.message());
            }
        }
    }

    /// `Event::FleetFinished` on the terminal.
    pub(super) fn fleet_finished(&mut self, f: &FleetFinished) {
        let (step, fleet, outcome) = (&f.step, &f.fleet, &f.outcome);
        let (ok, failed, not_started, times) = (&f.ok, &f.failed, &f.not_started, &f.times);
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.fleet = None;
        let word = if outcome.succeeded() {
            style(outcome.as_str()).green()
        } else {
            style(outcome.as_str()).red()
        };
        let position = self.position(step);
        // "failed on web-1,web-2,web-3" read as if all three had failed (issue 25): the
        // count says on how many hosts the word holds.
        let total = ok.len() + failed.len() + not_started.len();
        let held = if outcome.succeeded() {
            ok.len()
        } else {
            failed.len()
        };
        self.line(&format!(
            "{position} {step}: {word} on {held} of {total} hosts of {fleet} in {} — {} ok, {} failed, {} not started",
            timing(f.duration, f.visit, f.target),
            ok.len(),
            failed.len(),
            not_started.len()
        ));
        // The per-host table: who failed how, who never started, and the spread.
        for (host, how) in failed {
            self.line(&format!("    {} {host}: {}", style("✗").red(), how.as_str()));
        }
        if !not_started.is_empty() {
            self.line(&format!("    not started: {}", not_started.join(", ")));
        }
        if let (Some(fast), Some(slow)) = (
            times.iter().min_by_key(|(_, d)| *d),
            times.iter().max_by_key(|(_, d)| *d),
        ) && times.len() > 1
        {
            self.line(&format!(
                "    fastest {} {}, slowest {} {}",
                fast.0,
                fmt_secs(fast.1),
                slow.0,
                fmt_secs(slow.1)
            ));
        }
    }
}

/// Up to this many hosts of a fleet are listed in the header; a bigger fleet shows its first
/// [`FLEET_SHOWN`] and a count of the rest.
const FLEET_LISTED: usize = 10;
const FLEET_SHOWN: usize = 8;

/// The header's lines for a fleet's hosts: `web-1 = deploy@10.0.1.11:22`, each as connected.
pub(super) fn fleet_lines(members: &[String], addresses: &[String]) -> Vec<String> {
    let shown = if members.len() > FLEET_LISTED {
        FLEET_SHOWN
    } else {
        members.len()
    };
    let mut lines: Vec<String> = members
        .iter()
        .zip(addresses.iter().map(Some).chain(std::iter::repeat(None)))
        .take(shown)
        .map(|(m, a)| match a {
            Some(a) if a != m => format!("    {} = {}", esc(m), esc(a)),
            _ => format!("    {}", esc(m)),
        })
        .collect();
    if members.len() > shown {
        lines.push(format!(
            "    … and {} more ({} … {})",
            members.len() - shown,
            esc(&members[shown]),
            esc(&members[members.len() - 1])
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::{FLEET_LISTED, FLEET_SHOWN, fleet_lines};

    #[test]
    fn a_big_fleet_lists_its_first_hosts_then_a_count() {
        let members: Vec<String> = (1..=50).map(|i| format!("web-{i}")).collect();
        let addresses: Vec<String> = (1..=50).map(|i| format!("d@10.0.0.{i}:22")).collect();
        let lines = fleet_lines(&members, &addresses);
        assert_eq!(lines.len(), FLEET_SHOWN + 1, "{lines:?}");
        assert_eq!(lines[0], "    web-1 = d@10.0.0.1:22");
        assert_eq!(lines[FLEET_SHOWN], "    … and 42 more (web-9 … web-50)");
        let lines = fleet_lines(&members[..FLEET_LISTED], &addresses[..FLEET_LISTED]);
        assert_eq!(lines.len(), FLEET_LISTED, "{lines:?}");
        assert_eq!(lines[9], "    web-10 = d@10.0.0.10:22");
    }
}
