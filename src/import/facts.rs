//! What a sentence of a runbook says, once the CommonMark parser has found the sentence:
//! a duration written in words ("< 5 minutes", "1.5 hours"), whom to escalate to, whether a
//! code span is a command, a code block's commands behind their prompts, and whether a step
//! destroys something. These look inside one line of prose or one command, never at the
//! Markdown's structure.

use std::sync::LazyLock;

use regex::Regex;

fn regex(pattern: &str) -> Regex {
    // The patterns are constants of this file, checked by the unit tests below.
    Regex::new(pattern).unwrap_or_else(|_| Regex::new("$^").expect("an empty regex compiles"))
}

static DURATION: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)\b(\d+(?:\.\d+)?)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d)\b")
});

/// The first duration written in words in `text`, in the format's units (`5m`, `90m`).
pub(crate) fn duration(text: &str) -> Option<String> {
    let caps = DURATION.captures(text)?;
    let number: f64 = caps[1].parse().ok()?;
    let unit = caps[2].to_ascii_lowercase();
    let seconds = match unit.chars().next()? {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        _ => 86_400.0,
    };
    let total = (number * seconds).round() as u64;
    if total == 0 {
        return None;
    }
    Some(match total {
        t if t % 86_400 == 0 => format!("{}d", t / 86_400),
        t if t % 3600 == 0 => format!("{}h", t / 3600),
        t if t % 60 == 0 => format!("{}m", t / 60),
        t => format!("{t}s"),
    })
}

static STEP_TARGET: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)(\bwithin\b|\bin under\b|\bunder\b|\brto\b|\btarget\b|≤|<)\s*:?\s*\d"));

/// A step's own time target in its prose ("(within 2 minutes)", "RTO: 30s").
pub(crate) fn step_rto(prose: &str) -> Option<String> {
    let found = STEP_TARGET.find(prose)?;
    duration(&prose[found.start()..])
}

/// `label` of a "Label: value" line names the recovery time objective: the stronger the
/// wording, the higher the rank (an explicit `RTO:` beats "Recovery time target:").
pub(crate) fn rto_rank(label: &str) -> Option<u8> {
    let label = label.trim().to_ascii_lowercase();
    match label.as_str() {
        "rto" | "recovery time objective" => Some(2),
        l if l.contains("recovery time") || l.contains("time to recover") || l == "target" => Some(1),
        _ => None,
    }
}

static ESCALATE_TO: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:escalate|page|call|contact|notify|ping)\s+(?:it\s+)?(?:to\s+)?(?:the\s+)?(.+?)[.;!]*\s*$",
    )
});

static TRAILING_TIME: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\s+(?:after|in|within|if|when)\b.*$"));

/// `escalate: {after, to}` from an escalation sentence: the first duration and whom it names.
pub(crate) fn escalation(text: &str) -> (Option<String>, Option<String>) {
    let after = duration(text);
    let to = ESCALATE_TO
        .captures(text)
        .map(|c| {
            let whom = c[1].trim();
            // "page the lead after 30 minutes": the time is `after`, not part of whom.
            let whom = TRAILING_TIME.find(whom).map_or(whom, |m| &whom[..m.start()]);
            whom.trim().to_string()
        })
        .filter(|t| !t.is_empty());
    (after, to)
}

static CONDITION: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)^\s*if\s+"));

/// The length of a leading "If " (an "If ...:" step is a decision), if there is one.
pub(crate) fn condition_start(prose: &str) -> Option<usize> {
    CONDITION.find(prose).map(|m| m.end())
}

static SCENARIO_REF: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)\b(?:see|go to|follow|use|run)\s+(?:the\s+)?(?:scenario|section|runbook)\s*#?(\d+)\b")
});

/// "see Scenario 5" → 5.
pub(crate) fn scenario_ref(prose: &str) -> Option<u32> {
    SCENARIO_REF.captures(prose)?[1].parse().ok()
}

static NUMBERED: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)^\s*(?:scenario|incident|case|section)\s*#?(\d+)\s*[:.)\-–—]?\s*(.*)$"));

/// "Scenario 1: Service down" → (Some(1), "Service down").
pub(crate) fn numbered(heading: &str) -> (Option<u32>, String) {
    match NUMBERED.captures(heading) {
        Some(c) if !c[2].trim().is_empty() => (c[1].parse().ok(), c[2].trim().to_string()),
        Some(c) => (c[1].parse().ok(), heading.trim().to_string()),
        None => (None, heading.trim().to_string()),
    }
}

static STEP_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?i)^\s*(?:step\s*)?\d+\s*[.):]?\s*[:.\-–—]?\s*"));

