//! The live session: bytes between the operator's terminal and the shell's pseudo-terminal,
//! untouched both ways (full-screen programs work), with the shell's output also going to the
//! recording. The window size follows the operator's terminal: SIGWINCH (and a look at every
//! wake-up) resizes the pseudo-terminal, and `ssh` passes the new size to the remote one.
//!
//! It runs on the calling thread, as a prompt does: nothing else of the run happens while the
//! operator is in the shell. A terminal that goes away (SIGHUP, stdin closed) ends it: the
//! shell gets SIGHUP, as it would from a terminal of its own.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Child;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use super::pty::{Size, size_of};
use super::record::Cast;
use crate::error::Error;

/// How long output is still read after the shell's program exited, for what it wrote last.
const DRAIN: Duration = Duration::from_millis(300);

/// How long a shell told to hang up is given before it is killed.
const HANGUP_GRACE: Duration = Duration::from_secs(3);

/// How a session ended.
#[derive(Debug)]
pub(crate) struct Ended {
    /// The program's exit code (`ssh` passes the remote shell's on); `None`: killed by a signal.
    pub code: Option<i32>,
    /// The operator's terminal went away.
    pub hangup: bool,
    /// The window size at the end.
    pub size: Size,
    pub resizes: u32,
    /// The recording could not be written: the session was ended for it.
    pub recording_failed: Option<Error>,
    /// The run was stopped (SIGTERM, SIGQUIT, SIGHUP): the session was ended for it.
    pub stopped: Option<crate::signals::Signal>,
}

/// The write end of the SIGWINCH pipe, for the handler; -1 when no session listens.
static WINCH: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_winch(_: libc::c_int) {
    let fd = WINCH.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking, so a full pipe (a
        // resize already pending) loses nothing worth having.
        unsafe {
            libc::write(fd, b"w".as_ptr().cast(), 1);
        }
    }
}

/// SIGWINCH handled while the session lasts: the handler writes to a pipe the loop polls.
struct Winch {
    read: OwnedFd,
    _write: OwnedFd,
    previous: libc::sigaction,
}

impl Winch {
    fn install() -> std::io::Result<Winch> {
        use std::os::fd::AsRawFd;
        let flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
        let (read, write) = rustix::pipe::pipe_with(flags)?;
        WINCH.store(write.as_raw_fd(), Ordering::SeqCst);
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler only
        // calls write(2). The previous disposition is put back on drop.
        let previous = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_winch as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGWINCH, &action, &mut previous) != 0 {
                WINCH.store(-1, Ordering::SeqCst);
                return Err(std::io::Error::last_os_error());
            }
            previous
        };
        Ok(Winch {
            read,
            _write: write,
            previous,
        })
    }

    fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!(rustix::io::read(&self.read, &mut buf), Ok(n) if n > 0) {}
    }
}

impl Drop for Winch {
    fn drop(&mut self) {
        // SAFETY: restores the disposition saved at install.
        unsafe {
            libc::sigaction(libc::SIGWINCH, &self.previous, std::ptr::null_mut());
        }
        WINCH.store(-1, Ordering::SeqCst);
    }
}

/// Writes all of `bytes` to `fd`; false when it cannot (the other end is gone).
fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) | Err(Errno::AGAIN) => continue,
            Err(_) => return false,
        }
    }
    true
}

/// Signals the program's session (it leads it: its pid is the group's).
fn signal_group(child: &Child, signal: i32) {
    // SAFETY: kill(2) on the process group of our own child, which has not been reaped.
    unsafe {
        libc::kill(-(child.id() as i32), signal);
    }
}

