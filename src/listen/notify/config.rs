//! Where notifications go: the inventory's `notify:` entries and `--notify URL` /
//! `RUNBOOK_NOTIFY`, resolved at pre-flight (a `url_from:` source is read then, so a missing
//! secret stops the run before anything runs). A webhook URL is a credential: only its scheme
//! and host are ever shown or recorded.

use std::collections::HashSet;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Kind;
use crate::error::Error;
use crate::secrets::source::{ReadContext, Source};

/// PagerDuty Events v2's endpoint, for a `format: pagerduty` entry without a URL.
pub(super) const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// One `notify:` entry of the inventory.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyEntry {
    /// The webhook URL (a credential: prefer `url_from`).
    #[schemars(with = "Option<String>")]
    pub url: Option<Spanned<String>>,
    /// A secret source the URL is read from: `env:VAR`, `file:PATH`, `cmd:COMMAND`, ...
    #[schemars(with = "Option<String>")]
    pub url_from: Option<Spanned<String>>,
    /// `cloudevents`, `slack` or `pagerduty`; default by host.
    #[schemars(with = "Option<String>")]
    pub format: Option<Spanned<String>>,
    /// Which notices: `run.started`, `step.failed`, `rto.warning`, `rto.breached`,
    /// `approval.needed`, `escalation.due`, `run.finished` (default: all).
    #[schemars(with = "Option<Vec<String>>")]
    pub events: Option<Vec<Spanned<String>>>,
    /// PagerDuty: the integration's routing key, from a secret source.
    #[schemars(with = "Option<String>")]
    pub routing_key_from: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    CloudEvents,
    Slack,
    PagerDuty,
}

impl Format {
    pub(crate) const NAMES: [&str; 3] = ["cloudevents", "slack", "pagerduty"];

    pub(crate) fn parse(text: &str) -> Option<Format> {
        match text {
            "cloudevents" => Some(Format::CloudEvents),
            "slack" => Some(Format::Slack),
            "pagerduty" => Some(Format::PagerDuty),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Format::CloudEvents => "cloudevents",
            Format::Slack => "slack",
            Format::PagerDuty => "pagerduty",
        }
    }

    /// The format a URL's host implies: Slack's and PagerDuty's own hosts, else CloudEvents.
    pub(crate) fn by_host(url: &str) -> Format {
        match host_of(url).as_deref() {
            Some("hooks.slack.com") => Format::Slack,
            Some("events.pagerduty.com") => Format::PagerDuty,
            _ => Format::CloudEvents,
        }
    }
}

/// One place notices go, resolved.
#[derive(Clone)]
pub(crate) struct Channel {
    /// The whole URL: never printed, never recorded.
    pub url: String,
    /// `scheme://host`: what the trail and the screen show.
    pub shown: String,
    pub format: Format,
    /// `None`: every kind.
    pub events: Option<HashSet<Kind>>,
    /// PagerDuty's routing key (a secret).
    pub routing_key: Option<String>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("shown", &self.shown)
            .field("format", &self.format)
            .finish()
    }
}

impl Channel {
    pub(crate) fn wants(&self, kind: Kind) -> bool {
        self.events.as_ref().is_none_or(|e| e.contains(&kind))
    }
}

/// Everything the notifier needs from pre-flight.
#[derive(Debug, Clone, Default)]
pub(crate) struct Setup {
    pub channels: Vec<Channel>,
    /// `--notify-timeout`: the longest the tool waits at exit for pending deliveries.
    pub timeout: Duration,
    /// The runbook's `escalate:`: after, to.
    pub escalate: Option<(Duration, String)>,
    /// A resumed run: notices its trail shows were already sent, and how many deliveries.
    pub already: HashSet<Kind>,
    pub sent_before: u64,
    /// The OTLP/HTTP traces URL (`--otlp`, `OTEL_EXPORTER_OTLP_*`), when traces are exported.
    pub otlp: Option<String>,
}

/// The host of an `http(s)://` URL, lowercased, without user info or port.
fn host_of(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        format!("[{}]", v6.split(']').next()?)
    } else {
        host_port.split(':').next()?.to_string()
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// `https://hooks.slack.com` of a webhook URL: scheme and host only (design §15).
pub(crate) fn shown_url(url: &str) -> String {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match (scheme, host_of(url)) {
        (Some(s), Some(h)) => format!("{s}://{h}"),
        _ => "(not a URL)".to_string(),
    }
}

/// Checks a URL without ever echoing it.
fn check_url(url: &str, whence: &str) -> Result<(), Error> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https") if host_of(url).is_some() => Ok(()),
        _ => Err(Error::usage(format!(
            "{whence}: not an http:// or https:// URL with a host (the value is not shown: a webhook URL is a credential)"
        ))),
    }
}

