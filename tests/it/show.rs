//! `runbook show`: the runbook as a text document, Markdown and a Mermaid flowchart, asserted
//! in full on the test catalog, plus the design's own example and the awkward cases (Mermaid
//! keywords as step ids, quotes, secrets).

use crate::list::scratch;
use crate::support::cmd::{root, runbook};

const SERVICE_DOWN_TEXT: &str = r#"API service down
================

id:     service-down
owner:  on-call
RTO:    10m
steps:  7

The API does not answer its health check.
Impact: customers cannot log in.

Links:
  - API dashboard: https://grafana.example/d/api

Inputs:
  NAME       DEFAULT  DESCRIPTION
  last_good  v1.4.2   Last good release tag

Targets:
  ROLE  DEFAULT               DESCRIPTION
  api   (bind with --target)  API host

Steps:

[1/7] Look at the unit status
    id:          status
    kind:        run
    target:      api
    expect:      exit 0 or 3
    idempotent:  yes (re-run after a crash without asking)
    notes:
        The last 20 lines of the journal are usually enough.
    links:
      - systemd cheat sheet: https://wiki.example/systemd
    command:
        systemctl status dealix-api --no-pager -n 20
    on success:  go to restart
    on failure:  ask the operator

[2/7] Restart the API
    id:          restart
    kind:        run
    target:      api
    rto:         1m
    timeout:     90s
    command:
        sudo -n systemctl restart dealix-api
    on success:  go to check
    on failure:  go to rollback

[3/7] Read the "deep" health check
    id:          check
    kind:        manual
    instruction:
        Open https://api.example/health/deep and read the status.
    on success:  go to up
    on failure:  ask the operator

[4/7] Is the API up?
    id:          up
    kind:        choose
    options:
      - "Up" → resolved
      - "Still down" → rollback

[5/7] Roll back to {{ last_good }}
    id:          rollback
    kind:        call
    calls:       runbook rollback
    with:        version = `{{ last_good }}`
    on success:  go to resolved
    on failure:  go to escalate

[6/7] API is back
    id:          resolved
    kind:        end
    outcome:     resolved
    message:
        Write the incident note.

[7/7] Escalate to the API team lead
    id:          escalate
    kind:        end
    outcome:     escalated
"#;

const ROLLBACK_MERMAID: &str = r#"flowchart TD
    switch["Point the current release at {{ version }}"]
    restart["Restart {{ service }}"]
    health["Read the health endpoint"]
    healthy{"Is {{ service }} healthy?"}
    done(["Rolled back<br/>resolved"])
    failed(["Rollback failed<br/>failed"])
    switch --> restart
    restart --> health
    restart -. failure .-> failed
    health --> healthy
    healthy -- "Healthy" --> done
    healthy -- "Still failing" --> failed
    subgraph cleanup
        start["Make sure {{ service }} runs"]
    end
    classDef resolved fill:#d3f9d8,stroke:#2b8a3e,color:#000
    classDef failed fill:#ffe3e3,stroke:#c92a2a,color:#000
    class done resolved
    class failed failed
"#;

#[test]
fn text_is_a_complete_readable_document() {
    let out = runbook(["show", "service-down", "--dir", "tests/data/catalog"])
        .current_dir(root())
        .expect_code(0);
    assert_eq!(out.stdout, SERVICE_DOWN_TEXT);
    assert_eq!(out.stderr, "");
}

#[test]
fn text_shows_inputs_confirmations_retries_captures_and_cleanup() {
    let out = runbook(["show", "tests/data/catalog/rollback.yaml", "--format", "text"])
        .current_dir(root())
        .expect_code(0);
    for expected in [
        "  version  (required)  Release tag to go back to\n",
        "[1/6] Point the current release at {{ version }}\n",
        "    confirm:     yes/no question before it acts\n",
        "    retry:       2 attempts, 10s apart\n",
        "    on failure:  go to failed\n",
        "    capture:     stdout → health\n",
        "      - \"Healthy\" → done, when health equals `ok`\n",
        "    message:\n        {{ service }} runs {{ version }} again.\n",
        "Cleanup (always runs after the run ends, whatever its outcome, in this order):\n\n[1/1] Make sure {{ service }} runs\n",
    ] {
        assert!(
            out.stdout.contains(expected),
            "missing {expected:?} in:\n{}",
            out.stdout
        );
    }
}

