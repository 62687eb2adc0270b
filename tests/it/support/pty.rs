//! Driving the real binary in a pseudo-terminal, as a person at a keyboard would.

use std::fs::File;
use std::io::Read;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rexpect::process::PtyProcess;
use rexpect::session::StreamSession;

use super::cmd::bin;

/// Arrow down, as a terminal sends it.
pub const DOWN: &str = "\x1b[B";

/// The size the pty reports (`stty size`, `TIOCGWINSZ`), and of the screen `Session::screen`
/// draws.
pub const ROWS: u16 = 24;
pub const COLS: u16 = 100;

/// A program in a pseudo-terminal. Expectations read its output with every escape sequence
/// removed by a real parser (`vte`: rexpect's own filter eats the character after `ESC 7`);
/// `screen()` replays the raw bytes through a terminal emulator (`vt100`) to see what a person
/// would see.
pub struct Session {
    process: PtyProcess,
    stream: StreamSession<File>,
    raw: Arc<Mutex<Vec<u8>>>,
    /// The size it started at (rows, columns): of the screen `screen` draws.
    size: (u16, u16),
}

impl Deref for Session {
    type Target = StreamSession<File>;
    fn deref(&self) -> &Self::Target {
        &self.stream
    }
}

impl DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.stream
    }
}

impl Session {
    pub fn process_mut(&mut self) -> &mut PtyProcess {
        &mut self.process
    }

    /// The screen as drawn from everything the program wrote so far.
    pub fn screen(&self) -> vt100::Screen {
        let size = |n| std::num::NonZeroU16::new(n).unwrap();
        let mut parser = vt100::Parser::new(size(self.size.0), size(self.size.1), 0);
        parser.process(&self.raw.lock().unwrap());
        parser.screen().clone()
    }

    /// Every byte the program wrote so far, escape sequences and all.
    pub fn raw(&self) -> Vec<u8> {
        self.raw.lock().unwrap().clone()
    }

    /// Resizes the terminal, as a person dragging its corner (the program gets SIGWINCH).
    pub fn resize(&self, rows: u16, cols: u16) {
        let file = self.process.get_file_handle().unwrap();
        set_size(&file, rows, cols);
    }
}

fn set_size(file: &File, rows: u16, cols: u16) {
    use std::os::fd::AsRawFd;
    let size = nix::libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from a valid pointer on an open pty master.
    let rc = unsafe { nix::libc::ioctl(file.as_raw_fd(), nix::libc::TIOCSWINSZ, &size) };
    assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
}

/// Starts `command` in a pty of `ROWS`×`COLS`.
pub fn start(command: Command) -> Session {
    open(command, ROWS, COLS)
}

/// Starts `command` in a pty of `rows`×`cols`, sized before the program is: `sh` runs `stty`
/// in the pty, then `exec`s it (with `command`'s environment), so its first look at the
/// terminal's width already sees `cols`.
pub fn start_sized(command: Command, rows: u16, cols: u16) -> Session {
    let mut sized = Command::new("sh");
    sized
        .arg("-c")
        .arg(format!("stty rows {rows} cols {cols} && exec \"$0\" \"$@\""))
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => sized.env(key, v),
            None => sized.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        sized.current_dir(dir);
    }
    open(sized, rows, cols)
}

fn open(command: Command, rows: u16, cols: u16) -> Session {
    let mut process = PtyProcess::new(command).expect("the program starts in a pty");
    process.set_kill_timeout(Some(20_000));
    let file = process.get_file_handle().unwrap();
    set_size(&file, rows, cols);
    let raw = Arc::new(Mutex::new(Vec::new()));
    let reader = Stripped {
        inner: file.try_clone().unwrap(),
        parser: vte::Parser::new(),
        text: Vec::new(),
        raw: raw.clone(),
    };
    let options = rexpect::reader::Options::new().timeout_ms(Some(20_000));
    let stream = StreamSession::new(reader, file, options);
    Session {
        process,
        stream,
        raw,
        size: (rows, cols),
    }
}

