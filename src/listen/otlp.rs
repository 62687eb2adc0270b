//! Traces (design §15): the run as an OpenTelemetry trace over OTLP/HTTP (protobuf), a listener
//! of the Sink like the trail and the notifications. One span for the run (kind SERVER, `RUN
//! <runbook>`), one per step attempt (`<step>`), and one per host of a fleet step
//! (`<step> <host>`), with the CI/CD semantic conventions (`cicd.pipeline.*`) and the
//! `runbook.*` timings. The trace id is derived from the run id, so a resumed run's spans
//! join the same trace.
//!
//! The SDK's batch processor exports from a thread of its own through `UreqClient` (the same
//! blocking client as the notifications): an endpoint that is down or slow costs the run
//! nothing, and at exit the export is given at most `--notify-timeout`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanId, SpanKind, SpanRef, Status, TraceContextExt, TraceId, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};

use crate::book::runbook::Outcome;
use crate::events::{Event, RunOutcome, StepOutcome, StepPresented};

/// Where spans go: `--otlp URL` as given, else `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given,
/// else `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` appended (the OpenTelemetry
/// specification's rules); `None`: no export (also when `OTEL_SDK_DISABLED=true`).
pub(crate) fn endpoint(flag: Option<&str>) -> Option<String> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if let Some(url) = flag.map(str::trim).filter(|u| !u.is_empty()) {
        return Some(url.to_string());
    }
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    if let Some(url) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return Some(url);
    }
    var("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
}

/// The run's trace id: the first 16 bytes of SHA-256(run id).
fn trace_id(run_id: &str) -> TraceId {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(run_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    TraceId::from_bytes(bytes)
}

#[derive(Debug)]
struct RunIds {
    trace: TraceId,
}

impl opentelemetry_sdk::trace::IdGenerator for RunIds {
    fn new_trace_id(&self) -> TraceId {
        self.trace
    }

    fn new_span_id(&self) -> SpanId {
        opentelemetry_sdk::trace::RandomIdGenerator::default().new_span_id()
    }
}

/// The exporter's HTTP client: ureq, blocking, on the batch processor's own thread.
#[derive(Debug)]
struct UreqClient {
    agent: ureq::Agent,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for UreqClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let mut call = self.agent.post(parts.uri.to_string());
        for (name, value) in &parts.headers {
            call = call.header(name.as_str(), value.to_str().unwrap_or_default());
        }
        let mut response = call.send(&body[..])?;
        let status = response.status();
        let body = response.body_mut().with_config().limit(1 << 20).read_to_vec()?;
        Ok(http::Response::builder()
            .status(status)
            .body(bytes::Bytes::from(body))?)
    }
}

/// What the run is, for the spans' attributes.
pub(crate) struct RunFacts {
    pub run_id: String,
    pub runbook: String,
    pub title: String,
    pub mode: &'static str,
    pub operator: String,
    pub rto: Duration,
    pub resumed: bool,
}

struct Open {
    cx: Context,
}

/// The listener.
pub(crate) struct Traces {
    provider: SdkTracerProvider,
    tracer: Tracer,
    facts: RunFacts,
    run: Option<Context>,
    /// Step spans open, by step id; fleet host spans by `(step, host)`.
    steps: HashMap<String, Open>,
    hosts: HashMap<(String, String), Open>,
    /// When each step was last presented: its wait (human time) ends when it starts.
    presented: HashMap<String, SystemTime>,
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// `cicd.pipeline.task.run.result` of a step outcome.
fn task_result(outcome: StepOutcome) -> &'static str {
    match outcome {
        StepOutcome::Ok | StepOutcome::MarkedDone => "success",
        StepOutcome::Failed => "failure",
        StepOutcome::TimedOut => "timeout",
        StepOutcome::Cancelled => "cancellation",
        StepOutcome::Lost => "error",
        StepOutcome::Skipped => "skipped",
    }
}

/// `cicd.pipeline.result` of the run.
/// What a step's span (one host, or the whole fleet) says when the step ends: its result, its
/// outcome and how long it ran.
fn step_finished(span: &SpanRef<'_>, outcome: StepOutcome, duration: Duration) {
    span.set_attribute(KeyValue::new(
        "cicd.pipeline.task.run.result",
        task_result(outcome),
    ));
    span.set_attribute(KeyValue::new("runbook.step.outcome", outcome.as_str()));
    span.set_attribute(KeyValue::new("runbook.exec_ms", ms(duration)));
}

