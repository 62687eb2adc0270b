//! Secrets from where they live to the one step that needs them, and nowhere else (design
//! §14), tried as an attacker with a local account would: every process's argv scanned while
//! steps run, here and on the host; a real `pass` store as a source; a suite of ways a step
//! can print a secret, each grepped for in the terminal, every file of the audit dir and every
//! review format; hostile bytes from values and output kept off the terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cmd::runbook;
use crate::support::sshd::Sshd;
use crate::support::trail::audit_files;

/// The secret of these tests: characters that base64 and URL encoding change.
const SECRET: &str = "Zq9-Lm2+Xw7/Vb4=Kp&t0k";

/// A multi-line secret shaped like a private key.
const KEY: &str = "-----BEGIN TEST KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm\n-----END TEST KEY-----";

/// Every byte string that would betray `SECRET` or `KEY` if it reached a terminal or a file:
/// each in clear, each line of the key, the parts of their base64 encodings (both alphabets,
/// three alignments) that depend on the secret alone, the URL encoding, and the reversed
/// secret (a derived form only hiding stdout whole catches).
fn betrayals() -> Vec<String> {
    let mut found = vec![SECRET.to_string(), rev(SECRET)];
    found.extend(
        KEY.lines()
            .filter(|l| l.len() >= 8 && !l.starts_with("-----"))
            .map(String::from),
    );
    for secret in [SECRET, KEY] {
        for prefix in ["", "a", "ab"] {
            let encoded = base64(&format!("{prefix}{secret}"));
            // Skip what the unknown bytes around it touch: 4 characters each side.
            let inner = &encoded[4..encoded.len() - 4];
            found.push(inner.to_string());
            found.push(inner.replace('+', "-").replace('/', "_"));
        }
    }
    found.push(url_encode(SECRET));
    // Issue 24 #9: what a decoder maps back as well: lowercase hex, and `/` kept as it is
    // (Python's default `quote`).
    found.push(
        url_encode(SECRET)
            .replace("%2B", "%2b")
            .replace("%2F", "%2f")
            .replace("%3D", "%3d"),
    );
    found.push(url_encode(SECRET).replace("%2F", "/"));
    found
}

fn rev(s: &str) -> String {
    s.chars().rev().collect()
}

