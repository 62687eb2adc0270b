//! One scenario section → the steps of one runbook: which blocks are steps (numbered items,
//! checklist items, `###` step headings, shell code blocks), and what each becomes: `run:`
//! for a command, `call:` for "see Scenario N", a `choose` for "If ...:", `manual:` for the
//! rest. Every guess leaves a review note for the YAML's `# review:` comments.

use super::facts;
use super::markdown::{Block, Code, Inline, Item, Line, Marker, Part, Section};
use super::{Draft, Ids, Kind, Ref, Role, Src};

/// A block (or a heading and its body) that is one step of the source.
#[derive(Default)]
struct Raw {
    line: usize,
    text: Inline,
    body: Vec<Line>,
    codes: Vec<Code>,
    reviews: Vec<String>,
    /// A `###` heading: its body's code spans may hold its command.
    heading: bool,
    /// A step's own "RTO:" line under its heading.
    rto: Option<String>,
}

impl Raw {
    fn of_item(item: &Item) -> Raw {
        Raw {
            line: item.line,
            text: item.text.clone(),
            body: item.more.clone(),
            codes: item.codes.clone(),
            ..Raw::default()
        }
    }
}

/// What the sections' prose says besides the steps.
#[derive(Default)]
pub(crate) struct Prose {
    /// The Markdown of the blocks that are no steps, in order, for the description.
    pub(crate) description: Vec<String>,
    /// "Label: value" lines of the section's paragraphs (RTO, escalation), with their lines.
    pub(crate) facts: Vec<(String, String, usize)>,
}

/// "Label: rest" of a line, when the colon comes before any code span.
pub(crate) fn label_of(inline: &Inline) -> Option<(String, Inline)> {
    let mut before = Inline::default();
    for (i, part) in inline.parts.iter().enumerate() {
        match part {
            Part::Text(t) => match t.find(':') {
                Some(at) => {
                    before.parts.push(Part::Text(t[..at].to_string()));
                    let mut rest = Inline::default();
                    rest.parts.push(Part::Text(t[at + 1..].to_string()));
                    rest.parts.extend(inline.parts[i + 1..].iter().cloned());
                    rest.links = inline.links.clone();
                    return Some((before.markdown(), rest));
                }
                None => before.parts.push(part.clone()),
            },
            Part::Code(_) => return None,
        }
    }
    None
}

/// The steps of a section and its other prose; no step at all is `Err(why)`.
pub(crate) fn collect(section: &Section, src: &Src) -> (Vec<Draft>, Vec<Role>, Prose, Ids) {
    let mut prose = Prose::default();
    let raws = raws(section, src, &mut prose);
    let mut ids = Ids::default();
    let (mut drafts, mut roles) = (Vec::new(), Vec::new());
    for raw in raws {
        build(raw, src, &mut ids, &mut drafts, &mut roles);
    }
    (drafts, roles, prose, ids)
}

