//! What the user typed: the command line, declared with clap. Checking and resolving it is the
//! job of each command's module under `cmd/`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::ArgValueCompleter;

mod pair;
pub(crate) mod since;
mod unattended;
mod values;

pub(crate) use pair::Pair;
pub(crate) use unattended::{PauseArgs, PauseOptions, ResolvedArgs, UnpauseArgs};
pub(crate) mod config;

#[derive(Debug, Parser)]
#[command(
    name = "runbook",
    version,
    about = "Walk incident runbooks, locally or over SSH, timed against their RTO, with a tamper-evident audit trail.",
    after_help = "Examples:\n  runbook list\n  runbook validate runbooks/\n  runbook run service-down --target app=deploy@api-1\n  runbook drill rollback-drill --yes\n  runbook audit verify 20261122T030211Z-service-down"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands.
#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    /// Catalog directory to find runbooks by id (repeatable) [default: $RUNBOOK_PATH, else ./runbooks]
    #[arg(long = "dir", global = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where audit files are written and read [default: $RUNBOOK_AUDIT_DIR, else $XDG_STATE_HOME/runbook/runs]
    #[arg(long, global = true, value_name = "DIR")]
    pub audit_dir: Option<PathBuf>,
    /// The team's audit host, ssh://USER@HOST[:PORT]/PATH: runs are mirrored there as they go, and history, review, drills, evidence, replay and audit verify read its runs with the audit dir's [default for run, drill and resume: the inventory's audit_host]
    #[arg(long, global = true, value_name = "URL", env = "RUNBOOK_AUDIT_HOST", value_parser = audit_host)]
    pub audit_host: Option<crate::transport::AuditHost>,
}

