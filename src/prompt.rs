//! The operator's decisions: asked on a terminal (`Terminal`: menus, a line editor, bracketed
//! paste), or given in advance (`Scripted`: `--yes`, `--answer STEP=VALUE`). The executor asks
//! through the `Operator` trait, chosen once where the run is launched; this module knows
//! nothing of steps' effects.

use std::collections::HashMap;
use std::io::IsTerminal;

mod ask;
mod keys;
mod line;
mod menu;
mod scripted;
mod terminal;

pub(crate) use scripted::Scripted;
pub(crate) use terminal::Terminal;

use dialoguer::theme::ColorfulTheme;

use crate::error::Error;
use crate::listen::ui::SharedClock;

/// What to do with a step before it acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Before {
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
pub(crate) enum Report {
    Done,
    Skip,
    Failed,
}

/// What to do after a step failed, timed out, was lost or was stopped with Ctrl-C.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterFailure {
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

/// What the question after a failure offers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FailureChoices<'a> {
    /// The step's `on_failure`, to follow.
    pub on_failure: Option<&'a str>,
    /// The steps *Go to* offers.
    pub steps: &'a [GotoStep],
    /// The hosts of a fleet step that did not succeed.
    pub failed_hosts: Option<&'a [String]>,
    /// The words of the Shell choice when one is offered.
    pub shell: Option<&'a str>,
    /// Narrows the choices to a new request, another step or abort.
    pub approval_refused: bool,
}

/// A step offered by *Go to another step*.
#[derive(Debug, Clone)]
pub(crate) struct GotoStep {
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
pub(crate) struct Answers {
    by_step: HashMap<String, String>,
}

impl Answers {
    /// From `(step, value)` pairs (`--answer STEP=VALUE`); the last answer for a step wins.
    pub(crate) fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Answers {
        Answers {
            by_step: pairs.into_iter().collect(),
        }
    }

    pub(crate) fn get(&self, step: &str) -> Option<&str> {
        self.by_step.get(step).map(String::as_str)
    }

    pub(crate) fn steps(&self) -> impl Iterator<Item = &String> {
        self.by_step.keys()
    }
}

/// Who answers the questions of a run: a person at a terminal (`Terminal`) or answers given in
/// advance (`Scripted`). Each method is one question the engine asks, named for what it asks:
/// the engine never reads the terminal itself, so a walk can be driven by answers alone.
pub(crate) trait Operator {
    /// Whether a person answers: the engine says more to one (why no option is preselected,
    /// "try again"), offers them shells and menus after a failure, and records what they
    /// answered to "abort the run?". Unattended, it follows what was given in advance.
    fn is_interactive(&self) -> bool;

    /// The clock the UI sets once the run starts and prompts show.
    fn clock(&self) -> SharedClock;

    /// The answer given in advance for `step` (`--answer STEP=VALUE`), if any.
    fn answer(&self, step: &str) -> Option<&str>;

    /// Before a run step acts. `shell`: the words of the Shell choice, when one is offered.
    fn before_run(
        &self,
        command: &str,
        shell: Option<&str>,
        mask: &dyn Fn(&str) -> String,
    ) -> Result<Before, Error>;

    /// The operator picked "Abort the run": confirmed, and its reason for the trail. `None`:
    /// not aborting after all; `Some("")`: aborting, with no reason given.
    fn abort_reason(&self) -> Result<Option<String>, Error>;

    /// A reason the trail keeps (an abort, a step marked done by hand).
    fn reason(&self, prompt: &str) -> Result<String, Error>;

    /// A yes/no confirmation.
    fn confirm(&self, question: &str) -> Result<bool, Error>;

    /// A typed confirmation: the operator must type `phrase`. Returns what was typed (or the
    /// answer given in advance), for the caller to compare and record.
    fn type_phrase(&self, step: &str, phrase: &str) -> Result<Option<String>, Error>;

    /// A decision: the index of the chosen option (`labels`: label and goto), `None` when
    /// nothing applies. `preselected`: the first option whose `when` holds, or the fallback;
    /// `judged`: false when some `when` could not be judged (a variable nobody set).
    fn choose(
        &self,
        step: &str,
        labels: &[(String, String)],
        preselected: Option<usize>,
        judged: bool,
    ) -> Result<Option<usize>, Error>;

    /// The outcome of a manual step (or one run by hand); `None`: abort, or no answer.
    fn report(&self, step: &str) -> Result<Option<Report>, Error>;

    /// What to do after a failure, of the choices `offered`.
    fn after_failure(&self, offered: &FailureChoices<'_>) -> Result<AfterFailure, Error>;

    /// Which host of a fleet step a shell opens on, `first` preselected; `None`: none.
    fn shell_host(&self, hosts: &[String], first: usize) -> Result<Option<usize>, Error>;

    /// A step whose outcome is unknown after a crash. `Some(Skip)` means re-run it,
    /// `Done`/`Failed` mark it, `None` aborts.
    fn unknown_step(&self, question: &str, idempotent: bool) -> Result<Option<Report>, Error>;

    /// The value a step run by hand would have captured, as the operator read it off their
    /// shell. Secret (the step received a secret): read without echo.
    fn captured(&self, name: &str, secret: bool) -> Result<String, Error>;

    /// A value for an input nothing else gives; `None`: nobody to ask.
    fn ask_input(&self, name: &str, input: &crate::book::runbook::Input) -> Result<Option<String>, Error>;
}

/// The operator of a run, chosen once: `--yes` answers from `answers`, else a terminal.
pub(crate) fn operator(yes: bool, answers: Answers) -> Box<dyn Operator> {
    if yes {
        Box::new(Scripted::new(answers))
    } else {
        Box::new(Terminal::new())
    }
}

fn theme() -> ColorfulTheme {
    ColorfulTheme::default()
}

/// True when both stdin and stderr are terminals: the only case where prompts can work.
pub(crate) fn has_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
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
pub(crate) fn is_report_answer(answer: &str) -> bool {
    parse_report(answer).is_some()
}

/// Whether an advance answer hands the run off at its step (`--answer STEP=handoff`, or
/// `hand off`, `hand-off`): the run stops there, its trail open, for a colleague to resume.
pub(crate) fn is_hand_off(answer: &str) -> bool {
    let words: String = answer
        .trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .collect();
    words == "handoff"
}
