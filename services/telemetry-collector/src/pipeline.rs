//! What happens to accepted data: validation, forwarding, the stores and span metrics, in that order.
//!
//! Both receivers hand every decoded request to one [`Pipeline`]. Items that are invalid on their
//! own (a span without a proper trace id) are removed and reported back through `partial_success`;
//! the rest are offered to the upstream queue first, because that is the only step that can refuse
//! the whole request: a refusal then changes nothing, and the client retries the same request.
//! Only then are the stores and span metrics updated, which never refuse.
//!
//! Every item is counted once as accepted or refused, per transport, under the OpenTelemetry
//! Collector's names (`otelcol_receiver_{accepted,refused}_{spans,metric_points,log_records}_total`).

use std::sync::Arc;
use std::time::Duration;

use axiom25_observability::metrics::MetricsHandle;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::forward::{self, Forwarder, Forwarders, Logs, Metrics, PartialRejection, Signal, Traces};
use crate::limiter::MemoryLimiter;
use crate::metric_store::MetricStore;
use crate::spanmetrics::SpanMetrics;
use crate::store::{LogStore, SpanStore};

/// The receiver a request arrived on, as the `transport` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
}

impl Transport {
    const fn label(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::Http => "http",
        }
    }
}

/// A whole request refused; nothing of it was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The process is above its soft memory limit: retry later.
    #[error("the collector is above its memory limit; retry later")]
    MemoryPressure {
        /// Suggested delay.
        retry_after: Duration,
    },
    /// The upstream forwarding queue is full: retry later.
    #[error("the collector's upstream queue is full; retry later")]
    QueueFull {
        /// Suggested delay.
        retry_after: Duration,
    },
    /// The collector is shutting down: retry against another replica.
    #[error("the collector is shutting down")]
    ShuttingDown,
    /// More items than the upstream queue can ever hold: do not retry.
    #[error("the request holds {items} items, more than the upstream queue's capacity of {capacity}")]
    TooLarge {
        /// Items in the request.
        items: usize,
        /// `forward.queue_capacity_items`.
        capacity: usize,
    },
}

impl Refusal {
    /// Suggested delay before the client retries; `None` when it must not retry.
    #[must_use]
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::MemoryPressure { retry_after } | Self::QueueFull { retry_after } => Some(*retry_after),
            Self::ShuttingDown => Some(Duration::from_secs(1)),
            Self::TooLarge { .. } => None,
        }
    }

    const fn reason(&self) -> &'static str {
        match self {
            Self::MemoryPressure { .. } => "memory_pressure",
            Self::QueueFull { .. } => "queue_full",
            Self::ShuttingDown => "shutting_down",
            Self::TooLarge { .. } => "too_large",
        }
    }
}

impl From<forward::Refusal> for Refusal {
    fn from(refusal: forward::Refusal) -> Self {
        match refusal {
            forward::Refusal::Backpressure(backpressure) => Self::QueueFull { retry_after: backpressure.retry_after },
            forward::Refusal::TooLarge { items, capacity } => Self::TooLarge { items, capacity },
            forward::Refusal::ShuttingDown => Self::ShuttingDown,
        }
    }
}

/// Items of an accepted request that were rejected one by one (`partial_success`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejected {
    /// How many items were rejected.
    pub items: i64,
    /// Why, for the client; empty when nothing was rejected.
    pub message: String,
}

impl Rejected {
    /// What the answer's `partial_success` says: nothing when no item was rejected.
    #[must_use]
    pub fn into_partial(self) -> Option<PartialRejection> {
        (self.items > 0).then_some(PartialRejection { rejected: self.items, message: self.message })
    }
}

/// Where accepted data is kept; the query API and the exposition read the same stores.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Recent traces.
    pub spans: Arc<SpanStore>,
    /// Recent log records.
    pub logs: Arc<LogStore>,
    /// RED metrics derived from spans.
    pub span_metrics: Arc<SpanMetrics>,
    /// Received metrics, for the exposition.
    pub metric_store: Arc<MetricStore>,
}

/// Where accepted data goes. Shared by every receiver task.
#[derive(Debug)]
pub struct Pipeline {
    limiter: MemoryLimiter,
    stores: Stores,
    forwarders: Forwarders,
    metrics: MetricsHandle,
}

