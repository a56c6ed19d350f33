//! A bounded export queue, one for spans and one for log records, that never blocks the code that
//! ends a span or writes a log line.
//!
//! Handing an item over only tries to enqueue it: when the queue is full the item is dropped and
//! counted (`axiom25_telemetry_spans_dropped_total{reason="queue_full"}`, for log records
//! `axiom25_telemetry_logs_dropped_total`), so an unreachable or slow collector costs the request
//! path nothing. One worker thread per queue, with its own single-threaded tokio runtime, batches
//! and exports; failed exports are counted with reason `export_failed`, items still queued when the
//! flush deadline passes with reason `shutdown`.
//!
//! The SDK's own batch processors count their drops privately, which is why this exists.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use tokio::sync::mpsc::{self, error::TrySendError};

use super::TelemetrySettings;

/// What an [`ExportQueue`] carries, and the counters its items end in.
pub trait Queued: Send + 'static {
    /// What log lines call the items, e.g. `spans`.
    const ITEMS: &'static str;
    /// Counter of items the endpoint accepted.
    const EXPORTED_TOTAL: &'static str;
    /// Counter of items not delivered, labelled `reason`.
    const DROPPED_TOTAL: &'static str;
}

impl Queued for SpanData {
    const ITEMS: &'static str = "spans";
    const EXPORTED_TOTAL: &'static str = "axiom25_telemetry_spans_exported_total";
    const DROPPED_TOTAL: &'static str = "axiom25_telemetry_spans_dropped_total";
}

/// A log record with the scope of the logger that emitted it, as a [`LogExporter`] takes it.
#[derive(Debug, Clone)]
pub struct QueuedLog {
    record: SdkLogRecord,
    scope: InstrumentationScope,
}

impl Queued for QueuedLog {
    const ITEMS: &'static str = "log records";
    const EXPORTED_TOTAL: &'static str = "axiom25_telemetry_logs_exported_total";
    const DROPPED_TOTAL: &'static str = "axiom25_telemetry_logs_dropped_total";
}

/// An exporter of batches of `T`: every [`SpanExporter`] for spans, every [`LogExporter`] for log
/// records.
pub trait BatchExporter<T>: Send + 'static {
    /// Sends one batch.
    fn export_batch(&self, batch: Vec<T>) -> impl Future<Output = OTelSdkResult>;
    /// Releases the exporter's connections.
    fn shutdown_exporter(&mut self) -> OTelSdkResult;
}

impl<E: SpanExporter + 'static> BatchExporter<SpanData> for E {
    async fn export_batch(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.export(batch).await
    }

    fn shutdown_exporter(&mut self) -> OTelSdkResult {
        SpanExporter::shutdown(self)
    }
}

impl<E: LogExporter + 'static> BatchExporter<QueuedLog> for E {
    async fn export_batch(&self, batch: Vec<QueuedLog>) -> OTelSdkResult {
        let records: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            batch.iter().map(|log| (&log.record, &log.scope)).collect();
        self.export(LogBatch::new(&records)).await
    }

    fn shutdown_exporter(&mut self) -> OTelSdkResult {
        LogExporter::shutdown(self)
    }
}

/// Sizes and timings of an [`ExportQueue`].
#[derive(Debug, Clone)]
pub struct ExportQueueSettings {
    /// Items held before new ones are dropped.
    pub capacity: usize,
    /// Items per export request.
    pub batch_size: usize,
    /// How often a partial batch is sent.
    pub interval: Duration,
    /// Deadline of one export request.
    pub export_timeout: Duration,
}

impl From<&TelemetrySettings> for ExportQueueSettings {
    fn from(settings: &TelemetrySettings) -> Self {
        Self {
            capacity: settings.export_queue_capacity,
            batch_size: settings.export_batch_size,
            interval: Duration::from_millis(settings.export_interval_ms),
            export_timeout: Duration::from_millis(settings.export_timeout_ms),
        }
    }
}

/// What happened to the items handed to the queue. Every item ends in exactly one counter.
#[derive(Debug)]
pub struct ExportStats {
    exported: AtomicU64,
    queue_full: AtomicU64,
    export_failed: AtomicU64,
    shutdown: AtomicU64,
    exported_total: &'static str,
    dropped_total: &'static str,
}

impl ExportStats {
    fn new<T: Queued>() -> Self {
        Self {
            exported: AtomicU64::new(0),
            queue_full: AtomicU64::new(0),
            export_failed: AtomicU64::new(0),
            shutdown: AtomicU64::new(0),
            exported_total: T::EXPORTED_TOTAL,
            dropped_total: T::DROPPED_TOTAL,
        }
    }

