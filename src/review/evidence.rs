//! `runbook evidence RUN -o FILE.html` (design §16): one self-contained page to attach to a
//! launch gate or hand to an auditor. It says what the run proves and how to check that
//! without trusting the page: the verdict, the head and the seal's signature with the exact
//! `ssh-keygen` commands (the signature, the head, the trail and the runbook are embedded as
//! downloadable `data:` links), the timeline, every deviation and decision, and the runbook
//! file as it was run, whose SHA-256 is the one the trail recorded. Like the HTML review it is
//! well-formed XML and fetches nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::html::{STYLE, good, record, steps_table, table};
use super::svg::{esc, timeline};
use super::{Review, fmt_rto, fmt_total};
use crate::audit::sign::{AUDIT_NAMESPACE, Signature};

/// Trails larger than this are named, not embedded: a page of hundreds of MiB helps nobody.
pub(crate) const MAX_EMBEDDED_TRAIL: usize = 8 << 20;

/// Styles of the evidence page, besides the review's.
const EVIDENCE_STYLE: &str = r#"
pre.file, pre.sig, pre.cmd { background: var(--band); border: 1px solid var(--grid); border-radius: 4px;
  padding: .6em .8em; overflow-x: auto; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre.file { max-height: 48em; }
.ok { color: var(--pass); font-weight: 600; } .bad { color: var(--fail); font-weight: 600; }
a.download { display: inline-block; margin: .2em .8em .2em 0; }
ol.check li { margin-bottom: .6em; }
.head { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
"#;

/// The runbook file as it ran, or why it is not on the page.
pub(crate) enum RunbookFile {
    /// Read from `path`; its SHA-256 is the trail's `file_sha256`.
    Matched { path: String, text: String },
    /// Not embedded (only for a trail that does not hold: a sound one is refused instead).
    Missing { reason: String },
}

/// Everything the page shows, gathered by `cmd/evidence.rs`.
pub(crate) struct Evidence<'a> {
    pub review: &'a Review,
    /// The audit file's bytes, when small enough to embed.
    pub trail: Option<&'a [u8]>,
    pub trail_name: String,
    /// `…: intact and sealed, 42 events`, as `audit verify` says it.
    pub chain: String,
    /// Output files checked against the trail, and their bytes.
    pub outputs: (usize, u64),
    /// `signed by SHA256:… (3 signatures)`, `UNSIGNED`.
    pub signatures: String,
    /// Every reason the trail is not to be trusted (tampering, bad or untrusted signatures).
    pub problems: Vec<String>,
    /// The seal's signature, when the seal is signed.
    pub seal_signature: Option<&'a Signature>,
    /// The seal's hash (the head) when sealed.
    pub seal_hash: Option<&'a str>,
    /// The `allowed_signers` file given, and the principal it names for the seal's key.
    pub signers: Option<(String, Option<String>)>,
    pub runbook: RunbookFile,
    /// When the page was written, and by which version.
    pub generated: String,
}

impl Evidence<'_> {
    /// The trail is tampered with or not to be trusted: said first, in a banner.
    pub(crate) fn untrusted(&self) -> bool {
        self.review.tampered() || !self.problems.is_empty()
    }
}

/// `esc`, keeping a carriage return as a character reference, which XML keeps (a literal one
/// is read as a newline): the text of the page is then the file's, byte for byte.
fn esc_exact(text: &str) -> String {
    text.split('\r').map(esc).collect::<Vec<_>>().join("&#13;")
}

fn data_uri(mime: &str, bytes: &[u8]) -> String {
    format!("data:{mime};base64,{}", STANDARD.encode(bytes))
}

fn download(name: &str, mime: &str, bytes: &[u8], words: &str) -> String {
    format!(
        "<a class=\"download\" download=\"{}\" href=\"{}\">{}</a>",
        esc(name),
        data_uri(mime, bytes),
        esc(words)
    )
}

