//! Masks secrets (`***`) in streamed output, even when a secret arrives split across two reads
//! (design §2 "secret"): the terminal, the audit trail and output logs only ever see masked bytes.
//! A secret is masked in every form a command is likely to print it in (design §14 "Masking"):
//! each line of a multi-line secret, its base64 encodings, every URL encoding of it.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What replaces every secret.
pub(crate) const MASK: &str = "***";

/// A streaming masker for one command's output stream (one per stdout, one per stderr).
///
/// Every byte covered by an occurrence of any secret is hidden: where occurrences overlap
/// (`abc` and `bcd` in `abcd`) their union becomes one `***`, so no part of either leaks.
#[derive(Debug, Clone)]
pub struct Masker {
    secrets: Vec<Vec<u8>>,
    /// Secret values also masked in every percent-encoding a URL decoder maps back to them:
    /// any byte as `%XX` (hex of either case) or as itself, a space as `+`. Too many forms
    /// to list (`%2f` or `%2F` or `/` for each `/`), so they are matched by decoding.
    decoded: Vec<Vec<u8>>,
    /// Length of the longest secret; at most this minus one byte is ever held back.
    longest: usize,
    /// Raw bytes already emitted (their last `longest - 1`), kept only to recognise a secret
    /// that began in them and goes on in the next read.
    context: Vec<u8>,
    /// Raw bytes not yet emitted: they could be the start of a secret.
    pending: Vec<u8>,
}

/// Shortest line of a multi-line secret, and shortest base64 stretch, masked on its own: shorter
/// ones would mask common words and padding everywhere.
const SHORTEST_PART: usize = 4;

/// What a URL component may hold unencoded (RFC 3986 "unreserved"): the set of Python's
/// `quote(s, safe='')`, close to JavaScript's `encodeURIComponent`.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Every byte string that must be masked for one secret value, without duplicates (none for
/// an empty value):
///
/// - the value itself;
/// - when it has several lines, each line of 4+ characters, without its `\r` (a key printed
///   line by line, each line prefixed: `sed 's/^/> /'`);
/// - its base64 encodings, standard and URL-safe alphabets: for each of the three places the
///   secret can start in a 3-byte group of a longer encoded stream, the characters that only
///   the secret's bytes decide (those touching unknown bytes before or after are dropped), when
///   4+ characters long; and the whole value encoded alone, with its padding. So a secret of 1
///   or 2 bytes has no base64 form, one of 3 bytes only where it starts a group;
/// - its URL encoding (RFC 3986 component, `%XX` upper case; also with `+` for spaces), when it
///   differs from the value.
pub(crate) fn forms(secret: &str) -> Vec<Vec<u8>> {
    let mut forms: Vec<Vec<u8>> = Vec::new();
    let mut add = |form: Vec<u8>| {
        if !form.is_empty() && !forms.contains(&form) {
            forms.push(form);
        }
    };
    add(secret.as_bytes().to_vec());
    if secret.contains('\n') {
        for line in secret.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.chars().count() >= SHORTEST_PART {
                add(line.as_bytes().to_vec());
            }
        }
    }
    for engine in [&STANDARD, &URL_SAFE] {
        for offset in 0..3 {
            if let Some(stable) = base64_stable(engine, secret.as_bytes(), offset) {
                add(stable.into_bytes());
            }
        }
        if base64_stable(engine, secret.as_bytes(), 0).is_some() {
            add(engine.encode(secret).into_bytes());
        }
    }
    let url = utf8_percent_encode(secret, URL_COMPONENT).to_string();
    if url != secret {
        if secret.contains(' ') {
            add(url.replace("%20", "+").into_bytes());
        }
        add(url.into_bytes());
    }
    forms
}

/// The characters of a base64 stream that only `secret`'s bytes decide, when the secret starts
/// at byte `offset` (0..3) of a 3-byte group: character `i` carries bits `6i..6i+6` of the
/// stream, the secret bits `8 * offset..8 * (offset + len)`. `None` when under 4 characters.
fn base64_stable(engine: &impl Engine, secret: &[u8], offset: usize) -> Option<String> {
    let first = (8 * offset).div_ceil(6);
    let end = 8 * (offset + secret.len()) / 6;
    if end < first + SHORTEST_PART {
        return None;
    }
    let mut aligned = vec![0; offset];
    aligned.extend_from_slice(secret);
    Some(engine.encode(&aligned)[first..end].to_string())
}

