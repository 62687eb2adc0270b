//! Durations written with units (`90s`, `5m`, `1h30m`, `250ms`, `30d`), and their display.

use std::time::Duration;

/// The JSON Schema pattern of a duration; kept beside the parser so the two agree.
pub const PATTERN: &str = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$";

/// Why a duration did not parse, as a sentence fragment for a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DurationError(pub String);

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses `1h30m`, `90s`, `5m`, `250ms`, `30d`: units in decreasing order, each at most once.
/// A day is 24 hours (a drill's cadence, `drill: {every: 30d}`, is counted in them).
/// A duration on the command line (clap's `value_parser`): what was typed is checked once,
/// where it is parsed, and a bad one is a usage error naming the flag.
pub(crate) fn parse_arg(text: &str) -> Result<Duration, String> {
    parse(text).map_err(|e| e.to_string())
}

pub(crate) fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError("empty duration".into()));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationError(format!(
            "`{text}` has no unit; write `{text}s` or `{text}m`"
        )));
    }
    const UNITS: [(&str, u64); 5] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let mut rest = text;
    let mut total_ms: u64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError(format!(
                "`{text}` is not a duration; write a number and a unit, like `90s`, `5m` or `1h30m`"
            )));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError(format!("`{text}` is too large")))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit) else {
            let problem = if unit.is_empty() {
                format!("`{text}` is not a duration")
            } else {
                format!("`{text}` has unit `{unit}`")
            };
            return Err(DurationError(format!(
                "{problem}; use d, h, m, s or ms without spaces (like `1h30m`)"
            )));
        };
        if pos < next_unit {
            return Err(DurationError(format!(
                "`{text}` repeats or misorders its units; write them largest first, like `1h30m`"
            )));
        }
        next_unit = pos + 1;
        total_ms = number
            .checked_mul(UNITS[pos].1)
            .and_then(|ms| ms.checked_add(total_ms))
            .ok_or_else(|| DurationError(format!("`{text}` is too large")))?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_millis(total_ms))
}

/// Shows a duration the way a runbook would write it: `1h30m`, `5m`, `90s` → `1m30s`,
/// `720h` → `30d`.
pub(crate) fn format(d: Duration) -> String {
    let total = d.as_millis() as u64;
    let (days, h, m, s, ms) = (
        total / 86_400_000,
        total / 3_600_000 % 24,
        total / 60_000 % 60,
        total / 1000 % 60,
        total % 1000,
    );
    let mut out = String::new();
    if days > 0 {
        out.push_str(&format!("{days}d"));
    }
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || (out.is_empty() && ms == 0) {
        out.push_str(&format!("{s}s"));
    }
    if ms > 0 && days == 0 && h == 0 && m == 0 {
        out.push_str(&format!("{ms}ms"));
    }
    out
}

/// How long a run took, as its verdict and end summary say it: tenths of a second under 10 s
/// (`4.2s`), else whole seconds, cut and not rounded, written as a runbook writes durations
/// (`1m12s`). A review's totals use it too, so that "total 1m12s" and "resolved in 1m12s" agree
/// (the verdict's words are recorded in the seal and cannot be re-rounded). Steps' times and
/// the notifications read the same.
pub(crate) fn format_elapsed(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.1}s")
    } else {
        format(Duration::from_secs(d.as_secs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdict is worded by `ui::fmt_secs`; the review's totals by `format_elapsed`: they
    /// must say the same for the same time.
    #[test]
    fn elapsed_reads_as_the_verdict_says_it() {
        for ms in [
            0, 40, 950, 4_210, 9_949, 9_960, 10_000, 12_345, 72_800, 299_999, 3_723_999,
        ] {
            let d = Duration::from_millis(ms);
            assert_eq!(format_elapsed(d), crate::listen::ui::fmt_secs(d), "{ms} ms");
        }
        assert_eq!(format_elapsed(Duration::from_millis(72_800)), "1m12s");
        assert_eq!(format_elapsed(Duration::from_millis(4_210)), "4.2s");
    }

    #[test]
    fn parses_units() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse("1d12h"), Ok(Duration::from_secs(36 * 3_600)));
    }

    #[test]
    fn refuses_bare_numbers_and_junk() {
        assert!(parse("90").unwrap_err().0.contains("no unit"));
        assert!(parse("5 minutes").is_err());
        assert!(parse("5x").unwrap_err().0.contains("unit `x`"));
        assert!(parse("30s5m").unwrap_err().0.contains("misorders"));
        assert!(parse("5h1d").unwrap_err().0.contains("misorders"));
        assert!(parse("2w").unwrap_err().0.contains("use d, h, m, s or ms"));
        assert!(parse("").is_err());
        assert!(parse("99999999999999999999h").is_err());
    }

    #[test]
    fn formats_like_a_runbook() {
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_secs(0)), "0s");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
        assert_eq!(format(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format(Duration::from_secs(86_400 + 5_400)), "1d1h30m");
    }
}
