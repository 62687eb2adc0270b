//! What happens during a run, as events. The executor emits them and prints nothing; the
//! terminal UI and the audit writer are the listeners (`sink.rs`).

use std::time::Duration;

use indexmap::IndexMap;

use crate::book::runbook::Outcome;

/// Incident or rehearsal; recorded, and a drill also gets a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Incident,
    Drill,
}

impl Mode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Incident => "incident",
            Mode::Drill => "drill",
        }
    }
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepOutcome {
    /// `expect` held (or the operator reported success of a manual or by-hand step).
    Ok,
    Failed,
    /// Killed at its `timeout`.
    TimedOut,
    /// Stopped by Ctrl-C.
    Cancelled,
    /// The connection died while it ran: it may or may not have happened.
    Lost,
    Skipped,
    /// Marked done by the operator after a failure.
    MarkedDone,
}

impl StepOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Ok => "ok",
            StepOutcome::Failed => "failed",
            StepOutcome::TimedOut => "timeout",
            StepOutcome::Cancelled => "cancelled",
            StepOutcome::Lost => "lost",
            StepOutcome::Skipped => "skipped",
            StepOutcome::MarkedDone => "marked done",
        }
    }

    pub(crate) fn succeeded(self) -> bool {
        matches!(
            self,
            StepOutcome::Ok | StepOutcome::Skipped | StepOutcome::MarkedDone
        )
    }
}

/// How the whole run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Ended(Outcome),
    /// The operator chose to abort.
    Aborted,
    /// Stopped by a signal (Ctrl-C unattended, or twice).
    Interrupted,
    /// A connection died mid-step and nobody was there to decide (unattended).
    Lost,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Ended(o) => o.as_str(),
            RunOutcome::Aborted => "aborted",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::Lost => "lost",
        }
    }
}

/// Which stream a piece of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// Where a step's full output went, and its end.
#[derive(Debug, Clone)]
pub(crate) struct OutputRecord {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub tail: String,
}

