//! Approvals across machines (design §19, §15, §22): alice (`rb-alice`) runs a step marked
//! `approve:` with the team's audit host; the request goes to its `PATH/approvals/`; bob
//! (`rb-bob`), another account with his own key and agent, lists it and signs it there over
//! SSH, and alice's run verifies the signature against its approvers file, records who
//! approved, and goes on. A denial there fails the step; alice cannot approve her own run; a
//! request no run waits for any more is not signed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::audit_host;
use crate::support::sshd::Sshd;
use crate::support::trail::{audit_files, events};
use crate::support::users::{ALICE, BOB, Person, authorize, give, shared_dir};
use crate::support::wait;

struct Team {
    sshd: Sshd,
    host_dir: tempfile::TempDir,
    url: String,
    alice: Person,
    bob: Person,
    shared: tempfile::TempDir,
    book: PathBuf,
    inventory: PathBuf,
    approvers: PathBuf,
    marker: PathBuf,
}

/// The audit host, both people, and alice's runbook whose step needs one approval within
/// `timeout`. The inventory names the audit host and the approvers file (owned by root:
/// neither of them can list themselves).
fn team(timeout: &str) -> Team {
    let sshd = Sshd::start();
    let host_dir = audit_host::dir();
    let url = audit_host::url(&sshd, host_dir.path());
    let (alice, bob) = (Person::start(ALICE), Person::start(BOB));
    authorize(&sshd, &[&alice, &bob]);
    let shared = shared_dir();
    let approvers = shared.path().join("allowed_signers");
    std::fs::write(
        &approvers,
        format!("alice {}\nbob {}\n", alice.account.public, bob.account.public),
    )
    .unwrap();
    std::fs::set_permissions(&approvers, std::fs::Permissions::from_mode(0o644)).unwrap();
    let scratch = shared.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    give(&scratch, &alice);
    let marker = scratch.join("dropped");
    let inventory = shared.path().join("inventory.yaml");
    std::fs::write(
        &inventory,
        format!("audit_host: {url}\napprovers_file: {}\n", approvers.display()),
    )
    .unwrap();
    let book = shared.path().join("drop.yaml");
    std::fs::write(
        &book,
        format!(
            "version: 1\nid: drop\ntitle: Drop\nrto: 5m\nsteps:\n  - id: drop-db\n    title: Drop the database\n    run: touch {}\n    approve: {{quorum: 1, timeout: {timeout}}}\n  - id: done\n    title: Done\n    end: resolved\n",
            marker.display()
        ),
    )
    .unwrap();
    Team {
        sshd,
        host_dir,
        url,
        alice,
        bob,
        shared,
        book,
        inventory,
        approvers,
        marker,
    }
}

impl Team {
    /// Alice's run, on her machine: the audit host from the inventory, her own SSH key.
    fn run(&self) -> Child {
        let mut args = vec![
            "run".to_string(),
            "--yes".into(),
            "--inventory".into(),
            self.inventory.display().to_string(),
            self.book.display().to_string(),
        ];
        args.extend(self.alice.ssh_args(&self.sshd));
        self.alice
            .runbook(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `runbook approve ARGS --audit-host URL` as `person`, from their own machine.
    fn approve(&self, person: &Person, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--audit-host", &self.url]);
        self.approve_as(person, &all)
    }

    /// `runbook approve ARGS` as `person`, with their SSH options only.
    fn approve_as(&self, person: &Person, args: &[&str]) -> Output {
        let mut all: Vec<String> = vec!["approve".into()];
        all.extend(args.iter().map(|a| a.to_string()));
        all.extend(person.ssh_args(&self.sshd));
        person.runbook(all).output().unwrap()
    }

    fn spool(&self) -> PathBuf {
        self.host_dir.path().join("approvals")
    }

    /// The files of the audit host's spool whose names end with `suffix`.
    fn spooled(&self, suffix: &str) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.spool())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect();
        found.sort();
        found
    }

    /// The request alice's run wrote on the audit host, once it is there.
    fn request(&self) -> PathBuf {
        // Its heartbeat is made just after it: from then on the run is known to wait.
        wait::until(Duration::from_secs(20), "the request on the audit host", || {
            !self.spooled(".json").is_empty() && !self.spooled(".alive").is_empty()
        });
        self.spooled(".json").remove(0)
    }

