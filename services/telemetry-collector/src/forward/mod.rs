//! Upstream OTLP/gRPC forwarding: one bounded queue and retry loop per signal and destination.
//!
//! Receivers [`Forwarder::offer`] requests without waiting; a background export loop per
//! destination merges queued requests into batches and exports them, a few at a time, retrying
//! what the OTLP specification calls retryable. Every accepted item ends up sent, dropped with a
//! counted reason, or still queued: `accepted = sent + dropped + queued` whenever no export is in
//! flight.

mod encoded;
mod queue;
mod retry;
mod settings;
mod signal;

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use metrics::{Counter, Gauge, counter, describe_counter, describe_gauge, gauge};
use prost::Message as _;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

pub use self::encoded::Encoded;
use self::queue::{ExportQueue, PushError};
use self::retry::{Backoff, Failure, classify};
pub use self::settings::{ForwardSettings, FullPolicy};
pub use self::signal::{Logs, Metrics, PartialRejection, Signal, Traces};

/// Why accepted items were lost: the `reason` label of `axiom25_collector_dropped_items_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The queue was full and the drop policy is configured.
    QueueFull,
    /// The upstream kept failing for longer than `max_retry_elapsed_ms`.
    RetriesExhausted,
    /// The upstream answered with a non-retryable error.
    Rejected,
    /// The upstream accepted the request but rejected these items (`partial_success`).
    UpstreamPartial,
    /// Still queued or in flight when the shutdown deadline came.
    Shutdown,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [Self; 5] =
        [Self::QueueFull, Self::RetriesExhausted, Self::Rejected, Self::UpstreamPartial, Self::Shutdown];

    /// The metric label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::RetriesExhausted => "retries_exhausted",
            Self::Rejected => "rejected",
            Self::UpstreamPartial => "upstream_partial",
            Self::Shutdown => "shutdown",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Item counts of one forwarder since it started; they mirror its metrics.
#[derive(Debug, Default)]
pub struct ForwardStats {
    accepted: AtomicU64,
    refused: AtomicU64,
    sent: AtomicU64,
    dropped: [AtomicU64; 5],
}

impl ForwardStats {
    /// Items [`Forwarder::offer`] accepted (including those the drop policy then dropped).
    #[must_use]
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Items [`Forwarder::offer`] refused: the sender still has them.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Items the upstream accepted.
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Accepted items lost for `reason`.
    #[must_use]
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()].load(Ordering::Relaxed)
    }

    /// Accepted items lost for any reason.
    #[must_use]
    pub fn dropped_total(&self) -> u64 {
        DropReason::ALL.iter().map(|&reason| self.dropped(reason)).sum()
    }
}

/// The queue is full: the sender should retry after `retry_after` (gRPC UNAVAILABLE with
/// RetryInfo, HTTP 503 with `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the forwarding queue is full, retry after {retry_after:?}")]
pub struct Backpressure {
    /// Suggested wait: the export loop's current backoff, at least the initial one.
    pub retry_after: Duration,
}

/// Why [`Forwarder::offer`] did not take a request; the sender keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refusal {
    /// Full for now: retry later.
    #[error(transparent)]
    Backpressure(#[from] Backpressure),
    /// Larger than the whole queue: it will never fit (gRPC RESOURCE_EXHAUSTED without RetryInfo,
    /// HTTP 413).
    #[error("the request holds {items} items, more than the forwarding queue's capacity of {capacity}")]
    TooLarge {
        /// Items in the request.
        items: usize,
        /// `queue_capacity_items`.
        capacity: usize,
    },
    /// Forwarding is shutting down (gRPC UNAVAILABLE, HTTP 503).
    #[error("forwarding is shutting down")]
    ShuttingDown,
}

/// A forwarder could not be started.
#[derive(Debug, Error)]
pub enum ForwardError {
    /// The endpoint is not a URI tonic can connect to.
    #[error("invalid {signal} upstream endpoint {endpoint:?}: {source}")]
    InvalidEndpoint {
        /// `traces`, `metrics` or `logs`.
        signal: &'static str,
        /// The configured endpoint.
        endpoint: String,
        /// What tonic objected to.
        source: tonic::transport::Error,
    },
}

/// What happened to queued and in-flight items between the start of a shutdown and its end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Items the upstream accepted.
    pub sent: u64,
    /// Items lost, whatever the reason (mostly `shutdown`: the deadline came first).
    pub dropped: u64,
}

impl std::ops::Add for FlushReport {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self { sent: self.sent + other.sent, dropped: self.dropped + other.dropped }
    }
}

/// Exports one destination has in flight at once: enough to overlap the round trips to an
/// upstream on the same network and use both cores for encoding, few enough that a failing
/// upstream meets only a handful of retries at a time.
const EXPORTS_IN_FLIGHT: usize = 4;

/// Forwards one signal to one upstream. Clones share the queue; see [`Forwarder::shutdown`].
pub struct Forwarder<S: Signal> {
    handle: Arc<Handle<S>>,
}

impl<S: Signal> Clone for Forwarder<S> {
    fn clone(&self) -> Self {
        Self { handle: Arc::clone(&self.handle) }
    }
}

impl<S: Signal> fmt::Debug for Forwarder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forwarder")
            .field("exporter", &S::EXPORTER)
            .field("queue_items", &self.queue_items())
            .finish_non_exhaustive()
    }
}

/// Owned by the forwarder's clones; the export loop only holds [`Shared`], so dropping the last
/// clone without a shutdown is noticed here.
struct Handle<S: Signal> {
    shared: Arc<Shared<S>>,
    export_loop: Mutex<Option<JoinHandle<()>>>,
}

