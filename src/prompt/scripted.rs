//! The operator of an unattended run (`--yes`): every question answered from what was given in
//! advance (`--answer STEP=VALUE`), else by the rule design.md gives for it. Needs no terminal,
//! so a walk can be driven by answers alone.

use super::{AfterFailure, Answers, Before, FailureChoices, Operator, Report, parse_report};
use crate::error::Error;
use crate::listen::ui::SharedClock;

/// Answers given in advance; nobody at a terminal.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scripted {
    answers: Answers,
    /// A test case's operator (`runbook test`): a typed confirmation nobody answered gets its
    /// phrase, and a manual step nobody reported is done, so a case lists only what differs
    /// from the happy path.
    agreeable: bool,
}

impl Scripted {
    pub(crate) fn new(answers: Answers) -> Scripted {
        Scripted {
            answers,
            agreeable: false,
        }
    }

    /// The operator of a test case (see `agreeable`).
    pub(crate) fn agreeable(answers: Answers) -> Scripted {
        Scripted {
            answers,
            agreeable: true,
        }
    }
}

/// A question only a person can answer (the engine asks it only when `is_interactive`).
fn nobody_to_ask(what: &str) -> Error {
    Error::runtime(format!("{what}: nobody to ask in an unattended run (--yes)"))
}

impl Operator for Scripted {
    fn is_interactive(&self) -> bool {
        false
    }

    /// No prompt shows a clock: one that is never set.
    fn clock(&self) -> SharedClock {
        SharedClock::default()
    }

    fn answer(&self, step: &str) -> Option<&str> {
        self.answers.get(step)
    }

    /// Runs it, as written.
    fn before_run(
        &self,
        _command: &str,
        _shell: Option<&str>,
        _mask: &dyn Fn(&str) -> String,
    ) -> Result<Before, Error> {
        Ok(Before::Run)
    }

    /// Aborting, with no reason to give.
    fn abort_reason(&self) -> Result<Option<String>, Error> {
        Ok(Some(String::new()))
    }

    fn reason(&self, prompt: &str) -> Result<String, Error> {
        Err(nobody_to_ask(prompt))
    }

    /// `--yes`: yes.
    fn confirm(&self, _question: &str) -> Result<bool, Error> {
        Ok(true)
    }

    /// The answer given for the step, if any, for the caller to compare.
    fn type_phrase(&self, step: &str, phrase: &str) -> Result<Option<String>, Error> {
        Ok(match self.answers.get(step) {
            Some(answer) => Some(answer.to_string()),
            None => self.agreeable.then(|| phrase.to_string()),
        })
    }

    /// The answer given in advance (a label or a goto), else `preselected`; `None` when the
    /// answer names no option, or there is no answer and nothing is preselected.
    fn choose(
        &self,
        step: &str,
        labels: &[(String, String)],
        preselected: Option<usize>,
        _judged: bool,
    ) -> Result<Option<usize>, Error> {
        Ok(match self.answers.get(step) {
            Some(answer) => labels
                .iter()
                .position(|(label, goto)| label == answer || goto == answer),
            None => preselected,
        })
    }

    /// `done`, `skip` or `failed` as given (pre-flight checked the words); `None` without one.
    fn report(&self, step: &str) -> Result<Option<Report>, Error> {
        Ok(match self.answers.get(step) {
            Some(answer) => parse_report(answer),
            None => self.agreeable.then_some(Report::Done),
        })
    }

    /// Follow `on_failure` when there is one, else abort.
    fn after_failure(&self, offered: &FailureChoices<'_>) -> Result<AfterFailure, Error> {
        Ok(if offered.on_failure.is_some() {
            AfterFailure::FollowOnFailure
        } else {
            AfterFailure::Abort
        })
    }

    /// An unattended run never opens a shell.
    fn shell_host(&self, _hosts: &[String], _first: usize) -> Result<Option<usize>, Error> {
        Ok(None)
    }

    /// Re-run it when it is idempotent (pre-flight checked that it is), else abort.
    fn unknown_step(&self, _question: &str, idempotent: bool) -> Result<Option<Report>, Error> {
        Ok(idempotent.then_some(Report::Skip))
    }

    fn captured(&self, name: &str, _secret: bool) -> Result<String, Error> {
        Err(nobody_to_ask(&format!("the value of `{name}`, captured by hand")))
    }

    /// Nobody to ask: the caller lists it as missing.
    fn ask_input(&self, _name: &str, _input: &crate::book::runbook::Input) -> Result<Option<String>, Error> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scripted(flags: &[&str]) -> Scripted {
        Scripted::new(Answers::new(flags.iter().map(|f| {
            let (step, value) = f.split_once('=').unwrap();
            (step.to_string(), value.to_string())
        })))
    }

    fn options() -> Vec<(String, String)> {
        [("Primary is fine", "verify"), ("Fail over", "promote")]
            .iter()
            .map(|(label, goto)| (label.to_string(), goto.to_string()))
            .collect()
    }

