//! How far a fleet step got on each host: what a resume re-runs and how it says so.

/// How far a fleet step got on each host before the run was cut off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FleetProgress {
    /// Finished, with its outcome: `true` for ok.
    pub finished: Vec<(String, bool)>,
    /// Started and never finished (or lost): outcome unknown; its process group if known.
    pub unknown: Vec<(String, Option<i32>)>,
}

impl FleetProgress {
    /// The hosts a re-run goes to: every host of `members` not recorded ok. Those that
    /// succeeded never run it twice.
    pub(crate) fn rerun(&self, members: &[String]) -> Vec<String> {
        members
            .iter()
            .filter(|m| !self.finished.iter().any(|(h, ok)| h == *m && *ok))
            .cloned()
            .collect()
    }

    pub(crate) fn describe(&self, members: &[String]) -> String {
        let ok: Vec<&str> = self
            .finished
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(h, _)| h.as_str())
            .collect();
        let failed: Vec<&str> = self
            .finished
            .iter()
            .filter(|(_, ok)| !*ok)
            .map(|(h, _)| h.as_str())
            .collect();
        let unknown: Vec<&str> = self.unknown.iter().map(|(h, _)| h.as_str()).collect();
        let not_started: Vec<&str> = members
            .iter()
            .map(String::as_str)
            .filter(|m| !ok.contains(m) && !failed.contains(m) && !unknown.contains(m))
            .collect();
        let mut parts = Vec::new();
        for (what, hosts) in [
            ("ok on", ok),
            ("failed on", failed),
            ("unknown on", unknown),
            ("not started on", not_started),
        ] {
            if !hosts.is_empty() {
                parts.push(format!("{what} {}", hosts.join(", ")));
            }
        }
        parts.join("; ")
    }
}