/// State shared by the senders and the export loop.
struct Shared<S: Signal> {
    queue: ExportQueue<Bytes>,
    capacity: usize,
    policy: FullPolicy,
    stats: ForwardStats,
    metrics: ExporterMetrics,
    /// The export loop's current backoff, suggested to senders that meet a full queue.
    retry_hint_ms: AtomicU64,
    /// `None` until shutdown; then the instant after which nothing more is attempted.
    deadline: watch::Sender<Option<Instant>>,
    /// The queue holds `S::Request`s encoded; this keeps the signal in the type.
    signal: PhantomData<fn() -> S>,
}

impl<S: Signal> Forwarder<S> {
    /// Starts forwarding to `endpoint` (`http://host:port`) on the current tokio runtime. The
    /// connection is made lazily, so an upstream that is down now is retried like any failure.
    ///
    /// # Errors
    /// The endpoint is not a valid URI.
    pub fn start(endpoint: &str, settings: &ForwardSettings) -> Result<Self, ForwardError> {
        Self::start_with_exports_in_flight(endpoint, settings, EXPORTS_IN_FLIGHT)
    }

    fn start_with_exports_in_flight(
        endpoint: &str,
        settings: &ForwardSettings,
        exports_in_flight: usize,
    ) -> Result<Self, ForwardError> {
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|source| ForwardError::InvalidEndpoint { signal: S::NAME, endpoint: endpoint.to_owned(), source })?
            .connect_timeout(settings.timeout())
            .tcp_nodelay(true)
            .connect_lazy();
        describe_metrics::<S>();
        let metrics = ExporterMetrics::new::<S>();
        metrics.queue_capacity.set(settings.queue_capacity_items as f64);
        let size = gauge!("otelcol_exporter_queue_size", "exporter" => S::EXPORTER, "data_type" => S::NAME);
        let shared = Arc::new(Shared {
            queue: ExportQueue::new(settings.queue_capacity_items, size),
            capacity: settings.queue_capacity_items,
            policy: settings.full_policy,
            stats: ForwardStats::default(),
            metrics,
            retry_hint_ms: AtomicU64::new(settings.initial_backoff_ms),
            deadline: watch::Sender::new(None),
            signal: PhantomData,
        });
        let export_loop = ExportLoop {
            deadline: shared.deadline.subscribe(),
            shared: Arc::clone(&shared),
            channel,
            timeout: settings.timeout(),
            initial_backoff: Duration::from_millis(settings.initial_backoff_ms),
            max_backoff: Duration::from_millis(settings.max_backoff_ms),
            max_retry_elapsed: Duration::from_millis(settings.max_retry_elapsed_ms),
            max_batch_items: settings.max_batch_items,
            exports_in_flight,
        };
        let export_loop = tokio::spawn(export_loop.run());
        Ok(Self { handle: Arc::new(Handle { shared, export_loop: Mutex::new(Some(export_loop)) }) })
    }

    /// Queues `request`, encoded, for the upstream without waiting.
    ///
    /// It is encoded here, on the receiver's task, so encoding spreads over every core, the queue
    /// holds the compact wire form instead of decoded structures, and merging queued requests
    /// into one export is a concatenation of their bytes (protobuf concatenates repeated fields).
    ///
    /// A full queue refuses it ([`Refusal::Backpressure`]) under the default policy, so the sender
    /// keeps the data and retries later; nothing is lost here. Under [`FullPolicy::Drop`] it is
    /// accepted and dropped, counted with reason `queue_full`.
    ///
    /// # Errors
    /// See [`Refusal`]: the request was not taken and the sender still owns its data.
    pub fn offer(&self, request: &S::Request) -> Result<(), Refusal> {
        let shared = &self.handle.shared;
        let items = S::items(request);
        if items == 0 {
            return Ok(());
        }
        // Waiting for room here would hold the receiver's task, its connection and the decoded
        // request while the upstream is slow, and memory would grow with every waiting sender.
        // The sender already holds the data and OTLP clients know how to wait: refusing with a
        // retry delay moves the waiting to where it costs us nothing.
        //
        // A request that exceeds the whole capacity would be refused again on every retry, so it
        // is refused for good instead of with backpressure.
        let refusal = if items > shared.capacity {
            Refusal::TooLarge { items, capacity: shared.capacity }
        } else {
            match shared.queue.push(Bytes::from(request.encode_to_vec()), items) {
                Ok(()) => {
                    shared.stats.accepted.fetch_add(items as u64, Ordering::Relaxed);
                    return Ok(());
                }
                Err(PushError::Full) if shared.policy == FullPolicy::Drop => {
                    shared.stats.accepted.fetch_add(items as u64, Ordering::Relaxed);
                    shared.lose(items, DropReason::QueueFull, false);
                    return Ok(());
                }
                // The loop's current backoff says how soon room may appear: right after a
                // success it is the initial backoff, during an outage it grows with the retries.
                Err(PushError::Full) => Refusal::Backpressure(Backpressure {
                    retry_after: Duration::from_millis(shared.retry_hint_ms.load(Ordering::Relaxed)),
                }),
                Err(PushError::Closed) => Refusal::ShuttingDown,
            }
        };
        shared.stats.refused.fetch_add(items as u64, Ordering::Relaxed);
        shared.metrics.enqueue_failed.increment(items as u64);
        Err(refusal)
    }

    /// Items waiting in the queue (not counting batches in flight).
    #[must_use]
    pub fn queue_items(&self) -> usize {
        self.handle.shared.queue.items()
    }

    /// Item counts since start.
    #[must_use]
    pub fn stats(&self) -> &ForwardStats {
        &self.handle.shared.stats
    }

    /// Stops taking requests and keeps exporting what is queued until the queue is empty or
    /// `deadline` comes; what is still queued or in flight then is dropped with reason
    /// `shutdown` and logged. Other clones' offers are refused from now on. A second call, from
    /// another clone, waits for nothing and reports nothing.
    pub async fn shutdown(self, deadline: Instant) -> FlushReport {
        let shared = &self.handle.shared;
        let Some(export_loop) = self.handle.take_export_loop() else {
            return FlushReport::default();
        };
        let (sent_before, dropped_before) = (shared.stats.sent(), shared.stats.dropped_total());
        // Closing the queue lets the loop run until the queue is empty, exporting and retrying
        // as usual; the deadline bounds that: every wait and every export in flight is raced
        // against it, and at the deadline whatever is left is counted and the loop returns.
        // The deadline goes first, so the loop sees it when the closed queue wakes it up.
        shared.deadline.send_replace(Some(deadline));
        shared.queue.close();
        if let Err(error) = export_loop.await {
            tracing::error!(exporter = S::EXPORTER, %error, "Forwarding export loop failed");
        }
        // Only left over if the loop died: it drains the queue itself when it finishes.
        let left = shared.queue.drain();
        if left > 0 {
            shared.lose(left, DropReason::Shutdown, false);
        }
        let report = FlushReport {
            sent: shared.stats.sent() - sent_before,
            dropped: shared.stats.dropped_total() - dropped_before,
        };
        if report.dropped > 0 {
            tracing::error!(
                exporter = S::EXPORTER,
                sent = report.sent,
                dropped = report.dropped,
                dropped_at_deadline = shared.stats.dropped(DropReason::Shutdown),
                "Forwarding queue not fully delivered at shutdown; items lost"
            );
        } else {
            tracing::info!(exporter = S::EXPORTER, sent = report.sent, "Forwarding queue flushed");
        }
        report
    }
}

