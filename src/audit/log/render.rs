//! One event as its bytes: the common members in the documented order, the record's own
//! members, `prev`, then (`line_of`) the signature and the hash.

use serde_json::{Map, Value};

use super::super::sign::Signature;
use super::super::{FORMAT_VERSION, HASH_MEMBER_LEN, RESERVED, event_hash};
use crate::error::Error;

fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::runtime(format!("cannot serialize an audit event: {e}")))
}

/// What one event is made of, besides the chain state.
pub(crate) struct EventParts<'a> {
    pub seq: u64,
    pub ts: &'a str,
    pub mono_ms: u64,
    pub run: &'a str,
    pub event: &'a str,
    pub operator: &'a str,
    pub step: Option<&'a str>,
    pub host: Option<&'a str>,
    /// Read by `render_body` (the golden test's way in); the log itself passes the members
    /// already serialized, typed or not (`render_members`).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fields: &'a Map<String, Value>,
    pub prev: &'a str,
}

/// Serializes one event without its hash member (ending in `,"prev":"<64 hex>"}`) and
/// returns it with its hash.
#[cfg(test)]
pub(crate) fn render_body(parts: &EventParts) -> Result<(String, String), Error> {
    render_members(parts, &map_members(parts.event, parts.fields)?)
}

/// The members of `fields` as they follow the common ones: `,"k":v,...`. None may be named
/// as a common member.
pub(crate) fn map_members(event: &str, fields: &Map<String, Value>) -> Result<String, Error> {
    let mut members = String::new();
    for (key, value) in fields {
        if RESERVED.contains(&key.as_str()) {
            return Err(Error::runtime(format!(
                "audit event `{event}` has a field named `{key}`, which every event already has"
            )));
        }
        members.push_str(&format!(",{}:{}", json(key)?, json(value)?));
    }
    Ok(members)
}

/// `render_body` with the event's own members already serialized (`parts.fields` unused).
pub(crate) fn render_members(parts: &EventParts, members: &str) -> Result<(String, String), Error> {
    let mut body = format!(
        "{{\"v\":{FORMAT_VERSION},\"seq\":{},\"ts\":{},\"mono_ms\":{},\"run\":{},\"event\":{},\"operator\":{}",
        parts.seq,
        json(parts.ts)?,
        parts.mono_ms,
        json(parts.run)?,
        json(parts.event)?,
        json(parts.operator)?,
    );
    for (key, value) in [("step", parts.step), ("host", parts.host)] {
        if let Some(value) = value {
            body.push_str(&format!(",\"{key}\":{}", json(value)?));
        }
    }
    body.push_str(members);
    body.push_str(&format!(",\"prev\":\"{}\"}}", parts.prev));
    let hash = event_hash(parts.prev, body.as_bytes());
    Ok((body, hash))
}

/// An event's line from its body and hash: the hash member last, after the signature over
/// that hash when there is one (`docs/audit.md`), and the newline.
pub(crate) fn line_of(mut body: String, hash: &str, signature: Option<&Signature>) -> Result<String, Error> {
    body.pop(); // the closing brace, re-added after the hash member
    if let Some(signature) = signature {
        let json = serde_json::to_string(signature)
            .map_err(|e| Error::runtime(format!("cannot serialize a signature: {e}")))?;
        body.push_str(",\"signature\":");
        body.push_str(&json);
    }
    body.push_str(&format!(",\"hash\":\"{hash}\"}}\n"));
    debug_assert!(body.len() > HASH_MEMBER_LEN);
    Ok(body)
}

/// Serializes one unsigned event as its line (with the trailing `\n`) and returns it with its hash.
#[cfg(test)]
pub(crate) fn render(parts: &EventParts) -> Result<(String, String), Error> {
    let (body, hash) = render_body(parts)?;
    Ok((line_of(body, &hash, None)?, hash))
}

/// UTC, RFC 3339, milliseconds, `Z`: `2026-11-22T03:02:11.123Z`.
pub(crate) fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