/// `--audit-host URL`: checked here, so that a wrong URL stops the command before anything.
fn audit_host(url: &str) -> Result<crate::transport::AuditHost, String> {
    crate::transport::AuditHost::parse(url)
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check runbook files and report every problem with its file:line:col
    #[command(
        after_help = "Examples:\n  runbook validate runbooks/\n  runbook validate db-restore.yaml --deny-warnings\n  runbook validate runbooks/ --json | jq '.[] | select(.severity == \"error\")'\n  runbook validate runbooks/ --format sarif > runbook.sarif\n\nExit status: 0 when valid (warnings allowed unless --deny-warnings), 2 when any error."
    )]
    Validate(ValidateArgs),
    /// Run test cases (*.test.yaml): the real engine walks each runbook with stubbed step results
    #[command(
        after_help = "Examples:\n  runbook test                                  # the catalog's cases (runbooks/*.test.yaml, runbooks/tests/)\n  runbook test runbooks/ --coverage             # and the steps and options no case reaches\n  runbook test runbooks/tests/service-down.test.yaml\n  runbook test --format junit > test-results.xml\n\nA case names a runbook, its inputs, stubbed results by step id (`exit`, `stdout`, `stderr`, `took`; a list is one per attempt; manual steps `done|skip|failed`; `CALL-STEP/STEP` for a called runbook's steps), answers (as --answer) and what to expect (`path` or `visits`/`not_visits`, `outcome`, `within_rto`). Nothing runs, nothing connects, no trail is written; `took` is virtual time (default 1s), never slept. A failing case names its first divergence and why. docs/testing.md has the format.\n\nExit status: 0 every case passed, 1 a case failed, 2 a case file is invalid (each problem at file:line:col; nothing was run) or no case was found."
    )]
    Test(TestArgs),
    /// List the runbooks of the catalog
    #[command(
        after_help = "Examples:\n  runbook list\n  runbook list --dir ./runbooks --json\n  RUNBOOK_PATH=/srv/runbooks:./runbooks runbook list"
    )]
    List(ListArgs),
    /// Show a runbook as a readable document or a Mermaid flowchart
    #[command(
        after_help = "Examples:\n  runbook show db-restore\n  runbook show runbooks/rollback.yaml --format md > rollback.md\n  runbook show service-down --format mermaid"
    )]
    Show(ShowArgs),
    /// Turn a Markdown runbook into runbook files: one per `##` scenario, every guess marked `# review:`
    #[command(
        after_help = "Examples:\n  runbook import RUNBOOK.md -o runbooks/imported\n  runbook import docs/oncall.md -o runbooks --force   # overwrite files imported before\n  runbook validate runbooks/imported && grep -rn '# review:' runbooks/imported\n\nOne runbook per `##` heading with steps: numbered items, checklist items, `###` step headings or shell code blocks (`$ ` prompts dropped). A command becomes `run:`, prose `manual:`, \"If ...:\" a `choose` whose first option (\"No, go on\") is the fallback, \"see Scenario N\" a `call:`; the RTO, `escalate:` and an `ssh HOST` step's target come from the text. Each step's notes quote its source line; destructive steps get `confirm: true`. Files are written as ID.yaml into DIR and never over an existing file without --force. See docs/import.md.\n\nExit status: 0 written, 2 nothing importable (why is said), an existing file without --force, or the file cannot be read."
    )]
    Import(ImportArgs),
    /// Print the JSON Schema (draft-07) of runbook files, for editors
    #[command(
        after_help = "Examples:\n  runbook schema > runbook.schema.json\n  # then, first line of a runbook:\n  # yaml-language-server: $schema=./runbook.schema.json"
    )]
    Schema,
    /// Print shell completions: commands and options, and the runbook ids, run ids and step ids of your files
    #[command(
        after_help = "Examples:\n  source <(runbook completions bash)        # in ~/.bashrc\n  runbook completions bash > /etc/bash_completion.d/runbook\n  runbook completions zsh > \"${fpath[1]}/_runbook\"\n  runbook completions fish > ~/.config/fish/completions/runbook.fish\n\nThe script asks `runbook` (from PATH) at each Tab: regenerate it when you upgrade."
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff), as shipped in docs/runbook.1
    #[command(hide = true)]
    Man,
    /// Run a runbook during an incident
    #[command(
        after_help = "Examples:\n  runbook run service-down --target app=deploy@api-1 --since 07:02\n  runbook run db-restore --target app=api-1 --target db=db-1 --set db_name=app --dry-run\n  runbook run service-down --target app=staging-api --answer crashed=restart   # answered ahead\n\nExit status: 0 resolved (or handed off: `runbook resume` goes on), 2 nothing was executed (validation or pre-flight), 3 escalated, failed or aborted, 1 runtime error, 130 interrupted."
    )]
    Run(RunArgs),
    /// Rehearse a runbook and score it against its RTO: PASS or FAIL
    #[command(
        after_help = "Examples:\n  runbook drill rollback-drill --target app=staging-app\n  runbook drill restore-drill --target db=staging-db --yes --answer create-staging=app_restore_drill\n\nExit status: 0 PASS, 4 resolved but over the RTO, 3 escalated, failed or aborted, 2 nothing was executed."
    )]
    Drill(DrillArgs),
    /// Continue an interrupted or handed-off run from its audit trail, possibly as another operator
    #[command(
        after_help = "Examples:\n  runbook resume 20261122T030211Z-db-restore-3f9a\n  runbook resume 20261122T030211Z --operator bob            # a hand-off\n  runbook resume 20261122T030211Z --yes --set pg_password=...  # unattended; secrets again\n  runbook resume 20261122T030211Z --audit-host ssh://alice@logs/srv/runbook/runs  # from another machine\n\nWith an audit host, a run this machine lacks (or has only the start of) is fetched from there and verified as `audit verify` does before anything is kept.\n\nExit status: as `run` (or `drill`, for a drill); 1 when the trail is tampered, does not match --signers or --expect-head, or differs from the audit host's copy."
    )]
    Resume(ResumeArgs),
    /// Check and inspect audit trails
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Review runs from their audit files: where the time went, against targets and the RTO
    #[command(
        after_help = "Examples:\n  runbook review 20261122T030211Z-db-restore\n  runbook review 20261122T0302 --format md > postmortem-timeline.md\n  runbook review runs/20261122T030211Z-db-restore-3f9a.jsonl --format html -o review.html\n  runbook review $(runbook history --runbook rollback --mode drill --json | jq -r '.[:5][].run')\n  runbook review 20261122T0302 --audit-host ssh://alice@logs/srv/runbook/runs   # a run of the team's record\n\nWith --audit-host (or RUNBOOK_AUDIT_HOST), RUN is looked up in the audit dir and on the audit host (one SSH connection); a run in both places whose copies differ is tampered, both named.\n\nExit status: 0 reviewed, 1 an audit file is tampered with (reviewed up to the break, flagged at the top), or its two copies differ, or the audit host cannot be read, 2 unknown run."
    )]
    Review(ReviewArgs),
    /// Play back a shell session recorded during a run, in the terminal, with its timing
    #[command(
        after_help = "Examples:\n  runbook replay 20261122T030211Z-db-restore-3f9a      # its first shell session\n  runbook replay last 2 --speed 4                       # the second, four times as fast\n  runbook replay 20261122T0302 --audit-host ssh://alice@logs/srv/runbook/runs   # a run of the team's record\n\nClipboard (OSC 52), window-title and terminal-query sequences are never replayed. With --audit-host (or RUNBOOK_AUDIT_HOST), RUN and its recordings are also read from the audit host.\nExit status: 0 played, 1 the audit host cannot be read, 2 no such run or recording."
    )]
    Replay(ReplayArgs),
    /// Follow a run as it goes, from another terminal: each step, decision and note as the trail records it, until the seal
    #[command(
        after_help = "Examples:\n  runbook watch last                                   # the newest run of the audit dir\n  runbook watch 20261122T030211Z-db-restore-3f9a\n  runbook watch 20261122T0302 --audit-dir /srv/runbook/runs\n  runbook watch last --audit-host ssh://audit@logs.example/srv/runbook   # from another machine\n\nRead-only: no lock is taken and nothing is written (here or on the audit host), so any number of people can watch one run, with read access to its trail alone. With --audit-host (or RUNBOOK_AUDIT_HOST) RUN is looked up there and followed over SSH; a path is always a local file. Each line is checked against the hash chain as it comes; `no event for N s` is said after 30 s of quiet, then every minute.\n\nExit status: 0 the run is sealed (at once for a finished run), 130 Ctrl-C (the run goes on), 1 the trail is tampered with, shrank or was replaced, or the audit host cannot be reached or was lost, 2 unknown run."
    )]
    Watch(WatchArgs),
    /// Name the runbooks of the catalog an alert is for (`alert.match`, or its runbook_url annotation)
    #[command(
        after_help = "Examples:\n  runbook match --alert alert.json\n  curl -s http://alertmanager:9093/... | runbook match --alert -\n  runbook run \"$(runbook match --alert alert.json | head -1 | cut -f1)\" --alert alert.json\n\nExit status: 0 when a runbook matches, 1 when none, 2 the payload cannot be read."
    )]
    Match(MatchArgs),
    /// List past runs from the audit dir (and the team's audit host with --audit-host), newest first
    #[command(
        after_help = "Examples:\n  runbook history\n  runbook history --runbook rollback --mode drill --since 2026-11-01\n  runbook history --json | jq '.[] | select(.verdict == \"FAIL\")'\n  runbook history --audit-host ssh://alice@logs/srv/runbook/runs   # the team's runs\n\nWith --audit-host (or RUNBOOK_AUDIT_HOST): the runs of the audit dir and of the audit host, one row per run id, read over one SSH connection (`stored` in --json: local, audit host or both). A run in both places whose copies differ is TAMPERED, both named; a copy that is the start of the other (a mirror behind) is the same run.\n\nExit status: 0 listed, 1 the audit host cannot be read."
    )]
    History(HistoryArgs),
    /// Approve (or deny) a step waiting for a second person: signs its request (two-person rule)
    #[command(
        after_help = "Examples:\n  runbook approve                       # the requests that wait: run, step, hosts, operator, age\n  runbook approve 20261122T030211Z-db-restore-3f9a-drop-db-1.json\n  runbook approve /srv/runbook/approvals/RUN-STEP-1.json --deny --reason 'not during the freeze'\n  runbook approve --audit-host ssh://runbook@logs/srv/runs     # what waits on the audit host\n  runbook approve ssh://runbook@logs/srv/runs/approvals/RUN-STEP-1.json\n\nWith an audit host (--audit-host, RUNBOOK_AUDIT_HOST, or the inventory's audit_host), the spool is PATH/approvals/ there, reached over SSH with the options below; a REQUEST with a `/` that is not an ssh:// URL is a local file.\n\nIt shows the request (what will run, where, with which variables), asks `Approve? [y/N]` (`Deny?` with --deny; --yes does not ask), then writes REQUEST.sig (SSHSIG, namespace runbook-approve) with your key: --signing-key, RUNBOOK_SIGNING_KEY, else your ssh-agent's first key. The waiting run checks it against its approvers_file.\n\nExit status: 0 listed or written, 2 bad request, a request nobody waits for any more, your own run's request, not signed (answered no, or no terminal to ask on without --yes), or no key to sign with, 1 the audit host cannot be read or written."
    )]
    Approve(ApproveArgs),
    /// The drills of the catalog: last PASS, runs since, trend; OVERDUE without a PASS within `drill.every`
    #[command(
        after_help = "Examples:\n  runbook drills\n  runbook drills --signers ~/.config/runbook/allowed_signers   # only PASSes signed by a listed key count\n  runbook drills --json | jq -r '.[] | select(.overdue) | .runbook'\n  runbook drills --audit-host ssh://ci@logs/srv/runbook/runs   # the drills of the whole team\n\nA PASS counts when its trail is sealed and holds (chain, output files, signatures: as `runbook audit verify`). With --audit-host (or RUNBOOK_AUDIT_HOST), the drills run on every machine of the team count: the runs of the audit host are read with the audit dir's, one per run id; one whose two copies differ does not count.\n\nExit status: 0 every drill passed within its cadence, 5 a drill is overdue (a CI launch gate fails on it), 1 the audit host cannot be read, 2 no runbook of the catalog declares `drill:`, or bad arguments."
    )]
    Drills(DrillsArgs),
    /// Write one self-contained HTML page of a run, to attach to a launch gate or hand to an auditor
    #[command(
        after_help = "Examples:\n  runbook evidence last -o evidence.html\n  runbook evidence 20261122T030211Z-rollback-drill -o gate-rollback.html --signers allowed_signers\n  runbook evidence RUN -o e.html --runbook <(git show v1.4:runbooks/rollback-drill.yaml)   # the runbook file changed since\n  runbook evidence RUN -o e.html --audit-host ssh://alice@logs/srv/runbook/runs   # a run of the team's record\n\nWith --audit-host (or RUNBOOK_AUDIT_HOST), RUN is also looked up on the audit host, its output files read there.\nThe page holds the verdict, the signed head, the seal's signature and the ssh-keygen commands that check it, the timeline, every deviation and decision, the trail itself and the runbook file as it was run (its SHA-256 equal to the trail's).\n\nExit status: 0 written, 1 the trail is tampered or not signed by --signers, or its two copies differ (the page is still written, and says so at the top), or the audit host cannot be read, 2 unknown run, or the runbook file as run cannot be found."
    )]
    Evidence(EvidenceArgs),
    /// Refuse every unattended run (`run --unattended`) until `runbook unpause`, or for a time
    #[command(
        after_help = "Examples:\n  runbook pause --for 2h --reason 'database migration tonight'\n  runbook pause                         # until `runbook unpause`\n  runbook pause --audit-host ssh://runbook@logs/srv/runbook/runs   # every machine of the team\n\nWrites pause.json in the audit dir, or on the audit host when there is one (--audit-host, RUNBOOK_AUDIT_HOST, or the inventory's audit_host): a pause there holds every machine that uses it. While it holds, every `runbook run --unattended` is refused (exit 2), recorded in refusals.jsonl and notified (runbook.run.refused); interactive runs are never refused.\n\nExit status: 0 paused, 1 the audit host cannot be reached or written, 2 bad arguments."
    )]
    Pause(PauseArgs),
    /// Let unattended runs start again (removes the pause of `runbook pause`)
    #[command(
        after_help = "Examples:\n  runbook unpause\n\nRemoves the pause of the audit host (when there is one) and of the audit dir.\n\nExit status: 0 (also when nothing was paused), 1 the audit host cannot be reached or written."
    )]
    Unpause(UnpauseArgs),
    /// An alert resolved: the unattended run for it stops at its next step boundary (with `stop_when_resolved: true` in the policy)
    #[command(
        after_help = "Examples:\n  runbook resolved --alert resolved.json     # from the webhook hook of resolved alerts\n\nMarks each resolved alert's fingerprint in <audit-dir>/resolved/. A run started with --unattended for that fingerprint, under a policy with `stop_when_resolved: true`, checks at every step boundary: it records `alert resolved`, and goes to its cleanup ending resolved.\n\nExit status: 0 marked, 2 the payload cannot be read or holds no resolved alert."
    )]
    Resolved(ResolvedArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The Markdown runbook to import
    #[arg(value_name = "FILE.md")]
    pub file: PathBuf,
    /// The directory to write the runbooks into (created if missing)
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub output: PathBuf,
    /// Overwrite runbook files that are already there (without it, nothing is written when one is)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ApproveArgs {
    /// The request to sign: the file the waiting run wrote into the approvals spool, its name
    /// there, or its ssh://USER@HOST/PATH/approvals/NAME on the audit host; without it, the
    /// requests that wait are listed
    pub request: Option<PathBuf>,
    /// The inventory naming the spool (`approvals_dir:`) [default: $RUNBOOK_INVENTORY, else ./inventory.yaml when present; without one, <audit-dir>/approvals]
    #[arg(long, value_name = "FILE", env = "RUNBOOK_INVENTORY")]
    pub inventory: Option<PathBuf>,
    /// Sign without asking `Approve? [y/N]` (for scripts)
    #[arg(long)]
    pub yes: bool,
    /// Deny it: the step fails, with your reason
    #[arg(long)]
    pub deny: bool,
    /// Why (required with --deny; recorded in the run's trail)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Sign with this SSH key: a private key, or the public key of one held by ssh-agent [default: $RUNBOOK_SIGNING_KEY, else the ssh-agent's first key]
    #[arg(long, value_name = "FILE", env = "RUNBOOK_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// How the audit host is reached (with --audit-host, or the inventory's audit_host)
    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DrillsArgs {
    /// Count only PASSes whose seal is signed by a key of this `allowed_signers` file (ssh-keygen's format)
    #[arg(long, value_name = "FILE")]
    pub signers: Option<PathBuf>,
    /// Print the drills as JSON
    #[arg(long)]
    pub json: bool,
    /// How the audit host is reached (with --audit-host)
    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Args)]
