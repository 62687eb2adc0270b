//! The filter of `runbook replay`: a recording is a whole terminal session (cursor moves,
//! colours, the alternate screen of a full-screen program), so unlike [`super::OutputFilter`]
//! it keeps what draws the screen, and removes only what would reach beyond it: the clipboard
//! (OSC 52), the window title (OSC 0/1/2) and every other OSC, every DCS (DECRQSS, XTGETTCAP,
//! passthrough), the terminal queries whose answers a terminal types back as if the reviewer
//! had (DA, DSR, DECRQM, XTVERSION, window reports, DECID, ENQ), and the modes that would make
//! the reviewer's terminal send input later (mouse tracking, focus events, bracketed paste).
//!
//! Sequences are rebuilt from what `vte` parsed, never copied: only the parameters, markers
//! and final bytes the parser classified can reach the terminal.

use vte::{Params, Parser, Perform};

use super::incomplete_tail;

/// Private modes (`CSI ? n h`) that make the terminal report events as input.
const INPUT_MODES: [u16; 11] = [9, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1015, 1016, 2004];

/// Private modes of the alternate screen, which the end of a replay leaves.
const ALT_SCREEN: [u16; 3] = [47, 1047, 1049];

/// Filters a recording's output on its way to the reviewer's terminal.
pub(crate) struct ReplayFilter {
    parser: Parser,
    /// The start of a character cut by the end of the last piece, held back (see
    /// `OutputFilter::filter_whole`).
    carry: Vec<u8>,
    state: Screen,
}

/// What the replay left on, to turn off at the end.
#[derive(Default)]
struct Screen {
    alt_screen: bool,
    cursor_hidden: bool,
}

impl Default for ReplayFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayFilter {
    pub(crate) fn new() -> ReplayFilter {
        ReplayFilter {
            parser: Parser::new(),
            carry: Vec::new(),
            state: Screen::default(),
        }
    }

    /// The next piece of output; returns what may be written to the terminal.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut joined = std::mem::take(&mut self.carry);
        joined.extend_from_slice(bytes);
        let cut = joined.len() - incomplete_tail(&joined);
        self.carry = joined.split_off(cut);
        let mut out = Vec::with_capacity(joined.len());
        let mut sink = Replay {
            out: &mut out,
            state: &mut self.state,
        };
        self.parser.advance(&mut sink, &joined);
        out
    }

    /// The end of the recording: an unfinished sequence is dropped, and the terminal is put
    /// back (colours reset, cursor shown, the main screen again).
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let carry = std::mem::take(&mut self.carry);
        let mut sink = Replay {
            out: &mut out,
            state: &mut self.state,
        };
        self.parser.advance(&mut sink, &carry);
        self.parser.advance(&mut sink, &[0x18]);
        out.extend_from_slice(b"\x1b[0m");
        if std::mem::take(&mut self.state.alt_screen) {
            out.extend_from_slice(b"\x1b[?1049l");
        }
        if std::mem::take(&mut self.state.cursor_hidden) {
            out.extend_from_slice(b"\x1b[?25h");
        }
        out
    }
}

struct Replay<'a> {
    out: &'a mut Vec<u8>,
    state: &'a mut Screen,
}

/// Whether a CSI sequence is a query, a report request, or a mode change that makes the
/// terminal type on its own: never replayed.
fn is_query(markers: &[u8], intermediates: &[u8], action: char) -> bool {
    let marked = !markers.is_empty();
    let has = |b: u8| intermediates.contains(&b);
    match action {
        // DA1, DA2, DA3; DSR and its private forms; window manipulation and reports;
        // DECREQTPARM.
        'c' | 'n' | 't' | 'x' => true,
        // XTVERSION (`CSI > q`); DECSCUSR (`CSI SP q`) stays.
        'q' => marked,
        // DECRQM (`CSI ? Ps $ p`, `CSI Ps $ p`).
        'p' => has(b'$'),
        // The kitty keyboard protocol (`CSI ? u`, `CSI > u`, `CSI < u`, `CSI = u`) and
        // DECRQTSR (`CSI $ u`); `CSI u` (restore the cursor) stays.
        'u' => marked || has(b'$'),
        // XTMODKEYS and its query (`CSI > Pp m`, `CSI ? Pp m`); SGR stays.
        'm' => marked,
        // DECRQCRA (`CSI ... * y`) and the like; DECRQPSR (`CSI Ps $ w`).
        'y' | 'w' => !intermediates.is_empty(),
        // XTSMGRAPHICS (`CSI ? Pi ; Pa ; Pv S`); `CSI S` (scroll up) stays.
        'S' => marked,
        _ => false,
    }
}

impl Replay<'_> {
    /// A lone 0 is written as no parameter at all: vte reads `CSI u` as `CSI 0 u`, and for
    /// every control a first parameter of 0 means its default.
    fn write_params(&mut self, params: &[Vec<u16>]) {
        if params.len() == 1 && params[0] == [0] {
            return;
        }
        super::write_params(self.out, params.iter().map(Vec::as_slice));
    }
}