/// The pty's output as text: what is printed, and line controls; escape sequences dropped.
struct Stripped {
    inner: File,
    parser: vte::Parser,
    text: Vec<u8>,
    raw: Arc<Mutex<Vec<u8>>>,
}

struct Text<'a>(&'a mut Vec<u8>);

impl vte::Perform for Text<'_> {
    fn print(&mut self, c: char) {
        let mut buf = [0; 4];
        self.0.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }

    fn execute(&mut self, byte: u8) {
        if matches!(byte, b'\n' | b'\r' | b'\t') {
            self.0.push(byte);
        }
    }
}

impl Read for Stripped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.text.is_empty() {
            let mut chunk = [0u8; 4096];
            let n = match self.inner.read(&mut chunk) {
                Ok(n) => n,
                // The program ended and closed the pty: that is the end of its output.
                Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => 0,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(0);
            }
            self.raw.lock().unwrap().extend_from_slice(&chunk[..n]);
            self.parser.advance(&mut Text(&mut self.text), &chunk[..n]);
        }
        let n = self.text.len().min(buf.len());
        buf[..n].copy_from_slice(&self.text[..n]);
        self.text.drain(..n);
        Ok(n)
    }
}

/// `runbook ARGS... --audit-dir AUDIT` in a pty, with colours on, no agent and no catalog from
/// the developer's shell; output is read with the escape sequences stripped.
pub fn spawn(args: &[&str], audit: &Path) -> Session {
    start(command(args, audit))
}

/// [`spawn`] with more environment, e.g. a time zone (`TZ`).
pub fn spawn_env(args: &[&str], audit: &Path, env: &[(&str, &str)]) -> Session {
    let mut command = command(args, audit);
    command.envs(env.iter().copied());
    start(command)
}

fn command(args: &[&str], audit: &Path) -> Command {
    let mut command = Command::new(bin());
    command
        .args(args)
        .arg("--audit-dir")
        .arg(audit)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("RUNBOOK_PATH")
        .env_remove("RUNBOOK_SIGNING_KEY")
        .env_remove("SSH_AUTH_SOCK")
        .env("USER", "tester");
    command
}

