//! `NAME=VALUE` flags (`--target`, `--set`, `--set-from`, `--answer`), split once by clap so
//! nothing below the command line splits them again.

use std::ffi::OsStr;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

/// One `NAME=VALUE` flag: the text before the first `=` and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pair {
    pub name: String,
    pub value: String,
}

impl Pair {
    pub(crate) fn new(name: impl Into<String>, value: impl Into<String>) -> Pair {
        Pair {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A `value_parser` for one kind of pair: its shape (`ROLE=DEST`) and an example for the error.
#[derive(Debug, Clone, Copy)]
pub(super) struct PairParser {
    shape: &'static str,
    example: &'static str,
    /// `false` for `--set`, whose value may be a secret typed in the wrong place: a bad one is
    /// never echoed.
    echo: bool,
}

impl PairParser {
    const fn new(shape: &'static str, example: &'static str, echo: bool) -> PairParser {
        PairParser { shape, example, echo }
    }
}

pub(super) const TARGET: PairParser = PairParser::new("ROLE=DEST", "--target db=deploy@db-1", true);
pub(super) const SET: PairParser = PairParser::new("NAME=VALUE", "--set db_name=app", false);
pub(super) const SET_FROM: PairParser =
    PairParser::new("NAME=SOURCE", "--set-from pg_password=env:PGPASSWORD", true);
pub(super) const ANSWER: PairParser =
    PairParser::new("STEP=VALUE", "--answer drop-db=app or --answer verify=done", true);

impl TypedValueParser for PairParser {
    type Value = Pair;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Pair, clap::Error> {
        let flag = arg
            .and_then(clap::Arg::get_long)
            .map(|l| format!("--{l}"))
            .unwrap_or_else(|| self.shape.to_string());
        let text = value.to_str();
        if let Some((name, value)) = text.and_then(|t| t.split_once('=')) {
            return Ok(Pair::new(name, value));
        }
        let shown = match text {
            Some(t) if self.echo => format!("`{t}` "),
            _ => String::new(),
        };
        let hidden = if self.echo {
            ""
        } else {
            " (its text is not shown: it may be a secret typed in the wrong place)"
        };
        let message = format!(
            "{flag} {shown}is not {}{hidden} (e.g. {})\n",
            self.shape, self.example
        );
        Err(clap::Error::raw(ErrorKind::InvalidValue, message).with_cmd(cmd))
    }
}
