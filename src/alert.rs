//! Alerts as input (design §15): `--alert FILE|-` reads the webhook payload that paged the
//! operator, an Alertmanager webhook (version 4) or a PagerDuty v3 webhook, and the runbook's
//! `alert:` block maps its fields to inputs; `runbook match --alert FILE` finds the runbooks
//! of the catalog an alert is for.
//!
//! Paths: `labels.X` and `annotations.X` are the first alert's (Alertmanager);
//! `commonLabels.X`, `commonAnnotations.X`, `groupLabels.X`, `externalURL`, `receiver` and
//! `status` the payload's. A PagerDuty payload's incident (`event.data`) is `incident.X`
//! (`incident.title`, `incident.service.summary`), the event itself `event.X`.

use std::path::Path;

use serde_json::{Value, json};

use crate::book::runbook::Runbook;
use crate::error::Error;

/// Larger payloads are refused: a webhook body is a few kilobytes.
const LIMIT: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Alertmanager,
    PagerDuty,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Alertmanager => "alertmanager",
            Kind::PagerDuty => "pagerduty",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Alert {
    pub kind: Kind,
    pub payload: Value,
}

impl Alert {
    /// Reads `FILE`, or standard input for `-`.
    pub(crate) fn read(spec: &str) -> Result<Alert, Error> {
        use std::io::Read;
        let mut text = String::new();
        let what = if spec == "-" {
            "standard input".to_string()
        } else {
            format!("`{spec}`")
        };
        let read = if spec == "-" {
            std::io::stdin().take(LIMIT + 1).read_to_string(&mut text)
        } else {
            std::fs::File::open(Path::new(spec)).and_then(|f| f.take(LIMIT + 1).read_to_string(&mut text))
        };
        read.map_err(|e| Error::usage(format!("--alert: cannot read {what}: {e}")))?;
        if text.len() as u64 > LIMIT {
            return Err(Error::usage(format!(
                "--alert: {what} is over 1 MiB: not a webhook payload"
            )));
        }
        Alert::parse(&text).map_err(|e| Error::usage(format!("--alert: {what}: {e}")))
    }

    pub(crate) fn parse(text: &str) -> Result<Alert, String> {
        let payload: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let kind = if payload["alerts"].is_array() {
            match payload["version"].as_str() {
                Some("4") | None => Kind::Alertmanager,
                Some(v) => {
                    return Err(format!(
                        "an Alertmanager webhook of version {v}; version 4 is read"
                    ));
                }
            }
        } else if payload["event"]["event_type"].is_string() && payload["event"]["data"].is_object() {
            Kind::PagerDuty
        } else {
            return Err(
                "neither an Alertmanager webhook (version 4: `alerts`) nor a PagerDuty v3 webhook (`event.event_type`, `event.data`)".into(),
            );
        };
        if kind == Kind::Alertmanager && payload["alerts"].as_array().is_none_or(|a| a.is_empty()) {
            return Err("an Alertmanager webhook without alerts".into());
        }
        Ok(Alert { kind, payload })
    }

    fn first(&self) -> &Value {
        &self.payload["alerts"][0]
    }

