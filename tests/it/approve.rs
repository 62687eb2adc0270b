//! The two-person rule (design §15) with two real accounts: the operator (`rbtest`) runs a step
//! marked `approve:`, which waits; `runbook approve` from another account (`rbapprover`) with
//! its own key releases it, and its signature verifies with `ssh-keygen -Y verify`. The
//! operator's own key and a key not in the approvers file are refused; a timeout and a denial
//! fail the step; an approvers file the operator can write is refused before anything runs.
//! With `quorum: 2`, one person counts once (a second signature with the same key, or with
//! another key of theirs, does not count) and a second person (`rbapprover2`) releases it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::cmd::bin;
use crate::support::wait;

const OPERATOR: &str = "rbtest";
const APPROVER: &str = "rbapprover";
const APPROVER2: &str = "rbapprover2";

/// A login for `name`, created when missing (the tests run as root, as CI does).
fn account(name: &str) {
    // The tests of this module run in parallel: one `useradd` at a time.
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = CREATING.lock().unwrap_or_else(|p| p.into_inner());
    crate::support::sshd::ensure_prerequisites();
    let exists = Command::new("id").arg(name).output().unwrap().status.success();
    if !exists {
        let made = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", name])
            .status()
            .unwrap();
        assert!(
            made.success(),
            "cannot create the account {name} (the tests need root)"
        );
    }
}

fn chown(path: &Path, user: &str) {
    let ok = Command::new("chown")
        .args(["-R", user])
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success());
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `runbook ARGS` as `user`.
fn as_user(user: &str, args: &[&str]) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", user, "--"])
        .arg(bin())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RUNBOOK_SIGNING_KEY")
        .stdin(Stdio::null());
    c
}

struct Setup {
    dir: tempfile::TempDir,
    book: PathBuf,
    inventory: PathBuf,
    audit: PathBuf,
    spool: PathBuf,
    marker: PathBuf,
    operator_key: PathBuf,
    approver_key: PathBuf,
    /// Another key of the approver's, listed under the same principal (`alice`).
    approver_laptop_key: PathBuf,
    stranger_key: PathBuf,
    /// The second approver's key (`bob`, account `rbapprover2`).
    approver2_key: PathBuf,
    approvers: PathBuf,
}

fn key(dir: &Path, name: &str, owner: &str) -> PathBuf {
    let key = crate::support::sshd::keygen(dir, name);
    chown(&key, owner);
    chown(&key.with_extension("pub"), owner);
    key
}

fn setup(timeout: &str) -> Setup {
    setup_with(timeout, 1)
}

fn setup_with(timeout: &str, quorum: u32) -> Setup {
    account(OPERATOR);
    account(APPROVER);
    account(APPROVER2);
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let keys = |who: &str| {
        let d = dir.path().join(format!("keys-{who}"));
        std::fs::create_dir(&d).unwrap();
        chown(&d, who);
        chmod(&d, 0o700);
        d
    };
    let operator_key = key(&keys(OPERATOR), "operator", OPERATOR);
    let approver_keys = keys(APPROVER);
    let approver_key = key(&approver_keys, "approver", APPROVER);
    // A second key of the approver's that is not in the approvers file.
    let stranger_key = key(&approver_keys, "stranger", APPROVER);
    let approver_laptop_key = key(&approver_keys, "laptop", APPROVER);
    let approver2_key = key(&keys(APPROVER2), "approver2", APPROVER2);
    // The approvers: alice (the approver's two keys), bob (the second approver's key) and the
    // operator too, so that refusing the operator's own key is the rule at work, not a missing
    // line. Owned by root, 0644.
    let public = |k: &Path| {
        std::fs::read_to_string(k.with_extension("pub"))
            .unwrap()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let approvers = dir.path().join("allowed_signers");
    std::fs::write(
        &approvers,
        format!(
            "alice {}\nalice {}\nbob {}\noperator {}\n",
            public(&approver_key),
            public(&approver_laptop_key),
            public(&approver2_key),
            public(&operator_key)
        ),
    )
    .unwrap();
    chmod(&approvers, 0o644);
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    chmod(&spool, 0o1777);
    let audit = dir.path().join("audit");
    std::fs::create_dir(&audit).unwrap();
    chown(&audit, OPERATOR);
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    chown(&scratch, OPERATOR);
    let marker = scratch.join("dropped");
    let inventory = dir.path().join("inventory.yaml");
    std::fs::write(
        &inventory,
        format!(
            "approvals_dir: {}\napprovers_file: {}\n",
            spool.display(),
            approvers.display()
        ),
    )
    .unwrap();
    let book = dir.path().join("drop.yaml");
    std::fs::write(
        &book,
        format!(
            "version: 1\nid: drop\ntitle: Drop\nrto: 5m\nsteps:\n  - id: drop-db\n    title: Drop the database\n    run: touch {}\n    approve: {{quorum: {quorum}, timeout: {timeout}}}\n  - id: done\n    title: Done\n    end: resolved\n",
            marker.display()
        ),
    )
    .unwrap();
    Setup {
        dir,
        book,
        inventory,
        audit,
        spool,
        marker,
        operator_key,
        approver_key,
        approver_laptop_key,
        stranger_key,
        approver2_key,
        approvers,
    }
}

impl Setup {
    fn run(&self) -> Child {
        self.run_env(&[])
    }

    /// The run, with more environment (e.g. a declared operator).
    fn run_env(&self, env: &[(&str, &str)]) -> Child {
        let key = self.operator_key.to_str().unwrap().to_string();
        as_user(
            OPERATOR,
            &[
                "--audit-dir",
                self.audit.to_str().unwrap(),
                "run",
                "--yes",
                "--signing-key",
                &key,
                "--inventory",
                self.inventory.to_str().unwrap(),
                self.book.to_str().unwrap(),
            ],
        )
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    }

    /// Names `approvers` as the inventory's approvers file.
    fn use_approvers(&self, approvers: &Path) {
        std::fs::write(
            &self.inventory,
            format!(
                "approvals_dir: {}\napprovers_file: {}\n",
                self.spool.display(),
                approvers.display()
            ),
        )
        .unwrap();
    }

    /// A run that must stop at pre-flight: exit 2 saying `needle`, no trail, nothing run.
    #[track_caller]
    fn refused_before_anything_runs(&self, needle: &str) -> String {
        let out = self.run().wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "`{needle}` in: {err}");
        assert!(crate::support::trail::audit_files(&self.audit).is_empty());
        assert!(!self.marker.exists());
        err
    }

    /// The request the waiting run wrote, once it is there.
    fn request(&self) -> PathBuf {
        let mut found = None;
        wait::until(Duration::from_secs(20), "the approval request", || {
            found = std::fs::read_dir(&self.spool)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "json"));
            found.is_some()
        });
        found.unwrap()
    }

    fn trail(&self) -> Vec<serde_json::Value> {
        let path = crate::support::trail::audit_files(&self.audit).pop().unwrap();
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        self.trail().into_iter().filter(|e| e["event"] == kind).collect()
    }

    fn wait_for_event(&self, kind: &str, count: usize) {
        wait::until(Duration::from_secs(20), kind, || {
            crate::support::trail::audit_files(&self.audit).pop().is_some()
                && self.events(kind).len() >= count
        });
    }
}

