//! A notice as a PagerDuty Events API v2 event: `trigger` on a breach or a failure, `resolve`
//! on a resolved end, both with `dedup_key` = the run id, so one run is one incident.

use serde_json::{Value, json};

use super::{Kind, Notice, Page};

pub(crate) const CONTENT_TYPE: &str = "application/json";

/// `None` for the notices PagerDuty does not page on (start, warning, ...).
pub(crate) fn render(notice: &Notice, routing_key: &str) -> Option<Value> {
    let page = notice.page?;
    if page == Page::Resolve {
        return Some(json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": notice.run.run_id,
        }));
    }
    let severity = match notice.kind {
        Kind::RtoBreached | Kind::StepFailed | Kind::EscalationDue | Kind::RunFinished => "critical",
        _ => "warning",
    };
    let summary: String = notice.summary.chars().take(1024).collect();
    Some(json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": notice.run.run_id,
        "payload": {
            "summary": summary,
            "source": notice.run.machine,
            "severity": severity,
            "timestamp": super::timestamp(notice.time),
            "component": notice.run.runbook,
            "group": notice.run.mode,
            "class": notice.kind.ce_type(),
            "custom_details": Value::Object(notice.data.clone()),
        },
    }))
}
