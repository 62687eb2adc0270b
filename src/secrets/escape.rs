//! Keeps hostile bytes from driving the operator's terminal (design §14 "Hostile bytes"): values,
//! titles and notes are printed with their control characters escaped, and command output goes
//! through an [`OutputFilter`] that lets only colour (SGR) sequences reach the terminal. Output
//! files keep the raw bytes; only what is shown is filtered.

use std::borrow::Cow;
use std::io::Write as _;

use vte::{Params, Parser, Perform};

mod replay;
pub use replay::ReplayFilter;

/// A value shown on one line: every control character (C0 with newline and tab, DEL, C1) is
/// printed escaped (`\x1b`, `\n`, `\t`, `\x7f`, `\u{9b}`), so it cannot move the cursor, set a
/// window title or write the clipboard. Borrowed when there is nothing to escape.
pub fn value(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Like [`value`], but keeps `\n` and `\t`: for notes and titles shown line by line.
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn escape(s: &str, keep_layout: bool) -> Cow<'_, str> {
    // `char::is_control` is exactly Unicode's Cc: U+0000..=U+001F, U+007F..=U+009F.
    let escaped = |c: char| c.is_control() && !(keep_layout && (c == '\n' || c == '\t'));
    let Some(first) = s.find(escaped) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        match c {
            c if !escaped(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{80}'..='\u{9f}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push_str(&format!("\\x{:02x}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// Longest escape sequence the filter waits for the end of. `vte` keeps an OSC's payload in
/// memory until it ends, so a stream that opens one and never closes it would grow it without
/// bound; past this the sequence is cancelled (as a terminal does on CAN) and what follows is
/// shown as text.
const SEQUENCE_LIMIT: usize = 1 << 20;

/// CAN: every state of the parser goes back to ground on it, a half character becomes U+FFFD.
const CANCEL: u8 = 0x18;
const ESC: u8 = 0x1b;

/// Filters one output stream (one per stdout, one per stderr) before it reaches the terminal.
///
/// Printable text passes unchanged, and so do `\n`, `\r`, `\t`, backspace and SGR colour
/// sequences (`ESC [ params m`, without intermediates or private markers). Everything else is
/// removed: other CSI (cursor moves, screen clear, `ESC[6n` queries), OSC (title, clipboard,
/// hyperlinks), DCS, SOS/PM/APC, other escapes, C0 controls, DEL and C1 controls, whether as
/// U+0080..=U+009F or as raw bytes. vte only knows 7-bit sequences: a C1 control is removed
/// alone, so `\u{9b}2J` shows as the harmless text `2J`.
///
/// Invalid UTF-8 is shown as U+FFFD, except a lone byte 0x80..=0x9F, which is an 8-bit C1
/// control and removed.
///
/// A sequence or a character split across two reads is recognised: the parser keeps its state
/// between [`push`](Self::push) calls, and [`finish`](Self::finish) ends the stream.
pub struct OutputFilter {
    parser: Parser,
    mode: Mode,
    /// The start of a character cut by the end of the last read (at most 3 bytes), held back
    /// until the next one.
    carry: Vec<u8>,
    /// Bytes given to the parser since it entered the sequence not yet known to have ended.
    in_sequence: usize,
}

/// What is known of the parser's state: the fast path may only copy bytes in `Text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Ground state, no half character pending.
    Text,
    /// Ground state, and the parser holds the start of a character that the next byte (the
    /// start of another, held back) shows to be broken: the next run goes to the parser.
    BrokenCharacter,
    /// Inside an escape sequence, or not known to have left it: every byte goes to the parser.
    Sequence,
}

impl Default for OutputFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl OutputFilter {
    pub fn new() -> OutputFilter {
        OutputFilter {
            parser: Parser::new(),
            mode: Mode::Text,
            carry: Vec::new(),
            in_sequence: 0,
        }
    }

    /// Takes the next bytes of the stream; returns what may be shown now.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        self.push_into(bytes, &mut out);
        out
    }

    /// Like [`push`](Self::push), appending to the caller's buffer.
    pub fn push_into(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        out.reserve(bytes.len());
        if self.carry.is_empty() {
            self.filter_whole(bytes, out);
        } else {
            // Rare (a character cut by a read): one copy rather than a second code path.
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(bytes);
            self.filter_whole(&joined, out);
        }
    }

    /// Holds back a character cut by the end of the read, so that the parser never keeps half
    /// a character between two calls: vte 0.15 completes one with the next bytes and then skips
    /// the character after it when the bytes after that are cut too (`\xc2` then
    /// `\x9b\t\xc2` loses the tab). Inside a sequence the delay changes nothing.
    fn filter_whole(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let cut = bytes.len() - incomplete_tail(bytes);
        self.carry.extend_from_slice(&bytes[cut..]);
        self.filter(&bytes[..cut], out);
    }

    /// Ends the stream: an unfinished sequence is dropped, a half character becomes U+FFFD.
    /// The filter can then start anew.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut sink = Sink::new(&mut out);
        let carry = std::mem::take(&mut self.carry);
        self.parser.advance(&mut sink, &carry);
        self.parser.advance(&mut sink, &[CANCEL]);
        self.mode = Mode::Text;
        self.in_sequence = 0;
        out
    }

    fn filter(&mut self, mut rest: &[u8], out: &mut Vec<u8>) {
        while !rest.is_empty() {
            if self.mode != Mode::Sequence {
                if self.mode == Mode::Text {
                    let plain = plain_prefix(rest);
                    out.extend_from_slice(&rest[..plain]);
                    rest = &rest[plain..];
                }
                match rest.first() {
                    None => return,
                    Some(&ESC) => {
                        self.mode = Mode::Sequence;
                        self.in_sequence = 0;
                    }
                    Some(_) => {
                        rest = self.text_run(rest, out);
                        continue;
                    }
                }
            }
            let mut sink = Sink::new(out);
            let used = self.parser.advance_until_terminated(&mut sink, rest);
            rest = &rest[used..];
            if sink.back_in_ground {
                self.mode = Mode::Text;
            } else {
                self.in_sequence += used;
                if self.in_sequence > SEQUENCE_LIMIT {
                    self.parser.advance(&mut sink, &[CANCEL]);
                    self.mode = Mode::Text;
                }
            }
        }
    }

    /// Gives the parser a run of non-plain text (UTF-8, controls) that starts `rest`, in ground
    /// state; returns what follows it. The run ends before an ESC, or with the first plain byte
    /// after it, so that a broken character before that byte is resolved (U+FFFD) rather than
    /// left half-read in the parser while the fast path goes on.
    fn text_run<'a>(&mut self, rest: &'a [u8], out: &mut Vec<u8>) -> &'a [u8] {
        let end = rest.iter().position(|&b| is_plain(b) || b == ESC);
        let run = &rest[..end.unwrap_or(rest.len())];
        if self.mode == Mode::Text && is_printable_utf8(run) {
            // What the parser would print, character by character: 4 times slower.
            out.extend_from_slice(run);
            return &rest[run.len()..];
        }
        let mut sink = Sink::new(out);
        self.mode = Mode::Text;
        match end {
            Some(end) if rest[end] == ESC => {
                // A half character left in the parser cannot be completed by the ESC that
                // comes next: the parser shows U+FFFD for it, and takes every byte from here.
                self.parser.advance(&mut sink, &rest[..end]);
                &rest[end..]
            }
            Some(end) => {
                self.parser.advance(&mut sink, &rest[..=end]);
                &rest[end + 1..]
            }
            None => {
                self.parser.advance(&mut sink, rest);
                if incomplete_tail(rest) > 0 {
                    // The read ends with a character cut short (held back), and what is before
                    // it looks cut short too: broken, which the parser sees on the next byte.
                    debug_assert!(!self.carry.is_empty());
                    self.mode = Mode::BrokenCharacter;
                }
                &[]
            }
        }
    }
}

