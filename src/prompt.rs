//! The operator's decisions: asked on a terminal (dialoguer), or given in advance (`--yes`,
//! `--answer STEP=VALUE`). The executor asks; this module knows nothing of steps' effects.

use std::collections::HashMap;
use std::io::IsTerminal;

use dialoguer::FuzzySelect;
use dialoguer::theme::ColorfulTheme;

mod keys;
mod line;
mod menu;

use line::Field;

use crate::error::Error;
use crate::ui::{SharedClock, StatusLine};

/// What to do with a step before it acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    Run,
    Skip,
    /// The command as edited (the operator saw its diff); `run`: run it now, else ask again.
    Edit {
        command: String,
        run: bool,
    },
    ByHand,
    Note(String),
    Abort,
    /// Open a shell on the step's host (design §17), then ask again.
    Shell,
}

/// What the operator reports for a manual step (or a step run by hand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Done,
    Skip,
    Failed,
}

/// What to do after a step failed, timed out, was lost or was stopped with Ctrl-C.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    Retry,
    /// A fleet step: again on the hosts that did not succeed, not on those that did.
    RetryFailedHosts,
    Skip,
    Goto(String),
    FollowOnFailure,
    MarkDone,
    Note(String),
    Abort,
    /// Open a shell on the step's host (design §17), then ask again.
    Shell,
}

/// A step offered by *Go to another step*.
#[derive(Debug, Clone)]
pub struct GotoStep {
    pub id: String,
    /// As the runbook says it (with its `{{ name }}`s filled in): shown escaped.
    pub title: String,
    /// The step that failed.
    pub here: bool,
    /// Presented before in this run.
    pub visited: bool,
}

impl GotoStep {
    /// Its row in the list: `id — title`, and where the run has been.
    fn row(&self) -> String {
        let mark = if self.here {
            "  (here)"
        } else if self.visited {
            "  (visited)"
        } else {
            ""
        };
        format!(
            "{} — {}{mark}",
            self.id,
            crate::secrets::escape::value(&self.title)
        )
    }
}

/// Answers given in advance on the command line.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    by_step: HashMap<String, String>,
}

impl Answers {
    /// From `--answer STEP=VALUE` flags (split by clap); the last answer for a step wins.
    pub fn from_flags(flags: &[crate::cli::Pair]) -> Answers {
        let by_step = flags
            .iter()
            .map(|p| (p.name.trim().to_string(), p.value.clone()))
            .collect();
        Answers { by_step }
    }

    pub fn get(&self, step: &str) -> Option<&str> {
        self.by_step.get(step).map(String::as_str)
    }

    pub fn steps(&self) -> impl Iterator<Item = &String> {
        self.by_step.keys()
    }
}

/// Who answers the questions of a run.
#[derive(Debug)]
pub enum Operator {
    /// A person at a terminal; prompts show the run's clock, ticking, while they wait.
    Terminal(SharedClock),
    Unattended(Answers),
}

/// True when both stdin and stderr are terminals: the only case where prompts can work.
pub fn has_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// A note or a reason: a paste of several lines taken whole; not empty.
const MULTI: Field = Field {
    multi: true,
    allow_empty: false,
};

fn theme() -> ColorfulTheme {
    ColorfulTheme::default()
}