    /// Items the endpoint accepted.
    pub fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    /// Items dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.queue_full.load(Ordering::Relaxed)
            + self.export_failed.load(Ordering::Relaxed)
            + self.shutdown.load(Ordering::Relaxed)
    }

    /// Items dropped because the queue was full.
    pub fn dropped_queue_full(&self) -> u64 {
        self.queue_full.load(Ordering::Relaxed)
    }

    fn add_exported(&self, count: usize) {
        self.exported.fetch_add(count as u64, Ordering::Relaxed);
        metrics::counter!(self.exported_total).increment(count as u64);
    }

    fn add_dropped(&self, reason: &'static str, count: usize) {
        let counter = match reason {
            "queue_full" => &self.queue_full,
            "export_failed" => &self.export_failed,
            _ => &self.shutdown,
        };
        counter.fetch_add(count as u64, Ordering::Relaxed);
        metrics::counter!(self.dropped_total, "reason" => reason).increment(count as u64);
    }
}

enum Control {
    Flush(std_mpsc::SyncSender<()>),
    Shutdown(std_mpsc::SyncSender<()>),
}

/// Why an [`ExportQueue`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExportQueueError {
    /// The worker thread or its runtime could not be created.
    #[error("starting the export worker")]
    Worker(#[source] std::io::Error),
    /// The exporter could not be built.
    #[error("building the exporter")]
    Exporter(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The worker ended before it reported whether the exporter was built.
    #[error("the export worker stopped while starting")]
    WorkerStopped,
}

/// A [`SpanProcessor`] (of [`SpanData`]) or [`LogProcessor`] (of [`QueuedLog`]) that exports
/// through a bounded queue and counts every item it cannot deliver.
#[derive(Debug)]
pub struct ExportQueue<T> {
    items: mpsc::Sender<T>,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<ExportStats>,
    export_timeout: Duration,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl<T: Queued> ExportQueue<T> {
    /// Starts the worker thread and builds the exporter on it (inside its tokio runtime, which
    /// the tonic exporter needs).
    ///
    /// # Errors
    /// When the thread cannot start or the exporter cannot be built.
    pub fn start<E, F>(settings: ExportQueueSettings, make_exporter: F) -> Result<Self, ExportQueueError>
    where
        E: BatchExporter<T>,
        F: FnOnce() -> Result<E, Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
    {
        let (items, item_rx) = mpsc::channel(settings.capacity);
        let (control, control_rx) = mpsc::unbounded_channel();
        let (built_tx, built_rx) = std_mpsc::sync_channel(1);
        let stats = Arc::new(ExportStats::new::<T>());
        let worker_stats = Arc::clone(&stats);
        let worker_settings = settings.clone();
        let worker = std::thread::Builder::new().name("otlp-export".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = built_tx.send(Err(ExportQueueError::Worker(error)));
                    return;
                }
            };
            let exporter = match runtime.block_on(async { make_exporter() }) {
                Ok(exporter) => exporter,
                Err(error) => {
                    let _ = built_tx.send(Err(ExportQueueError::Exporter(error)));
                    return;
                }
            };
            let _ = built_tx.send(Ok(()));
            runtime.block_on(
                Worker {
                    exporter,
                    item: std::marker::PhantomData,
                    settings: worker_settings,
                    stats: worker_stats,
                    failing: false,
                }
                .run(item_rx, control_rx),
            );
        });
        let worker = worker.map_err(ExportQueueError::Worker)?;
        built_rx.recv().map_err(|_| ExportQueueError::WorkerStopped)??;
        Ok(Self { items, control, stats, export_timeout: settings.export_timeout, worker: Mutex::new(Some(worker)) })
    }

    /// Shared counters of this queue.
    #[must_use]
    pub fn stats(&self) -> Arc<ExportStats> {
        Arc::clone(&self.stats)
    }

    fn ask(&self, make: impl FnOnce(std_mpsc::SyncSender<()>) -> Control, timeout: Duration) -> OTelSdkResult {
        let (done, wait) = std_mpsc::sync_channel(1);
        self.control.send(make(done)).map_err(|_| OTelSdkError::AlreadyShutdown)?;
        wait.recv_timeout(timeout).map_err(|_| OTelSdkError::Timeout(timeout))
    }

    /// Hands one item to the worker, or counts it when the queue is full or stopped.
    fn offer(&self, item: T) {
        match self.items.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.stats.add_dropped("queue_full", 1),
            Err(TrySendError::Closed(_)) => self.stats.add_dropped("shutdown", 1),
        }
    }

    fn flush(&self) -> OTelSdkResult {
        self.ask(Control::Flush, self.export_timeout.saturating_mul(2))
    }

    fn stop(&self, timeout: Duration) -> OTelSdkResult {
        let result = self.ask(Control::Shutdown, timeout);
        if result.is_err() {
            // Whatever is still queued will not be sent before the process exits.
            let left = self.items.max_capacity() - self.items.capacity();
            if left > 0 {
                self.stats.add_dropped("shutdown", left);
                tracing::warn!(items = left, kind = T::ITEMS, "Telemetry not flushed before the deadline");
            }
        } else if let Ok(mut worker) = self.worker.lock()
            && let Some(handle) = worker.take()
        {
            let _ = handle.join();
        }
        result
    }
}