pub(crate) fn render(e: &Evidence<'_>) -> String {
    let r = e.review;
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\" xmlns=\"http://www.w3.org/1999/xhtml\">\n<head>\n<meta charset=\"utf-8\"/>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<meta name=\"color-scheme\" content=\"light dark\"/>\n<title>Evidence: {} ({})</title>\n<style>{STYLE}{EVIDENCE_STYLE}</style>\n</head>\n<body>\n",
        esc(&r.title),
        esc(&r.run)
    );
    out.push_str(&format!(
        "<h1>Evidence: {} <span class=\"verdict {}\">{}</span></h1>\n<p class=\"run-id muted\">run {} · {} · written {}</p>\n",
        esc(&r.title),
        if good(&r.verdict) && !e.untrusted() {
            "good"
        } else {
            "bad"
        },
        esc(&r.verdict),
        esc(&r.run),
        esc(&r.mode),
        esc(&e.generated)
    ));
    out.push_str(&banners(e));
    out.push_str(&verdict_section(e));
    out.push_str(&inputs_section(r));
    out.push_str(&integrity_section(e));
    out.push_str(&check_section(e));
    out.push_str("<section id=\"timeline\">\n<h2>Timeline</h2>\n");
    out.push_str(&timeline(r, 0));
    out.push_str("<p class=\"muted\">time: when the step was presented (UTC); the other times are on the RTO clock. wait: presented → started (human); exec: started → finished (machine).</p>\n");
    out.push_str(&steps_table(r));
    out.push_str("</section>\n");
    out.push_str(&guards_section(r));
    out.push_str(&deviations_section(r));
    out.push_str(&runbook_section(e));
    out.push_str(&format!(
        "<p class=\"muted\">Written by <code>runbook evidence</code> from <code>{}</code>. Nothing on this page is fetched from the network; everything it says can be checked with the files it holds and stock tools, as above.</p>\n",
        esc(&e.trail_name)
    ));
    out.push_str("</body>\n</html>\n");
    out
}

fn banners(e: &Evidence<'_>) -> String {
    let r = e.review;
    let mut out = String::new();
    if e.untrusted() {
        let mut words = String::from(
            "TAMPERED or untrusted: this trail does not hold, and nothing on this page proves the run happened as it says.",
        );
        if let Some(warning) = r.integrity_warning().filter(|_| r.tampered()) {
            words.push(' ');
            words.push_str(&warning);
        }
        out.push_str(&format!(
            "<div class=\"banner\" role=\"alert\" id=\"tampered\"><p>{}</p>",
            esc(&words)
        ));
        if !e.problems.is_empty() {
            out.push_str("<ul>");
            for p in &e.problems {
                out.push_str(&format!("<li>{}</li>", esc(p)));
            }
            out.push_str("</ul>");
        }
        out.push_str("</div>\n");
    } else if let Some(warning) = r.integrity_warning() {
        out.push_str(&format!(
            "<p class=\"banner\" role=\"alert\">{}</p>\n",
            esc(&warning)
        ));
    }
    if e.seal_signature.is_none() && !r.tampered() {
        out.push_str(&format!(
            "<p class=\"banner\" role=\"note\">{}. An unsigned trail proves only that it is self-consistent: anyone who can write the file can rewrite it whole. Keep its head (below) where the operator cannot change it, or sign runs (with an ssh-agent key, or --signing-key).</p>\n",
            esc(&r.signed)
        ));
    }
    out
}

fn verdict_section(e: &Evidence<'_>) -> String {
    let r = e.review;
    let mut out = String::from("<section id=\"verdict\">\n<h2>Verdict</h2>\n");
    out.push_str(&format!(
        "<p><strong>{}</strong>{}</p>\n<p>Total {} of the {} RTO; outcome {}.</p>\n",
        esc(&r.verdict),
        r.verdict_reason
            .as_ref()
            .map(|why| format!(": {}", esc(why)))
            .unwrap_or_default(),
        esc(&fmt_total(r.total_ms)),
        esc(&fmt_rto(r.rto_ms)),
        esc(r.outcome.as_deref().unwrap_or("none (no seal)"))
    ));
    let facts: Vec<Vec<String>> = super::model::facts(r)
        .into_iter()
        .map(|f| vec![f.label.to_string(), f.value])
        .collect();
    out.push_str(&table(&["", ""], &facts, |_| ""));
    out.push_str("</section>\n");
    out
}

/// What the drill ran with: every input as `run started` recorded it (secrets are recorded
/// masked, so they show masked here too) and every target with the host key that answered.
fn inputs_section(r: &Review) -> String {
    let mut out = String::from("<section id=\"inputs\">\n<h2>What it ran with</h2>\n");
    if r.inputs.is_empty() {
        out.push_str("<p>No input: the runbook declares none, or the trail records none.</p>\n");
    } else {
        let rows: Vec<Vec<String>> = r
            .inputs
            .iter()
            .map(|(name, value)| {
                let how = if value == crate::vars::MASK {
                    "secret: never recorded, shown masked"
                } else {
                    "as recorded in the trail (--set, --set-from, an alert, or the default)"
                };
                vec![name.clone(), value.clone(), how.to_string()]
            })
            .collect();
        out.push_str(&table(&["input", "value", ""], &rows, |_| ""));
    }
    if r.targets.is_empty() {
        out.push_str("<p>No target recorded.</p>\n");
    } else {
        let rows: Vec<Vec<String>> = r
            .targets
            .iter()
            .map(|(role, host)| {
                let key = host
                    .split(',')
                    .map(|h| r.host_keys.get(h.trim()).cloned().unwrap_or_else(|| "-".into()))
                    .collect::<Vec<_>>()
                    .join(", ");
                vec![role.clone(), host.clone(), key]
            })
            .collect();
        out.push_str(&table(
            &["target role", "host", "host key that answered"],
            &rows,
            |_| "",
        ));
    }
    out.push_str("</section>\n");
    out
}