/// A signal the pipeline takes in: what keeping one of its requests means.
pub trait Intake: Signal {
    /// Validates, forwards and keeps `request`, inside the pipeline's metrics scope.
    ///
    /// # Errors
    /// [`Refusal`] when the whole request must be retried later; nothing was kept.
    fn take(pipeline: &Pipeline, request: Self::Request, transport: Transport) -> Result<Rejected, Refusal>;
}

impl Pipeline {
    /// A pipeline feeding the given stores and forwarders, counting into `metrics` (on whichever
    /// thread it runs: large HTTP bodies are decoded on the blocking pool).
    #[must_use]
    pub const fn new(limiter: MemoryLimiter, stores: Stores, forwarders: Forwarders, metrics: MetricsHandle) -> Self {
        Self { limiter, stores, forwarders, metrics }
    }

    /// The memory limiter receivers consult before reading a body.
    #[must_use]
    pub const fn limiter(&self) -> &MemoryLimiter {
        &self.limiter
    }

    /// Takes an export request of signal `S`.
    ///
    /// # Errors
    /// [`Refusal`] when the whole request must be retried later; nothing was kept.
    pub fn export<S: Intake>(&self, request: S::Request, transport: Transport) -> Result<Rejected, Refusal> {
        self.metrics.in_scope(|| S::take(self, request, transport))
    }

    /// Removes the items that are invalid on their own, offers the rest upstream and, once that
    /// cannot refuse any more, hands them to `keep`.
    fn take_valid<S: Signal>(
        forwarder: Option<&Forwarder<S>>,
        mut request: S::Request,
        transport: Transport,
        retain_valid: fn(&mut S::Request) -> Rejected,
        keep: impl FnOnce(&S::Request),
    ) -> Result<Rejected, Refusal> {
        let total = S::items(&request) as u64;
        let rejected = retain_valid(&mut request);
        let kept = total - rejected.items as u64;
        offer_upstream(forwarder, &request, kept, total, transport)?;
        keep(&request);
        count_items::<S>(transport, kept, rejected.items as u64);
        Ok(rejected)
    }
}

impl Intake for Traces {
    fn take(pipeline: &Pipeline, request: Self::Request, transport: Transport) -> Result<Rejected, Refusal> {
        let stores = &pipeline.stores;
        Pipeline::take_valid(pipeline.forwarders.traces.as_ref(), request, transport, retain_valid_spans, |request| {
            stores.span_metrics.record(request);
            stores.spans.insert(request);
        })
    }
}

impl Intake for Logs {
    fn take(pipeline: &Pipeline, request: Self::Request, transport: Transport) -> Result<Rejected, Refusal> {
        let logs = &pipeline.stores.logs;
        Pipeline::take_valid(
            pipeline.forwarders.logs.as_ref(),
            request,
            transport,
            retain_valid_log_records,
            |request| {
                logs.insert(request);
            },
        )
    }
}

impl Intake for Metrics {
    fn take(pipeline: &Pipeline, request: Self::Request, transport: Transport) -> Result<Rejected, Refusal> {
        let total = Self::items(&request) as u64;
        let forwarder = pipeline.forwarders.metrics.as_ref();
        offer_upstream(forwarder, &request, total, total, transport)?;
        let refused_locally = pipeline.stores.metric_store.record(&request);
        // Points this collector cannot expose are still forwarded when an upstream is set: they
        // are not lost, so the client is told only when no upstream takes them either.
        let rejected = if forwarder.is_some() {
            Rejected::default()
        } else {
            Rejected { items: refused_locally.points, message: refused_locally.message }
        };
        count_items::<Self>(transport, total - rejected.items as u64, rejected.items as u64);
        Ok(rejected)
    }
}

/// Counts a request refused whole, under its signal, transport and reason.
pub fn count_refused_request(signal: &'static str, transport: Transport, reason: &'static str) {
    metrics::counter!(
        "axiom25_collector_requests_refused_total",
        "signal" => signal, "transport" => transport.label(), "reason" => reason
    )
    .increment(1);
}

/// Offers `request` (`kept` valid items of `total`) to the signal's upstream queue, if
/// forwarding is on: the only step that may refuse, so it runs before the stores change. A
/// refusal counts all `total` items and the request as refused.
fn offer_upstream<S: Signal>(
    forwarder: Option<&Forwarder<S>>,
    request: &S::Request,
    kept: u64,
    total: u64,
    transport: Transport,
) -> Result<(), Refusal> {
    let offered = match forwarder {
        Some(forwarder) if kept > 0 => forwarder.offer(request).map_err(Refusal::from),
        _ => Ok(()),
    };
    offered.inspect_err(|refusal| {
        count_items::<S>(transport, 0, total);
        count_refused_request(S::NAME, transport, refusal.reason());
    })
}

