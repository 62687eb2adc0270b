//! The typed trail against the bytes: every variant comes back from its own line as it went
//! in, and every line of the golden trail reads as a known record and writes back the same.

use super::*;

fn round_trip(record: &Record) {
    let first = serde_json::to_string(record).unwrap();
    let back: Record = serde_json::from_str(&first).unwrap();
    assert_eq!(&back, record, "{first}");
    assert_eq!(serde_json::to_string(&back).unwrap(), first);
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn output(tail: Option<&str>) -> Output {
    Output {
        path: "r/s-1.out".into(),
        size: 3,
        sha256: "ab".repeat(32),
        tail: tail.map(str::to_string),
    }
}

/// One of each variant, with every optional member both set and left out.
fn samples() -> Vec<Record> {
    let account = Some(Account {
        uid: 1000,
        login: some("alice"),
    });
    let holder = crate::lock::Holder {
        run: "r0".into(),
        operator: "bob".into(),
        pid: 42,
        machine: "m".into(),
        since: "2026-12-07T00:00:00Z".into(),
        started: Some(7),
        heartbeat: None,
    };
    vec![
        Record::RunStarted(RunStarted {
            runbook: "rb".into(),
            title: "T \"quoted\" é".into(),
            file: "/f.yaml".into(),
            file_sha256: "00".repeat(32),
            mode: "drill".into(),
            targets: [("web".to_string(), "h1".to_string())].into_iter().collect(),
            inputs: [("k".to_string(), Value::from("***"))].into_iter().collect(),
            rto_ms: 60_000,
            since_offset_ms: 5,
            unattended: Some(false),
            start_at: some("s"),
            allow_prod: true,
            no_shell: true,
            accept_new_host_keys: true,
            account: account.clone(),
            machine: some("vm"),
            signing_key: some("SHA256:x"),
            unsigned: None,
            alert: Some(serde_json::json!({"id": 1, "z": [1, 2]})),
        }),
        Record::RunStarted(RunStarted {
            unattended: Some(true),
            account: Some(Account { uid: 0, login: None }),
            unsigned: some("no key"),
            ..Default::default()
        }),
        Record::LockTaken(Lock {
            lock: "/l".into(),
            how: "stale".into(),
            previous: Some(holder),
            stopped: vec![1, 2],
        }),
        Record::LockBroken(Lock {
            lock: "/l".into(),
            how: "broken".into(),
            ..Default::default()
        }),
        Record::LeaseShared(LeaseShared {
            lock: "/l".into(),
            with: "r1".into(),
        }),
        Record::RunResumed(RunResumed {
            previous_operator: "bob".into(),
            hand_off: true,
            gap_ms: 9,
            from: "s".into(),
            unattended: Some(true),
            account,
            machine: some("vm"),
            signing_key: None,
            unsigned: some("why"),
            signature_error: some("agent gone"),
        }),
        Record::TargetConnected(TargetConnected {
            role: "web".into(),
            host_key: some("k"),
            client_key: some("c"),
            host_key_added: some("a"),
            reconnected: true,
        }),
        Record::TargetConnected(TargetConnected::default()),
        Record::StepPresented(StepPresented {
            position: Some(1),
            total: Some(2),
            title: "t".into(),
            kind: "run".into(),
            target_ms: Some(5),
        }),
        Record::Answer(Answer {
            question: "q?".into(),
            answer: "y".into(),
        }),
        Record::Note(Note { text: "n\nl".into() }),
        Record::Edit(Edit {
            before: "a".into(),
            after: "b".into(),
        }),
        Record::StepStarted(StepStarted {
            command: "echo \\ \u{1}".into(),
            attempt: Some(2),
            target_ms: Some(1),
            timeout_ms: Some(2),
            output_file: some("r/s-2.out"),
            secrets: vec!["tok".into()],
            declassify: true,
            fleet: some("web"),
        }),
        Record::StepStarted(StepStarted {
            attempt: Some(1),
            ..Default::default()
        }),
        Record::RemoteProcess(RemoteProcess {
            attempt: 1,
            pgid: Some(-7),
        }),
        Record::RemoteGroupChecked(RemoteGroupChecked {
            pgid: 7,
            alive: true,
            stopped: false,
        }),
        Record::ShellOpened(ShellOpened {
            shell: 1,
            from: "prompt".into(),
            cols: 80,
            rows: 24,
            output_file: "r/shell-1.cast".into(),
        }),
        Record::ShellClosed(ShellClosed {
            shell: 1,
            duration_ms: Some(3),
            cols: 80,
            rows: 24,
            resizes: 0,
            exit: Some(0),
            reason: some("x"),
            output: Some(output(None)),
        }),
        Record::Hangup(Hangup {
            reason: "SIGHUP".into(),
        }),
        Record::Deviation(Deviation {
            kind: "skipped".into(),
            allowed: false,
            detail: some("d"),
        }),
        Record::WalkEnded(WalkEnded {
            outcome: "resolved".into(),
            message: None,
        }),
        Record::StepFinished(StepFinished {
            outcome: some("ok"),
            exit: Some(-1),
            attempt: Some(1),
            duration_ms: Some(4),
            target_ms: Some(3),
            over_target: Some(true),
            reason: some("r"),
            capture: Some(Capture {
                name: "n".into(),
                value: "v".into(),
            }),
            output: Some(output(Some("tail\n"))),
            fleet: some("web"),
        }),
        Record::ApprovalRequested(ApprovalRequested {
            request: "req".into(),
            request_sha256: "ff".into(),
            quorum: Some(2),
            timeout_ms: Some(1),
        }),
        Record::Approval(Approval {
            principal: some("p"),
            key: some("k"),
            decision: "deny".into(),
            reason: some("no"),
            file: "f".into(),
        }),
        Record::ApprovalRefused(ApprovalRefused {
            file: "f".into(),
            why: some("w"),
        }),
        Record::FleetFinished(FleetFinished {
            outcome: "failed".into(),
            attempt: 1,
            duration_ms: 2,
            target_ms: None,
            hosts_ok: vec!["a".into()],
            hosts_failed: vec![FailedHost {
                host: "b".into(),
                outcome: "failed".into(),
            }],
            hosts_not_started: vec![],
            host_ms: [("b".to_string(), 3)].into_iter().collect(),
        }),
        Record::Decision(Decision {
            label: "l".into(),
            goto: "g".into(),
        }),
        Record::Notification(Notification {
            kind: "dev.runbook.step.failed".into(),
            id: "r-1".into(),
            subject: some("s"),
            channel: "https://x".into(),
            format: "pagerduty".into(),
            dedup_key: some("r"),
            event_action: some("trigger"),
            outcome: "failed".into(),
            attempts: 2,
            status: Some(500),
            error: some("e"),
            reason: some("r"),
            tries: vec![
                Try {
                    status: Some(500),
                    error: None,
                    ms: 1,
                },
                Try {
                    status: None,
                    error: some("timeout"),
                    ms: 2,
                },
            ],
            took_ms: 3,
            at: "2026-12-07T00:00:00.000Z".into(),
        }),
        Record::EscalationDue(EscalationDue {
            after_ms: 1,
            to: "ops".into(),
            elapsed_ms: 2,
            at: "t".into(),
        }),
        Record::Recovery(Recovery {
            torn_line: 3,
            bytes: 10,
            sha256: "aa".into(),
            saved_to: "r/torn-line-3.bin".into(),
        }),
        Record::OutputRecovered(OutputRecovered {
            attempt: Some(1),
            output: output(None),
        }),
        Record::Checkpoint(Checkpoint {
            events: 5,
            signature_error: None,
        }),
        Record::RunFinished(RunFinished {
            outcome: some("resolved"),
            message: some("m"),
            duration_ms: Some(1),
            rto_ms: Some(2),
            within_rto: Some(true),
            verdict: Some(Verdict {
                pass: true,
                reason: "ok".into(),
            }),
            over_target: vec![OverTarget {
                step: "s".into(),
                duration_ms: 2,
                target_ms: 1,
            }],
            deviations: vec![SealDeviation {
                step: "s".into(),
                kind: "skipped".into(),
                allowed: true,
                detail: None,
            }],
            events: 9,
            head: "00".repeat(32),
            signature_error: some("e"),
        }),
        Record::HandedOff(HandedOff { note: some("n") }),
        Record::MirrorLost(MirrorLost {
            audit_host: "ssh://audit@logs:2222/srv/runs".into(),
            reason: "the connection ended".into(),
        }),
        Record::MirrorCaughtUp(MirrorCaughtUp {
            audit_host: "ssh://audit@logs:2222/srv/runs".into(),
            bytes: 1234,
            files: 2,
        }),
        Record::GuardFailing(Guard {
            guard: "api-health".into(),
            failures: 1,
            reason: some("exit 7"),
            goto: "rollback".into(),
        }),
        Record::GuardTripped(Guard {
            guard: "api-health".into(),
            failures: 3,
            reason: None,
            goto: "rollback".into(),
        }),
        Record::GuardRecovered(Guard::default()),
        Record::AlertResolved(AlertResolved {
            fingerprint: "f00d".into(),
        }),
    ]
}

#[test]
fn every_variant_comes_back_byte_for_byte() {
    let samples = samples();
    for record in &samples {
        round_trip(record);
        // As the writer splices it: the tag first, then the record's own members.
        let json = serde_json::to_string(record).unwrap();
        let tag = format!("{{\"event\":{}", serde_json::to_string(record.name()).unwrap());
        assert_eq!(format!("{tag}{}}}", members(record).unwrap()), json);
        // And as a reader gets it, from a whole line, common members first.
        let line = format!(
            "{{\"v\":1,\"seq\":0,\"ts\":\"t\",\"mono_ms\":0,\"run\":\"r\",\"event\":{},\"operator\":\"o\"{},\"prev\":\"p\",\"hash\":\"h\"}}",
            serde_json::to_string(record.name()).unwrap(),
            members(record).unwrap()
        );
        assert_eq!(&Line::decode(line.as_bytes()).unwrap().record, record, "{line}");
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(&Line::from_value(&value).unwrap().record, record, "{line}");
    }
    for name in Record::NAMES {
        assert!(samples.iter().any(|r| r.name() == *name), "no sample of `{name}`");
    }
}

#[test]
fn an_unknown_event_reads_as_unknown_and_keeps_its_common_members() {
    let line = br#"{"v":1,"seq":4,"ts":"t","mono_ms":9,"run":"r","event":"from the future","operator":"o","step":"s","x":1,"prev":"p","hash":"h"}"#;
    let line = Line::decode(line).unwrap();
    assert_eq!(line.record, Record::Unknown);
    assert_eq!(
        (
            line.common.seq,
            line.common.step.as_deref(),
            line.common.event.as_str()
        ),
        (4, Some("s"), "from the future")
    );
    // A known event whose member has another type (a newer writer's) keeps its name.
    let odd = br#"{"seq":5,"ts":"t","mono_ms":9,"event":"note","text":{"rich":true}}"#;
    let odd = Line::decode(odd).unwrap();
    assert_eq!((odd.common.seq, odd.record), (5, Record::Note(Note::default())));
}

/// Every line of the golden trail reads as the record of its name, and that record writes
/// back exactly the members the line has between its common ones.
#[test]
fn the_golden_trail_reads_as_known_records() {
    let golden = include_str!("../../../tests/data/golden/20261207T000515Z-local-drill-c793.jsonl");
    for (n, text) in golden.lines().enumerate() {
        let line = Line::decode(text.as_bytes()).unwrap();
        assert_ne!(line.record, Record::Unknown, "line {}", n + 1);
        assert_eq!(line.record.name(), line.common.event, "line {}", n + 1);
        let members = members(&line.record).unwrap();
        assert!(
            text.contains(&format!("{members},\"prev\":")),
            "line {}: {members}\n{text}",
            n + 1
        );
    }
}

/// One pass reads a line as the JSON it is: escaped names and values, members in any order,
/// the record's own members before the common ones; and what is not an event is `None`.
#[test]
fn a_line_reads_whatever_the_order_and_escapes_of_its_members() {
    let line = br#"{"text":"caf\u00e9 \"ok\"","\u0065vent":"note","seq":7,"ts":"t","step":null}"#;
    let line = Line::decode(line).unwrap();
    assert_eq!((line.common.seq, line.common.step), (7, None));
    assert_eq!(
        line.record,
        Record::Note(Note {
            text: "café \"ok\"".into()
        })
    );
    for not_an_event in [&b"[1,2]"[..], b"{\"seq\":\"seven\"}", b"{\"seq\":1", b"{} x"] {
        assert!(
            Line::decode(not_an_event).is_none(),
            "{}",
            String::from_utf8_lossy(not_an_event)
        );
    }
}