impl<S: Signal> Handle<S> {
    fn take_export_loop(&self) -> Option<JoinHandle<()>> {
        self.export_loop.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl<S: Signal> Drop for Handle<S> {
    /// Every clone is gone without a shutdown (a test, or a start-up that failed half-way): stop
    /// the loop at once rather than leave it retrying forever; what it held counts as `shutdown`.
    fn drop(&mut self) {
        if self.take_export_loop().is_some() {
            self.shared.deadline.send_replace(Some(Instant::now()));
            self.shared.queue.close();
        }
    }
}

impl<S: Signal> Shared<S> {
    fn record_sent(&self, items: usize) {
        self.stats.sent.fetch_add(items as u64, Ordering::Relaxed);
        self.metrics.sent.increment(items as u64);
    }

    /// Counts `items` lost for `reason`; `attempted` says whether an export of them was tried,
    /// which is what the Collector's `send_failed` counts (`enqueue_failed` counts the queue's).
    fn lose(&self, items: usize, reason: DropReason, attempted: bool) {
        let items = items as u64;
        self.stats.dropped[reason.index()].fetch_add(items, Ordering::Relaxed);
        self.metrics.dropped[reason.index()].increment(items);
        if reason == DropReason::QueueFull {
            self.metrics.enqueue_failed.increment(items);
        } else if attempted {
            self.metrics.send_failed.increment(items);
        }
    }
}

/// Metric handles, resolved once so the hot path does no registry look-ups.
struct ExporterMetrics {
    sent: Counter,
    send_failed: Counter,
    enqueue_failed: Counter,
    dropped: [Counter; 5],
    queue_capacity: Gauge,
}

impl ExporterMetrics {
    fn new<S: Signal>() -> Self {
        let exporter = S::EXPORTER;
        Self {
            sent: counter!(S::SENT_METRIC, "exporter" => exporter),
            send_failed: counter!(S::SEND_FAILED_METRIC, "exporter" => exporter),
            enqueue_failed: counter!(S::ENQUEUE_FAILED_METRIC, "exporter" => exporter),
            dropped: DropReason::ALL.map(|reason| {
                counter!("axiom25_collector_dropped_items_total", "signal" => S::NAME, "reason" => reason.as_str())
            }),
            queue_capacity: gauge!("otelcol_exporter_queue_capacity", "exporter" => exporter, "data_type" => S::NAME),
        }
    }
}

fn describe_metrics<S: Signal>() {
    describe_counter!(S::SENT_METRIC, "Items the upstream accepted.");
    describe_counter!(S::SEND_FAILED_METRIC, "Items given up after trying to send them upstream.");
    describe_counter!(S::ENQUEUE_FAILED_METRIC, "Items refused or dropped because the forwarding queue was full.");
    describe_gauge!("otelcol_exporter_queue_size", "Items waiting in the forwarding queue.");
    describe_gauge!("otelcol_exporter_queue_capacity", "Items the forwarding queue can hold.");
    describe_counter!(
        "axiom25_collector_dropped_items_total",
        "Accepted items lost, by signal and reason (queue_full, retries_exhausted, rejected, upstream_partial, shutdown)."
    );
}

/// The background task of one destination: takes batches off the queue and exports them.
struct ExportLoop<S: Signal> {
    shared: Arc<Shared<S>>,
    channel: Channel,
    deadline: watch::Receiver<Option<Instant>>,
    timeout: Duration,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retry_elapsed: Duration,
    max_batch_items: usize,
    exports_in_flight: usize,
}

impl<S: Signal> Clone for ExportLoop<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            channel: self.channel.clone(),
            deadline: self.deadline.clone(),
            timeout: self.timeout,
            initial_backoff: self.initial_backoff,
            max_backoff: self.max_backoff,
            max_retry_elapsed: self.max_retry_elapsed,
            max_batch_items: self.max_batch_items,
            exports_in_flight: self.exports_in_flight,
        }
    }
}

