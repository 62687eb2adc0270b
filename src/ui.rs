//! The operator's view of a run: listens to events and draws them on stderr, with a live
//! spinner (step time vs. target, run time vs. RTO) on a capable terminal, or plain status
//! lines when there is no TTY, `NO_COLOR` or `TERM=dumb` — so logs stay readable.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use console::style;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use crate::duration::format as fmt_duration;
use crate::events::{Event, RunOutcome, Stream};
use crate::secrets::escape::{text as esc_text, value as esc};

mod clock;
pub mod local_time;
mod prose;
pub mod recap;
mod status_line;
pub use clock::{Clock, SharedClock, Spent};
pub use status_line::StatusLine;

/// Whether the terminal can take a spinner and colours.
pub fn rich_terminal() -> bool {
    let term_ok = std::env::var("TERM")
        .map(|t| !t.is_empty() && t != "dumb")
        .unwrap_or(false);
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    std::io::stderr().is_terminal() && term_ok && !no_color
}

pub struct Ui {
    rich: bool,
    /// Set at the briefing; shared with the prompts' status line.
    clock: SharedClock,
    /// The most of the RTO announced spent (80%, breached): each is said loudly once.
    announced: Spent,
    /// Header lines of `run started` / `run resumed`, printed with the briefing that follows.
    header: Vec<String>,
    /// `(attempt, of)` of the next start, after a failed attempt that is retried.
    retrying: Option<(u32, u32)>,
    /// The main runbook's step ids, in order (from the briefing).
    steps: Vec<String>,
    /// Where each target resolves (from the briefing).
    destinations: Vec<crate::events::Destination>,
    /// A fleet host's output not yet ended by a newline.
    host_lines: std::collections::HashMap<String, Vec<u8>>,
    /// The fleet step running: its hosts' states, for the spinner.
    fleet: Option<FleetView>,
    bar: Option<ProgressBar>,
    /// A command's output since its last newline: shown when its line ends (or the step does),
    /// so that a line is never cut by the spinner nor the spinner glued to it (issue 25).
    partial: Vec<u8>,
    /// `[3/9]` of each step presented, by step id: a sub-run's steps have their own numbering.
    positions: std::collections::HashMap<String, String>,
    /// Every answer and decision of the operator, for the end summary.
    decisions: Vec<String>,
    /// The spinner is the wait for approvals: the step's own replaces it when it starts.
    awaiting_approval: bool,
}

impl Ui {
    pub fn new(clock: SharedClock) -> Ui {
        let rich = rich_terminal();
        console::set_colors_enabled_stderr(rich);
        Ui {
            rich,
            clock,
            announced: Spent::Under,
            header: Vec::new(),
            retrying: None,
            steps: Vec::new(),
            destinations: Vec::new(),
            host_lines: Default::default(),
            fleet: None,
            bar: None,
            partial: Vec::new(),
            positions: Default::default(),
            decisions: Vec::new(),
            awaiting_approval: false,
        }
    }

    /// A status line. Plain, it starts with the local time: a log read later (or a terminal
    /// scrolled back) says when each step began, ended and was still running.
    fn line(&mut self, text: &str) {
        if self.rich || text.is_empty() {
            self.raw_line(text);
        } else {
            let now = chrono::Local::now().format("%H:%M:%S");
            self.raw_line(&format!("{now} {text}"));
        }
    }

    fn raw_line(&mut self, text: &str) {
        // Output that never ended its line: on a line of its own before what comes next.
        let mut rest = std::mem::take(&mut self.partial);
        if !rest.is_empty() {
            rest.push(b'\n');
        }
        let print = || {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&rest);
            let _ = writeln!(err, "{text}");
        };
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// Says loudly, once each, that 80% of the RTO is spent and that it is breached: checked
    /// at every event (heartbeats included), so a long step cannot hide it.
    fn announce_budget(&mut self) {
        let Some(clock) = self.clock.get().cloned() else {
            return;
        };
        let spent = clock.spent();
        if spent <= self.announced {
            return;
        }
        self.announced = spent;
        // When it was crossed, not when noticed (the next event may come seconds later).
        let over = clock.run_elapsed().saturating_sub(clock.rto());
        let at =
            (chrono::Local::now() - chrono::Duration::from_std(over).unwrap_or_default()).format("%H:%M:%S");
        let rto = fmt_duration(clock.rto());
        let line = match spent {
            Spent::Under => return,
            Spent::Warning => style(format!(
                "⚠ 80% of the {rto} RTO is spent: {}",
                clock.budget()
            ))
            .yellow()
            .bold(),
            Spent::Breached => style(format!(
                "⚠⚠ RTO BREACHED at {at}: the {rto} RTO is spent; this incident is now over its recovery target"
            ))
            .red()
            .bold()
            .reverse(),
        };
        self.line(&line.to_string());
    }

