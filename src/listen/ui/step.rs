//! A step on the terminal: presented (what it does, where, its limits), started (its spinner or
//! a line), still running, retried, finished with its time against its target, and its remote
//! command checked after a lost connection.

use std::time::Duration;

use console::style;

use super::spinner::spinner;
use super::{Ui, approval::approvals_word, fmt_secs};
use crate::duration::format as fmt_duration;
use crate::events::{Event, RemoteGroupChecked, StepFinished, StepPresented};
use crate::secrets::escape::{text as esc_text, value as esc};

impl Ui {
    /// `Event::StepPresented` on the terminal.
    pub(super) fn step_presented(&mut self, p: &StepPresented) {
        let (step, title, kind, host) = (&p.step, &p.title, &p.kind, &p.host);
        let (target, timeout, retry, approve) = (&p.target, &p.timeout, &p.retry, &p.approve);
        let position = format!("[{}/{}]", p.position, p.total);
        self.positions.insert(step.clone(), position.clone());
        // The step's time runs from here, as its review counts it: reading and deciding
        // are held against its target like its attempts and their delays.
        if let Some(clock) = self.clock.get() {
            clock.step_started(*target);
        }
        self.line("");
        let place = if *kind == "run" {
            format!("({step}, on {})", self.where_is(host))
        } else {
            format!("({step}, {kind})")
        };
        self.line(&format!(
            "{} {} {}",
            style(&position).cyan().bold(),
            style(esc(title)).bold(),
            style(place).dim()
        ));
        // Everything below comes from the runbook or from variables: printed with its
        // control characters escaped, never as terminal commands.
        if let Some(notes) = &p.notes {
            self.prose(notes, "    ");
        }
        for (t, url) in &p.links {
            self.line(&format!("    link: {} <{}>", esc(t), esc(url)));
        }
        if let Some(body) = &p.body {
            for l in esc_text(body).trim_end().lines() {
                self.line(&format!("    {} {l}", style("│").dim()));
            }
        }
        if *kind == "run" && p.vars.iter().next().is_some() {
            let shown: Vec<String> = (p.vars.masked().iter())
                .map(|(k, v)| format!("{k}={}", one_line(v)))
                .collect();
            self.line(&format!(
                "    {}",
                style(format!("env: {}", shown.join(" "))).dim()
            ));
        }
        // What will happen to a slow or failing command, said before it runs.
        let mut facts = Vec::new();
        if let Some(t) = timeout {
            facts.push(format!("killed after {}", fmt_duration(*t)));
        }
        if let Some((attempts, delay)) = retry.filter(|(n, _)| *n > 1) {
            facts.push(if delay.is_zero() {
                format!("up to {attempts} attempts")
            } else {
                format!("up to {attempts} attempts, {} apart", fmt_duration(delay))
            });
        }
        if let Some(t) = target {
            facts.push(format!("step target {}", fmt_duration(*t)));
        }
        // Before it runs, so a colleague can be paged while the operator reads it.
        if let Some((quorum, timeout)) = approve {
            self.line(&format!(
                "    {}",
                style(format!(
                    "needs {} by another person before it runs (two-person rule; waits up to {}): page an approver now",
                    approvals_word(*quorum),
                    fmt_duration(*timeout)
                ))
                .yellow()
            ));
        }
        let clock = self.clock.get().cloned();
        if let Some(clock) = &clock {
            facts.push(String::new());
            let mut line = style(facts.join(" · ")).dim().to_string();
            line.push_str(&clock.budget_styled());
            self.line(&format!("    {line}"));
        } else if !facts.is_empty() {
            self.line(&format!("    {}", style(facts.join(" · ")).dim()));
        }
    }

    /// `Event::StepStarted` on the terminal.
    pub(super) fn step_started(&mut self, event: &Event) {
        let Event::StepStarted {
            step,
            host,
            attempt,
            spinner: shows_spinner,
            fleet,
            ..
        } = event
        else {
            return;
        };
        // The step's own spinner replaces the wait's (for approvals, a retry's delay);
        // a fleet's hosts after the first share the fleet's.
        self.awaiting_approval = false;
        if (fleet.is_none() || self.fleet.is_none())
            && let Some(bar) = self.bar.take()
        {
            bar.finish_and_clear();
        }
        if let Some(fleet) = fleet {
            return self.fleet_host_started(step, host, fleet);
        }
        let retried = self.retrying.take();
        let again = match retried {
            Some((n, of)) => format!(" (attempt {n}/{of})"),
            // Run again by the operator's choice: the trail's attempt number counts
            // every run of the step (`attempt 6` of 5 read as a broken retry policy).
            None if *attempt > 1 => " (again)".to_string(),
            None => String::new(),
        };
        if !*shows_spinner {
            // A prompt or a sub-run's own steps come next; a spinner would draw over them.
        } else if self.rich {
            self.bar = self
                .clock
                .get()
                .cloned()
                .map(|clock| spinner(clock, format!("{step}{again}")));
        } else {
            self.line(&format!(
                "{} {step}: started on {host}{again}",
                self.position(step)
            ));
        }
    }