/// Runs a prompt. Ctrl-C there does not end the run: it asks whether to abort (a second
/// Ctrl-C aborts at once), and a "no" asks the same question again. A terminal that went away
/// (SIGHUP, or a read or write that fails) is a hangup: the run stops and its trail stays open
/// for `resume`. SIGTERM or SIGQUIT ends the wait too: the run ends `interrupted`, nobody is
/// asked anything more. Any other signal that interrupts the read leaves the prompt as it was
/// (`console` reports every interrupted read as a Ctrl-C: `ctrl_c` tells them apart).
fn ask<T>(prompt: impl Fn() -> dialoguer::Result<T>) -> Result<T, Error> {
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
                crate::signals::consumed_at_prompt();
                ended()?;
                if !ctrl_c(&e, &mut seen) {
                    continue;
                }
                let _ = console::Term::stderr().show_cursor();
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
                            crate::signals::consumed_at_prompt();
                            ended()?;
                            if !ctrl_c(&e, &mut seen) {
                                continue;
                            }
                            let _ = console::Term::stderr().show_cursor();
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

impl Operator {
    pub fn terminal() -> Operator {
        Operator::Terminal(SharedClock::default())
    }

    pub fn is_interactive(&self) -> bool {
        matches!(self, Operator::Terminal(_))
    }

    /// The clock the UI sets once the run starts and prompts show.
    pub fn clock(&self) -> SharedClock {
        match self {
            Operator::Terminal(clock) => clock.clone(),
            Operator::Unattended(_) => SharedClock::default(),
        }
    }

    /// Runs a prompt with the RTO budget ticking on the terminal's last line.
    fn ask<T>(&self, prompt: impl Fn() -> dialoguer::Result<T>) -> Result<T, Error> {
        let _status = match self {
            Operator::Terminal(clock) => clock.get().and_then(StatusLine::show),
            Operator::Unattended(_) => None,
        };
        ask(prompt)
    }

    /// "Edit the command first": the command edited, its change shown as a diff (`mask`ed:
    /// no secret the operator typed is shown in clear), and confirmed. `Some((edited, run))`:
    /// the edit stands, and runs now when `run`; `None`: the command stays as written.
    fn edit(&self, command: &str, mask: &dyn Fn(&str) -> String) -> Result<Option<(String, bool)>, Error> {
        let mut text = command.to_string();
        let mut first = true;
        loop {
            match self.edit_text(&text, mask)? {
                Some(edited) => text = edited,
                // Nothing changed in this round: the first one leaves the command as it was,
                // a later one keeps the edit before it, which is asked about again.
                None if first => return Ok(None),
                None => {}
            }
            first = false;
            if text.trim_end() == command.trim_end() {
                crate::ewriteln!("    the command is unchanged");
                return Ok(None);
            }
            crate::ewriteln!("    the edit (- as written, + as edited):");
            for line in crate::review::model::edit_diff(&mask(command), &mask(&text)) {
                crate::ewriteln!("      {}", crate::secrets::escape::value(&line.marked()));
            }
            // No default: an Enter alone runs nothing the operator has not picked.
            let choice = self.pick(
                "Run the edited command? (arrows, then Enter)",
                &[
                    "Yes, run it as edited",
                    "Edit it again",
                    "No, keep the command as written",
                    "Keep the edit, back to the step's choices",
                ],
                None,
            )?;
            match choice {
                0 => return Ok(Some((text, true))),
                1 => continue,
                2 => {
                    crate::ewriteln!("    the edit is dropped: the command stays as written");
                    return Ok(None);
                }
                _ => return Ok(Some((text, false))),
            }
        }
    }

    /// One round of editing: in `$VISUAL` / `$EDITOR` when one is set (git's rule: `$VISUAL`
    /// unless the terminal is dumb, then `$EDITOR`), else inline. `None`: nothing to take (the
    /// editor closed without saving, or a multi-line command and no editor).
    fn edit_text(&self, command: &str, mask: &dyn Fn(&str) -> String) -> Result<Option<String>, Error> {
        let dumb = std::env::var("TERM").map_or(true, |t| t.is_empty() || t == "dumb");
        let editor = ["VISUAL", "EDITOR"]
            .into_iter()
            .filter(|name| !(dumb && *name == "VISUAL"))
            .filter_map(|name| std::env::var(name).ok())
            .find(|e| !e.trim().is_empty());
        let Some(editor) = editor else {
            return self.edit_inline(command, mask);
        };
        match dialoguer::Editor::new()
            .executable(&editor)
            .extension(".sh")
            .edit(command)
        {
            Ok(Some(text)) => Ok(Some(text)),
            Ok(None) => {
                crate::ewriteln!("    the editor closed without saving: the command is unchanged");
                Ok(None)
            }
            Err(e) => {
                crate::ewriteln!("    cannot run the editor `{editor}` ({e}): edit the command here instead");
                self.edit_inline(command, mask)
            }
        }
    }

    /// The command on one line, with a shell's editing keys (`line`); once done, the line
    /// left on the screen is `mask`ed. A command of several lines is not squeezed onto one:
    /// it needs a real editor.
    fn edit_inline(&self, command: &str, mask: &dyn Fn(&str) -> String) -> Result<Option<String>, Error> {
        let lines = command.trim_end().lines().count();
        if lines > 1 {
            crate::ewriteln!(
                "    this command has {lines} lines and the editor here edits one: set $VISUAL or $EDITOR to edit it, or run it by hand"
            );
            return Ok(None);
        }
        let state = std::cell::RefCell::new(line::Line::new(command.trim_end()));
        let field = Field {
            multi: false,
            allow_empty: true,
        };
        self.ask(|| line::read("Command", &state, mask, field)).map(Some)
    }

    /// Before a run step acts. Unattended: run. `shell`: the words of the Shell choice, when
    /// one is offered (just before "Abort the run", which stays last: Up from the first
    /// choice lands on it, and it asks before it aborts).
    pub fn before_run(
        &self,
        command: &str,
        shell: Option<&str>,
        mask: &dyn Fn(&str) -> String,
    ) -> Result<Before, Error> {
        if !self.is_interactive() {
            return Ok(Before::Run);
        }
        let mut items = vec![
            "Run it",
            "Skip it",
            "Edit the command first",
            "Run it by hand (print the command for my shell)",
            "Add a note",
        ];
        items.extend(shell);
        items.push("Abort the run");
        let shell_at = shell.map(|_| 5);
        loop {
            let choice = self.pick("What now?", &items, Some(0))?;
            return Ok(match choice {
                c if Some(c) == shell_at => Before::Shell,
                0 => Before::Run,
                1 => Before::Skip,
                2 => match self.edit(command, mask)? {
                    Some((command, run)) => Before::Edit { command, run },
                    None => continue,
                },
                3 => Before::ByHand,
                4 => Before::Note(self.note()?),
                _ => Before::Abort,
            });
        }
    }

    /// The operator picked "Abort the run": one key from a default, so it is confirmed (Enter
    /// alone is no) and its reason asked for the trail. `None`: not aborting after all.
    /// Unattended: aborting, with no reason to give.
    pub fn abort_reason(&self) -> Result<Option<String>, Error> {
        if !self.is_interactive() {
            return Ok(Some(String::new()));
        }
        if !self.confirm("Abort the run? Its cleanup runs and the trail is sealed `aborted`")? {
            return Ok(None);
        }
        self.reason("Why abort? (recorded in the trail)").map(Some)
    }

    /// A reason the trail keeps (an abort, a step marked done by hand).
    pub fn reason(&self, prompt: &str) -> Result<String, Error> {
        self.text(prompt, MULTI).map(|text| text.trim().to_string())
    }

    pub fn note(&self) -> Result<String, Error> {
        self.text("Note", MULTI)
    }

    /// Free text, on the line editor (`line`): a paste is text, never keys.
    fn text(&self, prompt: &str, field: Field) -> Result<String, Error> {
        let state = std::cell::RefCell::new(line::Line::new(""));
        self.ask(|| line::read(prompt, &state, &|s: &str| s.to_string(), field))
    }

    /// A pick from a menu; `None` as `default`: nothing picked until an arrow is pressed.
    fn pick<S: AsRef<str>>(&self, prompt: &str, items: &[S], default: Option<usize>) -> Result<usize, Error> {
        self.ask(|| menu::select(prompt, items, default, false))
            .map(|pick| pick.expect("a menu without Esc always picks"))
    }

    /// A yes/no confirmation. Unattended (`--yes`): yes.
    pub fn confirm(&self, question: &str) -> Result<bool, Error> {
        if !self.is_interactive() {
            return Ok(true);
        }
        self.ask(|| menu::confirm(question, false))
    }

    /// A typed confirmation: the operator must type `phrase`. Returns what was typed (or the
    /// answer given in advance), for the caller to compare and record.
    pub fn type_phrase(&self, step: &str, phrase: &str) -> Result<Option<String>, Error> {
        match self {
            Operator::Unattended(answers) => Ok(answers.get(step).map(str::to_string)),
            Operator::Terminal(_) => {
                let typed = self.text(
                    &format!("Type `{phrase}` to go ahead (empty to cancel)"),
                    Field {
                        multi: false,
                        allow_empty: true,
                    },
                )?;
                Ok(Some(typed))
            }
        }
    }

    /// A decision: returns the index of the chosen option. Unattended: the answer given in
    /// advance (label or goto), else `preselected` (the first option whose `when` holds, or the
    /// fallback); `None` when nothing applies. Interactively, `preselected` is the default
    /// unless some `when` could not be `judged`: then nothing is.
    pub fn choose(
        &self,
        step: &str,
        labels: &[(String, String)],
        preselected: Option<usize>,
        judged: bool,
    ) -> Result<Option<usize>, Error> {
        match self {
            Operator::Unattended(answers) => Ok(match answers.get(step) {
                Some(answer) => labels
                    .iter()
                    .position(|(label, goto)| label == answer || goto == answer),
                None => preselected,
            }),
            Operator::Terminal(_) => {
                let items: Vec<String> = labels
                    .iter()
                    .map(|(label, goto)| format!("{label}  → {goto}"))
                    .collect();
                // Not judged (a `when` on an unset variable): no default, so a reflexive
                // Enter picks nothing; an arrow key selects.
                let default = judged.then(|| preselected.unwrap_or(0));
                let choice = self.pick("Decision", &items, default)?;
                Ok(Some(choice))
            }
        }
    }

    /// The outcome of a manual step (or one run by hand).
    pub fn report(&self, step: &str) -> Result<Option<Report>, Error> {
        match self {
            Operator::Unattended(answers) => Ok(answers.get(step).and_then(parse_report)),
            Operator::Terminal(_) => {
                let choice = self.pick(
                    "How did it go?",
                    &["Done", "Skip it", "It failed", "Abort the run"],
                    Some(0),
                )?;
                Ok([Some(Report::Done), Some(Report::Skip), Some(Report::Failed), None][choice])
            }
        }
    }

    /// After a failure. Unattended: follow `on_failure` when there is one, else abort.
    pub fn after_failure(
        &self,
        on_failure: Option<&str>,
        steps: &[GotoStep],
        failed_hosts: Option<&[String]>,
        shell: Option<&str>,
        approval_refused: bool,
    ) -> Result<AfterFailure, Error> {
        if !self.is_interactive() {
            return Ok(if on_failure.is_some() {
                AfterFailure::FollowOnFailure
            } else {
                AfterFailure::Abort
            });
        }
        #[derive(Clone, Copy)]
        enum Item {
            Retry,
            RetryFailed,
            Skip,
            Goto,
            Follow,
            MarkDone,
            Note,
            Abort,
            Shell,
        }
        let mut items = Vec::new();
        if approval_refused {
            // Issue 24: denied (or unanswered), the step runs only with an approval in the
            // chain: no skip, no mark done, no by hand; a retry asks again.
            items.push(("Retry (a new approval request)".to_string(), Item::Retry));
            items.push(("Go to another step".to_string(), Item::Goto));
            items.push(("Abort the run".to_string(), Item::Abort));
        } else if let Some(hosts) = failed_hosts {
            items.push((
                format!("Retry the failed hosts only ({})", hosts.join(", ")),
                Item::RetryFailed,
            ));
            items.push(("Retry on every host".to_string(), Item::Retry));
        } else {
            items.push(("Retry".to_string(), Item::Retry));
        }
        let follow_at = if approval_refused { 0 } else { items.len() + 2 };
        if !approval_refused {
            items.push(("Skip it (carry on as if it succeeded)".to_string(), Item::Skip));
            items.push(("Go to another step".to_string(), Item::Goto));
            if let Some(target) = on_failure {
                items.push((format!("Follow on_failure → {target}"), Item::Follow));
            }
            items.push(("Mark it done (fixed by hand)".to_string(), Item::MarkDone));
            items.push(("Add a note".to_string(), Item::Note));
            if let Some(shell) = shell {
                items.push((shell.to_string(), Item::Shell));
            }
            items.push(("Abort the run".to_string(), Item::Abort));
        }
        let labels: Vec<&str> = items.iter().map(|(label, _)| label.as_str()).collect();
        let rows: Vec<String> = steps.iter().map(GotoStep::row).collect();
        loop {
            let choice = self.pick(
                "The step did not succeed. What now?",
                &labels,
                Some(if on_failure.is_some() { follow_at } else { 0 }),
            )?;
            return Ok(match items[choice].1 {
                Item::Retry => AfterFailure::Retry,
                Item::RetryFailed => AfterFailure::RetryFailedHosts,
                Item::Skip => AfterFailure::Skip,
                Item::Goto => {
                    // Typing filters the list (by id or title); Esc goes back to the choices.
                    let pick = self.ask(|| {
                        FuzzySelect::with_theme(&theme())
                            .with_prompt("Go to (type to filter, Esc: back)")
                            .items(&rows)
                            .default(steps.iter().position(|s| s.here).unwrap_or(0))
                            .interact_opt()
                    })?;
                    match pick {
                        Some(i) => AfterFailure::Goto(steps[i].id.clone()),
                        None => continue,
                    }
                }
                Item::Follow => AfterFailure::FollowOnFailure,
                Item::MarkDone => AfterFailure::MarkDone,
                Item::Note => AfterFailure::Note(self.note()?),
                Item::Abort => AfterFailure::Abort,
                Item::Shell => AfterFailure::Shell,
            });
        }
    }

    /// Which host of a fleet step a shell opens on, `first` preselected; `None`: none after
    /// all (Esc).
    pub fn shell_host(&self, hosts: &[String], first: usize) -> Result<Option<usize>, Error> {
        if !self.is_interactive() {
            return Ok(None);
        }
        self.ask(|| menu::select("A shell on which host? (Esc: none)", hosts, Some(first), true))
    }

    /// A step whose outcome is unknown after a crash. `Some(Skip)` means re-run it (unattended,
    /// only an idempotent step, which pre-flight checked), `Done`/`Failed` mark it, `None` aborts.
    pub fn unknown_step(&self, question: &str, idempotent: bool) -> Result<Option<Report>, Error> {
        if !self.is_interactive() {
            return Ok(idempotent.then_some(Report::Skip));
        }
        let choice = self.pick(
            question,
            &[
                "Re-run it",
                "Mark it done (it did finish)",
                "Mark it failed",
                "Abort the run",
            ],
            Some(0),
        )?;
        Ok([Some(Report::Skip), Some(Report::Done), Some(Report::Failed), None][choice])
    }

    /// The value a step run by hand would have captured, as the operator read it off their
    /// shell. Secret (the step received a secret): read without echo.
    pub fn captured(&self, name: &str, secret: bool) -> Result<String, Error> {
        let prompt = format!(
            "What did it print? (the value of `{name}`, which the step captures; paste it whole, then Enter)"
        );
        if secret {
            self.ask(|| hidden(&prompt, true))
        } else {
            self.text(
                &prompt,
                Field {
                    multi: true,
                    allow_empty: true,
                },
            )
        }
        .map(|text| text.trim().to_string())
    }

    /// A value for an input that has none. Secrets are read without echo.
    /// An input nothing else gives, asked on a terminal; `None` unattended.
    pub fn ask_input(&self, name: &str, input: &crate::runbook::Input) -> Result<Option<String>, Error> {
        if !self.is_interactive() {
            return Ok(None);
        }
        self.input(name, input.description.as_deref(), input.secret)
            .map(Some)
    }

    pub fn input(&self, name: &str, description: Option<&str>, secret: bool) -> Result<String, Error> {
        let prompt = match description {
            Some(d) => format!("{name} ({d})"),
            None => name.to_string(),
        };
        if secret {
            self.ask(|| hidden(&prompt, false))
        } else {
            self.text(
                &prompt,
                Field {
                    multi: false,
                    allow_empty: false,
                },
            )
        }
    }
}

/// A secret, read key by key with nothing shown. dialoguer's `Password` reads a whole line,
/// which no signal interrupts: a SIGTERM or SIGHUP there waited for Enter, unlike at every
/// other prompt. The echo stays off from the first key to the last (between two keys too, so
/// a paste is never shown).
fn hidden(prompt: &str, allow_empty: bool) -> dialoguer::Result<String> {
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

fn parse_report(answer: &str) -> Option<Report> {
    match answer.trim().to_ascii_lowercase().as_str() {
        "done" | "ok" | "yes" => Some(Report::Done),
        "skip" | "skipped" => Some(Report::Skip),
        "failed" | "fail" | "no" => Some(Report::Failed),
        _ => None,
    }
}

/// Whether `answer` is a valid advance answer for a manual step.
pub fn is_report_answer(answer: &str) -> bool {
    parse_report(answer).is_some()
}