/// What `runbook approve` now refuses to sign (the operator's own request, one nobody waits
/// for) signed anyway with stock `ssh-keygen`, as `user`, into `REQUEST.<suffix>`: the waiting
/// run must still refuse it on its own.
fn sign_directly(user: &str, request: &Path, key: &Path, suffix: &str) {
    let out = request.with_extension(format!("json.{suffix}"));
    let done = Command::new("runuser")
        .args([
            "-u",
            user,
            "--",
            "sh",
            "-c",
            // Whole at once (aside, then renamed), as `runbook approve` writes: a half-written
            // file read by the waiting run would be refused for another reason.
            "ssh-keygen -Y sign -q -n runbook-approve -f \"$1\" < \"$2\" > \"$3.partial\" && mv \"$3.partial\" \"$3\"",
            "sh",
        ])
        .args([key, request, &out])
        .status()
        .unwrap();
    assert!(done.success(), "ssh-keygen could not sign as {user}");
}

/// `runbook approve REQUEST --yes` as `user` (no terminal to ask `Approve? [y/N]` on).
fn approve(user: &str, request: &Path, key: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "approve",
        request.to_str().unwrap(),
        "--yes",
        "--signing-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    as_user(user, &args).output().unwrap()
}

#[test]
fn another_account_approves_and_the_operators_own_key_and_a_stranger_do_not_count() {
    let s = setup("1m");
    let mut run = s.run();
    let request = s.request();
    // Readable by the approver's account, and without the secret-free rule broken: it is 0644.
    assert_eq!(
        std::fs::metadata(&request).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert!(!s.marker.exists(), "the step ran before its approval");

    // The operator approving their own step: `runbook approve` signs nothing (design §22)...
    let own = approve(OPERATOR, &request, &s.operator_key, &[]);
    assert_eq!(own.status.code(), Some(2), "{own:?}");
    assert!(
        String::from_utf8_lossy(&own.stderr).contains("your own run's request"),
        "{own:?}"
    );
    assert!(!request.with_extension("json.sig").exists(), "nothing was signed");
    // ...and a signature made anyway is refused, recorded, and the step still waits.
    sign_directly(OPERATOR, &request, &s.operator_key, "sig");
    s.wait_for_event("approval refused", 1);
    // A key that is not in the approvers file.
    let stranger = approve(APPROVER, &request, &s.stranger_key, &[]);
    assert!(stranger.status.success(), "{stranger:?}");
    s.wait_for_event("approval refused", 2);
    let refused = s.events("approval refused");
    assert!(
        refused[0]["why"].as_str().unwrap().contains("operator's own key"),
        "{refused:?}"
    );
    assert!(
        refused[1]["why"].as_str().unwrap().contains("is not in"),
        "{refused:?}"
    );
    assert!(!s.marker.exists(), "a refused approval released the step");
    assert!(run.try_wait().unwrap().is_none(), "the run stopped waiting");

    // The approver, from their own account, with their own key.
    let shown = approve(APPROVER, &request, &s.approver_key, &[]);
    assert!(shown.status.success(), "{shown:?}");
    let said = String::from_utf8_lossy(&shown.stderr);
    assert!(
        said.contains("Drop the database") && said.contains("touch "),
        "it shows what runs: {said}"
    );
    let status = run.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(s.marker.exists());
    let approvals = s.events("approval");
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    assert_eq!(approvals[0]["principal"], "alice");
    assert_eq!(approvals[0]["decision"], "approve");
    // The approval is recorded before the step starts.
    let trail = s.trail();
    let at = |kind: &str| {
        trail
            .iter()
            .position(|e| e["event"] == kind && e["step"] == "drop-db")
            .unwrap()
    };
    assert!(at("approval") < at("step started"));

    // The signature stands on its own: ssh-keygen verifies it against the approvers file.
    let sig = PathBuf::from(approvals[0]["file"].as_str().unwrap());
    let verified = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&s.approvers)
        .args(["-I", "alice", "-n", "runbook-approve", "-s"])
        .arg(&sig)
        .stdin(std::fs::File::open(&request).unwrap())
        .output()
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("Good \"runbook-approve\" signature for alice")
    );
    let trail_file = crate::support::trail::audit_files(&s.audit).pop().unwrap();
    crate::support::cmd::runbook(["audit", "verify"])
        .arg(trail_file)
        .expect_code(0);
    drop(s.dir);
}