impl SpanProcessor for ExportQueue<SpanData> {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.offer(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.stop(timeout)
    }
}

impl LogProcessor for ExportQueue<QueuedLog> {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        self.offer(QueuedLog { record: record.clone(), scope: scope.clone() });
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.stop(timeout)
    }
}

struct Worker<E, T> {
    exporter: E,
    item: std::marker::PhantomData<fn(T)>,
    settings: ExportQueueSettings,
    stats: Arc<ExportStats>,
    failing: bool,
}

impl<T: Queued, E: BatchExporter<T>> Worker<E, T> {
    async fn run(mut self, mut items: mpsc::Receiver<T>, mut control: mpsc::UnboundedReceiver<Control>) {
        let mut batch = Vec::with_capacity(self.settings.batch_size);
        let mut ticker = tokio::time::interval(self.settings.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                command = control.recv() => match command {
                    Some(Control::Flush(done)) => {
                        self.drain(&mut items, &mut batch).await;
                        let _ = done.send(());
                    }
                    Some(Control::Shutdown(done)) => {
                        items.close();
                        self.drain(&mut items, &mut batch).await;
                        let _ = self.exporter.shutdown_exporter();
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                item = items.recv() => match item {
                    Some(item) => {
                        batch.push(item);
                        if batch.len() >= self.settings.batch_size {
                            self.export(&mut batch).await;
                        }
                    }
                    None => {
                        self.export(&mut batch).await;
                        return;
                    }
                },
                _ = ticker.tick() => self.export(&mut batch).await,
            }
        }
    }

    /// Exports everything queued right now.
    async fn drain(&mut self, items: &mut mpsc::Receiver<T>, batch: &mut Vec<T>) {
        while let Ok(item) = items.try_recv() {
            batch.push(item);
            if batch.len() >= self.settings.batch_size {
                self.export(batch).await;
            }
        }
        self.export(batch).await;
    }

    async fn export(&mut self, batch: &mut Vec<T>) {
        if batch.is_empty() {
            return;
        }
        let items = std::mem::replace(batch, Vec::with_capacity(self.settings.batch_size));
        let count = items.len();
        match tokio::time::timeout(self.settings.export_timeout, self.exporter.export_batch(items)).await {
            Ok(Ok(())) => {
                self.stats.add_exported(count);
                if self.failing {
                    self.failing = false;
                    tracing::info!(kind = T::ITEMS, "Telemetry export recovered");
                }
            }
            outcome => {
                self.stats.add_dropped("export_failed", count);
                // Log on the transition only: a collector outage must not flood the logs.
                if !self.failing {
                    self.failing = true;
                    let error = match outcome {
                        Ok(Err(error)) => error.to_string(),
                        _ => "timed out".to_owned(),
                    };
                    tracing::warn!(
                        %error,
                        items = count,
                        kind = T::ITEMS,
                        "Telemetry export failing; dropping and counting until it recovers"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
    use opentelemetry::trace::{Span as _, Tracer, TracerProvider as _};
    use opentelemetry_sdk::logs::SdkLoggerProvider;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    #[derive(Debug, Clone)]
    struct FakeExporter {
        delay: Duration,
        received: Arc<AtomicUsize>,
    }

    impl SpanExporter for FakeExporter {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            tokio::time::sleep(self.delay).await;
            self.received.fetch_add(batch.len(), Ordering::SeqCst);
            Ok(())
        }
    }

    fn settings(capacity: usize, export_timeout: Duration) -> ExportQueueSettings {
        ExportQueueSettings { capacity, batch_size: 4, interval: Duration::from_secs(3600), export_timeout }
    }

    fn provider_with(queue: ExportQueue<SpanData>) -> SdkTracerProvider {
        SdkTracerProvider::builder().with_span_processor(queue).build()
    }

    #[test]
    fn a_stuck_collector_never_blocks_ending_spans_and_every_span_is_accounted_for() {
        let received = Arc::new(AtomicUsize::new(0));
        let exporter = FakeExporter { delay: Duration::from_secs(3600), received: Arc::clone(&received) };
        let queue = ExportQueue::start(settings(8, Duration::from_millis(50)), move || Ok(exporter)).expect("start");
        let stats = queue.stats();
        let provider = provider_with(queue);
        let tracer = provider.tracer("test");

        let started = Instant::now();
        for _ in 0..1000 {
            tracer.start("request").end();
        }
        assert!(started.elapsed() < Duration::from_secs(1), "ending spans blocked for {:?}", started.elapsed());
        assert!(stats.dropped_queue_full() >= 1000 - 8 - 4, "queue_full drops: {}", stats.dropped_queue_full());

        provider.shutdown_with_timeout(Duration::from_secs(5)).expect("shutdown");
        assert_eq!(received.load(Ordering::SeqCst), 0);
        assert_eq!(stats.exported() + stats.dropped(), 1000, "every span is exported or counted");
    }

    #[test]
    fn queued_spans_are_flushed_on_shutdown() {
        let received = Arc::new(AtomicUsize::new(0));
        let exporter = FakeExporter { delay: Duration::ZERO, received: Arc::clone(&received) };
        let queue = ExportQueue::start(settings(100, Duration::from_secs(5)), move || Ok(exporter)).expect("start");
        let stats = queue.stats();
        let provider = provider_with(queue);
        let tracer = provider.tracer("test");
        for _ in 0..50 {
            tracer.start("request").end();
        }
        provider.shutdown_with_timeout(Duration::from_secs(5)).expect("shutdown");
        assert_eq!(received.load(Ordering::SeqCst), 50);
        assert_eq!(stats.exported(), 50);
        assert_eq!(stats.dropped(), 0);
    }

    #[test]
    fn an_exporter_that_cannot_be_built_is_reported_at_start() {
        let result =
            ExportQueue::<SpanData>::start(settings(8, Duration::from_secs(1)), || -> Result<FakeExporter, _> {
                Err("no endpoint".into())
            });
        assert!(matches!(result, Err(ExportQueueError::Exporter(_))), "{result:?}");
    }

    impl LogExporter for FakeExporter {
        async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
            let count = batch.iter().count();
            tokio::time::sleep(self.delay).await;
            self.received.fetch_add(count, Ordering::SeqCst);
            Ok(())
        }
    }

    fn emit_logs(provider: &SdkLoggerProvider, count: usize) {
        let logger = provider.logger("test");
        for n in 0..count {
            let mut record = logger.create_log_record();
            record.set_body(format!("Record {n}").into());
            logger.emit(record);
        }
    }

    #[test]
    fn log_records_beyond_a_full_queue_are_dropped_and_counted_without_blocking() {
        let received = Arc::new(AtomicUsize::new(0));
        let exporter = FakeExporter { delay: Duration::from_secs(3600), received: Arc::clone(&received) };
        let queue = ExportQueue::<QueuedLog>::start(settings(8, Duration::from_millis(50)), move || Ok(exporter))
            .expect("start");
        let stats = queue.stats();
        let provider = SdkLoggerProvider::builder().with_log_processor(queue).build();
        let metrics = crate::metrics::MetricsHandle::new(&crate::ServiceInfo::new("observability-test", "0", None));

        let started = Instant::now();
        metrics.in_scope(|| emit_logs(&provider, 1000));
        assert!(started.elapsed() < Duration::from_secs(1), "emitting blocked for {:?}", started.elapsed());
        let dropped = stats.dropped_queue_full();
        assert!(dropped >= 1000 - 8 - 4, "queue_full drops: {dropped}");
        let text = metrics.render();
        assert!(
            text.contains(&format!("axiom25_telemetry_logs_dropped_total{{reason=\"queue_full\"}} {dropped}")),
            "{text}"
        );

        provider.shutdown_with_timeout(Duration::from_secs(5)).expect("shutdown");
        assert_eq!(received.load(Ordering::SeqCst), 0);
        assert_eq!(stats.exported() + stats.dropped(), 1000, "every record is exported or counted");
    }

    #[test]
    fn queued_log_records_are_flushed_on_shutdown() {
        let received = Arc::new(AtomicUsize::new(0));
        let exporter = FakeExporter { delay: Duration::ZERO, received: Arc::clone(&received) };
        let queue = ExportQueue::<QueuedLog>::start(settings(100, Duration::from_secs(5)), move || Ok(exporter))
            .expect("start");
        let stats = queue.stats();
        let provider = SdkLoggerProvider::builder().with_log_processor(queue).build();
        emit_logs(&provider, 50);
        provider.shutdown_with_timeout(Duration::from_secs(5)).expect("shutdown");
        assert_eq!((received.load(Ordering::SeqCst), stats.exported(), stats.dropped()), (50, 50, 0));
    }
}
