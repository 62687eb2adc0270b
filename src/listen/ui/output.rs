//! Commands' output on the terminal: whole lines above the spinner, a fleet host's prefixed with
//! its name so that hosts running at once never mix within a line.

use std::io::Write;

use console::style;

use super::Ui;
use crate::events::Stream;

impl Ui {
    /// A fleet host's output: whole lines, each prefixed with the host (`web-2 | ...`), so
    /// that hosts running at once never mix within a line. `flush`: its command ended.
    pub(super) fn host_output(&mut self, host: &str, bytes: &[u8], flush: bool) {
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
    pub(super) fn output(&mut self, _stream: Stream, bytes: &[u8]) {
        // What is held never has a newline (it is the unended line): only `bytes` is searched,
        // with memchr, and written straight from where it is rather than copied behind it.
        let now = match memchr::memrchr(b'\n', bytes) {
            Some(end) => end + 1,
            None if self.partial.len() + bytes.len() >= LONGEST_HELD_LINE => bytes.len(),
            None => {
                self.partial.extend_from_slice(bytes);
                return;
            }
        };
        let (lines, rest) = bytes.split_at(now);
        let held = &self.partial;
        let write = || {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(held);
            let _ = err.write_all(lines);
            let _ = err.flush();
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
        self.partial.clear();
        self.partial.extend_from_slice(rest);
    }
}

/// A line of output longer than this is shown before its end comes.
const LONGEST_HELD_LINE: usize = 64 * 1024;
