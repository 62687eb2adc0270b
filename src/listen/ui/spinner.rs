//! The spinners (a step's, with its time against its target and the run's against the RTO; the
//! wait for approvals) and the loud lines said from any thread above them.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use console::style;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use super::status_line::{self, loud};
use super::{Clock, fmt_secs, rich_terminal};
use crate::duration::format as fmt_duration;

/// The spinner drawn last: a line said from another thread (`shout`) suspends it.
static SPINNER: std::sync::Mutex<Option<ProgressBar>> = std::sync::Mutex::new(None);

/// Says a loud line now, from any thread (the RTO deadlines' timer): above the spinner if one
/// is drawn, with the local time in plain mode, like every status line. While a prompt waits
/// (its status line drawn), the line is shown on rows of its own above the status line, never
/// where the operator is typing, and printed in the flow when the prompt is over.
pub(crate) fn shout(text: &str) {
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

/// The status line while a step waits for approvals: how long it has waited of its timeout,
/// the RTO still ticking, and how to stop waiting.
pub(super) fn approval_spinner(clock: Clock, what: String, timeout: Duration) -> ProgressBar {
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

pub(super) fn spinner(clock: Clock, step: String) -> ProgressBar {
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
