//! The team's record (design §19, issue #27): `history`, `review`, `drills`, `evidence`,
//! `replay` and `audit verify` with `--audit-host` read the union of the local audit dir and
//! the audit host's runs (a real sshd), one row per run id; a run whose two copies differ is
//! tampered, both named. "Machine A" mirrors runs there from its own audit dir; "this
//! machine" (B) has its own runs, some mirrored too.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::audit_host::{dir as audit_host_dir, url};
use crate::support::cmd::{Outcome, Run, runbook};
use crate::support::sshd::Sshd;
use crate::support::trail::audit_files;

const BOOK: &str = "version: 1\nid: team-drill\ntitle: The team's drill\nrto: 1m\ndrill: {every: 7d}\nsteps:\n  - id: work\n    title: Do the work\n    run: echo team work\n  - id: done\n    title: Done\n    end: resolved\n";

struct World {
    sshd: Sshd,
    host_dir: tempfile::TempDir,
    url: String,
    cat: tempfile::TempDir,
    /// Machine A's audit dir: what it mirrored is, seen from B, only on the audit host.
    a: tempfile::TempDir,
    /// This machine's audit dir.
    b: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let sshd = Sshd::start();
        let host_dir = audit_host_dir();
        let url = url(&sshd, host_dir.path());
        let cat = tempfile::tempdir().unwrap();
        fs::write(cat.path().join("team-drill.yaml"), BOOK).unwrap();
        World {
            sshd,
            host_dir,
            url,
            cat,
            a: tempfile::tempdir().unwrap(),
            b: tempfile::tempdir().unwrap(),
        }
    }

    /// A PASS of the team drill in `audit` as `operator`, mirrored to the audit host when
    /// `mirror`; its run id.
    #[track_caller]
    fn drill(&self, audit: &Path, operator: &str, mirror: bool) -> String {
        let before = audit_files(audit);
        let mut run = runbook(["--dir"])
            .arg(self.cat.path())
            .arg("--audit-dir")
            .arg(audit)
            .args(["drill", "team-drill", "--yes", "--operator", operator]);
        if mirror {
            run = run.args(["--audit-host", &self.url]).args(self.sshd.ssh_args());
        }
        run.expect_code(0);
        let fresh: Vec<PathBuf> = audit_files(audit)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        assert_eq!(fresh.len(), 1, "one new trail in {}", audit.display());
        let id = fresh[0].file_stem().unwrap().to_str().unwrap().to_string();
        if mirror {
            assert_eq!(
                fs::read(&fresh[0]).unwrap(),
                fs::read(self.there(&id)).unwrap(),
                "the mirrored copy is the local trail"
            );
        }
        id
    }

    /// `runbook --dir CAT --audit-dir B ARGS --audit-host URL` with the fixture's SSH options.
    fn team(&self, args: &[&str]) -> Run {
        self.local(args)
            .args(["--audit-host", &self.url])
            .args(self.sshd.ssh_args())
    }

    /// `runbook --dir CAT --audit-dir B ARGS`: this machine's audit dir alone.
    fn local(&self, args: &[&str]) -> Run {
        runbook(["--dir"])
            .arg(self.cat.path())
            .arg("--audit-dir")
            .arg(self.b.path())
            .args(args)
    }

    /// The audit host's trail of `run`.
    fn there(&self, run: &str) -> PathBuf {
        self.host_dir.path().join(format!("{run}.jsonl"))
    }

    fn here(&self, run: &str) -> PathBuf {
        self.b.path().join(format!("{run}.jsonl"))
    }

    /// The audit host's URL of `run`'s trail.
    fn url_of(&self, run: &str) -> String {
        format!("{}/{run}.jsonl", self.url)
    }

    fn history(&self, extra: &[&str]) -> Vec<Value> {
        let out = self
            .team(&[&["history", "--json"], extra].concat())
            .expect_code(0);
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
    }
}

/// Replaces the first `from` in `path` by `to`, same length: only the content changes.
fn edit(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "no `{from}` in {}", path.display());
    assert_eq!(from.len(), to.len());
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn row<'a>(rows: &'a [Value], run: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["run"] == run)
        .unwrap_or_else(|| panic!("no row of {run} in {rows:#?}"))
}

