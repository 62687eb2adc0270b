//! What every review format shows, computed once: the facts of a run, and the record of what
//! the people did (deviations, decisions, answers, notes, edits as diffs, failed attempts) in
//! time order. The text, Markdown and HTML renderers only escape and lay these out.

use super::{Review, fmt_rto, fmt_time, fmt_total, share};

/// One line of the facts table.
pub(crate) struct Fact {
    pub label: &'static str,
    pub value: String,
}

/// The run's facts, in the order every format shows them.
pub(crate) fn facts(r: &Review) -> Vec<Fact> {
    let fact = |label, value: String| Fact { label, value };
    let operators = if r.operators.len() > 1 {
        format!("{} (hand-off)", r.operators.join(" → "))
    } else {
        r.operators.join(", ")
    };
    let targets: Vec<String> = r
        .targets
        .iter()
        .map(|(role, host)| match r.host_keys.get(host) {
            Some(key) => format!("{role}={host} ({key})"),
            None => format!("{role}={host}"),
        })
        .collect();
    let mut facts = vec![
        fact("Runbook", format!("{} ({})", r.title, r.runbook)),
        fact("Mode", r.mode.clone()),
        fact("Kind", kind_words(&r.kind).into()),
        fact("Operators", operators),
    ];
    if let Some(account) = &r.account {
        let machine = r.machine.as_deref().unwrap_or("?");
        facts.push(fact("Account", format!("{account} on {machine}")));
    }
    facts.extend([
        fact("Targets", targets.join(", ")),
        fact("Inputs", inputs(r)),
        fact("RTO clock start", fmt_time(r.clock_start)),
        fact("Launched", fmt_time(r.launched)),
        fact("End", fmt_time(r.end)),
        fact(
            "Outcome",
            match (&r.outcome, &r.message) {
                (Some(o), Some(m)) => format!("{o}: {m}"),
                (Some(o), None) => o.clone(),
                (None, _) => "none (no seal)".into(),
            },
        ),
        fact(
            "Total",
            format!(
                "{} of the {} RTO ({})",
                fmt_total(r.total_ms),
                fmt_rto(r.rto_ms),
                share(r.total_ms, r.rto_ms)
            ),
        ),
        fact(
            "Verdict",
            match &r.verdict_reason {
                Some(reason) => format!("{}: {reason}", r.verdict),
                None => r.verdict.clone(),
            },
        ),
        fact(
            "Head",
            r.head.clone().unwrap_or_else(|| "none (no events)".into()),
        ),
        fact("Signature", r.signed.clone()),
    ]);
    facts
}

/// The kind of a run in words: how it was driven.
pub(crate) fn kind_words(kind: &str) -> &'static str {
    match kind {
        "unattended" => "unattended (--yes: nobody was asked)",
        "interactive" => "interactive (an operator answered at a terminal)",
        _ => "unknown (recorded before runs said whether they were unattended)",
    }
}

/// The inputs the run had, `name=value` (secrets as the trail has them: `***`), or `none`.
pub(crate) fn inputs(r: &Review) -> String {
    if r.inputs.is_empty() {
        return "none".into();
    }
    r.inputs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A line of a command's edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DiffLine {
    Same(String),
    Removed(String),
    Added(String),
}

impl DiffLine {
    /// `  line`, `- line`, `+ line`: the unified-diff look every reader knows.
    pub(crate) fn marked(&self) -> String {
        match self {
            DiffLine::Same(l) => format!("  {l}"),
            DiffLine::Removed(l) => format!("- {l}"),
            DiffLine::Added(l) => format!("+ {l}"),
        }
    }
}

/// The edit of a command, line by line: what was removed and what was added.
pub(crate) fn edit_diff(before: &str, after: &str) -> Vec<DiffLine> {
    use similar::{ChangeTag, TextDiff};
    TextDiff::from_lines(before, after)
        .iter_all_changes()
        .map(|change| {
            let line = change.value().trim_end_matches(['\n', '\r']).to_string();
            match change.tag() {
                ChangeTag::Equal => DiffLine::Same(line),
                ChangeTag::Delete => DiffLine::Removed(line),
                ChangeTag::Insert => DiffLine::Added(line),
            }
        })
        .collect()
}

