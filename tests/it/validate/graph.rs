//! Rules about the step graph and cleanup, and the two warnings. Each test asserts the full rendered report a user sees
//! on stderr: `file:line:col: severity: message`, the snippet with its caret, and the hint.

use super::check;

/// Cleanup steps have no `next` and are `run` or `manual` only.
#[test]
fn cleanup_rules() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - {id: done, title: Done, end: resolved}
cleanup:
  - id: restart
    title: Start the API again
    run: systemctl start api
    next: check
  - id: check
    title: Is it up?
    choose:
      - {label: Yes, goto: done}
"##,
        2,
        r##"rb.yaml:11:5: error: cleanup step `restart` cannot have `next`
   |
11 |     next: check
   |     ^^^^
  = help: cleanup steps run in list order, always, whatever happened: remove `next`
rb.yaml:14:5: error: cleanup step `check` cannot be a `choose` step
   |
14 |     choose:
   |     ^^^^^^
  = help: cleanup steps run in list order, always: there is nothing to decide; use `run` or `manual`
checked 1 file: 2 errors
"##,
    );
}

/// A step nothing leads to is unreachable.
#[test]
fn unreachable() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - {id: stop, title: Stop, run: systemctl stop api, next: done}
  - {id: forgotten, title: Clear the cache, run: redis-cli flushall}
  - {id: done, title: Done, end: resolved}
"##,
        2,
        r##"rb.yaml:7:10: error: step `forgotten` is unreachable
  |
7 |   - {id: forgotten, title: Clear the cache, run: redis-cli flushall}
  |          ^^^^^^^^^
  = help: nothing leads to it: the run starts at `stop` and follows `next` (or the next step in the list), `on_failure`, `choose` and the guards' `goto`; link it or remove it
checked 1 file: 1 error
"##,
    );
}

/// A loop with no way out to an `end` is reported once, at its first step.
#[test]
fn loop_without_exit() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: check
    title: Check the API
    run: curl -f localhost/health
    next: wait
    on_failure: wait
  - id: wait
    title: Wait
    run: sleep 5
    next: check
"##,
        2,
        r##"rb.yaml:6:9: error: steps `check`, `wait` loop with no way to reach an `end` step
  |
6 |   - id: check
  |         ^^^^^
  = help: give the loop an exit: an `on_failure`, a `choose` option or a `next` that leads to an `end` step
checked 1 file: 1 error
"##,
    );
}

/// The last step must end the run or go somewhere.
#[test]
fn falls_off() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - id: stop
    title: Stop
    run: systemctl stop api
  - id: start
    title: Start
    run: systemctl start api
"##,
        2,
        r##"rb.yaml:9:9: error: the run falls off the end after step `start`: add `next:` or an `end` step
  |
9 |   - id: start
  |         ^^^^^
  = help: the last step of `steps` must end the run (`end: resolved`) or go on with `next`
checked 1 file: 1 error
"##,
    );
}

/// Warning: the longest path (each step counted once) exceeds the runbook `rto`; exit 0.
#[test]
fn rto_budget() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
steps:
  - {id: stop, title: Stop, run: systemctl stop api, rto: 1m}
  - {id: restore, title: Restore, run: ./restore.sh, rto: 4m, on_failure: retry-restore}
  - {id: check, title: Check, run: ./check.sh, rto: 30s}
  - {id: done, title: Done, end: resolved}
  - {id: retry-restore, title: Restore again, run: ./restore.sh --slow, rto: 3m, next: check}
"##,
        0,
        r##"rb.yaml:4:6: warning: the longest path takes 8m30s of step targets, over the runbook `rto` of 5m
  |
4 | rto: 5m
  |      ^^
  = help: path: `stop` (1m) → `restore` (4m) → `retry-restore` (3m) → `check` (30s) → `done`; raise the runbook `rto` or tighten the steps' `rto`
checked 1 file: 1 warning
"##,
    );
}

/// Warning: a destructive-looking command without `confirm`, underlined in a block scalar too.
#[test]
fn destructive() {
    check(
        r##"version: 1
id: t
title: T
rto: 5m
inputs:
  db_name: {default: app}
steps:
  - id: drop
    title: Drop and recreate
    run: |
      psql -c 'select 1'
      psql -c "DROP DATABASE \"$db_name\";"
  - {id: clean, title: Clean, run: rm -rf /var/lib/app/cache}
  - {id: safe, title: Safe, run: rm -rf /tmp/x, confirm: true}
  - {id: done, title: Done, end: resolved}
"##,
        0,
        r##"rb.yaml:12:16: warning: step `drop` runs a destructive-looking command (`DROP DATABASE`) without `confirm`
   |
12 |       psql -c "DROP DATABASE \"$db_name\";"
   |                ^^^^^^^^^^^^^
  = help: add `confirm: true` (a yes/no question) or `confirm: PHRASE` (the operator types it), so it runs only when meant
rb.yaml:13:36: warning: step `clean` runs a destructive-looking command (`rm -rf`) without `confirm`
   |
13 |   - {id: clean, title: Clean, run: rm -rf /var/lib/app/cache}
   |                                    ^^^^^^
  = help: add `confirm: true` (a yes/no question) or `confirm: PHRASE` (the operator types it), so it runs only when meant
checked 1 file: 2 warnings
"##,
    );
}
