//! The runbook file format, version 1 (design §2), as plain owned data.
//!
//! These types are what serde-saphyr deserializes and what schemars turns into the JSON Schema
//! (`runbook schema`), so the schema can never drift from the parser. Fields that a diagnostic
//! may need to point at are `Spanned`, so an error lands on the reference, not the file's top.
//! A step keeps its five kinds as optional fields: "zero or two kinds" is a validation error
//! with a location, not a parse failure; `Step::kind` gives the executor a proper enum.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

pub(crate) use crate::book::located::{DurationText, Located};

/// One runbook file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "runbook",
    description = "A runbook: one incident scenario as a graph of steps (format version 1)."
)]
pub struct Runbook {
    /// Format version; must be 1.
    #[schemars(with = "u32")]
    pub version: Located<u32>,
    /// Identifier, `[a-z0-9][a-z0-9-]*`, unique in a catalog.
    #[schemars(with = "String", regex(pattern = r"^[a-z0-9][a-z0-9-]*$"))]
    pub id: Located<String>,
    /// One-line title.
    pub title: String,
    /// Markdown: when to use it, impact, background.
    pub description: Option<String>,
    /// Who maintains this runbook.
    pub owner: Option<String>,
    /// Whole-run recovery time objective, e.g. `15m`.
    pub rto: DurationText,
    /// This runbook is a drill kept up on a cadence: `runbook drills` says when it is overdue.
    pub drill: Option<Drill>,
    /// Links shown in the header.
    #[serde(default)]
    pub links: Vec<Link>,
    /// The escalation deadline: when the RTO clock passes `after` and the run has not ended,
    /// the operator is told loudly whom to call, the trail records `escalation due` and a
    /// `runbook.escalation.due` notification is sent.
    pub escalate: Option<Escalate>,
    /// Which alerts this runbook answers (`runbook match --alert`), and the inputs a
    /// `--alert` payload gives.
    pub alert: Option<AlertSpec>,
    /// Variables the operator supplies (`--set name=value`, or prompted).
    #[serde(default)]
    #[schemars(with = "IndexMap<String, Input>")]
    pub inputs: IndexMap<String, Located<Input>>,
    /// Roles the runbook acts on, bound to hosts at run time.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, Target>")]
    pub targets: IndexMap<String, Located<Target>>,
    /// The steps, walked from the first one.
    pub steps: Vec<Step>,
    /// Steps that always run after the run ends, whatever its outcome.
    #[serde(default)]
    pub cleanup: Vec<Step>,
    /// Checks polled in the background from the first step to the end of the walk; one that
    /// trips diverts the run to its `goto` (design §20).
    #[serde(default)]
    pub guards: Vec<crate::book::guard::Guard>,
    /// `false`: the step prompts offer no interactive shell on the target (design §17), for
    /// runbooks whose policy forbids interactive access. Default: offered (never unattended).
    pub shell: Option<bool>,
}

/// A drill's cadence (design §16): how often it must pass for its launch gate to stay closed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drill {
    /// At most this long between two PASSes, e.g. `30d`; `runbook drills` calls the runbook
    /// OVERDUE (exit 5) when its last PASS is older, or when it never passed.
    pub every: DurationText,
}

/// `escalate: {after: 15m, to: TEXT}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Escalate {
    /// RTO-clock time (from detection with `--since`) after which the run escalates.
    pub after: DurationText,
    /// Whom to call: a person, a rota, a phone number.
    pub to: String,
}

/// The roots an `alert.inputs`/`alert.match` path may start with: the members of an
/// Alertmanager or PagerDuty payload (`alert.rs` reads them, `validate` checks them).
pub(crate) const ALERT_ROOTS: [&str; 10] = [
    "labels",
    "annotations",
    "commonLabels",
    "commonAnnotations",
    "groupLabels",
    "externalURL",
    "receiver",
    "status",
    "incident",
    "event",
];

