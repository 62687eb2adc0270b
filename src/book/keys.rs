//! Every unknown field of a file at once. serde stops at the first unknown field it meets; a
//! user fixing typos one run at a time deserves better (design §2: "reports all problems at
//! once"). This pre-pass reads the YAML as a generic tree whose map keys keep their position,
//! and checks every key against the JSON Schema of the format (the same schema `runbook schema`
//! prints, so the two cannot disagree): a key not in a closed mapping's `properties` is unknown.

use std::sync::LazyLock;

use serde_json::Value;
use serde_saphyr::Spanned;

use crate::book::parse::Source;
use crate::book::parse::tree::Node;
use crate::book::runbook::Runbook;
use crate::diagnostic::{Diagnostic, Pos, did_you_mean};

static SCHEMA: LazyLock<Value> =
    LazyLock::new(|| serde_json::to_value(schemars::schema_for!(Runbook)).unwrap_or(Value::Null));

/// Every key of the file that the format does not know, each located at the key, with a
/// "did you mean". Empty when the file has none, or cannot be read as YAML at all (the
/// parser reports that).
pub(crate) fn unknown_fields(source: &Source) -> Vec<Diagnostic> {
    let Ok(tree) = serde_saphyr::from_str_with_options::<Node>(&source.text, crate::book::parse::options())
    else {
        return Vec::new();
    };
    let mut found = Vec::new();
    walk(&tree, &SCHEMA, None, &source.path, &mut found);
    found
}

/// The mapping a mapping's value sits in: its fields, and the key whose value it is.
#[derive(Clone, Copy)]
struct Parent<'a> {
    properties: Option<&'a serde_json::Map<String, Value>>,
    /// The keys of the mapping above, written.
    entries: &'a [(Spanned<String>, Node)],
    key: &'a Spanned<String>,
}

/// Follows `$ref` (`#/$defs/Step` or draft-07's `#/definitions/Step`).
fn resolve(schema: &Value) -> &Value {
    let mut schema = schema;
    // A bounded number of hops: the schema is ours, but a cycle must not hang.
    for _ in 0..8 {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => match SCHEMA.pointer(r.trim_start_matches('#')) {
                Some(target) => schema = target,
                None => break,
            },
            None => break,
        }
    }
    schema
}

/// The alternative of an `anyOf` / `oneOf` that describes a mapping (or a list).
fn alternative<'s>(schema: &'s Value, want: &str) -> Option<&'s Value> {
    let accepts = |s: &Value| {
        let s = resolve(s);
        let types = s.get("type");
        types.and_then(Value::as_str) == Some(want)
            || types
                .and_then(Value::as_array)
                .is_some_and(|t| t.iter().any(|v| v.as_str() == Some(want)))
    };
    let schema = resolve(schema);
    if accepts(schema) {
        return Some(schema);
    }
    ["anyOf", "oneOf"]
        .iter()
        .filter_map(|k| schema.get(k).and_then(Value::as_array))
        .flatten()
        .find(|s| accepts(s))
        .map(resolve)
}

fn walk(node: &Node, schema: &Value, parent: Option<Parent<'_>>, file: &str, found: &mut Vec<Diagnostic>) {
    match node {
        Node::Scalar => {}
        Node::Seq(items) => {
            let Some(items_schema) = alternative(schema, "array").and_then(|s| s.get("items")) else {
                return;
            };
            for item in items {
                walk(item, items_schema, None, file, found);
            }
        }
        Node::Map(entries) => {
            let Some(schema) = alternative(schema, "object") else {
                return;
            };
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (key, value) in entries {
                let here = Some(Parent {
                    properties,
                    entries,
                    key,
                });
                if let Some(property) = properties.and_then(|p| p.get(&key.value)) {
                    walk(value, property, here, file, found);
                } else if additional == Some(&Value::Bool(false)) {
                    found.push(unknown(key, properties, parent, file));
                } else if let Some(values) = additional.filter(|a| a.is_object()) {
                    walk(value, values, None, file, found);
                }
            }
        }
    }
}

fn unknown(
    key: &Spanned<String>,
    properties: Option<&serde_json::Map<String, Value>>,
    parent: Option<Parent<'_>>,
    file: &str,
) -> Diagnostic {
    let expected: Vec<&str> = properties
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    // A field of the mapping above (which does not have it yet), indented under one of its
    // keys by mistake.
    let misplaced = parent
        .filter(|p| p.properties.is_some_and(|props| props.contains_key(&key.value)))
        .filter(|p| !p.entries.iter().any(|(k, _)| k.value == key.value))
        .map(|p| {
            let at = Pos::of(p.key);
            format!(
                "`{}` is a field of the mapping above, not of `{}`: indent it like `{}` (column {})",
                key.value, p.key.value, p.key.value, at.col
            )
        });
    let help = misplaced
        .or_else(|| did_you_mean(&key.value, expected.iter().copied()))
        .unwrap_or_else(|| format!("expected one of {}", crate::diagnostic::ticked(expected)));
    Diagnostic::error(file, Pos::of(key), format!("unknown field `{}`", key.value))
        .with_width(key.value.chars().count())
        .with_help(help)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_unknown_field_with_a_hint() {
        let source = Source::from_bytes(
            "t.yaml",
            b"version: 1\nid: x\ntitel: X\nrto: 5m\ninputs:\n  db: {defualt: a}\nsteps:\n  - id: a\n    title: A\n    timout: 5s\n    retry: {attempts: 1, dealy: 1s}\n    choose:\n      - {label: L, goto: a, when: {var: db, equal: x}}\n    end: resolved\n".to_vec(),
        )
        .unwrap();
        let found: Vec<(String, Option<String>)> = unknown_fields(&source)
            .into_iter()
            .map(|d| (d.headline(), d.help))
            .collect();
        let hint = |f: &str| Some(format!("did you mean `{f}`?"));
        assert_eq!(
            found,
            vec![
                ("t.yaml:3:1: error: unknown field `titel`".into(), hint("title")),
                (
                    "t.yaml:6:8: error: unknown field `defualt`".into(),
                    hint("default")
                ),
                (
                    "t.yaml:10:5: error: unknown field `timout`".into(),
                    hint("timeout")
                ),
                ("t.yaml:11:26: error: unknown field `dealy`".into(), hint("delay")),
                (
                    "t.yaml:13:45: error: unknown field `equal`".into(),
                    hint("equals")
                ),
            ]
        );
    }

    #[test]
    fn a_valid_file_has_none() {
        let source = Source::from_bytes(
            "t.yaml",
            include_bytes!("../../tests/data/design-example.yaml").to_vec(),
        )
        .unwrap();
        assert!(unknown_fields(&source).is_empty());
    }
}