fn raws(section: &Section, src: &Src, prose: &mut Prose) -> Vec<Raw> {
    let blocks = &section.blocks;
    // Plain bullets are steps only in a section without numbered or checklist items.
    let ranked = blocks
        .iter()
        .any(|b| matches!(b, Block::Item(i) if i.marker != Marker::Bullet));
    let is_step = |item: &Item| item.marker != Marker::Bullet || !ranked;
    let mut raws: Vec<Raw> = Vec::new();
    let mut open: Option<Raw> = None;
    // The description entry of the paragraph just before, which a code block may take as its title.
    let mut last_para: Option<(usize, Line)> = None;
    let mut after_item = false;
    let mut after_bullet = false;
    for (i, block) in blocks.iter().enumerate() {
        let was_after_item = std::mem::replace(&mut after_item, false);
        let was_after_bullet = std::mem::replace(&mut after_bullet, false);
        let para = last_para.take();
        match block {
            Block::Heading { line, text } => {
                raws.extend(open.take());
                let groups = blocks[i + 1..]
                    .iter()
                    .take_while(|b| !matches!(b, Block::Heading { .. }))
                    .any(|b| matches!(b, Block::Item(it) if is_step(it)));
                if groups {
                    // A heading over a list ("### Checks"): the items are the steps.
                    prose.description.push(format!("**{}**", text.markdown()));
                } else {
                    let title = facts::without_step_number(&text.markdown());
                    let mut inline = Inline::default();
                    inline.parts.push(Part::Text(title));
                    open = Some(Raw {
                        line: *line,
                        text: inline,
                        heading: true,
                        ..Raw::default()
                    });
                }
            }
            Block::Para { lines, range } => {
                let mut kept = Vec::new();
                for line in lines {
                    if let Some((label, rest)) = label_of(&line.inline) {
                        let is_rto = facts::rto_rank(&label).is_some();
                        if let (true, Some(raw)) = (is_rto, open.as_mut()) {
                            raw.rto = facts::duration(&rest.markdown());
                            continue;
                        }
                        let lead = [
                            "steps",
                            "procedure",
                            "actions",
                            "what to do",
                            "resolution",
                            "remediation",
                        ];
                        let leads = lead.contains(&label.trim().to_ascii_lowercase().as_str());
                        if is_rto || label.to_ascii_lowercase().contains("escalat") {
                            prose.facts.push((label, rest.markdown(), line.line));
                        }
                        if rest.is_empty() && lines.len() == 1 && leads {
                            continue; // "Steps:" over the list
                        }
                    }
                    kept.push(line.clone());
                }
                match open.as_mut() {
                    Some(raw) => raw.body.extend(kept),
                    None if !kept.is_empty() => {
                        prose.description.push(src.slice(range.clone()));
                        last_para = kept.last().map(|l| (prose.description.len() - 1, l.clone()));
                    }
                    None => {}
                }
            }
            Block::Item(item) => {
                raws.extend(open.take());
                if is_step(item) {
                    raws.push(Raw::of_item(item));
                    after_item = true;
                } else {
                    let bullet = format!("- {}", item.text.markdown());
                    match prose.description.last_mut() {
                        // One list, not paragraphs: the bullets of a list stay together.
                        Some(last) if was_after_bullet => {
                            last.push('\n');
                            last.push_str(&bullet);
                        }
                        _ => prose.description.push(bullet),
                    }
                    after_bullet = true;
                }
            }
            Block::Code(code) => {
                if let Some(raw) = open.as_mut() {
                    raw.codes.push(code.clone());
                } else if let (true, Some(raw)) = (was_after_item, raws.last_mut()) {
                    raw.codes.push(code.clone());
                    raw.reviews.push(format!(
                        "the code block at line {} (after the list item, not inside it) is taken as this step's command",
                        code.line
                    ));
                    after_item = true;
                } else if !facts::is_shell(&code.lang) {
                    prose.description.push(fenced(&code.lang, &code.text));
                } else if let Some((at, line)) = para {
                    // "Restart the service:" over a code block: one step.
                    prose.description.remove(at);
                    raws.push(Raw {
                        line: line.line,
                        text: line.inline,
                        codes: vec![code.clone()],
                        ..Raw::default()
                    });
                } else {
                    raws.push(Raw {
                        line: code.line,
                        codes: vec![code.clone()],
                        reviews: vec![
                            "a code block without a sentence before it: the title is its first command"
                                .into(),
                        ],
                        ..Raw::default()
                    });
                }
            }
            Block::Other { range } => prose.description.push(src.slice(range.clone())),
        }
    }
    raws.extend(open);
    raws
}

/// A code block as Markdown again, for the description or notes.
pub(crate) fn fenced(lang: &str, text: &str) -> String {
    let fence = "`".repeat(crate::render::longest_run(text, '`').max(2) + 1);
    format!("{fence}{lang}\n{}\n{fence}", text.trim_end())
}

/// The part of a step's text after "If COND:" (or "If COND,"), and COND.
fn split_condition(text: &Inline) -> Option<(String, Inline)> {
    let Some(Part::Text(first)) = text.parts.first() else {
        return None;
    };
    let start = facts::condition_start(first)?;
    let rest = &first[start..];
    let mut action = Inline {
        links: text.links.clone(),
        ..Inline::default()
    };
    let condition = match rest.find([':', ',']) {
        Some(at) => {
            action.parts.push(Part::Text(rest[at + 1..].to_string()));
            rest[..at].to_string()
        }
        None => rest.to_string(),
    };
    action.parts.extend(text.parts[1..].iter().cloned());
    Some((condition.trim().to_string(), action))
}

fn capitalized(text: &str) -> String {
    let text = text.trim().trim_end_matches([':', '.', ',', ';']).trim();
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// At most `max` characters, cut at a space, with an ellipsis.
fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{}…", cut.trim_end())
}

