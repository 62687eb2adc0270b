//! The rules of secrets (design §14): an input's `from:` must be a source the tool can read;
//! `uses:` names variables; a confirmation phrase may not show a secret (the operator would
//! type it on screen, and it would be printed as the prompt); a step that declares its output
//! free of secrets is listed, so a reviewer sees every such claim.

use super::text;
use super::{Checker, Region};
use crate::book::runbook::{Confirm, Step};
use crate::diagnostic::Pos;

impl Checker<'_> {
    /// Every input's `from:` parses as a source.
    pub(super) fn sources(&mut self) {
        for (name, input) in &self.runbook.inputs {
            let Some(from) = &input.value.from else { continue };
            if let Err(e) = crate::secrets::source::Source::parse(&from.value) {
                self.error_at(from, format!("input `{name}` has an unknown source: {e}"))
                    .help = Some(
                    "a source is `env:VAR`, `file:PATH`, `file-all:PATH`, `cmd:COMMAND` (e.g. `cmd:pass show db/prod`) or `stdin`"
                        .into(),
                );
            }
        }
    }

    pub(super) fn secrets(&mut self, step: &Step, _region: Region) {
        let id = step.id();
        for used in &step.uses {
            if self.variables.contains(used.value.as_str()) {
                continue;
            }
            let help = self.unknown_variable_help(&used.value);
            self.error_at(
                used,
                format!("step `{id}` uses unknown variable `{}`", used.value),
            )
            .help = Some(help);
        }
        if let Some(confirm) = &step.confirm
            && let Confirm::Phrase(phrase) = &confirm.value
        {
            for (name, _) in text::placeholders(phrase) {
                let secret = self.runbook.inputs.get(name).is_some_and(|i| i.value.secret);
                if secret {
                    self.error(
                        Pos::of(confirm),
                        format!("the confirmation of step `{id}` shows the secret `{name}`"),
                    )
                    .help = Some(
                        "the operator would type the secret on screen, and the prompt would print it: confirm with a phrase that is not secret (the database's name, the host)".into(),
                    );
                }
            }
        }
        if step.declassify {
            self.warning(
                Pos::of(&step.id),
                format!("step `{id}` declares its output free of secrets (`declassify: true`)"),
            )
            .help = Some(
                "its stdout and captures are shown and recorded in clear although it may receive a secret: make sure it cannot print one".into(),
            );
        }
    }
}