/// `quorum: 2`: one approver's signature leaves the step waiting; the same person signing again,
/// with the same key or with another of their keys, does not count twice (and is recorded as
/// not counted); a second person, from their own account, releases it.
#[test]
fn a_quorum_of_two_needs_two_people_not_two_signatures() {
    let s = setup_with("1m", 2);
    let mut run = s.run();
    let request = s.request();
    let asked: serde_json::Value = serde_json::from_slice(&std::fs::read(&request).unwrap()).unwrap();
    assert_eq!(asked["quorum"], 2);
    // Every answer the run has looked at so far, counted or not.
    let handled = || s.events("approval").len() + s.events("approval refused").len();

    let first = approve(APPROVER, &request, &s.approver_key, &[]);
    assert!(first.status.success(), "{first:?}");
    s.wait_for_event("approval", 1);
    // The same key again (`REQUEST.2.sig`), then alice's other listed key.
    let again = approve(APPROVER, &request, &s.approver_key, &[]);
    assert!(again.status.success(), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(".json.2.sig"),
        "a second signature file: {again:?}"
    );
    wait::until(Duration::from_secs(20), "the second signature looked at", || {
        handled() >= 2
    });
    let laptop = approve(APPROVER, &request, &s.approver_laptop_key, &[]);
    assert!(laptop.status.success(), "{laptop:?}");
    wait::until(Duration::from_secs(20), "the third signature looked at", || {
        handled() >= 3
    });
    assert!(
        !s.marker.exists(),
        "one person's signatures released a quorum of two"
    );
    assert!(run.try_wait().unwrap().is_none(), "the run stopped waiting");

    // Bob, a second person from a second account, with his own key.
    let second = approve(APPROVER2, &request, &s.approver2_key, &[]);
    assert!(second.status.success(), "{second:?}");
    let status = run.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(s.marker.exists());
    assert!(err.contains("waiting for 2 approvals"), "{err}");
    assert_eq!(
        err.matches("approved by alice").count(),
        1,
        "alice is said to approve once: {err}"
    );

    // Both people's signatures are in the trail, once each, with their keys; the repeats are
    // recorded as not counted, and all of it before the step started.
    let approvals = s.events("approval");
    let principals: Vec<&str> = approvals
        .iter()
        .map(|a| a["principal"].as_str().unwrap())
        .collect();
    assert_eq!(principals, ["alice", "bob"], "{approvals:#?}");
    assert!(approvals.iter().all(|a| a["decision"] == "approve"));
    assert_ne!(approvals[0]["key"], approvals[1]["key"]);
    let refused = s.events("approval refused");
    assert_eq!(refused.len(), 2, "{refused:#?}");
    for r in &refused {
        let why = r["why"].as_str().unwrap();
        assert!(
            why.contains("alice") && why.contains("approved already"),
            "{refused:#?}"
        );
    }
    assert!(refused[0]["file"].as_str().unwrap().ends_with(".json.2.sig"));
    let trail = s.trail();
    let at = |kind: &str, nth: usize| {
        trail
            .iter()
            .enumerate()
            .filter(|(_, e)| e["event"] == kind && e["step"] == "drop-db")
            .map(|(i, _)| i)
            .nth(nth)
            .unwrap_or_else(|| panic!("no {kind} #{nth}: {trail:#?}"))
    };
    assert!(at("approval", 0) < at("approval refused", 0));
    assert!(at("approval refused", 1) < at("approval", 1));
    assert!(at("approval", 1) < at("step started", 0));
    // Each signature stands on its own, by its own principal.
    for (approval, who) in approvals.iter().zip(["alice", "bob"]) {
        let verified = Command::new("ssh-keygen")
            .args(["-Y", "verify", "-f"])
            .arg(&s.approvers)
            .args(["-I", who, "-n", "runbook-approve", "-s"])
            .arg(approval["file"].as_str().unwrap())
            .stdin(std::fs::File::open(&request).unwrap())
            .output()
            .unwrap();
        assert!(verified.status.success(), "{who}: {verified:?}");
    }
    let trail_file = crate::support::trail::audit_files(&s.audit).pop().unwrap();
    crate::support::cmd::runbook(["audit", "verify"])
        .arg(trail_file)
        .expect_code(0);
}

