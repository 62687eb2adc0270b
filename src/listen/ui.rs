//! The operator's view of a run: listens to events and draws them on stderr, with a live
//! spinner (step time vs. target, run time vs. RTO) on a capable terminal, or plain status
//! lines when there is no TTY, `NO_COLOR` or `TERM=dumb` — so logs stay readable.
//!
//! `Ui::handle` hands each event to the file of its concern: `header` (the briefing and what is
//! said with it), `step`, `fleet`, `approval`, `operator` (answers, decisions, a shell),
//! `output` (commands' lines) and `summary` (the end of the run); `spinner` draws the spinners
//! and the loud lines said from other threads.

use std::io::{IsTerminal, Write};

use console::style;
use indicatif::ProgressBar;

use crate::duration::format as fmt_duration;
use crate::events::Event;
use crate::secrets::escape::value as esc;

mod approval;
mod clock;
mod fleet;
mod guard;
mod header;
pub(crate) mod local_time;
mod operator;
mod output;
mod prose;
pub(crate) mod recap;
mod spinner;
mod status_line;
mod step;
mod summary;
pub(crate) use clock::{Clock, SharedClock, Spent};
use fleet::FleetView;
pub(crate) use spinner::shout;
pub(crate) use status_line::StatusLine;

/// Whether the terminal can take a spinner and colours.
pub(crate) fn rich_terminal() -> bool {
    let term_ok = std::env::var("TERM")
        .map(|t| !t.is_empty() && t != "dumb")
        .unwrap_or(false);
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    std::io::stderr().is_terminal() && term_ok && !no_color
}

pub(crate) struct Ui {
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
    /// Shows nothing: a test case's walk (`runbook test`) is judged, not watched.
    muted: bool,
}

impl Ui {
    pub(crate) fn new(clock: SharedClock) -> Ui {
        let rich = rich_terminal();
        console::set_colors_enabled_stderr(rich);
        let mut ui = Ui::new_plain(clock);
        ui.rich = rich;
        ui
    }

    fn new_plain(clock: SharedClock) -> Ui {
        Ui {
            rich: false,
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
            muted: false,
        }
    }

    /// A terminal view that shows nothing, and leaves the terminal's colours alone.
    pub(crate) fn muted() -> Ui {
        let mut ui = Ui::new_plain(SharedClock::default());
        ui.muted = true;
        ui
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
        if self.muted {
            return;
        }
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

    /// A runbook's Markdown prose, wrapped to the terminal at `indent` (escaped and styled
    /// by `prose`). A plain line starts with the time: the width leaves room for it.
    fn prose(&mut self, markdown: &str, indent: &str) {
        let stamp = if self.rich { 0 } else { "HH:MM:SS ".len() };
        let width = prose::terminal_width().saturating_sub(stamp);
        for l in prose::render(markdown, indent, width, self.rich) {
            self.line(&l);
        }
    }

    pub(crate) fn handle(&mut self, event: &Event) {
        if self.muted {
            return;
        }
        if !matches!(event, Event::RunStarted { .. } | Event::RunResumed { .. }) {
            self.announce_budget();
        }
        match event {
            Event::Notice(text) => self.say(text),
            Event::RunStarted {
                since_offset, who, ..
            } => self.run_started(since_offset, who),
            Event::Briefing(b) => self.briefing(b),
            Event::LockTaken { .. } => self.lock_taken(event),
            Event::LeaseShared { host, with, .. } => self.lease_shared(host, with),
            Event::RunResumed {
                operator,
                previous_operator,
                gap,
                shown,
                who,
                ..
            } => self.run_resumed(operator, previous_operator, gap, shown, who),
            Event::WalkEnded { .. } => {}
            Event::TargetConnected {
                host,
                host_key_added,
                reconnected,
                ..
            } => self.target_connected(host, host_key_added, reconnected),
            Event::StepPresented(presented) => self.step_presented(presented),
            Event::Answer {
                step,
                question,
                answer,
            } => self.answer(step, question, answer),
            Event::RemoteProcess { .. } => {}
            Event::RemoteGroupChecked(checked) => self.remote_group_checked(checked),
            Event::ShellOpened {
                host,
                cols,
                rows,
                shown_path,
                ..
            } => self.shell_opened(host, cols, rows, shown_path),
            Event::ShellClosed {
                duration,
                exit,
                reason,
                recording,
                shown_path,
                ..
            } => self.shell_closed(duration, exit, reason, recording, shown_path),
            Event::Hangup { reason } => self.line(&format!("runbook: {reason}")),
            Event::Guard(g) => self.guard(g),
            Event::AlertResolved { fingerprint, before } => self.line(&format!(
                "{} {}",
                style("ALERT RESOLVED:").green().bold(),
                esc(&format!(
                    "alert {fingerprint} resolved: the run stops here{}, and goes to its cleanup",
                    before.as_deref().map(|b| format!(" (before `{b}`)")).unwrap_or_default()
                ))
            )),
            // Said loudly when it happened (`mirror::Mirror`); recorded now.
            Event::MirrorLost { .. } => {}
            Event::MirrorCaughtUp {
                audit_host, bytes, files, ..
            } => self.line(&format!(
                "runbook: the audit host {audit_host} is back: {bytes} bytes of trail and {files} file(s) sent, its copy is whole again"
            )),
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
            Event::FleetFinished(finished) => self.fleet_finished(finished),
            Event::Heartbeat {
                step,
                elapsed,
                target,
            } => self.heartbeat(step, elapsed, target),
            Event::StepFinished(finished) => self.step_finished(finished),
            Event::ApprovalRequested { .. } => self.approval_requested(event),
            Event::Approval(answer) => self.approval(answer),
            Event::ApprovalRefused { step, file, why } => self.approval_refused(step, file, why),
            Event::Retrying {
                step,
                next,
                of,
                delay,
            } => self.retrying(step, next, of, delay),
            Event::Decision { step, label, goto } => self.decision(step, label, goto),
            Event::RunFinished(finished) => self.run_finished(finished),
            Event::HandedOff { step, note } => self.handed_off(step, note),
        }
    }

    /// Prints a line outside of events (pre-flight, plans, hints, a script to paste): as is.
    pub(crate) fn say(&mut self, text: &str) {
        // Approved, the step is run by hand: the wait is over.
        if std::mem::take(&mut self.awaiting_approval)
            && let Some(bar) = self.bar.take()
        {
            bar.finish_and_clear();
        }
        self.raw_line(text);
    }

    /// Puts the terminal back as it was: no spinner, a visible cursor.
    pub(crate) fn restore(&mut self) {
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

impl Drop for Ui {
    fn drop(&mut self) {
        self.restore();
    }
}

pub(crate) use crate::duration::format_elapsed as fmt_secs;
