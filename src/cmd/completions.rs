//! `runbook completions SHELL` and the man page (`runbook man`, hidden): both generated from the
//! clap declaration in `cli.rs`, so they list exactly the commands and options that exist.
//!
//! Completions are dynamic (clap_complete's engine): the script `completions` prints asks
//! `runbook` itself at each Tab, so that it can offer what only the files know, the runbook
//! ids of the catalog, the run ids of the audit dir, the steps of the runbook being typed
//! (`cli/values.rs`), besides the commands, options and enum values of `cli.rs`.

use clap::CommandFactory;
use clap_complete::env::{EnvCompleter, Shells};
use clap_mangen::Man;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::{Error, Result, exit};
use crate::output;

/// The variable that tells `runbook` a shell is asking for completions (the scripts set it).
pub(crate) const VAR: &str = "_RUNBOOK_COMPLETE";

/// Answers a shell asking for completions, and exits; returns at once otherwise. Called first
/// thing in `main`, before anything is printed.
pub(crate) fn answer_shell() {
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(VAR)
        .complete();
}

/// The script that makes `SHELL` complete `runbook` by asking it: source it, or save it where
/// the shell loads completions. It calls `runbook` from `PATH`, so it holds across upgrades as
/// long as it is regenerated with the binary (the protocol between the two is clap_complete's).
pub(crate) fn execute(args: &CompletionsArgs) -> Result<u8> {
    let name = args.shell.to_string();
    let shells = Shells::builtins();
    let shell: &dyn EnvCompleter = shells
        .completer(&name)
        .ok_or_else(|| Error::usage(format!("no completions for `{name}`")))?;
    let mut buffer = Vec::new();
    shell
        .write_registration(VAR, "runbook", "runbook", "runbook", &mut buffer)
        .map_err(|e| Error::runtime(format!("cannot write the {name} completions: {e}")))?;
    output::print(&String::from_utf8_lossy(&buffer))?;
    Ok(exit::OK)
}

/// Prints the man page (roff), as committed in `docs/runbook.1`.
pub(crate) fn man() -> Result<u8> {
    output::print(&man_page()?)?;
    Ok(exit::OK)
}

/// One page for the whole tool: clap_mangen renders one command per page and refers to
/// `runbook-list(1)` and so on, which we do not ship, so each subcommand gets a subsection of
/// COMMANDS here instead (synopsis, what it does, options, examples).
pub(crate) fn man_page() -> Result<String> {
    let mut cli = Cli::command();
    cli.build();
    let man = Man::new(cli.clone());
    let mut page = String::new();
    page.push_str(&roff(|w| man.render_title(w))?);
    page.push_str(&section(|w| man.render_name_section(w))?);
    page.push_str(&section(|w| man.render_synopsis_section(w))?);
    page.push_str(&section(|w| man.render_description_section(w))?);
    page.push_str(&section(|w| man.render_options_section(w))?);
    page.push_str(".SH COMMANDS\n");
    for sub in cli.get_subcommands().filter(|s| shown(s)) {
        command_section(&mut page, sub)?;
    }
    let examples = section(|w| man.render_extra_section(w))?;
    page.push_str(&examples.replacen(".SH EXTRA\nExamples:\n", ".SH EXAMPLES\n", 1));
    page.push_str(EXIT_AND_ENVIRONMENT);
    page.push_str(&section(|w| man.render_version_section(w))?);
    Ok(page)
}

/// Commands worth a subsection: not hidden (`man`), not clap's own `help`.
fn shown(cmd: &clap::Command) -> bool {
    !cmd.is_hide_set() && cmd.get_name() != "help"
}

/// A subcommand as a `.SS` subsection; a command group (`audit`) lists its own subcommands.
fn command_section(page: &mut String, cmd: &clap::Command) -> Result<()> {
    let nested: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| shown(s)).collect();
    if !nested.is_empty() {
        for sub in nested {
            command_section(page, sub)?;
        }
        return Ok(());
    }
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    // The global options and --help are described once, at the top of the page.
    let mut local = cmd.clone();
    for id in ["dirs", "audit_dir", "help"] {
        if local.get_arguments().any(|a| a.get_id() == id) {
            local = local.mut_arg(id, |a| a.hide(true));
        }
    }
    let man = Man::new(local);
    page.push_str(&format!(".SS \"{}\"\n", name.replace('-', "\\-")));
    let synopsis = section(|w| man.render_synopsis_section(w))?;
    page.push_str(synopsis.trim_start_matches(".SH SYNOPSIS\n"));
    let description = section(|w| man.render_description_section(w))?;
    page.push_str(".PP\n");
    page.push_str(description.trim_start_matches(".SH DESCRIPTION\n"));
    let options = section(|w| man.render_options_section(w))?;
    page.push_str(&options.replacen(".SH OPTIONS\n", ".PP\nOptions:\n", 1));
    if cmd.get_after_help().is_some() {
        let extra = section(|w| man.render_extra_section(w))?;
        page.push_str(&extra.replacen(".SH EXTRA\n", ".PP\n", 1));
    }
    Ok(())
}

const EXIT_AND_ENVIRONMENT: &str = r#".SH "EXIT STATUS"
.TP
0
success; \fBrun\fR: ended resolved; \fBdrill\fR: PASS
.TP
1
runtime error (I/O, connection lost for good); \fBaudit verify\fR: tampered
.TP
2
usage, validation or pre\-flight error: nothing was executed
.TP
3
ended escalated or failed, or aborted by the operator
.TP
4
\fBdrill\fR: resolved but over the RTO; \fBaudit verify\fR: incomplete (no seal)
.TP
5
\fBdrills\fR: a drill is overdue (no PASS within its \fBdrill.every\fR, or never)
.TP
130
interrupted by a signal
.SH ENVIRONMENT
.TP
\fBRUNBOOK_PATH\fR
catalog directories, \fB:\fR\-separated (default \fB./runbooks\fR)
.TP
\fBRUNBOOK_AUDIT_DIR\fR
where audit files are written and read
.TP
\fBRUNBOOK_INVENTORY\fR
inventory of hosts and groups (default \fB./inventory.yaml\fR when present)
.TP
\fBRUNBOOK_OPERATOR\fR
who runs it, for the audit trail (default \fB$USER\fR)
.TP
\fBNO_COLOR\fR
plain output without colours
.SH "SEE ALSO"
The runbook file format: \fBdocs/format.md\fR; its JSON Schema: \fBrunbook schema\fR.
"#;

/// Renders with roff's preamble (which must open the page once).
fn roff(render: impl Fn(&mut Vec<u8>) -> std::io::Result<()>) -> Result<String> {
    let mut buffer = Vec::new();
    render(&mut buffer).map_err(|e| Error::runtime(format!("cannot render the man page: {e}")))?;
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

/// Renders a section without the preamble roff puts before every rendering.
fn section(render: impl Fn(&mut Vec<u8>) -> std::io::Result<()>) -> Result<String> {
    let text = roff(render)?;
    Ok(text.strip_prefix(PREAMBLE).map(str::to_string).unwrap_or(text))
}

const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
