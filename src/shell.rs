//! A shell on a step's host, from the step's prompt (design §17): over the run's own master
//! connection (`ssh -S <control socket> -tt`: no second login, no new host-key prompt), or on
//! this machine for `local`; in a pseudo-terminal of its own (`pty`), the operator's terminal
//! in raw mode, the window size kept; the run's non-secret variables exported and a prompt
//! naming the host, the run and the step; its output recorded as asciicast v2 (`record`),
//! masked. The executor (`executor/shell.rs`) decides where it may open and records it in the
//! trail; `replay` plays a recording back.

pub(crate) mod pty;
pub(crate) mod record;
pub(crate) mod replay;
pub(crate) mod session;

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::script::{MAX_EXPORTED, is_valid_name, shell_quote};
use pty::{Pty, RawMode, Size};
use record::Cast;
use session::Ended;

/// The start-up file every shell reads (bash as `--rcfile`, other shells as `$ENV`): a bash
/// started for a remote login reads the login files first (a `--rcfile` bash is not a login
/// shell), a local one its `~/.bashrc`; then the prompt names the host, run and step. A shell
/// that reads neither (zsh, fish) keeps its own prompt; the variables are exported anyway.
const RC: &str = r#"# The start-up file of a shell opened by `runbook` (removed when the shell ends).
if [ -n "${BASH_VERSION-}" ]; then
  if [ -n "${__runbook_login-}" ]; then
    if [ -r /etc/profile ]; then . /etc/profile; fi
    for __runbook_f in "$HOME/.bash_profile" "$HOME/.bash_login" "$HOME/.profile"; do
      if [ -r "$__runbook_f" ]; then . "$__runbook_f"; break; fi
    done
    unset __runbook_f
  elif [ -r "$HOME/.bashrc" ]; then
    . "$HOME/.bashrc"
  fi
fi
unset ENV __runbook_login
PS1=$RUNBOOK_PS1
if [ -n "${BASH_VERSION-}" ]; then
  # A prompt set again before each one: a PROMPT_COMMAND of the login files that rewrites PS1
  # (a git prompt, a prompt framework) runs first, then this one.
  __runbook_prompt() { PS1=$RUNBOOK_PS1; }
  case $(declare -p PROMPT_COMMAND 2>/dev/null) in
    "declare -a"*) PROMPT_COMMAND+=(__runbook_prompt) ;;
    *) PROMPT_COMMAND="${PROMPT_COMMAND:+$PROMPT_COMMAND
}__runbook_prompt" ;;
  esac
fi
"#;

/// On the host, before the session: a private directory (0700) for the variables (`env`,
/// from standard input: never an argv) and the start-up file; prints the directory and the
/// login shell.
fn remote_prepare() -> String {
    format!(
        "umask 077; d=$(mktemp -d \"${{TMPDIR:-/tmp}}/runbook-shell.XXXXXX\") || exit 1; cat > \"$d/env\" || exit 1; cat > \"$d/rc\" <<'RUNBOOK_RC'\n{RC}RUNBOOK_RC\nprintf '%s\\n%s\\n' \"$d\" \"${{SHELL:-/bin/sh}}\""
    )
}

/// The session's command on the host, given that directory as `$1`: the variables, then the
/// login shell (bash with the start-up file, others as login shells with `ENV`), then the
/// directory removed. No single quote in it: it is quoted once more for the login shell.
const REMOTE_SESSION: &str = r#". "$1/env" || exit 1
s=${SHELL:-/bin/sh}
case ${s##*/} in
  bash) __runbook_login=1 "$s" --rcfile "$1/rc" -i ;;
  *) ENV=$1/rc "$s" -l ;;
esac
st=$?
rm -rf "$1"
exit $st"#;

/// Where the shell opens.
pub(crate) enum Place<'a> {
    /// This machine: `$SHELL`, else `/bin/sh`.
    Local,
    /// Over the run's master connection to a host.
    Ssh { control_socket: &'a Path },
}

