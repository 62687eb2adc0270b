use super::*;

/// The lines of these events (the common members filled in), in order, without their times.
fn shown(events: &[&str]) -> Vec<String> {
    let mut screen = Screen::default();
    let mut out = Vec::new();
    for (seq, event) in events.iter().enumerate() {
        let json = format!(
            r#"{{"v":1,"seq":{seq},"ts":"2026-11-22T03:02:11.123Z","mono_ms":0,"run":"r","operator":"alice",{}}}"#,
            &event[1..event.len() - 1]
        );
        let line = Line::decode(json.as_bytes()).expect("an event");
        out.extend(
            screen
                .render(&line)
                .into_iter()
                .map(|l| l.split_once(' ').map(|(_, rest)| rest.to_string()).unwrap_or(l)),
        );
    }
    out
}

#[test]
fn notes_answers_and_commands_are_shown_with_their_control_characters_escaped() {
    let lines = shown(&[
        r#"{"event":"step presented","step":"s\u001b[2J","position":2,"total":5,"title":"T\u0007","kind":"run","host":"h"}"#,
        r#"{"event":"step started","step":"s\u001b[2J","host":"h","command":"echo a\nprintf '\u001b]52;c;x\u0007'"}"#,
        r#"{"event":"answer","question":"Q?","answer":"y\u001b[1A"}"#,
        r#"{"event":"note","text":"first\nsecond\u009b2J"}"#,
    ]);
    let text = lines.join("\n");
    assert!(!text.contains(['\x1b', '\x07', '\u{9b}']), "{text:?}");
    assert!(text.contains(r"[2/5] T\x07 (s\x1b[2J, on h)"), "{text}");
    assert!(text.contains(r"[2/5] s\x1b[2J: started on h"), "{text}");
    assert!(text.contains(r"│ printf '\x1b]52;c;x\x07'"), "{text}");
    assert!(text.contains(r"answer: Q? → y\x1b[1A"), "{text}");
    assert!(
        text.contains("note by alice: first\n") && text.contains(r"  second\u{9b}2J"),
        "{text}"
    );
}

#[test]
fn a_hand_off_an_escalation_and_an_event_of_a_newer_writer_are_said() {
    let lines = shown(&[
        r#"{"event":"run started","runbook":"db","title":"DB","mode":"incident","rto_ms":900000,"targets":{"db":"deploy@db-1"}}"#,
        r#"{"event":"run resumed","previous_operator":"bob","hand_off":true,"gap_ms":65000}"#,
        r#"{"event":"escalation due","after_ms":1200000,"to":"the DBA on call","elapsed_ms":1200000}"#,
        r#"{"event":"mirror lost","audit_host":"ssh://audit@logs/srv/runs","reason":"timeout"}"#,
        r#"{"event":"from a newer writer"}"#,
    ]);
    let text = lines.join("\n");
    assert!(text.contains("DB (db) · incident · RTO 15m"), "{text}");
    assert!(text.contains("target db: deploy@db-1"), "{text}");
    assert!(
        text.contains("run handed off, resumed by alice (from bob) after a gap of 1m5s"),
        "{text}"
    );
    assert!(
        text.contains("ESCALATION DUE: not resolved within 20m: call the DBA on call"),
        "{text}"
    );
    assert!(
        text.contains(
            "the audit host ssh://audit@logs/srv/runs is not taking the trail (timeout): the run goes on"
        ),
        "{text}"
    );
    assert!(text.contains("    from a newer writer"), "{text}");
}

#[test]
fn the_budget_counts_from_the_start_less_since_and_names_a_due_escalation() {
    let mut screen = Screen::default();
    let start = r#"{"v":1,"seq":0,"ts":"2026-11-22T03:00:00.000Z","mono_ms":0,"run":"r","operator":"a","event":"run started","rto_ms":600000,"since_offset_ms":60000}"#;
    screen.render(&Line::decode(start.as_bytes()).unwrap());
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    assert_eq!(
        screen.budget(at("2026-11-22T03:04:00Z")).unwrap(),
        "5m of the 10m RTO left"
    );
    assert_eq!(
        screen.budget(at("2026-11-22T03:10:30Z")).unwrap(),
        "RTO 10m exceeded by 1m30s"
    );
    let due = r#"{"v":1,"seq":1,"ts":"2026-11-22T03:10:00.000Z","mono_ms":0,"run":"r","operator":"a","event":"escalation due","after_ms":600000,"to":"ops"}"#;
    screen.render(&Line::decode(due.as_bytes()).unwrap());
    assert_eq!(
        screen.budget(at("2026-11-22T03:10:30Z")).unwrap(),
        "RTO 10m exceeded by 1m30s · escalation due 30s ago: call ops"
    );
}

#[test]
fn a_hand_off_names_who_where_and_the_note_escaped() {
    let lines = shown(&[
        r#"{"event":"handed off","step":"restore","note":"over to bob\u001b[2J"}"#,
        r#"{"event":"handed off"}"#,
    ]);
    let text = lines.join("\n");
    assert!(
        text.contains(
            r"HANDED OFF by alice at step restore (over to bob\x1b[2J): the run waits for `runbook resume`"
        ),
        "{text}"
    );
    assert!(
        text.contains("HANDED OFF by alice at a prompt: the run waits"),
        "{text}"
    );
}
