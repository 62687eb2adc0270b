//! `runbook validate --inventory FILE` (design §18): an inventory checked as a runbook is, every
//! problem located (`file:line:col`) with a snippet. A run reads the same file and would fail on
//! the first of them, or silently take a mistyped group member for an SSH alias.

use indexmap::IndexMap;
use serde_saphyr::Spanned;

use crate::book::parse::Source;
use crate::diagnostic::{Diagnostic, Pos, did_you_mean};
use crate::transport::Destination;

use super::Inventory;

/// The hosts and groups of an inventory that has a problem elsewhere (an unknown field): read
/// without refusing what they do not know, so they are still checked (design §22).
#[derive(serde::Deserialize)]
struct Lenient {
    #[serde(default)]
    hosts: IndexMap<String, LenientHost>,
    #[serde(default)]
    groups: IndexMap<String, Spanned<Vec<Spanned<String>>>>,
}

#[derive(serde::Deserialize)]
struct LenientHost {
    ssh: Spanned<String>,
    env: Option<Spanned<String>>,
    approve: Option<Spanned<String>>,
    shell: Option<bool>,
}

/// Parses `source` as an inventory; returns it (when it parses) and every diagnostic.
pub(crate) fn check(source: &Source) -> (Option<Inventory>, Vec<Diagnostic>) {
    match serde_saphyr::from_str_with_options::<Inventory>(&source.text, crate::book::parse::options()) {
        Ok(inventory) => {
            let found = check_parsed(source, &inventory);
            (Some(inventory), found)
        }
        // Unknown fields, lists where a mapping belongs, YAML syntax: worded as for runbooks.
        // What still reads is checked too: every problem at once.
        Err(e) => {
            let mut found = vec![source.diagnose(&e)];
            if let Ok(lenient) =
                serde_saphyr::from_str_with_options::<Lenient>(&source.text, crate::book::parse::options())
            {
                let partial = Inventory {
                    hosts: lenient
                        .hosts
                        .into_iter()
                        .map(|(name, h)| {
                            let host = super::Host {
                                ssh: h.ssh,
                                env: h.env,
                                approve: h.approve,
                                shell: h.shell,
                            };
                            (name, host)
                        })
                        .collect(),
                    groups: lenient.groups,
                    ..Inventory::default()
                };
                found.extend(check_parsed(source, &partial));
            }
            (None, found)
        }
    }
}

/// The problems of an inventory that parsed.
fn check_parsed(source: &Source, inventory: &Inventory) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let file = source.path.as_str();
    if let Some(url) = &inventory.audit_host
        && let Err(e) = crate::transport::AuditHost::parse(&url.value)
    {
        found.push(error_under(file, url, format!("audit_host: {e}")));
    }
    for (name, host) in &inventory.hosts {
        if let Err(e) = Destination::parse(&host.ssh.value) {
            found.push(error_under(file, &host.ssh, format!("host `{name}`: {e}")));
        }
        if let Some(env) = &host.env
            && !is_env_word(&env.value)
        {
            // `drill` refuses `prod` exactly: a `Prod` host would be drilled on unguarded.
            found.push(
                error_under(
                    file,
                    env,
                    format!("host `{name}`: `env: {}` is not a lower-case word", env.value),
                )
                .with_help(
                    "write it like `prod` or `staging`: `drill` refuses hosts whose env is exactly `prod`",
                ),
            );
        }
    }
    for (name, host) in &inventory.hosts {
        if let Some(approve) = host.approve.as_ref().filter(|a| a.value != "destructive") {
            found.push(
                error_under(
                    file,
                    approve,
                    format!("host `{name}`: `approve: {}` is not known", approve.value),
                )
                .with_help(
                    "write `approve: destructive`: every confirmed step on this host then needs an approval",
                ),
            );
        }
    }
    for (group, members) in &inventory.groups {
        if inventory.hosts.contains_key(group) {
            found.push(
                Diagnostic::error(
                    file,
                    Pos::of(members),
                    format!("`{group}` is both a host and a group of the inventory"),
                )
                .with_help("rename one of them: `--target ROLE={group}` could mean either"),
            );
        }
        if members.value.is_empty() {
            found.push(
                Diagnostic::error(file, Pos::of(members), format!("group `{group}` has no hosts"))
                    .with_help("list its hosts, or remove the group"),
            );
        }
        for member in &members.value {
            if inventory.hosts.contains_key(&member.value) {
                continue;
            }
            let mut d = Diagnostic::warning(
                file,
                Pos::of(member),
                format!(
                    "`{}` of group `{group}` is not a host of this inventory: it is taken as an ssh alias",
                    member.value
                ),
            )
            .with_width(member.value.chars().count());
            d = match did_you_mean(&member.value, inventory.hosts.keys().map(String::as_str)) {
                Some(hint) => d.with_help(hint),
                None => d.with_help("add it under `hosts:` if it is meant to be one of them"),
            };
            found.push(d);
        }
    }
    found.extend(notify(file, &inventory.notify));
    if let Some(policy) = &inventory.unattended {
        found.extend(policy.check(file));
    }
    found
}

