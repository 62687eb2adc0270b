//! `runbook`: walk incident runbooks, time them against their RTO, keep a tamper-evident trail.

pub mod audit;
pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod diagnostic;
pub mod dry_run;
pub mod duration;
pub mod error;
pub mod events;
pub mod executor;
pub mod graph;
pub mod inventory;
pub mod mask;
pub mod output;
pub mod parse;
pub mod plan;
pub mod prompt;
pub mod render;
pub mod review;
pub mod runbook;
pub mod script;
pub mod sink;
pub mod transport;
pub mod ui;
pub mod validate;
pub mod vars;