fn integrity_section(e: &Evidence<'_>) -> String {
    let r = e.review;
    let mut out = String::from("<section id=\"integrity\">\n<h2>The record and its signature</h2>\n");
    let rows = vec![
        vec!["Chain".to_string(), e.chain.clone()],
        vec![
            "Output files".to_string(),
            format!(
                "{} checked against the trail ({} bytes)",
                e.outputs.0, e.outputs.1
            ),
        ],
        vec!["Signatures".to_string(), e.signatures.clone()],
        vec![
            "Head".to_string(),
            r.head.clone().unwrap_or_else(|| "none (no events)".into()),
        ],
    ];
    out.push_str(&table(&["", ""], &rows, |_| ""));
    let mut links = Vec::new();
    if let Some(hash) = e.seal_hash {
        out.push_str(&format!(
            "<p>{} (the seal's own hash: 64 hex characters, with no newline):</p>\n<p class=\"head\" id=\"head\"><code>{}</code></p>\n",
            if e.seal_signature.is_some() {
                "The signed head"
            } else {
                "The head, unsigned"
            },
            esc(hash)
        ));
        links.push(download(
            "seal.hash",
            "text/plain",
            hash.as_bytes(),
            "seal.hash (the head)",
        ));
    }
    match e.seal_signature {
        Some(sig) => {
            out.push_str(&format!(
                "<p>The seal's signature: SSHSIG, namespace <code>{}</code>, key <code>{}</code>:</p>\n<pre class=\"sig\" id=\"signature\">{}</pre>\n",
                esc(&sig.namespace),
                esc(&sig.key),
                esc(&sig.armored)
            ));
            links.push(download(
                "seal.sig",
                "text/plain",
                format!("{}\n", sig.armored).as_bytes(),
                "seal.sig (the signature)",
            ));
        }
        None => out.push_str("<p class=\"bad\">The seal carries no signature.</p>\n"),
    }
    if let Some(trail) = e.trail {
        links.push(download(
            &e.trail_name,
            "application/jsonl",
            trail,
            &format!("{} (the whole trail)", e.trail_name),
        ));
    }
    if let RunbookFile::Matched { path, text } = &e.runbook {
        let name = std::path::Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "runbook.yaml".into());
        links.push(download(
            &name,
            "application/yaml",
            text.as_bytes(),
            &format!("{name} (the runbook as run)"),
        ));
    }
    if !links.is_empty() {
        out.push_str(&format!("<p>Save: {}</p>\n", links.join(" ")));
    }
    out.push_str("</section>\n");
    out
}

fn check_section(e: &Evidence<'_>) -> String {
    let r = e.review;
    let principal = e
        .signers
        .as_ref()
        .and_then(|(_, p)| p.clone())
        .unwrap_or_else(|| "<principal>".into());
    let trail = &e.trail_name;
    let mut out = String::from(
        "<section id=\"check\">\n<h2>Check it yourself</h2>\n<p>With stock tools, without trusting this page or <code>runbook</code>:</p>\n<ol class=\"check\">\n",
    );
    if e.seal_signature.is_none() {
        out.push_str("<li>The seal carries no signature, so there is none to check: the steps below show only that the trail is self-consistent, and that its head is the one you were given.</li>\n");
    } else {
        signature_steps(e, &principal, &mut out);
    }
    out.push_str(&format!(
        "<li>The head covers, through each line's <code>prev</code>, every line before it: recompute the chain (the Python of docs/audit.md, or <code>runbook</code> itself) and compare the head with the one published for the run:<pre class=\"cmd\">{}</pre></li>\n",
        esc(&format!(
            "runbook audit verify {trail}{} \\\n    --expect-head {}",
            if e.seal_signature.is_some() {
                " --signers allowed_signers"
            } else {
                ""
            },
            r.head.as_deref().unwrap_or("<head>")
        ))
    ));
    out.push_str(&format!(
        "<li>The runbook as it was run: its SHA-256 is in the trail's first line (<code>file_sha256</code>):<pre class=\"cmd\">{}</pre></li>\n",
        esc(&format!(
            "head -n 1 {trail} | jq -r .file_sha256\nsha256sum {}",
            match &e.runbook {
                RunbookFile::Matched { path, .. } => std::path::Path::new(path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "runbook.yaml".into()),
                RunbookFile::Missing { .. } => "RUNBOOK.yaml".into(),
            }
        ))
    ));
    out.push_str("</ol>\n</section>\n");
    out
}