pub(crate) struct EvidenceArgs {
    /// A run id (or a unique prefix), the path of its audit file, or `last`
    #[arg(value_name = "RUN", add = ArgValueCompleter::new(values::runs_or_last))]
    pub run: String,
    /// The HTML file to write
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// The runbook file as it was run, when the one the trail names has moved or changed (its SHA-256 must be the trail's)
    #[arg(long, value_name = "FILE")]
    pub runbook: Option<PathBuf>,
    /// Check the seal's signature against this `allowed_signers` file, and name its principal in the page
    #[arg(long, value_name = "FILE")]
    pub signers: Option<PathBuf>,
    /// How the audit host is reached (with --audit-host)
    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ReviewArgs {
    /// Run ids, unique prefixes of them, paths of audit files, or `last` (the newest run of
    /// the audit dir); several make a comparison
    #[arg(required = true, value_name = "RUN", add = ArgValueCompleter::new(values::runs_or_last))]
    pub runs: Vec<String>,
    /// [default: from the extension of -o (.html, .md, .json), else text]
    #[arg(long, value_enum)]
    pub format: Option<ReviewFormat>,
    /// Write to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How the audit host is reached (with --audit-host)
    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// A run id (or a unique prefix), `last`, or the path of its audit file
    #[arg(value_name = "RUN", add = ArgValueCompleter::new(values::runs_or_last))]
    pub run: String,
    /// Which of the run's shell sessions, from 1 [default: 1]
    #[arg(value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub number: Option<u64>,
    /// Play faster (2: twice as fast) or slower (0.5)
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub speed: f64,
    /// How the audit host is reached (with --audit-host)
    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// A run id (or a unique prefix), `last`, or the path of its audit file
    #[arg(value_name = "RUN", add = ArgValueCompleter::new(values::runs_or_last))]
    pub run: String,
    /// Say `no event for N s` first after this much quiet (then every minute)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::duration::parse_arg)]
    pub quiet_after: Duration,
    /// How the audit host is reached (with --audit-host)
    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReviewFormat {
    Text,
    Md,
    Json,
    Html,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// Only runs of this runbook id
    #[arg(long, value_name = "ID")]
    pub runbook: Option<String>,
    /// Only drills or only incidents
    #[arg(long, value_enum)]
    pub mode: Option<HistoryMode>,
    /// Only runs launched at or after this date (2026-11-22, UTC) or RFC 3339 time
    #[arg(long, value_name = "DATE", value_parser = since::DATE)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Print the runs as JSON
    #[arg(long)]
    pub json: bool,
    /// How the audit host is reached (with --audit-host)
    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum HistoryMode {
    Drill,
    Incident,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Runbook files or directories (directories are searched for *.yaml and *.yml; an
    /// `inventory.yaml` there is checked as an inventory)
    #[arg(required_unless_present = "inventory", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// An inventory of hosts and groups to check too
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Print the diagnostics as JSON (the same as --format json)
    #[arg(long)]
    pub json: bool,
    /// How to print the diagnostics: text (with snippets, on stderr), json or sarif (SARIF 2.1.0, for CI code scanning), on stdout
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ValidateFormat>,
    /// Exit 2 on warnings too
    #[arg(long)]
    pub deny_warnings: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// Case files, or directories holding *.test.yaml files (beside the runbooks or under tests/) [default: the catalog]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// How to print the results: text, or junit (JUnit XML on stdout, for CI)
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = TestFormat::Text)]
    pub format: TestFormat,
    /// Also list the steps and `choose` options no case reaches
    #[arg(long)]
    pub coverage: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TestFormat {
    Text,
    Junit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ValidateFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print the catalog as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// A runbook id of the catalog, or a path
    #[arg(add = ArgValueCompleter::new(values::runbooks))]
    pub runbook: String,
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub format: ShowFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ShowFormat {
    Text,
    Md,
    Mermaid,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// A runbook id of the catalog, or a path
    #[arg(add = ArgValueCompleter::new(values::runbooks))]
    pub runbook: String,
    #[command(flatten)]
    pub opts: RunOptions,
    /// Start the RTO clock at detection time: `07:02` (today, local time) or RFC 3339
    #[arg(long, value_name = "TIME", value_parser = since::DETECTED)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Print the plan and execute nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Start at this step instead of the first
    #[arg(long, value_name = "STEP", add = ArgValueCompleter::new(values::steps))]
    pub start_at: Option<String>,
    /// Start from the alert that paged you: an Alertmanager (v4) or PagerDuty (v3) webhook payload, a file or `-` for stdin; the runbook's `alert.inputs` give inputs from it, and the trail records its identity
    #[arg(long, value_name = "FILE|-")]
    pub alert: Option<String>,
    /// Run with nobody watching, as an alert's webhook does: implies --yes, and the inventory's `unattended:` policy must allow it (else exit 2, recorded in refusals.jsonl)
    #[arg(long)]
    pub unattended: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MatchArgs {
    /// An Alertmanager (v4) or PagerDuty (v3) webhook payload: a file, or `-` for stdin
    #[arg(long, value_name = "FILE|-")]
    pub alert: String,
    /// Print the matches as JSON
    #[arg(long)]
    pub json: bool,
}

/// What `run`, `drill` and `resume` share: targets, inputs, answers, connections, the lock.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunOptions {
    /// Bind a role to `local`, an inventory host or group, or an SSH destination
    #[arg(long = "target", value_name = "ROLE=DEST", value_parser = pair::TARGET, add = ArgValueCompleter::new(values::roles))]
    pub targets: Vec<Pair>,
    /// Give an input its value (a secret given so is visible in the process list: prefer --set-from)
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = pair::SET, add = ArgValueCompleter::new(values::inputs))]
    pub sets: Vec<Pair>,
    /// Read an input from where it lives: env:VAR, file:PATH, file-all:PATH, cmd:COMMAND (e.g. cmd:pass show db/prod), or stdin
    #[arg(long = "set-from", value_name = "NAME=SOURCE", value_parser = pair::SET_FROM, add = ArgValueCompleter::new(values::inputs))]
    pub set_froms: Vec<Pair>,
    /// Inventory of hosts and groups [default: $RUNBOOK_INVENTORY, else ./inventory.yaml when present]
    #[arg(long, value_name = "FILE", env = "RUNBOOK_INVENTORY")]
    pub inventory: Option<PathBuf>,
    /// Who is running it, for the audit trail [default: $RUNBOOK_OPERATOR, else $USER]
    #[arg(long, value_name = "NAME", env = "RUNBOOK_OPERATOR")]
    pub operator: Option<String>,
    /// Run without prompts; every decision must be answerable in advance
    #[arg(long)]
    pub yes: bool,
    /// Answer a step in advance: a confirmation phrase, a decision (label or step id), done|skip|failed, or handoff (stop there for a colleague's resume)
    #[arg(long = "answer", value_name = "STEP=VALUE", value_parser = pair::ANSWER, add = ArgValueCompleter::new(values::answers))]
    pub answers: Vec<Pair>,
    /// Take the run lock even from a live holder (recorded in the audit trail)
    #[arg(long)]
    pub break_lock: bool,
    /// Sign the trail (seal, resumes, checkpoints) with this SSH key: a private key, or the public key of one held by ssh-agent [default: $RUNBOOK_SIGNING_KEY, else the ssh-agent's first key]
    #[arg(long, value_name = "FILE", env = "RUNBOOK_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// Do not sign the trail, even with a key at hand (the run then says it is unsigned)
    #[arg(long)]
    pub no_sign: bool,
    /// Never offer a shell on a target at the step prompts (where policy forbids interactive access)
    #[arg(long)]
    pub no_shell: bool,
    /// At most this many hosts of a fleet connect or run a step at once
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub forks: u16,
    /// Send notifications to this webhook (repeatable; the format follows the host: Slack's, PagerDuty's, else CloudEvents). A URL here is visible in the process list: prefer RUNBOOK_NOTIFY or the inventory's `notify:` with `url_from:`
    #[arg(
        long = "notify",
        value_name = "URL",
        env = "RUNBOOK_NOTIFY",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub notify: Vec<String>,
    /// Export the run as an OpenTelemetry trace to this OTLP/HTTP traces URL, used as given [default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else $OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces]
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
    /// At exit, wait at most this long for notifications and trace exports still pending
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::duration::parse_arg)]
    pub notify_timeout: Duration,
    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct SshArgs {
    /// OpenSSH client configuration file [default: ~/.ssh/config]
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Private key to authenticate with
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Known-hosts file to check host keys against [default: ~/.ssh/known_hosts]
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Give up connecting after this long
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::duration::parse_arg)]
    pub connect_timeout: Duration,
    /// Trust and record the key of a host seen for the first time (never a changed key)
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Probe every connection this often; three probes unanswered and it is lost (a stalled link is noticed in 3-4 times this)
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = keepalive)]
    pub keepalive: Duration,
}