    fn trail(&self) -> Vec<Value> {
        let files = audit_files(&self.alice.audit);
        assert_eq!(files.len(), 1, "one run in alice's audit dir");
        events(&files[0])
    }

    /// The run's end: its exit code, and what it said.
    fn ended(&self, mut run: Child) -> (Option<i32>, String) {
        let code = wait::exit(&mut run, Duration::from_secs(30));
        let mut err = String::new();
        std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
        (code, err)
    }
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn bob_lists_and_approves_alices_request_through_the_audit_host() {
    let t = team("1m");
    let run = t.run();
    let request = t.request();
    let name = name_of(&request);
    // The team's group may read it; nobody else.
    assert_eq!(
        std::fs::metadata(&request).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert!(!t.marker.exists(), "the step ran before its approval");

    // Bob, on his machine, sees what waits: run, step, hosts, operator, age, the name to sign.
    let listed = t.approve(&t.bob, &[]);
    assert!(listed.status.success(), "{}", said(&listed));
    let table = String::from_utf8_lossy(&listed.stdout);
    let row = table
        .lines()
        .find(|l| l.ends_with(&name))
        .unwrap_or_else(|| panic!("{name} listed: {}", said(&listed)));
    assert!(row.contains("| drop-db |"), "{row}");
    assert!(row.contains(&format!("| {ALICE} ({ALICE} on")), "{row}");

    // Alice cannot approve her own run's request: nothing is signed there.
    let own = t.approve(&t.alice, &[&name, "--yes"]);
    assert_eq!(own.status.code(), Some(2), "{}", said(&own));
    assert!(said(&own).contains("your own run's request"), "{}", said(&own));
    assert!(t.spooled(".sig").is_empty(), "nothing was signed");

    // Someone with a login on the audit host but not in alice's approvers file plants a
    // signature there: the audit host can hand over anything, but it does not count.
    let dir = tempfile::tempdir().unwrap();
    let stranger = crate::support::sshd::keygen(dir.path(), "stranger");
    let planted = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-q", "-n", "runbook-approve", "-f"])
        .arg(&stranger)
        .stdin(std::fs::File::open(&request).unwrap())
        .output()
        .unwrap();
    assert!(planted.status.success(), "{planted:?}");
    // Whole at once, as any answer appears there (written aside, then renamed).
    let aside = t.spool().join(".planted");
    std::fs::write(&aside, &planted.stdout).unwrap();
    std::fs::rename(&aside, t.spool().join(format!("{name}.sig"))).unwrap();
    wait::until(Duration::from_secs(20), "the planted signature refused", || {
        let files = audit_files(&t.alice.audit);
        files.len() == 1 && events(&files[0]).iter().any(|e| e["event"] == "approval refused")
    });
    let refused = t
        .trail()
        .into_iter()
        .find(|e| e["event"] == "approval refused")
        .unwrap();
    assert!(
        refused["why"].as_str().unwrap().contains("is not in"),
        "{refused}"
    );
    assert_eq!(refused["file"], format!("{}/approvals/{name}.sig", t.url));
    assert!(!t.marker.exists(), "a planted signature released the step");

    // Bob signs it, with his own agent's key, naming it as alice's run told her to pass it on.
    let requested = t
        .trail()
        .into_iter()
        .find(|e| e["event"] == "approval requested")
        .unwrap();
    let told = requested["request"].as_str().unwrap().to_string();
    assert_eq!(told, format!("{}/approvals/{name}", t.url));
    let signed = t.approve_as(&t.bob, &[&told, "--yes"]);
    assert!(signed.status.success(), "{}", said(&signed));
    let sig_url = format!("{}/approvals/{name}.2.sig", t.url);
    assert!(
        said(&signed).contains(&format!("approved: {sig_url}")),
        "{}",
        said(&signed)
    );
    assert!(said(&signed).contains("Drop the database"), "it shows what runs");

    let (code, err) = t.ended(run);
    assert_eq!(code, Some(0), "{err}");
    assert!(t.marker.exists(), "the approved step ran");
    let trail = t.trail();
    let approvals: Vec<&Value> = trail.iter().filter(|e| e["event"] == "approval").collect();
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    assert_eq!(approvals[0]["principal"], "bob");
    assert_eq!(approvals[0]["decision"], "approve");
    assert_eq!(approvals[0]["file"], sig_url);
    let at = |kind: &str| {
        trail
            .iter()
            .position(|e| e["event"] == kind && e["step"] == "drop-db")
            .unwrap()
    };
    assert!(at("approval") < at("step started"), "approved before it started");
    // The run stopped waiting: its heartbeat is gone, and nothing is listed any more.
    assert!(t.spooled(".alive").is_empty());
    let after = t.approve(&t.bob, &[]);
    assert!(
        !String::from_utf8_lossy(&after.stdout).contains(&name),
        "{}",
        said(&after)
    );

    // The signature on the audit host stands on its own: ssh-keygen verifies it as bob's.
    let verified = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&t.approvers)
        .args(["-I", "bob", "-n", "runbook-approve", "-s"])
        .arg(t.spool().join(format!("{name}.2.sig")))
        .stdin(std::fs::File::open(&request).unwrap())
        .output()
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");
    drop(t.shared);
}

#[test]
fn bob_denies_through_the_audit_host_and_the_step_fails_with_his_reason() {
    let t = team("1m");
    let run = t.run();
    let name = name_of(&t.request());
    let denied = t.approve(
        &t.bob,
        &[&name, "--yes", "--deny", "--reason", "not during the freeze"],
    );
    assert!(denied.status.success(), "{}", said(&denied));
    let (code, err) = t.ended(run);
    assert_eq!(code, Some(3), "{err}");
    assert!(!t.marker.exists(), "a denied step never runs");
    let trail = t.trail();
    let answer = trail.iter().find(|e| e["event"] == "approval").unwrap();
    assert_eq!(answer["principal"], "bob");
    assert_eq!(answer["decision"], "deny");
    assert_eq!(answer["reason"], "not during the freeze");
    let failed = trail
        .iter()
        .find(|e| e["event"] == "step finished" && e["step"] == "drop-db")
        .unwrap();
    assert!(
        failed["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("denied by bob"),
        "{failed}"
    );
}

#[test]
fn a_request_no_run_waits_for_is_not_signed() {
    let t = team("2s");
    let run = t.run();
    let name = name_of(&t.request());
    let (code, err) = t.ended(run);
    assert_eq!(code, Some(3), "not approved in time: {err}");
    let late = t.approve(&t.bob, &[&name, "--yes"]);
    assert_eq!(late.status.code(), Some(2), "{}", said(&late));
    assert!(
        said(&late).contains("no run waits for this request"),
        "{}",
        said(&late)
    );
    assert!(t.spooled(".sig").is_empty(), "nothing was signed");
    // Not listed either.
    let listed = t.approve(&t.bob, &[]);
    assert!(listed.status.success(), "{}", said(&listed));
    assert!(
        said(&listed).contains("no request waits for approval"),
        "{}",
        said(&listed)
    );
}

/// Alice's run is stopped (SIGTERM) while it waits on the audit host: it stops waiting at once,
/// says so there (the heartbeat goes: nobody is offered a request no run waits for), and the
/// step never runs.
#[test]
fn a_run_stopped_while_waiting_takes_its_request_off_the_audit_host() {
    let t = team("1m");
    let mut run = t.run();
    let name = name_of(&t.request());
    // SAFETY: kill(2) on our own child (setpriv exec'd the binary in place).
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let code = wait::exit(&mut run, Duration::from_secs(30));
    assert_eq!(code, Some(3), "the step failed, the run ended");
    assert!(!t.marker.exists(), "the step ran");
    assert!(t.spooled(".alive").is_empty(), "the heartbeat is gone");
    let finished = t
        .trail()
        .into_iter()
        .find(|e| e["event"] == "step finished" && e["step"] == "drop-db")
        .unwrap();
    assert!(
        finished["reason"]
            .as_str()
            .unwrap()
            .contains("while waiting for approval"),
        "{finished}"
    );
    let late = t.approve(&t.bob, &[&name, "--yes"]);
    assert_eq!(late.status.code(), Some(2), "{}", said(&late));
    assert!(t.spooled(".sig").is_empty(), "nothing was signed");
}
