//! Masks secrets (`***`) in streamed output, even when a secret arrives split across two reads
//! (design §2 "secret"): the terminal, the audit trail and output logs only ever see masked bytes.

/// What replaces every secret.
pub const MASK: &str = "***";

/// A streaming masker for one command's output stream (one per stdout, one per stderr).
///
/// Every byte covered by an occurrence of any secret is hidden: where occurrences overlap
/// (`abc` and `bcd` in `abcd`) their union becomes one `***`, so no part of either leaks.
#[derive(Debug, Clone)]
pub struct Masker {
    secrets: Vec<Vec<u8>>,
    /// Length of the longest secret; at most this minus one byte is ever held back.
    longest: usize,
    /// Raw bytes already emitted (their last `longest - 1`), kept only to recognise a secret
    /// that began in them and goes on in the next read.
    context: Vec<u8>,
    /// Raw bytes not yet emitted: they could be the start of a secret.
    pending: Vec<u8>,
}

impl Masker {
    /// Empty secrets are ignored (they would match everywhere).
    pub fn new(secrets: Vec<Vec<u8>>) -> Masker {
        let mut secrets: Vec<Vec<u8>> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        secrets.sort();
        secrets.dedup();
        let longest = secrets.iter().map(Vec::len).max().unwrap_or(0);
        Masker {
            secrets,
            longest,
            context: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Takes the next bytes of the stream; returns what is safe to show now.
    /// Like `push`, without a copy when there is nothing to mask (the common case, and the
    /// one that streams gigabytes).
    pub fn push_owned(&mut self, bytes: Vec<u8>) -> Vec<u8> {
        if self.longest == 0 {
            bytes
        } else {
            self.push(&bytes)
        }
    }

    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.longest == 0 {
            return bytes.to_vec();
        }
        let from = self.context.len();
        let mut buf = std::mem::take(&mut self.context);
        buf.append(&mut self.pending);
        buf.extend_from_slice(bytes);

        let found = self.occurrences(&buf);
        // Hold back from the first position where the rest of the buffer could still grow into
        // a secret (necessarily within the last `longest - 1` bytes); an occurrence already
        // complete that straddles that line is emitted whole, masked.
        let start = from.max(buf.len().saturating_sub(self.longest - 1));
        let mut cut = (start..buf.len())
            .find(|&s| self.could_begin_secret(&buf[s..]))
            .unwrap_or(buf.len());
        if let Some(&(_, end)) = found.iter().find(|&&(a, b)| a < cut && b > cut) {
            cut = end;
        }
        let out = render(&buf, from, cut, &found);
        self.pending = buf[cut..].to_vec();
        self.context = buf[cut.saturating_sub(self.longest - 1)..cut].to_vec();
        out
    }

    /// Ends the stream: returns the bytes held back, masked. The masker can then start anew.
    pub fn finish(&mut self) -> Vec<u8> {
        let from = self.context.len();
        let mut buf = std::mem::take(&mut self.context);
        buf.append(&mut self.pending);
        let found = self.occurrences(&buf);
        render(&buf, from, buf.len(), &found)
    }

    /// Masks a whole text at once (a command line, a variable listing, an error message).
    pub fn mask_str(&self, s: &str) -> String {
        let found = self.occurrences(s.as_bytes());
        let bytes = render(s.as_bytes(), 0, s.len(), &found);
        // Secrets come from UTF-8 strings, so cuts fall on character boundaries; lossy
        // conversion only matters for a secret that is not itself valid UTF-8.
        String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }

    /// Whether `tail` is the beginning of some secret, shorter than it.
    fn could_begin_secret(&self, tail: &[u8]) -> bool {
        self.secrets
            .iter()
            .any(|s| s.len() > tail.len() && s.starts_with(tail))
    }

    /// Every occurrence of every secret, overlapping ones merged: sorted, disjoint intervals.
    fn occurrences(&self, buf: &[u8]) -> Vec<(usize, usize)> {
        let mut found = Vec::new();
        for secret in &self.secrets {
            if secret.len() > buf.len() {
                continue;
            }
            for start in 0..=buf.len() - secret.len() {
                if buf[start] == secret[0] && buf[start..].starts_with(secret) {
                    found.push((start, start + secret.len()));
                }
            }
        }
        found.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        for (a, b) in found {
            match merged.last_mut() {
                Some(last) if a < last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        merged
    }
}

/// `buf[from..to]` with each masked interval replaced by `***`. An interval that began before
/// `from` was already shown as `***`: its continuation is dropped rather than masked twice.
fn render(buf: &[u8], from: usize, to: usize, found: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(to - from);
    let mut pos = from;
    for &(a, b) in found {
        if b <= pos || a >= to {
            continue;
        }
        if a >= pos {
            out.extend_from_slice(&buf[pos..a]);
            out.extend_from_slice(MASK.as_bytes());
        }
        pos = b.min(to);
    }
    out.extend_from_slice(&buf[pos..to]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(secrets: &[&str]) -> Masker {
        Masker::new(secrets.iter().map(|s| s.as_bytes().to_vec()).collect())
    }

    /// Feeds `pieces` one by one, checking nothing beyond `longest - 1` bytes is held back.
    fn stream(m: &mut Masker, pieces: &[&[u8]]) -> String {
        let mut out = Vec::new();
        let mut fed = 0;
        for piece in pieces {
            out.extend(m.push(piece));
            fed += piece.len();
            assert!(m.pending.len() < m.longest.max(1), "held back too much");
            assert!(fed >= m.pending.len());
        }
        out.extend(m.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn masks_a_secret_split_at_every_point() {
        let text = "user=admin password=hunter2 done";
        for split in 0..=text.len() {
            let (a, b) = text.as_bytes().split_at(split);
            let mut m = masker(&["hunter2"]);
            assert_eq!(
                stream(&mut m, &[a, b]),
                "user=admin password=*** done",
                "split at {split}"
            );
        }
    }

    #[test]
    fn masks_a_secret_fed_one_byte_at_a_time() {
        let text = b"hunter2hunter2 and hunter2";
        let pieces: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(stream(&mut masker(&["hunter2"]), &pieces), "****** and ***");
    }

    #[test]
    fn masks_the_union_of_overlapping_secrets_at_every_split() {
        for split in 0..=6 {
            let (a, b) = b"xabcdy".split_at(split);
            assert_eq!(stream(&mut masker(&["abc", "bcd"]), &[a, b]), "x***y", "{split}");
        }
        // A secret overlapping itself.
        assert_eq!(stream(&mut masker(&["aa"]), &[b"baaab"]), "b***b");
        for split in 0..=5 {
            let (a, b) = b"baaab".split_at(split);
            assert_eq!(stream(&mut masker(&["aa"]), &[a, b]), "b***b", "{split}");
        }
    }

    #[test]
    fn masks_several_secrets_of_different_lengths() {
        let text = b"pw=s3cr3t token=abcdefghij key=k end";
        for split in 0..=text.len() {
            let (a, b) = text.split_at(split);
            assert_eq!(
                stream(&mut masker(&["s3cr3t", "abcdefghij", "k"]), &[a, b]),
                "pw=*** to***en=*** ***ey=*** end",
                "{split}"
            );
        }
    }

    #[test]
    fn a_secret_that_is_a_prefix_of_another_hides_the_longer_one() {
        for split in 0..=9 {
            let (a, b) = b"<pass123>".split_at(split);
            assert_eq!(
                stream(&mut masker(&["pass", "pass123"]), &[a, b]),
                "<***>",
                "{split}"
            );
        }
    }

    #[test]
    fn passes_everything_through_without_secrets() {
        let mut m = masker(&[""]);
        assert_eq!(m.push(b"abc"), b"abc");
        assert_eq!(m.finish(), b"");
    }

    #[test]
    fn holds_back_only_a_possible_beginning() {
        let mut m = masker(&["hunter2"]);
        assert_eq!(m.push(b"hello hun"), b"hello ");
        assert_eq!(m.push(b"gry"), b"hungry");
        assert_eq!(m.push(b"hunter"), b"");
        assert_eq!(m.finish(), b"hunter");
    }

    #[test]
    fn masks_whole_strings() {
        let m = masker(&["hunter2", "é"]);
        assert_eq!(m.mask_str("PW=hunter2 café"), "PW=*** caf***");
    }
}
