//! Keys as the prompts read them, with a paste as one thing (issue 25, item 1).
//!
//! While a prompt is open the terminal's bracketed paste is on (`ESC [ ? 2004 h`): a terminal
//! that has it wraps a paste in `ESC [ 200 ~` … `ESC [ 201 ~`, and [`next`] hands the whole
//! paste over as one [`Read::Paste`], never as keys: its newlines are not Enters, its `j`, `k`
//! and spaces move no menu. `console` reads both markers as `ESC [ 2 0` (an unknown sequence),
//! then `0 ~` or `1 ~` as two chars; those two are all that is recognised here. What the paste
//! holds is kept as text: chars, its line breaks as `\n`, tabs; any escape sequence or other
//! control character inside it is dropped, never shown.
//!
//! Echo and line buffering are off for as long as a prompt is open ([`Open`]): keys typed or
//! pasted between two reads are read as keys, not echoed by the terminal raw.

use console::{Key, Term};

/// What one read gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Read {
    Key(Key),
    Paste(String),
}

/// Bracketed paste on, echo and line buffering off, from a prompt's opening to its end (any
/// end: an answer, Ctrl-C, a hangup, an abort or a panic unwinding: the drop puts them back).
pub(super) struct Open {
    termios: Option<rustix::termios::Termios>,
    paste: bool,
}

const PASTE_ON: &str = "\x1b[?2004h";
const PASTE_OFF: &str = "\x1b[?2004l";

impl Open {
    pub(super) fn start() -> Open {
        use rustix::termios::{LocalModes, OptionalActions, isatty, tcgetattr, tcsetattr};
        let stdin = rustix::stdio::stdin();
        if !isatty(stdin) {
            return Open {
                termios: None,
                paste: false,
            };
        }
        let termios = tcgetattr(stdin).ok().and_then(|was| {
            let mut quiet = was.clone();
            quiet.local_modes.remove(LocalModes::ECHO | LocalModes::ICANON);
            tcsetattr(stdin, OptionalActions::Now, &quiet).ok().map(|()| was)
        });
        let paste = Term::stderr().write_str(PASTE_ON).is_ok();
        Open { termios, paste }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if self.paste {
            let _ = Term::stderr().write_str(PASTE_OFF);
        }
        if let Some(was) = &self.termios {
            let stdin = rustix::stdio::stdin();
            let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, was);
        }
    }
}

/// Whether another byte is there to read within a moment: the rest of an escape sequence
/// comes in the same write as its start.
pub(super) fn more_input() -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let stdin = rustix::stdio::stdin();
    let mut fds = [PollFd::from_borrowed_fd(stdin, PollFlags::IN)];
    let wait = Timespec {
        tv_sec: 0,
        tv_nsec: 30_000_000,
    };
    matches!(rustix::event::poll(&mut fds, Some(&wait)), Ok(n) if n > 0)
}

/// Which bracket `console`'s `ESC [ 2 0` began: `'0'` a paste's start, `'1'` its end (the
/// `~` read too); `None`: another sequence (F9 is `ESC [ 2 0 ~`), read through and dropped.
fn bracket(term: &Term) -> std::io::Result<Option<char>> {
    let read = || -> std::io::Result<Option<Key>> {
        Ok(if more_input() {
            Some(term.read_key()?)
        } else {
            None
        })
    };
    let which = match read()? {
        Some(Key::Char(c @ ('0' | '1'))) => c,
        _ => return Ok(None),
    };
    Ok(matches!(read()?, Some(Key::Char('~'))).then_some(which))
}

fn is_marker(key: &Key) -> bool {
    matches!(key, Key::UnknownEscSeq(seq) if seq == &['[', '2', '0'])
}

/// The next key, or a whole paste. A paste's end without its start (its start was flushed
/// with keys typed ahead) is read and ignored. Any other `ESC [ 2 0 …` is read through and
/// given back as `Key::Unknown`: a key that means nothing anywhere.
pub(super) fn next(term: &Term) -> std::io::Result<Read> {
    loop {
        let key = term.read_key()?;
        if !is_marker(&key) {
            return Ok(Read::Key(key));
        }
        match bracket(term)? {
            Some('0') => return paste(term).map(Read::Paste),
            Some(_) => continue,
            None => return Ok(Read::Key(Key::Unknown)),
        }
    }
}

/// A paste's text, read up to its end marker.
fn paste(term: &Term) -> std::io::Result<String> {
    let mut text = String::new();
    loop {
        match term.read_key()? {
            // Another `ESC [ 2 0 …` inside is read through and dropped.
            key if is_marker(&key) && bracket(term)? == Some('1') => return Ok(text),
            Key::Enter => text.push('\n'),
            Key::Tab => text.push('\t'),
            Key::Char(c) if !c.is_control() => text.push(c),
            _ => {}
        }
    }
}
