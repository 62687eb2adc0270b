//! The run's header on the terminal: the briefing (what runs, where each target resolves, the
//! clocks, the trail), the started and resumed lines said with it, locks and leases taken from
//! other runs, and connections.

use console::style;

use super::{Clock, Ui, fleet::fleet_lines, fmt_secs};
use crate::duration::format as fmt_duration;
use crate::events::Event;
use crate::secrets::escape::value as esc;

impl Ui {
    /// The run's header: what it is, where it will act, the clocks, the trail.
    pub(super) fn briefing(&mut self, b: &crate::events::Briefing) {
        self.clock.set(Clock::new(b.rto, b.spent));
        self.steps = b.steps.clone();
        self.destinations = b.destinations.clone();
        let mut heading = format!(
            "{} ({}) · {} · RTO {}",
            esc(&b.title),
            b.runbook,
            b.mode.as_str(),
            fmt_duration(b.rto)
        );
        if let Some(clock) = self.clock.get().filter(|_| !b.spent.is_zero()) {
            heading.push_str(&format!(" · {}", clock.budget()));
        }
        self.line(&style(heading).bold().to_string());
        if let Some(d) = &b.description {
            self.prose(d, "  ");
        }
        for (t, url) in &b.links {
            self.line(&format!("  link: {} <{}>", esc(t), esc(url)));
        }
        for d in &b.destinations {
            if !d.members.is_empty() {
                // A fleet: each host as connected, one a line, so a wrong address is seen
                // before anything runs; a big fleet's first hosts, then how many more.
                self.line(&format!(
                    "  target {}: {}, {} hosts{}",
                    d.role,
                    esc(&d.label),
                    d.members.len(),
                    badge(d.env.as_deref())
                ));
                for line in fleet_lines(&d.members, &d.addresses) {
                    self.line(&line);
                }
                continue;
            }
            let at = if d.address == d.label || d.label == "local" {
                String::new()
            } else {
                format!(" → {}", d.address)
            };
            self.line(&format!(
                "  target {}: {}{at}{}",
                d.role,
                if d.label == "local" {
                    "local (this machine)"
                } else {
                    &d.label
                },
                badge(d.env.as_deref())
            ));
        }
        if let Some((after, to)) = &b.escalate {
            self.line(&format!(
                "  escalate: not resolved {} into the incident → call {}",
                fmt_duration(*after),
                esc(to)
            ));
        }
        self.line(&format!("  audit: {}", b.audit_file));
        for line in std::mem::take(&mut self.header) {
            self.line(&line);
        }
    }

    /// A host label with where it resolves to and its `env` badge, as the briefing said.
    pub(super) fn where_is(&self, label: &str) -> String {
        match self.destinations.iter().find(|d| d.label == label) {
            Some(d) if d.address != label && label != "local" => {
                format!("{label} = {}{}", d.address, badge(d.env.as_deref()))
            }
            Some(d) => format!("{label}{}", badge(d.env.as_deref())),
            None => label.to_string(),
        }
    }

    /// `Event::RunStarted`: said with the briefing.
    pub(super) fn run_started(&mut self, since_offset: &std::time::Duration, who: &crate::events::Who) {
        // Shown with the briefing, which knows where each target resolves to.
        if !since_offset.is_zero() {
            self.header.push(format!(
                "  RTO clock started {} before launch (--since)",
                fmt_secs(*since_offset)
            ));
        }
        self.header.extend(signing_line(who));
    }

    /// `Event::RunResumed`: said with the briefing that follows.
    pub(super) fn run_resumed(
        &mut self,
        operator: &str,
        previous_operator: &str,
        gap: &std::time::Duration,
        from: &str,
        who: &crate::events::Who,
    ) {
        let hand_off = if operator != previous_operator {
            format!(" — hand-off from {previous_operator} to {operator}")
        } else {
            String::new()
        };
        self.header.push(format!(
            "  {} {from}, after a {} gap{hand_off}",
            style("resumed").bold(),
            fmt_secs(*gap)
        ));
        self.header.extend(signing_line(who));
    }

    /// `Event::LockTaken`: a lock or lease taken from another run (stale, broken, dead), and what
    /// that run had left running.
    pub(super) fn lock_taken(&mut self, event: &Event) {
        match event {
            Event::LockTaken {
                path,
                previous: Some(h),
                stopped,
                ..
            } if !stopped.is_empty() => {
                let groups: Vec<String> = stopped.iter().map(i32::to_string).collect();
                self.line(&format!(
                    "  stopped what run {} ({}) left running on {} before taking it: process group {}",
                    h.run,
                    h.operator,
                    esc(path.rsplit_once(':').map_or(path.as_str(), |(host, _)| host)),
                    groups.join(", ")
                ));
            }
            Event::LockTaken { how, previous, .. } => match (how, previous) {
                (&"stale", Some(h)) => self.line(&format!(
                    "  took the lock of run {} ({}), whose process is gone",
                    h.run, h.operator
                )),
                (&"broken", Some(h)) => self.line(&format!(
                    "  broke the lock of run {} held by {} since {} (--break-lock, recorded)",
                    h.run, h.operator, h.since
                )),
                (&"reclaimed", Some(_)) => {
                    self.line("  took back this run's own lease from its earlier process, whose connection is dead")
                }
                (&"dead", Some(h)) => self.line(&format!(
                    "  took the lease of run {} ({}, on {}): it had sent no sign of life for 30 s, its connection is dead",
                    h.run, h.operator, h.machine
                )),
                _ => {}
            },
            _ => {}
        }
    }

    /// `Event::LeaseShared`.
    pub(super) fn lease_shared(&mut self, host: &str, with: &str) {
        self.line(&format!(
            "  {} and {} are one host (the same machine and account): one lease serves both",
            esc(with),
            esc(host)
        ));
    }

    /// `Event::TargetConnected`: a host key newly trusted, a reconnection.
    pub(super) fn target_connected(
        &mut self,
        host: &str,
        host_key_added: &Option<String>,
        reconnected: &bool,
    ) {
        if let Some(added) = host_key_added {
            self.line(&format!(
                "  {host}: new host key trusted (--accept-new-host-keys): {added}"
            ));
        }
        if *reconnected {
            self.line(&format!("  reconnected to {host}"));
        }
    }
}

/// ` [PROD]` (loud) or ` [staging]`: the inventory's `env` of a host, beside its name.
fn badge(env: Option<&str>) -> String {
    match env {
        Some(env @ ("prod" | "production")) => format!(
            " {}",
            style(format!(" {} ", env.to_uppercase())).white().on_red().bold()
        ),
        Some(env) => format!(" {}", style(format!("[{}]", esc(env))).yellow()),
        None => String::new(),
    }
}

/// `signed by ...`, or the loud line of an unsigned trail.
fn signing_line(who: &crate::events::Who) -> Option<String> {
    match (&who.signed_by, &who.unsigned) {
        (Some((key, origin)), _) => Some(format!("  signed by {key} ({origin})")),
        (None, Some(why)) => Some(format!(
            "  {}: {why} (pass --signing-key, or load a key into ssh-agent)",
            style("UNSIGNED trail").yellow().bold()
        )),
        (None, None) => None,
    }
}
