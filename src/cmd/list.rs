//! `runbook list` (not yet built).

use crate::cli::{Global, ListArgs};
use crate::error::{Error, Result};

pub fn execute(_global: &Global, _args: &ListArgs) -> Result<u8> {
    Err(Error::usage("`runbook list` is not built yet"))
}
