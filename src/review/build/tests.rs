//! The review's arithmetic on small hand-made trails.

use serde_json::json;

use super::*;

fn event(seq: u64, ts: &str, mono: u64, event: &str, extra: Value) -> Value {
    let mut v = json!({"v": 1, "seq": seq, "ts": ts, "mono_ms": mono, "run": "r", "event": event, "operator": "alice"});
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v
}

/// The wall clock stepped 1 h forward between two events 2 s apart: a clock jump, and the
/// durations still come from `mono_ms`.
#[test]
fn a_wall_clock_jump_is_reported_and_does_not_change_durations() {
    let events = vec![
        event(
            0,
            "2026-11-22T03:00:00.000Z",
            0,
            "run started",
            json!({"runbook": "x", "mode": "drill", "rto_ms": 60000, "since_offset_ms": 1000}),
        ),
        event(
            1,
            "2026-11-22T03:00:00.000Z",
            0,
            "step presented",
            json!({"step": "a", "target_ms": 1000}),
        ),
        event(
            2,
            "2026-11-22T03:00:01.000Z",
            1000,
            "step started",
            json!({"step": "a", "attempt": 1}),
        ),
        event(
            3,
            "2026-11-22T04:00:03.000Z",
            3000,
            "step finished",
            json!({"step": "a", "attempt": 1, "outcome": "ok", "duration_ms": 2000}),
        ),
    ];
    let r = from_events(events, "x.jsonl", Integrity::Incomplete { torn_tail: false });
    assert_eq!(r.clock_jumps.len(), 1);
    assert_eq!(r.clock_jumps[0].seq, 3);
    assert_eq!(r.clock_jumps[0].skew_ms, 3_600_000);
    let a = &r.steps[0];
    // On the RTO clock (started 1 s before launch by --since).
    assert_eq!(
        (a.start_ms, a.wait_ms, a.exec_ms, a.took_ms),
        (1000, 1000, 2000, 3000)
    );
    assert_eq!(a.over_ms, Some(2000));
    assert_eq!(r.total_ms, 4000);
    assert_eq!(r.time.gaps_ms, 1000, "the --since second before launch");
    assert_eq!(r.verdict, "INCOMPLETE");
    assert_eq!(r.clock_start.unwrap().to_rfc3339(), "2026-11-22T02:59:59+00:00");
}

/// Two hosts running the same attempt at once: exec is the time anything ran, not the sum,
/// and one failing host makes the step fail.
#[test]
fn parallel_hosts_count_once_and_the_worst_outcome_wins() {
    let events = vec![
        event(
            0,
            "2026-11-22T03:00:00.000Z",
            0,
            "step presented",
            json!({"step": "a"}),
        ),
        event(
            1,
            "2026-11-22T03:00:00.000Z",
            0,
            "step started",
            json!({"step": "a", "host": "web1", "attempt": 1}),
        ),
        event(
            2,
            "2026-11-22T03:00:00.000Z",
            0,
            "step started",
            json!({"step": "a", "host": "web2", "attempt": 1}),
        ),
        event(
            3,
            "2026-11-22T03:00:01.000Z",
            1000,
            "step finished",
            json!({"step": "a", "host": "web2", "attempt": 1, "outcome": "failed", "exit": 2}),
        ),
        event(
            4,
            "2026-11-22T03:00:02.000Z",
            2000,
            "step finished",
            json!({"step": "a", "host": "web1", "attempt": 1, "outcome": "ok", "exit": 0}),
        ),
    ];
    let r = from_events(events, "x.jsonl", Integrity::Incomplete { torn_tail: false });
    let a = &r.steps[0];
    assert_eq!(a.exec_ms, 2000);
    assert_eq!((a.outcome.as_deref(), a.exit), (Some("failed"), Some(2)));
}

/// A `call` step's visit ends when its runbook's first step is presented; its attempt,
/// finished 41 s later, is drawn and counted within the visit, as the table shows it.
#[test]
fn a_call_keeps_its_attempt_within_its_visit() {
    let t = "2026-11-22T03:00:00.000Z";
    let events = vec![
        event(
            0,
            t,
            0,
            "step presented",
            json!({"step": "call-it", "kind": "call"}),
        ),
        event(1, t, 1, "step started", json!({"step": "call-it", "attempt": 1})),
        event(2, t, 2, "step presented", json!({"step": "inner", "kind": "run"})),
        event(
            3,
            t,
            41_000,
            "step presented",
            json!({"step": "back", "kind": "run"}),
        ),
        event(
            4,
            t,
            41_001,
            "step finished",
            json!({"step": "call-it", "attempt": 1, "outcome": "ok", "exit": 0, "duration_ms": 41_000}),
        ),
    ];
    let r = from_events(events, "x.jsonl", Integrity::Incomplete { torn_tail: false });
    let call = &r.steps[0];
    assert_eq!(call.took_ms, 2);
    assert_eq!(call.outcome.as_deref(), Some("ok"));
    let attempt = &call.attempts[0];
    assert!(
        attempt.start_ms + attempt.exec_ms <= call.start_ms + call.took_ms,
        "{attempt:?} past the visit's end ({} ms)",
        call.took_ms
    );
}

/// A run's kind comes from `unattended` of its start and every resume: a resume by a
/// person makes an unattended start interactive; a trail without the field is unknown.
#[test]
fn the_kind_of_a_run_counts_every_walk_of_it() {
    let start = |unattended: Option<bool>| {
        let mut extra = json!({"runbook": "x", "mode": "drill", "rto_ms": 60000});
        if let Some(u) = unattended {
            extra["unattended"] = u.into();
        }
        event(0, "2026-11-22T03:00:00.000Z", 0, "run started", extra)
    };
    let resumed = |unattended: bool| {
        event(
            1,
            "2026-11-22T03:10:00.000Z",
            0,
            "run resumed",
            json!({"unattended": unattended}),
        )
    };
    let kind =
        |events: Vec<Value>| from_events(events, "x.jsonl", Integrity::Incomplete { torn_tail: false }).kind;
    assert_eq!(kind(vec![start(Some(true))]), "unattended");
    assert_eq!(kind(vec![start(Some(false))]), "interactive");
    assert_eq!(kind(vec![start(Some(true)), resumed(true)]), "unattended");
    assert_eq!(kind(vec![start(Some(true)), resumed(false)]), "interactive");
    assert_eq!(kind(vec![start(None)]), "unknown");
    assert_eq!(kind(vec![start(None), resumed(true)]), "unknown");
}