#[test]
fn history_is_the_union_one_row_per_run_and_a_copy_changed_there_is_tampered_naming_both() {
    let w = World::new();
    let only_there = w.drill(w.a.path(), "alice", true);
    let only_here = w.drill(w.b.path(), "bob", false);
    let both = w.drill(w.b.path(), "carol", true);

    let rows = w.history(&[]);
    assert_eq!(rows.len(), 3, "one row per run id: {rows:#?}");
    let stored = |run: &str| row(&rows, run)["stored"].as_str().unwrap().to_string();
    assert_eq!(
        (stored(&only_there), stored(&only_here), stored(&both)),
        ("audit host".into(), "local".into(), "both".into())
    );
    // Each row names where it was read: the audit host's URL for its own run.
    assert_eq!(row(&rows, &only_there)["path"], w.url_of(&only_there).as_str());
    assert_eq!(
        row(&rows, &only_here)["path"],
        w.here(&only_here).display().to_string().as_str()
    );
    assert_eq!(
        row(&rows, &both)["path"],
        w.here(&both).display().to_string().as_str()
    );
    assert_eq!(row(&rows, &only_there)["operators"][0], "alice");
    for r in &rows {
        assert_eq!(r["verdict"], "PASS", "{r:#}");
    }
    // The table: a header and the three runs, each once.
    let text = w.team(&["history"]).expect_code(0).stdout;
    assert_eq!(text.lines().count(), 4, "{text}");
    for run in [&only_there, &only_here, &both] {
        assert_eq!(text.matches(run.as_str()).count(), 1, "{run} once:\n{text}");
    }
    // Without an audit host, the local runs alone; RUNBOOK_AUDIT_HOST names it as the flag does.
    let local = w.local(&["history", "--json"]).expect_code(0).stdout;
    let local: Vec<Value> = serde_json::from_str(&local).unwrap();
    assert_eq!(local.len(), 2);
    assert!(local.iter().all(|r| r.get("stored").is_none()));
    let by_env = w
        .local(&["history", "--json"])
        .args(w.sshd.ssh_args())
        .env("RUNBOOK_AUDIT_HOST", &w.url)
        .expect_code(0)
        .stdout;
    assert_eq!(serde_json::from_str::<Vec<Value>>(&by_env).unwrap().len(), 3);

    // A copy that is the start of the other (a mirror behind) is the same run: not tampered.
    let full = fs::read_to_string(w.there(&both)).unwrap();
    let lines: Vec<&str> = full.lines().collect();
    fs::write(w.there(&both), lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let out = w.team(&["history", "--json"]).expect_code(0);
    let rows: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(row(&rows, &both)["verdict"], "PASS", "{}", out.stderr);
    assert!(
        out.stderr.contains("is the start of the local trail"),
        "{}",
        out.stderr
    );
    fs::write(w.there(&both), &full).unwrap();

    // One line changed on the audit host: the two copies differ, and both are named.
    edit(
        &w.there(&both),
        "\"operator\":\"carol\"",
        "\"operator\":\"carox\"",
    );
    let out = w.team(&["history", "--json"]).expect_code(0);
    let rows: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows.len(), 3);
    let tampered = row(&rows, &both);
    assert_eq!(tampered["verdict"], "TAMPERED", "{tampered:#}");
    let reason = tampered["verdict_reason"].as_str().unwrap();
    let here = w.here(&both).display().to_string();
    let there = w.url_of(&both);
    for said in [reason, out.stderr.as_str()] {
        assert!(
            said.contains(&here) && said.contains(&there),
            "both named: {said}"
        );
    }
    assert_eq!(row(&rows, &only_there)["verdict"], "PASS");
    let text = w.team(&["history"]).expect_code(0).stdout;
    let line = text.lines().find(|l| l.contains(both.as_str())).unwrap();
    assert!(line.contains("TAMPERED"), "{text}");

    // `audit verify` of that run: tampered (exit 1), naming both; its local chain holds.
    let out = w.team(&["audit", "verify", &both]).output();
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&here) && out.stdout.contains(&there) && out.stdout.contains("TAMPERED"),
        "{}",
        out.stdout
    );
    w.local(&["audit", "verify", &both]).expect_code(0);
}

