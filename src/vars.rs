//! The variables of a run: inputs, captures and built-ins. They reach commands only as
//! exported environment variables; `{{ name }}` interpolation exists only for display text.

use indexmap::IndexMap;

/// One variable's value; a secret one is never shown or recorded in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value {
    pub text: String,
    pub secret: bool,
}

/// What a masked value looks like everywhere it is shown or recorded.
pub(crate) const MASK: &str = "***";

/// Shared until changed, and changed without a copy: the executor keeps a copy of the
/// variables at every step (what a shell opened there sees, what the step's presentation
/// shows), and a capture at every step must not copy every value each time (a cost that grew
/// with the square of the steps). Persistent structures ([rpds]) make a copy O(1) and a change
/// O(log n); the few secrets are listed apart, so that what only concerns them (the masker, who
/// receives which) never walks every value.
#[derive(Debug, Clone, Default)]
pub(crate) struct Vars {
    /// In the order first set (setting one again keeps its place).
    values: rpds::VectorSync<(String, Value)>,
    /// Where each name is in `values`.
    index: rpds::HashTrieMapSync<String, usize>,
    /// The names of the secret ones, in order.
    secrets: std::sync::Arc<Vec<String>>,
    /// The masker of the secrets, built once for this set of them.
    masker: std::sync::Arc<std::sync::OnceLock<crate::mask::Masker>>,
}

impl Vars {
    pub(crate) fn set(&mut self, name: &str, text: impl Into<String>, secret: bool) {
        let value = Value {
            text: text.into(),
            secret,
        };
        let was_secret = match self.index.get(name) {
            Some(&at) => {
                let was = self.values.get(at).is_some_and(|(_, v)| v.secret);
                self.values.set_mut(at, (name.to_string(), value));
                was
            }
            None => {
                self.index.insert_mut(name.to_string(), self.values.len());
                self.values.push_back_mut((name.to_string(), value));
                false
            }
        };
        if secret || was_secret {
            let secrets = std::sync::Arc::make_mut(&mut self.secrets);
            secrets.retain(|n| n != name);
            if secret {
                secrets.push(name.to_string());
            }
            self.masker = Default::default();
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        let at = *self.index.get(name)?;
        self.values.get(at).map(|(_, v)| v)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.values.iter().map(|(k, v)| (k, v))
    }

    /// Refuses, before anything runs, a value no step could receive: a NUL byte fits in no
    /// shell variable or environment, so the step would fail half-way through the run.
    pub(crate) fn refuse_nul(&self) -> Result<(), crate::error::Error> {
        let bad: Vec<String> = self
            .iter()
            .filter_map(|(name, v)| {
                v.text
                    .find('\0')
                    .map(|at| format!("input `{name}` contains a NUL byte (at byte {at})"))
            })
            .collect();
        if bad.is_empty() {
            return Ok(());
        }
        Err(crate::error::Error::usage(format!(
            "{}, which no shell variable can hold: fix where it comes from (the alert, the file or command of its source, --set): nothing was run",
            bad.join("; ")
        )))
    }

    /// A masker of every secret value in every form it may be printed in (each line of a
    /// multi-line one, base64, URL encoding): for output, typed text, anything recorded.
    pub(crate) fn masker(&self) -> crate::mask::Masker {
        self.masker
            .get_or_init(|| {
                crate::mask::Masker::for_secrets(
                    self.secrets
                        .iter()
                        .filter_map(|n| self.get(n))
                        .filter(|v| !v.text.is_empty())
                        .map(|v| v.text.as_str()),
                )
            })
            .clone()
    }

    /// The environment of one step (design §14 "Least privilege"): every variable that is
    /// not secret, and the secrets its command names (`$name`, `${name}`) or lists in `uses`.
    /// The flag says whether it received any secret.
    pub(crate) fn env_for(&self, command: &str, uses: &[String]) -> (Vec<(String, String)>, bool) {
        let env = self
            .iter()
            .filter(|(name, v)| !v.secret || needs(command, uses, name))
            .map(|(k, v)| (k.clone(), v.text.clone()))
            .collect();
        (env, !self.secrets_for(command, uses).is_empty())
    }

    /// The secrets one step receives (as `env_for` gives them), without building its
    /// environment: where nothing runs (`runbook test`), this is all that is needed of it.
    pub(crate) fn secrets_for(&self, command: &str, uses: &[String]) -> Vec<String> {
        self.secrets
            .iter()
            .filter(|name| needs(command, uses, name))
            .cloned()
            .collect()
    }

    /// The value as it may be shown: the text, or `***` for a secret.
    pub(crate) fn shown(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| {
            if v.secret {
                MASK.to_string()
            } else {
                v.text.clone()
            }
        })
    }