/// Bytes shown as they are without the parser: printable ASCII, `\n`, `\r`, `\t`, backspace.
fn is_plain(b: u8) -> bool {
    b.wrapping_sub(0x20) < 0x5f || b == b'\n' || b == b'\r' || b == b'\t' || b == 0x08
}

/// Length of the plain prefix of `bytes`: the fast path for the gigabytes of log text. Blocks
/// of 32 bytes are checked without branches (the compiler vectorises them).
fn plain_prefix(bytes: &[u8]) -> usize {
    const BLOCK: usize = 32;
    let mut done = 0;
    for block in bytes.chunks_exact(BLOCK) {
        if block.iter().fold(0u8, |bad, &b| bad | u8::from(!is_plain(b))) != 0 {
            break;
        }
        done += BLOCK;
    }
    done + bytes[done..]
        .iter()
        .position(|&b| !is_plain(b))
        .unwrap_or(bytes.len() - done)
}

/// Whether `run` (no plain ASCII in it) is valid UTF-8 with no control character: no C0, no
/// DEL, no C1 (U+0080..=U+009F is `C2 80`..=`C2 9F`). The second fast path, for non-Latin text.
fn is_printable_utf8(run: &[u8]) -> bool {
    run.iter().all(|&b| b >= 0x80)
        && !run.windows(2).any(|w| w[0] == 0xc2 && w[1] < 0xa0)
        && std::str::from_utf8(run).is_ok()
}