#[test]
fn review_evidence_and_audit_verify_read_a_run_only_on_the_audit_host() {
    let w = World::new();
    let run = w.drill(w.a.path(), "alice", true);
    let prefix = &run[..run.len() - 2];

    // Unknown here without the audit host; found there by a unique prefix, or as `last`.
    w.local(&["review", prefix]).expect_code(2);
    let review = w
        .team(&["review", prefix, "--format", "json"])
        .expect_code(0)
        .stdout;
    let review: Value = serde_json::from_str(&review).unwrap();
    let first = &review["runs"][0];
    assert_eq!(first["run"], run.as_str(), "{review:#}");
    assert_eq!(first["path"], w.url_of(&run).as_str());
    assert_eq!(first["verdict"], "PASS");
    let text = w.team(&["review", "last"]).expect_code(0).stdout;
    assert!(text.contains(&run) && text.contains("work"), "{text}");

    // audit verify: the chain, the output files, named by the URL.
    let out = w.team(&["audit", "verify", prefix]).expect_code(0).stdout;
    assert!(
        out.starts_with(&format!("{}: intact and sealed", w.url_of(&run))),
        "{out}"
    );
    assert!(out.contains("outputs: 1 file checked"), "{out}");

    // evidence: the page, from the audit host's copy.
    let page = w.b.path().join("evidence.html");
    w.team(&["evidence", &run, "-o", page.to_str().unwrap()])
        .expect_code(0);
    let html = fs::read_to_string(&page).unwrap();
    assert!(
        html.contains(&run) && html.contains("PASS"),
        "the page names the run"
    );

    // Nothing of the audit host's was left on this machine.
    assert!(audit_files(w.b.path()).is_empty());
    let left: Vec<_> = fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("runbook-team-"))
        .filter(|e| {
            fs::read_dir(e.path())
                .is_ok_and(|mut d| d.any(|f| f.is_ok_and(|f| f.file_name().to_string_lossy().contains(&run))))
        })
        .collect();
    assert!(left.is_empty(), "copies left behind: {left:?}");

    // An output file changed there: tampered, named, exit 1; evidence says so and exits 1.
    let output = fs::read_dir(w.host_dir.path().join(&run))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("work"))
        .expect("the step's output on the audit host");
    edit(&output, "team work", "team w0rk");
    let out = w.team(&["audit", "verify", &run]).output();
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(out.stdout.contains("output of step `work`"), "{}", out.stdout);
    w.team(&["evidence", &run, "-o", page.to_str().unwrap()])
        .expect_code(1);
}

#[test]
fn audit_verify_of_a_run_in_both_places_checks_the_audit_hosts_output_files_too() {
    let w = World::new();
    let run = w.drill(w.b.path(), "bob", true);
    let out = w.team(&["audit", "verify", &run]).expect_code(0).stdout;
    assert!(
        out.starts_with(&format!("{}: intact and sealed", w.here(&run).display())),
        "{out}"
    );
    let output = fs::read_dir(w.host_dir.path().join(&run))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    edit(&output, "team work", "team w0rk");
    let out = w.team(&["audit", "verify", &run, "--json"]).output();
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let problems = report["problems"].to_string();
    assert!(
        problems.contains(&format!("the audit host's copy {}", w.url_of(&run)))
            && problems.contains("output of step `work`"),
        "{problems}"
    );
    // This machine's copy alone still holds.
    w.local(&["audit", "verify", &run]).expect_code(0);
}

#[test]
fn drills_count_a_pass_only_on_the_audit_host_when_its_outputs_hold() {
    let w = World::new();
    let run = w.drill(w.a.path(), "alice", true);
    let drills = |team: bool, code: i32| -> (Value, Outcome) {
        let args = ["drills", "--json"];
        let out = if team { w.team(&args) } else { w.local(&args) }.expect_code(code);
        let doc: Value = serde_json::from_str(&out.stdout).unwrap();
        (doc[0].clone(), out)
    };
    // Here alone, it never passed: overdue (exit 5).
    let (entry, _) = drills(false, 5);
    assert_eq!(entry["last_pass"], Value::Null);
    // With the audit host, the PASS there counts.
    let (entry, _) = drills(true, 0);
    assert_eq!(entry["last_pass"]["run"], run.as_str(), "{entry:#}");
    assert_eq!(entry["last_pass"]["path"], w.url_of(&run).as_str());
    assert_eq!(entry["runs"], 1);
    // Its output changed there: it does not hold, so it does not count, and says why.
    let output = fs::read_dir(w.host_dir.path().join(&run))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    edit(&output, "team work", "team w0rk");
    let (entry, _) = drills(true, 5);
    assert_eq!(entry["last_pass"], Value::Null);
    let reason = entry["not_counted"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("output of step `work`"), "{reason}");
}

/// `events` chained again from the genesis, as the writer chains them (the seal's `head` and
/// `events` follow), unsigned.
fn rechain(events: Vec<Value>) -> String {
    let mut prev = runbook::testing::audit::GENESIS.to_string();
    let mut out = String::new();
    let count = events.len();
    for (seq, mut v) in events.into_iter().enumerate() {
        let obj = v.as_object_mut().unwrap();
        obj.insert("seq".into(), seq.into());
        if obj["event"] == "run finished" {
            obj.insert("events".into(), count.into());
            obj.insert("head".into(), prev.clone().into());
        }
        out.push_str(&crate::support::runs::chained(&mut prev, v));
    }
    out
}

