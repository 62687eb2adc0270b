//! Picks the remote process-group id out of a command's stderr, where the wrapper announces
//! it, and keeps that line out of the step's output.

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

/// Filters one stderr stream: holds bytes until the marker line `TOKEN PID\n` has been seen,
/// removes that line, then passes everything through.
#[derive(Debug)]
pub(super) struct MarkerFilter {
    prefix: Vec<u8>,
    held: Vec<u8>,
    pid: Option<i32>,
    found: bool,
}

impl MarkerFilter {
    pub(super) fn new(token: &str) -> MarkerFilter {
        MarkerFilter {
            prefix: format!("{token} ").into_bytes(),
            held: Vec::new(),
            pid: None,
            found: false,
        }
    }

    /// The announced process-group id, once seen.
    pub(super) fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// Returns the bytes to show now.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.found {
            return bytes.to_vec();
        }
        self.held.extend_from_slice(bytes);
        if let Some(start) = find(&self.held, &self.prefix) {
            let after = start + self.prefix.len();
            let Some(newline) = self.held[after..].iter().position(|&b| b == b'\n') else {
                return Vec::new();
            };
            let pid = std::str::from_utf8(&self.held[after..after + newline])
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
                .filter(|&p| p > 1);
            self.pid = pid;
            self.found = true;
            let mut shown = self.held[..start].to_vec();
            shown.extend_from_slice(&self.held[after + newline + 1..]);
            self.held = Vec::new();
            return shown;
        }
        if self.held.len() > HOLD_LIMIT {
            // Keep only what could be the start of the marker.
            let keep = self.prefix.len();
            let cut = self.held.len() - keep;
            let shown = self.held[..cut].to_vec();
            self.held.drain(..cut);
            return shown;
        }
        Vec::new()
    }

    /// The stream ended: whatever is still held is shown.
    pub(super) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_marker_line_wherever_reads_split_it() {
        let stream = b"motd\nrb-pgid-abc 4242\nerr1\nerr2";
        for split in 0..=stream.len() {
            let mut f = MarkerFilter::new("rb-pgid-abc");
            let (a, b) = stream.split_at(split);
            let mut shown = f.push(a);
            shown.extend(f.push(b));
            shown.extend(f.finish());
            assert_eq!(shown, b"motd\nerr1\nerr2", "split at {split}");
            assert_eq!(f.pid(), Some(4242));
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