/// An error underlining the word written at `at`.
fn error_under(file: &str, at: &Spanned<String>, message: String) -> Diagnostic {
    Diagnostic::error(file, Pos::of(at), message).with_width(at.value.chars().count())
}

/// The `notify:` entries: a format and events it knows, exactly one of `url` and `url_from`,
/// sources that parse, a routing key for PagerDuty. A URL is never echoed (a credential).
fn notify(file: &str, entries: &[crate::listen::notify::NotifyEntry]) -> Vec<Diagnostic> {
    use crate::listen::notify::{Format, Kind};
    let mut found = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let n = i + 1;
        let format = entry.format.as_ref().and_then(|f| Format::parse(&f.value));
        if let Some(f) = &entry.format
            && format.is_none()
        {
            let d = error_under(file, f, format!("notify entry {n}: unknown format `{}`", f.value))
                .with_help(
                    did_you_mean(&f.value, Format::NAMES)
                        .unwrap_or_else(|| "write cloudevents, slack or pagerduty".into()),
                );
            found.push(d);
        }
        for e in entry.events.iter().flatten() {
            if Kind::parse(&e.value).is_none() {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                let d = error_under(file, e, format!("notify entry {n}: unknown event `{}`", e.value))
                    .with_help(
                        did_you_mean(&e.value, names.iter().copied())
                            .unwrap_or_else(|| format!("one of: {}", names.join(", "))),
                    );
                found.push(d);
            }
        }
        for from in [&entry.url_from, &entry.routing_key_from].into_iter().flatten() {
            if let Err(e) = crate::secrets::source::Source::parse(&from.value) {
                found.push(Diagnostic::error(
                    file,
                    Pos::of(from),
                    format!("notify entry {n}: {e}"),
                ));
            }
        }
        let anchor = entry
            .url
            .as_ref()
            .or(entry.url_from.as_ref())
            .or(entry.format.as_ref())
            .map(Pos::of);
        match (&entry.url, &entry.url_from) {
            (Some(url), Some(_)) => found.push(
                Diagnostic::error(
                    file,
                    Pos::of(url),
                    format!("notify entry {n}: both `url` and `url_from`"),
                )
                .with_help("keep one: `url_from` reads the URL from a secret source"),
            ),
            (None, None) if format != Some(Format::PagerDuty) => found.push(
                Diagnostic::error(
                    file,
                    anchor.unwrap_or(Pos::new(1, 1)),
                    format!("notify entry {n}: no `url` or `url_from`"),
                )
                .with_help("a webhook URL is a credential: `url_from: env:SLACK_WEBHOOK_URL`"),
            ),
            (Some(url), None) => {
                let scheme = url.value.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
                if !matches!(scheme.as_deref(), Some("http" | "https")) {
                    found.push(Diagnostic::error(
                        file,
                        Pos::of(url),
                        format!("notify entry {n}: `url` is not an http:// or https:// URL"),
                    ));
                }
            }
            _ => {}
        }
        let is_pagerduty = format == Some(Format::PagerDuty)
            || (format.is_none()
                && entry
                    .url
                    .as_ref()
                    .is_some_and(|u| Format::by_host(&u.value) == Format::PagerDuty));
        if is_pagerduty && entry.routing_key_from.is_none() {
            found.push(
                Diagnostic::error(
                    file,
                    anchor.unwrap_or(Pos::new(1, 1)),
                    format!("notify entry {n}: a PagerDuty channel needs `routing_key_from`"),
                )
                .with_help("the integration key, from a secret source: `routing_key_from: env:PAGERDUTY_ROUTING_KEY`"),
            );
        }
    }
    found
}

fn is_env_word(env: &str) -> bool {
    !env.is_empty()
        && env
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}
