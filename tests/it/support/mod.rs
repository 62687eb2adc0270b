//! Shared test fixtures: running the real binary, temporary directories, real servers.

#![allow(dead_code)]

pub mod agent;
pub mod alertmanager;
pub mod audit_host;
pub mod cmd;
pub mod fleet;
pub mod http;
pub mod load;
pub mod otlp;
pub mod proxy;
pub mod pty;
pub mod runs;
pub mod sandbox;
pub mod sshd;
pub mod tmpfs;
pub mod trail;
pub mod users;
pub mod wait;
pub mod webhook;
pub mod world;
