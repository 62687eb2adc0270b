//! Problems the YAML reader finds before any rule runs: a key written twice, an alias to no
//! anchor, an error inside a value an alias repeats. Worded for the person who wrote the file
//! (never the library's own hints to programmers) and never cut mid-sentence.

use super::check;
use crate::support::cmd::runbook;

/// Regression: the library's hint "set DuplicateKeyPolicy in Options" reached users.
#[test]
fn a_key_written_twice_names_the_first() {
    check(
        r##"version: 1
id: x
id: y
title: X
rto: 5m
steps:
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:3:1: error: key `id` appears twice in this mapping (first at line 2): remove one
  |
3 | id: y
  | ^^
checked 1 file: 1 error
"##,
    );
}

/// In a flow mapping both are on one line: the column tells them apart.
#[test]
fn a_key_written_twice_on_one_line_names_its_column() {
    check(
        r##"version: 1
id: x
title: X
rto: 5m
steps:
  - {id: done, title: Done, title: End, end: resolved}
"##,
        2,
        r##"rb.yaml:6:29: error: key `title` appears twice in this mapping (first at line 6, column 16): remove one
  |
6 |   - {id: done, title: Done, title: End, end: resolved}
  |                             ^^^^^
checked 1 file: 1 error
"##,
    );
}

#[test]
fn an_alias_to_no_anchor_is_named() {
    check(
        r##"version: 1
id: x
title: *nope
rto: 5m
steps:
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:3:8: error: alias `*nope` refers to no anchor: define `&nope` on an earlier value, or write the value out
  |
3 | title: *nope
  |        ^^^^^
checked 1 file: 1 error
"##,
    );
}

/// Regression: the message ended "invalid u32 (defined at line 2, column 8) (used": the
/// library's location suffixes were cut at " at line ".
#[test]
fn an_error_in_a_value_an_alias_repeats_is_whole_and_points_at_both() {
    check(
        r##"version: 1
id: &name x
title: X
rto: 5m
steps:
  - id: check
    title: Check
    run: "true"
    retry: {attempts: *name}
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:9:23: error: invalid number (in the value at line 2 that this alias repeats)
  |
9 |     retry: {attempts: *name}
  |                       ^^^^^
  = help: write a whole number, like `3`
checked 1 file: 1 error
"##,
    );
}

/// The inventory is YAML too, and worded the same way.
#[test]
fn an_inventory_with_a_key_written_twice_names_the_first() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.yaml"),
        "hosts:\n  db1: {ssh: ops@db1}\n  db1: {ssh: ops@db2}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rb.yaml"),
        "version: 1\nid: x\ntitle: X\nrto: 5m\nsteps:\n  - {id: done, title: Done, end: resolved}\n",
    )
    .unwrap();
    let out = runbook(["run", "--dry-run", "rb.yaml"])
        .current_dir(dir.path())
        .expect_code(2);
    assert_eq!(
        out.stderr,
        "runbook: error: inventory.yaml:3:3: the inventory does not parse: key `db1` appears twice in this mapping (first at line 2): remove one\n"
    );
}

/// Regression: `end: resolvd` was a parse error ("unknown variant") that hid every other
/// problem of the file, with no hint. It is now checked with the rest, with a did-you-mean.
#[test]
fn a_misspelt_outcome_is_reported_with_the_files_other_problems() {
    check(
        r##"version: 1
id: x
title: X
rto: 5m
steps:
  - id: check
    title: Check
    run: "true"
    timeout: 5
    next: fixd
  - id: fixed
    title: Fixed
    end: resolvd
"##,
        2,
        r##"rb.yaml:9:14: error: invalid duration in the `timeout` of step `check`: `5` has no unit
  |
9 |     timeout: 5
  |              ^
  = help: write `5s` or `5m`
rb.yaml:10:11: error: step `check` goes to unknown step `fixd`
   |
10 |     next: fixd
   |           ^^^^
  = help: did you mean `fixed`?
rb.yaml:13:10: error: step `fixed` ends with unknown outcome `resolvd`
   |
13 |     end: resolvd
   |          ^^^^^^^
  = help: did you mean `resolved`? an `end` step ends the run `resolved`, `escalated` or `failed`
checked 1 file: 3 errors
"##,
    );
}

/// An outcome nothing like one lists the three.
#[test]
fn an_unknown_outcome_lists_the_outcomes() {
    check(
        r##"version: 1
id: x
title: X
rto: 5m
steps:
  - {id: done, title: Done, end: ok}
"##,
        2,
        r##"rb.yaml:6:34: error: step `done` ends with unknown outcome `ok`
  |
6 |   - {id: done, title: Done, end: ok}
  |                                  ^^
  = help: an `end` step ends the run `resolved`, `escalated` or `failed`
checked 1 file: 1 error
"##,
    );
}