fn base64(s: &str) -> String {
    let mut child = Command::new("base64")
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The suite: each step prints the secret one way. `declassify: true` shows its stdout, so
/// that masking (not hiding) is what is tested; the last ones test hiding and least privilege.
const CASES: &[(&str, &str)] = &[
    ("whole", r#"echo "$pw""#),
    ("embedded", r#"printf 'x%sy\n' "$pw""#),
    (
        "split",
        r#"printf %s "$pw" | cut -c1-7; sleep 0.2; printf %s "$pw" | cut -c8-"#,
    ),
    ("split-bytes", r#"printf %s "$pw" | fold -w 3"#),
    ("on-stderr", r#"echo "error: bad password $pw" >&2"#),
    ("twice", r#"echo "$pw$pw""#),
    ("base64-0", r#"printf %s "$pw" | base64"#),
    ("base64-1", r#"printf 'a%s' "$pw" | base64"#),
    ("base64-2", r#"printf 'ab%s' "$pw" | base64"#),
    ("base64-url", r#"printf 'a%s' "$pw" | base64 | tr '+/' '-_'"#),
    (
        "base64-prefix",
        r#"printf 'Authorization: Basic '; printf 'user:%s' "$pw" | base64"#,
    ),
    (
        "url",
        r#"python3 -c 'import os, urllib.parse; print("https://h/?p=" + urllib.parse.quote(os.environ["pw"], safe=""))'"#,
    ),
    (
        "url-lowercase-hex",
        r#"python3 -c 'import os, re, urllib.parse; print("p=" + re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(os.environ["pw"], safe="")))'"#,
    ),
    (
        "url-keeps-slash",
        r#"python3 -c 'import os, urllib.parse; print("https://h/" + urllib.parse.quote(os.environ["pw"]))'"#,
    ),
    ("key-whole", r#"echo "$key""#),
    ("key-prefixed", r#"echo "$key" | sed 's/^/> /'"#),
    ("key-crlf", r#"printf '%s\n' "$key" | sed 's/$/\r/'"#),
    ("key-one-line", r#"echo "$key" | sed -n 2p"#),
    ("key-base64", r#"printf %s "$key" | base64 -w0; echo"#),
    ("in-json", r#"printf '{"password":"%s"}\n' "$pw""#),
    ("in-env-dump", r#"env | grep '^pw='"#),
];

fn suite_yaml(dir: &Path) -> PathBuf {
    let mut yaml = String::from(
        "version: 1\nid: masking\ntitle: Masking suite\nrto: 5m\ninputs:\n  pw: {description: A password, secret: true}\n  key: {description: A key, secret: true}\nsteps:\n",
    );
    for (id, run) in CASES {
        yaml.push_str(&format!(
            "  - id: {id}\n    title: Print it {id}\n    run: {}\n    uses: [pw, key]\n    declassify: true\n",
            serde_json::to_string(run).unwrap()
        ));
    }
    yaml.push_str(concat!(
        // Derived output, not declassified: stdout hidden whole, the capture secret.
        "  - id: derived\n    title: A derived value\n    run: printf %s \"$pw\" | rev\n    capture: reversed\n",
        // The derived capture is a secret too: named in a title and a later command.
        "  - id: show-derived\n    title: \"Reversed: {{ reversed }}\"\n    notes: \"note shows {{ pw }} and {{ reversed }}\"\n    run: echo \"$reversed\" >&2\n",
        // A step that does not name the secret does not get it.
        "  - id: not-named\n    title: A step without the secret\n    run: printenv pw || echo pw is not here\n",
        "  - id: done\n    title: Done\n    end: resolved\n    message: \"done with {{ pw }}\"\n",
    ));
    // A secret spelled out in a command is masked where the command is shown and recorded.
    let done = yaml.rfind("  - id: done").unwrap();
    yaml.insert_str(
        done,
        &format!("  - id: literal\n    title: A pasted token\n    run: \"true '{SECRET}'\"\n"),
    );
    let file = dir.join("masking.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

/// Every file under `dir`, read as lossy text.
fn every_text(dir: &Path) -> Vec<(PathBuf, String)> {
    crate::support::trail::every_file(dir)
        .into_iter()
        .map(|path| {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            (path, text)
        })
        .collect()
}

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    for betrayal in betrayals() {
        assert!(!text.contains(&betrayal), "{what} holds `{betrayal}`:\n{text}");
    }
}

#[test]
fn no_form_of_a_secret_reaches_the_terminal_the_audit_dir_or_a_review() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = suite_yaml(dir.path());
    let key_file = dir.path().join("key.pem");
    std::fs::write(&key_file, KEY).unwrap();
    let out = runbook(["run", book.to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit.path())
        .args(["--set-from", "pw=env:RB_TEST_PW", "--set-from"])
        .arg(format!("key=file-all:{}", key_file.display()))
        .env("RB_TEST_PW", SECRET)
        .expect_code(0);
    assert_clean("the terminal", &out.stderr);
    // Masked, not lost: each case printed something, shown as `***`.
    assert!(out.stderr.contains("x***y"), "{}", out.stderr);
    assert!(
        out.stderr.contains("> ***"),
        "each line of the key: {}",
        out.stderr
    );
    assert!(out.stderr.contains("stdout hidden"), "{}", out.stderr);
    assert!(
        out.stderr.contains("pw is not here"),
        "least privilege: {}",
        out.stderr
    );
    assert!(out.stderr.contains("Reversed: ***"), "{}", out.stderr);
    assert!(out.stderr.contains("done with ***"), "{}", out.stderr);
    for (path, text) in every_text(audit.path()) {
        assert_clean(&path.display().to_string(), &text);
    }
    let trail = audit_files(audit.path()).pop().unwrap();
    let text = std::fs::read_to_string(&trail).unwrap();
    // The derived capture is recorded as secret; the step records which secrets it received.
    assert!(
        text.contains(r#""capture":{"name":"reversed","value":"***"}"#),
        "{text}"
    );
    assert!(text.contains(r#""secrets":["pw","key"]"#), "{text}");
    assert!(text.contains(r#""declassify":true"#), "{text}");
    for format in ["text", "md", "json", "html"] {
        let review = runbook(["review", trail.to_str().unwrap(), "--format", format])
            .expect_code(0)
            .stdout;
        assert_clean(&format!("the {format} review"), &review);
    }
    // The env: source's variable reached no step.
    assert!(!out.stderr.contains("RB_TEST_PW"), "{}", out.stderr);
}

/// While steps run, locally and over SSH, every process's argv on the machine is read (as
/// any local user can: /proc/PID/cmdline): the secret is in none of them. A value over
/// 128 KiB, which could not pass through argv at all, reaches its step.
#[test]
fn no_secret_is_in_any_process_list_here_or_on_the_host() {
    let sshd = Sshd::start();
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let big = format!("{SECRET}{}", "x".repeat(200 * 1024));
    let big_file = dir.path().join("big");
    std::fs::write(&big_file, &big).unwrap();
    let flag = dir.path().join("scanned");
    let book = dir.path().join("argv.yaml");
    std::fs::write(
        &book,
        format!(
            "version: 1\nid: argv\ntitle: Argv\nrto: 5m\ninputs:\n  pw: {{secret: true}}\n  big: {{secret: true}}\ntargets:\n  app: {{}}\nsteps:\n  - id: here\n    title: Here\n    target: local\n    timeout: 60s\n    run: 'test -n \"$pw\" && printf %s \"$big\" | wc -c >&2; while [ ! -e {flag}.here ]; do sleep 0.05; done'\n  - id: there\n    title: There\n    target: app\n    timeout: 60s\n    run: 'test -n \"$pw\" && printf %s \"$big\" | wc -c >&2; while [ ! -e {flag}.there ]; do sleep 0.05; done'\n  - id: done\n    title: Done\n    end: resolved\n",
            flag = flag.display()
        ),
    )
    .unwrap();
    let run = runbook(["run", book.to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit.path())
        .args(["--set-from", "pw=env:RB_TEST_PW", "--set-from"])
        .arg(format!("big=file-all:{}", big_file.display()))
        .args(["--target", &format!("app={}", sshd.dest()), "--identity"])
        .arg(&sshd.identity)
        .arg("--known-hosts")
        .arg(&sshd.known_hosts)
        .arg("--ssh-config")
        .arg(&sshd.ssh_config)
        .env("RB_TEST_PW", SECRET);
    /// Lets both steps end, even when an assertion fails first: the run must not hang.
    struct Release<'a>(&'a Path);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            for side in ["here", "there"] {
                let _ = std::fs::write(format!("{}.{side}", self.0.display()), "");
            }
        }
    }
    let out = std::thread::scope(|scope| {
        let handle = scope.spawn(|| run.output());
        let release = Release(&flag);
        for side in ["here", "there"] {
            // The step is running (its start is on disk, its loop waits for its flag): read
            // every argv on the machine, the host's sshd children included.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !audit_files(audit.path()).iter().any(|f| {
                std::fs::read_to_string(f).unwrap_or_default().contains(&format!(
                    "\"event\":\"step started\",\"operator\":\"tester\",\"step\":\"{side}\""
                ))
            }) {
                assert!(Instant::now() < deadline, "the step `{side}` never started");
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_millis(300));
            let argvs = every_argv();
            assert!(
                argvs.iter().any(|a| a.contains("script=$(cat)")),
                "the step's shell is there"
            );
            for argv in argvs {
                assert!(!argv.contains(SECRET), "a process shows the secret: {argv}");
            }
            std::fs::write(format!("{}.{side}", flag.display()), "").unwrap();
        }
        drop(release);
        handle.join().unwrap()
    });
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let size = (big.len()).to_string();
    assert_eq!(
        out.stderr.matches(&size).count(),
        2,
        "the big value reached both steps: {}",
        out.stderr
    );
    assert!(!out.stderr.contains(SECRET));
}

/// The command lines of every process on this machine (what `ps` shows any user).
fn every_argv() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .collect()
}

/// A real password manager as the source: Debian's `pass` over `gnupg`, a throwaway key.
#[test]
fn a_secret_read_from_a_real_pass_store() {
    for program in ["pass", "gpg"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .status()
                .unwrap()
                .success(),
            "`{program}` is missing: apt-get install pass gnupg (scripts/test.sh does)"
        );
    }
    let (audit, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gnupg = home.path().join("gnupg");
    std::fs::create_dir(&gnupg).unwrap();
    std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let store = home.path().join("store");
    let env = |c: &mut Command| {
        c.env("GNUPGHOME", &gnupg)
            .env("PASSWORD_STORE_DIR", &store)
            .stdin(Stdio::null());
    };
    let mut c = Command::new("gpg");
    c.args([
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        "runbook test <t@example.invalid>",
        "default",
        "default",
        "never",
    ]);
    env(&mut c);
    assert!(c.output().unwrap().status.success(), "gpg could not make a key");
    let mut c = Command::new("pass");
    c.args(["init", "t@example.invalid"]);
    env(&mut c);
    assert!(c.output().unwrap().status.success());
    let mut c = Command::new("sh");
    c.args([
        "-c",
        &format!("printf '%s\\n' '{SECRET}' | pass insert -m db/prod"),
    ]);
    env(&mut c);
    assert!(c.output().unwrap().status.success());

    let book = home.path().join("pass.yaml");
    std::fs::write(
        &book,
        "version: 1\nid: passed\ntitle: From pass\nrto: 1m\ninputs:\n  pw: {secret: true, from: \"cmd:pass show db/prod\"}\nsteps:\n  - id: check\n    title: The value arrived\n    run: 'test \"$pw\" = \"$EXPECTED\" && echo same >&2'\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    let out = runbook(["run", book.to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit.path())
        .env("GNUPGHOME", &gnupg)
        .env("PASSWORD_STORE_DIR", &store)
        .env("EXPECTED", SECRET)
        .expect_code(0);
    assert!(out.stderr.contains("same"), "{}", out.stderr);
    for (path, text) in every_text(audit.path()) {
        assert!(!text.contains(SECRET), "{}", path.display());
    }
    let _ = Command::new("gpgconf")
        .arg("--kill")
        .arg("gpg-agent")
        .env("GNUPGHOME", &gnupg)
        .status();
}

/// Escape sequences in a value, a title and a command's output never drive the terminal:
/// window title, clipboard (OSC 52), screen clear and cursor moves are gone; colours stay.
#[test]
fn hostile_bytes_in_values_and_output_never_reach_the_terminal_raw() {
    use rexpect::session::spawn_with_options;
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = dir.path().join("hostile.yaml");
    std::fs::write(
        &book,
        "version: 1\nid: hostile\ntitle: Hostile\nrto: 1m\ninputs:\n  evil: {default: \"x\"}\nsteps:\n  - id: out\n    title: \"Title {{ evil }}\"\n    run: printf '\\033]0;PWNED-TITLE\\007\\033]52;c;UFdORUQ=\\007\\033[2J\\033[10;10HFAKE\\033[31mred\\033[0m\\n'\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    let mut command = Command::new(crate::support::cmd::bin());
    command
        .args(["run", book.to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit.path())
        .arg("--set")
        .arg("evil=\u{1b}]0;VALUE-TITLE\u{7}\u{1b}[2Jv")
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("SSH_AUTH_SOCK");
    // Raw: what the terminal would receive, escape sequences and all.
    let options = rexpect::reader::Options::new().timeout_ms(Some(20_000));
    let mut s = spawn_with_options(command, options).unwrap();
    let seen = s.exp_string("audit trail:").unwrap();
    for bad in ["\u{1b}]0;", "\u{1b}]52;", "\u{1b}[2J", "\u{1b}[10;10H"] {
        assert!(!seen.contains(bad), "{bad:?} reached the terminal: {seen:?}");
    }
    assert!(seen.contains("\u{1b}[31mred"), "colours stay: {seen:?}");
    assert!(
        seen.contains("\\x1b]0;VALUE-TITLE"),
        "the value is shown escaped: {seen:?}"
    );
    // The output file keeps the raw bytes: it is evidence.
    let run = audit_files(audit.path()).pop().unwrap();
    let out = std::fs::read(run.with_extension("").join("out-1.out")).unwrap();
    assert!(out.starts_with(b"\x1b]0;PWNED-TITLE\x07"), "{out:?}");
}

/// What the operator types is masked too: a note and an edit that spell the secret out.
#[test]
fn a_typed_note_and_an_edit_never_record_the_secret() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = dir.path().join("typed.yaml");
    std::fs::write(
        &book,
        "version: 1\nid: typed\ntitle: Typed\nrto: 1m\ninputs:\n  pw: {secret: true}\nsteps:\n  - id: use\n    title: Use it\n    run: test -n \"$pw\"\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    let mut command = Command::new(crate::support::cmd::bin());
    command
        .args([
            "run",
            book.to_str().unwrap(),
            "--set-from",
            "pw=env:RB_TEST_PW",
            "--audit-dir",
        ])
        .arg(audit.path())
        .env("RB_TEST_PW", SECRET)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("SSH_AUTH_SOCK");
    let mut s = crate::support::pty::start(command);
    let keys = |s: &mut crate::support::pty::Session, k: &str| {
        std::thread::sleep(Duration::from_millis(300));
        s.send(k).unwrap();
        s.flush().unwrap();
    };
    const DOWN: &str = "\x1b[B";
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(4))); // Add a note
    s.exp_string("Note").unwrap();
    keys(&mut s, &format!("the dba said the password is {SECRET}\r"));
    s.exp_string("What now?").unwrap();
    keys(&mut s, &format!("{}\r", DOWN.repeat(2))); // Edit the command first
    s.exp_string("Command").unwrap();
    keys(&mut s, &format!(" && test \"$pw\" = '{SECRET}'\r"));
    // Typed, it was on the screen; once typed, the line left there and the diff are masked.
    let typing = s.exp_string("Run the edited command?").unwrap();
    // From the last drawing of the line (the one left once Enter was pressed) on.
    let diff = &typing[typing.rfind("Command").unwrap()..];
    assert_clean("the edit's line and diff", diff);
    assert!(
        diff.contains("+ test -n \"$pw\" && test \"$pw\" = '***'"),
        "{diff}"
    );
    keys(&mut s, &format!("{DOWN}\r")); // Yes, run it as edited
    let seen = s.exp_string("audit trail:").unwrap();
    match s.process_mut().wait().unwrap() {
        nix::sys::wait::WaitStatus::Exited(_, 0) => {}
        other => panic!("{other:?}: {seen}"),
    }
    assert_clean("the terminal", &seen);
    for (path, text) in every_text(audit.path()) {
        assert_clean(&path.display().to_string(), &text);
    }
    let trail = audit_files(audit.path()).pop().unwrap();
    let text = std::fs::read_to_string(&trail).unwrap();
    assert!(text.contains("the dba said the password is ***"), "{text}");
    assert!(text.contains("test \\\"$pw\\\" = '***'"), "{text}");
    for format in ["text", "md", "json", "html"] {
        let review = runbook(["review", trail.to_str().unwrap(), "--format", format])
            .expect_code(0)
            .stdout;
        assert_clean(&format!("the {format} review"), &review);
    }
}

/// `validate` enforces the rules of secrets and lists every claim that an output is free of one.
#[test]
fn validate_refuses_a_confirmation_that_shows_a_secret_and_lists_declassified_steps() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("rules.yaml");
    std::fs::write(
        &book,
        "version: 1\nid: rules\ntitle: Rules\nrto: 1m\ninputs:\n  pw: {secret: true, from: \"vault:db\"}\nsteps:\n  - id: drop\n    title: Drop\n    confirm: \"type {{ pw }}\"\n    run: echo drop\n    uses: [pws]\n  - id: count\n    title: Count\n    run: echo 3\n    uses: [pw]\n    declassify: true\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    let out = runbook(["validate", book.to_str().unwrap()]).expect_code(2);
    let text = &out.stderr;
    assert!(text.contains("input `pw` has an unknown source"), "{text}");
    assert!(
        text.contains("error: the confirmation of step `drop` shows the secret `pw`"),
        "{text}"
    );
    assert!(
        text.contains("error: step `drop` uses unknown variable `pws`"),
        "{text}"
    );
    assert!(text.contains("did you mean `pw`"), "{text}");
    assert!(
        text.contains("warning: step `count` declares its output free of secrets (`declassify: true`)"),
        "{text}"
    );
}

/// A value with markup and table syntax stays text in a Markdown review.
#[test]
fn markdown_reviews_escape_markup_from_values() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = dir.path().join("md.yaml");
    std::fs::write(
        &book,
        "version: 1\nid: md\ntitle: Markdown\nrto: 1m\ninputs:\n  v: {default: x}\nsteps:\n  - id: show\n    title: \"Value {{ v }}\"\n    run: 'true'\n  - id: done\n    title: Done\n    end: resolved\n    message: \"got {{ v }}\"\n",
    )
    .unwrap();
    runbook(["run", book.to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit.path())
        .args(["--set", "v=<script>alert(1)</script>|col"])
        .expect_code(0);
    let trail = audit_files(audit.path()).pop().unwrap();
    let md = runbook(["review", trail.to_str().unwrap(), "--format", "md"])
        .expect_code(0)
        .stdout;
    assert!(!md.contains("<script>"), "{md}");
    assert!(
        md.contains("got &lt;script&gt;alert(1)&lt;/script&gt;\\|col"),
        "{md}"
    );
}

/// Issue 24 #10: a runbook's title with markup stays text in the Markdown review's Mermaid
/// chart too (its `title` line), not only in its tables.
#[test]
fn the_mermaid_title_of_a_markdown_review_escapes_markup() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = dir.path().join("md.yaml");
    std::fs::write(
        &book,
        "version: 1\nid: mdtitle\ntitle: \"<img src=x onerror=alert(1)> <script>alert(2)</script>\"\nrto: 1m\nsteps:\n  - id: show\n    title: Show\n    run: 'true'\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    runbook(["run", book.to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit.path())
        .expect_code(0);
    let trail = audit_files(audit.path()).pop().unwrap();
    let md = runbook(["review", trail.to_str().unwrap(), "--format", "md"])
        .expect_code(0)
        .stdout;
    assert!(!md.contains("<img") && !md.contains("<script"), "{md}");
    assert!(
        md.contains("    title ＜img src=x onerror=alert(1)＞ ＜script＞alert(2)＜/script＞"),
        "{md}"
    );
}

/// An `env:` source's variable is gone before anything else runs: a `cmd:` source declared
/// earlier, and every step, see an environment without it.
#[test]
fn an_env_source_is_removed_before_cmd_sources_and_steps_run() {
    let (audit, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let book = dir.path().join("env.yaml");
    std::fs::write(
        &book,
        "version: 1\nid: envsrc\ntitle: Env source\nrto: 1m\ninputs:\n  probe: {from: \"cmd:sh -c 'printenv RB_TEST_PW || echo gone'\"}\n  pw: {secret: true, from: \"env:RB_TEST_PW\"}\nsteps:\n  - id: look\n    title: Look\n    run: 'echo \"probe=$probe\" >&2; printenv RB_TEST_PW >&2 || echo \"step: gone\" >&2'\n  - id: done\n    title: Done\n    end: resolved\n",
    )
    .unwrap();
    let out = runbook(["run", book.to_str().unwrap(), "--yes", "--audit-dir"])
        .arg(audit.path())
        .env("RB_TEST_PW", SECRET)
        .expect_code(0);
    assert!(out.stderr.contains("probe=gone"), "{}", out.stderr);
    assert!(out.stderr.contains("step: gone"), "{}", out.stderr);
    assert_clean("the terminal", &out.stderr);
}
