//! One step on many hosts (design §13): how a fleet is cut into rolling batches and how many
//! failures it may spend, with the semantics of AWS Systems Manager's MaxConcurrency/MaxErrors
//! and Ansible's `serial`/`max_fail_percentage` (docs/fleet.md).

use schemars::JsonSchema;
use serde::Deserialize;

/// A number of hosts, or a share of the fleet: `2`, `"25%"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Share {
    Hosts(u32),
    /// `"P%"`, checked by validation: 1 to 100.
    Percent(PercentText),
}

/// The text of a percentage, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct PercentText(pub u32);

impl TryFrom<String> for PercentText {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let number = text
            .trim()
            .strip_suffix('%')
            .ok_or_else(|| format!("`{text}` is neither a number of hosts nor a percentage like \"25%\""))?;
        match number.trim().parse::<u32>() {
            Ok(p) if p <= 100 => Ok(PercentText(p)),
            _ => Err(format!("`{text}`: a percentage is 0% to 100%")),
        }
    }
}

impl From<PercentText> for String {
    fn from(p: PercentText) -> String {
        format!("{}%", p.0)
    }
}

impl Share {
    /// How many of `total` hosts: a percentage rounds down (as Ansible's
    /// `max_fail_percentage` and SSM's MaxErrors do), never above `total`.
    pub fn of(self, total: usize) -> usize {
        match self {
            Share::Hosts(n) => (n as usize).min(total),
            Share::Percent(PercentText(p)) => total * p as usize / 100,
        }
    }

    pub fn text(self) -> String {
        match self {
            Share::Hosts(n) => n.to_string(),
            Share::Percent(p) => String::from(p),
        }
    }
}

/// The rolling batches of a fleet of `total` hosts, by index: `batch` hosts each (a share of
/// the fleet rounds down but is at least one host, as Ansible's `serial`), all at once without.
pub(crate) fn batches(total: usize, batch: Option<Share>) -> Vec<std::ops::Range<usize>> {
    let size = match batch {
        None => total,
        Some(share) => share.of(total).max(1),
    }
    .max(1);
    (0..total)
        .step_by(size)
        .map(|start| start..(start + size).min(total))
        .collect()
}

/// How many hosts may fail before the rest are not started (`max_failures`, default 0).
pub(crate) fn budget(max_failures: Option<Share>, total: usize) -> usize {
    max_failures.map(|s| s.of(total)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_roll_over_the_fleet_in_order() {
        assert_eq!(batches(5, Some(Share::Hosts(2))), vec![0..2, 2..4, 4..5]);
        assert_eq!(batches(5, None), vec![0..5]);
        assert_eq!(batches(3, Some(Share::Hosts(10))), vec![0..3]);
        // 25% of 10 is 2.5: two hosts per batch; 5% of 10 is still one host.
        assert_eq!(batches(10, Some(Share::Percent(PercentText(25)))).len(), 5);
        assert_eq!(batches(10, Some(Share::Percent(PercentText(5)))).len(), 10);
        assert!(batches(0, Some(Share::Hosts(2))).is_empty());
    }

    #[test]
    fn the_failure_budget_rounds_down() {
        assert_eq!(budget(None, 50), 0);
        assert_eq!(budget(Some(Share::Hosts(2)), 50), 2);
        assert_eq!(budget(Some(Share::Percent(PercentText(10))), 15), 1);
        assert_eq!(budget(Some(Share::Percent(PercentText(100))), 15), 15);
    }

    #[test]
    fn percentages_are_checked_as_written() {
        assert_eq!(PercentText::try_from("25%".to_string()), Ok(PercentText(25)));
        assert!(PercentText::try_from("125%".to_string()).is_err());
        assert!(PercentText::try_from("25".to_string()).is_err());
    }
}
