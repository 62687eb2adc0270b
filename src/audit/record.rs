//! The typed trail (issue 26): one `Record` per event name, the only definition of what each
//! event holds. The writer serialises it (`AuditLog::append`), every reader deserialises it
//! (`Line::decode`). Members are declared in the order the writer has always written them:
//! with `preserve_order`, that order is the bytes, and the bytes are the hash chain.
//!
//! Reading is lenient, as the readers always were: every struct is `#[serde(default)]`, so a
//! trail written before a member existed still reads; an event name this build does not know
//! reads as `Record::Unknown`, never as an unreadable trail.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Booleans written only when true (`allow_prod`, `reconnected`, ...).
fn is_false(b: &bool) -> bool {
    !*b
}

macro_rules! records {
    ($($(#[$doc:meta])* $name:literal => $variant:ident($ty:ty),)*) => {
        /// One event of the trail, tagged by its `event` member.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "event")]
        pub enum Record {
            $($(#[$doc])* #[serde(rename = $name)] $variant($ty),)*
            /// An event this build does not know (a newer writer's): its common members still
            /// count, its own are skipped. Never written.
            #[serde(other)]
            Unknown,
        }

        impl Record {
            /// The record of that name with none of its members (all default), or `Unknown`.
            pub fn named(name: &str) -> Record {
                match name {
                    $($name => Record::$variant(Default::default()),)*
                    _ => Record::Unknown,
                }
            }

            /// The record of a line whose `event` is `name`, from its own members as they were
            /// read (`Line::decode`): each is parsed once, as the member of its struct.
            fn from_members_named<'de>(
                name: &str,
                members: Vec<(std::borrow::Cow<'de, str>, &'de serde_json::value::RawValue)>,
            ) -> serde_json::Result<Record> {
                let members = || serde::de::value::MapDeserializer::new(members.into_iter());
                match name {
                    $($name => <$ty>::deserialize(members()).map(Record::$variant),)*
                    _ => Ok(Record::Unknown),
                }
            }

            /// The same from a parsed event.
            fn from_value_named(name: &str, value: &Value) -> serde_json::Result<Record> {
                match name {
                    $($name => <$ty>::deserialize(value).map(Record::$variant),)*
                    _ => Ok(Record::Unknown),
                }
            }

            /// The `event` member.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Record::$variant(_) => $name,)*
                    Record::Unknown => "unknown",
                }
            }

            /// Every event name the writer emits.
            #[cfg(test)]
            pub const NAMES: &[&str] = &[$($name),*];
        }
    };
}

records! {
    "run started" => RunStarted(RunStarted),
    "lock taken" => LockTaken(Lock),
    "lock broken" => LockBroken(Lock),
    "lease shared" => LeaseShared(LeaseShared),
    "run resumed" => RunResumed(RunResumed),
    "target connected" => TargetConnected(TargetConnected),
    "step presented" => StepPresented(StepPresented),
    "answer" => Answer(Answer),
    "note" => Note(Note),
    "edit" => Edit(Edit),
    "step started" => StepStarted(StepStarted),
    "remote process" => RemoteProcess(RemoteProcess),
    "remote group checked" => RemoteGroupChecked(RemoteGroupChecked),
    "shell opened" => ShellOpened(ShellOpened),
    "shell closed" => ShellClosed(ShellClosed),
    "hangup" => Hangup(Hangup),
    "deviation" => Deviation(Deviation),
    "walk ended" => WalkEnded(WalkEnded),
    "step finished" => StepFinished(StepFinished),
    "approval requested" => ApprovalRequested(ApprovalRequested),
    "approval" => Approval(Approval),
    "approval refused" => ApprovalRefused(ApprovalRefused),
    "fleet step finished" => FleetFinished(FleetFinished),
    "decision" => Decision(Decision),
    "notification" => Notification(Notification),
    "escalation due" => EscalationDue(EscalationDue),
    "recovery" => Recovery(Recovery),
    "output recovered" => OutputRecovered(OutputRecovered),
    "checkpoint" => Checkpoint(Checkpoint),
    "run finished" => RunFinished(RunFinished),
    "handed off" => HandedOff(HandedOff),
    "mirror lost" => MirrorLost(MirrorLost),
    "mirror caught up" => MirrorCaughtUp(MirrorCaughtUp),
    "guard failing" => GuardFailing(Guard),
    "guard tripped" => GuardTripped(Guard),
    "guard recovered" => GuardRecovered(Guard),
    "alert resolved" => AlertResolved(AlertResolved),
}

/// The login of `run started` and `run resumed`; `login` is written as `null` when the uid
/// has no password entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Account {
    pub uid: u32,
    pub login: Option<String>,
}