#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// A line for the operator about what the tool is doing (reconnecting, why no option is
    /// preselected, a script to paste): shown, never recorded.
    Notice(String),
    RunStarted {
        runbook: String,
        title: String,
        file: String,
        file_sha256: String,
        mode: Mode,
        /// role → host label
        targets: IndexMap<String, String>,
        /// name → value, secrets masked
        inputs: IndexMap<String, String>,
        rto: Duration,
        /// How long before the launch the RTO clock started (`--since`).
        since_offset: Duration,
        allow_prod: bool,
        accept_new_host_keys: bool,
        start_at: Option<String>,
        /// `--no-shell`: no shell is offered at the step prompts, also after a resume.
        no_shell: bool,
        /// Who runs it, as the machine says (design §12).
        who: Who,
        /// The alert it was started from (`--alert`): its source and identity.
        alert: Option<serde_json::Value>,
        /// `--yes`: nobody is asked; every answer is given in advance or automatic.
        unattended: bool,
    },
    /// The run lock was taken (design §6); `previous` held it when it was stale or broken.
    LockTaken {
        path: String,
        how: &'static str,
        previous: Option<crate::lock::Holder>,
        /// A host lease: the process groups the dead previous holder left running there,
        /// stopped before the take.
        stopped: Vec<i32>,
    },
    /// Host `host` is the same machine and account as `with`, whose lease the run holds
    /// there already: the two names share it.
    LeaseShared {
        path: String,
        host: String,
        with: String,
    },
    /// A run continued from its audit trail, possibly by another operator.
    RunResumed {
        operator: String,
        previous_operator: String,
        /// Who resumes it, as the machine says: a hand-off may come from another account.
        who: Who,
        /// Wall-clock time between the last event before the crash and now.
        gap: Duration,
        /// Where the walk goes on, in words (for the trail: times as recorded, RFC 3339).
        from: String,
        /// The same as the operator reads it: times in local `HH:MM`.
        shown: String,
        /// Resumed with `--yes`: nobody is asked from here on.
        unattended: bool,
    },
    /// What the operator reads before the first step (shown, never recorded: it comes from
    /// the runbook and inventory, whose hash and bindings the trail has): where each target
    /// really goes, its `env`, the runbook's description and links, and the clock.
    Briefing(Briefing),
    TargetConnected {
        role: String,
        host: String,
        /// ssh's words when `--accept-new-host-keys` trusted this host's key for the first time.
        host_key_added: Option<String>,
        /// The host key accepted: type and fingerprint (`ssh-ed25519 SHA256:...`).
        host_key: Option<String>,
        /// The fingerprint of the client key, when the tool knows it (`--identity`).
        client_key: Option<String>,
        /// A reconnection after a lost connection, not the first connection.
        reconnected: bool,
    },
    StepPresented(StepPresented),
    Answer {
        step: Option<String>,
        question: String,
        answer: String,
    },
    Note {
        step: Option<String>,
        text: String,
    },
    Edit {
        step: String,
        before: String,
        after: String,
    },
    StepStarted {
        step: String,
        host: String,
        command: String,
        attempt: u32,
        target: Option<Duration>,
        timeout: Option<Duration>,
        /// A command the tool runs and times. Not for manual steps, commands run by hand (the
        /// operator is at a prompt) or calls (their own steps have spinners).
        spinner: bool,
        /// The names of the secrets this command receives (least privilege: only those).
        secrets: Vec<String>,
        /// The step declares its output free of secrets (`declassify: true`).
        declassify: bool,
        /// One host of a fleet (design §13): the fleet's label; its output file names the host.
        fleet: Option<String>,
    },
    Output {
        stream: Stream,
        bytes: Vec<u8>,
        /// A fleet host's output is shown line by line, prefixed with its name.
        host: Option<String>,
    },
    /// A command still running, every `HEARTBEAT` (shown in plain mode, never recorded): a log
    /// without a spinner would otherwise say nothing for the whole of a long step.
    Heartbeat {
        step: String,
        elapsed: Duration,
        target: Option<Duration>,
    },
    StepFinished(StepFinished),
    FleetFinished(FleetFinished),
    /// A step waits for approvals (design §15): its request is in the spool.
    ApprovalRequested {
        step: String,
        request: String,
        /// SHA-256 of the request's bytes: what every approval signs.
        request_sha256: String,
        quorum: u32,
        timeout: Duration,
    },
    Approval(Answer),
    /// A signature beside the request that does not count (the operator's own key, a key not
    /// in the approvers file, a bad signature): recorded, so a forged try is seen.
    ApprovalRefused {
        step: String,
        file: String,
        why: String,
    },
    /// An attempt failed and the step's `retry` runs it again after `delay` (shown only: both
    /// attempts are recorded by their own start and finish).
    Retrying {
        step: String,
        /// The attempt coming next, of how many.
        next: u32,
        of: u32,
        delay: Duration,
    },
    Decision {
        step: String,
        label: String,
        goto: String,
    },
    /// A step did not go as written (design §12); the drill verdict counts these.
    Deviation(Deviation),
    /// The process group a remote command runs in, once known: after a lost connection or a
    /// crash, it is what can still be stopped on the host.
    RemoteProcess {
        step: String,
        host: String,
        attempt: u32,
        pgid: i32,
    },
    RemoteGroupChecked(RemoteGroupChecked),
    /// The operator opened a shell on a step's host (design §17); recorded, fsynced, before
    /// the session starts. `recording` is the file it goes to, relative to the audit dir.
    ShellOpened {
        step: String,
        host: String,
        /// The session's number in the run (`shell-<n>.cast`).
        number: u32,
        /// `before running` or `after failure`: the prompt it was opened from.
        from: &'static str,
        cols: u16,
        rows: u16,
        recording: String,
        /// The full path, for the operator.
        shown_path: String,
    },
    /// The shell ended; its recording is closed and accounted for by size and SHA-256.
    ShellClosed {
        step: String,
        host: String,
        number: u32,
        duration: Duration,
        /// The window size at the end, and how many times it changed.
        cols: u16,
        rows: u16,
        resizes: u32,
        /// The shell's exit code; `None` when it was killed or could not start.
        exit: Option<i32>,
        /// Why it ended, when not by the operator leaving it.
        reason: Option<String>,
        recording: Option<OutputRecord>,
        shown_path: String,
    },
    /// The terminal went away (SIGHUP): the command was stopped, the trail stays open.
    Hangup {
        reason: String,
    },
    /// The walk reached its end (before cleanup): what resume needs to finish a crashed cleanup.
    WalkEnded {
        outcome: RunOutcome,
        message: Option<String>,
    },
    RunFinished(RunFinished),
    /// The operator handed the run off at a step's prompt (design §19): nothing runs, the
    /// trail stays open for a colleague's `runbook resume`. `note` is masked; `None` when empty.
    HandedOff {
        step: Option<String>,
        note: Option<String>,
    },
    /// The audit host stopped taking the trail (design §19): the run goes on; the mirror
    /// retries in the background.
    MirrorLost {
        /// `ssh://USER@HOST[:PORT]/PATH`
        audit_host: String,
        reason: String,
    },
    Guard(GuardChanged),
    /// The alert that started this unattended run resolved (`runbook resolved`): the walk
    /// stopped at this step boundary, before `before`.
    AlertResolved {
        fingerprint: String,
        before: Option<String>,
    },
    /// The audit host is back and has everything it missed.
    MirrorCaughtUp {
        audit_host: String,
        /// Trail bytes and output files sent to catch up.
        bytes: u64,
        files: u64,
    },
}

