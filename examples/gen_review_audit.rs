//! Writes a sealed audit file of N steps (default 100,000) through the real writer,
//! `runbook::testing::audit::AuditLog`, for `scripts/bench-review.sh`: a valid chain, events shaped as
//! the executor writes them. Usage: gen_review_audit DIR [STEPS]; prints the file's path.

use std::time::Instant;

use serde_json::{Map, Value, json};

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: gen_review_audit DIR [STEPS]")?;
    let steps: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(100_000);
    let run = runbook::testing::audit::new_run_id("bench");
    let mut log = runbook::testing::audit::AuditLog::create(dir.as_ref(), &run, "bench", Instant::now())?;
    log.append(
        "run started",
        None,
        None,
        fields(json!({"runbook": "bench", "title": "Benchmark", "file": "bench.yaml", "file_sha256": "0".repeat(64),
            "mode": "drill", "targets": {"app": "local"}, "inputs": {}, "rto_ms": 3_600_000, "since_offset_ms": 0})),
        false,
    )?;
    for i in 0..steps {
        let id = format!("step-{i}");
        log.append("step presented", Some(&id), Some("local"),
            fields(json!({"position": i + 1, "total": steps, "title": format!("Step number {i}"), "kind": "run", "target_ms": 1000})), false)?;
        log.append("step started", Some(&id), Some("local"),
            fields(json!({"command": format!("echo step {i} && systemctl restart app-{i}"), "attempt": 1, "target_ms": 1000})), false)?;
        log.append("step finished", Some(&id), Some("local"),
            fields(json!({"outcome": "ok", "exit": 0, "attempt": 1, "duration_ms": 3, "target_ms": 1000, "over_target": false,
                "output": {"path": format!("{run}/{id}-1.out"), "size": 12, "sha256": "0".repeat(64), "tail": format!("step {i} ok\n")}})), false)?;
    }
    log.seal(fields(
        json!({"outcome": "resolved", "duration_ms": 1000, "rto_ms": 3_600_000, "within_rto": true,
        "verdict": {"pass": true, "reason": "benchmark"}, "over_target": []}),
    ))?;
    println!("{}", log.path().display());
    Ok(())
}