/// A file the trail accounts for: a step's output (with its tail), a shell recording, a
/// cut-off output (without).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Output {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub tail: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunStarted {
    pub runbook: String,
    pub title: String,
    pub file: String,
    pub file_sha256: String,
    pub mode: String,
    pub targets: IndexMap<String, String>,
    /// Secrets masked (`***`); values other than strings come from older writers.
    pub inputs: IndexMap<String, Value>,
    pub rto_ms: u64,
    pub since_offset_ms: u64,
    /// Always written, true or false: a trail without it predates the member.
    pub unattended: Option<bool>,
    pub start_at: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub allow_prod: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub no_shell: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub accept_new_host_keys: bool,
    pub account: Option<Account>,
    pub machine: Option<String>,
    pub signing_key: Option<String>,
    pub unsigned: Option<String>,
    pub alert: Option<Value>,
}

/// `lock taken` and `lock broken`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lock {
    pub lock: String,
    pub how: String,
    pub previous: Option<crate::lock::Holder>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stopped: Vec<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseShared {
    pub lock: String,
    pub with: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunResumed {
    pub previous_operator: String,
    pub hand_off: bool,
    pub gap_ms: u64,
    pub from: String,
    pub unattended: Option<bool>,
    pub account: Option<Account>,
    pub machine: Option<String>,
    pub signing_key: Option<String>,
    pub unsigned: Option<String>,
    /// Added by the writer when the signature could not be made.
    pub signature_error: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetConnected {
    pub role: String,
    pub host_key: Option<String>,
    pub client_key: Option<String>,
    pub host_key_added: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub reconnected: bool,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepPresented {
    pub position: Option<u64>,
    pub total: Option<u64>,
    pub title: String,
    pub kind: String,
    pub target_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Answer {
    pub question: String,
    pub answer: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Note {
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Edit {
    pub before: String,
    pub after: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepStarted {
    pub command: String,
    pub attempt: Option<u64>,
    pub target_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    /// Named before it exists: a crash in between leaves a trail that still accounts for it.
    pub output_file: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub declassify: bool,
    pub fleet: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoteProcess {
    pub attempt: u64,
    /// Always written; `None` only in a damaged line, where no group may be signalled.
    pub pgid: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoteGroupChecked {
    pub pgid: i64,
    pub alive: bool,
    pub stopped: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShellOpened {
    pub shell: u64,
    pub from: String,
    pub cols: u64,
    pub rows: u64,
    pub output_file: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShellClosed {
    pub shell: u64,
    pub duration_ms: Option<u64>,
    pub cols: u64,
    pub rows: u64,
    pub resizes: u64,
    pub exit: Option<i64>,
    pub reason: Option<String>,
    pub output: Option<Output>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hangup {
    pub reason: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Deviation {
    pub kind: String,
    pub allowed: bool,
    pub detail: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WalkEnded {
    pub outcome: String,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capture {
    pub name: String,
    pub value: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepFinished {
    pub outcome: Option<String>,
    pub exit: Option<i64>,
    pub attempt: Option<u64>,
    pub duration_ms: Option<u64>,
    pub target_ms: Option<u64>,
    pub over_target: Option<bool>,
    pub reason: Option<String>,
    pub capture: Option<Capture>,
    pub output: Option<Output>,
    pub fleet: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApprovalRequested {
    pub request: String,
    pub request_sha256: String,
    pub quorum: Option<u64>,
    pub timeout_ms: Option<u64>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Approval {
    pub principal: Option<String>,
    pub key: Option<String>,
    /// `approve` or `deny`.
    pub decision: String,
    pub reason: Option<String>,
    pub file: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApprovalRefused {
    pub file: String,
    pub why: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FailedHost {
    pub host: String,
    pub outcome: String,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetFinished {
    pub outcome: String,
    pub attempt: u64,
    pub duration_ms: u64,
    pub target_ms: Option<u64>,
    pub hosts_ok: Vec<String>,
    pub hosts_failed: Vec<FailedHost>,
    pub hosts_not_started: Vec<String>,
    pub host_ms: IndexMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Decision {
    pub label: String,
    pub goto: String,
}

/// One try of a delivery.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Try {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub ms: u64,
}

/// A delivery to a channel that is over (delivered, failed, dropped, abandoned).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Notification {
    /// The CloudEvents type.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub subject: Option<String>,
    pub channel: String,
    pub format: String,
    pub dedup_key: Option<String>,
    pub event_action: Option<String>,
    pub outcome: String,
    pub attempts: u64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub reason: Option<String>,
    pub tries: Vec<Try>,
    pub took_ms: u64,
    pub at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EscalationDue {
    pub after_ms: u64,
    pub to: String,
    pub elapsed_ms: u64,
    pub at: String,
}

/// A torn last line set aside at a resume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Recovery {
    pub torn_line: u64,
    pub bytes: u64,
    pub sha256: String,
    pub saved_to: String,
}

/// The output of an attempt a crash cut off, digested at the resume.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutputRecovered {
    pub attempt: Option<u64>,
    pub output: Output,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Checkpoint {
    pub events: u64,
    pub signature_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OverTarget {
    pub step: String,
    pub duration_ms: u64,
    pub target_ms: u64,
}

/// A deviation as the seal lists it (`detail` written as `null` when there is none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SealDeviation {
    pub step: String,
    pub kind: String,
    pub allowed: bool,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Verdict {
    pub pass: bool,
    pub reason: String,
}

/// The seal. `events` and `head` are the writer's to fill in (`AuditLog::seal`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunFinished {
    pub outcome: Option<String>,
    pub message: Option<String>,
    pub duration_ms: Option<u64>,
    pub rto_ms: Option<u64>,
    pub within_rto: Option<bool>,
    pub verdict: Option<Verdict>,
    pub over_target: Vec<OverTarget>,
    pub deviations: Vec<SealDeviation>,
    pub events: u64,
    pub head: String,
    pub signature_error: Option<String>,
}

/// The operator handed the run off (design §19); `step` and `operator` are common members.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HandedOff {
    /// The operator's note for whoever takes over, masked; absent when none was given.
    pub note: Option<String>,
}

/// The audit host stopped taking the trail (design §19).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MirrorLost {
    pub audit_host: String,
    pub reason: String,
}

/// The audit host is back and holds the trail again, byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MirrorCaughtUp {
    pub audit_host: String,
    pub bytes: u64,
    pub files: u64,
}

/// A guard's change of state (design §20): `guard failing`, `guard tripped`, `guard recovered`;
/// where its check runs is the common `host`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Guard {
    pub guard: String,
    pub failures: u32,
    pub reason: Option<String>,
    pub goto: String,
}

/// The alert of an unattended run resolved: the walk stopped at a step boundary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertResolved {
    pub fingerprint: String,
}

mod line;
pub use line::Line;
pub(crate) use line::members;
pub(crate) use line::{Common, read};

#[cfg(test)]
mod tests;
