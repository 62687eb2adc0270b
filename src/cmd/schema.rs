//! `runbook schema` (not yet built).

use crate::error::{Error, Result};

pub fn execute() -> Result<u8> {
    Err(Error::usage("`runbook schema` is not built yet"))
}
