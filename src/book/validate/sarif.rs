//! `runbook validate --format sarif`: the diagnostics as a SARIF 2.1.0 log, for code-scanning
//! views in CI (as `ansible-lint -f sarif` does). Each diagnostic becomes a result of a rule
//! (its kind of problem, `docs/validation.md`), at `file:line:col` with the underlined width.

use serde_json::{Value, json};

use crate::diagnostic::{Diagnostic, Severity};

/// One kind of problem: its id, a short name, what it checks, and which messages are it.
pub(crate) struct Rule {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// A regular expression over the message.
    pattern: &'static str,
}

/// In order: the first rule whose pattern matches a message is its rule; the last one
/// catches the rest (the YAML parser's own messages).
pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "RB001",
        name: "file",
        description: "The file can be read as a runbook: it exists, is UTF-8 text, not empty, within the size, depth and alias limits.",
        pattern: r"^(cannot read|no such file|the file |is a directory|no runbook files|refused: )",
    },
    Rule {
        id: "RB002",
        name: "unknown-field",
        description: "Every field is one the format knows (typos are errors, with a did-you-mean hint).",
        pattern: r"^unknown field|is a field of the mapping above",
    },
    Rule {
        id: "RB003",
        name: "missing-field",
        description: "Every required field is there.",
        pattern: r"^missing field",
    },
    Rule {
        id: "RB004",
        name: "value-type",
        description: "Each value has the type its field takes.",
        pattern: r"^invalid (boolean|number|exit codes|confirmation|type|u32|value)|^unsupported format version",
    },
    Rule {
        id: "RB005",
        name: "duplicate-key",
        description: "No key is written twice in one mapping.",
        pattern: r"appears twice in this mapping",
    },
    Rule {
        id: "RB006",
        name: "identifier",
        description: "Runbook and step ids are well-formed and unique.",
        pattern: r"(runbook|step) id `.*` is not valid|^duplicate step id|is also used by",
    },
    Rule {
        id: "RB007",
        name: "duration",
        description: "Durations have units (`90s`, `5m`, `1h30m`) and targets are not zero.",
        pattern: r"^invalid duration|is zero",
    },
    Rule {
        id: "RB008",
        name: "regex",
        description: "Regular expressions compile, within the size limit.",
        pattern: r"^invalid regex",
    },
    Rule {
        id: "RB009",
        name: "reference",
        description: "Every step, role, runbook and variable a step names exists.",
        pattern: r"unknown (step|target|runbook|variable)|calls this runbook itself|is a cleanup step|shadows|is not a valid variable name",
    },
    Rule {
        id: "RB010",
        name: "step-kind",
        description: "A step has exactly one kind, and only the fields that kind takes.",
        pattern: r"has no kind|kinds|cannot have|cannot be a|but is not a|has no options|`equals`|unknown outcome|has no steps|`escalate\.to`",
    },
    Rule {
        id: "RB011",
        name: "graph",
        description: "Every step is reachable and every path reaches an `end` step.",
        pattern: r"is unreachable|falls off|loop with no way",
    },
    Rule {
        id: "RB012",
        name: "rto-budget",
        description: "The step targets on the longest path fit in the runbook's RTO.",
        pattern: r"longest path",
    },
    Rule {
        id: "RB013",
        name: "destructive-without-confirm",
        description: "A command that looks destructive asks for a confirmation.",
        pattern: r"destructive",
    },
    Rule {
        id: "RB014",
        name: "secrets",
        description: "Secrets stay secret: sources parse, confirmations do not show them, declassified outputs are listed.",
        pattern: r"secret|declassif|unknown source",
    },
    Rule {
        id: "RB015",
        name: "inventory",
        description: "The inventory's hosts, groups and notification channels are valid.",
        pattern: r"^(host|group|notify entry) |is not a host of this inventory|both a host and a group",
    },
    Rule {
        id: "RB016",
        name: "yaml",
        description: "The file is valid YAML.",
        pattern: r"",
    },
];

/// The rule a diagnostic belongs to.
pub(crate) fn rule_of(d: &Diagnostic) -> usize {
    static COMPILED: std::sync::OnceLock<Vec<regex::Regex>> = std::sync::OnceLock::new();
    let compiled = COMPILED.get_or_init(|| {
        RULES
            .iter()
            .map(|r| regex::Regex::new(r.pattern).expect("the rule patterns compile"))
            .collect()
    });
    compiled
        .iter()
        .position(|re| re.is_match(&d.message))
        .unwrap_or(RULES.len() - 1)
}

/// `file` as an artifact URI: relative paths stay relative (to `%SRCROOT%`, where CI runs),
/// percent-encoded; absolute ones become `file://` URIs.
fn uri(file: &str) -> (String, bool) {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const PATH: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'[')
        .add(b']')
        .add(b'`')
        .add(b'{')
        .add(b'}')
        .add(b'\\')
        .add(b'^')
        .add(b'|');
    let relative = file.strip_prefix("./").unwrap_or(file);
    let encoded = utf8_percent_encode(relative, PATH).to_string();
    if relative.starts_with('/') {
        (format!("file://{encoded}"), false)
    } else {
        (encoded, true)
    }
}

/// The SARIF log of these diagnostics.
pub(crate) fn log(diagnostics: &[&Diagnostic]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": {"text": r.description},
                "defaultConfiguration": {"level": if r.name == "rto-budget" || r.name == "destructive-without-confirm" { "warning" } else { "error" }},
            })
        })
        .collect();
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let index = rule_of(d);
            let (uri, relative) = uri(&d.file);
            let mut artifact = json!({"uri": uri});
            if relative {
                artifact["uriBaseId"] = json!("%SRCROOT%");
            }
            let mut physical = json!({"artifactLocation": artifact});
            if d.line > 0 {
                let col = d.col.max(1);
                physical["region"] = json!({
                    "startLine": d.line,
                    "startColumn": col,
                    "endColumn": col as usize + d.width.max(1),
                });
            }
            let text = match &d.help {
                Some(help) => format!("{}\nhelp: {help}", d.message),
                None => d.message.clone(),
            };
            json!({
                "ruleId": RULES[index].id,
                "ruleIndex": index,
                "level": match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                "message": {"text": text},
                "locations": [{"physicalLocation": physical}],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "runbook",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "The directory runbook validate ran in."}}},
            "results": results,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Pos;

    fn rule(message: &str) -> &'static str {
        RULES[rule_of(&Diagnostic::error("f.yaml", Pos::new(1, 1), message))].name
    }

    #[test]
    fn messages_find_their_rule() {
        assert_eq!(
            rule("unknown field `timout`, expected one of ..."),
            "unknown-field"
        );
        assert_eq!(rule("step `a` goes to unknown step `b`"), "reference");
        assert_eq!(rule("invalid duration in `rto`: no unit"), "duration");
        assert_eq!(rule("step `x` is unreachable"), "graph");
        assert_eq!(
            rule("step `x` runs a destructive-looking command (`rm -rf`) without `confirm`"),
            "destructive-without-confirm"
        );
        assert_eq!(rule("did not find expected ',' or '}'"), "yaml");
    }

    #[test]
    fn paths_become_uris() {
        assert_eq!(uri("./runbooks/a b.yaml"), ("runbooks/a%20b.yaml".into(), true));
        assert_eq!(uri("/srv/x.yaml"), ("file:///srv/x.yaml".into(), false));
    }
}
