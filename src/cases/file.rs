//! The test case file (`*.test.yaml`, design §21), as serde-saphyr reads it: every value that
//! a problem may be reported at keeps its line and column, as in a runbook file.

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

use crate::book::parse::Source;
use crate::book::runbook::{DurationText, Located};
use crate::diagnostic::{Diagnostic, Pos};

/// One test case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Case {
    /// The runbook under test: an id of the catalog, or a path relative to this file.
    pub runbook: Located<String>,
    /// What the case shows; default: the file's name.
    pub name: Option<String>,
    /// Inputs of the runbook (as `--set`); the others take their defaults.
    #[serde(default)]
    pub inputs: IndexMap<Located<String>, Text>,
    /// Stubbed results by step id (`CALL-STEP/STEP` in a sub-run).
    #[serde(default)]
    pub steps: IndexMap<Located<String>, Located<Stubbed>>,
    /// Answers given ahead, as `--answer STEP=VALUE`.
    #[serde(default)]
    pub answers: IndexMap<Located<String>, Located<Text>>,
    /// Stubbed guards by id: from which step each one's check fails (and passes again).
    #[serde(default)]
    pub guards: IndexMap<Located<String>, Located<GuardCase>>,
    /// Walked as `run --unattended`: a guard's trip stops the running step and diverts at
    /// once, instead of being offered at the next step boundary.
    #[serde(default)]
    pub unattended: Option<Located<bool>>,
    pub expect: Expect,
}

/// One guard's stub: `{fails_from: STEP, recovers_from: STEP, answer: divert | go-on}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GuardCase {
    /// Its check fails from when this step is first entered.
    #[serde(default)]
    pub fails_from: Option<Located<String>>,
    /// ... and passes again from when this one is first entered after that.
    #[serde(default)]
    pub recovers_from: Option<Located<String>>,
    /// What the operator answers when the trip is offered: `divert` (the preselected choice,
    /// the default) or `go-on`.
    #[serde(default)]
    pub answer: Option<Located<String>>,
}

/// What the walk must do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Expect {
    /// The main runbook's steps, in the order entered, from the first to the end.
    pub path: Option<Located<Vec<Located<String>>>>,
    /// Steps entered at least once (`CALL-STEP/STEP` for a sub-run's).
    #[serde(default)]
    pub visits: Vec<Located<String>>,
    /// Steps never entered.
    #[serde(default)]
    pub not_visits: Vec<Located<String>>,
    /// `resolved`, `escalated`, `failed` or `aborted`.
    pub outcome: Option<Located<String>>,
    /// The stubbed time (from the first step to the end of the cleanup) within the RTO.
    pub within_rto: Option<Located<bool>>,
}

/// A step's stub: its attempts' results (a run step), or a report (a manual step).
#[derive(Debug, Clone)]
pub(crate) enum Stubbed {
    /// One mapping (every attempt) or a list (attempt by attempt, the last one repeating).
    Attempts(Vec<Attempt>),
    /// `done`, `skip` or `failed`.
    Report(String),
}

/// One attempt of a run step's command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Attempt {
    #[serde(default)]
    pub exit: i32,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    /// How long it took (virtual time); default 1s.
    pub took: Option<DurationText>,
}

impl<'de> Deserialize<'de> for Stubbed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StubbedVisitor)
    }
}

struct StubbedVisitor;

impl<'de> Visitor<'de> for StubbedVisitor {
    type Value = Stubbed;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(
            "`{exit, stdout, stderr, took}`, a list of them (one per attempt), or `done`, `skip` or `failed`",
        )
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Stubbed, E> {
        Ok(Stubbed::Report(v.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Stubbed, A::Error> {
        // A single mapping: the same result for every attempt.
        let attempt = Attempt::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(Stubbed::Attempts(vec![attempt]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Stubbed, A::Error> {
        let mut attempts = Vec::new();
        while let Some(a) = seq.next_element::<Attempt>()? {
            attempts.push(a);
        }
        Ok(Stubbed::Attempts(attempts))
    }
}

/// A scalar written as text, a number or a boolean, kept as the text a command would see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a text, a number or a boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Text, E> {
                Ok(Text(String::new()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Reads and parses a case file; a problem comes back located, worded as for a runbook.
pub(crate) fn read(path: &std::path::Path) -> Result<(Source, Case), Diagnostic> {
    let source = Source::read(path)?;
    if source
        .text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(
            Diagnostic::error(&source.path, Pos::new(1, 1), "the file is empty")
                .with_help("a test case needs at least `runbook:` and `expect:`; see docs/testing.md"),
        );
    }
    match serde_saphyr::from_str_with_options::<Case>(&source.text, crate::book::parse::options()) {
        Ok(case) => Ok((source, case)),
        Err(e) => {
            let mut d = source.diagnose(&e);
            if d.help.as_deref().is_some_and(|h| h.contains("docs/format.md")) {
                d.help = Some(
                    d.help
                        .unwrap_or_default()
                        .replace("docs/format.md", "docs/testing.md"),
                );
            }
            Err(d)
        }
    }
}