impl Perform for Replay<'_> {
    fn print(&mut self, c: char) {
        if !c.is_control() {
            self.out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }

    fn execute(&mut self, byte: u8) {
        // Layout, the bell and the character-set shifts; not ENQ (the answerback), not NUL
        // and the other C0 controls.
        if matches!(
            byte,
            b'\n' | b'\r' | b'\t' | 0x07 | 0x08 | 0x0b | 0x0c | 0x0e | 0x0f
        ) {
            self.out.push(byte);
        }
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: char) {
        if ignore {
            return;
        }
        // Private markers (`?`, `>`, `<`, `=`) come before the parameters, other intermediates
        // after them: vte gives both as intermediates, in order.
        let (markers, inter): (Vec<u8>, Vec<u8>) =
            intermediates.iter().partition(|b| (0x3c..=0x3f).contains(*b));
        if is_query(&markers, &inter, action) {
            return;
        }
        let mut params: Vec<Vec<u16>> = params.iter().map(<[u16]>::to_vec).collect();
        if markers == b"?" && inter.is_empty() && matches!(action, 'h' | 'l') {
            params.retain(|p| !INPUT_MODES.contains(&p[0]));
            if params.is_empty() {
                return;
            }
            let on = action == 'h';
            if params.iter().any(|p| ALT_SCREEN.contains(&p[0])) {
                self.state.alt_screen = on;
            }
            if params.iter().any(|p| p[0] == 25) {
                self.state.cursor_hidden = !on;
            }
        }
        self.out.extend_from_slice(b"\x1b[");
        self.out.extend_from_slice(&markers);
        self.write_params(&params);
        self.out.extend_from_slice(&inter);
        let mut buf = [0; 4];
        self.out
            .extend_from_slice(action.encode_utf8(&mut buf).as_bytes());
    }

    fn esc_dispatch(&mut self, intermediates: &[u8], ignore: bool, byte: u8) {
        // DECID (`ESC Z`) asks the terminal to identify itself; a string terminator (`ESC \`)
        // ends an OSC or DCS that was dropped.
        if ignore || (intermediates.is_empty() && matches!(byte, b'Z' | b'\\')) {
            return;
        }
        self.out.push(0x1b);
        self.out.extend_from_slice(intermediates);
        self.out.push(byte);
    }

    // OSC and DCS: nothing (`osc_dispatch`, `hook`, `put`, `unhook` keep their defaults).
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(pieces: &[&[u8]]) -> String {
        let mut f = ReplayFilter::new();
        let mut out = Vec::new();
        for piece in pieces {
            out.extend(f.push(piece));
        }
        out.extend(f.finish());
        String::from_utf8_lossy(&out).into_owned()
    }

    /// What the end of every replay adds: colours reset.
    const END: &str = "\x1b[0m";

    #[test]
    fn drops_the_clipboard_the_title_and_every_osc() {
        assert_eq!(replay(&[b"a\x1b]52;c;ZWNobyBwd25lZA==\x07b"]), format!("ab{END}"));
        assert_eq!(
            replay(&[b"a\x1b]0;owned\x07b\x1b]2;x\x1b\\c"]),
            format!("abc{END}")
        );
        assert_eq!(
            replay(&[b"\x1b]11;?\x07\x1b]8;;http://x/\x1b\\l"]),
            format!("l{END}")
        );
    }

    #[test]
    fn drops_terminal_queries_and_dcs() {
        let queries: &[&[u8]] = &[
            b"\x1b[c",
            b"\x1b[0c",
            b"\x1b[>c",
            b"\x1b[=c",
            b"\x1b[5n",
            b"\x1b[6n",
            b"\x1b[?6n",
            b"\x1b[14t",
            b"\x1b[21t",
            b"\x1b[?2026$p",
            b"\x1b[>q",
            b"\x1b[?u",
            b"\x1bZ",
            b"\x05",
            b"\x1bP$qm\x1b\\",
            b"\x1bP+q544e\x1b\\",
        ];
        for q in queries {
            assert_eq!(replay(&[b"<", q, b">"]), format!("<>{END}"), "{q:?}");
        }
    }

    #[test]
    fn keeps_what_draws_the_screen() {
        let kept =
            "\x1b[2J\x1b[1;1H\x1b[31mred\x1b[m\x1b[?25l\x1b[?25h\x1b[3 q\x1b7\x1b8\x1b(0q\x1b(B\x1b[2K\x1b[u";
        assert_eq!(replay(&[kept.as_bytes()]), format!("{kept}{END}"));
    }

    #[test]
    fn drops_input_modes_keeps_the_rest_and_leaves_the_alternate_screen() {
        assert_eq!(
            replay(&[b"\x1b[?1049;1000;1006hvim\x1b[?2004h"]),
            format!("\x1b[?1049hvim{END}\x1b[?1049l")
        );
        assert_eq!(
            replay(&[b"\x1b[?1049hx\x1b[?1049l\x1b[?25l"]),
            format!("\x1b[?1049hx\x1b[?1049l\x1b[?25l{END}\x1b[?25h")
        );
    }

    #[test]
    fn a_sequence_or_a_character_cut_between_events_is_whole() {
        assert_eq!(replay(&[b"a\x1b]5", b"2;c;eA==\x07b"]), format!("ab{END}"));
        assert_eq!(
            replay(&[b"caf\xc3", b"\xa9 \x1b[3", b"1mx"]),
            format!("café \x1b[31mx{END}")
        );
        assert_eq!(replay(&[b"x\x1b[6", b"n"]), format!("x{END}"));
    }
}
