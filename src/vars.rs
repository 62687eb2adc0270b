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

/// Shared until changed: the executor keeps a copy of the variables at every step (what a
/// shell opened there sees), which must not cost a copy of every value.
#[derive(Debug, Clone, Default)]
pub(crate) struct Vars {
    values: std::sync::Arc<IndexMap<String, Value>>,
}

impl Vars {
    pub(crate) fn set(&mut self, name: &str, text: impl Into<String>, secret: bool) {
        std::sync::Arc::make_mut(&mut self.values).insert(
            name.to_string(),
            Value {
                text: text.into(),
                secret,
            },
        );
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.values.iter()
    }

    /// Refuses, before anything runs, a value no step could receive: a NUL byte fits in no
    /// shell variable or environment, so the step would fail half-way through the run.
    pub(crate) fn refuse_nul(&self) -> Result<(), crate::error::Error> {
        let bad: Vec<String> = self
            .values
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
        crate::mask::Masker::for_secrets(
            self.values
                .values()
                .filter(|v| v.secret && !v.text.is_empty())
                .map(|v| v.text.as_str()),
        )
    }

    /// The environment of one step (design §14 "Least privilege"): every variable that is
    /// not secret, and the secrets its command names (`$name`, `${name}`) or lists in `uses`.
    /// The flag says whether it received any secret.
    pub(crate) fn env_for(&self, command: &str, uses: &[String]) -> (Vec<(String, String)>, bool) {
        let mut received = false;
        let env = self
            .values
            .iter()
            .filter(|(name, v)| {
                let needed = !v.secret || mentions(command, name) || uses.iter().any(|u| u == *name);
                received |= v.secret && needed;
                needed
            })
            .map(|(k, v)| (k.clone(), v.text.clone()))
            .collect();
        (env, received)
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
        self.values
            .keys()
            .map(|k| (k.clone(), self.shown(k).unwrap_or_default()))
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
