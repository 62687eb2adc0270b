//! The transports against real parts: `sh` on this machine and a real `sshd` on 127.0.0.1.
//! Exit codes, live output, variables that cannot inject, stopping the whole process group
//! on the remote host, lost connections, host keys and secret masking.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use runbook::testing::mask::Masker;
use runbook::testing::transport::{CancellationToken, Chunk, CommandSpec, Ending, Transport};
use tokio::sync::mpsc;

use crate::support::sshd::Sshd;

mod connect;

/// One command's outcome as the caller sees it.
struct Ran {
    ending: Ending,
    chunks: Vec<Chunk>,
    elapsed: Duration,
}

impl Ran {
    fn stdout(&self) -> String {
        self.joined(|c| matches!(c, Chunk::Stdout(_)))
    }

    fn stderr(&self) -> String {
        self.joined(|c| matches!(c, Chunk::Stderr(_)))
    }

    fn joined(&self, pick: impl Fn(&Chunk) -> bool) -> String {
        let bytes: Vec<u8> = self
            .chunks
            .iter()
            .filter(|c| pick(c))
            .flat_map(|c| match c {
                Chunk::Stdout(b) | Chunk::Stderr(b) => b.clone(),
                Chunk::Group(_) => Vec::new(),
            })
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The next piece of output, past the announcement of the command's process group.
async fn output(rx: &mut mpsc::Receiver<Chunk>) -> Option<Chunk> {
    loop {
        match rx.recv().await {
            Some(Chunk::Group(_)) => continue,
            other => return other,
        }
    }
}

fn spec(command: &str) -> CommandSpec {
    CommandSpec {
        command: command.to_string(),
        env: Vec::new(),
        timeout: None,
        step: "s".into(),
        attempt: 1,
    }
}

async fn run_with(t: &Transport, spec: &CommandSpec, cancel: CancellationToken) -> Ran {
    let (tx, mut rx) = mpsc::channel(64);
    let started = Instant::now();
    let collect = async {
        let mut chunks = Vec::new();
        while let Some(c) = rx.recv().await {
            chunks.push(c);
        }
        chunks
    };
    let (ending, chunks) = tokio::join!(t.run(spec, tx, cancel), collect);
    Ran {
        ending: ending.expect("the command starts"),
        chunks,
        elapsed: started.elapsed(),
    }
}

async fn run(t: &Transport, spec: &CommandSpec) -> Ran {
    run_with(t, spec, CancellationToken::new()).await
}

async fn connect(sshd: &Sshd) -> Transport {
    match Transport::connect(&sshd.dest(), &sshd.options()).await {
        Ok(t) => t,
        Err(e) => panic!("{e}\n{}\nsshd log:\n{}", e.detail, sshd.log()),
    }
}

/// A word no other process on this machine has in its command line.
fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "rb{what}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits (briefly: a killed process may take a moment to be reaped) until no process has
/// `marker` in its command line; panics naming them otherwise.
async fn assert_no_process(marker: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let out = std::process::Command::new("pgrep")
            .args(["-a", "-f", marker])
            .output()
            .expect("pgrep (procps) is installed");
        if out.stdout.is_empty() {
            return;
        }
        if Instant::now() > until {
            panic!(
                "still running after the command was stopped:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kill_leftovers(marker: &str) {
    let _ = std::process::Command::new("pkill")
        .args(["-KILL", "-f", marker])
        .status();
}

// --- exit codes, streaming, variables: the same checks on both transports ---

async fn check_exit_code_and_streams(t: &Transport) {
    let ran = run(
        t,
        &spec("echo out1; echo err1 >&2; sleep 0.2; echo out2; echo err2 >&2; exit 3"),
    )
    .await;
    assert_eq!(ran.ending, Ending::Exited(3), "{}", t.label());
    assert_eq!(ran.stdout(), "out1\nout2\n");
    assert_eq!(ran.stderr(), "err1\nerr2\n");

    // Output arrives while the command still runs, not when it ends.
    let (tx, mut rx) = mpsc::channel(64);
    let started = Instant::now();
    let long = spec("echo first; sleep 1.5; echo second");
    let task = t.run(&long, tx, CancellationToken::new());
    let first = async {
        let chunk = output(&mut rx).await;
        let at = started.elapsed();
        while rx.recv().await.is_some() {}
        (chunk, at)
    };
    let (ending, (chunk, at)) = tokio::join!(task, first);
    assert_eq!(ending.unwrap(), Ending::Exited(0));
    assert_eq!(chunk, Some(Chunk::Stdout(b"first\n".to_vec())));
    assert!(at < Duration::from_secs(1), "first line came after {at:?}");
}

/// Values that would run code if they were pasted into the command instead of exported.
async fn check_values_arrive_literally(t: &Transport) {
    let pwned = format!("/tmp/{}", unique("pwned"));
    let values = [
        format!("'; touch {pwned}; '"),
        format!("$(touch {pwned})"),
        format!("`touch {pwned}`"),
        format!("line1\ntouch {pwned}\nline3"),
        format!("\"; touch {pwned}; \""),
        format!("\\'; touch {pwned} #"),
        String::new(),
    ];
    let env: Vec<(String, String)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("v{i}"), v.clone()))
        .collect();
    let names: Vec<String> = (0..values.len()).map(|i| format!("\"$v{i}\"")).collect();
    let spec = CommandSpec {
        command: format!("printf '%s\\n--\\n' {}", names.join(" ")),
        env,
        timeout: None,
        step: "s".into(),
        attempt: 1,
    };
    let ran = run(t, &spec).await;
    assert_eq!(ran.ending, Ending::Exited(0), "{}", ran.stderr());
    let want: String = values.iter().map(|v| format!("{v}\n--\n")).collect();
    assert_eq!(ran.stdout(), want);
    assert!(!std::path::Path::new(&pwned).exists(), "a value ran code");
}

#[tokio::test]
async fn local_reports_exit_codes_and_streams_output_live() {
    check_exit_code_and_streams(&Transport::local()).await;
}

#[tokio::test]
async fn ssh_reports_exit_codes_and_streams_output_live() {
    let sshd = Sshd::start();
    let t = connect(&sshd).await;
    assert_eq!(t.label(), sshd.dest());
    check_exit_code_and_streams(&t).await;
    t.close().await;
}

#[tokio::test]
async fn local_variables_arrive_literally_and_inject_nothing() {
    check_values_arrive_literally(&Transport::local()).await;
}

#[tokio::test]
async fn ssh_variables_arrive_literally_and_inject_nothing() {
    let sshd = Sshd::start();
    let t = connect(&sshd).await;
    check_values_arrive_literally(&t).await;
    // The command ran as the login user, through the alias's login shell.
    assert_eq!(run(&t, &spec("id -un")).await.stdout(), "rbtest\n");
    t.close().await;
}

#[tokio::test]
async fn a_bad_variable_name_is_refused_before_anything_runs() {
    let spec = CommandSpec {
        command: "true".into(),
        env: vec![("a;b".into(), "x".into())],
        timeout: None,
        step: "s".into(),
        attempt: 1,
    };
    let (tx, _rx) = mpsc::channel(1);
    let err = Transport::local()
        .run(&spec, tx, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`a;b`"), "{err}");
}

#[tokio::test]
async fn local_reports_a_signal() {
    let ran = run(&Transport::local(), &spec("kill -KILL $$")).await;
    assert_eq!(ran.ending, Ending::Signaled(9));
}

#[tokio::test]
async fn ssh_reports_exit_codes_127_and_255_as_such() {
    let sshd = Sshd::start();
    let t = connect(&sshd).await;
    assert_eq!(run(&t, &spec("exit 127")).await.ending, Ending::Exited(127));
    assert_eq!(run(&t, &spec("exit 255")).await.ending, Ending::Exited(255));
    let missing = run(&t, &spec("no-such-command-rb")).await;
    assert_eq!(missing.ending, Ending::Exited(127));
    assert!(missing.stderr().contains("not found"), "{}", missing.stderr());
    // The marker line announcing the process group never reaches the output.
    assert!(!missing.stderr().contains("rb-pgid"), "{}", missing.stderr());
    // And the connection is still good.
    assert_eq!(run(&t, &spec("echo ok")).await.stdout(), "ok\n");
    t.close().await;
}

#[tokio::test]
async fn ssh_connection_dying_mid_command_is_lost_not_success() {
    let sshd = Sshd::start();
    let t = connect(&sshd).await;
    let marker = unique("lost");
    let long = spec(&format!("echo started; sh -c 'sleep 30' {marker}"));
    let (tx, mut rx) = mpsc::channel(64);
    let started = Instant::now();
    let watcher = async {
        assert_eq!(output(&mut rx).await, Some(Chunk::Stdout(b"started\n".to_vec())));
        sshd.kill_connections();
        while rx.recv().await.is_some() {}
    };
    let (ending, ()) = tokio::join!(t.run(&long, tx, CancellationToken::new()), watcher);
    kill_leftovers(&marker);
    match ending.unwrap() {
        Ending::Lost(reason) => assert!(reason.contains(&sshd.dest()), "{reason}"),
        other => panic!("expected Lost, got {other:?}"),
    }
    assert!(!t.is_alive().await);
    assert!(started.elapsed() < Duration::from_secs(20));
    t.close().await;
}

#[tokio::test]
async fn ssh_step_with_a_timeout_never_outlives_a_lost_connection() {
    let sshd = Sshd::start();
    let t = connect(&sshd).await;
    let marker = unique("orphan");
    let mut long = spec(&format!("echo started; sh -c 'sleep 60' {marker}"));
    long.timeout = Some(Duration::from_secs(2));
    let (tx, mut rx) = mpsc::channel(64);
    let watcher = async {
        output(&mut rx).await;
        sshd.kill_connections();
        while rx.recv().await.is_some() {}
    };
    let (ending, ()) = tokio::join!(t.run(&long, tx, CancellationToken::new()), watcher);
    assert!(matches!(ending.unwrap(), Ending::Lost(_)));
    // Nobody is left to stop it: the remote `timeout` backstop (timeout + 5 s) does.
    assert!(is_running(&marker), "the orphan should still run for now");
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        if !is_running(&marker) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    kill_leftovers(&marker);
    panic!("the remote command outlived its timeout after the connection was lost");
}

fn is_running(marker: &str) -> bool {
    let out = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .expect("pgrep (procps) is installed");
    !out.stdout.is_empty()
}

// --- stopping: timeout, cancel, a command that ignores TERM ---

async fn check_timeout_stops_everything(t: &Transport) {
    let marker = unique("timeout");
    let mut s = spec(&format!("sh -c 'sleep 300' {marker}"));
    s.timeout = Some(Duration::from_secs(1));
    let ran = run(t, &s).await;
    assert_eq!(ran.ending, Ending::TimedOut, "{}", t.label());
    assert!(ran.elapsed < Duration::from_secs(4), "took {:?}", ran.elapsed);
    assert_no_process(&marker).await;
}

async fn check_cancel_stops_everything(t: &Transport) {
    let marker = unique("cancel");
    // A child of a child: the whole group must go, not just the shell.
    let s = spec(&format!("sh -c 'sh -c \"sleep 300\" {marker}-child' {marker}"));
    let cancel = CancellationToken::new();
    let trigger = {
        let cancel = cancel.clone();
        let marker = marker.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            // The markers are in argv (the script itself never is): it runs, then is stopped.
            assert!(is_running(&format!("{marker}-child")), "the command never ran");
            cancel.cancel();
        }
    };
    let (ran, ()) = tokio::join!(run_with(t, &s, cancel), trigger);
    assert_eq!(ran.ending, Ending::Cancelled, "{}", t.label());
    assert!(ran.elapsed < Duration::from_secs(4), "took {:?}", ran.elapsed);
    assert_no_process(&marker).await;
}

async fn check_term_ignored_is_killed_after_grace(t: &Transport) {
    let marker = unique("stubborn");
    let mut s = spec(&format!("trap '' TERM; echo armed; sh -c 'sleep 300' {marker}"));
    s.timeout = Some(Duration::from_secs(1));
    let ran = run(t, &s).await;
    assert_eq!(ran.ending, Ending::TimedOut, "{}", t.label());
    assert_eq!(ran.stdout(), "armed\n");
    // TERM at 1 s, ignored; KILL after the 3 s grace.
    assert!(ran.elapsed >= Duration::from_millis(3900), "{:?}", ran.elapsed);
    assert!(ran.elapsed < Duration::from_secs(8), "took {:?}", ran.elapsed);
    assert_no_process(&marker).await;
}

#[tokio::test]
async fn local_timeout_stops_the_whole_process_group() {
    check_timeout_stops_everything(&Transport::local()).await;
}

#[tokio::test]
async fn local_cancel_stops_the_whole_process_group() {
    check_cancel_stops_everything(&Transport::local()).await;
}

#[tokio::test]
async fn local_command_ignoring_term_is_killed_after_grace() {
    check_term_ignored_is_killed_after_grace(&Transport::local()).await;
}

#[tokio::test]
async fn ssh_timeout_stops_the_command_on_the_remote_host() {
    let sshd = Sshd::start();
    let t = connect(&sshd).await;
    check_timeout_stops_everything(&t).await;
    t.close().await;
}

#[tokio::test]
async fn ssh_cancel_stops_the_command_on_the_remote_host() {
    let sshd = Sshd::start();
    let t = connect(&sshd).await;
    check_cancel_stops_everything(&t).await;
    t.close().await;
}

#[tokio::test]
async fn ssh_command_ignoring_term_is_killed_after_grace() {
    let sshd = Sshd::start();
    let t = connect(&sshd).await;
    check_term_ignored_is_killed_after_grace(&t).await;
    t.close().await;
}

/// An executor that gives up on a command (drops the `run` future) must not leave it running.
async fn check_abandoned_run_is_stopped(t: &Transport) {
    let marker = unique("abandoned");
    let s = spec(&format!("echo go; sh -c 'sleep 300' {marker}"));
    let (tx, mut rx) = mpsc::channel(64);
    // Boxed, so that dropping it really drops the future.
    let mut run = Box::pin(t.run(&s, tx, CancellationToken::new()));
    // Run it until its first output, then drop it.
    tokio::select! {
        _ = &mut run => panic!("sleep 300 ended"),
        first = output(&mut rx) => assert_eq!(first, Some(Chunk::Stdout(b"go\n".to_vec()))),
    }
    drop(run);
    assert_no_process(&marker).await;
}

#[tokio::test]
async fn local_abandoned_run_is_stopped() {
    check_abandoned_run_is_stopped(&Transport::local()).await;
}

#[tokio::test]
async fn ssh_abandoned_run_is_stopped_on_the_remote_host() {
    let sshd = Sshd::start();
    let t = connect(&sshd).await;
    check_abandoned_run_is_stopped(&t).await;
    t.close().await;
}

// --- masking secrets in streamed output ---

async fn check_split_secret_is_masked(t: &Transport) {
    let ran = run(t, &spec("printf 'pw=hun'; sleep 0.3; printf 'ter2!\\n'")).await;
    assert_eq!(ran.ending, Ending::Exited(0));
    let pieces: Vec<&Vec<u8>> = ran
        .chunks
        .iter()
        .filter_map(|c| match c {
            Chunk::Stdout(b) | Chunk::Stderr(b) => Some(b),
            Chunk::Group(_) => None,
        })
        .collect();
    assert!(pieces.len() >= 2, "the secret did not arrive split: {pieces:?}");
    let mut masker = Masker::new(vec![b"hunter2".to_vec()]);
    let mut shown = Vec::new();
    for piece in pieces {
        shown.extend(masker.push(piece));
    }
    shown.extend(masker.finish());
    let shown = String::from_utf8(shown).unwrap();
    assert_eq!(shown, "pw=***!\n");
}

#[tokio::test]
async fn local_secret_split_across_reads_is_masked() {
    check_split_secret_is_masked(&Transport::local()).await;
}

#[tokio::test]
async fn ssh_secret_split_across_reads_is_masked() {
    let sshd = Sshd::start();
    let t = connect(&sshd).await;
    check_split_secret_is_masked(&t).await;
    t.close().await;
}

// --- overhead ---

/// `cargo test --test it bench_ssh_overhead -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn bench_ssh_overhead() {
    const N: u32 = 100;
    let sshd = Sshd::start();
    let connect_started = Instant::now();
    let t = connect(&sshd).await;
    let connect_time = connect_started.elapsed();
    run(&t, &spec("true")).await;
    let started = Instant::now();
    for _ in 0..N {
        assert_eq!(run(&t, &spec("true")).await.ending, Ending::Exited(0));
    }
    let per_run = started.elapsed() / N;

    let Transport::Ssh(ssh) = &t else { unreachable!() };
    let socket = ssh.control_socket().display().to_string();
    let loop_script =
        format!("i=0; while [ $i -lt {N} ]; do ssh -S {socket} -o BatchMode=yes none true; i=$((i+1)); done");
    let started = Instant::now();
    let status = std::process::Command::new("sh")
        .args(["-c", &loop_script])
        .status()
        .unwrap();
    assert!(status.success());
    let per_ssh = started.elapsed() / N;

    let local = Transport::local();
    let started = Instant::now();
    for _ in 0..N {
        run(&local, &spec("true")).await;
    }
    let per_local = started.elapsed() / N;
    println!(
        "connect: {connect_time:?}\nTransport::run(true) over ssh, warm: {per_run:?} per command\n\
         shell loop of `ssh -S <socket> true`: {per_ssh:?} per command\n\
         Transport::run(true) locally: {per_local:?} per command"
    );
    t.close().await;
}
