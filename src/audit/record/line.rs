//! A trail's line as read: its common members, then its record; and a record's own members
//! as the writer splices them into a line.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

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
    /// One pass over the bytes: the common members are read as they come, the others kept
    /// as raw text and read once as the record's members. A record whose own members do not
    /// read as this build expects (a newer writer) keeps its name with none of its members
    /// (`Record::named`), and the line still counts. `None`: not an event.
    pub fn decode(bytes: &[u8]) -> Option<Line> {
        let Split { common, members } = serde_json::from_slice(bytes).ok()?;
        let record = Record::from_members_named(&common.event, members)
            .unwrap_or_else(|_| Record::named(&common.event));
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

/// A line split as it is read: its common members, and the record's own as raw text.
struct Split<'de> {
    common: Common,
    members: Vec<(Cow<'de, str>, &'de RawValue)>,
}

impl<'de> Deserialize<'de> for Split<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Split<'de>, D::Error> {
        deserializer.deserialize_map(SplitVisitor)
    }
}

struct SplitVisitor;

impl<'de> Visitor<'de> for SplitVisitor {
    type Value = Split<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event: a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Split<'de>, A::Error> {
        let mut common = Common::default();
        let mut members = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            let c = &mut common;
            match &*key {
                "v" => c.v = map.next_value()?,
                "seq" => c.seq = map.next_value()?,
                "ts" => c.ts = map.next_value()?,
                "mono_ms" => c.mono_ms = map.next_value()?,
                "run" => c.run = map.next_value()?,
                "event" => c.event = map.next_value()?,
                "operator" => c.operator = map.next_value()?,
                "step" => c.step = map.next_value()?,
                "host" => c.host = map.next_value()?,
                "prev" => c.prev = map.next_value()?,
                "signature" => c.signature = map.next_value()?,
                "hash" => c.hash = map.next_value()?,
                _ => members.push((key, map.next_value()?)),
            }
        }
        Ok(Split { common, members })
    }
}

/// A member's name, borrowed from the line unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}