#[test]
fn a_timeout_or_a_denial_fails_the_step() {
    let s = setup("2s");
    let run = s.run();
    let out = run.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!s.marker.exists());
    let finished = s.events("step finished");
    assert!(
        finished[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not approved within 2s"),
        "{finished:?}"
    );

    let s = setup("1m");
    let run = s.run();
    let request = s.request();
    let denied = approve(
        APPROVER,
        &request,
        &s.approver_key,
        &["--deny", "--reason", "not during the freeze"],
    );
    assert!(denied.status.success(), "{denied:?}");
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(!s.marker.exists());
    let approval = &s.events("approval")[0];
    assert_eq!(approval["decision"], "deny");
    assert_eq!(approval["reason"], "not during the freeze");
    let finished = s.events("step finished");
    assert!(
        finished[0]["reason"]
            .as_str()
            .unwrap()
            .contains("denied by alice"),
        "{finished:?}"
    );
}

#[test]
fn an_approvers_file_the_operator_can_write_is_refused_before_anything_runs() {
    let s = setup("1m");
    chown(&s.approvers, OPERATOR);
    let out = s.run().wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("writable by you"));
    assert!(crate::support::trail::audit_files(&s.audit).is_empty());
    assert!(!s.marker.exists());
}

/// The public half of `key`, as an `allowed_signers` line wants it (`type base64`).
fn public(key: &Path) -> String {
    std::fs::read_to_string(key.with_extension("pub"))
        .unwrap()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Gives `user` read, write and search rights on `path` by a POSIX ACL (what `setfacl -m
/// u:USER:rwx` writes), the group bits and mode left as they are.
fn acl_grant(path: &Path, user: &str) {
    let uid: u32 = String::from_utf8(Command::new("id").args(["-u", user]).output().unwrap().stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Version 2, then (tag, perm, id): USER_OBJ rwx, USER uid rwx, GROUP_OBJ r-x, MASK rwx,
    // OTHER r-x.
    let mut acl = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (0x01u16, 7u16, u32::MAX),
        (0x02, 7, uid),
        (0x04, 5, u32::MAX),
        (0x10, 7, u32::MAX),
        (0x20, 5, u32::MAX),
    ] {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&id.to_le_bytes());
    }
    rustix::fs::setxattr(
        path,
        "system.posix_acl_access",
        &acl,
        rustix::fs::XattrFlags::empty(),
    )
    .expect("the file system takes POSIX ACLs");
}

/// Issue 24 #1: a root-owned approvers file in a directory the operator owns (they could move
/// it aside and write their own), the operator's own file at 0444 (they can `chmod u+w`), and a
/// directory above it that an ACL lets the operator write: each refused before anything runs.
#[test]
fn an_approvers_file_the_operator_can_replace_or_make_writable_is_refused() {
    let s = setup("1m");
    let theirs = s.dir.path().join("operators-etc");
    std::fs::create_dir(&theirs).unwrap();
    chmod(&theirs, 0o755);
    chown(&theirs, OPERATOR);
    let approvers = theirs.join("allowed_signers");
    std::fs::copy(&s.approvers, &approvers).unwrap();
    chmod(&approvers, 0o644);
    s.use_approvers(&approvers);
    let err = s.refused_before_anything_runs("owned by you");
    assert!(
        err.contains(&theirs.display().to_string()),
        "names the directory: {err}"
    );

    // The operator's own file, read-only: its owner can make it writable.
    let own = s.dir.path().join("own-etc");
    std::fs::create_dir(&own).unwrap();
    chmod(&own, 0o755);
    let approvers = own.join("allowed_signers");
    std::fs::copy(&s.approvers, &approvers).unwrap();
    chown(&approvers, OPERATOR);
    chmod(&approvers, 0o444);
    s.use_approvers(&approvers);
    let err = s.refused_before_anything_runs("owned by you");
    assert!(
        err.contains(&approvers.display().to_string()),
        "names the file: {err}"
    );

    // A root-owned 0755 directory an ACL lets the operator write.
    let acl = s.dir.path().join("acl-etc");
    std::fs::create_dir(&acl).unwrap();
    chmod(&acl, 0o755);
    let approvers = acl.join("allowed_signers");
    std::fs::copy(&s.approvers, &approvers).unwrap();
    chmod(&approvers, 0o644);
    acl_grant(&acl, OPERATOR);
    s.use_approvers(&approvers);
    let err = s.refused_before_anything_runs("writable by you");
    assert!(
        err.contains(&acl.display().to_string()),
        "names the directory: {err}"
    );
}

/// Issue 24 #1: the approvers are read once, before the run. A file rewritten while the step
/// waits (here by root, listing a fresh key as `mallory`) changes nothing: mallory's signature
/// is refused, and alice, listed at the start, still releases the step.
#[test]
fn the_approvers_are_read_once_before_anything_runs() {
    let s = setup("1m");
    let mallory = key(
        &s.dir.path().join(format!("keys-{APPROVER}")),
        "mallory",
        APPROVER,
    );
    let mut run = s.run();
    let request = s.request();
    let listed = std::fs::read_to_string(&s.approvers).unwrap();
    std::fs::write(&s.approvers, format!("{listed}mallory {}\n", public(&mallory))).unwrap();
    let signed = approve(APPROVER, &request, &mallory, &[]);
    assert!(signed.status.success(), "{signed:?}");
    s.wait_for_event("approval refused", 1);
    let refused = s.events("approval refused");
    assert!(
        refused[0]["why"].as_str().unwrap().contains("is not in"),
        "{refused:?}"
    );
    assert!(s.events("approval").is_empty());
    assert!(
        !s.marker.exists(),
        "a key listed after pre-flight released the step"
    );
    assert!(run.try_wait().unwrap().is_none(), "the run stopped waiting");

    let shown = approve(APPROVER, &request, &s.approver_key, &[]);
    assert!(shown.status.success(), "{shown:?}");
    let mut err = String::new();
    let status = run.wait().unwrap();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(s.marker.exists());
}

