//! The integration tests: one binary, one module per feature, each driving the real `runbook`.

mod abort;
mod answers;
mod audit;
mod audit_dir;
mod by_hand;
mod completions;
mod history;
mod interactive;
mod lease;
mod list;
mod lock;
mod masters;
mod plain;
mod resume;
mod review;
mod run;
mod scenarios;
mod schema;
mod secrets;
mod show;
mod signals;
mod ssh_run;
mod support;
mod transport;
mod trust;
mod validate;
