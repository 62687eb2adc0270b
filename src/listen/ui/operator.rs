//! What the operator does at a step's prompt, on the terminal: answers and decisions (kept for the
//! end summary) and a shell opened on the step's host.

use std::time::Duration;

use super::{Ui, fmt_secs};
use crate::secrets::escape::value as esc;

impl Ui {
    /// `Event::Answer`: shown in plain mode, kept for the end summary.
    pub(super) fn answer(&mut self, step: &Option<String>, question: &str, answer: &str) {
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

    /// `Event::Decision`: shown, and kept for the end summary.
    pub(super) fn decision(&mut self, step: &str, label: &str, goto: &str) {
        let line = format!(
            "{} {step}: decided \"{}\" → {goto}",
            self.position(step),
            esc(label)
        );
        self.line(&line);
        self.decisions.push(line.trim_start().to_string());
    }

    /// `Event::ShellOpened`.
    pub(super) fn shell_opened(&mut self, host: &str, cols: &u16, rows: &u16, shown_path: &str) {
        self.line(&format!(
            "    shell on {} ({cols}x{rows}), its output recorded to {}",
            esc(host),
            esc(shown_path)
        ));
        self.line("    `exit` or Ctrl-D comes back to this step's prompt");
    }

    /// `Event::ShellClosed`: how it ended, and where its recording is.
    pub(super) fn shell_closed(
        &mut self,
        duration: &Duration,
        exit: &Option<i32>,
        reason: &Option<String>,
        recording: &Option<crate::events::OutputRecord>,
        shown_path: &str,
    ) {
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

    /// `Event::HandedOff`: where the run stopped and the note, escaped (the note is the
    /// operator's text: no escape sequence of it reaches the terminal raw).
    pub(super) fn handed_off(&mut self, step: &Option<String>, note: &Option<String>) {
        let at = step
            .as_deref()
            .map(|s| format!(" at {} {}", self.position(s), esc(s)))
            .unwrap_or_default();
        self.line(&format!(
            "runbook: handed off{at}: nothing is running, the trail stays open"
        ));
        if let Some(note) = note {
            self.line(&format!("    note: {}", esc(note)));
        }
    }
}