/// How many bytes at the end of `bytes` are the valid start of a character cut short (0..=3).
fn incomplete_tail(bytes: &[u8]) -> usize {
    (1..=bytes.len().min(3))
        .find(|&k| {
            std::str::from_utf8(&bytes[bytes.len() - k..])
                .is_err_and(|e| e.valid_up_to() == 0 && e.error_len().is_none())
        })
        .unwrap_or(0)
}

/// What the parser recognised, turned into what may be shown: the output is built only from
/// these callbacks, so nothing the parser did not classify can reach the terminal.
struct Sink<'a> {
    out: &'a mut Vec<u8>,
    /// A sequence just ended in a way that leaves the parser in ground state: `vte` then stops
    /// (`terminated`), and the fast path takes over again.
    back_in_ground: bool,
}

impl<'a> Sink<'a> {
    fn new(out: &'a mut Vec<u8>) -> Sink<'a> {
        Sink {
            out,
            back_in_ground: false,
        }
    }

    /// SGR rebuilt from its parsed parameters, so only digits, `;` and `:` can follow `ESC[`.
    /// An empty parameter is written as its default, 0 (`ESC[m` becomes `ESC[0m`).
    fn write_sgr(&mut self, params: &Params) {
        self.out.extend_from_slice(b"\x1b[");
        for (i, param) in params.iter().enumerate() {
            if i > 0 {
                self.out.push(b';');
            }
            for (j, sub) in param.iter().enumerate() {
                if j > 0 {
                    self.out.push(b':');
                }
                // Writing to a Vec cannot fail.
                let _ = write!(self.out, "{sub}");
            }
        }
        self.out.push(b'm');
    }
}

impl Perform for Sink<'_> {
    fn print(&mut self, c: char) {
        // vte prints DEL, and (0.15) a C1 control cut in two by the end of a read: it completes
        // the character outside the path that sends controls to `execute`.
        if !c.is_control() {
            self.out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }

    fn execute(&mut self, byte: u8) {
        if matches!(byte, b'\n' | b'\r' | b'\t' | 0x08) {
            self.out.push(byte);
        }
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: char) {
        self.back_in_ground = true;
        // Private markers (`?`, `>`, ...) arrive as intermediates.
        if action == 'm' && intermediates.is_empty() && !ignore {
            self.write_sgr(params);
        }
    }

    fn esc_dispatch(&mut self, _intermediates: &[u8], _ignore: bool, _byte: u8) {
        self.back_in_ground = true;
    }

    fn osc_dispatch(&mut self, _params: &[&[u8]], bell_terminated: bool) {
        // Ended by ESC, the parser is in the escape that follows (`ESC \`): not ground yet.
        if bell_terminated {
            self.back_in_ground = true;
        }
    }

    fn terminated(&self) -> bool {
        self.back_in_ground
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_every_control_escaped() {
        assert!(matches!(value("plain café 漢字 🦀"), Cow::Borrowed(_)));
        assert_eq!(
            value("a\x1b]0;pwned\x07b\nc\td\re\x7ff\u{9b}2J\u{85}\0"),
            "a\\x1b]0;pwned\\x07b\\nc\\td\\re\\x7ff\\u{9b}2J\\u{85}\\x00"
        );
    }

    #[test]
    fn texts_keep_newlines_and_tabs() {
        assert!(matches!(text("line one\n\tline two"), Cow::Borrowed(_)));
        assert_eq!(text("a\n\tb\r\x1b[2Jc\u{9f}"), "a\n\tb\\r\\x1b[2Jc\\u{9f}");
    }

    /// Filters `pieces` as successive reads of one stream.
    fn filter(pieces: &[&[u8]]) -> Vec<u8> {
        let mut f = OutputFilter::new();
        let mut out = Vec::new();
        for piece in pieces {
            out.extend(f.push(piece));
        }
        out.extend(f.finish());
        out
    }

    /// Checks `input` filters to `expected` whole, split at every byte, and fed byte by byte.
    #[track_caller]
    fn check(input: &[u8], expected: &[u8]) {
        let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert_eq!(shown(&filter(&[input])), shown(expected), "whole");
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(shown(&filter(&[a, b])), shown(expected), "split at {split}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(shown(&filter(&bytes)), shown(expected), "byte by byte");
    }

    #[test]
    fn removes_window_titles_ended_by_bel_or_st() {
        check(b"a\x1b]0;owned\x07b", b"ab");
        check(b"a\x1b]2;owned\x1b\\b", b"ab");
    }

    #[test]
    fn removes_clipboard_writes_and_hyperlinks() {
        check(b"x\x1b]52;c;ZWNobyBwd25lZA==\x07y", b"xy");
        check(b"\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\", b"link");
    }

    #[test]
    fn removes_screen_clears_cursor_moves_and_queries() {
        check(b"a\x1b[2Jb\x1b[Hc", b"abc");
        check(b"\x1b[10;20Hx\x1b[3Ay\x1b[2Kz\x1b[?25l\x1b[?1049h", b"xyz");
        check(b"before\x1b[6nafter", b"beforeafter");
        check(b"\x1b[>0c\x1b[?2004h\x1b[1 q.", b".");
    }

    #[test]
    fn removes_dcs_sos_pm_apc_and_other_escapes() {
        check(b"a\x1bP1$r0m\x1b\\b", b"ab");
        check(b"a\x1bPq#0;2;0;0;0~-\x1b\\b", b"ab");
        check(b"a\x1bXsos\x1b\\b\x1b^pm\x1b\\c\x1b_apc\x1b\\d", b"abcd");
        check(b"a\x1bcb\x1b7c\x1b8d\x1b(0e\x1bMf", b"abcdef");
    }

    #[test]
    fn removes_c1_controls_in_utf8_and_as_raw_bytes() {
        check("a\u{9b}2Jb".as_bytes(), b"a2Jb");
        check(b"a\x9b2Jb", b"a2Jb");
        check("a\u{9d}0;owned\u{9c}b\u{85}c".as_bytes(), b"a0;ownedbc");
        check(b"a\x9d0;owned\x07b", b"a0;ownedb");
    }

    #[test]
    fn removes_stray_c0_controls_and_del_but_keeps_layout() {
        check(b"a\x00b\x07c\x0ed\x7fe\x1a", b"abcde");
        check(b"col1\tcol2\r\nnext\x08!\n", b"col1\tcol2\r\nnext\x08!\n");
    }

    #[test]
    fn keeps_sgr_colours() {
        check(b"\x1b[1;31mred\x1b[0m", b"\x1b[1;31mred\x1b[0m");
        check(
            b"\x1b[38;2;255;0;10mrgb\x1b[38:5:208m",
            b"\x1b[38;2;255;0;10mrgb\x1b[38:5:208m",
        );
        check(b"\x1b[mreset", b"\x1b[0mreset");
        // Not SGR, though they end in `m`: a private marker, an intermediate.
        check(b"\x1b[?1m\x1b[>4;1m\x1b[1 mx", b"x");
    }

    #[test]
    fn keeps_utf8_whole_even_cut_mid_character() {
        let text = "é 漢字 🦀 ĕ ascii\n".repeat(2);
        check(text.as_bytes(), text.as_bytes());
        // Mixed with sequences, and `ě` (C4 9B) whose second byte is 0x9b.
        check(
            "\x1b[32mě漢\x1b[2J🦀\x1b]0;t\x07é".as_bytes(),
            "\x1b[32mě漢🦀é".as_bytes(),
        );
    }

    #[test]
    fn shows_invalid_utf8_as_replacement_characters() {
        check(b"a\xffb", "a\u{fffd}b".as_bytes());
        check(b"a\xe6\x97b", "a\u{fffd}b".as_bytes());
        check(b"a\xe6\x1b[2Jb", "a\u{fffd}b".as_bytes());
        // A character cut by the end of the stream.
        check(b"end\xf0\x9f\xa6", "end\u{fffd}".as_bytes());
    }

    #[test]
    fn drops_an_unfinished_sequence_at_the_end() {
        check(b"a\x1b]0;never ends", b"a");
        check(b"a\x1b[1;3", b"a");
        let mut f = OutputFilter::new();
        assert_eq!(f.push(b"x\x1b]0;"), b"x");
        assert_eq!(f.finish(), b"");
        assert_eq!(f.push(b"fresh"), b"fresh");
    }

    #[test]
    fn cancels_an_endless_sequence_instead_of_buffering_it() {
        let mut f = OutputFilter::new();
        assert_eq!(f.push(b"\x1b]52;c;"), b"");
        let payload = vec![b'A'; 64 * 1024];
        let mut shown = 0;
        for _ in 0..(SEQUENCE_LIMIT / payload.len() + 2) {
            shown += f.push(&payload).len();
        }
        assert!(shown > 0, "the sequence was cut off");
        assert_eq!(f.mode, Mode::Text);
        assert_eq!(f.push(b"ok\x1b[2J"), b"ok");
    }

    #[test]
    fn keeps_text_after_a_malformed_csi() {
        // `ESC[1?h` ends in vte's CSI-ignore state, which returns to ground silently.
        check(b"\x1b[1?hplain \xc3\xa9\x1b[31mx", b"plain \xc3\xa9\x1b[31mx");
    }

    /// Regression: vte 0.15 hands a C1 character cut by the end of a read to `print`, not
    /// `execute` (found by the random test below, after a CSI ended in vte's ignore state).
    #[test]
    fn removes_a_c1_control_cut_in_two_inside_the_parser() {
        check(b"\x1b[1?hx\xc2\x9by\x1b[31m\xc2\x9b2J", b"xy\x1b[31m2J");
    }

    /// Regression: vte 0.15 skips the character after one it completes from a second read
    /// when what follows is cut again (found by the random test below).
    #[test]
    fn keeps_the_character_after_one_cut_in_two_inside_the_parser() {
        check(b"\x1b[1?h\xc3\xa9\t\xc3\xa9.", "é\té.".as_bytes());
        check(b"\x1b[1?h\xc2\x9b\t\xc2\x9b.", b"\t.");
    }

    /// Regression: a broken character (`\xe6` before another start) left in the parser while
    /// the UTF-8 fast path copied what followed; the parser then made a character of it and
    /// bytes read later (found by the random test below).
    #[test]
    fn resolves_a_broken_character_before_copying_text() {
        let reads: &[&[u8]] = &[b"\xe6", b"\xe6", b"\xbc\xa2\xe5\xad\x97\t\x9b\x9b."];
        assert_eq!(String::from_utf8(filter(reads)).unwrap(), "\u{fffd}漢字\t.");
        check(
            b"\xe6\xe6\xbc\xa2\xe5\xad\x97\t\x9b\x9b.",
            "\u{fffd}漢字\t.".as_bytes(),
        );
    }

    /// The fast path and the mode tracking change nothing: random mixes of text and sequences,
    /// cut at random points, filter exactly as the bare parser filters the whole stream.
    #[test]
    fn matches_the_bare_parser_on_random_streams() {
        let pieces: &[&[u8]] = &[
            b"plain text ",
            b"\n",
            b"\r\n",
            b"\t",
            "é".as_bytes(),
            "漢字".as_bytes(),
            "🦀".as_bytes(),
            b"\x1b[1;31m",
            b"\x1b[0m",
            b"\x1b[2J",
            b"\x1b[6n",
            b"\x1b]0;title\x07",
            b"\x1b]52;c;eA==\x1b\\",
            b"\x1bP1$r\x1b\\",
            b"\x1b_apc\x1b\\",
            b"\x9b",
            "\u{9b}".as_bytes(),
            b"\xff",
            b"\xe6",
            b"\xf0\x9f",
            b"\xc3",
            b"\xa9",
            b"\x1b[1?h",
            b"\x18",
            b"\x1b",
            b"\x7f",
            b"\x08",
            b"\x00",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..3000 {
            let stream: Vec<u8> = (0..next(24))
                .flat_map(|_| pieces[next(pieces.len())].to_vec())
                .collect();
            let mut expected = Vec::new();
            let mut bare = Parser::new();
            bare.advance(&mut Sink::new(&mut expected), &stream);
            bare.advance(&mut Sink::new(&mut expected), &[CANCEL]);
            let mut cuts: Vec<usize> = (0..next(6)).map(|_| next(stream.len() + 1)).collect();
            cuts.sort_unstable();
            let mut reads = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([stream.len()]) {
                reads.push(&stream[from..cut]);
                from = cut;
            }
            assert_eq!(
                filter(&reads),
                expected,
                "{:?} read as {reads:?}",
                String::from_utf8_lossy(&stream)
            );
        }
    }

    #[test]
    fn finds_the_plain_prefix_across_blocks() {
        let mut bytes = vec![b'a'; 100];
        assert_eq!(plain_prefix(&bytes), 100);
        for at in [0, 31, 32, 33, 64, 99] {
            bytes[at] = 0x1b;
            assert_eq!(plain_prefix(&bytes), at);
            bytes[at] = b'a';
        }
        assert_eq!(incomplete_tail("a漢".as_bytes()), 0);
        assert_eq!(incomplete_tail(&"a漢".as_bytes()[..3]), 2);
        assert_eq!(incomplete_tail(b"a\xf0"), 1);
        assert_eq!(incomplete_tail(b"a\xe0\x80"), 0);
    }

    /// `cargo test --release --lib throughput -- --ignored --nocapture`
    #[test]
    #[ignore = "a benchmark: run in release"]
    fn throughput() {
        let plain = |i: usize| {
            format!(
                "2024-05-01T12:00:{:02}Z INFO worker=7 job={i} state=done\n",
                i % 60
            )
        };
        measure("plain ASCII log", &plain);
        measure("log, 1 line in 8 coloured, 1 in 8 with UTF-8", &|i| match i % 8 {
            0 => format!("\x1b[32mINFO\x1b[0m request {i} served in 12ms path=/api/v1/items\n"),
            1 => format!("2024-05-01T12:00:{:02} WARN café naïve 漢字 retry {i}\n", i % 60),
            _ => plain(i),
        });
        measure("Japanese text", &|i| {
            format!("{i}: 東京都の天気は晴れ、気温は二十度です。\n")
        });
    }

    /// Filters 256 MiB of lines made by `line`, in reads of 64 KiB, and prints MB/s.
    fn measure(what: &str, line: &dyn Fn(usize) -> String) {
        let sample: Vec<u8> = (0..8192).flat_map(|i| line(i).into_bytes()).collect();
        let total = 256 << 20;
        let mut f = OutputFilter::new();
        let mut out = Vec::with_capacity(64 << 10);
        let (mut fed, mut shown) = (0, 0);
        let start = std::time::Instant::now();
        while fed < total {
            for chunk in sample.chunks(64 << 10) {
                out.clear();
                f.push_into(chunk, &mut out);
                fed += chunk.len();
                shown += out.len();
            }
        }
        shown += f.finish().len();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{what}: {} MiB in {secs:.3} s = {:.0} MB/s",
            fed >> 20,
            fed as f64 / secs / 1e6
        );
        assert!(shown > 0);
    }
}
