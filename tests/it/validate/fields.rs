//! Rules about fields: version, ids, kinds, durations, retry, regexes. Each test asserts the full rendered report a user sees
//! on stderr: `file:line:col: severity: message`, the snippet with its caret, and the hint.

use super::check;

/// `version` must be 1.
#[test]
fn version() {
    check(
        r##"version: 2
id: t
title: T
rto: 5m
steps:
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:1:10: error: unsupported format version `2`
  |
1 | version: 2
  |          ^
  = help: this version of runbook reads format version 1: write `version: 1`
checked 1 file: 1 error
"##,
    );
}

/// The runbook id is `[a-z0-9][a-z0-9-]*`; the hint suggests one.
#[test]
fn runbook_id() {
    check(
        r##"version: 1
id: DB_Restore
title: T
rto: 5m
steps:
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:2:5: error: runbook id `DB_Restore` is not valid
  |
2 | id: DB_Restore
  |     ^^^^^^^^^^
  = help: an id uses lowercase letters, digits and `-`, starting with a letter or digit, like `db-restore`
checked 1 file: 1 error
"##,
    );
}

/// A duplicate id points at the second one and names the first's line; cleanup ids share the namespace.
#[test]
fn duplicate_step_id() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - {id: stop, title: Stop, run: systemctl stop api}
  - {id: done, title: Done, end: resolved}
cleanup:
  - {id: stop, title: Start again, run: systemctl start api}
"##,
        2,
        r##"rb.yaml:9:10: error: duplicate step id `stop`
  |
9 |   - {id: stop, title: Start again, run: systemctl start api}
  |          ^^^^
  = help: step `stop` is already defined on line 6; step ids must be unique, cleanup steps included
checked 1 file: 1 error
"##,
    );
}

/// A step with no kind says which kinds exist.
#[test]
fn no_kind() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: stop
    title: Stop the API
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:6:9: error: step `stop` has no kind: add one of `run`, `manual`, `choose`, `call` or `end`
  |
6 |   - id: stop
  |         ^^^^
  = help: a step runs a command (`run`), asks a person (`manual`), decides (`choose`), runs another runbook (`call`) or ends the run (`end`)
checked 1 file: 1 error
"##,
    );
}

/// A step with two kinds points at the second, and does not also "fall off the end".
#[test]
fn two_kinds() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: stop
    title: Stop the API
    run: systemctl stop api
    end: resolved
"##,
        2,
        r##"rb.yaml:9:5: error: step `stop` has two kinds, `run` and `end`
  |
9 |     end: resolved
  |     ^^^
  = help: a step does exactly one thing: split it into several steps
checked 1 file: 1 error
"##,
    );
}

/// A bad duration is reported at the duration, with the parser's fix.
#[test]
fn bad_step_duration() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: stop
    title: Stop the API
    run: systemctl stop api
    timeout: 2min
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:9:14: error: invalid duration in the `timeout` of step `stop`: `2min` has unit `min`
  |
9 |     timeout: 2min
  |              ^^^^
  = help: use d, h, m, s or ms without spaces (like `1h30m`)
checked 1 file: 1 error
"##,
    );
}

/// The runbook `rto` must be more than zero.
#[test]
fn zero_rto() {
    check(
        r##"version: 1
id: t
title: T
rto: 0s
steps:
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:4:6: error: the runbook `rto` is zero
  |
4 | rto: 0s
  |      ^^
  = help: set the time the whole run should take, like `15m`
checked 1 file: 1 error
"##,
    );
}

/// `retry.attempts` must be at least 1; the model has no position for it, the key is found in the text.
#[test]
fn retry_zero() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: stop
    title: Stop the API
    run: systemctl stop api
    retry: {attempts: 0, delay: 5s}
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:9:13: error: step `stop` has `retry.attempts: 0`: it would never run
  |
9 |     retry: {attempts: 0, delay: 5s}
  |             ^^^^^^^^
  = help: `attempts` counts every try, the first included: write at least `attempts: 1`
checked 1 file: 1 error
"##,
    );
}

/// A regex that does not compile gives the regex crate's short reason, at the regex.
#[test]
fn bad_when_regex() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: check
    title: Check
    run: curl -s localhost/health
    capture: health
  - id: healthy
    title: Healthy?
    choose:
      - {label: Yes, goto: done, when: {var: health, matches: 'ok[0-9'}}
      - {label: No, goto: done}
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:13:63: error: invalid regex in the `when` of option `Yes` (step `healthy`): unclosed character class
   |
13 |       - {label: Yes, goto: done, when: {var: health, matches: 'ok[0-9'}}
   |                                                               ^^^^^^^^
  = help: the syntax is that of Rust's `regex` crate (https://docs.rs/regex/#syntax); escape literal characters with `\`
checked 1 file: 1 error
"##,
    );
}

/// Every unknown field of a file is reported in one run, not only serde's first one.
#[test]
fn every_unknown_field_at_once() {
    check(
        r##"version: 1
id: typos
titel: Three typos
rto: 5m
steps:
  - id: restart
    title: Restart the API
    run: systemctl restart api
    timout: 30s
    retry: {attempts: 2, dealy: 5s}
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:3:1: error: unknown field `titel`
  |
3 | titel: Three typos
  | ^^^^^
  = help: did you mean `title`?
rb.yaml:9:5: error: unknown field `timout`
  |
9 |     timout: 30s
  |     ^^^^^^
  = help: did you mean `timeout`?
rb.yaml:10:26: error: unknown field `dealy`
   |
10 |     retry: {attempts: 2, dealy: 5s}
   |                          ^^^^^
  = help: did you mean `delay`?
checked 1 file: 3 errors
"##,
    );
}
