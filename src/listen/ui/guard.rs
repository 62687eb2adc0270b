//! A guard's changes on the terminal (design §20): a failing check quietly, a trip loudly,
//! naming the guard and where the run diverts.

use console::style;

use super::Ui;
use crate::events::{GuardChange, GuardChanged};
use crate::secrets::escape::value as esc;

impl Ui {
    pub(super) fn guard(&mut self, g: &GuardChanged) {
        let (guard, change, host, failures, goto) = (&g.guard, g.change, &g.host, g.failures, &g.goto);
        let why = (g.reason.as_deref())
            .map(|r| format!(": {}", esc(r)))
            .unwrap_or_default();
        let line = match change {
            GuardChange::Failing => format!(
                "    {}",
                style(format!(
                    "guard `{}` failing on {} ({failures} in a row){why}",
                    esc(guard),
                    esc(host)
                ))
                .yellow()
            ),
            GuardChange::Tripped => format!(
                "{} {}",
                style("GUARD TRIPPED:").red().bold().reverse(),
                style(format!(
                    "`{}` failed {failures} times in a row on {}{why}: divert to `{}`",
                    esc(guard),
                    esc(host),
                    esc(goto)
                ))
                .red()
                .bold()
            ),
            GuardChange::Recovered => format!(
                "    {}",
                style(format!("guard `{}` recovered on {}", esc(guard), esc(host))).green()
            ),
        };
        self.line(&line);
    }
}