/// Issue 24 #2: a second key of the operator's, listed under their login (`rbtest`) or under
/// their declared name (`RUNBOOK_OPERATOR=carol`), is the operator approving their own step:
/// refused by the run, and `runbook approve` tells them so.
#[test]
fn a_key_under_the_operators_own_login_or_declared_name_does_not_count() {
    let s = setup("1m");
    let operator_keys = s.dir.path().join(format!("keys-{OPERATOR}"));
    let second = key(&operator_keys, "second", OPERATOR);
    let third = key(&operator_keys, "third", OPERATOR);
    let listed = std::fs::read_to_string(&s.approvers).unwrap();
    std::fs::write(
        &s.approvers,
        format!(
            "{listed}{OPERATOR} {}\ncarol {}\n",
            public(&second),
            public(&third)
        ),
    )
    .unwrap();
    let mut run = s.run_env(&[("RUNBOOK_OPERATOR", "carol")]);
    let request = s.request();

    for (n, (k, name)) in [(&second, OPERATOR), (&third, "carol")].into_iter().enumerate() {
        let own = approve(OPERATOR, &request, k, &[]);
        let said = String::from_utf8_lossy(&own.stderr);
        assert!(
            said.contains("your own run's request") && said.contains("nothing was signed"),
            "the approver is told: {said}"
        );
        assert_eq!(own.status.code(), Some(2), "{said}");
        // Signed anyway, outside `runbook approve`: the run refuses it.
        sign_directly(OPERATOR, &request, k, &format!("{}.sig", n + 2));
        s.wait_for_event("approval refused", n + 1);
        let refused = s.events("approval refused");
        let why = refused[n]["why"].as_str().unwrap();
        assert!(
            why.contains(&format!("`{name}`")) && why.contains("nobody approves their own step"),
            "{refused:?}"
        );
    }
    assert!(s.events("approval").is_empty(), "{:?}", s.events("approval"));
    assert!(!s.marker.exists(), "the operator released their own step");
    assert!(run.try_wait().unwrap().is_none(), "the run stopped waiting");

    let shown = approve(APPROVER, &request, &s.approver_key, &[]);
    assert!(shown.status.success(), "{shown:?}");
    assert!(
        !String::from_utf8_lossy(&shown.stderr).contains("your own request"),
        "{shown:?}"
    );
    let status = run.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(s.marker.exists());
}

/// `runbook ARGS` as `user`, a plain command (for `mkfifo`, `touch` by another account).
fn as_user_cmd(user: &str, program: &str, args: &[&Path]) {
    let ok = Command::new("runuser")
        .args(["-u", user, "--", program])
        .args(args)
        .status()
        .unwrap();
    assert!(ok.success(), "{program} as {user}");
}

/// The `runbook` process that `runuser` (the `Child`) started.
fn runbook_pid(run: &Child) -> nix::unistd::Pid {
    let mut pid = None;
    wait::until(Duration::from_secs(10), "runbook under runuser", || {
        pid = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", run.id()))
            .ok()
            .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()));
        pid.is_some()
    });
    nix::unistd::Pid::from_raw(pid.unwrap())
}

/// Kills the run it holds when dropped (a test that fails must not leave it blocked).
struct Reaper(nix::unistd::Pid);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGKILL);
    }
}

/// Issue 24 #4: another user of the shared spool (`rbapprover2`) plants a FIFO where the first
/// signature goes and partial files where `runbook approve` writes: the waiting run refuses
/// the FIFO and goes on looking (it never blocks in `open`), and the approver still signs.
#[test]
fn a_fifo_or_planted_partial_files_in_the_spool_hang_nobody() {
    let s = setup("1m");
    let mut run = s.run();
    let _reaper = Reaper(runbook_pid(&run));
    let request = s.request();
    let name = request.display().to_string();
    let fifo = PathBuf::from(format!("{name}.sig"));
    as_user_cmd(APPROVER2, "mkfifo", &[&fifo]);
    for planted in [format!("{name}.sig.partial"), format!("{name}.2.sig.partial")] {
        as_user_cmd(APPROVER2, "touch", &[Path::new(&planted)]);
    }
    s.wait_for_event("approval refused", 1);
    let refused = s.events("approval refused");
    assert!(
        refused[0]["why"].as_str().unwrap().contains("not a regular file"),
        "{refused:?}"
    );
    let signed = approve(APPROVER, &request, &s.approver_key, &[]);
    assert!(signed.status.success(), "{signed:?}");
    assert_eq!(
        crate::support::wait::exit(&mut run, Duration::from_secs(30)),
        Some(0)
    );
    assert!(s.marker.exists());
    assert_eq!(s.events("approval")[0]["principal"], "alice");
}