/// `alert: {match: {alertname: ServiceDown}, inputs: {service: labels.service}}`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    /// Values an alert must have for this runbook to match it: a bare name is a label of the
    /// first alert (`alertname: ServiceDown`), a path is as in `inputs`.
    #[serde(rename = "match", default)]
    pub matches: IndexMap<String, String>,
    /// Input name → where in the payload its value is: `labels.X`, `annotations.X` (the
    /// first alert), `commonLabels.X`, `commonAnnotations.X`, `groupLabels.X`; PagerDuty:
    /// `incident.X` (`incident.service.summary`), `event.X`.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub inputs: IndexMap<String, Located<String>>,
}

/// A titled link.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub title: String,
    pub url: String,
}

/// A variable the operator supplies.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub description: Option<String>,
    /// Used when the operator gives no value; an input without a default is required.
    pub default: Option<String>,
    /// Never written anywhere in clear; masked as `***` in every output.
    #[serde(default)]
    pub secret: bool,
    /// Where the value comes from when none is given: `env:VAR`, `file:PATH` (first line),
    /// `file-all:PATH`, `cmd:COMMAND` (run at pre-flight, no shell), or `stdin`.
    #[schemars(with = "Option<String>")]
    pub from: Option<Located<String>>,
}

/// A role the runbook acts on.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub description: Option<String>,
    /// `local`, an inventory host or group, or an SSH destination.
    pub default: Option<String>,
}

/// A step of the graph. Exactly one of `run`, `manual`, `choose`, `call`, `end` must be set.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[schemars(with = "String", regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"))]
    pub id: Located<String>,
    /// Display text; may use `{{ name }}`.
    pub title: String,
    /// Markdown shown before the step; may use `{{ name }}`.
    pub notes: Option<String>,
    #[serde(default)]
    pub links: Vec<Link>,
    /// A role of `targets`, or `local`. Default: the only role, else `local`.
    #[schemars(with = "Option<String>")]
    pub target: Option<Located<String>>,
    /// This step's time target.
    pub rto: Option<DurationText>,
    /// Hard limit: the command is killed when it runs longer.
    pub timeout: Option<DurationText>,
    /// `true` for a yes/no confirmation, or a phrase the operator must type.
    #[schemars(with = "Option<Confirm>")]
    pub confirm: Option<Located<Confirm>>,
    pub retry: Option<Retry>,
    /// What success looks like; default: exit code 0.
    pub expect: Option<Expect>,
    /// Name of a variable that receives the trimmed stdout.
    #[schemars(with = "Option<String>")]
    pub capture: Option<Located<String>>,
    /// Step to go to on success; default: the next step in the list.
    #[schemars(with = "Option<String>")]
    pub next: Option<Located<String>>,
    /// Step to go to on failure; default: ask the operator (unattended: the run fails).
    #[schemars(with = "Option<String>")]
    pub on_failure: Option<Located<String>>,
    /// Safe to re-run after a crash without asking.
    #[serde(default)]
    pub idempotent: bool,
    /// Secret inputs the command receives besides those it names (`$name`, `${name}`): a
    /// secret is exported only to the steps that need it.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub uses: Vec<Located<String>>,
    /// The output of this step holds no secret although it received one (e.g. a row count
    /// read with a password): its stdout and captures are shown and recorded in clear.
    #[serde(default)]
    pub declassify: bool,
    /// The two-person rule: before it runs, `quorum` people other than the operator approve
    /// it with `runbook approve` (design §15).
    pub approve: Option<Approve>,
    /// A fleet (a role bound to several hosts): hosts per rolling batch, a number or a share
    /// (`"25%"`); the next batch starts only when the current one has not spent the failure
    /// budget. Default: all hosts at once (at most `--forks` running).
    pub batch: Option<crate::fleet::Share>,
    /// A fleet: how many hosts may fail (a number or a share) before the remaining ones are
    /// not started. Default 0: the first failure stops the rollout.
    pub max_failures: Option<crate::fleet::Share>,
    /// A fleet: which host's stdout a `capture` takes: a host name, or `first` (the first host
    /// of the fleet to succeed).
    #[schemars(with = "Option<String>")]
    pub capture_from: Option<Located<String>>,

    /// Kind `run`: a shell command (`sh -c`); variables arrive as environment variables.
    #[schemars(with = "Option<String>")]
    pub run: Option<Located<String>>,
    /// Kind `manual`: an instruction the operator carries out and reports.
    #[schemars(with = "Option<String>")]
    pub manual: Option<Located<String>>,
    /// Kind `choose`: a decision point.
    #[schemars(with = "Option<Vec<ChooseOption>>")]
    pub choose: Option<Located<Vec<ChooseOption>>>,
    /// Kind `call`: the id of another catalog runbook, run as a sub-run.
    #[schemars(with = "Option<String>")]
    pub call: Option<Located<String>>,
    /// Inputs passed to the called runbook; values may use `{{ name }}`.
    #[serde(default)]
    pub with: IndexMap<String, String>,
    /// Kind `end`: ends the run with this outcome.
    #[schemars(with = "Option<Outcome>")]
    pub end: Option<Located<EndText>>,
    /// Shown when the run ends at this `end` step; may use `{{ name }}`.
    pub message: Option<String>,
}

