//! Shell completion in a real bash: the script `runbook completions bash` prints is sourced, and
//! its completion function is called as bash calls it at a Tab (COMP_WORDS, COMP_CWORD), with
//! the real binary answering. What only the files know is offered: runbook ids of the catalog,
//! run ids of the audit dir, the steps of the runbook on the line.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cmd::{bin, runbook};

const SERVICE_DOWN: &str = r#"version: 1
id: service-down
title: Service down
rto: 5m
inputs:
  service: {description: systemd unit, default: api}
targets:
  app: {description: the API host, default: local}
steps:
  - {id: restart, title: Restart it, target: app, run: "true", confirm: restart}
  - id: healthy
    title: Healthy?
    choose:
      - {label: Healthy, goto: done}
      - {label: Still failing, goto: escalate}
  - {id: escalate, title: Escalate, end: escalated}
  - {id: done, title: Done, end: resolved}
"#;

const SEARCH: &str = "version: 1\nid: search-down\ntitle: Search down\nrto: 5m\nsteps:\n  - {id: done, title: Done, end: resolved}\n";

/// A directory with a `PATH` entry holding `runbook` (the binary under test) and nothing else.
struct Shell {
    dir: tempfile::TempDir,
}

impl Shell {
    fn new() -> Shell {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::os::unix::fs::symlink(bin(), dir.path().join("bin/runbook")).unwrap();
        Shell { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// What bash offers for the last of `words` (the word being completed, maybe empty), in
    /// `cwd`, with `env` set: `runbook completions bash` sourced, its function called the way
    /// `complete -F` calls it.
    fn complete(&self, cwd: &Path, env: &[(&str, &str)], words: &[&str]) -> Vec<String> {
        self.complete_at(cwd, env, words, words.len() - 1)
    }

    /// `complete`, with the cursor in word `cword` (0 is `runbook`).
    fn complete_at(&self, cwd: &Path, env: &[(&str, &str)], words: &[&str], cword: usize) -> Vec<String> {
        let quoted: Vec<String> = words
            .iter()
            .map(|w| runbook::testing::script::shell_quote(w))
            .collect();
        let script = format!(
            "source <(runbook completions bash) || exit 9\n\
             COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_TYPE=9\n\
             complete -p runbook >/dev/null || exit 8\n\
             func=$(complete -p runbook | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p')\n\
             \"$func\" runbook \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            words = quoted.join(" ")
        );
        let mut command = Command::new("bash");
        command
            .args(["--norc", "--noprofile", "-c", &script])
            .current_dir(cwd)
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.path().join("bin").display()),
            )
            .env("HOME", self.path());
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().expect("bash runs");
        assert!(
            out.status.success(),
            "bash: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

fn catalog(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("service-down.yaml"), SERVICE_DOWN).unwrap();
    std::fs::write(dir.join("search.yaml"), SEARCH).unwrap();
    dir.to_path_buf()
}

#[test]
fn runbook_ids_of_the_catalog_are_completed() {
    let shell = Shell::new();
    let cat = catalog(&shell.path().join("catalog"));
    let cat = cat.to_str().unwrap();
    let cwd = shell.path();
    // --dir on the line.
    assert_eq!(
        shell.complete(cwd, &[], &["runbook", "run", "--dir", cat, "se"]),
        ["search-down", "service-down"]
    );
    assert_eq!(
        shell.complete(cwd, &[], &["runbook", "drill", "--dir", cat, "servi"]),
        ["service-down"]
    );
    // RUNBOOK_PATH, and --dir given after the word.
    assert_eq!(
        shell.complete(cwd, &[("RUNBOOK_PATH", cat)], &["runbook", "show", "sea"]),
        ["search-down"]
    );
    // The default catalog, ./runbooks.
    catalog(&shell.path().join("runbooks"));
    assert_eq!(
        shell.complete(cwd, &[], &["runbook", "run", "service"]),
        ["service-down"]
    );
    // A word that looks like a path completes runbook files.
    assert_eq!(
        shell.complete(cwd, &[], &["runbook", "run", "./catalog/se"]),
        ["./catalog/search.yaml", "./catalog/service-down.yaml"]
    );
    // Commands and options still come from the declaration.
    assert_eq!(shell.complete(cwd, &[], &["runbook", "dr"]), ["drill", "drills"]);
    assert_eq!(
        shell.complete(cwd, &[], &["runbook", "run", "--start"]),
        ["--start-at"]
    );
}

#[test]
fn steps_answers_roles_and_inputs_of_the_runbook_on_the_line_are_completed() {
    let shell = Shell::new();
    let cat = catalog(&shell.path().join("catalog"));
    let cat = cat.to_str().unwrap();
    let cwd = shell.path();
    let line = |rest: &[&str]| {
        let mut words = vec!["runbook", "run", "--dir", cat, "service-down"];
        words.extend(rest);
        shell.complete(cwd, &[], &words)
    };
    assert_eq!(
        line(&["--start-at", ""]),
        ["restart", "healthy", "escalate", "done"]
    );
    assert_eq!(line(&["--start-at", "h"]), ["healthy"]);
    // Only the steps that take an answer: a typed confirmation, a decision.
    assert_eq!(line(&["--answer", ""]), ["restart=", "healthy="]);
    assert_eq!(
        line(&["--answer", "healthy="]),
        ["healthy=Healthy", "healthy=Still failing"]
    );
    assert_eq!(line(&["--target", ""]), ["app="]);
    assert_eq!(line(&["--set", "s"]), ["service="]);
    // The runbook may come after the option being completed.
    assert_eq!(
        shell.complete_at(
            cwd,
            &[],
            &[
                "runbook",
                "run",
                "--start-at",
                "esc",
                "--dir",
                cat,
                "service-down"
            ],
            3
        ),
        ["escalate"]
    );
}

#[test]
fn run_ids_of_the_audit_dir_are_completed() {
    let shell = Shell::new();
    let cat = catalog(&shell.path().join("catalog"));
    let audit = shell.path().join("audit");
    let run = |id: &str| {
        runbook(["run", "--yes", "--dir", cat.to_str().unwrap(), id, "--audit-dir"])
            .arg(&audit)
            .expect_code(0);
    };
    run("search-down");
    let ids: Vec<String> = std::fs::read_dir(&audit)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".jsonl").map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = &ids[0];
    let prefix = &id[..8];
    let dir = audit.to_str().unwrap();
    let cwd = shell.path();
    for words in [
        vec!["runbook", "resume", "--audit-dir", dir, prefix],
        vec!["runbook", "audit", "verify", "--audit-dir", dir, prefix],
        vec!["runbook", "review", "--audit-dir", dir, prefix],
    ] {
        assert_eq!(
            shell.complete(cwd, &[], &words),
            vec![id.to_string()],
            "{words:?}"
        );
    }
    assert_eq!(
        shell.complete(cwd, &[("RUNBOOK_AUDIT_DIR", dir)], &["runbook", "review", "la"]),
        ["last"]
    );
}