/// Issue 24 #4: a run that dies while it waits (killed: its trail is unsealed), then resumed,
/// asks again with a new request instead of dying on the old one's name; an answer to the old
/// request does not count for the new one.
#[test]
fn a_resumed_approval_writes_a_new_request() {
    let s = setup("1m");
    let mut run = s.run();
    let pid = runbook_pid(&run);
    let first = s.request();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    crate::support::wait::exit(&mut run, Duration::from_secs(30));
    assert!(!s.marker.exists());
    let trail = crate::support::trail::audit_files(&s.audit).pop().unwrap();
    let key = s.operator_key.to_str().unwrap().to_string();
    let mut resumed = as_user(
        OPERATOR,
        &[
            "resume",
            "--yes",
            "--signing-key",
            &key,
            "--inventory",
            s.inventory.to_str().unwrap(),
            trail.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let _reaper = Reaper(runbook_pid(&resumed));
    let mut second = None;
    crate::support::wait::until(Duration::from_secs(20), "a second request", || {
        second = std::fs::read_dir(&s.spool)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "json") && *p != first);
        second.is_some() || resumed.try_wait().unwrap().is_some()
    });
    let Some(second) = second else {
        let mut err = String::new();
        std::io::Read::read_to_string(resumed.stderr.as_mut().unwrap(), &mut err).unwrap();
        panic!("the resume wrote no new request: {err}");
    };
    // alice answers the old request first: nobody waits for it (design §22), and a signature
    // made anyway is not for this one.
    let old = approve(APPROVER, &first, &s.approver_key, &[]);
    assert_eq!(old.status.code(), Some(2), "{old:?}");
    assert!(
        String::from_utf8_lossy(&old.stderr).contains("no run waits for this request"),
        "{old:?}"
    );
    sign_directly(APPROVER, &first, &s.approver_key, "sig");
    let signed = approve(APPROVER, &second, &s.approver_key, &[]);
    assert!(signed.status.success(), "{signed:?}");
    assert_eq!(
        crate::support::wait::exit(&mut resumed, Duration::from_secs(30)),
        Some(0)
    );
    assert!(s.marker.exists());
    let approvals = s.events("approval");
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    assert!(
        approvals[0]["file"]
            .as_str()
            .unwrap()
            .starts_with(&second.display().to_string()),
        "{approvals:?}"
    );
}

/// Design §22 (issue 24, item 12): `runbook approve` without REQUEST lists the requests a run
/// waits for (run, step, hosts, operator, age, and the name to give it), from the spool the
/// inventory names; with one it asks before it signs, and without a terminal to ask on it
/// signs nothing unless `--yes`. A request is given by the name the list shows.
#[test]
fn approve_lists_what_waits_and_asks_before_it_signs() {
    let s = setup("1m");
    let mut run = s.run();
    let request = s.request();
    let name = request.file_name().unwrap().to_str().unwrap().to_string();
    let inventory = s.inventory.to_str().unwrap();
    let listed = as_user(APPROVER, &["approve", "--inventory", inventory])
        .output()
        .unwrap();
    assert_eq!(listed.status.code(), Some(0), "{listed:?}");
    let table = String::from_utf8_lossy(&listed.stdout);
    let row = table
        .lines()
        .find(|l| l.ends_with(&name))
        .unwrap_or_else(|| panic!("the request is listed: {table}"));
    assert!(row.contains(" | drop-db | ") && row.contains(OPERATOR), "{row}");

    // No terminal, no --yes: nothing is signed.
    let key = s.approver_key.to_str().unwrap();
    let unasked = as_user(
        APPROVER,
        &["approve", &name, "--inventory", inventory, "--signing-key", key],
    )
    .output()
    .unwrap();
    assert_eq!(unasked.status.code(), Some(2), "{unasked:?}");
    assert!(
        String::from_utf8_lossy(&unasked.stderr).contains("pass --yes"),
        "{unasked:?}"
    );
    assert!(approval_sigs(&request).is_empty(), "nothing was signed");
    assert!(run.try_wait().unwrap().is_none(), "the run still waits");

    let signed = as_user(
        APPROVER,
        &[
            "approve",
            &name,
            "--inventory",
            inventory,
            "--yes",
            "--signing-key",
            key,
        ],
    )
    .output()
    .unwrap();
    assert_eq!(signed.status.code(), Some(0), "{signed:?}");
    assert_eq!(run.wait().unwrap().code(), Some(0));
    // Answered and ended: nothing waits any more, and a late approval signs nothing.
    let after = as_user(APPROVER, &["approve", "--inventory", inventory])
        .output()
        .unwrap();
    assert_eq!(after.status.code(), Some(0));
    assert!(
        !String::from_utf8_lossy(&after.stdout).contains(&name),
        "{after:?}"
    );
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("no request waits"),
        "{after:?}"
    );
    let late = approve(APPROVER, &request, &s.approver_key, &[]);
    assert_eq!(late.status.code(), Some(2), "{late:?}");
    assert!(String::from_utf8_lossy(&late.stderr).contains("no run waits for this request"));
    assert_eq!(
        approval_sigs(&request).len(),
        1,
        "the late approval wrote nothing"
    );
}

/// The signature files beside a request.
fn approval_sigs(request: &Path) -> Vec<PathBuf> {
    let name = request.file_name().unwrap().to_str().unwrap().to_string();
    std::fs::read_dir(request.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with(&name) && n.ends_with(".sig")
        })
        .collect()
}

