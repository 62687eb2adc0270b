//! Checking a parsed runbook against the rules of design §2: every problem at once, each at
//! the token it is about, with a hint. Parsing (`parse.rs`) has already refused what serde can
//! see (YAML syntax, unknown and missing fields, wrong types); this is everything else:
//! names, references, durations, regexes, the shape of the step graph, and the warnings.
//! The list of rules with their messages is `docs/validation.md`.

pub(crate) mod destructive;
mod guards;
pub(crate) mod sarif;
mod secrets;
mod steps;
mod text;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::book::graph;
use crate::book::parse::Source;
use crate::book::runbook::{DurationText, Runbook, Step, StepKind};
use crate::diagnostic::{Diagnostic, Pos, did_you_mean};
use text::Text;

/// Variables every run has, whatever the runbook declares (design §2).
pub(crate) const BUILT_INS: [&str; 3] = ["run_id", "operator", "mode"];

/// Regexes larger than this once compiled are refused: a runbook's `expect` is a short
/// pattern, and a huge one would cost time on every run.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How many name comparisons "did you mean" may make in one file. A hostile file with
/// thousands of steps each naming an unknown one would otherwise cost a quadratic number of
/// edit distances (9,000 such steps: 16 s); past the budget, hints fall back to plain advice.
const SUGGESTION_BUDGET: usize = 200_000;

/// Every problem of a parsed runbook, errors and warnings, sorted by position.
/// `catalog`: ids of the runbooks `call` may name; None = unknown (then `call` targets are not checked).
pub fn validate(source: &Source, runbook: &Runbook, catalog: Option<&BTreeSet<String>>) -> Vec<Diagnostic> {
    let mut checker = Checker::new(source, runbook, catalog);
    checker.header();
    checker.inputs();
    checker.sources();
    checker.step_ids();
    for (i, step) in runbook.steps.iter().enumerate() {
        checker.step(i, step, Region::of(&checker.regions, i, false));
    }
    for (i, step) in runbook.cleanup.iter().enumerate() {
        checker.cleanup_step(step, Region::of(&checker.regions, i, true));
    }
    checker.guards();
    checker.graph();
    let mut diagnostics = checker.diagnostics;
    diagnostics.sort_by_key(|d| (d.line, d.col));
    diagnostics
}

/// The problems that once stopped the parse (an `end` that is no outcome, now read as text so
/// that `validate` reports it with the rest): what `show`, which renders files with other
/// problems as they are, still refuses.
pub(crate) fn unreadable_values(source: &Source, runbook: &Runbook) -> Vec<Diagnostic> {
    let mut checker = Checker::new(source, runbook, None);
    for step in runbook.steps.iter().chain(&runbook.cleanup) {
        if let Some(end) = &step.end {
            checker.end_outcome(step.id(), end);
        }
    }
    checker.diagnostics
}

/// Parse + validate one file (read errors and parse errors become diagnostics).
pub(crate) fn check_file(
    path: &Path,
    catalog: Option<&BTreeSet<String>>,
) -> (Option<Source>, Option<Runbook>, Vec<Diagnostic>) {
    let source = match Source::read(path) {
        Ok(source) => source,
        Err(d) => return (None, None, vec![d]),
    };
    match parse(&source) {
        Ok(runbook) => {
            let diagnostics = validate(&source, &runbook, catalog);
            (Some(source), Some(runbook), diagnostics)
        }
        Err(diagnostics) => (Some(source), None, diagnostics),
    }
}

/// `source.parse()`, except that when serde stops at an unknown field, every unknown field of
/// the file is reported (`keys.rs`), not only the first.
pub fn parse(source: &Source) -> Result<Runbook, Vec<Diagnostic>> {
    source.parse().map_err(|first| {
        if first.message.starts_with("unknown field `") {
            let all = crate::book::keys::unknown_fields(source);
            if !all.is_empty() {
                return all;
            }
        }
        vec![first]
    })
}

/// The lines a step's mapping spans (from its first located field to the next step), where
/// fields the model does not locate (`retry`, `message`, `{{ }}` in a title) are looked for.
#[derive(Clone, Copy)]
struct Region {
    from: u32,
    to: u32,
}