/// A failed step's span: the outcome as the error type, and `message` as the error status.
fn step_failed(span: &SpanRef<'_>, outcome: StepOutcome, message: String) {
    span.set_attribute(KeyValue::new("error.type", outcome.as_str()));
    span.set_status(Status::error(message));
}

fn run_result(outcome: RunOutcome) -> &'static str {
    match outcome {
        RunOutcome::Ended(Outcome::Resolved) => "success",
        RunOutcome::Ended(_) => "failure",
        RunOutcome::Aborted | RunOutcome::Interrupted => "cancellation",
        RunOutcome::Lost => "error",
    }
}

impl Traces {
    /// Builds the exporter (nothing is sent yet). `timeout` bounds each export.
    pub(crate) fn start(endpoint: &str, facts: RunFacts, timeout: Duration) -> Result<Traces, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(3))))
            .max_redirects(0)
            .build()
            .into();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(UreqClient { agent })
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        let resource = opentelemetry_sdk::Resource::builder_empty()
            .with_service_name("runbook")
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("cicd.pipeline.name", facts.runbook.clone()),
                KeyValue::new("cicd.pipeline.run.id", facts.run_id.clone()),
            ])
            .build();
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_id_generator(RunIds {
                trace: trace_id(&facts.run_id),
            })
            .with_batch_exporter(exporter)
            .build();
        let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "runbook");
        Ok(Traces {
            provider,
            tracer,
            facts,
            run: None,
            steps: HashMap::new(),
            hosts: HashMap::new(),
            presented: HashMap::new(),
        })
    }

    fn child(&self, parent: &Context, name: String, attributes: Vec<KeyValue>) -> Context {
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, parent);
        parent.with_span(span)
    }

    /// The span a step's span hangs under: the `call` step of a sub-run's step, else the run.
    fn parent_of(&self, step: &str) -> Context {
        if let Some((call, _)) = step.rsplit_once('/')
            && let Some(open) = self.steps.get(call)
        {
            return open.cx.clone();
        }
        self.run.clone().unwrap_or_default()
    }

    pub(crate) fn handle(&mut self, event: &Event) {
        match event {
            Event::RunStarted { .. } | Event::RunResumed { .. } if self.run.is_none() => {
                let f = &self.facts;
                let mut attributes = vec![
                    KeyValue::new("cicd.pipeline.name", f.runbook.clone()),
                    KeyValue::new("cicd.pipeline.run.id", f.run_id.clone()),
                    KeyValue::new("cicd.pipeline.action.name", "RUN"),
                    KeyValue::new("runbook.title", f.title.clone()),
                    KeyValue::new("runbook.mode", f.mode),
                    KeyValue::new("runbook.operator", f.operator.clone()),
                    KeyValue::new("runbook.rto_ms", ms(f.rto)),
                ];
                if f.resumed {
                    attributes.push(KeyValue::new("runbook.resumed", true));
                }
                if let Event::RunStarted { since_offset, .. } = event {
                    attributes.push(KeyValue::new("runbook.since_offset_ms", ms(*since_offset)));
                }
                let span = self
                    .tracer
                    .span_builder(format!("RUN {}", f.runbook))
                    .with_kind(SpanKind::Server)
                    .with_attributes(attributes)
                    .start(&self.tracer);
                self.run = Some(Context::new().with_span(span));
            }
            Event::StepPresented(StepPresented { step, .. }) => {
                self.presented.insert(step.clone(), SystemTime::now());
            }
            Event::StepStarted {
                step,
                host,
                attempt,
                target,
                fleet,
                ..
            } => {
                let wait = self.presented.remove(step).and_then(|at| at.elapsed().ok());
                let mut attributes = vec![
                    KeyValue::new("cicd.pipeline.task.name", step.clone()),
                    KeyValue::new(
                        "cicd.pipeline.task.run.id",
                        format!("{}/{step}#{attempt}", self.facts.run_id),
                    ),
                    KeyValue::new("runbook.step.attempt", i64::from(*attempt)),
                ];
                if let Some(t) = target {
                    attributes.push(KeyValue::new("runbook.step.target_ms", ms(*t)));
                }
                // The human wait (presented → started) belongs to the step attempt: on a
                // fleet step, to its span, not to the span of whichever host started first.
                let wait = wait.map(|w| KeyValue::new("runbook.wait_ms", ms(w)));
                match fleet {
                    None => {
                        attributes.extend(wait);
                        attributes.push(KeyValue::new("runbook.host", host.clone()));
                        let cx = self.child(&self.parent_of(step), step.clone(), attributes);
                        if let Some(old) = self.steps.insert(step.clone(), Open { cx }) {
                            old.cx.span().end();
                        }
                    }
                    Some(fleet) => {
                        if !self.steps.contains_key(step) {
                            let mut step_attributes = attributes.clone();
                            step_attributes.extend(wait);
                            step_attributes.push(KeyValue::new("runbook.fleet", fleet.clone()));
                            let cx = self.child(&self.parent_of(step), step.clone(), step_attributes);
                            self.steps.insert(step.clone(), Open { cx });
                        }
                        let parent = self.steps[step].cx.clone();
                        attributes.push(KeyValue::new("runbook.host", host.clone()));
                        let cx = self.child(&parent, format!("{step} {host}"), attributes);
                        self.hosts.insert((step.clone(), host.clone()), Open { cx });
                    }
                }
            }
            Event::StepFinished(f) => {
                let open = match f.fleet {
                    None => self.steps.remove(&f.step),
                    Some(_) => self.hosts.remove(&(f.step.clone(), f.host.clone())),
                };
                if let Some(open) = open {
                    let span = open.cx.span();
                    step_finished(&span, f.outcome, f.duration);
                    if let Some(code) = f.exit {
                        span.set_attribute(KeyValue::new("runbook.exit_code", i64::from(code)));
                    }
                    if !f.outcome.succeeded() {
                        let why = f.reason.clone();
                        step_failed(&span, f.outcome, why.unwrap_or_else(|| f.outcome.as_str().into()));
                    }
                    span.end();
                }
            }
            Event::FleetFinished(e) => {
                let (step, outcome, duration, ok, failed, not_started) =
                    (&e.step, &e.outcome, &e.duration, &e.ok, &e.failed, &e.not_started);
                if let Some(open) = self.steps.remove(step) {
                    let span = open.cx.span();
                    step_finished(&span, *outcome, *duration);
                    span.set_attribute(KeyValue::new("runbook.hosts_ok", ok.len() as i64));
                    span.set_attribute(KeyValue::new("runbook.hosts_failed", failed.len() as i64));
                    span.set_attribute(KeyValue::new(
                        "runbook.hosts_not_started",
                        not_started.len() as i64,
                    ));
                    if !outcome.succeeded() {
                        step_failed(&span, *outcome, format!("failed on {} host(s)", failed.len()));
                    }
                    span.end();
                }
            }
            Event::RunFinished(e) => {
                let (outcome, elapsed, rto, verdict) = (&e.outcome, &e.elapsed, &e.rto, &e.verdict);
                self.end_open();
                if let Some(cx) = self.run.take() {
                    let span = cx.span();
                    span.set_attribute(KeyValue::new("cicd.pipeline.result", run_result(*outcome)));
                    span.set_attribute(KeyValue::new("runbook.outcome", outcome.as_str()));
                    span.set_attribute(KeyValue::new("runbook.elapsed_ms", ms(*elapsed)));
                    span.set_attribute(KeyValue::new("runbook.within_rto", elapsed <= rto));
                    if let Some(v) = verdict {
                        span.set_attribute(KeyValue::new(
                            "runbook.verdict",
                            if v.pass { "PASS" } else { "FAIL" },
                        ));
                    }
                    if run_result(*outcome) != "success" {
                        span.set_attribute(KeyValue::new("error.type", outcome.as_str()));
                        span.set_status(Status::error(format!("the run ended {}", outcome.as_str())));
                    }
                    span.end();
                }
            }
            _ => {}
        }
    }

    fn end_open(&mut self) {
        for (_, open) in self.hosts.drain() {
            open.cx.span().end();
        }
        for (_, open) in self.steps.drain() {
            open.cx.span().end();
        }
    }

    /// At exit: ends what is still open (a run stopped without a seal), and exports what is
    /// pending within `timeout`. Returns the exporter's complaint, if any.
    pub(crate) fn finish(mut self, timeout: Duration) -> Option<String> {
        self.end_open();
        if let Some(cx) = self.run.take() {
            cx.span().set_attribute(KeyValue::new("runbook.open", true));
            cx.span().end();
        }
        self.provider
            .shutdown_with_timeout(timeout)
            .err()
            .map(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_id_is_the_run_ids() {
        assert_eq!(trace_id("a"), trace_id("a"));
        assert_ne!(trace_id("a"), trace_id("b"));
    }
}