/// Counts a signal's items accepted and refused.
fn count_items<S: Signal>(transport: Transport, accepted: u64, refused: u64) {
    let transport = transport.label();
    metrics::counter!(S::ACCEPTED_METRIC, "receiver" => "otlp", "transport" => transport).increment(accepted);
    metrics::counter!(S::REFUSED_METRIC, "receiver" => "otlp", "transport" => transport).increment(refused);
}

fn is_valid_id(id: &[u8], len: usize) -> bool {
    id.len() == len && id.iter().any(|&byte| byte != 0)
}

/// Removes spans whose ids break the OTLP rules and says how many and why.
fn retain_valid_spans(request: &mut ExportTraceServiceRequest) -> Rejected {
    let mut rejected = Rejected::default();
    for scope in request.resource_spans.iter_mut().flat_map(|r| &mut r.scope_spans) {
        scope.spans.retain(|span| {
            let problem = if !is_valid_id(&span.trace_id, 16) {
                "trace_id must be 16 bytes, not all zero"
            } else if !is_valid_id(&span.span_id, 8) {
                "span_id must be 8 bytes, not all zero"
            } else if !(span.parent_span_id.is_empty() || span.parent_span_id.len() == 8) {
                "parent_span_id must be empty or 8 bytes"
            } else {
                return true;
            };
            note_rejection(&mut rejected, "span", &span.name, problem);
            false
        });
    }
    rejected
}

/// Removes log records whose optional ids have the wrong length and says how many and why.
fn retain_valid_log_records(request: &mut ExportLogsServiceRequest) -> Rejected {
    let mut rejected = Rejected::default();
    for scope in request.resource_logs.iter_mut().flat_map(|r| &mut r.scope_logs) {
        scope.log_records.retain(|record| {
            let problem = if !(record.trace_id.is_empty() || record.trace_id.len() == 16) {
                "trace_id must be empty or 16 bytes"
            } else if !(record.span_id.is_empty() || record.span_id.len() == 8) {
                "span_id must be empty or 8 bytes"
            } else {
                return true;
            };
            note_rejection(&mut rejected, "log record", "", problem);
            false
        });
    }
    rejected
}

/// Counts one rejected item; the message names the first and how many followed.
fn note_rejection(rejected: &mut Rejected, kind: &str, name: &str, problem: &str) {
    rejected.items += 1;
    if rejected.items == 1 {
        let name: String = name.chars().take(100).collect();
        rejected.message =
            if name.is_empty() { format!("{kind}: {problem}") } else { format!("{kind} {name:?}: {problem}") };
    } else {
        let first = rejected.message.split(" (and ").next().unwrap_or_default().to_owned();
        rejected.message = format!("{first} (and {} more rejected)", rejected.items - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn span(name: &str, trace_id: Vec<u8>, span_id: Vec<u8>) -> Span {
        Span { name: name.into(), trace_id, span_id, ..Span::default() }
    }

    fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
                ..ResourceSpans::default()
            }],
        }
    }

    #[test]
    fn spans_with_bad_ids_are_removed_and_the_first_is_named() {
        let mut request = traces(vec![
            span("good", vec![1; 16], vec![2; 8]),
            span("short trace", vec![1; 15], vec![2; 8]),
            span("zero span", vec![1; 16], vec![0; 8]),
            Span { parent_span_id: vec![3; 4], ..span("bad parent", vec![1; 16], vec![2; 8]) },
        ]);
        let rejected = retain_valid_spans(&mut request);
        assert_eq!(rejected.items, 3);
        assert_eq!(Traces::items(&request), 1);
        assert_eq!(
            rejected.message,
            "span \"short trace\": trace_id must be 16 bytes, not all zero (and 2 more rejected)"
        );
    }

    #[test]
    fn log_records_may_omit_ids_but_not_carry_malformed_ones() {
        let record = |trace_id: Vec<u8>, span_id: Vec<u8>| LogRecord { trace_id, span_id, ..LogRecord::default() };
        let mut request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        record(vec![], vec![]),
                        record(vec![1; 16], vec![2; 8]),
                        record(vec![1; 3], vec![]),
                    ],
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        let rejected = retain_valid_log_records(&mut request);
        assert_eq!((rejected.items, Logs::items(&request)), (1, 2));
        assert_eq!(rejected.message, "log record: trace_id must be empty or 16 bytes");
    }
}