/// Runs the session until the program ends. `terminal` is the operator's (in raw mode; read
/// from it, write to `screen`), `master` the shell's pseudo-terminal.
pub(crate) fn run(
    terminal: BorrowedFd<'_>,
    screen: BorrowedFd<'_>,
    pty: &super::pty::Pty,
    child: &mut Child,
    cast: &mut Cast,
    size: Size,
) -> Ended {
    let master = pty.master.as_fd();
    let winch = Winch::install().ok();
    let mut ended = Ended {
        code: None,
        hangup: false,
        size,
        resizes: 0,
        recording_failed: None,
        stopped: None,
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut reading_terminal = true;
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    let mut kill_at: Option<Instant> = None;
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    loop {
        if exited.is_none()
            && let Ok(Some(status)) = child.try_wait()
        {
            exited = Some((status, Instant::now() + DRAIN));
        }
        if let Some((_, until)) = exited
            && Instant::now() >= until
        {
            break;
        }
        if kill_at.is_some_and(|at| Instant::now() >= at) {
            signal_group(child, libc::SIGKILL);
            kill_at = None;
        }
        // A shutdown (or `kill -HUP`) waits for nobody: the shell is hung up as if its
        // terminal closed, and the run then stops as that signal says.
        if ended.stopped.is_none() {
            let hangup = crate::signals::hung_up();
            ended.stopped = crate::signals::terminated().or(hangup.then_some(crate::signals::Signal::Hangup));
            if ended.stopped.is_some() {
                ended.hangup |= hangup;
                signal_group(child, libc::SIGHUP);
                kill_at = Some(Instant::now() + HANGUP_GRACE);
            }
        }
        // The size now, whether or not a SIGWINCH said so (it may have reached another thread
        // first, or the pipe been full).
        if reading_terminal && let Some(now) = size_of(terminal).filter(|s| *s != ended.size) {
            ended.size = now;
            ended.resizes += 1;
            let _ = pty.resize(now);
            if let Err(e) = cast.resize(now)
                && ended.recording_failed.is_none()
            {
                ended.recording_failed = Some(e);
                signal_group(child, libc::SIGHUP);
                kill_at = Some(Instant::now() + HANGUP_GRACE);
            }
        }
        let mut fds = vec![PollFd::from_borrowed_fd(master, PollFlags::IN)];
        if reading_terminal {
            fds.push(PollFd::from_borrowed_fd(terminal, PollFlags::IN));
        }
        if let Some(w) = &winch {
            fds.push(PollFd::new(&w.read, PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, Some(&tick)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => break,
        }
        let master_ready = fds[0].revents();
        let terminal_ready = if reading_terminal {
            fds[1].revents()
        } else {
            PollFlags::empty()
        };
        if let Some(w) = &winch
            && fds.last().is_some_and(|f| !f.revents().is_empty())
        {
            w.drain();
        }
        drop(fds);
        if !terminal_ready.is_empty() {
            match rustix::io::read(terminal, &mut buf) {
                Ok(n) if n > 0 => {
                    // A program that has exited reads no more: its keys are dropped.
                    let _ = write_all(master, &buf[..n]);
                }
                Err(Errno::INTR) | Err(Errno::AGAIN) => {}
                // End of file or an error: the terminal went away. The shell hangs up too.
                _ => {
                    reading_terminal = false;
                    ended.hangup = true;
                    signal_group(child, libc::SIGHUP);
                    kill_at = Some(Instant::now() + HANGUP_GRACE);
                }
            }
        }
        if master_ready.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            match rustix::io::read(master, &mut buf) {
                Ok(n) if n > 0 => {
                    let out = &buf[..n];
                    if !ended.hangup && !write_all(screen, out) {
                        ended.hangup = true;
                    }
                    if let Err(e) = cast.output(out)
                        && ended.recording_failed.is_none()
                    {
                        ended.recording_failed = Some(e);
                        signal_group(child, libc::SIGHUP);
                        kill_at = Some(Instant::now() + HANGUP_GRACE);
                    }
                }
                Err(Errno::INTR) | Err(Errno::AGAIN) => {}
                // EIO: every holder of the slave end closed it. The session is over once the
                // program is reaped.
                _ => {
                    let status = match exited {
                        Some((status, _)) => Ok(status),
                        None => child.wait(),
                    };
                    ended.code = status.ok().and_then(|s| s.code());
                    return ended;
                }
            }
        }
    }
    // The program exited, and something it left behind still holds the terminal.
    if let Some((status, _)) = exited {
        ended.code = status.code();
    }
    ended
}
