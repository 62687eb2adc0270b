//! What the operator gave for the inputs at pre-flight (design §14), checked once: `--set
//! NAME=VALUE` and `--set-from NAME=SOURCE`, then for each input its value from, in order,
//! `--set-from`, `--set`, the input's `from:`, its default, a prompt. Nothing here ever puts
//! a value in a message: a `--set` without `=` may be a secret typed in the wrong place.

use std::collections::HashMap;

use crate::book::runbook::{Input, Runbook};
use crate::cli::Pair;
use crate::diagnostic::did_you_mean;
use crate::error::Error;
use crate::secrets::source::{ReadContext, Source};

/// Where an input's value comes from, as a dry run tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Planned {
    /// Given with `--set`, or the input's default.
    Value(String),
    /// Read from this source (`--set-from`, or the input's `from:`) when the run starts.
    Source(String),
    /// Nothing gives it: asked when the run starts (an unattended run refuses to start).
    Asked,
}

/// The `--set` and `--set-from` flags, checked against the runbook's inputs.
#[derive(Debug, Default)]
pub(crate) struct Given {
    sets: HashMap<String, String>,
    froms: HashMap<String, Source>,
}

impl Given {
    pub(crate) fn parse(sets: &[Pair], froms: &[Pair], runbook: &Runbook) -> Result<Given, Error> {
        let known = |flag: &str, name: &str| -> Result<(), Error> {
            if runbook.inputs.contains_key(name) {
                return Ok(());
            }
            let hint = did_you_mean(name, runbook.inputs.keys().map(String::as_str))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            Err(Error::usage(format!(
                "{flag}: `{}` has no input `{name}`{hint}",
                runbook.id()
            )))
        };
        let mut given = Given::default();
        for Pair { name, value } in sets {
            let name = name.as_str();
            known("--set", name)?;
            if runbook.inputs[name].value.secret {
                crate::stderr::ewriteln!(
                    "runbook: warning: `--set {name}=...` puts a secret in the process list, where any local user can read it (ps, /proc): prefer --set-from {name}=env:VAR, file:PATH, cmd:COMMAND or stdin"
                );
            }
            given.sets.insert(name.to_string(), value.to_string());
        }
        let mut stdin = None;
        for Pair { name, value: spec } in froms {
            let name = name.as_str();
            known("--set-from", name)?;
            let source = Source::parse(spec).map_err(|e| Error::usage(format!("--set-from {name}: {e}")))?;
            if source.reads_stdin()
                && let Some(other) = stdin.replace(name.to_string())
            {
                return Err(Error::usage(format!(
                    "--set-from: `{other}` and `{name}` both read stdin, which gives one value: read one of them from env:, file: or cmd:"
                )));
            }
            given.froms.insert(name.to_string(), source);
        }
        Ok(given)
    }

    /// Where `name`'s value comes from, when a source gives it.
    fn source(&self, name: &str, input: &Input) -> Result<Option<Source>, Error> {
        Ok(match self.froms.get(name) {
            Some(source) => Some(source.clone()),
            None if self.sets.contains_key(name) => None,
            None => {
                match &input.from {
                    Some(spec) => Some(Source::parse(&spec.value).map_err(|e| {
                        Error::usage(format!("input `{name}` has `from: {}`: {e}", spec.value))
                    })?),
                    None => None,
                }
            }
        })
    }

    /// The inputs in the order to read them: those from `env:` first, so that their variables
    /// are gone from the environment before any `cmd:` source (or prompt) runs.
    pub(crate) fn order<'a>(
        &self,
        inputs: impl Iterator<Item = (&'a String, &'a Input)>,
    ) -> Vec<(&'a String, &'a Input)> {
        let (mut env, rest): (Vec<_>, Vec<_>) =
            inputs.partition(|(name, input)| matches!(self.source(name, input), Ok(Some(Source::Env(_)))));
        env.extend(rest);
        env
    }

    /// The value of `name`: `--set-from`, `--set`, the input's `from:`, its default. `None`:
    /// nothing gives it (the caller asks the operator, when there is one).
    pub(crate) fn value(&self, name: &str, input: &Input) -> Result<Option<String>, Error> {
        let source = self.source(name, input)?;
        if let Some(source) = source {
            let read = source
                .read(&ReadContext::new(name))
                .map_err(|e| Error::usage(format!("input `{name}` from `{source}`: {e}")))?;
            for warning in read.warnings {
                crate::stderr::ewriteln!("runbook: warning: input `{name}`: {warning}");
            }
            return Ok(Some(read.value));
        }
        if let Some(value) = self.sets.get(name) {
            return Ok(Some(value.clone()));
        }
        Ok(input.default.clone())
    }

    /// Where `name`'s value would come from, without reading any source or asking anyone:
    /// what a dry run shows (it executes nothing, `cmd:` sources included, and needs no
    /// terminal).
    pub(crate) fn planned(&self, name: &str, input: &Input) -> Result<Planned, Error> {
        if let Some(source) = self.source(name, input)? {
            return Ok(Planned::Source(source.to_string()));
        }
        if let Some(value) = self.sets.get(name) {
            return Ok(Planned::Value(value.clone()));
        }
        Ok(match &input.default {
            Some(default) => Planned::Value(default.clone()),
            None => Planned::Asked,
        })
    }

    /// Whether the operator gave this input on the command line.
    pub(crate) fn names(&self, name: &str) -> bool {
        self.sets.contains_key(name) || self.froms.contains_key(name)
    }
}
