//! The rules about `guards:` (design §20): unique ids, a known target, a command, a duration
//! that parses and is not zero, at least one failure, and a `goto` that is a step of the walk.

use std::collections::HashSet;

use super::Checker;
use crate::diagnostic::Pos;

impl Checker<'_> {
    pub(super) fn guards(&mut self) {
        let rb = self.runbook;
        let mut seen = HashSet::new();
        for guard in &rb.guards {
            let id = guard.id.value.clone();
            if !seen.insert(id.clone()) {
                self.error_at(&guard.id, format!("guard `{id}` is declared twice"))
                    .help = Some("give each guard its own id: the trail names it".into());
            }
            if let Some(target) = &guard.target {
                let name = target.value.as_str();
                if name != "local" && !rb.targets.contains_key(name) {
                    let help = self
                        .suggest(name, rb.targets.keys().map(String::as_str).chain(["local"]))
                        .unwrap_or_else(|| "declare the role under `targets:`, or use `local`".into());
                    self.error_at(target, format!("guard `{id}` checks unknown target `{name}`"))
                        .help = Some(help);
                }
            }
            if guard.run.value.trim().is_empty() {
                self.error_at(&guard.run, format!("guard `{id}` has an empty `run`"))
                    .help = Some("the check: a command that exits 0 while all is well".into());
            }
            if let Some(every) = &guard.every
                && let Some(d) = self.duration(every, "`every`")
                && d.is_zero()
            {
                self.error_at(&every.0, format!("guard `{id}`: `every` is zero"))
                    .help = Some("how often it is checked, like `15s`".into());
            }
            if let Some(failures) = guard.failures.as_ref().filter(|f| f.value == 0) {
                self.error(
                    Pos::of(failures),
                    format!("guard `{id}`: `failures: 0` would trip before any check"),
                )
                .help = Some("how many failures in a row trip it, like `3`".into());
            }
            if self.cleanup_ids.contains(guard.goto.value.as_str()) {
                self.error_at(
                    &guard.goto,
                    format!("guard `{id}` goes to the cleanup step `{}`", guard.goto.value),
                )
                .help = Some("a trip diverts the walk: go to a step of `steps` (its rollback)".into());
            } else {
                self.step_ref(
                    &guard.goto,
                    format!("guard `{id}` goes to unknown step `{}`", guard.goto.value),
                );
            }
        }
    }
}
