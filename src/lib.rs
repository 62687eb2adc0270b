//! `runbook`: walk incident runbooks, time them against their RTO, keep a tamper-evident trail.

pub mod audit;
pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod diagnostic;
pub mod duration;
pub mod error;
pub mod output;
pub mod parse;
pub mod runbook;
pub mod dry_run;
pub mod events;
pub mod executor;
pub mod inventory;
pub mod plan;
pub mod prompt;
pub mod sink;
pub mod ui;
pub mod vars;
pub mod mask;
pub mod script;
pub mod transport;
pub mod validate;
