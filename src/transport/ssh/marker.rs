//! Reads the wrapper's two lines out of a command's stderr (`remote_command` in `ssh.rs`): the
//! process-group id it announces first, and the exit code it reports once the command ended.
//! Both are kept out of the step's output.

use std::hash::{BuildHasher, Hasher};

/// Pre-marker bytes held at most: past this they are shown (a chatty login shell must not
/// make stderr disappear).
const HOLD_LIMIT: usize = 64 * 1024;

/// A fresh, unguessable marker word for one command.
pub(super) fn new_token() -> String {
    // RandomState is seeded from the OS's randomness: enough to make the word unforgeable by
    // output that happens to look like it.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("rb-pgid-{:016x}", hasher.finish())
}

/// Filters one stderr stream: holds bytes until the group line `TOKEN PID\n` has been seen,
/// removes it and the exit line `TOKEN exit CODE\n` wherever reads split them, and passes
/// everything else through.
#[derive(Debug)]
pub(super) struct MarkerFilter {
    prefix: Vec<u8>,
    held: Vec<u8>,
    pid: Option<i32>,
    /// The group line was seen: from then on only a possible marker is held back.
    found: bool,
    exited: Option<i32>,
}

impl MarkerFilter {
    pub(super) fn new(token: &str) -> MarkerFilter {
        MarkerFilter {
            prefix: format!("{token} ").into_bytes(),
            held: Vec::new(),
            pid: None,
            found: false,
            exited: None,
        }
    }

    /// The announced process-group id, once seen.
    pub(super) fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// The exit code the wrapper reported, once the command has ended.
    pub(super) fn exited(&self) -> Option<i32> {
        self.exited
    }

    /// Returns the bytes to show now.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.held.extend_from_slice(bytes);
        let mut shown = Vec::new();
        while let Some(start) = find(&self.held, &self.prefix) {
            let after = start + self.prefix.len();
            let Some(newline) = self.held[after..].iter().position(|&b| b == b'\n') else {
                // A marker line not yet whole: what comes before it can go.
                if self.found {
                    shown.extend(self.held.drain(..start));
                }
                return shown;
            };
            let line = Line::parse(&self.held[after..after + newline]);
            self.accept(line);
            shown.extend_from_slice(&self.held[..start]);
            self.held.drain(..after + newline + 1);
        }
        let keep = if self.found {
            // Only what could be the start of a marker.
            partial_prefix(&self.held, &self.prefix)
        } else if self.held.len() > HOLD_LIMIT {
            self.prefix.len()
        } else {
            self.held.len()
        };
        shown.extend(self.held.drain(..self.held.len() - keep));
        shown
    }

    fn accept(&mut self, line: Line) {
        match line {
            Line::Exit(code) => self.exited = code,
            Line::Group(pid) if !self.found => {
                self.pid = pid;
                self.found = true;
            }
            Line::Group(_) => {}
        }
    }

    /// The stream ended: whatever is still held is shown.
    pub(super) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

/// What a marker line says, past the token.
enum Line {
    /// `TOKEN PID`: the group (`None` when the id does not parse).
    Group(Option<i32>),
    /// `TOKEN exit CODE`.
    Exit(Option<i32>),
}

impl Line {
    fn parse(line: &[u8]) -> Line {
        let line = String::from_utf8_lossy(line);
        match line.strip_prefix("exit ") {
            Some(code) => Line::Exit(code.trim().parse().ok()),
            None => Line::Group(line.trim().parse::<i32>().ok().filter(|&p| p > 1)),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The length of the longest end of `held` that begins `prefix` (shorter than it).
fn partial_prefix(held: &[u8], prefix: &[u8]) -> usize {
    (1..prefix.len().min(held.len() + 1))
        .rev()
        .find(|&n| held.ends_with(&prefix[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything shown, fed in two pieces split at `split`.
    fn filtered(stream: &[u8], split: usize) -> (Vec<u8>, MarkerFilter) {
        let mut f = MarkerFilter::new("rb-pgid-abc");
        let (a, b) = stream.split_at(split);
        let mut shown = f.push(a);
        shown.extend(f.push(b));
        shown.extend(f.finish());
        (shown, f)
    }

    #[test]
    fn strips_the_marker_line_wherever_reads_split_it() {
        let stream = b"motd\nrb-pgid-abc 4242\nerr1\nerr2";
        for split in 0..=stream.len() {
            let (shown, f) = filtered(stream, split);
            assert_eq!(shown, b"motd\nerr1\nerr2", "split at {split}");
            assert_eq!(f.pid(), Some(4242));
            assert_eq!(f.exited(), None);
        }
    }

    /// Issue 22: the exit line ends the command's own stderr, with or without a final newline
    /// of its own, and a background job may still write after it.
    #[test]
    fn strips_the_exit_line_and_reads_its_code_wherever_reads_split_it() {
        let stream = b"rb-pgid-abc 4242\nerr without newlinerb-pgid-abc exit 3\nlate\n";
        for split in 0..=stream.len() {
            let (shown, f) = filtered(stream, split);
            assert_eq!(shown, b"err without newlinelate\n", "split at {split}");
            assert_eq!(f.exited(), Some(3), "split at {split}");
        }
    }

    #[test]
    fn output_that_only_starts_like_a_marker_is_shown() {
        let stream = b"rb-pgid-abc 7\nrb-pgid-ab\nrb-pgid-abcd 1\nrb-pgid-abc exit 0\n";
        for split in 0..=stream.len() {
            let (shown, f) = filtered(stream, split);
            assert_eq!(shown, b"rb-pgid-ab\nrb-pgid-abcd 1\n", "split at {split}");
            assert_eq!(f.exited(), Some(0));
        }
    }

    #[test]
    fn shows_everything_when_no_marker_comes() {
        let mut f = MarkerFilter::new("rb-pgid-abc");
        assert_eq!(f.push(b"sh: setsid: not found\n"), b"");
        assert_eq!(f.finish(), b"sh: setsid: not found\n");
        assert_eq!(f.pid(), None);
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(new_token(), new_token());
    }
}