/// Saving the signature and the head, `allowed_signers`, and the two `ssh-keygen` commands.
fn signature_steps(e: &Evidence<'_>, principal: &str, out: &mut String) {
    let trail = &e.trail_name;
    out.push_str(&format!(
        "<li>Save <code>seal.sig</code> and <code>seal.hash</code> with the links above, or take them from the trail itself:<pre class=\"cmd\">{}</pre></li>\n",
        esc(&format!(
            "tail -n 1 {trail} | jq -r .signature.armored > seal.sig\ntail -n 1 {trail} | jq -j .hash > seal.hash          # 64 hex, no newline"
        ))
    ));
    out.push_str(&format!(
        "<li>Take <code>allowed_signers</code> from where your team keeps it (one <code>PRINCIPAL KEYTYPE KEY</code> per line), never from this page: a forger would bring their own key.{}</li>\n",
        match &e.signers {
            Some((file, Some(p))) => format!(
                " Checked here against <code>{}</code>: the key is <code>{}</code>'s.",
                esc(file),
                esc(p)
            ),
            Some((file, None)) => format!(
                " Checked here against <code>{}</code>: <span class=\"bad\">the key is not in it</span>.",
                esc(file)
            ),
            None => String::new(),
        }
    ));
    out.push_str(&format!(
        "<li>Find whose key signed it, then verify the signature over the head:<pre class=\"cmd\" id=\"verify-command\">{}</pre>It must print <code>Good \"{AUDIT_NAMESPACE}\" signature for {}</code>.</li>\n",
        esc(&format!(
            "ssh-keygen -Y find-principals -s seal.sig -f allowed_signers\nssh-keygen -Y verify -f allowed_signers -I {principal} -n {AUDIT_NAMESPACE} -s seal.sig < seal.hash"
        )),
        esc(principal)
    ));
}

/// The guards' timeline (design §20): when each failed, tripped and recovered, where, why, and
/// where a trip sent the run; the alert's resolution with them, as the review lists them.
fn guards_section(r: &Review) -> String {
    let mut out = String::from("<section id=\"guards\">\n<h2>Guards</h2>\n");
    if r.guards.is_empty() {
        out.push_str("<p>No guard failed, tripped or recovered during the run (a runbook's guards are declared in its file, below).</p>\n");
    } else {
        let rows: Vec<Vec<String>> = r
            .guards
            .iter()
            .map(|g| {
                vec![
                    format!("{} +{}", super::fmt_clock(r, g.at_ms), super::fmt_ms(g.at_ms)),
                    g.guard.clone().unwrap_or_default(),
                    g.change.to_string(),
                    g.text.clone(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["time", "guard", "change", "what happened"],
            &rows,
            |i| {
                if r.guards[i].change == "tripped" {
                    "over"
                } else {
                    ""
                }
            },
        ));
        out.push_str("<p class=\"muted\">time: UTC, then the RTO clock. Only changes are recorded: a guard that held is never listed poll by poll.</p>\n");
    }
    out.push_str("</section>\n");
    out
}

fn deviations_section(r: &Review) -> String {
    let mut out = String::from("<section id=\"record\">\n<h2>Deviations and decisions</h2>\n");
    if r.deviations.is_empty() {
        out.push_str("<p>No deviation: every step on the taken path ran as written.</p>\n");
    } else {
        let rows: Vec<Vec<String>> = r
            .deviations
            .iter()
            .map(|d| {
                vec![
                    d.step.clone(),
                    d.kind.clone(),
                    if d.allowed {
                        "allowed, listed".into()
                    } else {
                        "a drill with it FAILs".into()
                    },
                    d.detail.clone().unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&table(&["step", "deviation", "rule", "detail"], &rows, |_| ""));
    }
    let items = record(r);
    if items.is_empty() {
        out.push_str("<p>No decision, answer, note, edit or failed attempt was recorded.</p>\n");
    } else {
        out.push_str("<p>Everything the people did, and every failed attempt, in time order:</p>\n");
        out.push_str(&items);
    }
    out.push_str("</section>\n");
    out
}

fn runbook_section(e: &Evidence<'_>) -> String {
    let r = e.review;
    let mut out = String::from("<section id=\"runbook\">\n<h2>The runbook as it was run</h2>\n");
    match &e.runbook {
        RunbookFile::Matched { path, text } => {
            out.push_str(&format!(
                "<p><code>{}</code>, SHA-256 <code class=\"head\">{}</code>: <span class=\"ok\">equal to the trail's <code>file_sha256</code></span>.</p>\n<pre class=\"file\" id=\"runbook-file\" data-sha256=\"{}\">{}</pre>\n",
                esc(path),
                esc(&r.file_sha256),
                esc(&r.file_sha256),
                esc_exact(text)
            ));
        }
        RunbookFile::Missing { reason } => {
            out.push_str(&format!("<p class=\"bad\">Not embedded: {}</p>\n", esc(reason)));
        }
    }
    out.push_str("</section>\n");
    out
}
