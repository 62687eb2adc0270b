//! The integration tests: one binary, one module per feature, each driving the real `runbook`.

mod audit;
mod support;
mod run;
mod interactive;