/// A fleet step's attempt is over on every host it was started on (design §13).
#[derive(Debug, Clone)]
pub(crate) struct FleetFinished {
    pub step: String,
    /// The fleet's label (a group, or `a,b,c`).
    pub fleet: String,
    pub outcome: StepOutcome,
    pub attempt: u32,
    pub duration: Duration,
    pub target: Option<Duration>,
    pub ok: Vec<String>,
    /// Each failed host with how it ended.
    pub failed: Vec<(String, StepOutcome)>,
    /// Never started: the failure budget was spent, or the run was stopped.
    pub not_started: Vec<String>,
    /// Each host's time, in the fleet's order.
    pub times: Vec<(String, Duration)>,
    /// As `StepFinished`'s: the step's time so far, as its review counts it.
    pub visit: Option<Duration>,
}

/// The run is over: its seal.
#[derive(Debug, Clone)]
pub(crate) struct RunFinished {
    pub outcome: RunOutcome,
    pub message: Option<String>,
    /// From the start of the RTO clock.
    pub elapsed: Duration,
    pub rto: Duration,
    /// Drills: PASS or FAIL with the reason.
    pub verdict: Option<Verdict>,
    /// The visits over their target, worst first: (step, took, target), counted as the
    /// review counts them. Filled in by the sink from the trail.
    pub over_target: Vec<(String, Duration, Duration)>,
    /// Every step that did not go as written, in order.
    pub deviations: Vec<Deviation>,
}

/// A step shown to the operator, before it runs.
#[derive(Debug, Clone)]
pub(crate) struct StepPresented {
    pub step: String,
    pub position: usize,
    pub total: usize,
    pub title: String,
    pub kind: &'static str,
    pub host: String,
    pub notes: Option<String>,
    pub links: Vec<(String, String)>,
    /// The command (run steps) or instruction (manual steps), as it will run.
    pub body: Option<String>,
    /// Variables the command sees: a copy that costs nothing (`Vars` is persistent), shown
    /// masked (`Vars::masked`) by whoever shows it.
    pub vars: crate::vars::Vars,
    pub target: Option<Duration>,
    /// The step's hard limit and retry policy, shown before it runs.
    pub timeout: Option<Duration>,
    pub retry: Option<(u32, Duration)>,
    /// The two-person rule when the step needs it: its quorum and how long it waits (said
    /// before it runs, so a colleague can be paged ahead of time).
    pub approve: Option<(u32, Duration)>,
}

/// After a lost connection (or at a resume): whether the step's remote process group was
/// still alive on the host, and whether it was stopped.
#[derive(Debug, Clone)]
pub(crate) struct RemoteGroupChecked {
    pub step: String,
    pub host: String,
    pub pgid: i32,
    pub alive: bool,
    pub stopped: bool,
}

/// An approver's answer, its signature checked against the approvers file.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub step: String,
    pub principal: String,
    pub key: String,
    pub approve: bool,
    pub reason: Option<String>,
    pub file: String,
}

/// A guard changed state (design §20): only changes are recorded, never each poll.
#[derive(Debug, Clone)]
pub(crate) struct GuardChanged {
    pub guard: String,
    pub change: GuardChange,
    /// Where its check runs (a host label, or `local`).
    pub host: String,
    /// Failures in a row so far (0 when recovered).
    pub failures: u32,
    /// Why its last check failed: its exit code, a timeout, a lost connection.
    pub reason: Option<String>,
    /// The step a trip diverts to.
    pub goto: String,
}