impl Region {
    fn of(regions: &Regions, i: usize, cleanup: bool) -> Region {
        let list = if cleanup { &regions.cleanup } else { &regions.steps };
        list.get(i).copied().unwrap_or(Region {
            from: 1,
            to: u32::MAX,
        })
    }
}

struct Regions {
    steps: Vec<Region>,
    cleanup: Vec<Region>,
}

impl Regions {
    fn new(runbook: &Runbook) -> Regions {
        let first_line = |s: &Step| steps::located_lines(s).into_iter().min().unwrap_or(1);
        let mut starts: Vec<u32> = runbook
            .steps
            .iter()
            .chain(&runbook.cleanup)
            .map(first_line)
            .collect();
        starts.sort_unstable();
        let region = |s: &Step| {
            let from = first_line(s);
            let to = starts
                .get(starts.partition_point(|&l| l <= from))
                .copied()
                .unwrap_or(u32::MAX);
            Region { from, to }
        };
        Regions {
            steps: runbook.steps.iter().map(region).collect(),
            cleanup: runbook.cleanup.iter().map(region).collect(),
        }
    }
}

struct Checker<'a> {
    file: &'a str,
    text: Text<'a>,
    runbook: &'a Runbook,
    catalog: Option<&'a BTreeSet<String>>,
    /// Inputs, captures and built-ins: the names `when.var` and `{{ }}` may use.
    variables: BTreeSet<&'a str>,
    /// Ids of `steps` (cleanup steps cannot be gone to).
    step_ids: BTreeMap<&'a str, usize>,
    cleanup_ids: BTreeSet<&'a str>,
    regions: Regions,
    /// Steps whose edges are uncertain (no kind, several, a reference to an unknown step):
    /// graph checks give them the benefit of the doubt instead of piling up errors.
    suspect: Vec<bool>,
    dangling: bool,
    /// Comparisons left for "did you mean" (see `SUGGESTION_BUDGET`).
    comparisons_left: std::cell::Cell<usize>,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    fn new(source: &'a Source, runbook: &'a Runbook, catalog: Option<&'a BTreeSet<String>>) -> Self {
        let mut variables: BTreeSet<&str> = BUILT_INS.into_iter().collect();
        variables.extend(runbook.inputs.keys().map(String::as_str));
        variables.extend(
            runbook
                .steps
                .iter()
                .chain(&runbook.cleanup)
                .filter_map(|s| s.capture.as_ref().map(|c| c.value.as_str())),
        );
        let mut step_ids = BTreeMap::new();
        for (i, step) in runbook.steps.iter().enumerate() {
            step_ids.entry(step.id()).or_insert(i);
        }
        Checker {
            file: &source.path,
            text: Text::new(&source.text),
            runbook,
            catalog,
            variables,
            step_ids,
            cleanup_ids: runbook.cleanup.iter().map(Step::id).collect(),
            regions: Regions::new(runbook),
            suspect: vec![false; runbook.steps.len()],
            dangling: false,
            comparisons_left: std::cell::Cell::new(SUGGESTION_BUDGET),
            diagnostics: Vec::new(),
        }
    }

    /// `did_you_mean`, within the file's budget of comparisons.
    fn suggest<'c>(&self, word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<String> {
        let candidates: Vec<&str> = candidates.into_iter().collect();
        let left = self.comparisons_left.get();
        if candidates.len() > left {
            return None;
        }
        self.comparisons_left.set(left - candidates.len());
        did_you_mean(word, candidates)
    }

    fn error(&mut self, pos: Pos, message: impl Into<String>) -> &mut Diagnostic {
        self.diagnostics.push(Diagnostic::error(self.file, pos, message));
        self.diagnostics.last_mut().expect("just pushed")
    }

    fn warning(&mut self, pos: Pos, message: impl Into<String>) -> &mut Diagnostic {
        self.diagnostics
            .push(Diagnostic::warning(self.file, pos, message));
        self.diagnostics.last_mut().expect("just pushed")
    }

    /// An error underlining a located string value.
    fn error_at(
        &mut self,
        at: &crate::book::runbook::Located<String>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let pos = Pos::of(at);
        let width = self.text.width_at(pos, &at.value);
        let d = self.error(pos, message);
        d.width = width;
        d
    }

    fn header(&mut self) {
        let rb = self.runbook;
        if rb.version.value != 1 {
            let v = rb.version.value;
            self.error(Pos::of(&rb.version), format!("unsupported format version `{v}`"))
                .help = Some("this version of runbook reads format version 1: write `version: 1`".into());
        }
        if !is_runbook_id(&rb.id.value) {
            let slug = slugify(&rb.id.value);
            let help = if slug.is_empty() {
                "an id uses lowercase letters, digits and `-`, starting with a letter or digit".to_string()
            } else {
                format!(
                    "an id uses lowercase letters, digits and `-`, starting with a letter or digit, like `{slug}`"
                )
            };
            self.error_at(&rb.id, format!("runbook id `{}` is not valid", rb.id.value))
                .help = Some(help);
        }
        if let Some(rto) = self.duration(&rb.rto, "`rto`")
            && rto.is_zero()
        {
            self.error_at(&rb.rto.0, "the runbook `rto` is zero").help =
                Some("set the time the whole run should take, like `15m`".into());
        }
        if let Some(drill) = &rb.drill
            && let Some(every) = self.duration(&drill.every, "`drill.every`")
            && every.is_zero()
        {
            self.error_at(&drill.every.0, "the drill cadence `drill.every` is zero")
                .help = Some("say how often the drill must pass, like `30d`".into());
        }
        if let Some(escalate) = &rb.escalate {
            if let Some(after) = self.duration(&escalate.after, "`escalate.after`")
                && after.is_zero()
            {
                self.error_at(&escalate.after.0, "`escalate.after` is zero").help =
                    Some("set how long into the incident to escalate, like `15m`".into());
            }
            if escalate.to.trim().is_empty() {
                let at = Pos::of(&escalate.after.0);
                let pos = self
                    .text
                    .find_key(at.line.saturating_sub(2), at.line + 3, "to")
                    .unwrap_or(at);
                self.error(pos, "`escalate.to` is empty").help =
                    Some("name whom to call: a person, a rota or a number".into());
            }
        }
        if let Some(alert) = &rb.alert {
            for (name, path) in &alert.inputs {
                match rb.inputs.get(name) {
                    None => {
                        let hint = self.suggest(name, rb.inputs.keys().map(String::as_str));
                        self.error_at(path, format!("`alert.inputs` maps unknown input `{name}`"))
                            .help = Some(hint.unwrap_or_else(|| "declare it under `inputs:`".into()));
                    }
                    Some(input) if input.value.secret => {
                        self.error_at(path, format!("`alert.inputs` maps the secret input `{name}`"))
                            .help =
                            Some("an alert's payload is no place for a secret: read it with `from:`".into());
                    }
                    Some(_) => {}
                }
                let root = path.value.split('.').next().unwrap_or_default();
                if !crate::book::runbook::ALERT_ROOTS.contains(&root) || path.value.ends_with('.') {
                    self.error_at(path, format!("`alert.inputs.{name}`: `{}` is not a path of an alert", path.value))
                        .help = Some(
                        "start with labels., annotations., commonLabels., commonAnnotations., groupLabels. (Alertmanager) or incident., event. (PagerDuty)"
                            .into(),
                    );
                }
            }
        }
        if rb.steps.is_empty() {
            let pos = self.text.find_key(1, u32::MAX, "steps").unwrap_or(Pos::new(1, 1));
            self.error(pos, "the runbook has no steps").help =
                Some("add at least one step, and an `end` step where the run ends".into());
        }
    }

    /// Parses a duration field, reporting it at the value when it does not parse.
    fn duration(&mut self, d: &DurationText, what: &str) -> Option<std::time::Duration> {
        match crate::duration::parse(&d.0.value) {
            Ok(duration) => Some(duration),
            Err(e) => {
                let (reason, fix) = match e.0.split_once("; ") {
                    Some((reason, fix)) => (reason.to_string(), fix.to_string()),
                    None => (
                        e.0.clone(),
                        "write a number and a unit, like `90s`, `5m` or `1h30m`".into(),
                    ),
                };
                self.error_at(&d.0, format!("invalid duration in {what}: {reason}"))
                    .help = Some(fix);
                None
            }
        }
    }

    fn inputs(&mut self) {
        for (name, input) in &self.runbook.inputs {
            if text::is_env_name(name) {
                continue;
            }
            let at = Pos::of(input);
            let pos = self
                .text
                .find_key(at.line.saturating_sub(1), at.line + 1, name)
                .unwrap_or(at);
            let suggestion = name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
            let d = self.error(pos, format!("input `{name}` is not a valid variable name"));
            d.width = name.chars().count().max(1);
            d.help = Some(format!(
                "inputs reach commands as environment variables: use letters, digits and `_`, like `{suggestion}`"
            ));
        }
    }

    fn step_ids(&mut self) {
        let mut first: BTreeMap<&str, Pos> = BTreeMap::new();
        let all: Vec<&Step> = self.runbook.steps.iter().chain(&self.runbook.cleanup).collect();
        for step in all {
            let id = step.id();
            if !is_step_id(id) {
                self.error_at(&step.id, format!("step id `{id}` is not valid"))
                    .help = Some(
                    "a step id uses letters, digits, `-` and `_`, starting with a letter or digit".into(),
                );
            }
            match first.get(id) {
                Some(pos) => {
                    let line = pos.line;
                    self.error_at(&step.id, format!("duplicate step id `{id}`")).help = Some(format!(
                        "step `{id}` is already defined on line {line}; step ids must be unique, cleanup steps included"
                    ));
                }
                None => {
                    first.insert(id, Pos::of(&step.id));
                }
            }
        }
    }

    /// A reference to a step of `steps`, from `step`; `None` when it names none (reported).
    fn step_ref(&mut self, at: &crate::book::runbook::Located<String>, message: String) -> Option<usize> {
        if let Some(&i) = self.step_ids.get(at.value.as_str()) {
            return Some(i);
        }
        self.dangling = true;
        let help = if self.cleanup_ids.contains(at.value.as_str()) {
            format!(
                "`{}` is a cleanup step: cleanup steps run after the run ends and cannot be gone to",
                at.value
            )
        } else {
            self.suggest(&at.value, self.step_ids.keys().copied())
                .unwrap_or_else(|| format!("no step of `steps` has the id `{}`", at.value))
        };
        self.error_at(at, message).help = Some(help);
        None
    }

    /// The step graph: unreachable steps, loops that cannot reach an `end`, falling off the
    /// last step, and the longest path by step targets against the runbook `rto`.
    fn graph(&mut self) {
        let rb = self.runbook;
        let n = rb.steps.len();
        if n == 0 {
            return;
        }
        let succ = graph::successors(rb);
        let reachable = graph::reachable(&succ, 0);
        // With a reference to an unknown step the graph is incomplete: a step it was meant to
        // reach would be reported unreachable too, one mistake counted twice.
        if !self.dangling {
            for (i, step) in rb.steps.iter().enumerate() {
                if !reachable[i] {
                    let first = rb.steps[0].id();
                    self.error_at(&step.id, format!("step `{}` is unreachable", step.id()))
                        .help = Some(format!(
                        "nothing leads to it: the run starts at `{first}` and follows `next` (or the next step in the list), `on_failure`, `choose` and the guards' `goto`; link it or remove it"
                    ));
                }
            }
        }
        let last = &rb.steps[n - 1];
        // A step with no kind or several has been reported already; guessing its edges here
        // would only add a second error about the same mistake.
        let falls_off = last.next.is_none()
            && matches!(
                last.kind(),
                Some(StepKind::Run(_) | StepKind::Manual(_) | StepKind::Call(_))
            );
        if falls_off {
            self.error_at(
                &last.id,
                format!(
                    "the run falls off the end after step `{}`: add `next:` or an `end` step",
                    last.id()
                ),
            )
            .help = Some(
                "the last step of `steps` must end the run (`end: resolved`) or go on with `next`".into(),
            );
        }
        let goal: Vec<bool> = rb
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| self.suspect[i] || matches!(s.kinds().first(), Some(StepKind::End(_))))
            .collect();
        let ends = graph::can_reach(&succ, &goal);
        let comps = graph::components(&succ);
        for (c, members) in comps.members.iter().enumerate() {
            let first = members[0];
            if !reachable[first] || ends[first] || !comps.is_cycle(&succ, c) {
                continue;
            }
            // Only loops with no edge out: a step leading into such a loop is its victim.
            let closed = members.iter().all(|&m| succ[m].iter().all(|&s| comps.of[s] == c));
            if !closed {
                continue;
            }
            let names: Vec<String> = members
                .iter()
                .map(|&m| format!("`{}`", rb.steps[m].id()))
                .collect();
            let message = match names.as_slice() {
                [one] => format!("step {one} goes to itself with no way to reach an `end` step"),
                _ => format!(
                    "steps {} loop with no way to reach an `end` step",
                    names.join(", ")
                ),
            };
            self.error_at(&rb.steps[first].id, message).help = Some(
                "give the loop an exit: an `on_failure`, a `choose` option or a `next` that leads to an `end` step".into(),
            );
        }
        self.rto_budget(&succ);
    }

    fn rto_budget(&mut self, succ: &[Vec<usize>]) {
        let rb = self.runbook;
        let Some(budget) = rb.rto.get() else { return };
        if budget.is_zero() {
            return;
        }
        let weights: Vec<u64> = rb
            .steps
            .iter()
            .map(|s| {
                s.rto
                    .as_ref()
                    .and_then(DurationText::get)
                    .map_or(0, |d| d.as_millis() as u64)
            })
            .collect();
        let (total, path) = graph::longest_path(succ, &weights, 0);
        if u128::from(total) <= budget.as_millis() {
            return;
        }
        let fmt = |ms: u64| crate::duration::format(std::time::Duration::from_millis(ms));
        let mut shown: Vec<String> = path
            .iter()
            .take(12)
            .map(|&i| match weights[i] {
                0 => format!("`{}`", rb.steps[i].id()),
                w => format!("`{}` ({})", rb.steps[i].id(), fmt(w)),
            })
            .collect();
        if path.len() > 12 {
            shown.push(format!("… ({} more)", path.len() - 12));
        }
        self.diagnostics.push(
            Diagnostic::warning(
                self.file,
                Pos::of(&rb.rto.0),
                format!(
                    "the longest path takes {} of step targets, over the runbook `rto` of {}",
                    fmt(total),
                    crate::duration::format(budget)
                ),
            )
            .with_width(self.text.width_at(Pos::of(&rb.rto.0), &rb.rto.0.value))
            .with_help(format!(
                "path: {}; raise the runbook `rto` or tighten the steps' `rto`",
                shown.join(" → ")
            )),
        );
    }
}

