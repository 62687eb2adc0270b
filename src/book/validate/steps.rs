//! The rules about one step: its kind, its fields, the names it refers to, its regexes and
//! durations, display text placeholders, and the destructive-command warning; plus what a
//! cleanup step may not do.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use regex::RegexBuilder;

use super::{Checker, REGEX_SIZE_LIMIT, Region, destructive, text};
use crate::book::runbook::{EndText, Located, Outcome, Step, StepKind};
use crate::diagnostic::{Diagnostic, Pos};

/// Patterns that compiled already in this process: a catalog repeats the same few
/// (`^[0-9]+$`), and compiling is the costliest part of checking a step.
static GOOD_REGEXES: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

fn known_good(pattern: &str) -> bool {
    GOOD_REGEXES.lock().is_ok_and(|good| good.contains(pattern))
}

fn remember_good(pattern: &str) {
    if let Ok(mut good) = GOOD_REGEXES.lock() {
        good.insert(pattern.to_string());
    }
}

const KINDS_HINT: &str = "add one of `run`, `manual`, `choose`, `call` or `end`";

/// The lines of every field of a step that carries a position.
pub(super) fn located_lines(step: &Step) -> Vec<u32> {
    let mut lines = vec![Pos::of(&step.id).line];
    let strings = [
        &step.target,
        &step.capture,
        &step.next,
        &step.on_failure,
        &step.run,
        &step.manual,
        &step.call,
    ];
    lines.extend(strings.into_iter().flatten().map(|s| Pos::of(s).line));
    lines.extend(step.confirm.as_ref().map(|c| Pos::of(c).line));
    lines.extend(step.choose.as_ref().map(|c| Pos::of(c).line));
    lines.extend(step.end.as_ref().map(|c| Pos::of(c).line));
    lines.extend(
        [&step.rto, &step.timeout]
            .into_iter()
            .flatten()
            .map(|d| Pos::of(&d.0).line),
    );
    lines.retain(|&l| l > 0);
    lines
}

/// Where each kind of a step is written, in the order of `Step::kinds`.
fn kind_positions(step: &Step) -> Vec<(&'static str, Pos)> {
    let mut out = Vec::new();
    out.extend(step.run.as_ref().map(|v| ("run", Pos::of(v))));
    out.extend(step.manual.as_ref().map(|v| ("manual", Pos::of(v))));
    out.extend(step.choose.as_ref().map(|v| ("choose", Pos::of(v))));
    out.extend(step.call.as_ref().map(|v| ("call", Pos::of(v))));
    out.extend(step.end.as_ref().map(|v| ("end", Pos::of(v))));
    out
}

fn number_word(n: usize) -> String {
    match n {
        2 => "two".into(),
        3 => "three".into(),
        4 => "four".into(),
        5 => "five".into(),
        n => n.to_string(),
    }
}

/// `a`, `b` and `c`
fn and_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

