//! Drills as a programme (design §16), with real parts: real drill runs (local and over the
//! sshd fixture) aged by re-timed copies of their trails, PASSes signed by a real ssh-agent
//! and checked against `allowed_signers`, the trend chart parsed as XML and as Mermaid's
//! grammar, and the evidence page's embedded files checked with `sha256sum`'s hash and
//! `ssh-keygen -Y verify`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::support::agent::Agent;
use crate::support::cmd::{Outcome, root, runbook};
use crate::support::runs::{Retime, retime_with};
use crate::support::trail::{Signatures, age, audit_files};

fn data(name: &str) -> PathBuf {
    root().join("tests/data/drills").join(name)
}

/// A catalog directory holding copies of some runbooks of `tests/data/drills`.
fn catalog(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        std::fs::copy(data(file), dir.path().join(file)).unwrap();
    }
    dir
}

/// `runbook drill ID --yes ...` from catalog `cat`, signing with `agent` when given; returns
/// the audit file it wrote.
#[track_caller]
fn drill(cat: &Path, audit: &Path, id: &str, extra: &[&str], agent: Option<&Agent>, code: i32) -> PathBuf {
    let before = audit_files(audit);
    let mut run = runbook(["--dir"])
        .arg(cat)
        .arg("--audit-dir")
        .arg(audit)
        .args(["drill", id, "--yes", "--operator", "alice"])
        .args(extra);
    if let Some(agent) = agent {
        run = run.env("SSH_AUTH_SOCK", &agent.socket);
    }
    run.expect_code(code);
    let mut fresh: Vec<PathBuf> = audit_files(audit)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(fresh.len(), 1, "one new trail in {}", audit.display());
    fresh.pop().unwrap()
}

/// The gate drill, passed (`check` reported done) or failed (`check` reported failed).
#[track_caller]
fn gate(cat: &Path, audit: &Path, pass: bool, agent: Option<&Agent>) -> PathBuf {
    if pass {
        drill(cat, audit, "gate-drill", &["--answer", "check=done"], agent, 0)
    } else {
        drill(cat, audit, "gate-drill", &["--answer", "check=failed"], agent, 3)
    }
}

#[track_caller]
fn drills(cat: &Path, audit: &Path, extra: &[&str], code: i32) -> Outcome {
    runbook(["--dir"])
        .arg(cat)
        .arg("--audit-dir")
        .arg(audit)
        .arg("drills")
        .args(extra)
        .expect_code(code)
}

/// `runbook drills --json`, as the entry of each runbook.
#[track_caller]
fn drills_json(cat: &Path, audit: &Path, extra: &[&str], code: i32) -> Vec<Value> {
    let out = drills(cat, audit, &[extra, &["--json"]].concat(), code);
    serde_json::from_str::<Value>(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
        .as_array()
        .unwrap()
        .clone()
}

fn entry<'a>(doc: &'a [Value], id: &str) -> &'a Value {
    doc.iter()
        .find(|e| e["runbook"] == id)
        .unwrap_or_else(|| panic!("no `{id}` in {doc:?}"))
}

fn run_id(trail: &Path) -> String {
    trail.file_stem().unwrap().to_str().unwrap().to_string()
}

fn first_event(trail: &Path) -> Value {
    let text = std::fs::read_to_string(trail).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

fn seal(trail: &Path) -> Value {
    let text = std::fs::read_to_string(trail).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn a_bad_cadence_is_an_error_at_its_value_and_no_cadence_is_no_gate() {
    let cat = tempfile::tempdir().unwrap();
    let bad = cat.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\nid: bad-drill\ntitle: Bad\nrto: 5m\ndrill: {every: 30days}\nsteps:\n  - {id: done, title: Done, end: resolved}\n",
    )
    .unwrap();
    let out = runbook(["validate"]).arg(&bad).expect_code(2);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains(&format!(
            "{}:5:16: error: invalid duration in `drill.every`: `30days` has unit `days`",
            bad.display()
        )),
        "{said}"
    );
    assert!(said.contains("use d, h, m, s or ms"), "{said}");
    let audit = tempfile::tempdir().unwrap();
    let out = drills(cat.path(), audit.path(), &[], 2);
    assert!(
        out.stderr.contains(&format!("{}:5:16:", bad.display())) && out.stderr.contains("runbook validate"),
        "{}",
        out.stderr
    );
    // A catalog without any cadence holds no gate: not a green one.
    let plain = catalog(&["not-a-drill.yaml"]);
    let out = drills(plain.path(), audit.path(), &[], 2);
    assert!(
        out.stderr.contains("declares a drill cadence") && out.stderr.contains("--dir"),
        "{}",
        out.stderr
    );
    // The shipped launch-gate drills declare theirs.
    let shipped = runbook(["--dir"])
        .arg(root().join("runbooks"))
        .arg("--audit-dir")
        .arg(audit.path())
        .args(["drills", "--json"])
        .expect_code(5);
    let doc: Vec<Value> = serde_json::from_str(&shipped.stdout).unwrap();
    let ids: Vec<&str> = doc.iter().map(|e| e["runbook"].as_str().unwrap()).collect();
    assert_eq!(ids, ["restore-drill", "rollback-drill"]);
    assert!(
        doc.iter()
            .all(|e| e["every"] == "30d" && e["every_ms"] == 30 * 86_400_000u64)
    );
}