#[test]
fn replay_plays_a_recording_only_on_the_audit_host() {
    let w = World::new();
    let run = w.drill(w.a.path(), "alice", false);
    // The run with a shell session recorded before `work`, put on the audit host (as its
    // mirror copies a closed recording), not here.
    let cast = "{\"version\": 2, \"width\": 80, \"height\": 24}\n[0.05, \"o\", \"recorded on the audit host\\r\\n\"]\n";
    let file = format!("{run}/shell-1.cast");
    let mut events = Vec::new();
    for line in fs::read_to_string(w.a.path().join(format!("{run}.jsonl")))
        .unwrap()
        .lines()
    {
        let v: Value = serde_json::from_str(line).unwrap();
        let presented = v["event"] == "step presented" && v["step"] == "work";
        events.push(v.clone());
        if presented {
            let mut opened = v.clone();
            let o = opened.as_object_mut().unwrap();
            o.insert("event".into(), "shell opened".into());
            o.insert("host".into(), "local".into());
            o.insert("shell".into(), 1.into());
            o.insert("from".into(), "before running".into());
            o.insert("cols".into(), 80.into());
            o.insert("rows".into(), 24.into());
            o.insert("output_file".into(), file.clone().into());
            let mut closed = opened.clone();
            let c = closed.as_object_mut().unwrap();
            c.insert("event".into(), "shell closed".into());
            c.insert("duration_ms".into(), 50.into());
            c.insert("exit".into(), 0.into());
            c.insert(
                "output".into(),
                serde_json::json!({"path": file, "size": cast.len(), "sha256": runbook::testing::audit::sha256_hex(cast.as_bytes())}),
            );
            events.push(opened);
            events.push(closed);
        }
    }
    assert!(events.iter().any(|e| e["event"] == "shell closed"));
    fs::write(w.there(&run), rechain(events)).unwrap();
    let outputs = w.host_dir.path().join(&run);
    fs::create_dir(&outputs).unwrap();
    for entry in fs::read_dir(w.a.path().join(&run)).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), outputs.join(entry.file_name())).unwrap();
    }
    fs::write(outputs.join("shell-1.cast"), cast).unwrap();
    // Readable by the audit host's account, as the mirror leaves them (0640, its group).
    use std::os::unix::fs::PermissionsExt;
    for entry in fs::read_dir(&outputs).unwrap() {
        fs::set_permissions(entry.unwrap().path(), fs::Permissions::from_mode(0o644)).unwrap();
    }
    w.team(&["audit", "verify", &run]).expect_code(0);

    w.local(&["replay", &run]).expect_code(2);
    let out = w.team(&["replay", &run, "--speed", "100"]).expect_code(0);
    assert!(
        out.stdout.contains("recorded on the audit host"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(&format!("{}/{file}", w.url)),
        "the recording named by its URL: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn an_unreachable_audit_host_or_a_missing_directory_is_an_error_naming_it() {
    let w = World::new();
    w.drill(w.b.path(), "bob", false);
    // Nothing listens there: exit 1, the audit host named, never the local runs alone.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = format!("ssh://rbtest@127.0.0.1:{port}/srv/runs");
    for args in [
        &["history"][..],
        &["drills"],
        &["review", "last"],
        &["audit", "verify", "last"],
    ] {
        let out = w
            .local(args)
            .args(["--audit-host", &nowhere, "--connect-timeout", "5s"])
            .args(w.sshd.ssh_args())
            .output();
        assert_eq!(out.code, Some(1), "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr
                .contains(&format!("the audit host {nowhere} cannot be reached")),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
    // Reached, but no such directory there.
    let missing = format!("{}/missing", w.url);
    let out = w
        .local(&["history"])
        .args(["--audit-host", &missing])
        .args(w.sshd.ssh_args())
        .output();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "cannot read the runs on the audit host {missing}: its directory cannot be read"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn a_comparison_names_its_newest_run_on_the_audit_host_by_a_command_that_finds_it() {
    let w = World::new();
    let older = w.drill(w.b.path(), "bob", false);
    let newer = w.drill(w.a.path(), "alice", true);
    let text = w.team(&["review", &older, &newer]).expect_code(0).stdout;
    let hint = format!("runbook review {newer} --audit-host {}", w.url);
    assert!(text.contains(&hint), "{hint}:\n{text}");
    // The command it gives works.
    let again = w.team(&["review", &newer]).expect_code(0).stdout;
    assert!(again.contains(&newer), "{again}");
}
