//! A step's outcome from how its command ended and what its `expect` asks: the one place
//! that says `ok`, `failed`, `timeout`, `cancelled` or `lost`.

use crate::book::runbook::Step;
use crate::events::StepOutcome;
use crate::transport::Ending;

/// A step's outcome from how its command ended and what `expect` asks.
pub(super) fn judge(
    step: &Step,
    ending: &Ending,
    stdout: &[u8],
    stderr: &[u8],
    stop_word: &str,
) -> (StepOutcome, Option<i32>, Option<String>) {
    let code = match ending {
        Ending::Exited(code) => *code,
        Ending::Signaled(sig) => return (StepOutcome::Failed, None, Some(format!("killed by signal {sig}"))),
        Ending::TimedOut => {
            let limit = step
                .timeout
                .as_ref()
                .and_then(|d| d.get())
                .map(crate::duration::format)
                .unwrap_or_default();
            return (
                StepOutcome::TimedOut,
                None,
                Some(format!("killed at its {limit} timeout")),
            );
        }
        Ending::Cancelled => {
            return (
                StepOutcome::Cancelled,
                None,
                Some(format!("stopped by {stop_word}")),
            );
        }
        Ending::Lost(why) => {
            return (
                StepOutcome::Lost,
                None,
                Some(format!("connection lost: {why}; outcome unknown")),
            );
        }
    };
    let expect = step.expect.clone().unwrap_or_default();
    let exit_ok = match &expect.exit {
        Some(codes) => codes.accepts(code),
        None => code == 0,
    };
    if !exit_ok {
        return (
            StepOutcome::Failed,
            Some(code),
            Some("exit code not expected".into()),
        );
    }
    for (name, pattern, text) in [
        ("stdout", &expect.stdout, stdout),
        ("stderr", &expect.stderr, stderr),
    ] {
        if let Some(pattern) = pattern {
            // Without its trailing newline, so `^[0-9]+$` matches what `psql -tA` prints.
            let text = String::from_utf8_lossy(text);
            let text = text.trim_end_matches(['\n', '\r']);
            let matched = crate::book::patterns::is_match(&pattern.value, text);
            if !matched {
                return (
                    StepOutcome::Failed,
                    Some(code),
                    Some(format!("{name} does not match `{}`", pattern.value)),
                );
            }
        }
    }
    (StepOutcome::Ok, Some(code), None)
}