impl<S: Signal> ExportLoop<S> {
    async fn run(self) {
        // Up to `exports_in_flight` batches at once, so throughput is not bounded by one round trip
        // to the upstream and encoding runs on every core. A batch is taken off the queue only when
        // a slot is free: with every slot busy the queue, not more exports, absorbs bursts, so a
        // slow or failing upstream meets at most that many exports (and retries) at a time. Each
        // delivery counts its own outcome, so `accepted = sent + dropped + queued + in flight`.
        let mut in_flight = JoinSet::new();
        loop {
            while in_flight.try_join_next().is_some() {}
            if in_flight.len() >= self.exports_in_flight {
                in_flight.join_next().await;
                continue;
            }
            if self.deadline_passed() {
                break;
            }
            let Some((requests, items)) = self.shared.queue.take_batch(self.max_batch_items).await else {
                break;
            };
            let batch = concatenate(requests);
            let mut delivery = self.clone();
            in_flight.spawn(async move { delivery.deliver(batch, items).await });
        }
        // Every delivery races the shutdown deadline itself, so this wait is bounded by it.
        while in_flight.join_next().await.is_some() {}
        // The deadline came with requests still queued (or the queue was closed and is empty).
        let left = self.shared.queue.drain();
        if left > 0 {
            self.shared.lose(left, DropReason::Shutdown, false);
        }
    }

    /// Exports `batch` until it is accepted, refused for good, out of retry time, or the shutdown
    /// deadline comes; every outcome is counted.
    async fn deliver(&mut self, batch: Bytes, items: usize) {
        let first_attempt = Instant::now();
        let mut backoff = Backoff::new(self.initial_backoff, self.max_backoff);
        loop {
            // A retry sends the same bytes: cloning `Bytes` copies nothing.
            let mut request = tonic::Request::new(batch.clone());
            request.set_timeout(self.timeout);
            let attempt = tokio::time::timeout(self.timeout, S::export(self.channel.clone(), request));
            let status = tokio::select! {
                outcome = attempt => match outcome {
                    Ok(Ok(partial)) => return self.accepted(items, partial),
                    Ok(Err(status)) => status,
                    Err(_) => Status::deadline_exceeded(format!("no answer within {:?}", self.timeout)),
                },
                () = deadline_reached(&mut self.deadline) => return self.shared.lose(items, DropReason::Shutdown, true),
            };
            let retry_after = match classify(&status) {
                Failure::Retryable { retry_after } => retry_after,
                Failure::Permanent => return self.give_up(items, &status, DropReason::Rejected),
            };
            // As the OpenTelemetry Collector does: the upstream's delay, but never less than the
            // backoff, so a RetryInfo of zero cannot make the loop hammer the upstream.
            let backoff_wait = backoff.next_wait();
            let wait = retry_after.map_or(backoff_wait, |delay| delay.max(backoff_wait));
            if first_attempt.elapsed() + wait > self.max_retry_elapsed {
                return self.give_up(items, &status, DropReason::RetriesExhausted);
            }
            // A wait that ends after the shutdown deadline could not lead to a delivery: give up
            // now so that shutdown does not idle until its deadline.
            if self.deadline.borrow().is_some_and(|deadline| Instant::now() + wait >= deadline) {
                return self.shared.lose(items, DropReason::Shutdown, true);
            }
            self.shared
                .retry_hint_ms
                .store(millis(wait.clamp(self.initial_backoff, self.max_backoff)), Ordering::Relaxed);
            tracing::debug!(exporter = S::EXPORTER, items, code = ?status.code(), ?wait, "Export failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = deadline_reached(&mut self.deadline) => return self.shared.lose(items, DropReason::Shutdown, true),
            }
        }
    }

    /// Drops a batch the upstream refused for good (`Rejected`) or that kept failing past the
    /// retry limit, and says which in the log.
    fn give_up(&self, items: usize, status: &Status, reason: DropReason) {
        let (exporter, code, status_message) = (S::EXPORTER, status.code(), status.message());
        if reason == DropReason::Rejected {
            tracing::warn!(
                exporter,
                items,
                ?code,
                status_message,
                "Upstream refused an export for good; items dropped"
            );
        } else {
            tracing::error!(
                exporter,
                items,
                ?code,
                status_message,
                "Upstream kept failing past the retry limit; items dropped"
            );
        }
        self.shared.lose(items, reason, true);
    }

    fn accepted(&self, items: usize, partial: Option<PartialRejection>) {
        self.shared.retry_hint_ms.store(millis(self.initial_backoff), Ordering::Relaxed);
        let Some(partial) = partial else { return self.shared.record_sent(items) };
        // An upstream's count is not trusted to stay within the batch.
        let rejected = usize::try_from(partial.rejected.max(0)).unwrap_or(usize::MAX).min(items);
        if rejected > 0 || !partial.message.is_empty() {
            tracing::warn!(
                exporter = S::EXPORTER,
                items,
                rejected,
                upstream_message = %partial.message,
                "Upstream rejected part of an export"
            );
        }
        self.shared.record_sent(items - rejected);
        if rejected > 0 {
            self.shared.lose(rejected, DropReason::UpstreamPartial, true);
        }
    }

    fn deadline_passed(&self) -> bool {
        self.deadline.borrow().is_some_and(|deadline| Instant::now() >= deadline)
    }
}

