//! One prompt on the terminal, whatever happens while it waits: Ctrl-C, a hangup, a signal
//! that ends the run; and the read of a secret, which shows nothing.

use super::{keys, menu, theme};
use crate::error::Error;

/// Runs a prompt. Ctrl-C there does not end the run: it asks whether to abort (a second
/// Ctrl-C aborts at once), and a "no" asks the same question again. A terminal that went away
/// (SIGHUP, or a read or write that fails) is a hangup: the run stops and its trail stays open
/// for `resume`. SIGTERM or SIGQUIT ends the wait too: the run ends `interrupted`, nobody is
/// asked anything more. Any other signal that interrupts the read leaves the prompt as it was
/// (`console` reports every interrupted read as a Ctrl-C: `ctrl_c` tells them apart).
pub(super) fn ask<T>(prompt: impl Fn() -> dialoguer::Result<T>) -> Result<T, Error> {
    let _guard = crate::signals::PromptGuard::start();
    // Bracketed paste on and echo off until the prompt ends, however it ends (`keys`).
    let _open = keys::Open::start();
    let mut seen = crate::signals::interrupts();
    loop {
        ended()?;
        // Keys typed before this prompt was drawn (a second Enter, a paste meant for the
        // previous question) answer nothing: the operator answers what they have seen (issue 25).
        let stdin = rustix::stdio::stdin();
        if rustix::termios::isatty(stdin) {
            let _ = rustix::termios::tcflush(stdin, rustix::termios::QueueSelector::IFlush);
        }
        match prompt() {
            Ok(value) => {
                ended()?;
                return Ok(value);
            }
            Err(e) if interrupted(&e) => {
                if !pressed_ctrl_c(&e, &mut seen)? {
                    continue;
                }
                loop {
                    let abort = menu::confirm(
                        "Ctrl-C: abort the run? Its cleanup runs and the trail is sealed `aborted` (Ctrl-C again: abort now)",
                        false,
                    );
                    match abort {
                        Ok(true) => {
                            ended()?;
                            return Err(Error::Aborted);
                        }
                        // Back to the same prompt.
                        Ok(false) => break,
                        Err(e) if interrupted(&e) => {
                            if !pressed_ctrl_c(&e, &mut seen)? {
                                continue;
                            }
                            return Err(Error::Aborted);
                        }
                        Err(e) => return Err(gone(e)),
                    }
                }
            }
            Err(e) => return Err(gone(e)),
        }
    }
}

/// A prompt's read was interrupted: `Ok(true)` when by the operator's Ctrl-C (the cursor shown
/// again for what follows), `Ok(false)` when by another signal (the same prompt goes on), and
/// the error of a signal that ends the run.
fn pressed_ctrl_c(e: &dialoguer::Error, seen: &mut u64) -> Result<bool, Error> {
    crate::signals::consumed_at_prompt();
    ended()?;
    if !ctrl_c(e, seen) {
        return Ok(false);
    }
    let _ = console::Term::stderr().show_cursor();
    Ok(true)
}

/// Whether an interrupted read was Ctrl-C: the key (a byte in raw mode), or a SIGINT sent to
/// the process. Any other handled signal (a child ending, the nudge) interrupts the read too,
/// and `console` raises a SIGINT for every interrupted read: that one is not the operator's.
fn ctrl_c(e: &dialoguer::Error, seen: &mut u64) -> bool {
    let dialoguer::Error::IO(io) = e;
    let now = crate::signals::interrupts();
    let sent = now > *seen + 1;
    *seen = now;
    io.raw_os_error() != Some(libc::EINTR) || sent
}

/// A signal that ends the run came while a prompt was open: the prompt is not answered.
fn ended() -> Result<(), Error> {
    if crate::signals::hung_up() {
        let _ = console::Term::stderr().show_cursor();
        return Err(Error::Hangup(
            "the terminal hung up (SIGHUP) at a prompt: the run stopped, its trail is open".into(),
        ));
    }
    if let Some(signal) = crate::signals::terminated() {
        let _ = console::Term::stderr().show_cursor();
        return Err(Error::Stopped(signal));
    }
    Ok(())
}

fn interrupted(e: &dialoguer::Error) -> bool {
    let dialoguer::Error::IO(io) = e;
    io.kind() == std::io::ErrorKind::Interrupted
}

fn gone(e: dialoguer::Error) -> Error {
    if let Err(hangup) = ended() {
        return hangup;
    }
    let dialoguer::Error::IO(io) = e;
    Error::Hangup(format!("the terminal went away while asking ({io})"))
}

/// A secret, read key by key with nothing shown. dialoguer's `Password` reads a whole line,
/// which no signal interrupts: a SIGTERM or SIGHUP there waited for Enter, unlike at every
/// other prompt. The echo stays off from the first key to the last (between two keys too, so
/// a paste is never shown).
pub(super) fn hidden(prompt: &str, allow_empty: bool) -> dialoguer::Result<String> {
    use dialoguer::theme::Theme;
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    struct Echo(Option<rustix::termios::Termios>);
    impl Drop for Echo {
        fn drop(&mut self) {
            if let Some(was) = &self.0 {
                let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, was);
            }
        }
    }
    let fmt = |e: std::fmt::Error| dialoguer::Error::IO(std::io::Error::other(e));
    let (mut asking, mut answered) = (String::new(), String::new());
    theme().format_password_prompt(&mut asking, prompt).map_err(fmt)?;
    theme()
        .format_password_prompt_selection(&mut answered, prompt)
        .map_err(fmt)?;
    let term = console::Term::stderr();
    let was = tcgetattr(std::io::stdin()).map_err(std::io::Error::from)?;
    let mut quiet = was.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(std::io::stdin(), OptionalActions::Now, &quiet).map_err(std::io::Error::from)?;
    let _echo = Echo(Some(was));
    loop {
        term.write_str(&asking)?;
        let mut text = String::new();
        let read = loop {
            match keys::next(&term) {
                Ok(keys::Read::Key(console::Key::Enter)) => break Ok(()),
                Ok(keys::Read::Key(console::Key::Backspace)) => {
                    text.pop();
                }
                Ok(keys::Read::Key(console::Key::Char(c))) if !c.is_control() => text.push(c),
                // A pasted secret: its text, less the line break copied after it.
                Ok(keys::Read::Paste(pasted)) => text.push_str(pasted.trim_end_matches('\n')),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        // The prompt's line goes, whatever ended the read: a prompt asked again (or the
        // Ctrl-C question) starts on a clean line.
        term.clear_line()?;
        read?;
        if text.is_empty() && !allow_empty {
            continue;
        }
        term.write_line(&answered)?;
        return Ok(text);
    }
}
