//! Awkward Markdown still imports into runbooks the project's own parser and validator accept:
//! quotes, `{{ }}`, control characters and escape sequences, `#` and backticks in commands,
//! ids that collide, calls that would loop.

use std::collections::BTreeSet;

use super::import;
use crate::book::parse::Source;

/// Imports `markdown` and returns each file's text, after checking that all of them parse
/// and validate with no error (calls among them resolved).
fn imported(markdown: &str) -> Vec<(String, String)> {
    let (files, _) = import("t.md", markdown);
    let ids: BTreeSet<String> = files.iter().map(|f| f.id.clone()).collect();
    for file in &files {
        let source = Source::from_bytes(&format!("{}.yaml", file.id), file.yaml.clone().into_bytes())
            .unwrap_or_else(|d| panic!("{}", d.message));
        let runbook = crate::book::validate::parse(&source).unwrap_or_else(|d| {
            panic!(
                "{}\n{:?}",
                file.yaml,
                d.iter().map(|d| &d.message).collect::<Vec<_>>()
            )
        });
        let errors: Vec<String> = crate::book::validate::validate(&source, &runbook, Some(&ids))
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
            .collect();
        assert!(errors.is_empty(), "{}\n{errors:#?}", file.yaml);
    }
    files.into_iter().map(|f| (f.id, f.yaml)).collect()
}

#[test]
fn awkward_text_stays_text() {
    let files = imported(
        "## Scenario 1: Quotes 'and' \"more\" {{ nope }}\n\n\
         RTO: 90 seconds\n\n\
         1. Say {{ operator }} and `echo '{{ x }}' \"$HOME\" # not a comment`\n\
         2. Escape: `printf '\\033[31mred\\a'` \u{7} \u{1b}[2J\n\
         3. Backticks: ``echo `date` ``\n\
         4. If it's \"bad\": `kill -9 $(pidof app)`\n\
         5. Tab\there and a\u{85}line \u{2028} separator\n\
         6. - nested\n\
         7. > quoted\n",
    );
    let (id, yaml) = &files[0];
    assert_eq!(id, "quotes-and-more-nope");
    assert!(yaml.contains("rto: 90s"), "{yaml}");
    assert!(yaml.contains("{ { operator } }"), "{yaml}");
    // The command is as written: `{{` is not display text there.
    assert!(
        yaml.contains("run: 'echo ''{{ x }}'' \"$HOME\" # not a comment'"),
        "{yaml}"
    );
    assert!(yaml.contains("run: 'echo `date`'"), "{yaml}");
    assert!(yaml.contains("confirm: true"), "{yaml}");
}

#[test]
fn ids_collide_and_calls_do_not_loop() {
    let files = imported(
        "## Scenario 1: Same\n\n1. Check: `uptime`\n2. Check: `uptime`\n3. Else see Scenario 2\n\n\
         ## Scenario 2: Same\n\n1. Back: see Scenario 1\n2. Nowhere: see Scenario 9\n",
    );
    let ids: Vec<&str> = files.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["same", "same-2"]);
    assert!(files[0].1.contains("- id: check\n"), "{}", files[0].1);
    assert!(files[0].1.contains("- id: check-2\n"), "{}", files[0].1);
    assert!(files[0].1.contains("call: same-2"), "{}", files[0].1);
    let second = &files[1].1;
    assert!(!second.contains("\n    call:"), "{second}");
    assert!(second.contains("manual: 'Back: see Scenario 1'"), "{second}");
    assert!(
        second.contains("# review: Scenario 1 leads back to this runbook"),
        "{second}"
    );
    assert!(
        second.contains("# review: Scenario 9 was not imported"),
        "{second}"
    );
}

#[test]
fn nothing_to_import_is_said() {
    let (files, skipped) = import("t.md", "# Title\n\nJust prose.\n\n## Contacts\n\nAsk around.\n");
    assert!(files.is_empty());
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].heading, "Contacts");
    assert_eq!(skipped[0].line, 5);
    let (files, skipped) = import("t.md", "");
    assert!(files.is_empty() && skipped.is_empty());
}

#[test]
fn a_file_without_level_two_headings_uses_level_one() {
    let files = imported(
        "# Restart\n\n1. Restart: `systemctl restart app`\n\n# Reboot\n\n- [ ] Reboot: `sudo reboot`\n",
    );
    let ids: Vec<&str> = files.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["restart", "reboot"]);
}
