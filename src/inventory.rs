//! The inventory of hosts and groups (design §10) and the binding of a role to a destination.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::error::Error;

mod check;
pub(crate) mod policy;
pub(crate) use check::check;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    #[serde(default)]
    pub hosts: IndexMap<String, Host>,
    #[serde(default)]
    /// Where each member is written, for `validate` to point at.
    pub groups: IndexMap<String, Spanned<Vec<Spanned<String>>>>,
    /// The approvals spool (design §15); default `<audit-dir>/approvals/`.
    pub approvals_dir: Option<Spanned<String>>,
    /// The `allowed_signers` file of the people who may approve steps.
    pub approvers_file: Option<Spanned<String>>,
    /// Where it was read from: its relative paths are beside it.
    #[serde(skip)]
    pub path: Option<PathBuf>,
    /// Where notifications go (design §15): webhooks, each as `url` or `url_from` a secret source.
    #[serde(default)]
    pub notify: Vec<crate::listen::notify::NotifyEntry>,
    /// The team's audit host (design §19): `ssh://USER@HOST[:PORT]/PATH`.
    pub audit_host: Option<Spanned<String>>,
    /// What may run unattended, from an alert (design §20).
    pub unattended: Option<policy::Policy>,
}

impl Inventory {
    /// The `audit_host:` URL, checked; the error points at where it is written.
    pub(crate) fn audit_host(&self) -> Result<Option<crate::transport::AuditHost>, Error> {
        let Some(url) = &self.audit_host else {
            return Ok(None);
        };
        crate::transport::AuditHost::parse(&url.value)
            .map(Some)
            .map_err(|e| {
                let file = self
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "the inventory".into());
                Error::usage(format!(
                    "{file}:{}:{}: audit_host: {e}",
                    url.referenced.line(),
                    url.referenced.column()
                ))
            })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// An SSH destination: `user@host:port`, `ssh://...`, or an alias of the SSH config.
    pub ssh: Spanned<String>,
    /// `prod` hosts are refused by `drill` unless `--allow-prod`.
    pub env: Option<Spanned<String>>,
    /// `destructive`: every confirmed step on this host needs an approval (design §15).
    pub approve: Option<Spanned<String>>,
    /// `false`: no interactive shell is ever opened on this host from a step's prompt
    /// (design §17), where policy forbids interactive access.
    pub shell: Option<bool>,
}

/// Where a role's commands run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    Local,
    Ssh {
        /// What the operator wrote (`prod-api`, `deploy@1.2.3.4`).
        name: String,
        /// The SSH destination.
        dest: String,
        /// The inventory's `env`, when the host is in the inventory.
        env: Option<String>,
        /// The inventory says every confirmed step on it needs an approval.
        approve: bool,
    },
}

impl Binding {
    pub fn label(&self) -> String {
        match self {
            Binding::Local => "local".to_string(),
            Binding::Ssh { name, .. } => name.clone(),
        }
    }

    pub fn is_prod(&self) -> bool {
        matches!(self, Binding::Ssh { env: Some(env), .. } if env == "prod" || env == "production")
    }
}

impl Inventory {
    /// `--inventory`, else `$RUNBOOK_INVENTORY` (clap reads it), else `./inventory.yaml` when present.
    pub fn load(flag: Option<&Path>) -> Result<Inventory, Error> {
        let path = match flag {
            Some(p) => p.to_path_buf(),
            None if Path::new("inventory.yaml").is_file() => PathBuf::from("inventory.yaml"),
            None => return Ok(Inventory::default()),
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::usage(format!("cannot read the inventory {}: {e}", path.display())))?;
        let mut inventory = serde_saphyr::from_str::<Inventory>(&text).map_err(|e| {
            let (at, message) = crate::book::parse::describe(&e, &text);
            Error::usage(format!(
                "{}:{}:{}: the inventory does not parse: {message}",
                path.display(),
                at.line,
                at.col
            ))
        })?;
        inventory.path = Some(path);
        Ok(inventory)
    }

    /// The hosts a destination names: a group's members, a comma-separated list (`web-1,web-2`),
    /// else just itself. Several: the role is a fleet (design §13).
    pub fn members(&self, role: &str, dest: &str) -> Result<Vec<String>, Error> {
        let dest = dest.trim();
        let listed: Vec<String> = match self.groups.get(dest) {
            Some(group) => group.value.iter().map(|m| m.value.trim().to_string()).collect(),
            None => dest.split(',').map(|m| m.trim().to_string()).collect(),
        };
        let mut members: Vec<String> = Vec::new();
        for m in listed {
            // A group of groups, one level: `web: [web-eu, web-us]`.
            let expanded = match self.groups.get(&m) {
                Some(group) if m != dest => group.value.iter().map(|x| x.value.trim().to_string()).collect(),
                _ => vec![m],
            };
            for m in expanded {
                if m.is_empty() {
                    return Err(Error::usage(format!(
                        "role `{role}`: `{dest}` has an empty host name"
                    )));
                }
                if m == "local" && (!members.is_empty() || dest.contains(',')) {
                    return Err(Error::usage(format!(
                        "role `{role}`: `local` cannot be one host of several (`{dest}`)"
                    )));
                }
                if !members.contains(&m) {
                    members.push(m);
                }
            }
        }
        Ok(members)
    }

    /// Binds a destination as written on the command line or as a role's default.
    pub fn bind(&self, role: &str, dest: &str) -> Result<Binding, Error> {
        let dest = dest.trim();
        if dest.is_empty() {
            return Err(Error::usage(format!(
                "role `{role}` is bound to an empty destination"
            )));
        }
        if dest == "local" {
            return Ok(Binding::Local);
        }
        if dest.contains(',') || self.groups.contains_key(dest) {
            return Err(Error::usage(format!(
                "role `{role}` is bound to several hosts (`{dest}`) where one is needed"
            )));
        }
        if let Some(host) = self.hosts.get(dest) {
            return Ok(Binding::Ssh {
                name: dest.to_string(),
                dest: host.ssh.value.clone(),
                env: host.env.as_ref().map(|e| e.value.clone()),
                approve: host.approve.as_ref().is_some_and(|a| a.value == "destructive"),
            });
        }
        Ok(Binding::Ssh {
            name: dest.to_string(),
            dest: dest.to_string(),
            env: None,
            approve: false,
        })
    }
}
