//! `runbook schema`, `runbook completions` and the man page: generated from the code, and the
//! committed copies in `docs/` must be what the binary prints today.

use crate::support::cmd::{root, runbook};

#[test]
fn the_committed_schema_is_what_the_binary_prints() {
    let out = runbook(["schema"]).expect_code(0);
    let committed = std::fs::read_to_string(root().join("docs/runbook.schema.json")).unwrap();
    assert!(
        out.stdout == committed,
        "docs/runbook.schema.json is stale; regenerate it with `cargo run -q -- schema > docs/runbook.schema.json`"
    );
}

#[test]
fn the_schema_is_draft_07_and_refuses_unknown_fields() {
    let out = runbook(["schema"]).expect_code(0);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["additionalProperties"], false);
    let step = &schema["definitions"]["Step"];
    assert_eq!(step["additionalProperties"], false);
    for field in [
        "run",
        "manual",
        "choose",
        "call",
        "end",
        "on_failure",
        "idempotent",
    ] {
        assert!(step["properties"].get(field).is_some(), "Step has no `{field}`");
    }
    assert_eq!(
        schema["definitions"]["Duration"]["pattern"],
        runbook::testing::duration::PATTERN
    );
}

/// The script asks the binary at each Tab (dynamic completion, tested in a real bash in
/// `completions.rs`): it registers a function for `runbook` that calls `runbook` itself.
#[test]
fn bash_completions_register_a_function_that_asks_runbook() {
    let out = runbook(["completions", "bash"]).expect_code(0);
    assert!(
        out.stdout.contains("-F _clap_complete_runbook runbook"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("_RUNBOOK_COMPLETE=\"bash\""),
        "{}",
        out.stdout
    );
}

#[test]
fn every_shell_gets_completions() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = runbook(["completions", shell]).expect_code(0);
        assert!(out.stdout.contains("runbook"), "{shell}: {}", out.stdout);
    }
    let out = runbook(["completions", "tcsh"]).expect_code(2);
    assert!(out.stderr.contains("invalid value 'tcsh'"), "{}", out.stderr);
}

#[test]
fn the_committed_man_page_is_what_the_binary_prints() {
    let out = runbook(["man"]).expect_code(0);
    assert!(out.stdout.starts_with(".ie \\n(.g .ds Aq"), "{}", out.stdout);
    let committed = std::fs::read_to_string(root().join("docs/runbook.1")).unwrap();
    assert!(
        out.stdout == committed,
        "docs/runbook.1 is stale; regenerate it with `cargo run -q -- man > docs/runbook.1`"
    );
}

#[test]
fn the_format_reference_documents_every_field_of_the_schema() {
    let out = runbook(["schema"]).expect_code(0);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let reference = std::fs::read_to_string(root().join("docs/format.md")).unwrap();
    let mut objects = vec![("Runbook".to_string(), &schema)];
    for (name, definition) in schema["definitions"].as_object().unwrap() {
        objects.push((name.clone(), definition));
    }
    let mut undocumented = Vec::new();
    for (object, definition) in objects {
        let Some(properties) = definition["properties"].as_object() else {
            continue;
        };
        for field in properties.keys() {
            if !reference.contains(&format!("`{field}`")) {
                undocumented.push(format!("{object}.{field}"));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "docs/format.md does not mention {undocumented:?}"
    );
}

/// Issue 25, item 10: `run --help` showed a role (`api`) no shipped runbook has, and answers
/// to steps that do not exist. Every `run` and `drill` example of the help is now checked, as a
/// dry run against the shipped catalog: it must pass pre-flight (roles, inputs, answers).
#[test]
fn every_run_and_drill_example_of_the_help_passes_pre_flight() {
    let mut seen = 0;
    for command in ["run", "drill"] {
        let help = runbook([command, "--help"]).expect_code(0).stdout;
        let examples = help
            .lines()
            .skip_while(|l| !l.starts_with("Examples:"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.trim().strip_prefix("runbook "))
            .map(|l| l.split('#').next().unwrap().trim().to_string());
        for example in examples {
            let mut args: Vec<String> = vec!["--dir".into(), root().join("runbooks").display().to_string()];
            args.extend(example.split_whitespace().map(str::to_string));
            if !args.iter().any(|a| a == "--dry-run") {
                args.push("--dry-run".into());
            }
            let out = runbook(&args).output();
            assert_eq!(out.code, Some(0), "`runbook {example}`: {}", out.stderr);
            seen += 1;
        }
    }
    assert!(seen >= 4, "the help's examples were not found");
}
