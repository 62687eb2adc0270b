//! What the format's types are made of: a value with where it was written, and a duration
//! written with units (both checked during validation, reported at their place).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A value together with where it was written in the file.
pub(crate) type Located<T> = Spanned<T>;

/// A duration written with units: `90s`, `5m`, `1h30m`. Parsed during validation so that a
/// bad one is reported with the others, at its own line and column.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct DurationText(pub Located<String>);

impl JsonSchema for DurationText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration with units: `90s`, `5m`, `1h30m`, `250ms`, `30d`. A bare number is an error.",
            "pattern": crate::duration::PATTERN,
        })
    }
}

impl DurationText {
    /// The duration, or `None` when it does not parse (validation has reported it).
    pub fn get(&self) -> Option<std::time::Duration> {
        crate::duration::parse(&self.0.value).ok()
    }
}
