//! A real `webhook` (adnanh/webhook, Debian's package) on loopback, with the hooks of
//! `docs/unattended.md`: a POST carrying the token runs the built `runbook` on the payload;
//! one without it runs nothing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BINARY: &str = "/usr/bin/webhook";

pub struct Webhook {
    child: Child,
    pub port: u16,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hooks of `docs/unattended.md`, the token given: `alert` runs `runbook run RUNBOOK
/// --unattended --alert FILE` with the payload as FILE, `resolved` runs `runbook resolved`.
/// `extra`: more arguments of `run`. The command's output goes to `$RUNBOOK_HOOK_LOG`.
pub fn hooks(runbook: &str, token: &str, extra: &[&str]) -> String {
    let bin = env!("CARGO_BIN_EXE_runbook");
    // The token, and the payload's status: a resolved notification never starts a run. A
    // mismatch is answered 200 (webhook's default): Alertmanager sends a resolved notification
    // only to an integration that took the firing one.
    let rule = |status: &str| {
        serde_json::json!({"and": [
            {"match": {"type": "value", "value": format!("Bearer {token}"),
                "parameter": {"source": "header", "name": "Authorization"}}},
            {"match": {"type": "value", "value": status, "parameter": {"source": "payload", "name": "status"}}}
        ]})
    };
    let mut run = vec!["run".to_string(), runbook.to_string(), "--unattended".to_string()];
    run.extend(extra.iter().map(|s| s.to_string()));
    let quoted: Vec<String> = run.iter().map(|a| format!("'{a}'")).collect();
    let script =
        |cmd: &str| format!("exec '{bin}' {cmd} --alert \"$ALERT_FILE\" >>\"$RUNBOOK_HOOK_LOG\" 2>&1");
    serde_json::json!([
        {
            "id": "runbook-alert",
            "execute-command": "/bin/sh",
            "pass-arguments-to-command": [
                {"source": "string", "name": "-c"},
                {"source": "string", "name": script(&quoted.join(" "))}
            ],
            "pass-file-to-command": [{"source": "entire-payload", "envname": "ALERT_FILE"}],
            "trigger-rule": rule("firing")
        },
        {
            "id": "runbook-resolved",
            "execute-command": "/bin/sh",
            "pass-arguments-to-command": [
                {"source": "string", "name": "-c"},
                {"source": "string", "name": script("resolved")}
            ],
            "pass-file-to-command": [{"source": "entire-payload", "envname": "ALERT_FILE"}],
            "trigger-rule": rule("resolved")
        }
    ])
    .to_string()
}

impl Webhook {
    /// Starts `webhook` with `hooks` (JSON) in `dir`, the commands run with `env`; panics
    /// when it is not installed (the test must not pass without it).
    pub fn start(dir: &Path, hooks: &str, env: &[(&str, &Path)]) -> Webhook {
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} is not installed: apt-get install webhook (scripts/test.sh does)"
        );
        let file = dir.join("hooks.json");
        std::fs::write(&file, hooks).unwrap();
        let port = super::http::closed_port();
        let mut command = Command::new(BINARY);
        command
            .arg("-hooks")
            .arg(&file)
            .arg("-ip")
            .arg("127.0.0.1")
            .arg("-port")
            .arg(port.to_string())
            .arg("-verbose")
            .env("RUNBOOK_HOOK_LOG", dir.join("hook.log"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("webhook.log")).unwrap());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("webhook starts");
        let hook = Webhook { child, port };
        super::wait::until(Duration::from_secs(20), "webhook listening", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        hook
    }

    pub fn url(&self, hook: &str) -> String {
        format!("http://127.0.0.1:{}/hooks/{hook}", self.port)
    }

    /// POSTs `json` to a hook, with `Authorization: Bearer TOKEN` when given: status, body.
    pub fn post(&self, hook: &str, json: &str, token: Option<&str>) -> (u16, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "POST /hooks/{hook} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}
