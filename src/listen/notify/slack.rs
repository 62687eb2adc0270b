//! A notice as a Slack incoming-webhook message: `text` (what notifications and clients
//! without blocks show) and one `section` block in `mrkdwn` with the same words and the
//! run's facts as fields.

use serde_json::{Value, json};

use super::{Kind, Notice};

pub(crate) const CONTENT_TYPE: &str = "application/json";

/// Slack reads `&`, `<` and `>` as markup: they are escaped in every text it gets.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn emoji(kind: Kind, notice: &Notice) -> &'static str {
    match kind {
        Kind::RunStarted => ":arrow_forward:",
        Kind::StepFailed => ":x:",
        Kind::RtoWarning => ":warning:",
        Kind::RtoBreached => ":rotating_light:",
        Kind::ApprovalNeeded => ":raised_hand:",
        Kind::EscalationDue => ":sos:",
        Kind::RunFinished if notice.data.get("outcome") == Some(&json!("resolved")) => ":white_check_mark:",
        Kind::RunFinished => ":red_circle:",
        Kind::RunRefused => ":no_entry:",
    }
}

pub(crate) fn render(notice: &Notice) -> Value {
    let text = format!(
        "{} *{}* {}",
        emoji(notice.kind, notice),
        notice.kind.ce_type(),
        escape(&notice.summary)
    );
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*run*\n`{}`", escape(&notice.run.run_id))}),
        json!({"type": "mrkdwn", "text": format!("*operator*\n{}", escape(&notice.run.operator))}),
    ];
    if let Some(head) = notice.data.get("head").and_then(Value::as_str) {
        fields.push(json!({"type": "mrkdwn", "text": format!("*trail head*\n`{head}`")}));
    }
    json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}, "fields": fields}
        ]
    })
}
