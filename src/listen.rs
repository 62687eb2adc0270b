//! The listeners of a run's events, behind one sink: the audit writer first (`sink`), then the
//! terminal (`ui`), notifications (`notify`) and traces (`otlp`); or, for `runbook test`, the `tap` alone. The engine knows the sink,
//! never the faces.

pub(crate) mod mirror;
pub(crate) mod notify;
pub(crate) mod otlp;
pub(crate) mod sink;
pub(crate) mod tap;
pub(crate) mod ui;