fn read_source(spec: &str, what: &str) -> Result<String, Error> {
    let source = Source::parse(spec).map_err(|e| Error::usage(format!("{what}: {e}")))?;
    let sourced = source
        .read(&ReadContext::new(what))
        .map_err(|e| Error::usage(format!("{what}: {e}")))?;
    for w in sourced.warnings {
        crate::stderr::ewriteln!("runbook: warning: {what}: {w}");
    }
    Ok(sourced.value.trim().to_string())
}

impl Setup {
    /// The channels of the inventory, then those of `--notify`/`RUNBOOK_NOTIFY`.
    pub(crate) fn resolve(
        entries: &[NotifyEntry],
        flags: &[String],
        timeout: Duration,
        escalate: Option<&crate::book::runbook::Escalate>,
        otlp: Option<&str>,
    ) -> Result<Setup, Error> {
        let mut channels = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let what = format!("notify entry {} of the inventory", i + 1);
            let format = match &entry.format {
                Some(f) => Some(Format::parse(&f.value).ok_or_else(|| {
                    Error::usage(format!(
                        "{what}: unknown format `{}`: cloudevents, slack or pagerduty",
                        f.value
                    ))
                })?),
                None => None,
            };
            let url = match (&entry.url, &entry.url_from) {
                (Some(url), None) => url.value.trim().to_string(),
                (None, Some(from)) => read_source(&from.value, &format!("{what}, url_from"))?,
                (None, None) if format == Some(Format::PagerDuty) => PAGERDUTY_URL.to_string(),
                (None, None) => return Err(Error::usage(format!("{what}: needs `url` or `url_from`"))),
                (Some(_), Some(_)) => {
                    return Err(Error::usage(format!(
                        "{what}: give `url` or `url_from`, not both"
                    )));
                }
            };
            check_url(&url, &what)?;
            let format = format.unwrap_or_else(|| Format::by_host(&url));
            let events =
                match &entry.events {
                    None => None,
                    Some(list) => {
                        let mut kinds = HashSet::new();
                        for e in list {
                            kinds.insert(Kind::parse(&e.value).ok_or_else(|| {
                                Error::usage(format!("{what}: unknown event `{}`", e.value))
                            })?);
                        }
                        Some(kinds)
                    }
                };
            let routing_key = match &entry.routing_key_from {
                Some(from) => Some(read_source(&from.value, &format!("{what}, routing_key_from"))?),
                None => None,
            };
            if format == Format::PagerDuty && routing_key.is_none() {
                return Err(Error::usage(format!(
                    "{what}: a PagerDuty channel needs `routing_key_from:` (the integration key, from a secret source)"
                )));
            }
            channels.push(Channel {
                shown: super::shown_url(&url),
                url,
                format,
                events,
                routing_key,
            });
        }
        for url in flags.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
            check_url(url, "--notify")?;
            let format = Format::by_host(url);
            if format == Format::PagerDuty {
                return Err(Error::usage(
                    "--notify: a PagerDuty channel needs a routing key: declare it in the inventory's `notify:` with `routing_key_from:`",
                ));
            }
            channels.push(Channel {
                url: url.to_string(),
                shown: shown_url(url),
                format,
                events: None,
                routing_key: None,
            });
        }
        Ok(Setup {
            channels,
            timeout,
            escalate: escalate.and_then(|e| e.after.get().map(|after| (after, e.to.clone()))),
            already: HashSet::new(),
            sent_before: 0,
            otlp: crate::listen::otlp::endpoint(otlp),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_scheme_and_host_are_shown() {
        assert_eq!(
            shown_url("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            shown_url("http://user:pw@127.0.0.1:8080/x?token=1"),
            "http://127.0.0.1"
        );
        assert_eq!(
            shown_url("HTTPS://Events.PagerDuty.com/v2/enqueue"),
            "https://events.pagerduty.com"
        );
        assert_eq!(shown_url("not a url"), "(not a URL)");
    }

    #[test]
    fn the_format_follows_the_host() {
        assert_eq!(
            Format::by_host("https://hooks.slack.com/services/x"),
            Format::Slack
        );
        assert_eq!(
            Format::by_host("https://events.pagerduty.com/v2/enqueue"),
            Format::PagerDuty
        );
        assert_eq!(Format::by_host("http://127.0.0.1:9/hook"), Format::CloudEvents);
    }
}
