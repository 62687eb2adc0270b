//! `runbook schema`: the JSON Schema (draft-07, what YAML language servers understand) of
//! runbook files, generated from the same Rust types the parser fills, so it cannot drift.

use crate::book::runbook::Runbook;
use crate::error::{Error, Result, exit};
use crate::output;

/// The schema as pretty JSON with a final newline, exactly as committed in
/// `docs/runbook.schema.json`.
pub(super) fn schema_json() -> Result<String> {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<Runbook>();
    let mut json = serde_json::to_string_pretty(&schema)
        .map_err(|e| Error::runtime(format!("cannot serialize the JSON Schema: {e}")))?;
    json.push('\n');
    Ok(json)
}

pub(super) fn execute() -> Result<u8> {
    output::print(&schema_json()?)?;
    Ok(exit::OK)
}
