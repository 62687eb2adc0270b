//! `runbook audit verify` (not yet built).

use crate::cli::{Global, VerifyArgs};
use crate::error::{Error, Result};

pub fn verify(_global: &Global, _args: &VerifyArgs) -> Result<u8> {
    Err(Error::usage("`runbook audit verify` is not built yet"))
}