#[test]
fn a_drill_never_run_or_never_passed_is_overdue_and_exits_5() {
    let cat = catalog(&["gate-drill.yaml", "weekly-drill.yaml", "not-a-drill.yaml"]);
    let audit = tempfile::tempdir().unwrap();
    let out = drills(cat.path(), audit.path(), &[], 5);
    assert!(
        out.stdout.contains(
            "OVERDUE: gate-drill has no PASS within 30d (it has never been run). Run it: runbook drill gate-drill"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("2 of 2 drills OVERDUE"), "{}", out.stdout);
    assert!(!out.stdout.contains("not-a-drill"), "{}", out.stdout);
    let doc = drills_json(cat.path(), audit.path(), &[], 5);
    assert_eq!(doc.len(), 2, "{doc:?}");
    for e in &doc {
        assert_eq!(e["overdue"], true);
        assert_eq!(e["status"], "overdue");
        assert_eq!(e["last_pass"], Value::Null);
        assert_eq!(e["runs"], 0);
    }
    // A real drill that FAILs is a run, not a PASS.
    gate(cat.path(), audit.path(), false, None);
    let doc = drills_json(cat.path(), audit.path(), &[], 5);
    let g = entry(&doc, "gate-drill");
    assert_eq!(g["overdue"], true);
    assert_eq!((g["runs"].as_u64(), g["runs_since"].as_u64()), (Some(1), Some(1)));
    assert_eq!(g["since_verdicts"], serde_json::json!(["FAIL"]));
    let out = drills(cat.path(), audit.path(), &[], 5);
    assert!(
        out.stdout
            .contains("gate-drill has no PASS within 30d (it never passed: 1 run"),
        "{}",
        out.stdout
    );
}

/// A real PASS aged 40 days is overdue on a 30-day cadence; one aged 20 days is current; the
/// runs after it are counted; a PASS whose output file was changed does not count.
#[test]
fn a_pass_within_the_cadence_is_current_and_an_older_one_overdue() {
    let cat = catalog(&["gate-drill.yaml"]);
    let runs = tempfile::tempdir().unwrap();
    let pass = gate(cat.path(), runs.path(), true, None);
    let fail = gate(cat.path(), runs.path(), false, None);
    let audit = tempfile::tempdir().unwrap();
    let a40 = age(&pass, audit.path(), Duration::days(40), Signatures::Drop);
    runbook(["audit", "verify"]).arg(&a40).expect_code(0);
    let doc = drills_json(cat.path(), audit.path(), &[], 5);
    let g = entry(&doc, "gate-drill");
    assert_eq!(g["overdue"], true);
    assert_eq!(g["last_pass"]["run"], run_id(&a40));
    let launched = time(&first_event(&a40)["ts"]);
    assert_eq!(time(&g["due"]), launched + Duration::days(30));
    let out = drills(cat.path(), audit.path(), &[], 5);
    assert!(
        out.stdout
            .contains("OVERDUE: gate-drill has no PASS within 30d (its last PASS was ")
            && out.stdout.contains("(40d ago)"),
        "{}",
        out.stdout
    );

    let a20 = age(&pass, audit.path(), Duration::days(20), Signatures::Drop);
    let doc = drills_json(cat.path(), audit.path(), &[], 0);
    let g = entry(&doc, "gate-drill");
    assert_eq!(
        (g["overdue"].as_bool(), g["status"].as_str()),
        (Some(false), Some("ok"))
    );
    let last = &g["last_pass"];
    assert_eq!(last["run"], run_id(&a20));
    assert_eq!(last["operators"], serde_json::json!(["alice"]));
    assert_eq!(last["signed"], false);
    assert_eq!(last["rto_ms"], 60_000);
    let review: Value = serde_json::from_str(
        &runbook(["review", "--format", "json"])
            .arg(&a20)
            .expect_code(0)
            .stdout,
    )
    .unwrap();
    assert_eq!(last["total_ms"], review["runs"][0]["total_ms"]);
    assert_eq!(last["head"], seal(&a20)["hash"]);
    assert_eq!(g["runs_since"], 0);
    // The same drill twice: steady, over the two passes that count.
    assert_eq!(g["trend"]["runs"], 2);
    assert_eq!(g["trend"]["mode"], "drill");
    let out = drills(cat.path(), audit.path(), &[], 0);
    assert!(
        out.stdout.contains("every drill passed within its cadence"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("UNSIGNED"), "{}", out.stdout);

    // Runs since the last PASS: a FAIL, and a PASS whose output file was changed afterwards.
    age(&fail, audit.path(), Duration::days(5), Signatures::Drop);
    let edited = age(&pass, audit.path(), Duration::days(1), Signatures::Drop);
    let output = audit.path().join(run_id(&edited)).join("work-1.out");
    assert!(
        output.is_file(),
        "the copy keeps its outputs: {}",
        output.display()
    );
    std::fs::write(&output, "working on a forged host\n").unwrap();
    runbook(["audit", "verify"]).arg(&edited).expect_code(1);
    let doc = drills_json(cat.path(), audit.path(), &[], 0);
    let g = entry(&doc, "gate-drill");
    assert_eq!(g["last_pass"]["run"], run_id(&a20));
    assert_eq!(g["runs"], 4);
    assert_eq!(g["runs_since"], 2);
    assert_eq!(
        g["since_verdicts"],
        serde_json::json!(["FAIL", "PASS (not counted)"])
    );
    let not = &g["not_counted"][0];
    assert_eq!(not["run"], run_id(&edited));
    let reason = not["reason"].as_str().unwrap();
    assert!(
        reason.contains("TAMPERED") && reason.contains("step `work`"),
        "{reason}"
    );
    // A chain edited in place is tampered: never a PASS.
    let broken = age(&pass, audit.path(), Duration::hours(2), Signatures::Drop);
    let text = std::fs::read_to_string(&broken).unwrap();
    std::fs::write(&broken, text.replacen("Do the work", "Do the wirk", 1)).unwrap();
    let doc = drills_json(cat.path(), audit.path(), &[], 0);
    let g = entry(&doc, "gate-drill");
    assert_eq!(g["last_pass"]["run"], run_id(&a20));
    assert_eq!(
        g["since_verdicts"],
        serde_json::json!(["FAIL", "PASS (not counted)", "TAMPERED"])
    );
}

/// With `--signers`, a PASS counts only when its seal is signed by a listed key: not an
/// unsigned one, not one signed by another key, not a back-dated copy of a signed one.
#[test]
fn under_signers_only_a_pass_signed_by_a_listed_key_counts() {
    let (alice, mallory) = (Agent::start(), Agent::start());
    let keys = tempfile::tempdir().unwrap();
    let signers = alice.allowed_signers(keys.path(), "alice");
    let signers_arg = ["--signers", signers.to_str().unwrap()];
    let cat = catalog(&["gate-drill.yaml", "weekly-drill.yaml"]);
    let audit = tempfile::tempdir().unwrap();
    let weekly = drill(cat.path(), audit.path(), "weekly-drill", &[], Some(&alice), 0);
    let unsigned = gate(cat.path(), audit.path(), true, None);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let foreign = gate(cat.path(), audit.path(), true, Some(&mallory));

    // Without --signers both count; the newest is signed, by its own key.
    let doc = drills_json(cat.path(), audit.path(), &[], 0);
    let g = entry(&doc, "gate-drill");
    assert_eq!(g["last_pass"]["run"], run_id(&foreign));
    assert_eq!(g["last_pass"]["signed"], true);
    assert!(
        g["last_pass"]["signed_by"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:"),
        "{g}"
    );
    assert_eq!(entry(&doc, "weekly-drill")["last_pass"]["run"], run_id(&weekly));

    // Under alice's allowed_signers, neither counts, and each says why.
    let doc = drills_json(cat.path(), audit.path(), &signers_arg, 5);
    let g = entry(&doc, "gate-drill");
    assert_eq!(g["overdue"], true);
    assert_eq!(g["last_pass"], Value::Null);
    let reasons: Vec<(&str, &str)> = g["not_counted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["run"].as_str().unwrap(), n["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, run_id(&foreign));
    assert!(
        reasons[0].1.starts_with("not signed by a key of --signers") && reasons[0].1.contains("is not in"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].0, run_id(&unsigned));
    assert!(reasons[1].1.contains("the trail is unsigned"), "{reasons:?}");
    // Alice's weekly drill is signed by her: it counts, with her name.
    let w = entry(&doc, "weekly-drill");
    assert_eq!(w["overdue"], false);
    assert!(
        w["last_pass"]["signed_by"]
            .as_str()
            .unwrap()
            .starts_with("alice (SHA256:"),
        "{w}"
    );
    let out = drills(cat.path(), audit.path(), &signers_arg, 5);
    assert!(
        out.stdout.contains(&format!(
            "OVERDUE: gate-drill has no PASS signed by a key of {} within 30d",
            signers.display()
        )),
        "{}",
        out.stdout
    );

    // A PASS signed by alice: the gate is held again.
    let signed = gate(cat.path(), audit.path(), true, Some(&alice));
    let doc = drills_json(cat.path(), audit.path(), &signers_arg, 0);
    let g = entry(&doc, "gate-drill");
    assert_eq!(g["last_pass"]["run"], run_id(&signed));
    assert!(
        g["last_pass"]["signed_by"]
            .as_str()
            .unwrap()
            .starts_with("alice ("),
        "{g}"
    );
    let out = drills(cat.path(), audit.path(), &signers_arg, 0);
    assert!(out.stdout.contains(" alice (SHA256:"), "{}", out.stdout);

    // Back-dating a signed PASS keeps signatures over hashes that no longer exist: it never
    // counts, --signers or not.
    let forged_dir = tempfile::tempdir().unwrap();
    let forged = age(&signed, forged_dir.path(), Duration::days(3), Signatures::Keep);
    let doc = drills_json(cat.path(), forged_dir.path(), &[], 5);
    let g = entry(&doc, "gate-drill");
    assert_eq!(g["last_pass"], Value::Null);
    assert_eq!(g["not_counted"][0]["run"], run_id(&forged));
    let reason = g["not_counted"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("a signature does not hold"), "{reason}");
}

/// A drill over SSH (the sshd fixture) is a drill like any: aged ten days, it holds a 30-day
/// gate, and its evidence page names the host key that answered.
#[test]
fn a_drill_over_ssh_counts_and_its_evidence_names_the_host_key() {
    let sshd = crate::support::sshd::Sshd::start();
    let cat = catalog(&["gate-drill.yaml"]);
    let runs = tempfile::tempdir().unwrap();
    let target = format!("app={}", sshd.dest());
    let (identity, known_hosts, config) = (
        sshd.identity.to_str().unwrap(),
        sshd.known_hosts.to_str().unwrap(),
        sshd.ssh_config.to_str().unwrap(),
    );
    let real = drill(
        cat.path(),
        runs.path(),
        "gate-drill",
        &[
            "--answer",
            "check=done",
            "--target",
            &target,
            "--identity",
            identity,
            "--known-hosts",
            known_hosts,
            "--ssh-config",
            config,
        ],
        None,
        0,
    );
    let audit = tempfile::tempdir().unwrap();
    let aged = age(&real, audit.path(), Duration::days(10), Signatures::Drop);
    let doc = drills_json(cat.path(), audit.path(), &[], 0);
    assert_eq!(entry(&doc, "gate-drill")["last_pass"]["run"], run_id(&aged));
    let page = audit.path().join("evidence.html");
    runbook(["--dir"])
        .arg(cat.path())
        .args(["evidence"])
        .arg(&aged)
        .arg("-o")
        .arg(&page)
        .expect_code(0);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains(&format!("app={} (ssh-ed25519 SHA256:", sshd.dest())),
        "{html}"
    );
}

// ---------------------------------------------------------------------------------------
// The trend chart of `review` with several runs.

/// Five re-timed copies of a real review drill: 3 drills and 2 incidents, totals known.
fn five_runs(out: &Path) -> Vec<PathBuf> {
    let audit = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let real = crate::support::runs::drill(audit.path(), scratch.path());
    let runs = [
        ("drill", 400),
        ("incident", 500),
        ("drill", 300),
        ("incident", 450),
        ("drill", 200),
    ];
    runs.iter()
        .enumerate()
        .map(|(i, (mode, step))| {
            let with = Retime {
                mode: Some(mode),
                ..Retime::default()
            };
            retime_with(
                &real,
                out,
                &format!("2026112{}T030211Z-review-drill-000{i}", i + 1),
                &format!("2026-11-2{}T03:02:11Z", i + 1),
                *step,
                &with,
            )
        })
        .collect()
}

fn review_of(paths: &[PathBuf], format: &str) -> String {
    runbook(["review", "--format", format])
        .args(paths)
        .expect_code(0)
        .stdout
}

fn attr(node: roxmltree::Node, name: &str) -> f64 {
    node.attribute(name)
        .unwrap_or_else(|| panic!("no {name} on {node:?}"))
        .parse()
        .unwrap()
}

#[test]
fn several_runs_of_one_runbook_draw_the_trend_as_an_svg_chart() {
    let out = tempfile::tempdir().unwrap();
    let paths = five_runs(out.path());
    let doc: Value = serde_json::from_str(&review_of(&paths, "json")).unwrap();
    let columns = doc["comparison"]["runs"].as_array().unwrap().clone();
    assert_eq!(columns.len(), 5);
    let html = review_of(&paths, "html");
    let xml = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("the HTML is well-formed XML");
    let chart = xml
        .descendants()
        .find(|n| n.has_tag_name("svg") && n.attribute("class") == Some("trend"))
        .expect("a trend chart");
    assert_eq!(chart.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
    let plot = chart
        .descendants()
        .find(|n| n.attribute("class") == Some("plot"))
        .unwrap();
    let (y_max, top, bottom) = (
        attr(plot, "data-y-max-ms"),
        attr(plot, "data-plot-top"),
        attr(plot, "data-plot-bottom"),
    );
    let y = |ms: f64| bottom - ms / y_max * (bottom - top);
    let groups: Vec<roxmltree::Node> = plot
        .children()
        .filter(|n| n.has_tag_name("g") && n.attribute("class").is_some_and(|c| c.starts_with("run ")))
        .collect();
    assert_eq!(groups.len(), 5, "a bar per run");
    let rto = columns[0]["rto_ms"].as_f64().unwrap();
    assert!(y_max >= rto, "the RTO is on the chart");
    for (g, column) in groups.iter().zip(&columns) {
        let mode = column["mode"].as_str().unwrap();
        let total = column["total_ms"].as_f64().unwrap();
        assert_eq!(g.attribute("data-run"), column["run"].as_str());
        assert_eq!(attr(*g, "data-total-ms"), total);
        assert_eq!(g.attribute("data-mode"), Some(mode));
        // The marker at the total: its shape tells the mode.
        let marker = g
            .children()
            .find(|n| n.attribute("class").is_some_and(|c| c.starts_with("point")))
            .unwrap();
        let shape = if mode == "drill" { "circle" } else { "polygon" };
        assert_eq!(marker.tag_name().name(), shape, "{mode}");
        assert!(
            (attr(marker, "data-cy") - y(total)).abs() < 0.11,
            "{mode} {total}"
        );
        // Human time stacked under machine time, from the bottom.
        let rect = |class: &str| {
            g.children()
                .find(|n| n.has_tag_name("rect") && n.attribute("class").is_some_and(|c| c.ends_with(class)))
                .unwrap_or_else(|| panic!("no {class} bar"))
        };
        let (human, machine) = (rect("human"), rect("machine"));
        let human_ms = column["human_ms"].as_f64().unwrap();
        let machine_ms = column["machine_ms"].as_f64().unwrap();
        assert!(human_ms + machine_ms <= total && machine_ms > 0.0, "{column}");
        assert!((attr(human, "y") + attr(human, "height") - bottom).abs() < 0.11);
        assert!((attr(human, "y") - y(human_ms)).abs() < 0.11);
        assert!((attr(machine, "y") + attr(machine, "height") - attr(human, "y")).abs() < 0.11);
        assert!((attr(machine, "y") - y(human_ms + machine_ms)).abs() < 0.11);
        let total_bar = rect("total");
        assert!((attr(total_bar, "y") - y(total)).abs() < 0.11);
    }
    // The RTO line, and a legend that tells drills from incidents.
    let rto_line = plot
        .children()
        .find(|n| n.has_tag_name("polyline") && n.attribute("class") == Some("rto"))
        .unwrap();
    for point in rto_line.attribute("points").unwrap().split(' ') {
        let py: f64 = point.split(',').nth(1).unwrap().parse().unwrap();
        assert!((py - y(rto)).abs() < 0.11);
    }
    let legend: Vec<String> = chart
        .descendants()
        .filter(|n| n.attribute("class") == Some("legend"))
        .map(|n| {
            n.descendants()
                .filter(|t| t.is_text())
                .map(|t| t.text().unwrap())
                .collect()
        })
        .collect();
    for words in [
        "human",
        "machine",
        "total of a drill",
        "total of an incident",
        "RTO",
    ] {
        assert!(legend.iter().any(|l| l.starts_with(words)), "{words}: {legend:?}");
    }
    for mode in ["drill", "incident"] {
        assert!(
            plot.children()
                .any(|n| n.attribute("class") == Some(&format!("trend-line {mode}"))),
            "a line through the {mode}s"
        );
    }
}

/// The numbers of `[a, b, c]`.
fn values(list: &str) -> Vec<f64> {
    list.split(',').map(|v| v.trim().parse().unwrap()).collect()
}

#[test]
fn several_runs_of_one_runbook_draw_the_trend_as_a_mermaid_xychart() {
    let out = tempfile::tempdir().unwrap();
    let paths = five_runs(out.path());
    let doc: Value = serde_json::from_str(&review_of(&paths, "json")).unwrap();
    let columns = doc["comparison"]["runs"].as_array().unwrap().clone();
    let md = review_of(&paths, "md");
    let start = md.find("```mermaid\nxychart-beta\n").expect("an xychart block") + "```mermaid\n".len();
    let block = &md[start..start + md[start..].find("```").unwrap()];
    let lines: Vec<&str> = block.lines().map(str::trim).collect();
    assert_eq!(lines[0], "xychart-beta");
    let title = regex::Regex::new(r#"^title "[^"]+"$"#).unwrap();
    assert!(title.is_match(lines[1]), "{block}");
    let x_axis = regex::Regex::new(r#"^x-axis \[("[^"]*"(, "[^"]*")*)\]$"#).unwrap();
    let labels = x_axis.captures(lines[2]).unwrap_or_else(|| panic!("{block}"))[1].to_string();
    let labels: Vec<&str> = labels.split(", ").map(|l| l.trim_matches('"')).collect();
    assert_eq!(labels.len(), 5);
    for (label, column) in labels.iter().zip(&columns) {
        assert!(label.contains(column["mode"].as_str().unwrap()), "{label}");
    }
    let y_axis =
        regex::Regex::new(r#"^y-axis "(seconds|minutes|hours)" 0 --> ([0-9]+(\.[0-9]+)?)$"#).unwrap();
    let caps = y_axis.captures(lines[3]).unwrap_or_else(|| panic!("{block}"));
    let unit = match &caps[1] {
        "seconds" => 1_000.0,
        "minutes" => 60_000.0,
        _ => 3_600_000.0,
    };
    let y_max: f64 = caps[2].parse().unwrap();
    let series = regex::Regex::new(r"^(bar|line) \[([-0-9., ]+)\]$").unwrap();
    let plots: Vec<(String, Vec<f64>)> = lines[4..]
        .iter()
        .map(|l| {
            let c = series.captures(l).unwrap_or_else(|| panic!("`{l}` in\n{block}"));
            (c[1].to_string(), values(&c[2]))
        })
        .collect();
    let kinds: Vec<&str> = plots.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["bar", "bar", "bar", "line"], "{block}");
    for (_, v) in &plots {
        assert_eq!(v.len(), 5, "{block}");
        assert!(v.iter().all(|x| *x >= 0.0 && *x <= y_max), "{block}");
    }
    let near = |a: f64, ms: &Value| (a - ms.as_f64().unwrap() / unit).abs() <= 0.05;
    for (i, column) in columns.iter().enumerate() {
        assert!(
            near(plots[0].1[i], &column["total_ms"]),
            "total of run {i}: {block}"
        );
        let stacked = column["human_ms"].as_u64().unwrap() + column["machine_ms"].as_u64().unwrap();
        assert!(
            near(plots[1].1[i], &stacked.into()),
            "human + machine of run {i}: {block}"
        );
        assert!(
            near(plots[2].1[i], &column["human_ms"]),
            "human of run {i}: {block}"
        );
        assert!(near(plots[3].1[i], &column["rto_ms"]), "RTO of run {i}: {block}");
    }
    // Runs of different runbooks are compared in a table, with no chart of one trend.
    let other_audit = tempfile::tempdir().unwrap();
    let cat = catalog(&["weekly-drill.yaml"]);
    let weekly = drill(cat.path(), other_audit.path(), "weekly-drill", &[], None, 0);
    let mixed = vec![paths[0].clone(), weekly];
    assert!(!review_of(&mixed, "md").contains("xychart-beta"));
    assert!(!review_of(&mixed, "html").contains("class=\"trend\""));
}

// ---------------------------------------------------------------------------------------
// `runbook evidence`.

/// The bytes of the `data:` link of `<a download="NAME">`.
fn download(xml: &roxmltree::Document, name: &str) -> Vec<u8> {
    use base64::Engine;
    let link = xml
        .descendants()
        .find(|n| n.has_tag_name("a") && n.attribute("download") == Some(name))
        .unwrap_or_else(|| panic!("no download `{name}`"));
    let href = link.attribute("href").unwrap();
    let (_, data) = href.split_once(";base64,").expect("a base64 data: URI");
    base64::engine::general_purpose::STANDARD.decode(data).unwrap()
}

fn by_id<'a>(xml: &'a roxmltree::Document, id: &str) -> roxmltree::Node<'a, 'a> {
    xml.descendants()
        .find(|n| n.attribute("id") == Some(id))
        .unwrap_or_else(|| panic!("no #{id}"))
}

fn text_of(node: roxmltree::Node) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .map(|n| n.text().unwrap())
        .collect()
}

fn parse(html: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse_with_options(
        html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("the page is well-formed XML")
}

/// The evidence page of a signed drill holds what it claims: the runbook as run (hashing to
/// the trail's `file_sha256`), the head and seal signature that `ssh-keygen -Y verify` accepts
/// with the very command the page prints, and nothing fetched from anywhere.
#[test]
fn the_evidence_page_holds_the_runbook_as_run_and_a_signature_ssh_keygen_accepts() {
    let alice = Agent::start();
    let keys = tempfile::tempdir().unwrap();
    let signers = alice.allowed_signers(keys.path(), "alice");
    let cat = catalog(&["gate-drill.yaml"]);
    let audit = tempfile::tempdir().unwrap();
    // A deviation to show: the manual step is reported done, the work step run as written.
    let trail = gate(cat.path(), audit.path(), true, Some(&alice));
    let page = keys.path().join("evidence.html");
    let out = runbook(["--dir"])
        .arg(cat.path())
        .arg("--audit-dir")
        .arg(audit.path())
        .args(["evidence", "last", "-o"])
        .arg(&page)
        .arg("--signers")
        .arg(&signers)
        .expect_code(0);
    assert!(
        out.stderr.contains("wrote ") && out.stderr.contains("PASS"),
        "{}",
        out.stderr
    );
    let html = std::fs::read_to_string(&page).unwrap();
    let xml = parse(&html);
    // Self-contained: every link is inside the page or a data: URI.
    for n in xml.descendants() {
        for a in ["href", "src"] {
            if let Some(v) = n.attribute(a) {
                assert!(
                    v.starts_with("data:") || v.starts_with('#') || v.starts_with("url(#"),
                    "{a}={v}"
                );
            }
        }
    }
    assert!(!html.contains("<script"), "no script");
    let first = first_event(&trail);
    let want = first["file_sha256"].as_str().unwrap();
    let embedded = text_of(by_id(&xml, "runbook-file"));
    assert_eq!(runbook::testing::audit::sha256_hex(embedded.as_bytes()), want);
    assert_eq!(
        embedded,
        std::fs::read_to_string(cat.path().join("gate-drill.yaml")).unwrap()
    );
    assert_eq!(
        runbook::testing::audit::sha256_hex(&download(&xml, "gate-drill.yaml")),
        want
    );
    // The whole trail, byte for byte.
    assert_eq!(
        download(&xml, &format!("{}.jsonl", run_id(&trail))),
        std::fs::read(&trail).unwrap()
    );
    // The head and the signature, checked by ssh-keygen with the page's own command.
    let seal = seal(&trail);
    let head = seal["hash"].as_str().unwrap();
    assert_eq!(text_of(by_id(&xml, "head")), head);
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("seal.hash"), download(&xml, "seal.hash")).unwrap();
    std::fs::write(work.path().join("seal.sig"), download(&xml, "seal.sig")).unwrap();
    std::fs::copy(&signers, work.path().join("allowed_signers")).unwrap();
    assert_eq!(
        std::fs::read_to_string(work.path().join("seal.hash")).unwrap(),
        head
    );
    let commands = text_of(by_id(&xml, "verify-command"));
    let verify = commands
        .lines()
        .find(|l| l.starts_with("ssh-keygen -Y verify"))
        .unwrap();
    assert_eq!(
        verify,
        "ssh-keygen -Y verify -f allowed_signers -I alice -n runbook-audit -s seal.sig < seal.hash"
    );
    let shell = std::process::Command::new("sh")
        .arg("-c")
        .arg(&commands)
        .current_dir(work.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&shell.stdout).into_owned() + &String::from_utf8_lossy(&shell.stderr);
    assert!(shell.status.success(), "{commands}\n{said}");
    assert!(
        said.contains("Good \"runbook-audit\" signature for alice"),
        "{said}"
    );
    // The verdict, the timeline, the record of what was done.
    assert!(text_of(by_id(&xml, "verdict")).contains("PASS: resolved in"));
    assert!(
        xml.descendants()
            .any(|n| n.has_tag_name("svg") && n.attribute("class") == Some("timeline"))
    );
    let record = text_of(by_id(&xml, "record"));
    assert!(record.contains("check: how did it go?: done"), "{record}");
    assert!(
        !html.contains("id=\"tampered\""),
        "a sound trail has no tampering banner"
    );
}

/// The runbook file changed since the run: refused (exit 2, no page) with what to do; given
/// the file as it was run, the page is written.
#[test]
fn evidence_refuses_a_runbook_changed_since_the_run_until_given_the_file_as_run() {
    let cat = catalog(&["gate-drill.yaml"]);
    let audit = tempfile::tempdir().unwrap();
    let trail = gate(cat.path(), audit.path(), true, None);
    let file = cat.path().join("gate-drill.yaml");
    let as_run = audit.path().join("as-run.yaml");
    std::fs::copy(&file, &as_run).unwrap();
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("rto: 1m", "rto: 2m"),
    )
    .unwrap();
    let page = audit.path().join("evidence.html");
    let out = runbook(["--dir"])
        .arg(cat.path())
        .args(["evidence"])
        .arg(&trail)
        .arg("-o")
        .arg(&page)
        .expect_code(2);
    assert!(
        out.stderr
            .contains(&format!("`{}` has changed since the run", file.display()))
            && out.stderr.contains("--runbook FILE"),
        "{}",
        out.stderr
    );
    assert!(!page.exists());
    // Another file is not the one that ran either.
    let out = runbook(["evidence"])
        .arg(&trail)
        .arg("-o")
        .arg(&page)
        .arg("--runbook")
        .arg(&file)
        .expect_code(2);
    assert!(
        out.stderr.contains("it is not the file that ran"),
        "{}",
        out.stderr
    );
    runbook(["evidence"])
        .arg(&trail)
        .arg("-o")
        .arg(&page)
        .arg("--runbook")
        .arg(&as_run)
        .expect_code(0);
    let html = std::fs::read_to_string(&page).unwrap();
    let xml = parse(&html);
    assert_eq!(
        runbook::testing::audit::sha256_hex(text_of(by_id(&xml, "runbook-file")).as_bytes()),
        first_event(&trail)["file_sha256"].as_str().unwrap()
    );
    // Unsigned: said, and no signature to check is offered.
    assert!(html.contains("UNSIGNED"), "{html}");
    assert!(!html.contains("id=\"verify-command\""));
    // An unknown run is bad input too.
    let out = runbook(["--audit-dir"])
        .arg(audit.path())
        .args(["evidence", "20990101T000000Z", "-o"])
        .arg(&page)
        .expect_code(2);
    assert!(out.stderr.contains("no run `20990101T000000Z`"), "{}", out.stderr);
}

/// A tampered trail still gets its page, saying so first; exit 1.
#[test]
fn evidence_of_a_tampered_trail_is_written_with_a_banner_and_exits_1() {
    let cat = catalog(&["gate-drill.yaml"]);
    let audit = tempfile::tempdir().unwrap();
    let trail = gate(cat.path(), audit.path(), true, None);
    let text = std::fs::read_to_string(&trail).unwrap();
    std::fs::write(&trail, text.replacen("Check by eye", "Check by ear", 1)).unwrap();
    let page = audit.path().join("evidence.html");
    let out = runbook(["--dir"])
        .arg(cat.path())
        .args(["evidence"])
        .arg(&trail)
        .arg("-o")
        .arg(&page)
        .expect_code(1);
    assert!(
        out.stderr.contains("the trail does not hold") && out.stderr.contains("fails its hash chain at seq"),
        "{}",
        out.stderr
    );
    let html = std::fs::read_to_string(&page).unwrap();
    let xml = parse(&html);
    let banner = text_of(by_id(&xml, "tampered"));
    assert!(banner.starts_with("TAMPERED or untrusted"), "{banner}");
    assert!(banner.contains("fails its hash chain at seq"), "{banner}");
    // The banner comes before the verdict.
    assert!(html.find("id=\"tampered\"").unwrap() < html.find("id=\"verdict\"").unwrap());
}

/// Issue 24 #8: `drills` checks a PASS's outputs as `audit verify` does, and an output replaced
/// by a FIFO holds it up no more than it does `verify`: the PASS is not counted, and why.
#[test]
fn an_output_replaced_by_a_fifo_does_not_hang_drills() {
    let cat = catalog(&["gate-drill.yaml"]);
    let audit = tempfile::tempdir().unwrap();
    let pass = gate(cat.path(), audit.path(), true, None);
    let out = audit.path().join(run_id(&pass)).join("work-1.out");
    std::fs::remove_file(&out).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&out).status().unwrap();
    assert!(made.success());
    let mut child = std::process::Command::new(crate::support::cmd::bin())
        .arg("--dir")
        .arg(cat.path())
        .arg("--audit-dir")
        .arg(audit.path())
        .args(["drills", "--json"])
        .env_remove("RUNBOOK_PATH")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait::exit(&mut child, std::time::Duration::from_secs(30));
    let mut json = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut json).unwrap();
    let doc: Vec<Value> = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let g = entry(&doc, "gate-drill");
    assert!(g["last_pass"].is_null(), "{g}");
    let reason = g["not_counted"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not a regular file"), "{g}");
}

// ---------------------------------------------------------------------------------------
// Issue 25, item 9: what a drill ran with, how it was driven, and timelines that fit the run.

/// The evidence page says what the drill ran with: each input as the run had it (`--set
/// backup_dir=…`, the database host of its default) and each target; a secret input shows
/// masked, never its value.
#[test]
fn the_evidence_page_names_the_inputs_and_targets_the_drill_ran_with_and_no_secret() {
    let cat = catalog(&["inputs-drill.yaml"]);
    let audit = tempfile::tempdir().unwrap();
    let secret = "hunter2-not-for-the-page";
    let trail = drill(
        cat.path(),
        audit.path(),
        "inputs-drill",
        &[
            "--set",
            "backup_dir=/srv/backups/2026-12-06",
            "--set",
            &format!("pg_password={secret}"),
        ],
        None,
        0,
    );
    let page = audit.path().join("evidence.html");
    runbook(["--dir"])
        .arg(cat.path())
        .arg("--audit-dir")
        .arg(audit.path())
        .args(["evidence", &run_id(&trail), "-o"])
        .arg(&page)
        .expect_code(0);
    let html = std::fs::read_to_string(&page).unwrap();
    let xml = parse(&html);
    let inputs = by_id(&xml, "inputs");
    let rows: Vec<Vec<String>> = inputs
        .descendants()
        .filter(|n| n.has_tag_name("tr"))
        .map(|tr| tr.children().filter(|c| c.is_element()).map(text_of).collect())
        .collect();
    let row = |first: &str| {
        rows.iter()
            .find(|r| r[0] == first)
            .unwrap_or_else(|| panic!("no row `{first}` in {rows:?}"))
            .clone()
    };
    assert_eq!(row("backup_dir")[1], "/srv/backups/2026-12-06");
    assert_eq!(row("db_host")[1], "db-staging.internal");
    assert_eq!(row("pg_password")[1], "***");
    assert!(row("pg_password")[2].contains("secret"), "{rows:?}");
    assert_eq!(row("db")[1], "local", "the target role and where it ran");
    assert!(!html.contains(secret), "the secret is on the page");
    // The review's facts carry the inputs too, in every format.
    let text = runbook(["review"]).arg(&trail).expect_code(0).stdout;
    assert!(
        text.contains("backup_dir=/srv/backups/2026-12-06") && text.contains("pg_password=***"),
        "{text}"
    );
    assert!(!text.contains(secret));
}

/// `runbook drill weekly-drill` driven by a person in a pseudo-terminal (no `--yes`).
fn interactive_drill(cat: &Path, audit: &Path) -> PathBuf {
    use crate::support::pty;
    let before = audit_files(audit);
    let mut s = pty::spawn(
        &[
            "--dir",
            cat.to_str().unwrap(),
            "drill",
            "weekly-drill",
            "--operator",
            "alice",
        ],
        audit,
    );
    s.exp_string("What now?").unwrap();
    pty::keys(&mut s, "\r");
    s.exp_string("PASS").unwrap();
    assert_eq!(pty::wait_exit(&mut s), 0);
    let mut fresh: Vec<PathBuf> = audit_files(audit)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(fresh.len(), 1);
    fresh.pop().unwrap()
}

/// Two drills of one day, one by a person and two unattended (`--yes`): `drills` says which
/// kind the last PASS was, and its trend compares the unattended passes alone (the tester saw
/// `faster (-85%)` from an interactive run to an unattended one). The trail says so in `run
/// started`.
#[test]
fn drills_mark_the_kind_of_a_pass_and_trend_like_with_like() {
    let cat = catalog(&["weekly-drill.yaml"]);
    let audit = tempfile::tempdir().unwrap();
    let by_hand = interactive_drill(cat.path(), audit.path());
    drill(cat.path(), audit.path(), "weekly-drill", &[], None, 0);
    let last = drill(cat.path(), audit.path(), "weekly-drill", &[], None, 0);
    assert_eq!(first_event(&by_hand)["unattended"], false);
    assert_eq!(first_event(&last)["unattended"], true);
    let doc = drills_json(cat.path(), audit.path(), &[], 0);
    let weekly = entry(&doc, "weekly-drill");
    assert_eq!(weekly["last_pass"]["run"], run_id(&last).as_str());
    assert_eq!(weekly["last_pass"]["kind"], "unattended");
    assert_eq!(weekly["trend"]["runs"], 2, "the two unattended passes: {weekly}");
    assert_eq!(weekly["trend"]["kind"], "unattended");
    assert_eq!(weekly["trend_left_out"], 1);
    let out = drills(cat.path(), audit.path(), &[], 0);
    let header = out.stdout.lines().next().unwrap();
    assert!(header.contains(" kind "), "{}", out.stdout);
    let line = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("weekly-drill"))
        .unwrap();
    assert!(line.contains("unattended"), "{line}");
    let launched = time(&first_event(&last)["ts"])
        .format("%Y-%m-%d %H:%M")
        .to_string();
    assert!(line.contains(&launched), "the PASS's time: {line}");
    assert!(
        out.stdout
            .contains("weekly-drill: the trend compares unattended passes only; 1 other pass is left out"),
        "{}",
        out.stdout
    );
}

