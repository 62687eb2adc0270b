//! `runbook validate --inventory FILE` (design §18): an inventory checked as a runbook is, every
//! problem located (`file:line:col`) with a snippet. A run reads the same file and would fail on
//! the first of them, or silently take a mistyped group member for an SSH alias.

use crate::diagnostic::{Diagnostic, Pos, did_you_mean};
use crate::parse::Source;
use crate::transport::Destination;

use super::Inventory;

/// Parses `source` as an inventory; returns it (when it parses) and every diagnostic.
pub fn check(source: &Source) -> (Option<Inventory>, Vec<Diagnostic>) {
    let inventory =
        match serde_saphyr::from_str_with_options::<Inventory>(&source.text, crate::parse::options()) {
            Ok(inventory) => inventory,
            // Unknown fields, lists where a mapping belongs, YAML syntax: worded as for runbooks.
            Err(e) => return (None, vec![source.diagnose(&e)]),
        };
    let mut found = Vec::new();
    let file = source.path.as_str();
    for (name, host) in &inventory.hosts {
        if let Err(e) = Destination::parse(&host.ssh.value) {
            found.push(
                Diagnostic::error(file, Pos::of(&host.ssh), format!("host `{name}`: {e}"))
                    .with_width(host.ssh.value.chars().count()),
            );
        }
        if let Some(env) = &host.env
            && !is_env_word(&env.value)
        {
            // `drill` refuses `prod` exactly: a `Prod` host would be drilled on unguarded.
            found.push(
                Diagnostic::error(
                    file,
                    Pos::of(env),
                    format!("host `{name}`: `env: {}` is not a lower-case word", env.value),
                )
                .with_width(env.value.chars().count())
                .with_help(
                    "write it like `prod` or `staging`: `drill` refuses hosts whose env is exactly `prod`",
                ),
            );
        }
    }
    for (name, host) in &inventory.hosts {
        if let Some(approve) = host.approve.as_ref().filter(|a| a.value != "destructive") {
            found.push(
                Diagnostic::error(
                    file,
                    Pos::of(approve),
                    format!("host `{name}`: `approve: {}` is not known", approve.value),
                )
                .with_width(approve.value.chars().count())
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
    (Some(inventory), found)
}

fn is_env_word(env: &str) -> bool {
    !env.is_empty()
        && env
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}