/// What an entry of the record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemKind {
    /// Not run as written; `allowed` says whether a drill may still pass.
    Deviation {
        allowed: bool,
    },
    /// A decision point's choice.
    Decision,
    /// Any other answer of the operator: before running, after a failure, a confirmation, a
    /// manual step's report.
    Answer,
    Note,
    Edit,
    FailedAttempt,
    /// A shell opened at the step's prompt; `link` is its recording.
    Shell,
    /// The run handed off for a colleague to resume (design §19).
    HandOff,
    /// A guard failed, tripped or recovered; the alert resolved (design §20).
    Guard,
    /// The two-person rule: a request, an approval, a denial (`granted: false`), a signature
    /// that did not count.
    Approval {
        granted: bool,
    },
}

/// A guard's change, or the resolved alert of an unattended run, as the review says it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct GuardRow {
    pub at_ms: u64,
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// `failing`, `tripped`, `recovered`, `alert resolved`.
    pub change: &'static str,
    pub guard: Option<String>,
    pub text: String,
}

impl GuardRow {
    pub(crate) fn of(
        record: crate::audit::record::Record,
        host: Option<String>,
        at_ms: u64,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Option<GuardRow> {
        use crate::audit::record::Record;
        let (change, g) = match record {
            Record::GuardFailing(g) => ("failing", g),
            Record::GuardTripped(g) => ("tripped", g),
            Record::GuardRecovered(g) => ("recovered", g),
            Record::AlertResolved(a) => {
                return Some(GuardRow {
                    at_ms,
                    at,
                    change: "alert resolved",
                    guard: None,
                    text: format!(
                        "alert {} resolved: the run stopped at the step boundary",
                        a.fingerprint
                    ),
                });
            }
            _ => return None,
        };
        let why = g.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        let host = host.unwrap_or_default();
        let text = match change {
            "tripped" => format!(
                "guard {} tripped on {} ({} failures in a row){why}: diverted to {}",
                g.guard, host, g.failures, g.goto
            ),
            "failing" => format!("guard {} failing on {host}{why}", g.guard),
            _ => format!("guard {} recovered on {host}", g.guard),
        };
        Some(GuardRow {
            at_ms,
            at,
            change,
            guard: Some(g.guard),
            text,
        })
    }
}

/// The heading of the record of what people did, in every format.
pub(crate) const RECORD_TITLE: &str = "Deviations, approvals, decisions, notes, edits and failed attempts";

/// One entry of the record of what people did, with where it belongs.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// Index into `steps` (shown 1-based), when it is about a step.
    pub visit: Option<usize>,
    pub step: Option<String>,
    pub at_ms: u64,
    pub kind: ItemKind,
    pub text: String,
    /// An edit's diff.
    pub diff: Vec<DiffLine>,
    /// The command that plays the recording the entry names (a shell's): `runbook replay RUN
    /// N`. Formats show it, never a `file://` link: the audit dir is private (0700) and the
    /// review may be read on another machine.
    pub replay: Option<String>,
}

impl Item {
    /// When it happened: the clock time, then the time into the run (`03:04:05 +1m12s`).
    pub(crate) fn when(&self, r: &Review) -> String {
        format!(
            "{} +{}",
            super::fmt_clock(r, self.at_ms),
            super::fmt_ms(self.at_ms)
        )
    }

    /// Where it happened, before its text: `N. STEP: ` (the walk's N-th visit), `STEP: ` or
    /// nothing. `mark` follows the number; `step` dresses the id the format's way.
    pub(crate) fn place(&self, mark: &str, step: impl Fn(&str) -> String) -> String {
        match (self.visit, &self.step) {
            (Some(i), Some(id)) => format!("{}{mark} {}: ", i + 1, step(id)),
            (None, Some(id)) => format!("{}: ", step(id)),
            _ => String::new(),
        }
    }

    /// Its text, a deviation's in the format's emphasis (`strong`).
    pub(crate) fn dressed(
        &self,
        plain: impl Fn(&str) -> String,
        strong: impl Fn(String) -> String,
    ) -> String {
        match self.kind {
            ItemKind::Deviation { .. } | ItemKind::Approval { granted: false } => strong(plain(&self.text)),
            _ => plain(&self.text),
        }
    }
}

