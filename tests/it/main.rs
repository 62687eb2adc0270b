//! The integration tests: one binary, one module per feature, each driving the real `runbook`.

mod support;
mod validate;
