//! The inline SVG charts of the review: a run's timeline (`timeline`) and the trend of one
//! runbook's runs (`trend`). Colours come from CSS classes so the page can switch them for dark
//! mode and print. Here, what both charts share: the width, the escape, a run's label.

mod timeline;
mod trend;

pub(super) use timeline::timeline;
pub(super) use trend::trend_chart;

const WIDTH: f64 = 1000.0;
const RIGHT: f64 = 24.0;

/// Escapes text for XML content and attribute values.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Pixels per character of the 11px axis font, rounded up: what a label is laid out with.
pub(super) const CHAR_W: f64 = 7.0;

/// `12-06 14:03` (UTC): a run's label on a chart, which tells two runs of one day apart.
pub(super) fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(|| "?".to_string(), |t| t.format("%m-%d %H:%M").to_string())
}
