//! Keeps hostile bytes from driving the operator's terminal (design §14 "Hostile bytes"): values,
//! titles and notes are printed with their control characters escaped, and command output goes
//! through an [`OutputFilter`] that lets only colour (SGR) sequences reach the terminal. Output
//! files keep the raw bytes; only what is shown is filtered.

use std::borrow::Cow;
use std::io::Write as _;

use vte::{Params, Parser, Perform};

mod replay;
pub(crate) use replay::ReplayFilter;

/// A value shown on one line: every control character (C0 with newline and tab, DEL, C1) is
/// printed escaped (`\x1b`, `\n`, `\t`, `\x7f`, `\u{9b}`), so it cannot move the cursor, set a
/// window title or write the clipboard. Borrowed when there is nothing to escape.
pub(crate) fn value(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Like [`value`], but keeps `\n` and `\t`: for notes and titles shown line by line.
pub(crate) fn text(s: &str) -> Cow<'_, str> {
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
pub(crate) struct OutputFilter {
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
    pub(crate) fn new() -> OutputFilter {
        OutputFilter {
            parser: Parser::new(),
            mode: Mode::Text,
            carry: Vec::new(),
            in_sequence: 0,
        }
    }

    /// Takes the next bytes of the stream; returns what may be shown now.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        self.push_into(bytes, &mut out);
        out
    }

    /// Whether `bytes`, the next of the stream, would pass unchanged (plain text, nothing held
    /// back, not inside a sequence): then they may be shown as they are, without a copy, and
    /// the filter is left as `push` would have left it.
    pub(crate) fn passes(&self, bytes: &[u8]) -> bool {
        self.mode == Mode::Text && self.carry.is_empty() && plain_prefix(bytes) == bytes.len()
    }

    /// Like [`push`](Self::push), appending to the caller's buffer.
    pub(crate) fn push_into(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
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
    pub(crate) fn finish(&mut self) -> Vec<u8> {
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
pub(crate) fn incomplete_tail(bytes: &[u8]) -> usize {
    (1..=bytes.len().min(3))
        .find(|&k| {
            std::str::from_utf8(&bytes[bytes.len() - k..])
                .is_err_and(|e| e.valid_up_to() == 0 && e.error_len().is_none())
        })
        .unwrap_or(0)
}

/// Control parameters as written: `;` between parameters, `:` between a parameter's parts.
fn write_params<'p>(out: &mut Vec<u8>, params: impl Iterator<Item = &'p [u16]>) {
    for (i, param) in params.enumerate() {
        if i > 0 {
            out.push(b';');
        }
        for (j, sub) in param.iter().enumerate() {
            if j > 0 {
                out.push(b':');
            }
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{sub}");
        }
    }
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
        write_params(self.out, params.iter());
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
mod tests;
