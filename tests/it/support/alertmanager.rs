//! A real Alertmanager (Debian's `prometheus-alertmanager`) on loopback, with a webhook
//! receiver pointing at a test's `Receiver`: an alert posted to its API comes back as the
//! webhook (version 4) payload Alertmanager itself builds.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BINARY: &str = "/usr/bin/prometheus-alertmanager";

pub struct Alertmanager {
    child: Child,
    pub port: u16,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    /// `None` when Alertmanager is not installed (scripts/test.sh installs it).
    pub fn start(dir: &Path, webhook: &str) -> Option<Alertmanager> {
        Self::with_config(
            dir,
            &format!(
                "route:\n  receiver: runbook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n  - name: runbook\n    webhook_configs:\n      - url: {webhook}\n        send_resolved: false\n"
            ),
        )
    }

    /// With this `alertmanager.yml`; `None` when Alertmanager is not installed.
    pub fn with_config(dir: &Path, yaml: &str) -> Option<Alertmanager> {
        if !Path::new(BINARY).exists() {
            return None;
        }
        let config = dir.join("alertmanager.yml");
        std::fs::write(&config, yaml).unwrap();
        let port = super::http::closed_port();
        let child = Command::new(BINARY)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("alertmanager starts");
        let am = Alertmanager { child, port };
        super::wait::until(Duration::from_secs(20), "alertmanager ready", || {
            super::http::get(&format!("127.0.0.1:{port}"), "/-/ready").is_some_and(|(s, _)| s == 200)
        });
        Some(am)
    }

    /// Fires alerts through Alertmanager's own API (v2).
    pub fn fire(&self, alerts: &serde_json::Value) {
        let (status, body) = super::http::post(
            &format!("127.0.0.1:{}", self.port),
            "/api/v2/alerts",
            &alerts.to_string(),
        )
        .expect("alertmanager answers");
        assert_eq!(status, 200, "{body}");
    }
}