    /// `name=value` pairs for display and the audit trail, secrets masked.
    pub(crate) fn masked(&self) -> IndexMap<String, String> {
        self.iter()
            .map(|(k, v)| {
                let shown = if v.secret {
                    MASK.to_string()
                } else {
                    v.text.clone()
                };
                (k.clone(), shown)
            })
            .collect()
    }

    /// Replaces `{{ name }}` in display text with the shown value (secrets masked). Unknown names
    /// are left as written; validation has reported them.
    pub(crate) fn interpolate(&self, text: &str) -> String {
        self.interpolate_with(text, |name| self.shown(name))
    }

    /// Like `interpolate`, with real values: for a typed confirmation phrase or `with` values,
    /// which are compared or passed on, never shown.
    pub(crate) fn interpolate_clear(&self, text: &str) -> String {
        self.interpolate_with(text, |name| self.get(name).map(|v| v.text.clone()))
    }

    fn interpolate_with(&self, text: &str, value: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let Some(close) = rest[open + 2..].find("}}") else {
                break;
            };
            let name = rest[open + 2..open + 2 + close].trim();
            out.push_str(&rest[..open]);
            match value(name) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&rest[open..open + 2 + close + 2]),
            }
            rest = &rest[open + 2 + close + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// A secret a step receives: its command names it, or it lists it in `uses`.
fn needs(command: &str, uses: &[String], name: &str) -> bool {
    mentions(command, name) || uses.iter().any(|u| u == name)
}

fn mentions(command: &str, name: &str) -> bool {
    let bytes = command.as_bytes();
    command.match_indices(name).any(|(at, _)| {
        let end = at + name.len();
        let after_ok = bytes
            .get(end)
            .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'));
        let dollar = at >= 1 && bytes[at - 1] == b'$';
        let braced = at >= 2 && &bytes[at - 2..at] == b"${";
        (dollar && after_ok) || (braced && bytes.get(end) == Some(&b'}'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::default();
        v.set("db_name", "app", false);
        v.set("pg_password", "hunter2", true);
        v
    }

    #[test]
    fn interpolation_masks_secrets_and_keeps_unknown_names() {
        let v = vars();
        assert_eq!(
            v.interpolate("drop {{ db_name }} as {{pg_password}} {{ nope }}"),
            "drop app as *** {{ nope }}"
        );
        assert_eq!(v.interpolate_clear("{{ pg_password }}"), "hunter2");
    }

    /// A copy is a snapshot: later changes of the original (a capture) do not reach it; a name
    /// set again keeps its place; the masker follows the secrets as they change.
    #[test]
    fn a_copy_keeps_what_it_saw_and_the_masker_follows_the_secrets() {
        let mut v = vars();
        let copy = v.clone();
        v.set("db_name", "other", false);
        v.set("out", "captured", false);
        v.set("token", "s3cret-token", true);
        let names: Vec<&str> = v.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["db_name", "pg_password", "out", "token"]);
        assert_eq!(copy.get("db_name").unwrap().text, "app");
        assert!(copy.get("out").is_none());
        assert_eq!(v.masker().mask_str("a s3cret-token b"), "a *** b");
        assert_eq!(copy.masker().mask_str("a s3cret-token b"), "a s3cret-token b");
        assert_eq!(v.secrets_for("echo $token", &[]), ["token"]);
        v.set("token", "public", false);
        assert_eq!(v.masker().mask_str("s3cret-token hunter2"), "s3cret-token ***");
        assert!(v.secrets_for("echo $token", &[]).is_empty());
        assert_eq!(v.masked().get("pg_password").unwrap(), MASK);
    }

    /// Least privilege: a step receives the secrets its command names, `$x` or `${x}`, and
    /// those it lists in `uses`; a name without `$`, or a longer name, is no mention.
    #[test]
    fn a_step_receives_only_the_secrets_it_names_or_uses() {
        let v = vars();
        let received = |command: &str, uses: &[&str]| {
            let uses: Vec<String> = uses.iter().map(|u| u.to_string()).collect();
            let (env, received) = v.env_for(command, &uses);
            let names: Vec<String> = env.into_iter().map(|(k, _)| k).collect();
            (received, names.contains(&"pg_password".to_string()))
        };
        assert_eq!(received("psql -W \"$pg_password\"", &[]), (true, true));
        assert_eq!(received("echo ${pg_password}", &[]), (true, true));
        assert_eq!(
            received("echo $pg_password_hint pg_password", &[]),
            (false, false)
        );
        assert_eq!(received("echo $db_name", &[]), (false, false));
        assert_eq!(received("psql", &["pg_password"]), (true, true));
        // Every step still gets what is not secret.
        assert!(v.env_for("true", &[]).0.iter().any(|(k, _)| k == "db_name"));
    }
}
