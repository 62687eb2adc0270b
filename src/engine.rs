//! The engine: what runs a run once pre-flight has passed. `launch` connects, locks and
//! opens the trail; the `executor` walks the graph and emits events; `resume` rebuilds where an
//! interrupted run stopped; `stubbed` walks a test case over the stub transport (a fleet's
//! batches are `crate::fleet`).

pub(crate) mod executor;
pub(crate) mod fetch;
pub(crate) mod handoff;
pub(crate) mod launch;
pub(crate) mod resume;
pub(crate) mod stubbed;
