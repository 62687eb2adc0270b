//! Wall-clock times as the operator reads them: local `HH:MM`, like every other time on the
//! terminal. The trail keeps UTC RFC 3339 stamps; they are never shown raw.

use chrono::{DateTime, Local, Utc};

/// `03:12`: a moment in the operator's local time.
pub(crate) fn hhmm(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local).format("%H:%M").to_string()
}

/// A trail's RFC 3339 stamp as local `HH:MM`; a stamp that does not parse is shown escaped,
/// as any value from a trail (it could hold anything).
pub(crate) fn stamp(ts: &str) -> String {
    match DateTime::parse_from_rfc3339(ts) {
        Ok(t) => hhmm(t.with_timezone(&Utc)),
        Err(_) => crate::secrets::escape::value(ts).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_as_hours_and_minutes_and_junk_stays_escaped() {
        let shown = stamp("2026-11-22T03:02:11.123Z");
        assert_eq!(shown.len(), 5, "{shown}");
        assert_eq!(shown.as_bytes()[2], b':', "{shown}");
        assert_eq!(stamp("not\x1b[2Ja time"), "not\\x1b[2Ja time");
    }
}