/// Prose outside parentheses, for "does the text say more than its command".
fn words_outside_parentheses(text: &str) -> usize {
    super::outside_parentheses(text)
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count()
}

fn build(raw: Raw, src: &Src, ids: &mut Ids, drafts: &mut Vec<Draft>, roles: &mut Vec<Role>) {
    let mut quote = src.line_text(raw.line);
    if quote.trim_start().starts_with("```") || quote.trim_start().starts_with("~~~") {
        // A code block alone: its first line says more than its fence.
        quote = src.line_text(raw.line + 1);
    }
    let mut notes = vec![format!("From `{}:{}`:\n\n> {}", src.name, raw.line, quote.trim())];
    let mut block_commands = Vec::new();
    for code in &raw.codes {
        if facts::is_shell(&code.lang) {
            let (commands, output) = facts::block_commands(&code.lang, &code.text);
            if !commands.trim().is_empty() {
                block_commands.push(commands);
            }
            if !output.is_empty() {
                notes.push(format!("Expected output:\n\n{}", fenced("", &output.join("\n"))));
            }
        } else {
            notes.push(fenced(&code.lang, &code.text));
        }
    }
    for line in &raw.body {
        match raw.heading {
            true => notes.push(line.inline.markdown()),
            false => notes.push(format!("- {}", line.inline.markdown())),
        }
    }
    let notes = notes.join("\n\n");
    let mut reviews = raw.reviews;

    if let Some((condition, mut action)) = split_condition(&raw.text) {
        let mut body = raw.body.clone();
        if action.is_empty() && !body.is_empty() {
            // "### If the backlog still grows" over what to do then.
            action = body.remove(0).inline;
        }
        let raw_body = body;
        let choose_id = ids.unique(&format!("if {condition}"));
        let title = capitalized(&format!("If {condition}"));
        let mut step = step(&action, &raw_body, &block_commands, raw.heading, drafts.len() + 2);
        step.notes = notes.clone();
        step.line = raw.line;
        step.id = ids.unique(&step.title);
        step.rto = raw.rto.clone().or(step.rto);
        let choose = Draft {
            id: choose_id,
            title,
            line: raw.line,
            notes,
            kind: Kind::Choose {
                action: step.id.clone(),
                label: format!("Yes: {}", short(&step.title, 60)),
            },
            reviews: {
                reviews.push(format!(
                    "\"If {condition}\" is the operator's decision (\"No, go on\", first, is preselected and what --yes takes); add `when:` on a captured output to decide it"
                ));
                reviews
            },
            ..Draft::default()
        };
        drafts.push(choose);
        drafts.push(step);
        return;
    }

    let mut step = step(
        &raw.text,
        &raw.body,
        &block_commands,
        raw.heading,
        drafts.len() + 1,
    );
    if let Kind::Run(command) = &step.kind
        && let Some((dest, dropped)) = facts::ssh_destination(command)
    {
        let name = ssh_role(&step.title, &dest);
        let mut review = format!(
            "the host of step \"{}\" ({}:{}): the steps after it run there",
            short(quote.trim(), 80),
            src.name,
            raw.line
        );
        if !dropped.is_empty() {
            review.push_str(&format!(
                "; ssh options left out: {} (give them in ~/.ssh/config or with --identity)",
                dropped.join(" ")
            ));
        }
        roles.push(Role {
            name,
            description: step.title.clone(),
            default: Some(dest),
            review,
            at_step: drafts.len(),
        });
        return;
    }
    reviews.append(&mut step.reviews);
    step.reviews = reviews;
    step.notes = notes;
    step.line = raw.line;
    step.rto = raw.rto.or(step.rto);
    step.id = ids.unique(&step.title);
    drafts.push(step);
}

/// The role an "SSH to the db server" step names (`db-server`); else the host's first name
/// (`agent-7` of `ci@agent-7.example`); else `server`.
fn ssh_role(title: &str, dest: &str) -> String {
    let lower = title.to_ascii_lowercase();
    let named = lower
        .split_once(" to ")
        .or_else(|| lower.split_once(" into "))
        .map(|(_, rest)| rest.trim_start_matches("the ").to_string())
        .filter(|rest| rest.split_whitespace().count() <= 3)
        .filter(|rest| !matches!(rest.as_str(), "it" | "them" | "there" | "host" | "it:"));
    let host = dest.rsplit('@').next().unwrap_or(dest);
    let host = host.split('.').next().unwrap_or(host);
    let host = if host.chars().any(|c| c.is_ascii_alphabetic()) {
        host
    } else {
        ""
    };
    [named.as_deref().unwrap_or(""), host, "server"]
        .into_iter()
        .map(|words| super::slug(words, 30))
        .find(|slug| !slug.is_empty() && slug.starts_with(|c: char| c.is_ascii_lowercase()))
        .unwrap_or_else(|| "server".into())
}