    /// `[3/9]` of a step: as presented, else (a step resumed without being presented again)
    /// its place in the runbook.
    fn position(&self, step: &str) -> String {
        if let Some(p) = self.positions.get(step) {
            return p.clone();
        }
        match self.steps.iter().position(|s| s == step) {
            Some(i) => format!("[{}/{}]", i + 1, self.steps.len()),
            None => String::new(),
        }
    }

    /// A host label with where it resolves to and its `env` badge, as the briefing said.
    fn where_is(&self, label: &str) -> String {
        match self.destinations.iter().find(|d| d.label == label) {
            Some(d) if d.address != label && label != "local" => {
                format!("{label} = {}{}", d.address, badge(d.env.as_deref()))
            }
            Some(d) => format!("{label}{}", badge(d.env.as_deref())),
            None => label.to_string(),
        }
    }

    /// A runbook's Markdown prose, wrapped to the terminal at `indent` (escaped and styled
    /// by `prose`). A plain line starts with the time: the width leaves room for it.
    fn prose(&mut self, markdown: &str, indent: &str) {
        let stamp = if self.rich { 0 } else { "HH:MM:SS ".len() };
        let width = prose::terminal_width().saturating_sub(stamp);
        for l in prose::render(markdown, indent, width, self.rich) {
            self.line(&l);
        }
    }

    /// The run's header: what it is, where it will act, the clocks, the trail.
    fn briefing(&mut self, b: &crate::events::Briefing) {
        self.clock.set(Clock::new(b.rto, b.spent));
        self.steps = b.steps.clone();
        self.destinations = b.destinations.clone();
        let mut heading = format!(
            "{} ({}) · {} · RTO {}",
            esc(&b.title),
            b.runbook,
            b.mode.as_str(),
            fmt_duration(b.rto)
        );
        if let Some(clock) = self.clock.get().filter(|_| !b.spent.is_zero()) {
            heading.push_str(&format!(" · {}", clock.budget()));
        }
        self.line(&style(heading).bold().to_string());
        if let Some(d) = &b.description {
            self.prose(d, "  ");
        }
        for (t, url) in &b.links {
            self.line(&format!("  link: {} <{}>", esc(t), esc(url)));
        }
        for d in &b.destinations {
            if !d.members.is_empty() {
                // A fleet: each host as connected, one a line, so a wrong address is seen
                // before anything runs; a big fleet's first hosts, then how many more.
                self.line(&format!(
                    "  target {}: {}, {} hosts{}",
                    d.role,
                    esc(&d.label),
                    d.members.len(),
                    badge(d.env.as_deref())
                ));
                for line in fleet_lines(&d.members, &d.addresses) {
                    self.line(&line);
                }
                continue;
            }
            let at = if d.address == d.label || d.label == "local" {
                String::new()
            } else {
                format!(" → {}", d.address)
            };
            self.line(&format!(
                "  target {}: {}{at}{}",
                d.role,
                if d.label == "local" {
                    "local (this machine)"
                } else {
                    &d.label
                },
                badge(d.env.as_deref())
            ));
        }
        if let Some((after, to)) = &b.escalate {
            self.line(&format!(
                "  escalate: not resolved {} into the incident → call {}",
                fmt_duration(*after),
                esc(to)
            ));
        }
        self.line(&format!("  audit: {}", b.audit_file));
        for line in std::mem::take(&mut self.header) {
            self.line(&line);
        }
    }

