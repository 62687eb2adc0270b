//! `runbook`: walk incident runbooks, time them against their RTO, keep a tamper-evident trail.

pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod diagnostic;
pub mod duration;
pub mod error;
pub mod graph;
pub mod keys;
pub mod output;
pub mod parse;
pub mod runbook;
pub mod validate;
