//! A bounded span export queue that never blocks the code that ends a span.
//!
//! Ending a span only tries to enqueue it: when the queue is full the span is dropped and counted
//! (`axiom25_telemetry_spans_dropped_total{reason="queue_full"}`), so an unreachable or slow
//! collector costs the request path nothing. One worker thread, with its own single-threaded
//! tokio runtime, batches and exports; failed exports are counted with reason `export_failed`,
//! spans still queued when the flush deadline passes with reason `shutdown`.
//!
//! The SDK's own batch processor counts its drops privately, which is why this exists.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use tokio::sync::mpsc::{self, error::TrySendError};

use super::TelemetrySettings;

/// Sizes and timings of an [`ExportQueue`].
#[derive(Debug, Clone)]
pub struct ExportQueueSettings {
    /// Spans held before new ones are dropped.
    pub capacity: usize,
    /// Spans per export request.
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

/// What happened to the spans handed to the queue. Every span ends in exactly one counter.
#[derive(Debug, Default)]
pub struct ExportStats {
    exported: AtomicU64,
    queue_full: AtomicU64,
    export_failed: AtomicU64,
    shutdown: AtomicU64,
}

impl ExportStats {
    /// Spans the endpoint accepted.
    pub fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    /// Spans dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.queue_full.load(Ordering::Relaxed)
            + self.export_failed.load(Ordering::Relaxed)
            + self.shutdown.load(Ordering::Relaxed)
    }

    /// Spans dropped because the queue was full.
    pub fn dropped_queue_full(&self) -> u64 {
        self.queue_full.load(Ordering::Relaxed)
    }

    fn add_exported(&self, count: usize) {
        self.exported.fetch_add(count as u64, Ordering::Relaxed);
        metrics::counter!("axiom25_telemetry_spans_exported_total").increment(count as u64);
    }

    fn add_dropped(&self, reason: &'static str, count: usize) {
        let counter = match reason {
            "queue_full" => &self.queue_full,
            "export_failed" => &self.export_failed,
            _ => &self.shutdown,
        };
        counter.fetch_add(count as u64, Ordering::Relaxed);
        metrics::counter!("axiom25_telemetry_spans_dropped_total", "reason" => reason).increment(count as u64);
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
    #[error("building the span exporter")]
    Exporter(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The worker ended before it reported whether the exporter was built.
    #[error("the export worker stopped while starting")]
    WorkerStopped,
}

/// A [`SpanProcessor`] that exports through a bounded queue and counts every span it cannot deliver.
#[derive(Debug)]
pub struct ExportQueue {
    spans: mpsc::Sender<SpanData>,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<ExportStats>,
    export_timeout: Duration,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl ExportQueue {
    /// Starts the worker thread and builds the exporter on it (inside its tokio runtime, which
    /// the tonic exporter needs).
    ///
    /// # Errors
    /// When the thread cannot start or the exporter cannot be built.
    pub fn start<E, F>(settings: ExportQueueSettings, make_exporter: F) -> Result<Self, ExportQueueError>
    where
        E: SpanExporter + 'static,
        F: FnOnce() -> Result<E, Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
    {
        let (spans, span_rx) = mpsc::channel(settings.capacity);
        let (control, control_rx) = mpsc::unbounded_channel();
        let (built_tx, built_rx) = std_mpsc::sync_channel(1);
        let stats = Arc::new(ExportStats::default());
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
                Worker { exporter, settings: worker_settings, stats: worker_stats, failing: false }
                    .run(span_rx, control_rx),
            );
        });
        let worker = worker.map_err(ExportQueueError::Worker)?;
        built_rx.recv().map_err(|_| ExportQueueError::WorkerStopped)??;
        Ok(Self { spans, control, stats, export_timeout: settings.export_timeout, worker: Mutex::new(Some(worker)) })
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
}

impl SpanProcessor for ExportQueue {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        match self.spans.try_send(span) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.stats.add_dropped("queue_full", 1),
            Err(TrySendError::Closed(_)) => self.stats.add_dropped("shutdown", 1),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(Control::Flush, self.export_timeout.saturating_mul(2))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let result = self.ask(Control::Shutdown, timeout);
        if result.is_err() {
            // Whatever is still queued will not be sent before the process exits.
            let left = self.spans.max_capacity() - self.spans.capacity();
            if left > 0 {
                self.stats.add_dropped("shutdown", left);
                tracing::warn!(spans = left, "Spans not flushed before the deadline");
            }
        } else if let Ok(mut worker) = self.worker.lock()
            && let Some(handle) = worker.take()
        {
            let _ = handle.join();
        }
        result
    }
}

struct Worker<E> {
    exporter: E,
    settings: ExportQueueSettings,
    stats: Arc<ExportStats>,
    failing: bool,
}

impl<E: SpanExporter> Worker<E> {
    async fn run(mut self, mut spans: mpsc::Receiver<SpanData>, mut control: mpsc::UnboundedReceiver<Control>) {
        let mut batch = Vec::with_capacity(self.settings.batch_size);
        let mut ticker = tokio::time::interval(self.settings.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                command = control.recv() => match command {
                    Some(Control::Flush(done)) => {
                        self.drain(&mut spans, &mut batch).await;
                        let _ = done.send(());
                    }
                    Some(Control::Shutdown(done)) => {
                        spans.close();
                        self.drain(&mut spans, &mut batch).await;
                        let _ = self.exporter.shutdown();
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                span = spans.recv() => match span {
                    Some(span) => {
                        batch.push(span);
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
    async fn drain(&mut self, spans: &mut mpsc::Receiver<SpanData>, batch: &mut Vec<SpanData>) {
        while let Ok(span) = spans.try_recv() {
            batch.push(span);
            if batch.len() >= self.settings.batch_size {
                self.export(batch).await;
            }
        }
        self.export(batch).await;
    }

    async fn export(&mut self, batch: &mut Vec<SpanData>) {
        if batch.is_empty() {
            return;
        }
        let spans = std::mem::replace(batch, Vec::with_capacity(self.settings.batch_size));
        let count = spans.len();
        match tokio::time::timeout(self.settings.export_timeout, self.exporter.export(spans)).await {
            Ok(Ok(())) => {
                self.stats.add_exported(count);
                if self.failing {
                    self.failing = false;
                    tracing::info!("Span export recovered");
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
                    tracing::warn!(%error, spans = count, "Span export failing; dropping and counting spans until it recovers");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Span as _, Tracer, TracerProvider as _};
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

    fn provider_with(queue: ExportQueue) -> SdkTracerProvider {
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
        let result = ExportQueue::start(settings(8, Duration::from_secs(1)), || -> Result<FakeExporter, _> {
            Err("no endpoint".into())
        });
        assert!(matches!(result, Err(ExportQueueError::Exporter(_))), "{result:?}");
    }
}