    pub fn handle(&mut self, event: &Event) {
        if !matches!(event, Event::RunStarted { .. } | Event::RunResumed { .. }) {
            self.announce_budget();
        }
        match event {
            Event::Notice(text) => self.say(text),
            Event::RunStarted {
                since_offset, who, ..
            } => {
                // Shown with the briefing, which knows where each target resolves to.
                if !since_offset.is_zero() {
                    self.header.push(format!(
                        "  RTO clock started {} before launch (--since)",
                        fmt_secs(*since_offset)
                    ));
                }
                self.header.extend(signing_line(who));
            }
            Event::Briefing(b) => self.briefing(b),
            Event::LockTaken {
                path,
                previous: Some(h),
                stopped,
                ..
            } if !stopped.is_empty() => {
                let groups: Vec<String> = stopped.iter().map(i32::to_string).collect();
                self.line(&format!(
                    "  stopped what run {} ({}) left running on {} before taking it: process group {}",
                    h.run,
                    h.operator,
                    esc(path.rsplit_once(':').map_or(path.as_str(), |(host, _)| host)),
                    groups.join(", ")
                ));
            }
            Event::LockTaken { how, previous, .. } => match (how, previous) {
                (&"stale", Some(h)) => self.line(&format!(
                    "  took the lock of run {} ({}), whose process is gone",
                    h.run, h.operator
                )),
                (&"broken", Some(h)) => self.line(&format!(
                    "  broke the lock of run {} held by {} since {} (--break-lock, recorded)",
                    h.run, h.operator, h.since
                )),
                (&"reclaimed", Some(_)) => {
                    self.line("  took back this run's own lease from its earlier process, whose connection is dead")
                }
                (&"dead", Some(h)) => self.line(&format!(
                    "  took the lease of run {} ({}, on {}): it had sent no sign of life for 30 s, its connection is dead",
                    h.run, h.operator, h.machine
                )),
                _ => {}
            },
            Event::LeaseShared { host, with, .. } => self.line(&format!(
                "  {} and {} are one host (the same machine and account): one lease serves both",
                esc(with),
                esc(host)
            )),
            Event::RunResumed {
                operator,
                previous_operator,
                gap,
                shown: from,
                who,
                ..
            } => {
                let hand_off = if operator != previous_operator {
                    format!(" — hand-off from {previous_operator} to {operator}")
                } else {
                    String::new()
                };
                self.header.push(format!(
                    "  {} {from}, after a {} gap{hand_off}",
                    style("resumed").bold(),
                    fmt_secs(*gap)
                ));
                self.header.extend(signing_line(who));
            }
            Event::WalkEnded { .. } => {}
            Event::TargetConnected {
                host,
                host_key_added,
                reconnected,
                ..
            } => {
                if let Some(added) = host_key_added {
                    self.line(&format!(
                        "  {host}: new host key trusted (--accept-new-host-keys): {added}"
                    ));
                }
                if *reconnected {
                    self.line(&format!("  reconnected to {host}"));
                }
            }
            Event::StepPresented { .. } => self.step_presented(event),
            Event::Answer {
                step,
                question,
                answer,
            } => {
                if !self.rich {
                    self.line(&format!("    {question}: {answer}"));
                }
                let place = step
                    .as_deref()
                    .map(|s| format!("{} {s}: ", self.position(s)))
                    .unwrap_or_default();
                self.decisions
                    .push(format!("{place}{} → {}", esc(question), esc(answer)));
            }
            Event::RemoteProcess { .. } => {}
            Event::RemoteGroupChecked {
                step,
                host,
                pgid,
                alive,
                stopped,
            } => {
                let state = match (alive, stopped) {
                    (false, _) => "had ended",
                    (true, true) => "was still running: stopped",
                    (true, false) => "is STILL RUNNING there (left running, as asked)",
                };
                self.line(&format!(
                    "    {step}: its command on {host} (process group {pgid}) {state}"
                ));
            }
            Event::ShellOpened {
                host,
                cols,
                rows,
                shown_path,
                ..
            } => {
                self.line(&format!(
                    "    shell on {} ({cols}x{rows}), its output recorded to {}",
                    esc(host),
                    esc(shown_path)
                ));
                self.line("    `exit` or Ctrl-D comes back to this step's prompt");
            }
            Event::ShellClosed {
                duration,
                exit,
                reason,
                recording,
                shown_path,
                ..
            } => {
                let how = match (reason, exit) {
                    (Some(why), _) => format!(": {}", esc(why)),
                    (None, Some(code)) if *code != 0 => format!(" (exit {code})"),
                    _ => String::new(),
                };
                let size = recording
                    .as_ref()
                    .map(|r| format!(", {} bytes", r.size))
                    .unwrap_or_default();
                self.line(&format!(
                    "    shell closed after {}{how}; recording {}{size} (`runbook replay` plays it)",
                    fmt_secs(*duration),
                    esc(shown_path)
                ));
            }
            Event::Hangup { reason } => self.line(&format!("runbook: {reason}")),
            Event::Deviation(d) => {
                let detail = d.detail.as_deref().map(|t| format!(" ({t})")).unwrap_or_default();
                self.line(&format!(
                    "    {}",
                    style(format!("deviation: `{}` {}{detail}", d.step, d.kind.as_str())).yellow()
                ));
            }
            Event::Note { text, .. } => self.line(&format!("    note: {}", esc(text))),
            Event::Edit { after, .. } => self.line(&format!("    edited command: {}", esc(after))),
            Event::StepStarted { .. } => self.step_started(event),
            Event::Output {
                stream,
                bytes,
                host: None,
            } => self.output(*stream, bytes),
            Event::Output {
                bytes,
                host: Some(host),
                ..
            } => self.host_output(host, bytes, false),
            Event::FleetFinished { .. } => self.fleet_finished(event),
            Event::Heartbeat {
                step,
                elapsed,
                target,
            } => {
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
            Event::StepFinished { .. } => self.step_finished(event),
            Event::ApprovalRequested { .. } => self.approval_requested(event),
            Event::Approval {
                step,
                principal,
                key,
                approve,
                reason,
                ..
            } => {
                let word = if *approve {
                    style("approved").green().to_string()
                } else {
                    style("DENIED").red().bold().to_string()
                };
                let why = reason
                    .as_deref()
                    .map(|r| format!(": {}", esc(r)))
                    .unwrap_or_default();
                self.line(&format!(
                    "{} {step}: {word} by {} ({key}){why}",
                    self.position(step),
                    esc(principal)
                ));
            }
            Event::ApprovalRefused { step, file, why } => self.line(&format!(
                "{} {step}: {} {file}: {}",
                self.position(step),
                style("not counted:").yellow(),
                esc(why)
            )),
            Event::Retrying {
                step,
                next,
                of,
                delay,
            } => {
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
            Event::Decision { step, label, goto } => {
                let line = format!(
                    "{} {step}: decided \"{}\" → {goto}",
                    self.position(step),
                    esc(label)
                );
                self.line(&line);
                self.decisions.push(line.trim_start().to_string());
            }
            Event::RunFinished { .. } => self.run_finished(event),
        }
    }

    /// `Event::StepPresented` on the terminal.
    fn step_presented(&mut self, event: &Event) {
        let Event::StepPresented {
            step,
            position,
            total,
            title,
            kind,
            host,
            notes,
            links,
            body,
            vars,
            target,
            timeout,
            retry,
            approve,
        } = event
        else {
            return;
        };
        let position = format!("[{position}/{total}]");
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
        if let Some(notes) = notes {
            self.prose(notes, "    ");
        }
        for (t, url) in links {
            self.line(&format!("    link: {} <{}>", esc(t), esc(url)));
        }
        if let Some(body) = body {
            for l in esc_text(body).trim_end().lines() {
                self.line(&format!("    {} {l}", style("│").dim()));
            }
        }
        if !vars.is_empty() && *kind == "run" {
            let shown: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={}", one_line(v))).collect();
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
    fn step_started(&mut self, event: &Event) {
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

    /// `Event::FleetFinished` on the terminal.
    fn fleet_finished(&mut self, event: &Event) {
        let Event::FleetFinished {
            step,
            fleet,
            outcome,
            duration,
            ok,
            failed,
            not_started,
            times,
            target,
            visit,
            ..
        } = event
        else {
            return;
        };
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
            timing(*duration, *visit, *target),
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

    /// `Event::StepFinished` on the terminal.
    fn step_finished(&mut self, event: &Event) {
        let Event::StepFinished {
            step,
            host,
            outcome,
            exit,
            duration,
            target,
            reason,
            fleet,
            visit,
            ..
        } = event
        else {
            return;
        };
        if fleet.is_some() {
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
        } else if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let exit = exit.map(|c| format!(" (exit {c})")).unwrap_or_default();
        // A fleet's hosts: their own time; the fleet's line holds the step to its target.
        let timing = match fleet {
            Some(_) => fmt_secs(*duration),
            None => timing(*duration, *visit, *target),
        };
        let word = if outcome.succeeded() {
            style(outcome.as_str()).green()
        } else {
            style(outcome.as_str()).red()
        };
        let reason = reason
            .as_deref()
            .map(|r| format!(": {}", esc(r)))
            .unwrap_or_default();
        let position = self.position(step);
        let on = if fleet.is_some() {
            format!(" {host}")
        } else {
            String::new()
        };
        self.line(&format!(
            "{position} {step}:{on} {word}{exit}{reason} in {timing}"
        ));
    }

    /// `Event::ApprovalRequested` on the terminal.
    fn approval_requested(&mut self, event: &Event) {
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

    /// `Event::RunFinished` on the terminal.
    fn run_finished(&mut self, event: &Event) {
        let Event::RunFinished {
            outcome,
            message,
            elapsed,
            rto,
            verdict,
            over_target,
            deviations,
        } = event
        else {
            return;
        };
        self.line("");
        let resolved = *outcome == RunOutcome::Ended(crate::runbook::Outcome::Resolved);
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

    /// One more host of a fleet step started: the spinner counts them (plain: a line each).
    fn fleet_host_started(&mut self, step: &str, host: &str, fleet: &str) {
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

    /// A fleet host's output: whole lines, each prefixed with the host (`web-2 | ...`), so
    /// that hosts running at once never mix within a line. `flush`: its command ended.
    fn host_output(&mut self, host: &str, bytes: &[u8], flush: bool) {
        let pending = self.host_lines.entry(host.to_string()).or_default();
        pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            lines.push(line);
        }
        if flush && !pending.is_empty() {
            let mut rest = std::mem::take(pending);
            rest.push(b'\n');
            lines.push(rest);
        }
        let prefix = style(format!("{host} | ")).dim().to_string();
        for line in lines {
            let mut shown = prefix.clone().into_bytes();
            shown.extend_from_slice(&line);
            self.output(Stream::Stdout, &shown);
        }
    }

    /// A command's output (both streams interleaved on stderr, like a terminal), in whole
    /// lines printed above the spinner: a line that has not ended yet waits for its end, or
    /// for the next status line, or until it is too long to hold.
    fn output(&mut self, _stream: Stream, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        let whole = match self.partial.iter().rposition(|b| *b == b'\n') {
            Some(end) => end + 1,
            None if self.partial.len() >= LONGEST_HELD_LINE => self.partial.len(),
            None => return,
        };
        let lines: Vec<u8> = self.partial.drain(..whole).collect();
        let write = || {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&lines);
            let _ = err.flush();
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// Prints a line outside of events (pre-flight, plans, hints, a script to paste): as is.
    pub fn say(&mut self, text: &str) {
        // Approved, the step is run by hand: the wait is over.
        if std::mem::take(&mut self.awaiting_approval)
            && let Some(bar) = self.bar.take()
        {
            bar.finish_and_clear();
        }
        self.raw_line(text);
    }

    /// Puts the terminal back as it was: no spinner, a visible cursor.
    pub fn restore(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.rich {
            let _ = console::Term::stderr().show_cursor();
        }
    }
}

impl Default for Ui {
    fn default() -> Self {
        Ui::new(SharedClock::default())
    }
}

/// The live state of a fleet step, for its spinner.
struct FleetView {
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
    fn message(&self) -> String {
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

/// Up to this many hosts of a fleet are listed in the header; a bigger fleet shows its first
/// [`FLEET_SHOWN`] and a count of the rest.
const FLEET_LISTED: usize = 10;
const FLEET_SHOWN: usize = 8;

/// The header's lines for a fleet's hosts: `web-1 = deploy@10.0.1.11:22`, each as connected.
fn fleet_lines(members: &[String], addresses: &[String]) -> Vec<String> {
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

/// ` [PROD]` (loud) or ` [staging]`: the inventory's `env` of a host, beside its name.
fn badge(env: Option<&str>) -> String {
    match env {
        Some(env @ ("prod" | "production")) => format!(
            " {}",
            style(format!(" {} ", env.to_uppercase())).white().on_red().bold()
        ),
        Some(env) => format!(" {}", style(format!("[{}]", esc(env))).yellow()),
        None => String::new(),
    }
}

/// `signed by ...`, or the loud line of an unsigned trail.
fn signing_line(who: &crate::events::Who) -> Option<String> {
    match (&who.signed_by, &who.unsigned) {
        (Some((key, origin)), _) => Some(format!("  signed by {key} ({origin})")),
        (None, Some(why)) => Some(format!(
            "  {}: {why} (pass --signing-key, or load a key into ssh-agent)",
            style("UNSIGNED trail").yellow().bold()
        )),
        (None, None) => None,
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        self.restore();
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

pub use crate::duration::format_secs as fmt_secs;

/// A line of output longer than this is shown before its end comes.
const LONGEST_HELD_LINE: usize = 64 * 1024;

/// The spinner drawn last: a line said from another thread (`shout`) suspends it.
static SPINNER: std::sync::Mutex<Option<ProgressBar>> = std::sync::Mutex::new(None);

/// A loud line, as [`shout`] draws it on a capable terminal.
fn loud(text: &str) -> String {
    style(text).red().bold().reverse().to_string()
}

/// Says a loud line now, from any thread (the RTO deadlines' timer): above the spinner if one
/// is drawn, with the local time in plain mode, like every status line. While a prompt waits
/// (its status line drawn), the line is shown on rows of its own above the status line, never
/// where the operator is typing, and printed in the flow when the prompt is over.
pub fn shout(text: &str) {
    if status_line::hold(text) {
        return;
    }
    let rich = rich_terminal();
    let line = if rich {
        loud(text)
    } else {
        format!("{} {text}", chrono::Local::now().format("%H:%M:%S"))
    };
    let print = || {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    };
    let bar = SPINNER
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .filter(|b| !b.is_finished());
    match bar {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// A finished step's time: its command's, and the step's (from being presented, as its review
/// counts it) against its target: `2.0s (step 3.1s of 30s)`, `2.0s — the step took 41s, over
/// its 30s target`.
fn timing(ran: Duration, step: Option<Duration>, target: Option<Duration>) -> String {
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

/// `1 approval`, `2 approvals`.
fn approvals_word(quorum: u32) -> String {
    if quorum == 1 {
        "1 approval".to_string()
    } else {
        format!("{quorum} approvals")
    }
}

/// The status line while a step waits for approvals: how long it has waited of its timeout,
/// the RTO still ticking, and how to stop waiting.
fn approval_spinner(clock: Clock, what: String, timeout: Duration) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    *SPINNER.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
    let since = std::time::Instant::now();
    let style = ProgressStyle::with_template("{spinner} {msg}  {waited}  {run_time}  Ctrl-C to stop waiting")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key("waited", move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(
                w,
                "waited {} of {}",
                fmt_secs(since.elapsed()),
                fmt_duration(timeout)
            );
        })
        .with_key(
            "run_time",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&clock.budget_styled());
            },
        );
    bar.set_style(style);
    bar.set_message(what);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn spinner(clock: Clock, step: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    *SPINNER.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
    let step_clock = clock.clone();
    let run_clock = clock;
    let style = ProgressStyle::with_template("{spinner} {msg}  {step_time}  {run_time}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key(
            "step_time",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let elapsed = step_clock.step_elapsed();
                let target = step_clock.step_target_ms.load(Ordering::Relaxed);
                let text = if target == 0 {
                    format!("step {}", fmt_secs(elapsed))
                } else if elapsed.as_millis() as u64 > target {
                    style(format!(
                        "step {} ⚠ over its {} target",
                        fmt_secs(elapsed),
                        fmt_duration(Duration::from_millis(target))
                    ))
                    .yellow()
                    .bold()
                    .to_string()
                } else {
                    format!(
                        "step {} / {}",
                        fmt_secs(elapsed),
                        fmt_duration(Duration::from_millis(target))
                    )
                };
                let _ = w.write_str(&text);
            },
        )
        .with_key(
            "run_time",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let elapsed = run_clock.run_elapsed();
                let rto = run_clock.rto();
                let text = if elapsed > rto {
                    style(format!(
                        "run {} ⚠ RTO {} exceeded",
                        fmt_secs(elapsed),
                        fmt_duration(rto)
                    ))
                    .red()
                    .bold()
                    .to_string()
                } else {
                    format!("run {} / RTO {}", fmt_secs(elapsed), fmt_duration(rto))
                };
                let _ = w.write_str(&text);
            },
        );
    bar.set_style(style);
    bar.set_message(step);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use super::{FLEET_LISTED, FLEET_SHOWN, fleet_lines, one_line};

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

    #[test]
    fn env_values_stay_on_one_line() {
        assert_eq!(one_line("a\nb"), "a\\nb");
        let long = "x".repeat(100);
        assert_eq!(one_line(&long), format!("{}…", "x".repeat(60)));
        assert_eq!(one_line("ünïcödé"), "ünïcödé");
    }
}