/// One attempt of a step is over on one host.
#[derive(Debug, Clone)]
pub(crate) struct StepFinished {
    pub step: String,
    pub host: String,
    pub outcome: StepOutcome,
    pub exit: Option<i32>,
    pub attempt: u32,
    pub duration: Duration,
    pub target: Option<Duration>,
    pub reason: Option<String>,
    pub output: Option<OutputRecord>,
    /// A variable set from stdout: name and value (`***` when secret).
    pub capture: Option<(String, String)>,
    /// One host of a fleet: the fleet's label.
    pub fleet: Option<String>,
    /// The step's time so far, counted as its review counts it (from being presented, the
    /// operator's time included): filled in by the sink from the trail, `None` before.
    pub visit: Option<Duration>,
}

/// What changed about a guard: its record's event name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GuardChange {
    /// Its check failed after passing (or at the first poll).
    Failing,
    /// It failed `failures` times in a row: the run diverts to `goto`.
    Tripped,
    /// It passes again.
    Recovered,
}

#[derive(Debug, Clone)]
pub(crate) struct Briefing {
    pub title: String,
    pub runbook: String,
    pub mode: Mode,
    pub rto: Duration,
    /// RTO already spent when this process starts (`--since`, or a resumed run's time so far).
    pub spent: Duration,
    pub description: Option<String>,
    pub links: Vec<(String, String)>,
    pub destinations: Vec<Destination>,
    /// The main runbook's step ids in order, for their `[3/9]`.
    pub steps: Vec<String>,
    /// The trail being written.
    pub audit_file: String,
    /// The runbook's escalation deadline: after, whom to call.
    pub escalate: Option<(Duration, String)>,
}

/// Where a role acts.
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    pub role: String,
    /// The host as named (inventory name, alias, or `local`).
    pub label: String,
    /// `user@host:port` as `ssh -G` resolves it, or `this machine`.
    pub address: String,
    /// The inventory's `env` (`prod`, `staging`, ...).
    pub env: Option<String>,
    /// A fleet's hosts, in order (empty for one host).
    pub members: Vec<String>,
    /// Each member's `user@host:port` as its connection resolved it, in `members`' order.
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub pass: bool,
    pub reason: String,
}

/// Who is at the keyboard, as the machine says, and whether the trail is signed.
#[derive(Debug, Clone)]
pub(crate) struct Who {
    pub account: crate::identity::Account,
    pub machine: String,
    /// `SHA256:...` of the key signing the trail, and where it came from.
    pub signed_by: Option<(String, String)>,
    /// Why the trail is unsigned, when it is.
    pub unsigned: Option<String>,
}

/// A step that did not go as the runbook says (design §12 "Drill verdicts count what really ran").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deviation {
    pub step: String,
    pub kind: DeviationKind,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviationKind {
    /// Not run at all (skipped before it ran, a manual step reported skipped, not confirmed).
    Skipped,
    /// It failed, then the operator marked it done.
    MarkedDone,
    /// It failed, and the walk went on past it (skip, or a jump elsewhere) instead of
    /// following the runbook.
    PassedOver,
    /// A cleanup step that did not succeed.
    CleanupFailed,
    /// Run in the operator's own shell, outcome as reported (allowed, listed).
    ByHand,
    /// Run with an edited command (allowed, listed).
    Edited,
    /// The operator ended the run as resolved after it, with nothing verifying that.
    Unverified,
}

impl DeviationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviationKind::Skipped => "skipped",
            DeviationKind::MarkedDone => "marked done after a failure",
            DeviationKind::PassedOver => "failed and passed over",
            DeviationKind::CleanupFailed => "cleanup failed",
            DeviationKind::ByHand => "run by hand",
            DeviationKind::Edited => "edited",
            DeviationKind::Unverified => "resolved without verifying",
        }
    }

    pub fn parse(text: &str) -> Option<DeviationKind> {
        [
            DeviationKind::Skipped,
            DeviationKind::MarkedDone,
            DeviationKind::PassedOver,
            DeviationKind::CleanupFailed,
            DeviationKind::ByHand,
            DeviationKind::Edited,
            DeviationKind::Unverified,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }

    /// Whether a drill may still PASS with it (listed either way).
    pub fn allowed(self) -> bool {
        matches!(self, DeviationKind::ByHand | DeviationKind::Edited)
    }
}