impl Masker {
    /// A masker for every [`forms`] of each secret value.
    pub fn for_secrets<'a>(values: impl IntoIterator<Item = &'a str>) -> Masker {
        let values: Vec<&str> = values.into_iter().collect();
        let mut masker = Masker::new(values.iter().copied().flat_map(forms).collect());
        masker.decoded = values
            .iter()
            .filter(|v| !v.is_empty())
            .map(|v| v.as_bytes().to_vec())
            .collect();
        masker.decoded.sort();
        masker.decoded.dedup();
        // An encoded byte takes three.
        let encoded = masker.decoded.iter().map(|v| 3 * v.len()).max().unwrap_or(0);
        masker.longest = masker.longest.max(encoded);
        masker
    }

    /// Empty secrets are ignored (they would match everywhere).
    pub fn new(secrets: Vec<Vec<u8>>) -> Masker {
        let mut secrets: Vec<Vec<u8>> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        secrets.sort();
        secrets.dedup();
        let longest = secrets.iter().map(Vec::len).max().unwrap_or(0);
        Masker {
            secrets,
            decoded: Vec::new(),
            longest,
            context: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Whether there is no secret to mask: what goes in comes out as it is.
    pub fn is_identity(&self) -> bool {
        self.longest == 0
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
            || self
                .decoded
                .iter()
                .any(|s| decode_match(tail, 0, s) == Decoded::Prefix)
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
        for secret in &self.decoded {
            for start in 0..buf.len() {
                let c = buf[start];
                if c != secret[0] && c != b'%' && c != b'+' {
                    continue;
                }
                if let Decoded::Match(end) = decode_match(buf, start, secret) {
                    found.push((start, end));
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

/// How `buf[at..]` reads as `secret` URL-decoded: a whole encoding of it ending at `Match`,
/// the beginning of one cut by the end of `buf` (`Prefix`), or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoded {
    Match(usize),
    Prefix,
    No,
}

fn decode_match(buf: &[u8], mut at: usize, secret: &[u8]) -> Decoded {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for (i, &b) in secret.iter().enumerate() {
        let Some(&c) = buf.get(at) else {
            return Decoded::Prefix;
        };
        let hex = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]];
        let encoded = c == b'%' && {
            let got = &buf[at + 1..buf.len().min(at + 3)];
            got.iter().zip(hex).all(|(g, h)| g.eq_ignore_ascii_case(&h))
        };
        if c == b && encoded {
            // A `%` of the secret, and `%25` in the text: either may be it.
            match decode_match(buf, at + 1, &secret[i + 1..]) {
                Decoded::Match(end) => return Decoded::Match(end),
                _ if at + 3 > buf.len() => return Decoded::Prefix,
                raw => match (raw, decode_match(buf, at + 3, &secret[i + 1..])) {
                    (_, Decoded::Match(end)) => return Decoded::Match(end),
                    (Decoded::Prefix, _) | (_, Decoded::Prefix) => return Decoded::Prefix,
                    _ => return Decoded::No,
                },
            }
        } else if c == b || (c == b'+' && b == b' ') {
            at += 1;
        } else if encoded {
            if at + 3 > buf.len() {
                return Decoded::Prefix;
            }
            at += 3;
        } else {
            return Decoded::No;
        }
    }
    Decoded::Match(at)
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

    /// A secret of `len` characters, some of them multi-byte, some newlines, from `seed`.
    fn secret(len: usize, seed: usize) -> String {
        let alphabet: Vec<char> = "aZ7+/=-_~ %@:!é漢🦀\"'$".chars().collect();
        (0..len)
            .map(|i| match (i * 7 + seed * 13) % 29 {
                0 | 11 | 22 if seed == 0 && i > 0 => '\n',
                k => alphabet[k % alphabet.len()],
            })
            .collect()
    }

    /// Everything the masker shows around its masks must be outside the characters that only
    /// the secret decides: `stream[first..end]`, the secret starting at byte `at` of the data.
    #[track_caller]
    fn assert_hidden(masked: &str, stream: &str, first: usize, end: usize) {
        let stable = &stream[first..end];
        assert!(!masked.contains(stable), "{stable:?} visible in {masked:?}");
        for window in stable.as_bytes().windows(SHORTEST_PART) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(
                !masked.contains(window),
                "{window:?} of {stable:?} visible in {masked:?}"
            );
        }
        let before = &masked[..masked.find(MASK).expect("masked")];
        let after = &masked[masked.rfind(MASK).unwrap() + MASK.len()..];
        assert!(
            stream.starts_with(before) && before.len() <= first,
            "{before:?} shown"
        );
        assert!(
            stream.ends_with(after) && stream.len() - after.len() >= end,
            "{after:?} shown"
        );
    }

    #[test]
    fn masks_base64_of_a_secret_at_every_alignment() {
        let mut checked = 0;
        for len in 1..=40 {
            for seed in 0..3 {
                let secret = secret(len, seed);
                let masker = Masker::for_secrets([secret.as_str()]);
                for prefix in 0..=5 {
                    for suffix in ["", "\n", "x", "~~", "tail\n"] {
                        let data = [&b"user:"[..prefix], secret.as_bytes(), suffix.as_bytes()].concat();
                        let at = 8 * prefix;
                        let (first, end) = (at.div_ceil(6), (at + 8 * secret.len()) / 6);
                        for engine in [&STANDARD, &URL_SAFE] {
                            let stream = engine.encode(&data);
                            if end >= first + SHORTEST_PART {
                                assert_hidden(&masker.mask_str(&stream), &stream, first, end);
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 3000, "{checked}");
    }

    #[test]
    fn short_secrets_have_no_base64_form() {
        assert_eq!(forms("ab"), [b"ab".to_vec()]);
        // 3 bytes: only where it starts a 3-byte group ("abc" -> "YWJj").
        assert_eq!(forms("abc"), [b"abc".to_vec(), b"YWJj".to_vec()]);
        assert!(forms("").is_empty());
    }

    #[test]
    fn lists_each_form_once() {
        let forms = forms("hunter2");
        let shown: Vec<&str> = forms.iter().map(|f| std::str::from_utf8(f).unwrap()).collect();
        // At offsets 1 and 2 the encodings of `\0hunter2` and `\0\0hunter2`, trimmed.
        assert_eq!(
            shown,
            ["hunter2", "aHVudGVyM", "h1bnRlcj", "odW50ZXIy", "aHVudGVyMg=="]
        );
    }

    #[test]
    fn masks_url_encodings() {
        let m = Masker::for_secrets(["p@ss w/rd~"]);
        assert_eq!(
            m.mask_str("postgres://app:p%40ss%20w%2Frd~@db/x?pw=p%40ss+w%2Frd~ raw=p@ss w/rd~"),
            "postgres://app:***@db/x?pw=*** raw=***"
        );
        // Nothing to encode: no URL form.
        assert!(forms("plain-value_1.2~").iter().all(|f| !f.contains(&b'%')));
    }

    #[test]
    fn masks_every_percent_encoding_a_decoder_maps_back() {
        let m = Masker::for_secrets(["p@ss w/rd%~"]);
        for shown in [
            "p%40ss%20w%2Frd%25~",
            "p%40ss%20w%2frd%25~",
            "p%40ss+w/rd%25~",
            "p@ss w/rd%25~",
            "%70%40%73s w%2Frd%~",
        ] {
            assert_eq!(m.mask_str(&format!("<{shown}>")), "<***>", "{shown}");
        }
        // Streamed a byte at a time, lowercase hex and `/` kept: still hidden.
        let text = b"url=p%40ss+w/rd%25~ end";
        let pieces: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(
            stream(&mut Masker::for_secrets(["p@ss w/rd%~"]), &pieces),
            "url=*** end"
        );
        // A secret ending in `%`, the text cut inside `%25`: held back, never matched past
        // the end of what was read; at the end, its raw form is what is there.
        let mut cut = Masker::for_secrets(["ab%"]);
        assert_eq!(cut.push(b"x ab%2"), b"x ");
        assert_eq!(cut.push(b"5 y"), b"*** y");
        assert_eq!(Masker::for_secrets(["ab%"]).mask_str("ab%2"), "***2");
        // Not the secret: left alone.
        assert_eq!(m.mask_str("p%41ss w/rd%~"), "p%41ss w/rd%~");
    }

    #[test]
    fn masks_every_line_of_a_multi_line_secret_printed_with_a_prefix() {
        let body = [
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
            "VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu",
            "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ",
        ];
        for eol in ["\n", "\r\n"] {
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----{eol}{}{eol}-----END PRIVATE KEY-----",
                body.join(eol)
            );
            let m = Masker::for_secrets([pem.as_str()]);
            // echo "$pw" | sed 's/^/> /'
            let printed: String = pem.split('\n').map(|line| format!("> {line}\n")).collect();
            let masked = m.mask_str(&printed);
            assert_eq!(masked, format!("> ***{eol}").repeat(4) + "> ***\n");
            // Streamed, cut at every point.
            for split in 0..printed.len() {
                let (a, b) = printed.as_bytes().split_at(split);
                let mut m = m.clone();
                let out = String::from_utf8([m.push(a), m.push(b), m.finish()].concat()).unwrap();
                assert_eq!(out, masked, "split at {split}");
            }
        }
        // Lines under 4 characters are not masked on their own.
        let m = Masker::for_secrets(["abcd\nab\nwxyz"]);
        assert_eq!(m.mask_str("[abcd] [ab] [wxyz]"), "[***] [ab] [***]");
    }

    #[test]
    fn masks_whole_strings() {
        let m = masker(&["hunter2", "é"]);
        assert_eq!(m.mask_str("PW=hunter2 café"), "PW=*** caf***");
    }
}
