//! Where a command's output goes as it arrives (design §5, §14): to its output file as the
//! command wrote it, secrets masked (the file is evidence); to the terminal with every escape
//! but colour removed first, then masked; and, for a step that received a secret and does
//! not declare its output free of one, its stdout hidden whole in both.

use crate::audit::BackgroundRecorder;
use crate::events::{Event, Stream};
use crate::listen::sink::Sink;
use crate::mask::{MASK, Masker};
use crate::secrets::escape::OutputFilter;

pub(super) struct OutputPaths {
    /// Masks what goes to the file: raw bytes, both streams as they interleave.
    file: Masker,
    /// Masks what goes to the terminal, after the filters.
    screen: Masker,
    filters: [OutputFilter; 2],
    recorder: Option<BackgroundRecorder>,
    /// The step received a secret and did not `declassify`: its stdout is hidden whole.
    hide_stdout: bool,
    stdout_hidden: bool,
    /// A fleet host's name: its output is shown line by line, prefixed with it.
    host: Option<String>,
}

impl OutputPaths {
    pub(super) fn new(
        masker: Masker,
        recorder: Option<BackgroundRecorder>,
        hide_stdout: bool,
    ) -> OutputPaths {
        OutputPaths {
            screen: masker.clone(),
            file: masker,
            filters: [OutputFilter::new(), OutputFilter::new()],
            recorder,
            hide_stdout,
            stdout_hidden: false,
            host: None,
        }
    }

    /// Shows the output as one fleet host's (`web-2 | ...`).
    pub(super) fn prefix(&mut self, host: &str) {
        self.host = Some(host.to_string());
    }

    /// One piece of output, as the command wrote it.
    pub(super) fn push(&mut self, sink: &mut Sink, stream: Stream, raw: Vec<u8>) {
        if stream == Stream::Stdout && self.hide_stdout {
            self.hide(sink);
            return;
        }
        let index = usize::from(stream == Stream::Stderr);
        if self.file.is_identity() && self.filters[index].passes(&raw) {
            // Plain text and no secret: the same bytes go to the screen, then to the file.
            let raw = self.show(sink, stream, raw);
            self.record(raw);
            return;
        }
        // Owned all the way: with no secret to mask, nothing is copied again.
        let filtered = self.filters[index].push(&raw);
        let shown = self.screen.push_owned(filtered);
        self.show(sink, stream, shown);
        let masked = self.file.push_owned(raw);
        self.record(masked);
    }

    /// The output file can no longer be written: the command must be stopped.
    pub(super) fn failed(&self) -> bool {
        self.recorder.as_ref().is_some_and(BackgroundRecorder::failed)
    }

    /// The command ended: what the maskers and filters held back.
    pub(super) fn finish(&mut self, sink: &mut Sink) -> Option<BackgroundRecorder> {
        let mut held = Vec::new();
        for filter in &mut self.filters {
            held.extend(filter.finish());
        }
        let mut shown = self.screen.push(&held);
        shown.extend(self.screen.finish());
        self.show(sink, Stream::Stdout, shown);
        let rest = self.file.finish();
        self.record(rest);
        self.recorder.take()
    }

    fn hide(&mut self, sink: &mut Sink) {
        if self.stdout_hidden {
            return;
        }
        self.stdout_hidden = true;
        self.show(
            sink,
            Stream::Stdout,
            format!("{MASK} (stdout hidden: this step received a secret; `declassify: true` shows it)\n")
                .into_bytes(),
        );
        self.record(format!("{MASK}\n").into_bytes());
    }

    /// Shows the bytes and gives them back, for the file.
    fn show(&self, sink: &mut Sink, stream: Stream, bytes: Vec<u8>) -> Vec<u8> {
        if bytes.is_empty() {
            return bytes;
        }
        let event = Event::Output {
            stream,
            bytes,
            host: self.host.clone(),
        };
        sink.show(&event);
        let Event::Output { bytes, .. } = event else {
            return Vec::new();
        };
        bytes
    }

    fn record(&mut self, bytes: Vec<u8>) {
        if let (Some(r), false) = (self.recorder.as_mut(), bytes.is_empty()) {
            r.write(bytes);
        }
    }
}