#[test]
fn mermaid_is_only_the_flowchart() {
    let out = runbook([
        "show",
        "rollback",
        "--dir",
        "tests/data/catalog",
        "--format",
        "mermaid",
    ])
    .current_dir(root())
    .expect_code(0);
    assert_eq!(out.stdout, ROLLBACK_MERMAID);
}

#[test]
fn markdown_has_tables_sh_blocks_and_ends_with_the_flowchart() {
    let out = runbook([
        "show",
        "rollback",
        "--dir",
        "tests/data/catalog",
        "--format",
        "md",
    ])
    .current_dir(root())
    .expect_code(0);
    let md = &out.stdout;
    assert!(
        md.starts_with("# Roll back to the last good version\n\n- **id:** `rollback`\n"),
        "{md}"
    );
    assert!(
        md.contains(
            "| name | default | required | secret | description |\n|---|---|---|---|---|\n\
         | `service` | `dealix-api` | no | no | systemd unit to roll back |\n\
         | `version` |  | yes | no | Release tag to go back to |\n"
        ),
        "{md}"
    );
    assert!(md.contains("### [2/6] Restart {{ service }}\n"), "{md}");
    assert!(
        md.contains("```sh\nsudo -n systemctl restart \"$service\"\n```\n"),
        "{md}"
    );
    assert!(
        md.contains("**Next:** on success go to `health`; on failure go to `failed`.\n"),
        "{md}"
    );
    assert!(
        md.ends_with(&format!("## Flowchart\n\n```mermaid\n{ROLLBACK_MERMAID}```\n")),
        "{md}"
    );
}

#[test]
fn the_design_example_renders_in_every_format() {
    let example = "tests/data/design-example.yaml";
    let text = runbook(["show", example])
        .current_dir(root())
        .expect_code(0)
        .stdout;
    assert!(text.starts_with("Database restore from backup\n============================\n"));
    assert!(
        text.contains("  pg_password  (required, secret)  Superuser password\n"),
        "{text}"
    );
    assert!(
        text.contains("    confirm:     type `{{ db_name }}` before it acts\n"),
        "{text}"
    );
    assert!(text.contains("    expect:      exit 0 or 22\n"), "{text}");
    assert!(
        text.contains("    calls:       runbook rollback\n    with:        service = `{{ api_service }}`\n"),
        "{text}"
    );

    let mermaid = runbook(["show", example, "--format", "mermaid"])
        .current_dir(root())
        .expect_code(0)
        .stdout;
    for expected in [
        "flowchart TD\n",
        "    stop_api[\"Stop the API\"]\n",
        "    healthy{\"Is the API healthy?\"}\n",
        "    rollback[[\"Roll back to the last good version<br/>call rollback\"]]\n",
        "    verify_dashboard[/\"Verify recent leads and deals in the dashboard\"/]\n",
        "    done([\"Service restored<br/>resolved\"])\n",
        "    count_rows -. failure .-> escalate\n",
        "    healthy -- \"Healthy\" --> done\n",
        "    subgraph cleanup\n        restart_api[\"Start the API again\"]\n    end\n",
        "    class escalate escalated\n",
    ] {
        assert!(mermaid.contains(expected), "missing {expected:?} in:\n{mermaid}");
    }

    let md = runbook(["show", example, "--format", "md"])
        .current_dir(root())
        .expect_code(0)
        .stdout;
    assert!(md.contains("```sh\npsql -c \"DROP DATABASE \\\"$db_name\\\";\"\npsql -c \"CREATE DATABASE \\\"$db_name\\\";\"\n```\n"), "{md}");
    assert!(md.contains(&format!("```mermaid\n{mermaid}```\n")), "{md}");
}

