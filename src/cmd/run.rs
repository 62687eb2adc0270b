//! `runbook run` and `runbook drill` (not yet built).

use crate::cli::{Global, RunArgs};
use crate::error::{Error, Result};

pub fn execute(_global: &Global, _args: &RunArgs, _drill_allow_prod: Option<bool>) -> Result<u8> {
    Err(Error::usage("`runbook run` is not built yet"))
}