/// Design §22: on a terminal, `runbook approve REQUEST` asks `Approve? [y/N]` after showing the
/// request: no signs nothing (exit 2), yes signs and the waiting step runs.
#[test]
fn approve_on_a_terminal_asks_and_a_no_signs_nothing() {
    let s = setup("1m");
    let mut run = s.run();
    let request = s.request();
    let ask = || {
        let mut command = Command::new(bin());
        command
            .args(["approve", request.to_str().unwrap(), "--signing-key"])
            .arg(&s.approver_key)
            .env("TERM", "xterm")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("RUNBOOK_SIGNING_KEY");
        crate::support::pty::start(command)
    };
    let mut no = ask();
    no.exp_string("Drop the database").unwrap();
    no.exp_string("Approve?").unwrap();
    crate::support::pty::keys(&mut no, "n\r");
    no.exp_string("not signed").unwrap();
    assert_eq!(crate::support::pty::wait_exit(&mut no), 2);
    assert!(approval_sigs(&request).is_empty(), "a no signed nothing");
    assert!(run.try_wait().unwrap().is_none(), "the run still waits");
    let mut yes = ask();
    yes.exp_string("Approve?").unwrap();
    crate::support::pty::keys(&mut yes, "y\r");
    yes.exp_string("approved:").unwrap();
    assert_eq!(crate::support::pty::wait_exit(&mut yes), 0);
    assert_eq!(run.wait().unwrap().code(), Some(0));
    assert!(s.marker.exists());
}

/// Issue 24, item 3: after a denial the failure menu offered *Skip it*, *Mark it done*, and a
/// retry whose *Run it by hand* printed the command with no new request. Now a denied step
/// runs only with an approval in the chain: the menu is *Retry (a new approval request)*, *Go
/// to another step*, *Abort*; by hand asks for an approval first.
#[test]
fn a_denied_step_is_run_only_with_an_approval_by_the_tool_or_by_hand() {
    use crate::support::pty::{DOWN, keys, wait_exit};
    let s = setup("1m");
    let mut run = operator_on_a_terminal(&s);
    // Said before it runs, so a colleague can be paged ahead of time (issue 24).
    let header = run.exp_string("What now?").unwrap();
    assert!(
        header
            .contains("needs 1 approval by another person before it runs (two-person rule; waits up to 1m)"),
        "{header}"
    );
    keys(&mut run, "\r"); // Run it
    // While it waits: the deadline, the wait ticking against its timeout, the RTO, the way out.
    let waiting = run.exp_string("Ctrl-C to stop waiting").unwrap();
    assert!(waiting.contains("waiting for 1 approval"), "{waiting}");
    assert!(waiting.contains("the step fails at "), "{waiting}");
    run.exp_string("waited 1.").unwrap();
    run.exp_string("of the 5m RTO left").unwrap();
    let first = s.request();
    let denied = approve(
        APPROVER,
        &first,
        &s.approver_key,
        &["--deny", "--reason", "deploy freeze"],
    );
    assert!(denied.status.success(), "{denied:?}");
    run.exp_string("The step did not succeed. What now?").unwrap();
    let menu = run.exp_string("Abort the run").unwrap();
    assert!(menu.contains("Retry (a new approval request)"), "{menu}");
    for walkaround in ["Skip it", "Mark it done", "Follow on_failure"] {
        assert!(
            !menu.contains(walkaround),
            "after a denial the menu offers `{walkaround}`: {menu}"
        );
    }
    keys(&mut run, "\r"); // Retry (a new approval request)
    run.exp_string("What now?").unwrap();
    keys(&mut run, &format!("{}\r", DOWN.repeat(3))); // Run it by hand
    // By hand too waits for an approval, on a new request: nothing is printed before it.
    let mut second = None;
    wait::until(Duration::from_secs(20), "a second request", || {
        second = std::fs::read_dir(&s.spool)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "json") && *p != first);
        second.is_some()
    });
    let approved = approve(APPROVER, &second.unwrap(), &s.approver_key, &[]);
    assert!(approved.status.success(), "{approved:?}");
    run.exp_string("Paste this into your shell").unwrap();
    run.exp_string("How did it go?").unwrap();
    keys(&mut run, "\r"); // Done
    run.exp_string("run resolved").unwrap();
    assert_eq!(wait_exit(&mut run), 0);
    let trail = s.trail();
    let at = |kind: &str| trail.iter().position(|e| e["event"] == kind).unwrap();
    let approval = trail
        .iter()
        .rposition(|e| e["event"] == "approval" && e["decision"] == "approve")
        .expect("an approval in the chain");
    let by_hand = trail
        .iter()
        .position(|e| e["event"] == "deviation" && e["kind"] == "run by hand")
        .expect("run by hand, recorded");
    // The denial is in the chain first, with its reason, then the approval of the new request.
    let denial = &trail[at("approval")];
    assert_eq!(
        (denial["decision"].as_str(), denial["reason"].as_str()),
        (Some("deny"), Some("deploy freeze")),
        "{denial}"
    );
    assert!(at("approval") < approval);
    assert!(approval < by_hand, "the approval came before the by-hand run");
    the_record_shows_who_approved_and_who_denied(&s);
}