/// One encoded export request holding every request of `requests`: the concatenation of two
/// encoded messages decodes as their merge, and repeated fields (the resources) are appended.
fn concatenate(mut requests: Vec<Bytes>) -> Bytes {
    if requests.len() == 1 {
        return requests.pop().unwrap_or_default();
    }
    let mut batch = BytesMut::with_capacity(requests.iter().map(Bytes::len).sum());
    for request in requests {
        batch.extend_from_slice(&request);
    }
    batch.freeze()
}

/// Resolves once a shutdown deadline is set and reached; never, while no shutdown is under way.
async fn deadline_reached(deadline: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let current = *deadline.borrow_and_update();
        if let Some(at) = current {
            return tokio::time::sleep_until(at).await;
        }
        if deadline.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The forwarders of the three signals, each present when its endpoint is configured.
#[derive(Debug, Clone, Default)]
pub struct Forwarders {
    /// Trace forwarding, if `traces_endpoint` is set.
    pub traces: Option<Forwarder<Traces>>,
    /// Metric forwarding, if `metrics_endpoint` is set.
    pub metrics: Option<Forwarder<Metrics>>,
    /// Log forwarding, if `logs_endpoint` is set.
    pub logs: Option<Forwarder<Logs>>,
}

impl Forwarders {
    /// Starts a forwarder for every signal with an endpoint, on the current tokio runtime.
    ///
    /// # Errors
    /// An endpoint is not a valid URI.
    pub fn start(settings: &ForwardSettings) -> Result<Self, ForwardError> {
        Ok(Self {
            traces: start_if_configured(settings)?,
            metrics: start_if_configured(settings)?,
            logs: start_if_configured(settings)?,
        })
    }

    /// Shuts the three down at once against the same deadline; the reports added up.
    pub async fn shutdown(self, deadline: Instant) -> FlushReport {
        let (traces, metrics, logs) = tokio::join!(
            shutdown_if_started(self.traces, deadline),
            shutdown_if_started(self.metrics, deadline),
            shutdown_if_started(self.logs, deadline),
        );
        traces + metrics + logs
    }
}

fn start_if_configured<S: Signal>(settings: &ForwardSettings) -> Result<Option<Forwarder<S>>, ForwardError> {
    let endpoint = S::endpoint(settings);
    if endpoint.is_empty() { Ok(None) } else { Forwarder::start(endpoint, settings).map(Some) }
}

async fn shutdown_if_started<S: Signal>(forwarder: Option<Forwarder<S>>, deadline: Instant) -> FlushReport {
    match forwarder {
        Some(forwarder) => forwarder.shutdown(deadline).await,
        None => FlushReport::default(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashSet, VecDeque};
    use std::net::SocketAddr;

    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use tokio::net::TcpListener;
    use tonic::transport::server::TcpIncoming;
    use tonic::{Code, Request, Response};
    use tonic_types::{ErrorDetails, StatusExt};

    use super::*;

    /// How the test upstream answers one export.
    #[derive(Debug, Clone, Copy)]
    enum Answer {
        Accept,
        Unavailable,
        UnavailableRetryAfter(Duration),
        InvalidArgument,
        RejectSome(i64),
        Hang,
    }

    /// One export the test upstream received.
    #[derive(Debug, Clone)]
    struct Call {
        at: Instant,
        span_names: Vec<String>,
        answer: Answer,
    }

    /// A TraceService whose answers the test scripts: `script` in order, then `otherwise`.
    #[derive(Clone)]
    struct Upstream {
        script: Arc<Mutex<VecDeque<Answer>>>,
        otherwise: Answer,
        calls: Arc<Mutex<Vec<Call>>>,
    }

    impl Upstream {
        fn answering(otherwise: Answer, script: &[Answer]) -> Self {
            Self { script: Arc::new(Mutex::new(script.iter().copied().collect())), otherwise, calls: Arc::default() }
        }

        fn calls(&self) -> Vec<Call> {
            self.calls.lock().expect("not poisoned").clone()
        }

        /// Names of the spans in accepted exports, each as often as it arrived.
        fn delivered(&self) -> Vec<String> {
            let calls = self.calls();
            calls
                .into_iter()
                .filter(|call| matches!(call.answer, Answer::Accept))
                .flat_map(|call| call.span_names)
                .collect()
        }

        async fn serve(self) -> String {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let address = listener.local_addr().expect("bound");
            self.serve_on(listener);
            format!("http://{address}")
        }

        /// A trace forwarder to this upstream, served on a free port.
        async fn forwarder(&self, settings: &ForwardSettings) -> Forwarder<Traces> {
            let endpoint = self.clone().serve().await;
            Forwarder::<Traces>::start(&endpoint, settings).expect("valid endpoint")
        }

        fn serve_on(self, listener: TcpListener) {
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(self))
                    .serve_with_incoming(TcpIncoming::from(listener)),
            );
        }
    }

    #[tonic::async_trait]
    impl TraceService for Upstream {
        async fn export(
            &self,
            request: Request<ExportTraceServiceRequest>,
        ) -> Result<Response<ExportTraceServiceResponse>, Status> {
            let answer = self.script.lock().expect("not poisoned").pop_front().unwrap_or(self.otherwise);
            let span_names = request
                .get_ref()
                .resource_spans
                .iter()
                .flat_map(|resource| &resource.scope_spans)
                .flat_map(|scope| &scope.spans)
                .map(|span| span.name.clone())
                .collect();
            self.calls.lock().expect("not poisoned").push(Call { at: Instant::now(), span_names, answer });
            let partial_success = match answer {
                Answer::Accept => None,
                Answer::Unavailable => return Err(Status::unavailable("down for a moment")),
                Answer::UnavailableRetryAfter(delay) => {
                    return Err(Status::with_error_details(
                        Code::Unavailable,
                        "come back later",
                        ErrorDetails::with_retry_info(Some(delay)),
                    ));
                }
                Answer::InvalidArgument => return Err(Status::invalid_argument("malformed")),
                Answer::RejectSome(rejected) => {
                    Some(ExportTracePartialSuccess { rejected_spans: rejected, error_message: "too old".into() })
                }
                Answer::Hang => std::future::pending().await,
            };
            Ok(Response::new(ExportTraceServiceResponse { partial_success }))
        }
    }

    fn settings() -> ForwardSettings {
        ForwardSettings {
            timeout_ms: 2_000,
            initial_backoff_ms: 10,
            max_backoff_ms: 50,
            max_retry_elapsed_ms: 20_000,
            ..ForwardSettings::default()
        }
    }

    /// One resource with `count` spans named `{prefix}-0`, `{prefix}-1`, …
    fn spans(prefix: &str, count: usize) -> ExportTraceServiceRequest {
        let spans = (0..count).map(|index| Span { name: format!("{prefix}-{index}"), ..Span::default() }).collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
                ..ResourceSpans::default()
            }],
        }
    }

    fn names(prefix: &str, count: usize) -> Vec<String> {
        (0..count).map(|index| format!("{prefix}-{index}")).collect()
    }

    /// A local address nothing listens on (until the test binds it again).
    async fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("bound")
    }

    async fn eventually(what: &str, condition: impl Fn() -> bool) {
        let give_up = Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(Instant::now() < give_up, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until nothing is queued or in flight: every accepted item is sent or dropped.
    async fn settled(forwarder: &Forwarder<Traces>) {
        eventually("every accepted item is sent or dropped", || {
            let stats = forwarder.stats();
            forwarder.queue_items() == 0 && stats.accepted() == stats.sent() + stats.dropped_total()
        })
        .await;
    }

    fn assert_accounted(forwarder: &Forwarder<Traces>) {
        let stats = forwarder.stats();
        assert_eq!(
            stats.accepted(),
            stats.sent() + stats.dropped_total() + forwarder.queue_items() as u64,
            "accepted = sent + dropped + queued"
        );
    }

    #[tokio::test]
    async fn a_full_queue_answers_backpressure_under_the_default_policy_and_loses_nothing() {
        let upstream = Upstream::answering(Answer::Hang, &[]);
        let settings = ForwardSettings { queue_capacity_items: 10, max_batch_items: 6, ..settings() };
        let forwarder = upstream.forwarder(&settings).await;

        for slot in 0..EXPORTS_IN_FLIGHT {
            forwarder.offer(&spans(&format!("a{slot}"), 6)).expect("room for 6");
            eventually("the batch is in flight", || upstream.calls().len() == slot + 1).await;
        }
        forwarder.offer(&spans("b", 6)).expect("room for 6 again");
        let refusal = forwarder.offer(&spans("c", 5)).expect_err("only 4 left");

        let Refusal::Backpressure(Backpressure { retry_after }) = refusal else { panic!("{refusal:?}") };
        assert!(retry_after >= Duration::from_millis(10), "{retry_after:?}");
        assert_eq!(forwarder.offer(&spans("d", 11)), Err(Refusal::TooLarge { items: 11, capacity: 10 }));
        let stats = forwarder.stats();
        assert_eq!(
            (stats.accepted(), stats.refused(), stats.dropped_total()),
            (6 * EXPORTS_IN_FLIGHT as u64 + 6, 16, 0)
        );
        assert_eq!(forwarder.queue_items(), 6);
    }

    #[test]
    fn concatenated_requests_decode_as_one_request_holding_every_resource() {
        let encode = |request: ExportTraceServiceRequest| Bytes::from(prost::Message::encode_to_vec(&request));
        let batch = concatenate(vec![encode(spans("a", 2)), encode(spans("b", 3))]);
        let merged = <ExportTraceServiceRequest as prost::Message>::decode(batch).expect("decodes");
        assert_eq!(merged.resource_spans.len(), 2);
        assert_eq!(Traces::items(&merged), 5);
    }

    #[tokio::test]
    async fn a_slow_upstream_has_several_exports_in_flight_and_no_more_than_the_bound() {
        let upstream = Upstream::answering(Answer::Hang, &[]);
        let forwarder = upstream.forwarder(&ForwardSettings { max_batch_items: 5, ..settings() }).await;

        for request in 0..=EXPORTS_IN_FLIGHT {
            forwarder.offer(&spans(&format!("r{request}"), 5)).expect("room");
        }

        eventually("every slot holds an export", || upstream.calls().len() == EXPORTS_IN_FLIGHT).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(upstream.calls().len(), EXPORTS_IN_FLIGHT, "no export beyond the bound");
        assert_eq!(forwarder.queue_items(), 5, "the last request waits for a free slot");
    }

    #[tokio::test]
    async fn a_retried_export_sends_the_same_spans_again() {
        let upstream = Upstream::answering(Answer::Accept, &[Answer::Unavailable, Answer::Unavailable]);
        let forwarder = upstream.forwarder(&settings()).await;

        forwarder.offer(&spans("a", 3)).expect("room");
        settled(&forwarder).await;

        let calls = upstream.calls();
        assert_eq!(calls.len(), 3);
        assert!(calls.iter().all(|call| call.span_names == names("a", 3)), "{calls:?}");
        assert_eq!(forwarder.stats().sent(), 3);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_under_the_drop_policy() {
        let upstream = Upstream::answering(Answer::Hang, &[]);
        let settings = ForwardSettings { queue_capacity_items: 10, full_policy: FullPolicy::Drop, ..settings() };
        let forwarder = upstream.forwarder(&settings).await;

        forwarder.offer(&spans("a", 6)).expect("room for 6");
        eventually("the first batch is in flight", || upstream.calls().len() == 1).await;
        forwarder.offer(&spans("b", 6)).expect("room for 6 again");
        forwarder.offer(&spans("c", 5)).expect("accepted and dropped");

        let stats = forwarder.stats();
        assert_eq!((stats.accepted(), stats.refused()), (17, 0));
        assert_eq!(stats.dropped(DropReason::QueueFull), 5);
        assert_eq!(stats.dropped_total(), 5);
    }

    #[tokio::test]
    async fn failed_exports_are_retried_with_backoff_until_nothing_is_lost() {
        let unavailable = Answer::Unavailable;
        let upstream = Upstream::answering(Answer::Accept, &[unavailable, unavailable, unavailable]);
        let forwarder = upstream.forwarder(&settings()).await;

        for batch in ["a", "b", "c"] {
            forwarder.offer(&spans(batch, 10)).expect("room");
        }
        settled(&forwarder).await;

        let mut delivered = upstream.delivered();
        delivered.sort();
        let mut offered = [names("a", 10), names("b", 10), names("c", 10)].concat();
        offered.sort();
        assert_eq!(delivered, offered, "every span delivered exactly once");
        assert_eq!((forwarder.stats().sent(), forwarder.stats().dropped_total()), (30, 0));
        let calls = upstream.calls();
        assert!(calls.len() >= 4, "three failures and a success: {}", calls.len());
        for pair in calls[..4].windows(2) {
            // Initial backoff 10 ms with ±50 % jitter: never less than 5 ms apart.
            assert!(pair[1].at - pair[0].at >= Duration::from_millis(5), "retried too soon");
        }
    }

    #[tokio::test]
    async fn the_upstreams_retry_info_delay_is_honoured() {
        let retry_later = Answer::UnavailableRetryAfter(Duration::from_millis(300));
        let upstream = Upstream::answering(Answer::Accept, &[retry_later]);
        let forwarder = upstream.forwarder(&settings()).await;

        forwarder.offer(&spans("a", 3)).expect("room");
        settled(&forwarder).await;

        let calls = upstream.calls();
        assert_eq!(calls.len(), 2);
        let gap = calls[1].at - calls[0].at;
        // The backoff alone (at most 50 ms) would have retried much sooner.
        assert!(gap >= Duration::from_millis(300) && gap < Duration::from_secs(2), "retried after {gap:?}");
        assert_eq!(forwarder.stats().sent(), 3);
    }

    #[tokio::test]
    async fn a_permanent_error_drops_the_batch_as_rejected_without_retrying() {
        let upstream = Upstream::answering(Answer::Accept, &[Answer::InvalidArgument]);
        let forwarder = upstream.forwarder(&settings()).await;

        forwarder.offer(&spans("bad", 4)).expect("room");
        settled(&forwarder).await;
        forwarder.offer(&spans("good", 2)).expect("room");
        settled(&forwarder).await;

        assert_eq!(upstream.calls().len(), 2, "the refused batch was not retried");
        assert_eq!(upstream.delivered(), names("good", 2));
        let stats = forwarder.stats();
        assert_eq!((stats.dropped(DropReason::Rejected), stats.sent()), (4, 2));
    }

    #[tokio::test]
    async fn a_partial_success_counts_the_rejected_items_as_dropped() {
        let upstream = Upstream::answering(Answer::RejectSome(3), &[]);
        let forwarder = upstream.forwarder(&settings()).await;

        forwarder.offer(&spans("a", 10)).expect("room");
        settled(&forwarder).await;

        let stats = forwarder.stats();
        assert_eq!((stats.sent(), stats.dropped(DropReason::UpstreamPartial), stats.dropped_total()), (7, 3, 3));
    }

    #[tokio::test]
    async fn a_batch_is_dropped_once_retries_take_longer_than_allowed() {
        let upstream = Upstream::answering(Answer::Unavailable, &[]);
        let settings = ForwardSettings { max_retry_elapsed_ms: 100, ..settings() };
        let forwarder = upstream.forwarder(&settings).await;

        forwarder.offer(&spans("a", 5)).expect("room");
        settled(&forwarder).await;

        assert!(upstream.calls().len() >= 2, "retried before giving up");
        assert_eq!(forwarder.stats().dropped(DropReason::RetriesExhausted), 5);
    }

    #[tokio::test]
    async fn shutdown_flushes_the_queue_before_the_deadline() {
        let upstream = Upstream::answering(Answer::Accept, &[]);
        let forwarder = upstream.forwarder(&settings()).await;
        for batch in 0..20 {
            forwarder.offer(&spans(&format!("batch{batch}"), 50)).expect("room");
        }

        let deadline = Instant::now() + Duration::from_secs(5);
        let report = forwarder.shutdown(deadline).await;

        assert_eq!(report, FlushReport { sent: 1_000, dropped: 0 });
        assert!(Instant::now() < deadline, "returned once flushed, not at the deadline");
        assert_eq!(upstream.delivered().len(), 1_000);
    }

    #[tokio::test]
    async fn shutdown_counts_what_it_could_not_send_while_the_upstream_is_down() {
        let endpoint = format!("http://{}", closed_port().await);
        let forwarder = Forwarder::<Traces>::start(&endpoint, &settings()).expect("valid endpoint");
        let sender = forwarder.clone();
        for batch in ["a", "b", "c"] {
            forwarder.offer(&spans(batch, 10)).expect("room");
        }

        let started = Instant::now();
        let report = forwarder.shutdown(started + Duration::from_millis(300)).await;

        assert_eq!(report, FlushReport { sent: 0, dropped: 30 });
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
        assert_eq!(sender.stats().dropped(DropReason::Shutdown), 30);
        assert_eq!(sender.offer(&spans("late", 1)), Err(Refusal::ShuttingDown));
        assert_accounted(&sender);
    }

    #[tokio::test]
    async fn shutdown_gives_up_on_a_hanging_upstream_at_the_deadline() {
        let upstream = Upstream::answering(Answer::Hang, &[]);
        let forwarder = upstream.forwarder(&settings()).await;
        forwarder.offer(&spans("a", 4)).expect("room");
        eventually("the batch is in flight", || upstream.calls().len() == 1).await;
        forwarder.offer(&spans("b", 4)).expect("room");

        let deadline = Instant::now() + Duration::from_millis(200);
        let report = forwarder.shutdown(deadline).await;

        assert_eq!(report, FlushReport { sent: 0, dropped: 8 });
        assert!(Instant::now() < deadline + Duration::from_millis(200), "overran the deadline");
    }

    #[tokio::test]
    async fn an_upstream_down_at_start_gets_everything_once_it_is_up() {
        let address = closed_port().await;
        let forwarder = Forwarder::<Traces>::start(&format!("http://{address}"), &settings()).expect("valid endpoint");
        forwarder.offer(&spans("early", 5)).expect("room");
        tokio::time::sleep(Duration::from_millis(200)).await;
        forwarder.offer(&spans("later", 5)).expect("room");
        assert_eq!(forwarder.stats().sent(), 0);

        let upstream = Upstream::answering(Answer::Accept, &[]);
        upstream.clone().serve_on(TcpListener::bind(address).await.expect("the port is still free"));
        settled(&forwarder).await;

        let delivered: HashSet<String> = upstream.delivered().into_iter().collect();
        let offered: HashSet<String> = [names("early", 5), names("later", 5)].concat().into_iter().collect();
        assert_eq!(delivered, offered);
        assert_eq!((forwarder.stats().sent(), forwarder.stats().dropped_total()), (10, 0));
    }

    #[tokio::test]
    async fn queued_requests_are_merged_into_exports_of_at_most_max_batch_items() {
        let upstream = Upstream::answering(Answer::Accept, &[]);
        let forwarder = upstream.forwarder(&ForwardSettings { max_batch_items: 8, ..settings() }).await;

        // The test runtime has one thread: the export loop runs only once this test awaits, so
        // all ten requests are queued together.
        for batch in 0..10 {
            forwarder.offer(&spans(&format!("r{batch}"), 3)).expect("room");
        }
        settled(&forwarder).await;

        let sizes: Vec<usize> = upstream.calls().iter().map(|call| call.span_names.len()).collect();
        assert_eq!(sizes, [6, 6, 6, 6, 6]);
        assert_eq!(forwarder.stats().sent(), 30);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sent_plus_dropped_plus_queued_always_equals_accepted() {
        let script = [
            Answer::Accept,
            Answer::Unavailable,
            Answer::RejectSome(2),
            Answer::InvalidArgument,
            Answer::Accept,
            Answer::UnavailableRetryAfter(Duration::from_millis(20)),
        ];
        let upstream = Upstream::answering(Answer::Accept, &script.repeat(20));
        let settings = ForwardSettings {
            queue_capacity_items: 200,
            full_policy: FullPolicy::Drop,
            max_batch_items: 40,
            ..settings()
        };
        let forwarder = upstream.forwarder(&settings).await;

        let senders: Vec<_> = (0..4)
            .map(|sender| {
                let forwarder = forwarder.clone();
                tokio::spawn(async move {
                    for batch in 0..50 {
                        forwarder.offer(&spans(&format!("s{sender}-{batch}"), 7)).expect("drop policy accepts");
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.await.expect("sender ran");
        }
        settled(&forwarder).await;
        assert_accounted(&forwarder);
        let stats = forwarder.stats();
        assert_eq!(stats.accepted(), 4 * 50 * 7);
        assert!(stats.dropped(DropReason::Rejected) > 0 && stats.dropped(DropReason::UpstreamPartial) > 0);
        let answered_ok: usize = upstream
            .calls()
            .iter()
            .filter(|call| matches!(call.answer, Answer::Accept | Answer::RejectSome(_)))
            .map(|call| call.span_names.len())
            .sum();
        assert_eq!(answered_ok as u64, stats.sent() + stats.dropped(DropReason::UpstreamPartial));

        let sender = forwarder.clone();
        let report = forwarder.shutdown(Instant::now() + Duration::from_secs(1)).await;
        assert_eq!(report, FlushReport::default(), "nothing was left to flush");
        assert_accounted(&sender);
    }

    #[tokio::test]
    async fn forwarders_start_only_for_configured_signals() {
        let settings = ForwardSettings { metrics_endpoint: "http://127.0.0.1:4317".into(), ..settings() };
        let forwarders = Forwarders::start(&settings).expect("valid endpoints");
        assert!(forwarders.traces.is_none() && forwarders.metrics.is_some() && forwarders.logs.is_none());
        let report = forwarders.shutdown(Instant::now() + Duration::from_millis(100)).await;
        assert_eq!(report, FlushReport::default());
    }
}