/// A review of same-day drills, one interactive and one unattended: the trend chart's labels
/// (SVG and Mermaid) tell them apart by time and kind (`12-06 09:14`, `unattended drill`), the
/// markers by fill, and the comparison gives each kind its own trend.
#[test]
fn the_trend_chart_labels_same_day_runs_by_time_and_kind() {
    let audit = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let unattended = crate::support::runs::drill(audit.path(), scratch.path());
    let person = crate::support::runs::interactive(audit.path(), scratch.path());
    let drill_mode = Retime {
        mode: Some("drill"),
        ..Retime::default()
    };
    let runs = [
        (
            &person,
            "20261206T091400Z-review-drill-0001",
            "2026-12-06T09:14:00Z",
        ),
        (
            &unattended,
            "20261206T140300Z-review-drill-0002",
            "2026-12-06T14:03:00Z",
        ),
        (
            &unattended,
            "20261206T163000Z-review-drill-0003",
            "2026-12-06T16:30:00Z",
        ),
    ];
    let paths: Vec<PathBuf> = runs
        .iter()
        .map(|(src, run, base)| retime_with(src, out.path(), run, base, 300, &drill_mode))
        .collect();
    let html = review_of(&paths, "html");
    let xml = parse(&html);
    let chart = xml
        .descendants()
        .find(|n| n.has_tag_name("svg") && n.attribute("class") == Some("trend"))
        .expect("a trend chart");
    let groups: Vec<roxmltree::Node> = chart
        .descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("data-run").is_some())
        .collect();
    assert_eq!(groups.len(), 3);
    let expected = [
        ("09:14", "interactive"),
        ("14:03", "unattended"),
        ("16:30", "unattended"),
    ];
    for (g, (hhmm, kind)) in groups.iter().zip(expected) {
        let labels: Vec<String> = g
            .children()
            .filter(|n| n.has_tag_name("text"))
            .map(text_of)
            .collect();
        assert!(
            labels.iter().any(|l| l.ends_with(&format!("12-06 {hhmm}"))),
            "{labels:?}"
        );
        assert!(labels.contains(&format!("{kind} drill")), "{labels:?}");
        assert_eq!(g.attribute("data-kind"), Some(kind));
        let marker = g
            .children()
            .find(|n| n.attribute("class").is_some_and(|c| c.starts_with("point")))
            .unwrap();
        assert_eq!(
            marker.attribute("class").unwrap().contains("unattended"),
            kind == "unattended"
        );
    }
    let doc: Value = serde_json::from_str(&review_of(&paths, "json")).unwrap();
    let c = &doc["comparison"];
    assert!(c["trend"].is_null(), "no trend across kinds: {c}");
    let trends = c["trends"].as_array().unwrap();
    assert_eq!(trends.len(), 1, "{c}");
    assert_eq!(
        (trends[0]["kind"].as_str(), trends[0]["runs"].as_u64()),
        (Some("unattended"), Some(2))
    );
    let text = review_of(&paths, "text");
    assert!(text.contains("Trend of the unattended drills:"), "{text}");
    assert!(text.contains("only one interactive drill: no trend."), "{text}");
    let md = review_of(&paths, "md");
    let x_axis = md.lines().find(|l| l.trim_start().starts_with("x-axis")).unwrap();
    assert!(
        x_axis.contains("1 interactive drill 12-06 09:14")
            && x_axis.contains("2 unattended drill 12-06 14:03"),
        "{x_axis}"
    );
}

