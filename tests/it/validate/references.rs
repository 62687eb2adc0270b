//! Rules about names: steps, targets, variables, runbooks, and what each kind of step may carry. Each test asserts the full rendered report a user sees
//! on stderr: `file:line:col: severity: message`, the snippet with its caret, and the hint.

use super::check;

/// `next` naming an unknown step suggests the closest id.
#[test]
fn dangling_next() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: drain
    title: Drain the queue
    run: ./drain.sh
    next: restrat
  - id: restart
    title: Restart
    run: systemctl restart api
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:9:11: error: step `drain` goes to unknown step `restrat`
  |
9 |     next: restrat
  |           ^^^^^^^
  = help: did you mean `restart`?
checked 1 file: 1 error
"##,
    );
}

/// `on_failure` cannot go to a cleanup step, and the hint says why.
#[test]
fn on_failure_to_cleanup() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: stop
    title: Stop
    run: systemctl stop api
    on_failure: start-again
  - {id: done, title: Done, end: resolved}
cleanup:
  - {id: start-again, title: Start again, run: systemctl start api}
"##,
        2,
        r##"rb.yaml:9:17: error: step `stop` goes to unknown step `start-again` on failure
  |
9 |     on_failure: start-again
  |                 ^^^^^^^^^^^
  = help: `start-again` is a cleanup step: cleanup steps run after the run ends and cannot be gone to
checked 1 file: 1 error
"##,
    );
}

/// A `choose` option's `goto` must name a step.
#[test]
fn unknown_goto() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: decide
    title: Is it fixed?
    choose:
      - {label: Fixed, goto: don}
      - {label: Not fixed, goto: escalate}
  - {id: escalate, title: Escalate, end: escalated}
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:9:30: error: option `Fixed` of step `decide` goes to unknown step `don`
  |
9 |       - {label: Fixed, goto: don}
  |                              ^^^
  = help: did you mean `done`?
checked 1 file: 1 error
"##,
    );
}

/// `target` must be a role of `targets` or `local`.
#[test]
fn unknown_target() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
targets:
  db: {description: PostgreSQL host}
  web: {description: Web servers}
steps:
  - id: stop
    title: Stop
    target: dbb
    run: systemctl stop api
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:11:13: error: step `stop` acts on unknown target `dbb`
   |
11 |     target: dbb
   |             ^^^
  = help: did you mean `db`?
checked 1 file: 1 error
"##,
    );
}

/// `when.var` must name an input, a capture or a built-in.
#[test]
fn unknown_when_var() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
inputs:
  region: {default: eu}
steps:
  - id: decide
    title: Which region?
    choose:
      - {label: Europe, goto: done, when: {var: regoin, equals: eu}}
      - {label: Elsewhere, goto: done}
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:11:49: error: option `Europe` of step `decide` tests unknown variable `regoin`
   |
11 |       - {label: Europe, goto: done, when: {var: regoin, equals: eu}}
   |                                                 ^^^^^^
  = help: did you mean `region`?
checked 1 file: 1 error
"##,
    );
}

/// `{{ name }}` in display text (title, message, ...) must name a variable, with or without spaces; the error points at the name.
#[test]
fn unknown_placeholder() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
inputs:
  db_name: {default: app}
steps:
  - id: restore
    title: Restore {{ db_nme }}
    run: pg_restore -d "$db_name" latest.dump
  - {id: done, title: Done, end: resolved, message: "{{db_name}} restored by {{ operater }}"}
"##,
        2,
        r##"rb.yaml:9:23: error: step `restore` shows unknown variable `db_nme`
  |
9 |     title: Restore {{ db_nme }}
  |                       ^^^^^^
  = help: did you mean `db_name`?
rb.yaml:11:81: error: step `done` shows unknown variable `operater`
   |
11 |   - {id: done, title: Done, end: resolved, message: "{{db_name}} restored by {{ operater }}"}
   |                                                                                 ^^^^^^^^
  = help: did you mean `operator`?
checked 1 file: 2 errors
"##,
    );
}

/// `call` must name a runbook of the catalog.
#[test]
fn unknown_call() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: roll
    title: Roll back
    call: rollbak
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:8:11: error: step `roll` calls unknown runbook `rollbak`
  |
8 |     call: rollbak
  |           ^^^^^^^
  = help: no runbook has this id in the catalog (`--dir`, RUNBOOK_PATH, ./runbooks); `runbook list` shows it
checked 1 file: 1 error
"##,
    );
}

/// A `when` has exactly one of `equals` and `matches`.
#[test]
fn when_both() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
inputs:
  region: {default: eu}
steps:
  - id: decide
    title: Which region?
    choose:
      - {label: Europe, goto: done, when: {var: region, equals: eu, matches: '^eu'}}
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:11:49: error: the `when` of option `Europe` (step `decide`) has both `equals` and `matches`
   |
11 |       - {label: Europe, goto: done, when: {var: region, equals: eu, matches: '^eu'}}
   |                                                 ^^^^^^
  = help: a condition is `{var: NAME, equals: VALUE}` or `{var: NAME, matches: REGEX}`
checked 1 file: 1 error
"##,
    );
}

/// A `choose` needs an option (and the steps after it are not also called unreachable).
#[test]
fn choose_empty() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: decide
    title: Which way?
    choose: []
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:8:13: error: decision step `decide` has no options
  |
8 |     choose: []
  |             ^
  = help: add at least one option: `- {label: ..., goto: STEP}`
checked 1 file: 1 error
"##,
    );
}

/// `message` belongs to `end` steps.
#[test]
fn message_not_end() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: stop
    title: Stop
    run: systemctl stop api
    message: The API is stopped
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:9:5: error: step `stop` has a `message` but is not an `end` step
  |
9 |     message: The API is stopped
  |     ^^^^^^^
  = help: `message` is shown when the run ends at an `end` step; use `notes` to show text before a step
checked 1 file: 1 error
"##,
    );
}

/// An `end` step has no `next`; the step only its `next` led to is unreachable.
#[test]
fn end_with_next() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: done
    title: Done
    end: resolved
    next: again
  - {id: again, title: Again, end: resolved}
"##,
        2,
        r##"rb.yaml:9:5: error: `end` step `done` cannot have `next`
  |
9 |     next: again
  |     ^^^^
  = help: an `end` step ends the run: nothing runs or comes after it; remove `next`
rb.yaml:10:10: error: step `again` is unreachable
   |
10 |   - {id: again, title: Again, end: resolved}
   |          ^^^^^
  = help: nothing leads to it: the run starts at `done` and follows `next` (or the next step in the list), `on_failure`, `choose` and the guards' `goto`; link it or remove it
checked 1 file: 2 errors
"##,
    );
}

/// A capture must not shadow an input.
#[test]
fn capture_shadows_input() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
inputs:
  db_name: {default: app}
steps:
  - id: find
    title: Find the database
    run: psql -tA -c 'select current_database()'
    capture: db_name
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:11:14: error: capture `db_name` of step `find` shadows the input `db_name`
   |
11 |     capture: db_name
   |              ^^^^^^^
  = help: rename the capture: the input keeps the value the operator gave, a capture would silently replace it
checked 1 file: 1 error
"##,
    );
}