/// `title: Restart: the app`: YAML's own words say nothing of quotes; the hint does.
#[test]
fn a_colon_in_an_unquoted_value_says_to_quote_it() {
    check(
        r##"version: 1
id: x
title: X
rto: 5m
steps:
  - id: restart
    title: Restart: the app
    run: systemctl restart app
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:7:19: error: mapping values are not allowed in this context
  |
7 |     title: Restart: the app
  |                   ^
  = help: a `: ` inside a value starts a mapping in YAML; quote it: title: "Restart: the app"
checked 1 file: 1 error
"##,
    );
    // In a flow mapping, the value ends at the next entry.
    check(
        r##"version: 1
id: x
title: X
rto: 5m
steps:
  - {id: done, title: Done: all good, end: resolved}
"##,
        2,
        r##"rb.yaml:6:27: error: while parsing a flow mapping, did not find expected ',' or '}'
  |
6 |   - {id: done, title: Done: all good, end: resolved}
  |                           ^
  = help: a `: ` inside a value starts a mapping in YAML; quote it: title: "Done: all good"
checked 1 file: 1 error
"##,
    );
}

/// A key indented deeper than the one above is read as more of that value.
#[test]
fn a_key_indented_deeper_than_the_line_above_says_where_it_belongs() {
    check(
        r##"version: 1
id: x
title: X
rto: 5m
steps:
  - id: restart
    run: systemctl restart app
      title: Restart
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:8:12: error: mapping values are not allowed in this context
  |
8 |       title: Restart
  |            ^
  = help: `title:` is indented deeper than `run:` on line 7, so YAML reads it as more of that value: indent `title:` like `run:` (column 5)
checked 1 file: 1 error
"##,
    );
}

/// A key indented less than its mapping leaves it: serde says the field is missing, the hint
/// says where it is.
#[test]
fn a_missing_field_written_at_another_indentation_is_pointed_at() {
    check(
        r##"version: 1
id: x
title: X
rto: 5m
steps:
  - id: restart
    run: systemctl restart app
   title: Restart
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:7:5: error: missing field `title`
  |
7 |     run: systemctl restart app
  |     ^
  = help: `title:` on line 8 is at column 4, but the keys of this mapping are at column 5: indent it to line up with them
checked 1 file: 1 error
"##,
    );
    // Nowhere in the file: the plain advice.
    check(
        r##"version: 1
id: x
title: X
rto: 5m
steps:
  - id: restart
    run: systemctl restart app
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:7:5: error: missing field `title`
  |
7 |     run: systemctl restart app
  |     ^
  = help: add `title:` to this mapping; see docs/format.md
checked 1 file: 1 error
"##,
    );
}

/// Values of the wrong type say what to write (serde's words named Rust types: "invalid u32",
/// "data did not match any variant of untagged enum ExitCodes").
#[test]
fn a_value_of_the_wrong_type_says_what_to_write() {
    let file = |line: &str| {
        format!(
            "version: 1\nid: x\ntitle: X\nrto: 5m\nsteps:\n  - id: a\n    title: A\n    run: \"true\"\n    {line}\n  - {{id: done, title: Done, end: resolved}}\n"
        )
    };
    check(
        &file("idempotent: maybe"),
        2,
        "rb.yaml:9:17: error: invalid boolean\n  |\n9 |     idempotent: maybe\n  |                 ^^^^^\n  = help: write `true` or `false`\nchecked 1 file: 1 error\n",
    );
    check(
        &file("expect: {exit: ok}"),
        2,
        "rb.yaml:9:20: error: invalid exit codes\n  |\n9 |     expect: {exit: ok}\n  |                    ^^\n  = help: write an exit code or a list of them, like `exit: 0` or `exit: [0, 22]`\nchecked 1 file: 1 error\n",
    );
    check(
        &file("retry: {attempts: two}"),
        2,
        "rb.yaml:9:23: error: invalid number\n  |\n9 |     retry: {attempts: two}\n  |                       ^^^\n  = help: write a whole number, like `3`\nchecked 1 file: 1 error\n",
    );
}

/// A key indented under the key above it lands in that key's mapping: the hint says whose
/// field it is, and where it goes (unless the mapping above has it already).
#[test]
fn a_field_indented_into_the_mapping_below_it_says_where_it_belongs() {
    check(
        r##"version: 1
id: x
title: X
rto: 5m
steps:
  - id: restart
    run: systemctl restart app
    retry:
      attempts: 2
      title: Restart
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:10:7: error: unknown field `title`
   |
10 |       title: Restart
   |       ^^^^^
  = help: `title` is a field of the mapping above, not of `retry`: indent it like `retry` (column 5)
checked 1 file: 1 error
"##,
    );
}

/// Regression: `run` on a file with one error said "(1 errors)".
#[test]
fn a_run_of_a_file_with_one_error_counts_it_in_the_singular() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rb.yaml"),
        "version: 1\nid: x\ntitle: X\nrto: 5m\nsteps:\n  - {id: done, title: Done, end: resolvd}\n",
    )
    .unwrap();
    let out = runbook(["run", "--dry-run", "rb.yaml"])
        .current_dir(dir.path())
        .expect_code(2);
    assert!(
        out.stderr
            .ends_with("runbook: error: rb.yaml does not validate (1 error): nothing was run\n"),
        "{}",
        out.stderr
    );
}