/// The timeline SVG of a one-run HTML review.
fn timeline_of(trail: &Path) -> String {
    let html = runbook(["review", "--format", "html"])
        .arg(trail)
        .expect_code(0)
        .stdout;
    let start = html.find("<svg").expect("an SVG");
    let end = html[start..].find("</svg>").unwrap() + start + "</svg>".len();
    html[start..end].to_string()
}

/// 11px system-ui: digits and letters are about 0.55em wide; the test's own measure.
const TEST_CHAR_W: f64 = 6.0;

/// The x-range a text element takes, from its anchor and its length.
fn text_range(n: roxmltree::Node) -> (f64, f64) {
    let x = attr(n, "x");
    let w = text_of(n).chars().count() as f64 * TEST_CHAR_W;
    match n.attribute("text-anchor") {
        Some("middle") => (x - w / 2.0, x + w / 2.0),
        Some("end") => (x - w, x),
        _ => (x, x + w),
    }
}

/// The plot of a timeline: the viewBox width less the row labels (200) and the right margin
/// (24), as the chart has always been laid out.
const PLOT_LEFT: f64 = 200.0;
const PLOT_RIGHT: f64 = 976.0;

/// The checks every timeline must pass: no two texts of the axis (the rows above the plot)
/// overlap, nothing is drawn past the right edge, and the step visits span at least
/// `min_share` of the plot. Returns the SVG's document for more checks.
#[track_caller]
fn check_timeline(svg: &str, min_share: f64) -> roxmltree::Document<'_> {
    let xml = roxmltree::Document::parse(svg).expect("well-formed SVG");
    let root = xml.root_element();
    let top_of_rows = 34.0;
    let mut axis: Vec<(f64, (f64, f64), String)> = root
        .descendants()
        .filter(|n| n.has_tag_name("text") && n.attribute("y").is_some())
        .filter(|n| !n.ancestors().any(|a| a.attribute("class") == Some("legend")))
        .filter(|n| attr(*n, "y") < top_of_rows)
        .map(|n| (attr(n, "y"), text_range(n), text_of(n)))
        .collect();
    axis.sort_by(|a, b| a.1.0.total_cmp(&b.1.0));
    for (i, a) in axis.iter().enumerate() {
        assert!(
            a.1.0 >= 0.0 && a.1.1 <= 1000.0,
            "`{}` off the chart: {:?}",
            a.2,
            a.1
        );
        for b in &axis[i + 1..] {
            let same_row = (a.0 - b.0).abs() < 6.0;
            assert!(
                !same_row || b.1.0 >= a.1.1,
                "`{}` {:?} overlaps `{}` {:?}",
                a.2,
                a.1,
                b.2,
                b.1
            );
        }
    }
    for n in root.descendants().filter(|n| n.is_element()) {
        for name in ["x1", "x2", "x"] {
            if let Some(v) = n.attribute(name) {
                let v: f64 = v.parse().unwrap();
                let w = if name == "x" && !n.has_tag_name("text") {
                    n.attribute("width").map_or(0.0, |w| w.parse().unwrap())
                } else {
                    0.0
                };
                let in_legend = n.ancestors().any(|a| a.attribute("class") == Some("legend"));
                assert!(
                    in_legend || v + w <= PLOT_RIGHT + 0.05 || n.has_tag_name("text"),
                    "{:?} {name}={v} (+{w}) is past the plot's right edge",
                    n.attribute("class")
                );
            }
        }
        if let Some(d) = n.attribute("d") {
            let x: f64 = d[1..].split(',').next().unwrap().parse().unwrap();
            assert!(
                x + 5.0 <= PLOT_RIGHT + 0.05,
                "{:?} at {x} is past the edge",
                n.attribute("class")
            );
        }
    }
    let spans: Vec<(f64, f64)> = root
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("class") == Some("span"))
        .map(|n| (attr(n, "x"), attr(n, "x") + attr(n, "width")))
        .collect();
    assert!(!spans.is_empty());
    let from = spans.iter().map(|s| s.0).fold(f64::MAX, f64::min);
    let to = spans.iter().map(|s| s.1).fold(f64::MIN, f64::max);
    let share = (to - from) / (PLOT_RIGHT - PLOT_LEFT);
    assert!(share >= min_share, "the steps take {share:.3} of the plot: {svg}");
    xml
}

