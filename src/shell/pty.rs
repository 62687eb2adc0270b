//! The two terminals of a shell session: the operator's own (put in raw mode while the session
//! lasts, so every key reaches the shell as typed), and a fresh pseudo-terminal the shell's
//! program runs in (so its output passes through this process, to the screen and to the
//! recording). Both through `rustix`, already a dependency: `pty` opens the pseudo-terminal,
//! `termios` sets raw mode and window sizes; no terminal parser of our own.

use std::ffi::OsStr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::{OptionalActions, Termios, Winsize};

/// A window size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size {
    pub cols: u16,
    pub rows: u16,
}

impl Size {
    /// What a terminal that does not say its size is taken to be.
    pub(crate) const DEFAULT: Size = Size { cols: 80, rows: 24 };

    fn winsize(self) -> Winsize {
        Winsize {
            ws_row: self.rows,
            ws_col: self.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }
}

impl std::fmt::Display for Size {
    /// `100x24`: columns by rows, as asciinema writes a resize.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.cols, self.rows)
    }
}

/// The size of the terminal `fd` is, if it is one that says.
pub(crate) fn size_of(fd: BorrowedFd<'_>) -> Option<Size> {
    let ws = rustix::termios::tcgetwinsize(fd).ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then_some(Size {
        cols: ws.ws_col,
        rows: ws.ws_row,
    })
}

/// The operator's terminal in raw mode until dropped (also on an error or a panic): no echo, no
/// line editing, no signals from keys (Ctrl-C, Ctrl-Z and Ctrl-\ are bytes for the shell), no
/// output processing (the shell's own terminal does that).
pub(crate) struct RawMode {
    fd: BorrowedFd<'static>,
    saved: Termios,
}

impl RawMode {
    pub(crate) fn enter(fd: BorrowedFd<'static>) -> std::io::Result<RawMode> {
        let saved = rustix::termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        // TCSANOW, not TCSAFLUSH: keys typed ahead while the session started are the shell's.
        rustix::termios::tcsetattr(fd, OptionalActions::Now, &raw)?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // A terminal that went away cannot be restored, and needs not be.
        let _ = rustix::termios::tcsetattr(self.fd, OptionalActions::Now, &self.saved);
    }
}

/// A pseudo-terminal: the master end this process reads and writes, the slave end the
/// shell's program gets as its controlling terminal.
pub(crate) struct Pty {
    pub master: OwnedFd,
    /// Until the program is started with it.
    slave: Option<OwnedFd>,
}

impl Pty {
    pub(crate) fn open(size: Size) -> std::io::Result<Pty> {
        let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        rustix::pty::grantpt(&master)?;
        rustix::pty::unlockpt(&master)?;
        let name = rustix::pty::ptsname(&master, Vec::new())?;
        let slave = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let pty = Pty {
            master,
            slave: Some(slave),
        };
        pty.resize(size)?;
        Ok(pty)
    }

    /// Sets the window size: the kernel sends SIGWINCH to the program in the foreground of the
    /// pseudo-terminal (`ssh` passes it on to the remote one).
    pub(crate) fn resize(&self, size: Size) -> std::io::Result<()> {
        rustix::termios::tcsetwinsize(&self.master, size.winsize())?;
        Ok(())
    }

    /// Starts `program` with the slave end as its stdin, stdout, stderr and controlling
    /// terminal, in a session of its own. The slave is then closed here: once the program and
    /// everything it started have closed it too, reading the master ends (EIO).
    pub(crate) fn spawn(
        &mut self,
        program: &OsStr,
        args: &[&OsStr],
        env: &[(String, String)],
    ) -> std::io::Result<Child> {
        let slave = self
            .slave
            .take()
            .ok_or_else(|| std::io::Error::other("the pseudo-terminal already has its program"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        // SAFETY: between fork and exec only setsid(2) and ioctl(2) run, both async-signal-safe
        // system calls that allocate nothing.
        unsafe {
            command.pre_exec(|| {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(BorrowedFd::borrow_raw(0))?;
                Ok(())
            });
        }
        // `command`, and with it this process's copies of the slave, is dropped on return.
        command.spawn()
    }
}
