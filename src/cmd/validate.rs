//! `runbook validate` (not yet built).

use crate::cli::{Global, ValidateArgs};
use crate::error::{Error, Result};

pub fn execute(_global: &Global, _args: &ValidateArgs) -> Result<u8> {
    Err(Error::usage("`runbook validate` is not built yet"))
}