/// A 21 s drill against a 15m RTO (the tester's: 21 s of steps squeezed into slivers, `UTC`
/// printed over `18:57:59`, a step's 20m target ticked past the edge): the steps fill the
/// plot, the axis labels stand apart, the far target and the RTO are marked at the edge.
#[test]
fn a_short_run_in_a_long_rto_fills_the_timeline_with_its_labels_apart() {
    let cat = catalog(&["timeline-drill.yaml"]);
    let audit = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let real = drill(cat.path(), audit.path(), "timeline-drill", &[], None, 0);
    let lines = std::fs::read_to_string(&real).unwrap().lines().count() as u64;
    let trail = crate::support::runs::retime(
        &real,
        out.path(),
        "20261206T185738Z-timeline-drill-0001",
        "2026-12-06T18:57:38Z",
        21_000 / (lines - 1),
    );
    let svg = timeline_of(&trail);
    let xml = check_timeline(&svg, 0.6);
    let texts: Vec<String> = xml
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(text_of)
        .collect();
    assert!(
        texts.iter().any(|t| t == "UTC"),
        "clock times on the axis: {texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("RTO 15m") && t.contains("after the end")),
        "the far RTO as a label: {texts:?}"
    );
}

/// `--since` an hour before the launch: the hour before the first step is a break that says
/// how long it was, not two thirds of the width.
#[test]
fn a_since_lead_is_a_break_that_says_its_length() {
    let cat = catalog(&["timeline-drill.yaml"]);
    let audit = tempfile::tempdir().unwrap();
    let since = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let trail = drill(
        cat.path(),
        audit.path(),
        "timeline-drill",
        &["--since", &since],
        None,
        4,
    );
    let svg = timeline_of(&trail);
    let xml = check_timeline(&svg, 0.6);
    let gap = xml
        .descendants()
        .find(|n| {
            n.has_tag_name("rect")
                && n.attribute("class").is_some_and(|c| c.starts_with("gap"))
                && attr(*n, "x") <= PLOT_LEFT + 40.0
        })
        .expect("the gap before the first step");
    let share = attr(gap, "width") / (PLOT_RIGHT - PLOT_LEFT);
    assert!(share <= 0.1, "the lead takes {share:.2} of the plot");
    let texts: Vec<String> = xml
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(text_of)
        .collect();
    assert!(
        texts.iter().any(|t| t.starts_with("1h00m")),
        "its length in words: {texts:?}"
    );
}

