//! The integration tests: one binary, one module per feature, each driving the real `runbook`.

// A test crate is its own world: its helpers are `pub` for the modules beside them, never
// for anyone outside (the crate-wide `unreachable_pub` is for the library).
#![allow(unreachable_pub)]

mod abort;
mod answers;
mod approve;
mod audit;
mod audit_dir;
mod by_hand;
mod clocks;
mod completions;
mod drills;
mod edit;
mod fleet;
mod fleet_fixture;
mod golden;
mod guards;
mod handoff;
mod history;
mod import;
mod interactive;
mod lease;
mod list;
mod lock;
mod masters;
mod mirror;
mod numbers;
mod paste;
mod plain;
mod prose;
mod recap;
mod resume;
mod resume_remote;
mod retry_wait;
mod review;
mod run;
mod runbook_test;
mod scenarios;
mod schema;
mod screens;
mod secrets;
mod shell;
mod show;
mod signals;
mod spinner;
mod ssh_output;
mod ssh_run;
mod support;
mod team;
mod team_approve;
mod team_people;
mod team_record;
mod transport;
mod trust;
mod typeahead;
mod unattended;
mod unverified;
mod validate;
mod watch;
