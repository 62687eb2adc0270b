//! A loopback OTLP/HTTP receiver that decodes spans with the official protobuf definitions
//! (Python, PyPI `opentelemetry-proto`; scripts/test.sh installs it), one JSON line per span.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Collector {
    child: Child,
    pub port: u16,
    out: PathBuf,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Collector {
    pub fn start(dir: &Path) -> Collector {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/otlp/receiver.py");
        let out = dir.join("spans.jsonl");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!("the OTLP receiver did not start (pip install opentelemetry-proto): {line:?}")
        });
        Collector { child, port, out }
    }

    pub fn spans(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}
