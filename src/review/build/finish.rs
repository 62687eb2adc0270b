//! The end of a review: the seal's word, where the time went, the gaps, the verdict.

use super::super::{Attempt, Gap, HostTime, Integrity, OverTarget, Review, StepVisit, fmt_rto, fmt_total};
use super::Builder;

impl Builder {
    pub(super) fn finish(mut self) -> Review {
        self.close(self.last_at);
        let seal = self.seal.take();
        let mut r = self.r;
        r.kind = kind(&self.walks).into();
        r.total_ms = self.sealed_total.unwrap_or(self.last_at);
        if let Some((seal, signed)) = &seal {
            if !signed && r.signed.starts_with("signed") {
                r.signed = format!("{}; but the seal is UNSIGNED", r.signed);
            }
            r.outcome = seal.outcome.clone();
            r.message = seal.message.clone();
            if let Some(rto) = seal.rto_ms {
                r.rto_ms = rto;
            }
        }
        for v in &mut r.steps {
            v.hosts = host_times(&v.attempts);
        }
        // Where the time went.
        let mut covered = 0u64;
        for v in &r.steps {
            covered += v.took_ms;
            if v.by_hand {
                r.time.human_ms += v.wait_ms + v.exec_ms;
            } else {
                r.time.human_ms += v.wait_ms;
                r.time.machine_ms += v.exec_ms;
            }
            r.time.between_ms += v.after_ms;
            // A shell after the step started (after a failure) is in its `after`: it is the
            // operator's time. One before is in its wait already.
            let started = v.start_ms + v.wait_ms;
            let shell_after: u64 = v.shells.iter().filter(|s| s.at_ms >= started).map(|s| s.ms).sum();
            let moved = shell_after.min(v.after_ms);
            r.time.human_ms += moved;
            r.time.between_ms -= moved;
        }
        r.time.gaps_ms = r.total_ms.saturating_sub(covered);
        let first = r.steps.first().map_or(r.total_ms, |v| v.start_ms);
        if first > 0 {
            r.gaps.push(Gap {
                kind: "before_first_step".into(),
                start_ms: 0,
                ms: first,
            });
        }
        r.gaps.append(&mut self.resume_gaps);
        let listed: u64 = r.gaps.iter().map(|g| g.ms).sum();
        let rest = r.time.gaps_ms.saturating_sub(listed);
        if rest > 0 {
            let end_of_steps = r.steps.last().map_or(0, |v| v.start_ms + v.took_ms);
            r.gaps.push(Gap {
                kind: "after_last_step".into(),
                start_ms: end_of_steps,
                ms: rest,
            });
        }
        r.over_target = over_target(r.steps.iter().map(|v| (v, v.took_ms)));
        let within = r.total_ms <= r.rto_ms;
        (r.verdict, r.verdict_reason) = match (&r.integrity, &seal) {
            (Integrity::Tampered { .. }, _) => ("TAMPERED".into(), None),
            (_, None) => (
                "INCOMPLETE".into(),
                Some(format!(
                    "no seal: the run stopped {} into the RTO clock",
                    fmt_total(r.total_ms)
                )),
            ),
            (_, Some((seal, _))) => match &seal.verdict {
                Some(v) => (
                    if v.pass { "PASS" } else { "FAIL" }.into(),
                    Some(v.reason.clone()),
                ),
                None if r.outcome.as_deref() != Some("resolved") => (
                    "NOT RESOLVED".into(),
                    Some(format!("ended {}", r.outcome.as_deref().unwrap_or("?"))),
                ),
                None if within => ("WITHIN RTO".into(), None),
                None => (
                    "OVER RTO".into(),
                    Some(format!(
                        "{} over the {} RTO",
                        fmt_total(r.total_ms - r.rto_ms),
                        fmt_rto(r.rto_ms)
                    )),
                ),
            },
        };
        r
    }
}

/// Each host's time in a step whose attempts ran on several hosts (a fleet), in the order
/// the hosts first started; empty for a step on one host.
fn host_times(attempts: &[Attempt]) -> Vec<HostTime> {
    let mut hosts: Vec<HostTime> = Vec::new();
    for a in attempts {
        let Some(host) = a.host.as_ref() else { continue };
        match hosts.iter_mut().find(|h| *h.host == **host) {
            Some(h) => {
                h.exec_ms += a.exec_ms;
                h.outcome = a.outcome.clone();
                h.attempts += 1;
            }
            None => hosts.push(HostTime {
                host: host.to_string(),
                start_ms: a.start_ms,
                exec_ms: a.exec_ms,
                outcome: a.outcome.clone(),
                attempts: 1,
            }),
        }
    }
    // Dropped, not cleared: an emptied vector keeps its room (100,000 steps: 29 MB).
    if hosts.len() < 2 {
        return Vec::new();
    }
    hosts
}

/// A run is interactive when any of its walks (its start, each resume) had someone to ask,
/// unattended when every one had `--yes`, unknown when a walk predates the record of it.
fn kind(walks: &[Option<bool>]) -> &'static str {
    if walks.contains(&Some(false)) {
        "interactive"
    } else if !walks.is_empty() && walks.iter().all(|w| *w == Some(true)) {
        "unattended"
    } else {
        "unknown"
    }
}

/// The visits that took longer than their target, worst first: each visit with its time.
pub(super) fn over_target<'a>(visits: impl Iterator<Item = (&'a StepVisit, u64)>) -> Vec<OverTarget> {
    let mut over: Vec<OverTarget> = visits
        .enumerate()
        .filter_map(|(i, (v, took_ms))| {
            let target_ms = v.target_ms?;
            (took_ms > target_ms).then(|| OverTarget {
                visit: i,
                step: v.step.clone(),
                took_ms,
                target_ms,
                over_ms: took_ms - target_ms,
            })
        })
        .collect();
    over.sort_by_key(|o| (std::cmp::Reverse(o.over_ms), o.visit));
    over
}