impl SshArgs {
    /// The client options these flags give (a target's, or the audit host's).
    pub(crate) fn options(&self) -> crate::transport::SshOptions {
        crate::transport::SshOptions {
            config: self.ssh_config.clone(),
            identity: self.identity.clone(),
            known_hosts: self.known_hosts.clone(),
            connect_timeout: self.connect_timeout,
            accept_new_host_keys: self.accept_new_host_keys,
            keepalive: self.keepalive,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// A run id (or a unique prefix), or the path of its audit file
    #[arg(add = ArgValueCompleter::new(values::runs))]
    pub run: String,
    /// Require every signature to be by a key of this `allowed_signers` file (ssh-keygen's format), as `audit verify --signers`
    #[arg(long, value_name = "FILE")]
    pub signers: Option<PathBuf>,
    /// Require the head of the trail resumed (its last event's hash) to start with these 32+ hex characters, as `audit verify --expect-head`
    #[arg(long, value_name = "HEX")]
    pub expect_head: Option<String>,
    #[command(flatten)]
    pub opts: RunOptions,
}

#[derive(Debug, Args)]
pub(crate) struct DrillArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Allow targets the inventory marks `env: prod` (audited)
    #[arg(long)]
    pub allow_prod: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Recompute the hash chain of a run's audit file
    #[command(
        after_help = "Examples:\n  runbook audit verify 20261122T030211Z-service-down\n  runbook audit verify ~/.local/state/runbook/runs/20261122T030211Z-service-down.jsonl\n  runbook audit verify 20261122T030211Z --signers ~/.config/runbook/allowed_signers\n  runbook audit verify 20261122T030211Z --expect-head 3f9a0c51d2e8b7a4c6f1e9d0b3a2c5e8\n  runbook audit verify 20261122T030211Z --audit-host ssh://alice@logs/srv/runbook/runs\n  runbook audit verify --all --audit-host ssh://alice@logs/srv/runbook/runs   # every run of the team\n\nWith --audit-host (or RUNBOOK_AUDIT_HOST), RUN is looked up in the audit dir and on the audit host: a run only there is verified there (chain, output files, signatures); a run in both places must be the same in both (else TAMPERED, both named), and the audit host's output files are checked too. With --all (or with an audit host and no RUN), every run is verified so (of the audit dir alone without an audit host), one line each, and the worst exit status is the command's.\n\nExit status: 0 intact and sealed, 1 tampered (a line, an output file, a signature; or not signed by --signers; or not --expect-head; or two copies that differ), or the audit host cannot be read, 4 incomplete (no seal)."
    )]
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// A run id, or the path of its audit file
    #[arg(add = ArgValueCompleter::new(values::runs))]
    pub run: Option<String>,
    /// Verify every run: of the audit dir, or with --audit-host of the team's record (one line per run; the default with --audit-host and no RUN)
    #[arg(long, conflicts_with_all = ["run", "expect_head"])]
    pub all: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// Require every signature to be by a key of this `allowed_signers` file (ssh-keygen's format), and the head to be signed
    #[arg(long, value_name = "FILE")]
    pub signers: Option<PathBuf>,
    /// Require the head (the seal's hash) to start with these 32+ hex characters, published elsewhere
    #[arg(long, value_name = "HEX")]
    pub expect_head: Option<String>,
    /// How the audit host is reached (with --audit-host)
    #[command(flatten)]
    pub ssh: SshArgs,
}

/// `--keepalive`: ssh probes in whole seconds, so at least one.
fn keepalive(text: &str) -> Result<Duration, String> {
    let every = crate::duration::parse_arg(text)?;
    if every < Duration::from_secs(1) {
        return Err("at least 1s (ssh probes in whole seconds)".into());
    }
    Ok(every)
}
