//! Commands that look destructive: a `run` step with one of these and no `confirm` gets a
//! warning, so a 3 a.m. operator is asked before a `DROP DATABASE` runs. The patterns are
//! compiled once per process: validating a thousand runbooks must not compile them a
//! thousand times. ASCII only (`\b`, `\s` and case as the shell and SQL see them, over
//! bytes): Unicode word boundaries and case folding made compiling them cost every `run`
//! about a millisecond and a half of its start.

use std::sync::LazyLock;

use regex::bytes::{Regex, RegexBuilder};

fn ascii(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .unicode(false)
        .build()
        .ok()
}

/// A match: the words to name in the warning, and its byte offset in the command.
pub(crate) struct Found {
    pub(crate) what: String,
    pub(crate) at: usize,
    /// Byte length of the matched text.
    pub(crate) len: usize,
}

/// (pattern, fixed name; `None` = name the matched text itself).
const PATTERNS: &[(&str, Option<&str>)] = &[
    (r"\bdrop\s+(database|table|schema)\b", None),
    (r"\brm\s+(-[a-z]*(rf|fr)[a-z]*|-r\s+-f|-f\s+-r)\b", None),
    (r"\bpg_restore\b.*\s--clean\b", Some("pg_restore --clean")),
    (r"(^|\s)--clean\b", None),
    (r"\btruncate\b", None),
    (r"\bmkfs(\.[a-z0-9]+)?\b", None),
    (r"\bdd\b.*\bof=", Some("dd of=")),
    (r"\bgit\s+push\b.*\s(--force\b|-f\b)", Some("git push --force")),
    (r"\bgit\s+reset\s+--hard\b", None),
    (r"\bdropdb\b", None),
];

static COMPILED: LazyLock<Vec<(Regex, Option<&'static str>)>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .filter_map(|(p, name)| ascii(p).map(|r| (r, *name)))
        .collect()
});

static DELETE_FROM: LazyLock<Option<Regex>> = LazyLock::new(|| ascii(r"\bdelete\s+from\b"));

static WHERE: LazyLock<Option<Regex>> = LazyLock::new(|| ascii(r"\bwhere\b"));

/// The earliest destructive-looking part of `command`, if any.
pub(crate) fn find(command: &str) -> Option<Found> {
    let mut best: Option<Found> = None;
    let mut consider = |found: Found| {
        if best.as_ref().is_none_or(|b| found.at < b.at) {
            best = Some(found);
        }
    };
    let bytes = command.as_bytes();
    // Every pattern starts and ends on an ASCII character: a match is whole characters.
    let text_of = |m: regex::bytes::Match| &command[m.start()..m.end()];
    for (regex, name) in COMPILED.iter() {
        if let Some(m) = regex.find(bytes) {
            // `(^|\s)--clean` includes the space before the flag; name the flag alone.
            let matched = text_of(m);
            let text = matched.trim();
            let at = m.start() + (matched.len() - matched.trim_start().len());
            let what = name.map(str::to_string).unwrap_or_else(|| collapse(text));
            consider(Found {
                what,
                at,
                len: text.len(),
            });
        }
    }
    // `DELETE FROM` is destructive when its statement has no `WHERE` (no look-ahead in the
    // `regex` crate: check the rest of the statement by hand).
    if let (Some(delete), Some(filter)) = (DELETE_FROM.as_ref(), WHERE.as_ref()) {
        for m in delete.find_iter(bytes) {
            let statement = command[m.end()..].split([';', '\n']).next().unwrap_or("");
            if !filter.is_match(statement.as_bytes()) {
                let what = format!("{} without WHERE", collapse(text_of(m)));
                consider(Found {
                    what,
                    at: m.start(),
                    len: m.len(),
                });
                break;
            }
        }
    }
    best
}

/// `DROP   database` → `DROP database`: the words as written, on one line.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn what(command: &str) -> Option<String> {
        find(command).map(|f| f.what)
    }

    /// Matched over bytes, named as text: letters outside ASCII around a match (or inside a
    /// `.*`) are whole in what is named.
    #[test]
    fn text_beyond_ascii_is_whole_around_a_match() {
        assert_eq!(what("é drop  database ü").as_deref(), Some("drop database"));
        assert_eq!(what("dd if=é of=/dev/sda").as_deref(), Some("dd of="));
        assert_eq!(
            what("psql -c 'delete from café'").as_deref(),
            Some("delete from without WHERE")
        );
        assert_eq!(what("psql -c 'delete from café where x'"), None);
    }

    #[test]
    fn names_the_destructive_words() {
        assert_eq!(
            what("psql -c 'drop   DATABASE x'").as_deref(),
            Some("drop DATABASE")
        );
        assert_eq!(what("sudo rm -rf /var/lib/x").as_deref(), Some("rm -rf"));
        assert_eq!(what("rm -fr x").as_deref(), Some("rm -fr"));
        assert_eq!(
            what("pg_restore -d db --clean f.dump").as_deref(),
            Some("pg_restore --clean")
        );
        assert_eq!(what("tool --clean").as_deref(), Some("--clean"));
        assert_eq!(what("truncate -s 0 log").as_deref(), Some("truncate"));
        assert_eq!(what("mkfs.ext4 /dev/sdb1").as_deref(), Some("mkfs.ext4"));
        assert_eq!(what("dd if=/dev/zero of=/dev/sda").as_deref(), Some("dd of="));
        assert_eq!(
            what("git push origin main -f").as_deref(),
            Some("git push --force")
        );
        assert_eq!(
            what("git reset --hard HEAD~1").as_deref(),
            Some("git reset --hard")
        );
        assert_eq!(what("dropdb app").as_deref(), Some("dropdb"));
        assert_eq!(
            what("psql -c 'DELETE FROM leads;'").as_deref(),
            Some("DELETE FROM without WHERE")
        );
    }

    #[test]
    fn leaves_ordinary_commands_alone() {
        assert_eq!(what("psql -c 'DELETE FROM leads WHERE id = 1'"), None);
        assert_eq!(what("rm -f /tmp/lock"), None);
        assert_eq!(what("echo truncated output; ls --cleanup"), None);
        assert_eq!(what("git push origin main"), None);
        assert_eq!(what("select count(*) from leads"), None);
    }
}
