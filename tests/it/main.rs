//! The integration tests: one binary, one module per feature, each driving the real `runbook`.

mod audit;
mod interactive;
mod list;
mod resume;
mod run;
mod scenarios;
mod schema;
mod show;
mod ssh_run;
mod support;
mod transport;
mod validate;
