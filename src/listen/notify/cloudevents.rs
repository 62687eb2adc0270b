//! A notice as a CloudEvents 1.0 event in structured mode (the HTTP binding's
//! `application/cloudevents+json`): every attribute and the `data` in one JSON object.

use serde_json::{Value, json};

use super::Notice;

pub(crate) const CONTENT_TYPE: &str = "application/cloudevents+json; charset=utf-8";

/// `specversion`, `id` (`<run-id>.<n>`, unique with its `source`), `source`
/// (`runbook://<machine>/<runbook-id>`), `type`, `time`, `datacontenttype`, `subject` (the
/// step, when there is one), the extension `runbookrun` (the run id), and `data`.
pub(crate) fn render(notice: &Notice) -> Value {
    let mut event = json!({
        "specversion": "1.0",
        "id": notice.id(),
        "source": source(notice),
        "type": notice.kind.ce_type(),
        "time": super::timestamp(notice.time),
        "datacontenttype": "application/json",
    });
    if let Some(step) = &notice.step {
        event["subject"] = json!(step);
    }
    event["runbookrun"] = json!(notice.run.run_id);
    let mut data = notice.data.clone();
    data.insert("summary".into(), json!(notice.summary));
    event["data"] = Value::Object(data);
    event
}

/// A URI naming the machine and the runbook; characters a host name cannot hold are dropped.
fn source(notice: &Notice) -> String {
    let machine: String = notice
        .run
        .machine
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect();
    let machine = if machine.is_empty() {
        "localhost".to_string()
    } else {
        machine.to_ascii_lowercase()
    };
    format!("runbook://{machine}/{}", notice.run.runbook)
}
