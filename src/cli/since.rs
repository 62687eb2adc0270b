//! The two `--since` flags, parsed by clap into instants: `run --since` (when the incident was
//! detected) and `history --since` (a date).

use std::ffi::OsStr;

use chrono::{DateTime, Local, NaiveDate, NaiveTime, TimeZone, Utc};
use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

/// A value parser whose error reads `--since `TEXT` <what is wrong>`, as the flag's own words.
#[derive(Clone, Copy)]
pub(crate) struct Since(fn(&str) -> Result<DateTime<Utc>, String>);

pub(crate) const DETECTED: Since = Since(detected);
pub(crate) const DATE: Since = Since(date);

impl TypedValueParser for Since {
    type Value = DateTime<Utc>;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<DateTime<Utc>, clap::Error> {
        let text = value.to_string_lossy();
        self.0(&text).map_err(|why| {
            clap::Error::raw(ErrorKind::InvalidValue, format!("--since `{text}` {why}\n")).with_cmd(cmd)
        })
    }
}

/// `run --since 07:02` (today, local time; yesterday if that is in the future) or RFC 3339:
/// when the RTO clock started.
fn detected(text: &str) -> Result<DateTime<Utc>, String> {
    let now = Utc::now();
    let at = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        t.with_timezone(&Utc)
    } else {
        let time = NaiveTime::parse_from_str(text, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
            .map_err(|_| "is not a time: write a time like 07:02 or an RFC 3339 timestamp".to_string())?;
        let today = Local::now().date_naive().and_time(time);
        let local = Local
            .from_local_datetime(&today)
            .earliest()
            .ok_or("does not exist today (a clock change?)")?;
        let mut at = local.with_timezone(&Utc);
        if at > now {
            at -= chrono::Duration::days(1);
        }
        at
    };
    if at > now {
        return Err("is in the future".into());
    }
    Ok(at)
}

/// `history --since 2026-11-22` (midnight UTC) or an RFC 3339 time.
fn date(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err("is not a date: give 2026-11-22 (midnight UTC) or an RFC 3339 time like 2026-11-22T07:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detection_time_is_in_the_past_and_a_bad_one_says_what_to_write() {
        let at = detected("00:00").unwrap();
        assert!(at <= Utc::now() && Utc::now() - at <= chrono::Duration::days(1));
        assert_eq!(
            detected("2026-11-22T07:00:00Z").unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 22, 7, 0, 0).unwrap()
        );
        assert!(detected("7 o'clock").unwrap_err().contains("07:02"));
        assert!(detected("2999-01-01T00:00:00Z").unwrap_err().contains("future"));
    }

    #[test]
    fn a_history_date_is_midnight_utc() {
        assert_eq!(
            date("2026-11-22").unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap()
        );
        assert!(date("yesterday").unwrap_err().contains("not a date"));
    }
}