/// One step from its text, its body (a heading's paragraphs, an item's nested items) and the
/// commands of its code blocks. `number`: its place, for a title when the text has none.
fn step(text: &Inline, body: &[Line], blocks: &[String], heading: bool, number: usize) -> Draft {
    let mut reviews = Vec::new();
    let (label, after) = match label_of(text) {
        Some((label, after)) if !label.trim().is_empty() => (Some(label), after),
        _ => (None, text.clone()),
    };
    let alone = after.parts.iter().filter(|p| matches!(p, Part::Code(_))).count() == 1
        && words_outside_parentheses(&after.prose()) == 0;
    let mut spans: Vec<String> = text
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Code(c) if facts::is_command(c, alone) => Some(c.trim().to_string()),
            _ => None,
        })
        .collect();
    if spans.is_empty() && heading && blocks.is_empty() {
        for line in body {
            let alone = line.inline.parts.len() <= 2;
            spans.extend(line.inline.parts.iter().filter_map(|p| match p {
                Part::Code(c) if facts::is_command(c, alone) => Some(c.trim().to_string()),
                _ => None,
            }));
        }
    }
    let command = if !blocks.is_empty() {
        blocks.join("\n")
    } else {
        if spans.len() > 1 {
            reviews.push(format!(
                "{} commands from one sentence, run as one script: check they belong together",
                spans.len()
            ));
        }
        spans.join("\n")
    };
    let prose = text.prose();
    let worded = |t: &str| t.chars().any(char::is_alphanumeric);
    let mut title = match &label {
        Some(label) => capitalized(label),
        None if worded(&prose) => capitalized(&text.markdown()),
        None => String::new(),
    };
    if title.is_empty() {
        title = match command.lines().next() {
            Some(first) => format!("Run {}", crate::render::code(&short(first, 50))),
            None => format!("Step {number}"),
        };
    }
    let title = short(&title, 100);
    // A heading step's body may hold the cross-reference ("See Scenario 2.").
    let searched = std::iter::once(text).chain(body.iter().map(|l| &l.inline).filter(|_| heading));
    let reference = searched
        .clone()
        .find_map(|t| facts::scenario_ref(&t.prose()).map(Ref::Number))
        .or_else(|| {
            searched
                .flat_map(|t| t.links.iter())
                .find_map(|(url, _)| url.strip_prefix('#').map(|a| Ref::Anchor(a.to_string())))
        });
    let kind = if !command.trim().is_empty() {
        let label_acts = label
            .as_deref()
            .is_some_and(|l| l.contains(", ") || l.contains(" and ") || l.contains(" then "));
        if blocks.is_empty() && (label_acts || words_outside_parentheses(&after.prose()) > 1) {
            reviews.push(
                "the sentence says more than its command: check that nothing it asks for is left out (a `manual:` step for it?)"
                    .into(),
            );
        }
        Kind::Run(command.clone())
    } else if let Some(reference) = reference {
        reviews.push("a cross-reference in the text, taken as a `call:` of that scenario's runbook".into());
        Kind::Call(reference)
    } else {
        let mut manual = text.markdown();
        if heading {
            // A heading's paragraphs say what to do; the heading is the title.
            let lines: Vec<String> = body.iter().map(|l| l.inline.markdown()).collect();
            if !lines.is_empty() {
                manual = lines.join("\n");
            }
        } else {
            for line in body {
                manual.push_str(&format!("\n- {}", line.inline.markdown()));
            }
        }
        if manual.is_empty() {
            manual = title.clone();
        }
        Kind::Manual(manual)
    };
    let command = match &kind {
        Kind::Run(c) => Some(c.as_str()),
        _ => None,
    };
    Draft {
        text: if text.is_empty() {
            title.clone()
        } else {
            text.markdown()
        },
        rto: facts::step_rto(&prose),
        confirm: facts::destructive(command, &format!("{title} {prose}")),
        title,
        kind,
        reviews,
        ..Draft::default()
    }
}
