//! A trail's line as read: its common members, then its record; and a record's own members
//! as the writer splices them into a line.

use serde::Deserialize;
use serde_json::Value;

use super::Record;

/// The members every event has besides its own: what a reader gets with each `Record`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Common {
    pub v: u64,
    pub seq: u64,
    pub ts: String,
    pub mono_ms: u64,
    pub run: String,
    pub event: String,
    pub operator: String,
    pub step: Option<String>,
    pub host: Option<String>,
    pub prev: Option<String>,
    // Kept as it reads: a malformed signature is for `verify` to report, not a reason to
    // lose the line.
    pub signature: Option<Value>,
    pub hash: Option<String>,
}

/// One line of a trail, read: its common members and its record.
#[derive(Debug, Clone)]
pub struct Line {
    pub common: Common,
    pub record: Record,
}

impl Line {
    /// Two passes over the bytes, the common members then the record: a record whose own
    /// members do not read as this build expects (a newer writer) keeps its name with none
    /// of its members (`Record::named`), and the line still counts. `None`: not an event.
    pub fn decode(bytes: &[u8]) -> Option<Line> {
        let common: Common = serde_json::from_slice(bytes).ok()?;
        let record =
            Record::from_slice_named(&common.event, bytes).unwrap_or_else(|_| Record::named(&common.event));
        Some(Line { common, record })
    }

    /// The same from a parsed event (`audit::read_events`).
    pub fn from_value(value: &Value) -> Option<Line> {
        let common = Common::deserialize(value).ok()?;
        let record =
            Record::from_value_named(&common.event, value).unwrap_or_else(|_| Record::named(&common.event));
        Some(Line { common, record })
    }
}

/// The verified events of a trail (`read_events`: refused when tampered with), typed.
pub(crate) fn read(path: &std::path::Path) -> Result<Vec<Line>, crate::error::Error> {
    Ok(super::super::read_events(path)?
        .iter()
        .filter_map(Line::from_value)
        .collect())
}

/// A record's own members as they follow the common ones in a line: `,"k":v,...`, or empty.
pub(crate) fn members(record: &Record) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(record)?;
    // `{"event":"<name>"` then `,<members>` or nothing, then `}`: the tag comes first.
    let tag = serde_json::to_string(record.name())?;
    let start = "{\"event\":".len() + tag.len();
    debug_assert!(json.starts_with("{\"event\":") && json.ends_with('}'));
    Ok(json[start..json.len() - 1].to_string())
}
