//! The runbook file format: the types (`runbook`), YAML with positions (`parse`, `keys`), every
//! problem at once (`validate`), the step graph (`graph`) and the catalog of runbook files.

pub(crate) mod catalog;
pub(crate) mod graph;
pub(crate) mod guard;
pub(crate) mod keys;
pub(crate) mod located;
pub(crate) mod parse;
pub(crate) mod patterns;
pub(crate) mod runbook;
pub(crate) mod validate;