/// The run as the operator starts it in a terminal, interactive.
fn operator_on_a_terminal(s: &Setup) -> crate::support::pty::Session {
    let key = s.operator_key.to_str().unwrap().to_string();
    let mut command = Command::new("runuser");
    command
        .args(["-u", OPERATOR, "--"])
        .arg(bin())
        .args([
            "--audit-dir",
            s.audit.to_str().unwrap(),
            "run",
            "--signing-key",
            &key,
        ])
        .args([
            "--inventory",
            s.inventory.to_str().unwrap(),
            s.book.to_str().unwrap(),
        ])
        .env("TERM", "xterm")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RUNBOOK_SIGNING_KEY");
    crate::support::pty::start(command)
}

/// The status line promises "Ctrl-C to stop waiting": it does, and the step fails with why.
#[test]
fn ctrl_c_stops_waiting_for_an_approval() {
    use crate::support::pty::{keys, wait_exit};
    let s = setup("1m");
    let mut run = operator_on_a_terminal(&s);
    run.exp_string("What now?").unwrap();
    keys(&mut run, "\r"); // Run it
    run.exp_string("Ctrl-C to stop waiting").unwrap();
    s.request();
    keys(&mut run, "\x03");
    run.exp_string("stopped by Ctrl-C while waiting for approval")
        .unwrap();
    let menu = run.exp_string("Abort the run").unwrap();
    assert!(menu.contains("Retry (a new approval request)"), "{menu}");
    keys(&mut run, "\x1b[A\r"); // Abort the run (last)
    run.exp_string("Abort the run? Its cleanup").unwrap();
    keys(&mut run, "y\r");
    run.exp_string("Why abort?").unwrap();
    keys(&mut run, "nobody to approve\r");
    assert_eq!(wait_exit(&mut run), 3);
    assert!(!s.marker.exists(), "the step ran");
    let finished = s.events("step finished");
    assert_eq!(
        finished[0]["reason"], "stopped by Ctrl-C while waiting for approval",
        "{finished:?}"
    );
}

/// Issue 24: "the review (all formats), `history` and the evidence page never mention the
/// denial, its reason, or approvals granted". Each names who denied, why, and who approved.
fn the_record_shows_who_approved_and_who_denied(s: &Setup) {
    let audit = s.audit.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(bin())
            .args(["--audit-dir", audit])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let denied = "DENIED by alice";
    for format in ["text", "md", "html"] {
        let review = run(&["review", "last", "--format", format]);
        assert!(
            review.contains("approval requested (1 approval, waits 1m)"),
            "{format}: {review}"
        );
        let denial = review
            .lines()
            .find(|l| l.contains(denied))
            .unwrap_or_else(|| panic!("{format}: no denial in {review}"));
        assert!(denial.contains("deploy freeze"), "{format}: {denial}");
        assert!(denial.contains("drop-db"), "{format}: {denial}");
        assert!(review.contains("approved by alice"), "{format}: {review}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&run(&["review", "last", "--format", "json"])).unwrap();
    let approvals: Vec<(&str, &str, &str)> = json["runs"][0]["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["decision"].as_str().unwrap(),
                a["by"].as_str().unwrap_or("-"),
                a["reason"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        approvals,
        [
            ("requested", "-", "-"),
            ("denied", "alice", "deploy freeze"),
            ("requested", "-", "-"),
            ("approved", "alice", "-"),
        ],
        "{json}"
    );
    assert!(json["runs"][0]["approvals"][1]["at"].is_string(), "{json}");
    let history = run(&["history"]);
    assert!(history.contains("approvals"), "{history}");
    assert!(
        history.contains("drop-db DENIED by alice: deploy freeze; drop-db approved by alice"),
        "{history}"
    );
    let history: serde_json::Value = serde_json::from_str(&run(&["history", "--json"])).unwrap();
    assert_eq!(
        history[0]["approvals"],
        serde_json::json!([
            "drop-db DENIED by alice: deploy freeze",
            "drop-db approved by alice"
        ])
    );
    let page = s.dir.path().join("evidence.html");
    run(&[
        "evidence",
        "last",
        "--runbook",
        s.book.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    let page = std::fs::read_to_string(page).unwrap();
    assert!(page.contains("<strong>DENIED by alice"), "{page}");
    assert!(page.contains("deploy freeze"));
    assert!(page.contains("approved by alice"));
}

/// A request is seen whole and already waited for, or not at all: an approver looking at the
/// spool the moment it appears was told "no run waits for this request" (the file was there
/// before the run's lock, while it was still being written and fsynced).
#[test]
fn a_request_is_locked_and_whole_the_moment_it_appears() {
    use std::os::unix::fs::OpenOptionsExt;
    let s = setup("1m");
    let mut run = s.run();
    let _reaper = Reaper(runbook_pid(&run));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let request = loop {
        // As fast as a watcher can: no sleep between looks.
        let found = std::fs::read_dir(&s.spool)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "json"));
        if let Some(found) = found {
            break found;
        }
        assert!(std::time::Instant::now() < deadline, "no request");
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&request)
        .unwrap();
    let unlocked = rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared).is_ok();
    let text = std::fs::read_to_string(&request).unwrap();
    let _ = run.kill();
    let _ = run.wait();
    assert!(!unlocked, "the request was there before the run held its lock");
    serde_json::from_str::<serde_json::Value>(&text).expect("the request is whole");
}