/// "Step 2: Stop the API" → "Stop the API".
pub(crate) fn without_step_number(heading: &str) -> String {
    let rest = STEP_PREFIX.replace(heading, "");
    if rest.trim().is_empty() {
        heading.trim().to_string()
    } else {
        rest.trim().to_string()
    }
}

/// A code span is a command when it reads like one: a program name and arguments
/// (`df -h`), not an environment variable (`LLM_PROVIDER`), a path or a URL alone. A single
/// word counts only when it is all the step says after its label (`Check memory: \`free\``).
pub(crate) fn is_command(span: &str, alone: bool) -> bool {
    let span = span.trim();
    let Some(first) = span.split_whitespace().next() else {
        return false;
    };
    let program_like = first
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | '~'))
        && first.chars().any(|c| c.is_ascii_lowercase());
    let has_args = span.split_whitespace().nth(1).is_some();
    let bare_path = !has_args && (first.starts_with('/') || first.starts_with('.') || first.contains('/'));
    program_like && !bare_path && (has_args || alone)
}

/// A shell prompt at the start of a line of a console block: `$ `, `% `, `user@host:~$ `,
/// and `# ` (root's) in a `console` block only (elsewhere `#` starts a comment).
static PROMPT: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^\s*(?:[\w.-]+@[\w.-]+(?::[^\s$#]*)?\s?)?([$%#])\s"));

/// Languages whose code block is run as shell; a block of another one (`sql`, `json`,
/// `text`, `output`) is quoted in the step's notes instead.
pub(crate) fn is_shell(lang: &str) -> bool {
    matches!(
        lang,
        "" | "sh"
            | "bash"
            | "shell"
            | "console"
            | "shell-session"
            | "sh-session"
            | "zsh"
            | "terminal"
            | "ksh"
    )
}

/// The commands of a shell block, and the lines shown as their output. With prompts, only
/// the prompted lines (and their `\` continuations) are commands; without, all of it is.
pub(crate) fn block_commands(lang: &str, text: &str) -> (String, Vec<String>) {
    let console = matches!(lang, "console" | "shell-session" | "sh-session" | "terminal");
    let prompted = |line: &str| {
        PROMPT
            .captures(line)
            .filter(|c| &c[1] != "#" || console)
            .and_then(|c| c.get(0))
            .map(|m| line[m.end()..].to_string())
    };
    if !text.lines().any(|l| prompted(l).is_some()) {
        return (text.trim_end().to_string(), Vec::new());
    }
    let (mut commands, mut output) = (Vec::<String>::new(), Vec::new());
    let mut continued = false;
    for line in text.lines() {
        if continued {
            commands.push(line.to_string());
        } else if let Some(command) = prompted(line) {
            commands.push(command);
        } else {
            if !line.trim().is_empty() {
                output.push(line.to_string());
            }
            continue;
        }
        continued = commands.last().is_some_and(|c| c.trim_end().ends_with('\\'));
    }
    (commands.join("\n"), output)
}

/// Besides what `validate` warns of, what a step's command does that cannot be undone or
/// stops a service: the import asks for a confirmation rather than judge it safe.
static DESTRUCTIVE_COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\bsystemctl\s+(?:stop|disable|mask|kill)\b|\b(?:kill|pkill|killall)\b|--force\b|\bpg_terminate_backend\b|\bpg_restore\b|\brm\s|\bdelete\b|\bdrop\b|\bgit\s+(?:reset|clean|checkout)\b|\bdocker\s+(?:rm|rmi|system\s+prune)\b|\bkubectl\s+delete\b|\bshred\b|\bwipefs\b|\bredis-cli\b.*\b(?:del|flushall|flushdb)\b|\|\s*(?:sudo\s+(?:-u\s+\S+\s+)?)?(?:psql|mysql)\b",
    )
});

/// Words of a step's prose that mean the same ("Restore the backup over the database").
static DESTRUCTIVE_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?i)\b(?:restore|drop|delete|remove|wipe|purge|truncate|kill|terminate|stop|force|overwrite|downgrade|destroy|erase|reset)\b",
    )
});

/// Why a step needs a confirmation, if it does: the words that make it destructive.
pub(crate) fn destructive(command: Option<&str>, prose: &str) -> Option<String> {
    if let Some(command) = command {
        if let Some(found) = crate::book::validate::destructive::find(command) {
            return Some(found.what);
        }
        if let Some(m) = DESTRUCTIVE_COMMAND.find(command) {
            return Some(one_space(m.as_str()));
        }
    }
    DESTRUCTIVE_WORDS
        .find(prose)
        .map(|m| m.as_str().to_ascii_lowercase())
}