/// Every deviation, approval, decision, answer, note, edit and failed attempt, in time order.
pub(crate) fn items(r: &Review) -> Vec<Item> {
    let mut items = Vec::new();
    let item = |visit: Option<usize>, step: Option<&str>, at_ms, kind, text: String| Item {
        visit,
        step: step.map(str::to_string),
        at_ms,
        kind,
        text,
        diff: Vec::new(),
        replay: None,
    };
    for d in &r.deviations {
        let visit = r
            .steps
            .iter()
            .rposition(|v| v.step == d.step && v.start_ms <= d.at_ms);
        let detail = d.detail.as_deref().map(|t| format!(" ({t})")).unwrap_or_default();
        let rule = if d.allowed {
            "allowed, listed"
        } else {
            "a drill with it FAILs"
        };
        items.push(item(
            visit,
            Some(&d.step),
            d.at_ms,
            ItemKind::Deviation { allowed: d.allowed },
            format!("deviation: {}{detail} [{rule}]", d.kind),
        ));
    }
    for a in &r.approvals {
        let visit = r
            .steps
            .iter()
            .rposition(|v| v.step == a.step && v.start_ms <= a.at_ms);
        items.push(item(
            visit,
            Some(&a.step),
            a.at_ms,
            ItemKind::Approval {
                granted: a.decision != "denied",
            },
            a.words(),
        ));
    }
    for (i, v) in r.steps.iter().enumerate() {
        let step = Some(v.step.as_str());
        for e in &v.edits {
            let mut edit = item(
                Some(i),
                step,
                e.at_ms,
                ItemKind::Edit,
                format!("command edited by {}", e.operator),
            );
            edit.diff = edit_diff(&e.before, &e.after);
            items.push(edit);
        }
        let notes = v.notes.iter().map(|n| {
            let text = format!("note by {}: {}", n.operator, n.text);
            (n.at_ms, ItemKind::Note, text)
        });
        let decisions = v.decisions.iter().map(|d| {
            let text = format!("decided \"{}\" → {}", d.label, d.goto);
            (d.at_ms, ItemKind::Decision, text)
        });
        let answers = v.answers.iter().map(|a| {
            let text = format!("{}: {}", a.question, a.answer);
            (a.at_ms, ItemKind::Answer, text)
        });
        for (at_ms, kind, text) in notes.chain(decisions).chain(answers) {
            items.push(item(Some(i), step, at_ms, kind, text));
        }
        for s in &v.shells {
            let took = if s.bytes.is_some() {
                super::fmt_ms(s.ms)
            } else {
                "never closed (the run stopped during it)".to_string()
            };
            let mut shell = item(
                Some(i),
                step,
                s.at_ms,
                ItemKind::Shell,
                // The recording last but short enough for a line of the text review to keep it;
                // `runbook replay RUN <number>` plays it.
                format!(
                    "shell {} on {} ({}), {took}, {}x{}: {}",
                    s.number, s.host, s.from, s.cols, s.rows, s.recording
                ),
            );
            shell.replay = Some(format!("runbook replay {} {}", r.run, s.number));
            items.push(shell);
        }
        for a in v.attempts.iter().filter(|a| a.outcome != "ok") {
            items.push(item(
                Some(i),
                step,
                a.start_ms + a.exec_ms,
                ItemKind::FailedAttempt,
                format!(
                    "attempt {} {}{}{}{}",
                    a.attempt,
                    a.outcome,
                    a.host.as_deref().map(|h| format!(" on {h}")).unwrap_or_default(),
                    a.exit.map_or(String::new(), |c| format!(" (exit {c})")),
                    a.reason.as_ref().map_or(String::new(), |r| format!(": {r}"))
                ),
            ));
        }
    }
    for h in &r.hand_offs {
        let visit = h.step.as_ref().and_then(|step| {
            r.steps
                .iter()
                .rposition(|v| v.step == *step && v.start_ms <= h.at_ms)
        });
        let note = h.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
        let text = format!("handed off by {}{note}", h.operator);
        items.push(item(visit, h.step.as_deref(), h.at_ms, ItemKind::HandOff, text));
    }
    for g in &r.guards {
        items.push(item(None, None, g.at_ms, ItemKind::Guard, g.text.clone()));
    }
    for n in &r.notes {
        items.push(item(
            None,
            None,
            n.at_ms,
            ItemKind::Note,
            format!("note by {}: {}", n.operator, n.text),
        ));
    }
    items.sort_by_key(|i| (i.at_ms, i.visit));
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text review used to cut both sides of an edit to the same prefix, hiding the change.
    #[test]
    fn an_edit_is_a_line_diff_that_shows_the_change() {
        let before = "systemctl restart app\ncurl -fsS http://localhost/health\n";
        let after = "systemctl restart app --no-block\ncurl -fsS http://localhost/health\n";
        assert_eq!(
            edit_diff(before, after),
            vec![
                DiffLine::Removed("systemctl restart app".into()),
                DiffLine::Added("systemctl restart app --no-block".into()),
                DiffLine::Same("curl -fsS http://localhost/health".into()),
            ]
        );
    }
}