/// A confirmation before a step acts.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Confirm {
    /// `true`: a yes/no question; `false`: no confirmation.
    YesNo(bool),
    /// The operator must type this phrase (after `{{ }}` interpolation).
    Phrase(String),
}

/// How an `end` step ends the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Resolved,
    Escalated,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Resolved, Outcome::Escalated, Outcome::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Resolved => "resolved",
            Outcome::Escalated => "escalated",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// The value of `end` as written. Read as text, not as an `Outcome`, so that a misspelt
/// outcome (`end: resolvd`) is a validation error with a "did you mean", reported with the
/// file's other problems, rather than a parse error that hides them all (docs/validation.md).
/// The JSON Schema still lists the three outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct EndText(pub String);

impl EndText {
    /// The outcome; `None` when the text is none (validation has reported it).
    pub fn outcome(&self) -> Option<Outcome> {
        Outcome::parse(&self.0)
    }
}

/// Who must approve a step before it runs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    /// How many approvers, none of them the operator; default 1.
    #[serde(default = "one")]
    pub quorum: u32,
    /// How long to wait before the step fails; default 15m.
    pub timeout: Option<DurationText>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Total attempts, including the first.
    pub attempts: u32,
    /// Pause between attempts.
    pub delay: Option<DurationText>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Accepted exit code or codes; default 0.
    pub exit: Option<ExitCodes>,
    /// Regular expression stdout must match.
    #[schemars(with = "Option<String>")]
    pub stdout: Option<Located<String>>,
    /// Regular expression stderr must match.
    #[schemars(with = "Option<String>")]
    pub stderr: Option<Located<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ExitCodes {
    One(i32),
    Many(Vec<i32>),
}

impl ExitCodes {
    pub fn accepts(&self, code: i32) -> bool {
        match self {
            ExitCodes::One(c) => *c == code,
            ExitCodes::Many(cs) => cs.contains(&code),
        }
    }
}

/// An option of a `choose` step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChooseOption {
    pub label: String,
    #[schemars(with = "String")]
    pub goto: Located<String>,
    /// Preselected (interactive) or taken (unattended) when this holds.
    pub when: Option<When>,
}

/// A condition on a variable: exactly one of `equals` and `matches`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[schemars(with = "String")]
    pub var: Located<String>,
    pub equals: Option<String>,
    /// A regular expression.
    #[schemars(with = "Option<String>")]
    pub matches: Option<Located<String>>,
}