/// What the shell is told: the run's non-secret variables, and which run, step and host it is
/// for.
pub(crate) struct Context<'a> {
    pub run_id: &'a str,
    pub step: &'a str,
    /// The host it opens on, as the run names it (`web-1`, `local`).
    pub host: &'a str,
    /// The recording's number in the run: `RUNBOOK_SHELL`.
    pub number: u32,
    /// Non-secret variables (the caller leaves secrets out).
    pub vars: Vec<(String, String)>,
    /// How long preparing the host may take before it is given up.
    pub timeout: Duration,
}

impl Context<'_> {
    /// The variables the shell gets: the run's, then `RUNBOOK_RUN`, `RUNBOOK_STEP`,
    /// `RUNBOOK_SHELL`. Names no shell can take, and values too big to export, are left out.
    fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .vars
            .iter()
            .filter(|(k, v)| is_valid_name(k) && !v.contains('\0') && k.len() + 1 + v.len() <= MAX_EXPORTED)
            .cloned()
            .collect();
        env.push(("RUNBOOK_RUN".into(), self.run_id.to_string()));
        env.push(("RUNBOOK_STEP".into(), self.step.to_string()));
        env.push(("RUNBOOK_SHELL".into(), self.number.to_string()));
        env.push(("RUNBOOK_HOST".into(), self.host.to_string()));
        env.push(("RUNBOOK_PS1".into(), self.prompt()));
        env
    }

    /// The prompt: `[runbook web-1 <run> step <step>] $ `. Its text is only letters, digits and
    /// `._-@:/+,=`: nothing a shell expands in a prompt (`$`, backquotes, `\`, `!`, `%`) nor a
    /// control character; anything else shows as `?`. It goes to the shell in the environment
    /// (`RUNBOOK_PS1`), never into a command line.
    fn prompt(&self) -> String {
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_alphanumeric() || "._-@:/+,=".contains(c) {
                        c
                    } else {
                        '?'
                    }
                })
                .collect()
        };
        format!(
            "[runbook {} {} step {}] $ ",
            safe(self.host),
            safe(self.run_id),
            safe(self.step)
        )
    }
}

/// A shell ready to start: its program and arguments, and what must live as long as it does.
pub(crate) struct Prepared {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    /// The login shell, for the recording's header.
    pub shell: String,
    /// A local shell's start-up file, removed when dropped.
    _dir: Option<tempfile::TempDir>,
}

/// The `ssh` options that make a client use the master behind `socket` and nothing else: no
/// configuration file (a `RemoteCommand` or `SendEnv` of the user's would change the session),
/// and should the master be gone, a fallback connection that fails at once (`ProxyCommand
/// false`, `BatchMode`) rather than logging in again.
fn mux_args(socket: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-S".into(), socket.into()];
    for option in [
        "ControlMaster=no",
        "BatchMode=yes",
        "ProxyCommand=false",
        // Not "Shared connection to ... closed." at the end of every session.
        "LogLevel=ERROR",
    ] {
        args.extend(["-o".into(), option.into()]);
    }
    args.extend(["-F".into(), "/dev/null".into()]);
    args
}

/// The host name given to a client of the master: never resolved, never connected to.
const MUX_HOST: &str = "runbook-master";

/// Gets the shell ready where it opens. For a host: one command over the master writes the
/// variables into a private directory there. `Err`: why there is no shell (in words).
pub(crate) fn prepare(place: &Place<'_>, context: &Context<'_>) -> Result<Prepared, String> {
    let env = context.env();
    match place {
        Place::Local => {
            let shell = std::env::var("SHELL")
                .ok()
                .filter(|s| !s.is_empty() && Path::new(s).is_file())
                .unwrap_or_else(|| "/bin/sh".into());
            let dir = tempfile::Builder::new()
                .prefix("runbook-shell-")
                .tempdir()
                .map_err(|e| format!("cannot create a directory for the shell's start-up file: {e}"))?;
            let rc = dir.path().join("rc");
            std::fs::write(&rc, RC).map_err(|e| format!("cannot write {}: {e}", rc.display()))?;
            let mut env = env;
            let args: Vec<OsString> = if is_bash(&shell) {
                vec!["--rcfile".into(), rc.into(), "-i".into()]
            } else {
                env.push(("ENV".into(), rc.display().to_string()));
                vec!["-i".into()]
            };
            Ok(Prepared {
                program: shell.clone().into(),
                args,
                env,
                shell,
                _dir: Some(dir),
            })
        }
        Place::Ssh { control_socket } => {
            let (dir, shell) = prepare_remote(control_socket, &env, context.timeout)?;
            let mut args = mux_args(control_socket);
            // A terminal on the host even though ours is a pipe to `ssh`'s own pty; no escape
            // character: every byte is the shell's.
            args.extend([
                "-tt".into(),
                "-e".into(),
                "none".into(),
                "--".into(),
                MUX_HOST.into(),
            ]);
            args.push(
                format!(
                    "sh -c {} runbook-shell {}",
                    shell_quote(REMOTE_SESSION),
                    shell_quote(&dir)
                )
                .into(),
            );
            Ok(Prepared {
                program: "ssh".into(),
                args,
                env: Vec::new(),
                shell,
                _dir: None,
            })
        }
    }
}

