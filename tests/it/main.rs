//! The integration tests: one binary, one module per feature, each driving the real `runbook`.

mod list;
mod schema;
mod show;
mod support;