    /// `Event::Heartbeat`: in plain mode, a line that the step is still running.
    pub(super) fn heartbeat(&mut self, step: &str, elapsed: &Duration, target: &Option<Duration>) {
        if self.rich {
            return;
        }
        let of_target = target
            .map(|t| format!(" of its {} target", fmt_secs(t)))
            .unwrap_or_default();
        let rto = match self.clock.get() {
            Some(clock) => format!(", {}", clock.budget()),
            None => String::new(),
        };
        self.line(&format!(
            "{} {step}: still running, {}{of_target}{rto}",
            self.position(step),
            fmt_secs(*elapsed)
        ));
    }

    /// `Event::Retrying`: the failed attempt, and the wait before the next (a spinner of its own).
    pub(super) fn retrying(&mut self, step: &str, next: &u32, of: &u32, delay: &Duration) {
        let wait = if delay.is_zero() {
            "now".to_string()
        } else {
            format!("in {}", fmt_duration(*delay))
        };
        self.line(&format!(
            "{} {step}: {}",
            self.position(step),
            style(format!(
                "attempt {}/{of} failed; retrying {wait} (attempt {next}/{of})",
                next - 1
            ))
            .yellow()
        ));
        self.retrying = Some((*next, *of));
        // The wait ticks too: the step's time runs on, and the way out is said.
        if let (true, false, Some(clock)) = (self.rich, delay.is_zero(), self.clock.get().cloned()) {
            if let Some(bar) = self.bar.take() {
                bar.finish_and_clear();
            }
            self.bar = Some(spinner(
                clock,
                format!("{step}: attempt {next}/{of} {wait}, Ctrl-C to stop waiting"),
            ));
        }
    }

    /// `Event::StepFinished` on the terminal.
    pub(super) fn step_finished(&mut self, f: &StepFinished) {
        let (step, host, outcome) = (&f.step, &f.host, f.outcome);
        if f.fleet.is_some() {
            self.fleet_host_finished(host, &outcome);
        } else if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let exit = f.exit.map(|c| format!(" (exit {c})")).unwrap_or_default();
        // A fleet's hosts: their own time; the fleet's line holds the step to its target.
        let timing = match f.fleet {
            Some(_) => fmt_secs(f.duration),
            None => timing(f.duration, f.visit, f.target),
        };
        let word = if outcome.succeeded() {
            style(outcome.as_str()).green()
        } else {
            style(outcome.as_str()).red()
        };
        let reason = (f.reason.as_deref())
            .map(|r| format!(": {}", esc(r)))
            .unwrap_or_default();
        let position = self.position(step);
        let on = match f.fleet {
            Some(_) => format!(" {host}"),
            None => String::new(),
        };
        self.line(&format!(
            "{position} {step}:{on} {word}{exit}{reason} in {timing}"
        ));
    }

    /// `Event::RemoteGroupChecked`: whether a step's command was still running on its host.
    pub(super) fn remote_group_checked(&mut self, c: &RemoteGroupChecked) {
        let (step, host, pgid) = (&c.step, &c.host, c.pgid);
        let state = match (c.alive, c.stopped) {
            (false, _) => "had ended",
            (true, true) => "was still running: stopped",
            (true, false) => "is STILL RUNNING there (left running, as asked)",
        };
        self.line(&format!(
            "    {step}: its command on {host} (process group {pgid}) {state}"
        ));
    }
}

/// A finished step's time: its command's, and the step's (from being presented, as its review
/// counts it) against its target: `2.0s (step 3.1s of 30s)`, `2.0s — the step took 41s, over
/// its 30s target`.
pub(super) fn timing(ran: Duration, step: Option<Duration>, target: Option<Duration>) -> String {
    let Some(target) = target else {
        return fmt_secs(ran);
    };
    let step = step.unwrap_or(ran).max(ran);
    if step > target {
        format!(
            "{} — the step took {}, over its {} target",
            fmt_secs(ran),
            fmt_secs(step),
            fmt_duration(target)
        )
    } else {
        format!(
            "{} (step {} of {})",
            fmt_secs(ran),
            fmt_secs(step),
            fmt_duration(target)
        )
    }
}

/// A variable's value on the one `env:` line: control characters (newlines too) escaped,
/// long values cut.
fn one_line(value: &str) -> String {
    const MAX: usize = 60;
    let flat = esc(value).into_owned();
    match flat.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn env_values_stay_on_one_line() {
        assert_eq!(one_line("a\nb"), "a\\nb");
        let long = "x".repeat(100);
        assert_eq!(one_line(&long), format!("{}…", "x".repeat(60)));
        assert_eq!(one_line("ünïcödé"), "ünïcödé");
    }
}