fn is_bash(shell: &str) -> bool {
    Path::new(shell).file_name() == Some(OsStr::new("bash"))
}

/// Runs the preparing command over the master; returns the directory and the login shell.
fn prepare_remote(
    socket: &Path,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<(String, String), String> {
    let mut text = String::new();
    for (name, value) in env {
        text.push_str(&format!("{name}={}\nexport {name}\n", shell_quote(value)));
    }
    let mut child = Command::new("ssh")
        .args(mux_args(socket))
        .args(["-T", "--", MUX_HOST])
        .arg(format!("sh -c {}", shell_quote(&remote_prepare())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `ssh`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // Small (the variables): it fits the pipe, and the host reads it at once.
        let _ = stdin.write_all(text.as_bytes());
    }
    let until = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the host did not answer within {}",
                    crate::duration::format(timeout)
                ));
            }
            Err(e) => return Err(format!("cannot wait for `ssh`: {e}")),
        }
    };
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    match (status.success(), lines.next(), lines.next()) {
        (true, Some(dir), Some(shell)) if dir.starts_with('/') => Ok((dir.to_string(), shell.to_string())),
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            Err(if stderr.is_empty() {
                format!("preparing the shell on the host failed ({status})")
            } else {
                format!("preparing the shell on the host failed: {stderr}")
            })
        }
    }
}

/// The operator's terminal: read from stdin, draw on stderr (a run's prompts need both to be
/// terminals, and stdout may be a log).
pub(crate) fn terminal_size() -> Size {
    pty::size_of(rustix::stdio::stdin())
        .or_else(|| pty::size_of(rustix::stdio::stderr()))
        .unwrap_or(Size::DEFAULT)
}

/// Runs the prepared shell until it ends, recording its output in `cast`. `Err`: it could not
/// start at all (the recording then holds only its header).
pub(crate) fn run(prepared: &Prepared, cast: &mut Cast, size: Size) -> std::io::Result<Ended> {
    let mut pty = Pty::open(size)?;
    let args: Vec<&OsStr> = prepared.args.iter().map(OsString::as_os_str).collect();
    let mut child = pty.spawn(&prepared.program, &args, &prepared.env)?;
    let raw = RawMode::enter(rustix::stdio::stdin());
    let ended = session::run(
        rustix::stdio::stdin(),
        rustix::stdio::stderr(),
        &pty,
        &mut child,
        cast,
        size,
    );
    drop(raw);
    // Reaped either way: a program still running here (something held its terminal) is told
    // to go.
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::Context;

    #[test]
    fn the_prompt_names_the_host_and_holds_nothing_a_shell_expands() {
        let context = Context {
            run_id: "20261122T030211Z-db-restore-3f9a",
            step: "count-rows",
            host: "web-1$(reboot)`x`\\u!\x1b]0;t\x07",
            number: 1,
            vars: Vec::new(),
            timeout: std::time::Duration::from_secs(1),
        };
        assert_eq!(
            context.prompt(),
            "[runbook web-1??reboot??x??u???0?t? 20261122T030211Z-db-restore-3f9a step count-rows] $ "
        );
        let env = context.env();
        assert!(
            env.iter()
                .any(|(k, v)| k == "RUNBOOK_PS1" && *v == context.prompt())
        );
    }
}