#[test]
fn an_unknown_runbook_is_a_usage_error_with_a_suggestion() {
    let out = runbook(["show", "rollbak", "--dir", "tests/data/catalog"])
        .current_dir(root())
        .expect_code(2);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "runbook: error: no runbook `rollbak`: not a file, and no runbook with that id in tests/data/catalog (did you mean `rollback`?); `runbook list` shows the catalog, `--dir` or RUNBOOK_PATH choose it\n"
    );
}

#[test]
fn a_file_that_does_not_parse_prints_its_diagnostic() {
    let dir = scratch("show-broken");
    std::fs::write(
        dir.join("broken.yaml"),
        "version: 1\nid: broken\ntitle: Broken\nrto: 5m\nsteps:\n  - id: a\n    title: A\n    timout: 5s\n    end: resolved\n",
    )
    .unwrap();
    let out = runbook(["show", "broken.yaml"]).current_dir(&dir).expect_code(2);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "broken.yaml:8:5: error: unknown field `timout`\n  |\n8 |     timout: 5s\n  |     ^^^^^^\n  = help: did you mean `timeout`?\n"
    );
}

/// An `end` that is no outcome was a parse error; read as text since (so that `validate`
/// reports it with the file's other problems), `show` still refuses it rather than draw it.
#[test]
fn a_misspelt_outcome_is_refused_with_its_diagnostic() {
    let dir = scratch("show-outcome");
    std::fs::write(
        dir.join("typo.yaml"),
        "version: 1\nid: typo\ntitle: Typo\nrto: 5m\nsteps:\n  - {id: done, title: Done, end: resolvd}\n",
    )
    .unwrap();
    let out = runbook(["show", "typo.yaml", "--format", "mermaid"])
        .current_dir(&dir)
        .expect_code(2);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "typo.yaml:6:34: error: step `done` ends with unknown outcome `resolvd`\n  |\n6 |   - {id: done, title: Done, end: resolvd}\n  |                                  ^^^^^^^\n  = help: did you mean `resolved`? an `end` step ends the run `resolved`, `escalated` or `failed`\n"
    );
}

#[test]
fn mermaid_ids_are_sanitized_distinct_and_never_keywords() {
    let dir = scratch("show-mermaid-ids");
    std::fs::write(
        dir.join("odd.yaml"),
        r#"version: 1
id: odd
title: Odd ids
rto: 5m
steps:
  - {id: a-b, title: 'Say "hi"', run: echo hi}
  - {id: a_b, title: Manual, manual: Wave.}
  - {id: end, title: Done, end: resolved}
cleanup:
  - {id: a-b, title: Again, run: echo again}
  - {id: cleanup, title: Last, run: echo last}
"#,
    )
    .unwrap();
    let out = runbook(["show", "odd.yaml", "--format", "mermaid"])
        .current_dir(&dir)
        .expect_code(0);
    assert_eq!(
        out.stdout,
        r#"flowchart TD
    a_b["Say #quot;hi#quot;"]
    a_b_2[/"Manual"/]
    end_(["Done<br/>resolved"])
    a_b --> a_b_2
    a_b_2 --> end_
    subgraph cleanup
        a_b_3["Again"]
        cleanup_["Last"]
        a_b_3 --> cleanup_
    end
    classDef resolved fill:#d3f9d8,stroke:#2b8a3e,color:#000
    class end_ resolved
"#
    );
}

#[test]
fn secret_defaults_are_never_shown() {
    let dir = scratch("show-secret");
    std::fs::write(
        dir.join("secret.yaml"),
        "version: 1\nid: secret\ntitle: Secret\nrto: 5m\ninputs:\n  token: {description: API token, secret: true, default: hunter2}\nsteps:\n  - {id: done, title: Done, end: resolved}\n",
    )
    .unwrap();
    for format in ["text", "md"] {
        let out = runbook(["show", "secret.yaml", "--format", format])
            .current_dir(&dir)
            .expect_code(0);
        assert!(!out.stdout.contains("hunter2"), "{}", out.stdout);
        assert!(out.stdout.contains("***"), "{}", out.stdout);
    }
}
