//! The operator at a terminal: menus (`menu`, dialoguer's fuzzy list), a line editor
//! (`line`), `$VISUAL` or `$EDITOR` for an edit, secrets read without echo (`ask::hidden`).

use dialoguer::FuzzySelect;

use super::ask::{ask, hidden};
use super::line::{self, Field};
use super::{AfterFailure, Before, FailureChoices, GotoStep, Operator, Report, menu, theme};
use crate::error::Error;
use crate::listen::ui::{SharedClock, StatusLine};

/// A person at a terminal; prompts show the run's clock, ticking, while they wait.
#[derive(Debug, Default)]
pub(crate) struct Terminal {
    clock: SharedClock,
}

/// The choice every step prompt offers, just before "Abort the run" (design §19).
const HAND_OFF: &str = "Hand off (stop here; a colleague resumes the run)";

/// A note or a reason: a paste of several lines taken whole; not empty.
const MULTI: Field = Field {
    multi: true,
    allow_empty: false,
};

impl Terminal {
    pub(crate) fn new() -> Terminal {
        Terminal::default()
    }

    /// Runs a prompt with the RTO budget ticking on the terminal's last line.
    fn ask<T>(&self, prompt: impl Fn() -> dialoguer::Result<T>) -> Result<T, Error> {
        let _status = self.clock.get().and_then(StatusLine::show);
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
                crate::stderr::ewriteln!("    the command is unchanged");
                return Ok(None);
            }
            crate::stderr::ewriteln!("    the edit (- as written, + as edited):");
            for line in crate::review::model::edit_diff(&mask(command), &mask(&text)) {
                crate::stderr::ewriteln!("      {}", crate::secrets::escape::value(&line.marked()));
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
                    crate::stderr::ewriteln!("    the edit is dropped: the command stays as written");
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
                crate::stderr::ewriteln!("    the editor closed without saving: the command is unchanged");
                Ok(None)
            }
            Err(e) => {
                crate::stderr::ewriteln!(
                    "    cannot run the editor `{editor}` ({e}): edit the command here instead"
                );
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
            crate::stderr::ewriteln!(
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

    fn note(&self) -> Result<String, Error> {
        self.text("Note", MULTI)
    }

    /// Free text, on the line editor (`line`): a paste is text, never keys.
    /// The answer to `prompt` typed in `field`; a secret is read without echo.
    fn typed(&self, prompt: &str, field: Field, secret: bool) -> Result<String, Error> {
        if secret {
            self.ask(|| hidden(prompt, field.allow_empty))
        } else {
            self.text(prompt, field)
        }
    }

    fn text(&self, prompt: &str, field: Field) -> Result<String, Error> {
        let state = std::cell::RefCell::new(line::Line::new(""));
        self.ask(|| line::read(prompt, &state, &|s: &str| s.to_string(), field))
    }

    /// "Hand off": the note for whoever takes over (one line, may be empty), then the walk
    /// stops (`Error::HandedOff`, which every prompt returns alike and the executor records).
    fn hand_off(&self) -> Error {
        let field = Field {
            multi: false,
            allow_empty: true,
        };
        match self.text("Note for whoever takes over (optional; Enter for none)", field) {
            Ok(note) => Error::HandedOff(crate::error::HandOff {
                note: note.trim().to_string(),
                step: None,
            }),
            Err(e) => e,
        }
    }

    /// A pick from a menu; `None` as `default`: nothing picked until an arrow is pressed.
    fn pick<S: AsRef<str>>(&self, prompt: &str, items: &[S], default: Option<usize>) -> Result<usize, Error> {
        self.ask(|| menu::select(prompt, items, default, false))
            .map(|pick| pick.expect("a menu without Esc always picks"))
    }

    /// An input's value, asked: a secret is read without echo.
    fn input(&self, name: &str, description: Option<&str>, secret: bool) -> Result<String, Error> {
        let prompt = match description {
            Some(d) => format!("{name} ({d})"),
            None => name.to_string(),
        };
        let field = Field {
            multi: false,
            allow_empty: false,
        };
        self.typed(&prompt, field, secret)
    }
}

impl Operator for Terminal {
    fn is_interactive(&self) -> bool {
        true
    }

    fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    /// Nothing is given in advance: the operator answers each question.
    fn answer(&self, _step: &str) -> Option<&str> {
        None
    }

    /// The Shell choice, when offered, then "Hand off", come just before "Abort the run", which
    /// stays last: Up from the first choice lands on it, and it asks before it aborts.
    fn before_run(
        &self,
        command: &str,
        shell: Option<&str>,
        mask: &dyn Fn(&str) -> String,
    ) -> Result<Before, Error> {
        let mut items = vec![
            "Run it",
            "Skip it",
            "Edit the command first",
            "Run it by hand (print the command for my shell)",
            "Add a note",
        ];
        items.extend(shell);
        let hand_off_at = items.len();
        items.push(HAND_OFF);
        items.push("Abort the run");
        let shell_at = shell.map(|_| 5);
        loop {
            let choice = self.pick("What now?", &items, Some(0))?;
            return Ok(match choice {
                c if Some(c) == shell_at => Before::Shell,
                c if c == hand_off_at => return Err(self.hand_off()),
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

    /// "Abort the run" is one key from a default, so it is confirmed (Enter alone is no) and
    /// its reason asked for the trail.
    fn abort_reason(&self) -> Result<Option<String>, Error> {
        if !self.confirm("Abort the run? Its cleanup runs and the trail is sealed `aborted`")? {
            return Ok(None);
        }
        self.reason("Why abort? (recorded in the trail)").map(Some)
    }

    fn reason(&self, prompt: &str) -> Result<String, Error> {
        self.text(prompt, MULTI).map(|text| text.trim().to_string())
    }

    fn confirm(&self, question: &str) -> Result<bool, Error> {
        self.ask(|| menu::confirm(question, false))
    }

    fn type_phrase(&self, _step: &str, phrase: &str) -> Result<Option<String>, Error> {
        let typed = self.text(
            &format!("Type `{phrase}` to go ahead (empty to cancel)"),
            Field {
                multi: false,
                allow_empty: true,
            },
        )?;
        Ok(Some(typed))
    }

    /// `preselected` is the default unless some `when` could not be `judged`: then nothing is.
    fn choose(
        &self,
        _step: &str,
        labels: &[(String, String)],
        preselected: Option<usize>,
        judged: bool,
    ) -> Result<Option<usize>, Error> {
        let mut items: Vec<String> = labels
            .iter()
            .map(|(label, goto)| format!("{label}  → {goto}"))
            .collect();
        // Last, after the options: a decision can be left to whoever takes over.
        items.push(HAND_OFF.to_string());
        // Not judged (a `when` on an unset variable): no default, so a reflexive
        // Enter picks nothing; an arrow key selects.
        let default = judged.then(|| preselected.unwrap_or(0));
        let choice = self.pick("Decision", &items, default)?;
        if choice == labels.len() {
            return Err(self.hand_off());
        }
        Ok(Some(choice))
    }

    fn report(&self, _step: &str) -> Result<Option<Report>, Error> {
        let choice = self.pick(
            "How did it go?",
            &["Done", "Skip it", "It failed", HAND_OFF, "Abort the run"],
            Some(0),
        )?;
        Ok(match choice {
            0 => Some(Report::Done),
            1 => Some(Report::Skip),
            2 => Some(Report::Failed),
            3 => return Err(self.hand_off()),
            _ => None,
        })
    }

    fn after_failure(&self, offered: &FailureChoices<'_>) -> Result<AfterFailure, Error> {
        let FailureChoices {
            on_failure,
            steps,
            failed_hosts,
            shell,
            approval_refused,
        } = *offered;
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
            HandOff,
        }
        let mut items = Vec::new();
        if approval_refused {
            // Issue 24: denied (or unanswered), the step runs only with an approval in the
            // chain: no skip, no mark done, no by hand; a retry asks again.
            items.push(("Retry (a new approval request)".to_string(), Item::Retry));
            items.push(("Go to another step".to_string(), Item::Goto));
            items.push((HAND_OFF.to_string(), Item::HandOff));
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
            items.push((HAND_OFF.to_string(), Item::HandOff));
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
                Item::HandOff => return Err(self.hand_off()),
            });
        }
    }

    /// Esc: none after all.
    fn shell_host(&self, hosts: &[String], first: usize) -> Result<Option<usize>, Error> {
        self.ask(|| menu::select("A shell on which host? (Esc: none)", hosts, Some(first), true))
    }

    fn unknown_step(&self, question: &str, _idempotent: bool) -> Result<Option<Report>, Error> {
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

    fn captured(&self, name: &str, secret: bool) -> Result<String, Error> {
        let prompt = format!(
            "What did it print? (the value of `{name}`, which the step captures; paste it whole, then Enter)"
        );
        let field = Field {
            multi: true,
            allow_empty: true,
        };
        self.typed(&prompt, field, secret)
            .map(|text| text.trim().to_string())
    }

    fn ask_input(&self, name: &str, input: &crate::book::runbook::Input) -> Result<Option<String>, Error> {
        self.input(name, input.description.as_deref(), input.secret)
            .map(Some)
    }
}
