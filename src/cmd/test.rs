//! `runbook test [PATH...] [--format text|junit] [--coverage]` (design §21): the cases walk
//! their runbooks over the stub transport (`crate::cases`).

use crate::cli::config::Config;
use crate::cli::{TestArgs, TestFormat};
use crate::error::Result;

pub(super) fn execute(config: &Config, args: &TestArgs) -> Result<u8> {
    crate::cases::run(
        &config.catalog,
        &crate::cases::Options {
            paths: args.paths.clone(),
            junit: args.format == TestFormat::Junit,
            coverage: args.coverage,
        },
    )
}