/// The exit code of the session's process, which must end within `limit` (a hang is a
/// failure that shows the screen, not a test that never ends).
#[track_caller]
pub fn wait_exit_within(session: &mut Session, limit: Duration) -> i32 {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match session.process_mut().status() {
            Some(nix::sys::wait::WaitStatus::StillAlive) => {}
            Some(nix::sys::wait::WaitStatus::Exited(_, code)) => return code,
            other => panic!("unexpected end: {other:?}"),
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "still running after {limit:?}; the screen:\n{}",
                session.screen().contents()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `runbook ARGS...` in a pty whose master end the test alone holds, so that it can close it
/// as a terminal window closes. (rexpect's reader thread keeps a copy of the master open.)
pub struct Closable {
    master: Option<File>,
    child: std::process::Child,
    text: String,
    seen: usize,
    parser: vte::Parser,
}

impl Closable {
    pub fn spawn(args: &[&str], audit: &Path) -> Closable {
        use std::os::fd::{AsRawFd, FromRawFd};
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::process::CommandExt;
        let flags = nix::libc::O_RDWR | nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC;
        // SAFETY: plain libc calls on a descriptor this function owns; CLOEXEC keeps the
        // master out of every child, so closing ours is the terminal closing.
        let master = unsafe {
            let fd = nix::libc::posix_openpt(flags);
            assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
            assert_eq!(nix::libc::grantpt(fd), 0);
            assert_eq!(nix::libc::unlockpt(fd), 0);
            File::from_raw_fd(fd)
        };
        set_size(&master, ROWS, COLS);
        let mut name = [0 as nix::libc::c_char; 128];
        // SAFETY: the buffer is valid for its length.
        let rc = unsafe { nix::libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
        assert_eq!(rc, 0);
        // SAFETY: ptsname_r wrote a NUL-terminated path.
        let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY)
            .open(name.to_str().unwrap())
            .unwrap();
        let mut command = command(args, audit);
        command
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: only async-signal-safe calls between fork and exec. A session of its own
        // with the pty as its controlling terminal, as a terminal emulator starts a shell.
        unsafe {
            command.pre_exec(|| {
                if nix::libc::setsid() < 0 || nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("the program starts in a pty");
        drop(command);
        Closable {
            master: Some(master),
            child,
            text: String::new(),
            seen: 0,
            parser: vte::Parser::new(),
        }
    }

    /// Reads the output (escape sequences stripped) until `needle` appears after what was
    /// expected before; 20 s at most.
    #[track_caller]
    pub fn expect(&mut self, needle: &str) {
        use std::os::fd::AsRawFd;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(at) = self.text[self.seen..].find(needle) {
                self.seen += at + needle.len();
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "`{needle}` never came; the output:\n{}",
                self.text
            );
            let master = self.master.as_mut().expect("the terminal is open");
            let mut poll = nix::libc::pollfd {
                fd: master.as_raw_fd(),
                events: nix::libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { nix::libc::poll(&mut poll, 1, 100) } <= 0 {
                continue;
            }
            let mut chunk = [0u8; 4096];
            let n = master.read(&mut chunk).unwrap_or(0);
            assert!(
                n > 0,
                "the program closed its terminal; the output:\n{}",
                self.text
            );
            let mut text = Vec::new();
            self.parser.advance(&mut Text(&mut text), &chunk[..n]);
            self.text.push_str(&String::from_utf8_lossy(&text));
        }
    }

    /// Types `keys`, once the prompt reads (as `keys` does for a `Session`).
    pub fn send(&mut self, keys: &str) {
        use std::io::Write;
        std::thread::sleep(Duration::from_millis(300));
        let master = self.master.as_mut().expect("the terminal is open");
        master.write_all(keys.as_bytes()).unwrap();
    }

    /// Closes the terminal: the kernel hangs the pty up (SIGHUP to the program, which leads
    /// the session), and from then on every read or write of it fails.
    pub fn close(&mut self) {
        self.master = None;
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit code, which must come within `limit`.
    #[track_caller]
    pub fn wait_exit(&mut self, limit: Duration) -> i32 {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status
                    .code()
                    .unwrap_or_else(|| panic!("ended by a signal: {status:?}"));
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Closable {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends keys once the prompt is reading: keys typed before it switches the terminal to raw
/// mode are flushed away, as they would be for a person typing ahead.
pub fn keys(session: &mut Session, keys: &str) {
    std::thread::sleep(Duration::from_millis(300));
    session.send(keys).unwrap();
    session.flush().unwrap();
}

/// The exit code of the session's process.
pub fn wait_exit(session: &mut Session) -> i32 {
    match session.process_mut().wait().unwrap() {
        nix::sys::wait::WaitStatus::Exited(_, code) => code,
        other => panic!("unexpected end: {other:?}"),
    }
}

/// Whether a process whose command line holds `pattern` runs (`pgrep -f`).
pub fn pgrep(pattern: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The pid of the `runbook` that writes to `audit` (its command line names the audit dir).
#[track_caller]
pub fn pid_of(audit: &Path) -> i32 {
    let pattern = format!("audit-dir {}", audit.display());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("pgrep").args(["-f", &pattern]).output().unwrap();
        let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if let [pid] = pids[..] {
            return pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no single runbook: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the program's main thread blocks in a prompt's `poll` (its wchan says so), so
/// that a signal sent next finds the prompt reading, not about to read.
#[track_caller]
pub fn wait_reading(pid: i32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        if wchan.starts_with("poll_schedule") || wchan.starts_with("do_sys_poll") {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never reading: {wchan}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
