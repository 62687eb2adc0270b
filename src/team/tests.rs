use std::path::Path;

use super::*;

/// The audit host's script, run here by the same `sh` it runs by there, and its answer read
/// as the audit host's would be: every trail, a run's outputs, names that are not runs skipped.
#[tokio::test]
async fn the_script_sends_what_is_asked_and_the_reader_keeps_it() {
    let there = tempfile::tempdir().unwrap();
    let d = there.path();
    std::fs::write(d.join("r1.jsonl"), "one\n").unwrap();
    std::fs::write(d.join("r2.jsonl"), "two\ntwo\n").unwrap();
    std::fs::create_dir(d.join("r2")).unwrap();
    std::fs::write(d.join("r2/s1-1.out"), "out put").unwrap();
    std::fs::write(d.join("r2/.hidden"), "no").unwrap();
    std::fs::write(d.join("with space.jsonl"), "no").unwrap();
    std::fs::write(d.join(".writer.jsonl"), "no").unwrap();
    std::os::unix::fs::symlink(d.join("r1.jsonl"), d.join("link.jsonl")).unwrap();
    let host = AuditHost::parse(&format!("ssh://a@h{}", d.display())).unwrap();
    let ask = |args: &[&str]| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(host.script("rb-record", SCRIPT, args))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let read = |bytes: Vec<u8>, into: &Path| {
        let into = into.to_path_buf();
        async move { receive::read_all(&mut tokio::io::BufReader::new(&bytes[..]), &into).await }
    };

    let here = tempfile::tempdir().unwrap();
    let listed = read(ask(&["list"]), here.path()).await.unwrap();
    assert_eq!(listed.listed, ["r1", "r2"]);

    let got = read(ask(&["trails"]), here.path()).await.unwrap();
    assert_eq!(got.trails, ["r1", "r2"]);
    assert_eq!(
        std::fs::read_to_string(here.path().join("r2.jsonl")).unwrap(),
        "two\ntwo\n"
    );
    assert!(!here.path().join("r2").exists(), "no outputs with the trails");
    read(ask(&["outputs", "r2", "nope"]), here.path()).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(here.path().join("r2/s1-1.out")).unwrap(),
        "out put"
    );
    assert!(!here.path().join("r2/.hidden").exists());

    let again = tempfile::tempdir().unwrap();
    let got = read(ask(&["runs", "r2", "../r1", "link"]), again.path())
        .await
        .unwrap();
    assert_eq!(got.trails, ["r2"]);
    assert!(again.path().join("r2/s1-1.out").is_file());
}
