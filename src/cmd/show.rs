//! `runbook show` (not yet built).

use crate::cli::{Global, ShowArgs};
use crate::error::{Error, Result};

pub fn execute(_global: &Global, _args: &ShowArgs) -> Result<u8> {
    Err(Error::usage("`runbook show` is not built yet"))
}