    #[test]
    fn a_decision_takes_the_answer_by_label_or_by_goto() {
        let by_label = scripted(&["pick=Fail over"]);
        assert_eq!(
            by_label.choose("pick", &options(), Some(0), true).unwrap(),
            Some(1)
        );
        let by_goto = scripted(&["pick=promote"]);
        assert_eq!(
            by_goto.choose("pick", &options(), Some(0), true).unwrap(),
            Some(1)
        );
    }

    #[test]
    fn a_decision_without_an_answer_takes_the_preselected_option_or_none() {
        let none = scripted(&[]);
        assert_eq!(none.choose("pick", &options(), Some(0), false).unwrap(), Some(0));
        // Nothing applies and nothing was given: the executor ends the run `failed`.
        assert_eq!(none.choose("pick", &options(), None, true).unwrap(), None);
        let unknown = scripted(&["pick=neither"]);
        assert_eq!(unknown.choose("pick", &options(), Some(0), true).unwrap(), None);
    }

    #[test]
    fn yes_confirms_runs_and_aborts_without_a_reason() {
        let yes = scripted(&[]);
        assert!(!yes.is_interactive());
        assert!(yes.confirm("Go ahead with `drop-db`?").unwrap());
        assert_eq!(
            yes.before_run("rm -rf /tmp/x", Some("Open a shell"), &|s| s.to_string())
                .unwrap(),
            Before::Run
        );
        assert_eq!(yes.abort_reason().unwrap(), Some(String::new()));
        assert_eq!(yes.shell_host(&["a".into(), "b".into()], 0).unwrap(), None);
    }

    #[test]
    fn a_typed_confirmation_is_the_answer_given_or_none() {
        let given = scripted(&["drop-db=app"]);
        assert_eq!(
            given.type_phrase("drop-db", "app").unwrap().as_deref(),
            Some("app")
        );
        assert_eq!(given.answer("drop-db"), Some("app"));
        assert_eq!(given.type_phrase("other", "app").unwrap(), None);
        assert_eq!(given.answer("other"), None);
    }

    #[test]
    fn a_test_cases_operator_types_the_phrase_and_reports_done_unless_told_otherwise() {
        let agreeable = Scripted::agreeable(Answers::new([("b".to_string(), "skip".to_string())]));
        assert_eq!(agreeable.type_phrase("a", "app").unwrap().as_deref(), Some("app"));
        assert_eq!(agreeable.report("a").unwrap(), Some(Report::Done));
        assert_eq!(agreeable.report("b").unwrap(), Some(Report::Skip));
        assert_eq!(scripted(&[]).report("a").unwrap(), None);
    }

    #[test]
    fn a_manual_step_reports_the_words_given() {
        let given = scripted(&["a=done", "b=Skipped", "c=fail", "d=maybe"]);
        assert_eq!(given.report("a").unwrap(), Some(Report::Done));
        assert_eq!(given.report("b").unwrap(), Some(Report::Skip));
        assert_eq!(given.report("c").unwrap(), Some(Report::Failed));
        assert_eq!(given.report("d").unwrap(), None);
        assert_eq!(given.report("e").unwrap(), None);
    }

    #[test]
    fn after_a_failure_on_failure_is_followed_else_the_run_aborts() {
        let yes = scripted(&[]);
        let after = |on_failure| {
            let offered = FailureChoices {
                on_failure,
                steps: &[],
                failed_hosts: None,
                shell: None,
                approval_refused: false,
            };
            yes.after_failure(&offered).unwrap()
        };
        assert_eq!(after(Some("rollback")), AfterFailure::FollowOnFailure);
        assert_eq!(after(None), AfterFailure::Abort);
    }

    #[test]
    fn an_unknown_step_is_re_run_only_when_idempotent() {
        let yes = scripted(&[]);
        assert_eq!(yes.unknown_step("?", true).unwrap(), Some(Report::Skip));
        assert_eq!(yes.unknown_step("?", false).unwrap(), None);
    }

    #[test]
    fn an_input_nobody_gave_is_not_asked() {
        let input = crate::book::runbook::Input {
            description: Some("the database".into()),
            secret: true,
            ..Default::default()
        };
        assert_eq!(scripted(&[]).ask_input("pg_password", &input).unwrap(), None);
    }

    #[test]
    fn free_text_only_a_person_could_type_is_refused_not_invented() {
        let yes = scripted(&["verify=done"]);
        let why = yes.reason("Why is it done?").unwrap_err();
        assert_eq!(
            why.to_string(),
            "Why is it done?: nobody to ask in an unattended run (--yes)"
        );
        let value = yes.captured("lag", false).unwrap_err();
        assert_eq!(
            value.to_string(),
            "the value of `lag`, captured by hand: nobody to ask in an unattended run (--yes)"
        );
    }
}