/// A shell recording is named by its path in the audit dir and the `runbook replay` command
/// that plays it, never by a `file://` link into the private (0700) audit dir.
#[test]
fn a_shell_recording_is_named_with_its_replay_command_not_a_file_link() {
    let cat = catalog(&["weekly-drill.yaml"]);
    let audit = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let real = drill(cat.path(), audit.path(), "weekly-drill", &[], None, 0);
    let run = run_id(&real);
    let mut lines = Vec::new();
    for line in std::fs::read_to_string(&real).unwrap().lines() {
        lines.push(line.to_string());
        let v: Value = serde_json::from_str(line).unwrap();
        if v["event"] == "step presented" && v["step"] == "work" {
            let mut opened = v.clone();
            let o = opened.as_object_mut().unwrap();
            o.insert("event".into(), "shell opened".into());
            o.insert("host".into(), "local".into());
            o.insert("shell".into(), 1.into());
            o.insert("from".into(), "before running".into());
            o.insert("cols".into(), 80.into());
            o.insert("rows".into(), 24.into());
            o.insert("output_file".into(), format!("{run}/shell-1.cast").into());
            let mut closed = opened.clone();
            let c = closed.as_object_mut().unwrap();
            c.insert("event".into(), "shell closed".into());
            c.insert("duration_ms".into(), 500.into());
            c.insert("output".into(), serde_json::json!({"path": format!("{run}/shell-1.cast"), "size": 10, "sha256": "0".repeat(64)}));
            lines.push(opened.to_string());
            lines.push(closed.to_string());
        }
    }
    // Numbered again in order (the copy's chain is recomputed by `retime`).
    let lines: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(seq, line)| {
            let mut v: Value = serde_json::from_str(line).unwrap();
            v["seq"] = seq.into();
            if v["event"] == "run finished" {
                v["events"] = (seq + 1).into();
            }
            v.to_string()
        })
        .collect();
    let edited = out.path().join(format!("{run}.jsonl"));
    std::fs::write(&edited, lines.join("\n") + "\n").unwrap();
    let chained = tempfile::tempdir().unwrap();
    let trail = crate::support::runs::retime(
        &edited,
        chained.path(),
        "20261206T120000Z-weekly-drill-0001",
        "2026-12-06T12:00:00Z",
        100,
    );
    let html = runbook(["review", "--format", "html"])
        .arg(&trail)
        .expect_code(0)
        .stdout;
    assert!(html.contains("shell-1.cast"), "the recording is named");
    assert!(!html.contains("file://"), "a file:// link in the review");
    assert!(
        html.contains("runbook replay 20261206T120000Z-weekly-drill-0001 1"),
        "the replay command"
    );
}