/// `[a-z0-9][a-z0-9-]*`
fn is_runbook_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `[A-Za-z0-9][A-Za-z0-9_-]*` (the schema's pattern): safe in `--answer STEP=VALUE`.
fn is_step_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `DB Restore_2` → `db-restore-2`: `[a-z0-9][a-z0-9-]*`, for the hint (and `import`'s ids).
pub(crate) fn slugify(id: &str) -> String {
    let mut slug = String::new();
    for c in id.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: 9,000 steps each going to an unknown step took 16 s computing "did you
    /// mean" against every id; past a budget, hints fall back to plain advice.
    #[test]
    fn suggestions_stop_at_a_budget_in_huge_files() {
        let mut text = String::from("version: 1\nid: big\ntitle: B\nrto: 5m\nsteps:\n");
        for i in 0..1000 {
            text.push_str(&format!("  - {{id: s{i}, title: T, run: x, next: q{i}}}\n"));
        }
        let source = Source::from_bytes("big.yaml", text.into_bytes()).unwrap();
        let runbook = source.parse().unwrap();
        let found = validate(&source, &runbook, None);
        let dangling: Vec<&Diagnostic> = found
            .iter()
            .filter(|d| d.message.contains("goes to unknown step"))
            .collect();
        assert_eq!(dangling.len(), 1000);
        assert_eq!(dangling[0].help.as_deref(), Some("did you mean `s0`?"));
        assert_eq!(
            dangling[999].help.as_deref(),
            Some("no step of `steps` has the id `q999`")
        );
    }
}
