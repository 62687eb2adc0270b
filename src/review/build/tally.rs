//! The review of a run kept as its trail is written: what the terminal and the seal count.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::super::OverTarget;
use super::finish::over_target;
use super::{Builder, Integrity};
use crate::audit::record::Line;

/// The review of a run kept as its trail is written (issue 25: the end of a run said a step
/// took 22 s, its review 40.5 s). The terminal and the seal count each step's time and what
/// went over its target with this code, the code of `runbook review`.
pub(crate) struct Tally(Builder);

impl Default for Tally {
    fn default() -> Tally {
        Tally(Builder::new("", Integrity::Incomplete { torn_tail: false }))
    }
}

impl Tally {
    /// The lines of a trail so far (a resumed run's), then those written from here on.
    pub(crate) fn of_file(path: &Path) -> Tally {
        let mut tally = Tally::default();
        if let Ok(file) = File::open(path) {
            let mut reader = BufReader::new(file);
            let mut buf = Vec::new();
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) && buf.last() == Some(&b'\n') {
                tally.feed(&buf);
                buf.clear();
            }
        }
        tally
    }

    /// One line of the trail, as written.
    pub(crate) fn feed(&mut self, line: &[u8]) {
        if let Some(line) = Line::decode(line.trim_ascii_end()) {
            self.0.feed(line);
        }
    }

    /// The time of `step`'s visit so far (to the last line), in milliseconds, when it is the
    /// visit going on.
    pub(crate) fn visit_ms(&self, step: &str) -> Option<u64> {
        let (index, _) = self.0.current.as_ref()?;
        let v = &self.0.r.steps[*index];
        (v.step == step).then(|| self.0.last_at.saturating_sub(v.start_ms))
    }

    /// Every visit over its target, worst first, the one going on counted to the last line.
    pub(crate) fn over_target(&self) -> Vec<OverTarget> {
        let open = self.0.current.as_ref().map(|(i, _)| *i);
        let last_at = self.0.last_at;
        over_target(self.0.r.steps.iter().enumerate().map(|(i, v)| {
            let took = if Some(i) == open {
                last_at.saturating_sub(v.start_ms)
            } else {
                v.took_ms
            };
            (v, took)
        }))
    }
}