    /// The value at a path, as text (a string as is, a number or boolean written out).
    pub(crate) fn resolve(&self, path: &str) -> Option<String> {
        let (root, rest) = path.split_once('.').unwrap_or((path, ""));
        let mut at = match (self.kind, root) {
            (Kind::Alertmanager, "labels" | "annotations") => &self.first()[root],
            (Kind::Alertmanager, "commonLabels" | "commonAnnotations" | "groupLabels") => &self.payload[root],
            (Kind::Alertmanager, "externalURL" | "receiver" | "status") if rest.is_empty() => {
                &self.payload[root]
            }
            (Kind::PagerDuty, "incident") => &self.payload["event"]["data"],
            (Kind::PagerDuty, "event") => &self.payload["event"],
            _ => return None,
        };
        if !rest.is_empty() {
            // Label names hold no dots; an incident's fields nest (`service.summary`).
            let keys: Vec<&str> = if matches!(root, "incident" | "event") {
                rest.split('.').collect()
            } else {
                vec![rest]
            };
            for key in keys {
                at = at.get(key)?;
            }
        }
        match at {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// What the trail records of the alert: where it came from and every alert's
    /// fingerprint (Alertmanager), or the incident (PagerDuty).
    pub(crate) fn identity(&self) -> Value {
        let p = &self.payload;
        match self.kind {
            Kind::Alertmanager => json!({
                "source": "alertmanager",
                "status": p["status"],
                "receiver": p["receiver"],
                "group_key": p["groupKey"],
                "external_url": p["externalURL"],
                "alertname": self.resolve("labels.alertname"),
                "fingerprints": p["alerts"].as_array().map(|a| a.iter().map(|x| x["fingerprint"].clone()).collect::<Vec<_>>()).unwrap_or_default(),
                "alerts": p["alerts"].as_array().map_or(0, Vec::len),
            }),
            Kind::PagerDuty => json!({
                "source": "pagerduty",
                "event": p["event"]["id"],
                "event_type": p["event"]["event_type"],
                "incident": p["event"]["data"]["id"],
                "number": p["event"]["data"]["number"],
                "title": p["event"]["data"]["title"],
                "html_url": p["event"]["data"]["html_url"],
            }),
        }
    }

    /// Why this alert is for `runbook`, or `None`: its `alert.match` all hold (a bare name is
    /// a label of the first alert), or the alert's `runbook_url` annotation ends with its id.
    pub(crate) fn matches(&self, runbook: &Runbook) -> Option<String> {
        if let Some(spec) = &runbook.alert
            && !spec.matches.is_empty()
            && spec
                .matches
                .iter()
                .all(|(key, want)| self.resolve(&match_path(key)).as_deref() == Some(want.as_str()))
        {
            let fit: Vec<String> = spec.matches.iter().map(|(k, v)| format!("{k}={v}")).collect();
            return Some(format!("alert.match {}", fit.join(", ")));
        }
        let url = self.resolve("annotations.runbook_url")?;
        let trimmed = url
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .trim_end_matches('/');
        let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
        let stem = [".yaml", ".yml", ".md", ".html"]
            .iter()
            .find_map(|ext| last.strip_suffix(ext))
            .unwrap_or(last);
        (stem == runbook.id()).then(|| "annotations.runbook_url".to_string())
    }

    /// The inputs the runbook maps from this alert (name, value: given as `--set`s), and
    /// warnings for the paths the payload lacks (those inputs are then given as usual:
    /// default, source, prompt).
    pub(crate) fn inputs(&self, runbook: &Runbook) -> (Vec<(String, String)>, Vec<String>) {
        let (mut sets, mut missing) = (Vec::new(), Vec::new());
        if let Some(spec) = &runbook.alert {
            for (name, path) in &spec.inputs {
                match self.resolve(&path.value) {
                    Some(value) => sets.push((name.clone(), value)),
                    None => missing.push(format!(
                        "the alert has no `{}` for the input `{name}`: it is given as usual",
                        path.value
                    )),
                }
            }
        }
        (sets, missing)
    }
}

/// A key of `alert.match`: a bare name is a label.
fn match_path(key: &str) -> String {
    if key.contains('.') || crate::book::runbook::ALERT_ROOTS.contains(&key) {
        key.to_string()
    } else {
        format!("labels.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alertmanager_paths() {
        let a = Alert::parse(r#"{"version":"4","status":"firing","receiver":"r","commonLabels":{"env":"prod"},"alerts":[{"labels":{"alertname":"ServiceDown","service":"api"},"annotations":{"runbook_url":"https://wiki/runbooks/service-down.md"},"fingerprint":"abc"}]}"#).unwrap();
        assert_eq!(a.kind, Kind::Alertmanager);
        assert_eq!(a.resolve("labels.service").as_deref(), Some("api"));
        assert_eq!(a.resolve("commonLabels.env").as_deref(), Some("prod"));
        assert_eq!(a.resolve("status").as_deref(), Some("firing"));
        assert_eq!(a.resolve("labels.nope"), None);
        assert_eq!(a.identity()["fingerprints"], json!(["abc"]));
    }

    #[test]
    fn pagerduty_paths() {
        let a = Alert::parse(r#"{"event":{"id":"E1","event_type":"incident.triggered","data":{"id":"Q1","number":7,"title":"API down","service":{"summary":"Checkout"}}}}"#).unwrap();
        assert_eq!(a.kind, Kind::PagerDuty);
        assert_eq!(a.resolve("incident.service.summary").as_deref(), Some("Checkout"));
        assert_eq!(a.resolve("incident.number").as_deref(), Some("7"));
        assert_eq!(a.identity()["incident"], "Q1");
    }

    #[test]
    fn other_json_is_refused() {
        assert!(Alert::parse("{}").is_err());
        assert!(Alert::parse(r#"{"version":"3","alerts":[{}]}"#).is_err());
    }
}