/// The kind of a step, for the executor; only valid steps have exactly one.
#[derive(Debug, Clone, Copy)]
pub enum StepKind<'a> {
    Run(&'a str),
    Manual(&'a str),
    Choose(&'a [ChooseOption]),
    Call(&'a str),
    End(Outcome),
}

impl StepKind<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Run(_) => "run",
            StepKind::Manual(_) => "manual",
            StepKind::Choose(_) => "choose",
            StepKind::Call(_) => "call",
            StepKind::End(_) => "end",
        }
    }
}

impl Step {
    /// How many attempts the step gets (at least one) and the pause between them.
    pub fn attempts(&self) -> (u32, std::time::Duration) {
        match &self.retry {
            Some(r) => (
                r.attempts.max(1),
                r.delay.as_ref().and_then(|d| d.get()).unwrap_or_default(),
            ),
            None => (1, std::time::Duration::ZERO),
        }
    }

    /// Every kind field that is set, in the order of the format reference.
    pub fn kinds(&self) -> Vec<StepKind<'_>> {
        let mut kinds = Vec::new();
        if let Some(run) = &self.run {
            kinds.push(StepKind::Run(&run.value));
        }
        if let Some(manual) = &self.manual {
            kinds.push(StepKind::Manual(&manual.value));
        }
        if let Some(choose) = &self.choose {
            kinds.push(StepKind::Choose(&choose.value));
        }
        if let Some(call) = &self.call {
            kinds.push(StepKind::Call(&call.value));
        }
        if let Some(end) = &self.end {
            // An unknown outcome is a validation error, so such a runbook never runs; until
            // then the step still counts as an `end` step (its kind is not in question).
            kinds.push(StepKind::End(end.value.outcome().unwrap_or(Outcome::Failed)));
        }
        kinds
    }

    /// The step's kind; `None` unless exactly one is set (validation reports the others).
    pub fn kind(&self) -> Option<StepKind<'_>> {
        // Asked at every step of every walk: counted without building the list.
        let set = [
            self.run.is_some(),
            self.manual.is_some(),
            self.choose.is_some(),
            self.call.is_some(),
            self.end.is_some(),
        ];
        if set.iter().filter(|s| **s).count() != 1 {
            return None;
        }
        if let Some(run) = &self.run {
            return Some(StepKind::Run(&run.value));
        }
        if let Some(manual) = &self.manual {
            return Some(StepKind::Manual(&manual.value));
        }
        if let Some(choose) = &self.choose {
            return Some(StepKind::Choose(&choose.value));
        }
        if let Some(call) = &self.call {
            return Some(StepKind::Call(&call.value));
        }
        self.end
            .as_ref()
            .map(|end| StepKind::End(end.value.outcome().unwrap_or(Outcome::Failed)))
    }

    pub fn id(&self) -> &str {
        &self.id.value
    }

    /// The confirmation asked before the step acts, if any (`confirm: false` is none).
    pub fn confirmation(&self) -> Option<&Confirm> {
        match self.confirm.as_ref().map(|c| &c.value) {
            None | Some(Confirm::YesNo(false)) => None,
            Some(c) => Some(c),
        }
    }
}

impl Runbook {
    pub fn id(&self) -> &str {
        &self.id.value
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id.value == id)
    }

    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id.value == id)
    }

    /// The role a step acts on: its own `target`, else the only role, else `local`.
    pub fn step_target<'a>(&'a self, step: &'a Step) -> &'a str {
        self.role_of(step.target.as_ref())
    }

    /// The role a guard's check runs on, picked as a step's.
    pub(crate) fn guard_target<'a>(&'a self, guard: &'a crate::book::guard::Guard) -> &'a str {
        self.role_of(guard.target.as_ref())
    }

    /// The role written, else the only role, else `local`.
    fn role_of<'a>(&'a self, target: Option<&'a Located<String>>) -> &'a str {
        match target {
            Some(t) => &t.value,
            None if self.targets.len() == 1 => {
                self.targets.keys().next().map(String::as_str).unwrap_or("local")
            }
            None => "local",
        }
    }
}