fn one_space(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `ssh [options] DEST` with no remote command: the step only says where the next ones run.
/// Returns the destination and the options that were left out.
pub(crate) fn ssh_destination(command: &str) -> Option<(String, Vec<String>)> {
    let words = shlex::split(command.trim())?;
    let mut words = words.into_iter();
    if words.next()? != "ssh" {
        return None;
    }
    let (mut dest, mut dropped) = (None, Vec::new());
    let mut words = words.peekable();
    while let Some(word) = words.next() {
        if let Some(flag) = word.strip_prefix('-') {
            // Options that take a value (ssh(1)).
            let takes = flag.len() == 1 && "BbcDEeFIiJLlmOoPpQRSWw".contains(flag);
            dropped.push(word.clone());
            if takes && let Some(value) = words.next() {
                dropped.push(value);
            }
        } else if dest.is_none() {
            dest = Some(word);
        } else {
            return None; // a remote command: a real step
        }
    }
    dest.map(|d| (d, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_words() {
        assert_eq!(duration("< 5 minutes").as_deref(), Some("5m"));
        assert_eq!(duration("< 15 minutes (tested)").as_deref(), Some("15m"));
        assert_eq!(duration("1.5 hours").as_deref(), Some("90m"));
        assert_eq!(duration("90 s").as_deref(), Some("90s"));
        assert_eq!(duration("24 hours (daily backup)").as_deref(), Some("1d"));
        assert_eq!(duration("Automatic (fallback)"), None);
        assert_eq!(step_rto("Restart (within 2 min)").as_deref(), Some("2m"));
        assert_eq!(step_rto("logs since 10 min ago"), None);
    }

    #[test]
    fn escalation_sentences() {
        assert_eq!(
            escalation("If not resolved in 15 minutes, escalate to founder."),
            (Some("15m".into()), Some("founder".into()))
        );
        assert_eq!(
            escalation("page the DBA on-call after 30 minutes"),
            (Some("30m".into()), Some("DBA on-call".into()))
        );
    }

    #[test]
    fn what_is_a_command() {
        assert!(is_command("df -h", false));
        assert!(is_command("free", true));
        assert!(!is_command("LLM_FALLBACK_PROVIDER", true));
        assert!(!is_command(".env", true));
        assert!(!is_command("/health/deep", true));
        assert!(!is_command("postgres: failed", false));
        assert!(!is_command("https://status.example", true));
    }

    #[test]
    fn prompts_separate_commands_from_output() {
        let (commands, output) = block_commands(
            "console",
            "$ systemctl is-active api\nactive\n# journalctl -n 5 \\\n  -u api\n",
        );
        assert_eq!(commands, "systemctl is-active api\njournalctl -n 5 \\\n  -u api");
        assert_eq!(output, ["active"]);
        let (commands, _) = block_commands("sh", "# a comment\nrm -rf /tmp/x\n");
        assert_eq!(commands, "# a comment\nrm -rf /tmp/x");
        let (commands, _) = block_commands("", "deploy@api-1:~$ uptime\n");
        assert_eq!(commands, "uptime");
    }

    #[test]
    fn destructive_steps() {
        assert_eq!(
            destructive(Some("sudo systemctl stop api"), "Stop").as_deref(),
            Some("systemctl stop")
        );
        assert_eq!(
            destructive(Some("gunzip -c x.sql.gz | sudo -u postgres psql app"), "Load").as_deref(),
            Some("| sudo -u postgres psql")
        );
        assert_eq!(
            destructive(None, "Restore from backup").as_deref(),
            Some("restore")
        );
        assert_eq!(destructive(Some("systemctl status api"), "Check status"), None);
        assert_eq!(destructive(None, "If stopped, start it"), None);
    }

    #[test]
    fn ssh_steps_name_a_host() {
        assert_eq!(
            ssh_destination("ssh deploy@192.0.2.10"),
            Some(("deploy@192.0.2.10".into(), vec![]))
        );
        assert_eq!(
            ssh_destination("ssh -i key -p 2222 ops@db"),
            Some((
                "ops@db".into(),
                vec!["-i".into(), "key".into(), "-p".into(), "2222".into()]
            ))
        );
        assert_eq!(ssh_destination("ssh db uptime"), None);
        assert_eq!(numbered("Scenario 5: Rollback"), (Some(5), "Rollback".into()));
        assert_eq!(without_step_number("Step 2: Stop the API"), "Stop the API");
    }
}