impl Checker<'_> {
    /// Rules for a step of `steps`.
    pub(super) fn step(&mut self, index: usize, step: &Step, region: Region) {
        let id = step.id();
        let kinds = kind_positions(step);
        if kinds.len() != 1 {
            self.suspect[index] = true;
        }
        self.kinds(step, &kinds, region);
        self.common(step, region);
        let is_end = matches!(step.kind(), Some(StepKind::End(_)));
        let is_choose = step.choose.is_some() && kinds.len() == 1;

        let mut dangling = false;
        if let Some(next) = &step.next {
            dangling |= self
                .step_ref(next, format!("step `{id}` goes to unknown step `{}`", next.value))
                .is_none();
        }
        if let Some(on_failure) = &step.on_failure {
            dangling |= self
                .step_ref(
                    on_failure,
                    format!(
                        "step `{id}` goes to unknown step `{}` on failure",
                        on_failure.value
                    ),
                )
                .is_none();
        }
        if let Some(choose) = &step.choose {
            if choose.value.is_empty() {
                // The graph is incomplete: the steps it was meant to lead to are not unreachable.
                self.dangling = true;
                let d = self.error(Pos::of(choose), format!("decision step `{id}` has no options"));
                d.help = Some("add at least one option: `- {label: ..., goto: STEP}`".into());
            }
            for option in &choose.value {
                let message = format!(
                    "option `{}` of step `{id}` goes to unknown step `{}`",
                    option.label, option.goto.value
                );
                dangling |= self.step_ref(&option.goto, message).is_none();
            }
        }
        if dangling {
            self.suspect[index] = true;
        }
        if let Some(end) = &step.end {
            self.end_outcome(id, end);
        }

        if is_end {
            let located = [
                ("next", &step.next),
                ("on_failure", &step.on_failure),
                ("capture", &step.capture),
            ];
            for (field, value) in located {
                if let Some(value) = value {
                    let pos = self
                        .text
                        .find_key(region.from, region.to, field)
                        .unwrap_or(Pos::of(value));
                    self.end_field(id, field, pos);
                }
            }
            let unlocated = [("retry", step.retry.is_some()), ("expect", step.expect.is_some())];
            for (field, present) in unlocated {
                if present {
                    let pos = self.key_or_id(step, region, field);
                    self.end_field(id, field, pos);
                }
            }
        } else if step.message.is_some() {
            let message = format!("step `{id}` has a `message` but is not an `end` step");
            self.key_error(step, region, "message", message).help = Some("`message` is shown when the run ends at an `end` step; use `notes` to show text before a step".into());
        }
        if is_choose {
            self.no_jumps(
                step,
                region,
                |field| format!("decision step `{id}` cannot have `{field}`"),
                |_| "a `choose` step goes where the chosen option's `goto` says: make it an option".into(),
            );
        }
        if let Some(call) = &step.call {
            self.call(id, call);
        }
        self.destructive(step, region);
    }

    /// `end:` names one of the outcomes (read as text, so a misspelt one is reported here with
    /// the file's other problems, not as a parse error that hides them).
    pub(super) fn end_outcome(&mut self, id: &str, end: &Located<EndText>) {
        if end.value.outcome().is_some() {
            return;
        }
        let text = &end.value.0;
        let outcomes = "an `end` step ends the run `resolved`, `escalated` or `failed`";
        let help = match self.suggest(text, Outcome::ALL.map(Outcome::as_str)) {
            Some(hint) => format!("{hint} {outcomes}"),
            None => outcomes.to_string(),
        };
        let pos = Pos::of(end);
        let width = self.text.width_at(pos, text);
        let d = self.error(pos, format!("step `{id}` ends with unknown outcome `{text}`"));
        d.width = width;
        d.help = Some(help);
    }

    fn end_field(&mut self, id: &str, field: &str, pos: Pos) {
        let d = self.error(pos, format!("`end` step `{id}` cannot have `{field}`"));
        d.width = field.len();
        d.help = Some(format!(
            "an `end` step ends the run: nothing runs or comes after it; remove `{field}`"
        ));
    }

    /// An error at each `next` and `on_failure` of a step that may have neither: `says` words it
    /// for the field, `help` helps.
    fn no_jumps(
        &mut self,
        step: &Step,
        region: Region,
        says: impl Fn(&str) -> String,
        help: impl Fn(&str) -> String,
    ) {
        for (field, value) in [("next", &step.next), ("on_failure", &step.on_failure)] {
            if let Some(value) = value {
                let pos = self
                    .text
                    .find_key(region.from, region.to, field)
                    .unwrap_or(Pos::of(value));
                let d = self.error(pos, says(field));
                d.width = field.len();
                d.help = Some(help(field));
            }
        }
    }

    /// An error underlining a step's key `key` (at the step's id when it is not found).
    fn key_error(&mut self, step: &Step, region: Region, key: &str, message: String) -> &mut Diagnostic {
        let pos = self.key_or_id(step, region, key);
        let d = self.error(pos, message);
        d.width = key.len();
        d
    }

    fn key_or_id(&self, step: &Step, region: Region, key: &str) -> Pos {
        self.text
            .find_key(region.from, region.to, key)
            .unwrap_or(Pos::of(&step.id))
    }

    fn kinds(&mut self, step: &Step, kinds: &[(&'static str, Pos)], region: Region) {
        let id = step.id();
        match kinds {
            [] => {
                self.error_at(&step.id, format!("step `{id}` has no kind: {KINDS_HINT}")).help =
                    Some("a step runs a command (`run`), asks a person (`manual`), decides (`choose`), runs another runbook (`call`) or ends the run (`end`)".into());
            }
            [_] => {}
            [_, (second, at), ..] => {
                let names: Vec<&str> = kinds.iter().map(|(k, _)| *k).collect();
                let pos = self.text.find_key(region.from, region.to, second).unwrap_or(*at);
                let d = self.error(
                    pos,
                    format!(
                        "step `{id}` has {} kinds, {}",
                        number_word(kinds.len()),
                        and_list(&names)
                    ),
                );
                d.width = second.len();
                d.help = Some("a step does exactly one thing: split it into several steps".into());
            }
        }
    }

    /// Rules shared by `steps` and `cleanup`: durations, target, retry, regexes, capture,
    /// `with`, and `{{ }}` in display text.
    fn common(&mut self, step: &Step, region: Region) {
        let id = step.id();
        if let Some(rto) = &step.rto {
            self.duration(rto, &format!("the `rto` of step `{id}`"));
        }
        if let Some(timeout) = &step.timeout {
            self.duration(timeout, &format!("the `timeout` of step `{id}`"));
        }
        if let Some(retry) = &step.retry {
            if let Some(delay) = &retry.delay {
                self.duration(delay, &format!("the `retry.delay` of step `{id}`"));
            }
            if retry.attempts == 0 {
                let message = format!("step `{id}` has `retry.attempts: 0`: it would never run");
                self.key_error(step, region, "attempts", message).help = Some(
                    "`attempts` counts every try, the first included: write at least `attempts: 1`".into(),
                );
            }
        }
        if let Some(target) = &step.target {
            self.target(id, target);
        }
        if let Some(expect) = &step.expect {
            for (field, regex) in [
                ("expect.stdout", &expect.stdout),
                ("expect.stderr", &expect.stderr),
            ] {
                if let Some(regex) = regex {
                    self.regex(regex, &format!("`{field}` of step `{id}`"));
                }
            }
        }
        if let Some(choose) = &step.choose {
            for option in &choose.value {
                let Some(when) = &option.when else { continue };
                let label = &option.label;
                let var = &when.var.value;
                if !self.variables.contains(var.as_str()) {
                    let help = self.unknown_variable_help(var);
                    self.error_at(
                        &when.var,
                        format!("option `{label}` of step `{id}` tests unknown variable `{var}`"),
                    )
                    .help = Some(help);
                }
                let problem = match (&when.equals, &when.matches) {
                    (Some(_), Some(_)) => Some("has both `equals` and `matches`"),
                    (None, None) => Some("has neither `equals` nor `matches`"),
                    _ => None,
                };
                if let Some(problem) = problem {
                    self.error_at(
                        &when.var,
                        format!("the `when` of option `{label}` (step `{id}`) {problem}"),
                    )
                    .help = Some(
                        "a condition is `{var: NAME, equals: VALUE}` or `{var: NAME, matches: REGEX}`".into(),
                    );
                }
                if let Some(regex) = &when.matches {
                    self.regex(regex, &format!("the `when` of option `{label}` (step `{id}`)"));
                }
            }
        }
        if let Some(capture) = &step.capture {
            self.capture(id, capture);
        }
        if !step.with.is_empty() && step.call.is_none() {
            let message = format!("step `{id}` has `with` but is not a `call` step");
            self.key_error(step, region, "with", message).help =
                Some("`with` passes inputs to the runbook a `call` step runs; remove it".into());
        }
        self.placeholders(step, region);
        self.secrets(step, region);
    }

    fn target(&mut self, id: &str, target: &Located<String>) {
        let name = target.value.as_str();
        if name == "local" || self.runbook.targets.contains_key(name) {
            return;
        }
        let roles = self.runbook.targets.keys().map(String::as_str);
        let help = self.suggest(name, roles.chain(["local"])).unwrap_or_else(|| {
            if self.runbook.targets.is_empty() {
                "this runbook declares no `targets`: declare the role under `targets:`, or use `local`".into()
            } else {
                let roles: Vec<&str> = self.runbook.targets.keys().map(String::as_str).collect();
                format!(
                    "the roles of this runbook are {}; or use `local`",
                    and_list(&roles)
                )
            }
        });
        self.error_at(target, format!("step `{id}` acts on unknown target `{name}`"))
            .help = Some(help);
    }

    pub(super) fn unknown_variable_help(&self, var: &str) -> String {
        self.suggest(var, self.variables.iter().copied())
            .unwrap_or_else(|| {
                "variables are the `inputs`, the `capture`s of steps, and `run_id`, `operator`, `mode`".into()
            })
    }

    fn regex(&mut self, regex: &Located<String>, what: &str) {
        if known_good(&regex.value) {
            return;
        }
        let built = RegexBuilder::new(&regex.value)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build();
        let (message, help) = match built {
            Ok(_) => {
                remember_good(&regex.value);
                return;
            }
            Err(regex::Error::CompiledTooBig(_)) => (
                format!("the regex in {what} is too large (over 1 MiB compiled)"),
                "match less: a shorter pattern, fewer repetitions like `{1000}`".to_string(),
            ),
            Err(e) => {
                let full = e.to_string();
                // The syntax error is a small report; its last `error:` line is the reason.
                let reason = full
                    .lines()
                    .rev()
                    .find_map(|l| l.trim().strip_prefix("error: "))
                    .unwrap_or(full.lines().next().unwrap_or("invalid"))
                    .to_string();
                (
                    format!("invalid regex in {what}: {reason}"),
                    "the syntax is that of Rust's `regex` crate (https://docs.rs/regex/#syntax); escape literal characters with `\\`".to_string(),
                )
            }
        };
        self.error_at(regex, message).help = Some(help);
    }

    fn capture(&mut self, id: &str, capture: &Located<String>) {
        let name = capture.value.as_str();
        if !text::is_env_name(name) {
            let suggestion = name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
            self.error_at(
                capture,
                format!("capture `{name}` of step `{id}` is not a valid variable name"),
            )
            .help = Some(format!(
                "captures reach commands as environment variables: use letters, digits and `_`, like `{suggestion}`"
            ));
        } else if self.runbook.inputs.contains_key(name) {
            self.error_at(capture, format!("capture `{name}` of step `{id}` shadows the input `{name}`"))
                .help = Some("rename the capture: the input keeps the value the operator gave, a capture would silently replace it".into());
        } else if super::BUILT_INS.contains(&name) {
            self.error_at(
                capture,
                format!("capture `{name}` of step `{id}` shadows the built-in variable `{name}`"),
            )
            .help =
                Some("rename the capture: `run_id`, `operator` and `mode` are set by runbook itself".into());
        }
    }

    fn call(&mut self, id: &str, call: &Located<String>) {
        let name = call.value.as_str();
        if name == self.runbook.id() {
            self.error_at(call, format!("step `{id}` calls this runbook itself"))
                .help =
                Some("a runbook that calls itself never ends; go back to a step with `next` instead".into());
            return;
        }
        let Some(catalog) = self.catalog else { return };
        if catalog.contains(name) {
            return;
        }
        let help = self.suggest(name, catalog.iter().map(String::as_str)).unwrap_or_else(|| {
            "no runbook has this id in the catalog (`--dir`, RUNBOOK_PATH, ./runbooks); `runbook list` shows it".into()
        });
        self.error_at(call, format!("step `{id}` calls unknown runbook `{name}`"))
            .help = Some(help);
    }

    /// `{{ name }}` in display text must name a variable. The model keeps no position for a
    /// title or a note, so the placeholder's own text is looked for in the step's lines.
    fn placeholders(&mut self, step: &Step, region: Region) {
        let mut texts: Vec<&str> = vec![&step.title];
        texts.extend(step.notes.as_deref());
        texts.extend(step.manual.as_ref().map(|m| m.value.as_str()));
        if let Some(crate::book::runbook::Confirm::Phrase(phrase)) = step.confirm.as_ref().map(|c| &c.value) {
            texts.push(phrase);
        }
        texts.extend(step.with.values().map(String::as_str));
        texts.extend(step.message.as_deref());
        let mut reported = std::collections::BTreeSet::new();
        for text in texts {
            for (name, raw) in text::placeholders(text) {
                if self.variables.contains(name) || !reported.insert(name) {
                    continue;
                }
                let pos = self
                    .text
                    .find(region.from, region.to, raw)
                    .map(|p| {
                        let inner = raw[2..].len() - raw[2..].trim_start().len();
                        Pos::new(p.line, p.col + 2 + inner as u32)
                    })
                    .unwrap_or(Pos::of(&step.id));
                let help = self.unknown_variable_help(name);
                let d = self.error(
                    pos,
                    format!("step `{}` shows unknown variable `{name}`", step.id()),
                );
                d.width = name.len();
                d.help = Some(help);
            }
        }
    }

    fn destructive(&mut self, step: &Step, region: Region) {
        let Some(run) = &step.run else { return };
        if step.confirmation().is_some() {
            return;
        }
        let Some(found) = destructive::find(&run.value) else {
            return;
        };
        let start = Pos::of(run);
        // Underline the words themselves: on the value's own line, or in a block scalar
        // (`run: |`) on the line of the command that has them.
        let raw = run.value[found.at..found.at + found.len]
            .lines()
            .next()
            .unwrap_or("");
        let line_no = run.value[..found.at].matches('\n').count();
        let line = run.value.lines().nth(line_no).unwrap_or("").trim();
        let source_line = match line_no {
            0 => Some(start),
            _ if line.is_empty() => None,
            _ => self.text.find(start.line, region.to, line),
        };
        let located = source_line.and_then(|at| {
            let text = self.text.line(at.line)?;
            let from = if at.line == start.line {
                start.col.saturating_sub(1) as usize
            } else {
                0
            };
            let skip: usize = text.chars().take(from).map(char::len_utf8).sum();
            let offset = text.get(skip..)?.find(raw)?;
            Some(Pos::new(
                at.line,
                (text[..skip + offset].chars().count() + 1) as u32,
            ))
        });
        let (pos, width) = match located {
            Some(pos) if !raw.is_empty() => (pos, raw.chars().count()),
            _ => (start, self.text.width_at(start, &run.value)),
        };
        let id = step.id();
        let d = self.warning(
            pos,
            format!(
                "step `{id}` runs a destructive-looking command (`{}`) without `confirm`",
                found.what
            ),
        );
        d.width = width.max(1);
        d.help = Some("add `confirm: true` (a yes/no question) or `confirm: PHRASE` (the operator types it), so it runs only when meant".into());
    }

    /// Rules for a step of `cleanup`: it runs in list order, always, after the run ended.
    pub(super) fn cleanup_step(&mut self, step: &Step, region: Region) {
        let id = step.id();
        let kinds = kind_positions(step);
        self.kinds(step, &kinds, region);
        for (kind, at) in &kinds {
            if matches!(*kind, "run" | "manual") {
                continue;
            }
            let why = match *kind {
                "end" => "the run has already ended when cleanup runs",
                "choose" => "cleanup steps run in list order, always: there is nothing to decide",
                _ => {
                    "cleanup steps run in list order, always, after the run ended: a sub-run cannot be undone there"
                }
            };
            let pos = self.text.find_key(region.from, region.to, kind).unwrap_or(*at);
            let d = self.error(pos, format!("cleanup step `{id}` cannot be a `{kind}` step"));
            d.width = kind.len();
            d.help = Some(format!("{why}; use `run` or `manual`"));
        }
        self.no_jumps(
            step,
            region,
            |field| format!("cleanup step `{id}` cannot have `{field}`"),
            |field| format!("cleanup steps run in list order, always, whatever happened: remove `{field}`"),
        );
        if step.message.is_some() {
            let message = format!("cleanup step `{id}` cannot have a `message`");
            self.key_error(step, region, "message", message).help =
                Some("`message` is shown when the run ends at an `end` step; use `notes`".into());
        }
        self.common(step, region);
        self.destructive(step, region);
    }
}
