//! Builds the collector from its settings and runs it until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axiom25_observability::admin::{self, Readiness, ReadinessState};
use axiom25_observability::grpc::GrpcServerLayer;
use axiom25_observability::http::HttpServerLayer;
use axiom25_observability::metrics::{self, MetricsHandle};
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::SERVICE;
use crate::forward::Forwarders;
use crate::limiter::MemoryLimiter;
use crate::metric_store::MetricStore;
use crate::pipeline::Pipeline;
use crate::query;
use crate::receiver::grpc::AdmissionLayer;
use crate::receiver::{grpc as otlp_grpc, http as otlp_http};
use crate::settings::Settings;
use crate::spanmetrics::SpanMetrics;
use crate::store::{LogStore, SpanStore};

/// A bound, not yet serving collector.
#[derive(Debug)]
pub struct Application {
    settings: Settings,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    admin_listener: TcpListener,
    readiness: Readiness,
    metrics: MetricsHandle,
    limiter: MemoryLimiter,
    spans: Arc<SpanStore>,
    logs: Arc<LogStore>,
    span_metrics: Arc<SpanMetrics>,
    metric_store: Arc<MetricStore>,
    forwarders: Forwarders,
}

/// Addresses the collector listens on.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    /// OTLP/gRPC.
    pub grpc: SocketAddr,
    /// OTLP/HTTP.
    pub http: SocketAddr,
    /// Admin and query API.
    pub admin: SocketAddr,
}

impl Application {
    /// Binds the three listeners (port 0 picks free ones) and starts the stores and forwarders.
    ///
    /// # Errors
    /// When a listener cannot be bound or an upstream endpoint is invalid.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let host = settings.server.host;
        let bind = |port: u16, what: &'static str| async move {
            TcpListener::bind((host, port)).await.with_context(|| format!("binding the {what} port {host}:{port}"))
        };
        let grpc_listener = bind(settings.server.grpc_port, "OTLP/gRPC").await?;
        let http_listener = bind(settings.server.http_port, "OTLP/HTTP").await?;
        let admin_listener = bind(settings.server.admin_port, "admin").await?;
        let limiter = MemoryLimiter::new(&settings.memory);
        limiter.spawn_sampler(Duration::from_millis(settings.memory.check_interval_ms));
        Ok(Self {
            grpc_listener,
            http_listener,
            admin_listener,
            readiness: Readiness::new(),
            metrics: metrics::install(&SERVICE),
            limiter,
            spans: Arc::new(SpanStore::new(settings.span_store.clone())),
            logs: Arc::new(LogStore::new(settings.log_store.clone())),
            span_metrics: Arc::new(SpanMetrics::new(&settings.span_metrics)),
            metric_store: Arc::new(MetricStore::new(&settings.metric_store)),
            forwarders: Forwarders::start(&settings.forward).context("starting the upstream forwarders")?,
            settings,
        })
    }

    /// The span store, which outlives the server (tests count what a stopped collector received).
    #[must_use]
    pub fn span_store(&self) -> Arc<SpanStore> {
        Arc::clone(&self.spans)
    }

    /// Where the listeners are bound.
    ///
    /// # Errors
    /// When the operating system cannot tell.
    pub fn addresses(&self) -> std::io::Result<Addresses> {
        Ok(Addresses {
            grpc: self.grpc_listener.local_addr()?,
            http: self.http_listener.local_addr()?,
            admin: self.admin_listener.local_addr()?,
        })
    }

    /// Serves until `stop` resolves, then drains: not ready at once, both receivers closed after
    /// `shutdown.drain_delay_ms`, requests in flight and the forwarding queues given what is left
    /// of `shutdown.grace_period_ms` to finish.
    ///
    /// # Errors
    /// When a server fails.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = &'static str> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            settings,
            grpc_listener,
            http_listener,
            admin_listener,
            readiness,
            metrics,
            limiter,
            spans,
            logs,
            span_metrics,
            metric_store,
            forwarders,
        } = self;
        let addresses = Addresses {
            grpc: grpc_listener.local_addr()?,
            http: http_listener.local_addr()?,
            admin: admin_listener.local_addr()?,
        };

        let pipeline = Arc::new(Pipeline::new(
            limiter.clone(),
            Arc::clone(&spans),
            Arc::clone(&logs),
            Arc::clone(&span_metrics),
            Arc::clone(&metric_store),
            forwarders.clone(),
        ));

        let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let exposition = {
            let (span_metrics, metric_store) = (Arc::clone(&span_metrics), Arc::clone(&metric_store));
            move || {
                let mut derived = String::new();
                span_metrics.render(&mut derived);
                metric_store.render_page(&metrics.render(), &[&derived])
            }
        };
        let admin_app = admin::router_rendering(readiness.clone(), exposition)
            .merge(query::router(spans, logs).layer(HttpServerLayer::new()));
        let admin = tokio::spawn(async move {
            axum::serve(admin_listener, admin_app)
                .with_graceful_shutdown(async {
                    let _ = admin_stopped.await;
                })
                .await
        });

        let drain_delay = Duration::from_millis(settings.shutdown.drain_delay_ms);
        let grace = Duration::from_millis(settings.shutdown.grace_period_ms);
        // One signal closes both receivers; each then finishes the requests it has.
        let (close_tx, close_rx) = tokio::sync::watch::channel(false);
        let draining = readiness.clone();
        // The grace period runs from the signal; the upstream queues get whatever the receivers leave.
        let grace_ends = Arc::new(std::sync::OnceLock::new());
        let grace_end = Arc::clone(&grace_ends);
        tokio::spawn(async move {
            let signal = stop.await;
            let _ = grace_end.set(tokio::time::Instant::now() + drain_delay + grace);
            // Not ready first, so balancers move traffic away before the listeners close.
            draining.set_draining();
            tracing::info!(signal, drain_delay_ms = drain_delay.as_millis() as u64, "Draining");
            tokio::time::sleep(drain_delay).await;
            let _ = close_tx.send(true);
        });
        let closed = move || {
            let mut close_rx = close_rx.clone();
            async move {
                let _ = close_rx.wait_for(|closed| *closed).await;
            }
        };

        let limits = settings.limits;
        let (traces, metrics_service, logs_service) = otlp_grpc::services(Arc::clone(&pipeline), limits);
        let grpc = Server::builder()
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            .layer(GrpcServerLayer)
            .layer(AdmissionLayer::new(limiter, limits.max_decompressed_bytes))
            .add_service(traces)
            .add_service(metrics_service)
            .add_service(logs_service)
            // tonic sets TCP_NODELAY only on listeners it creates itself.
            .serve_with_incoming_shutdown(TcpIncoming::from(grpc_listener).with_nodelay(Some(true)), closed());

        let http_app = otlp_http::router(Arc::clone(&pipeline), limits).layer(HttpServerLayer::new());
        let http_listener = http_listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        let http = axum::serve(http_listener, http_app).with_graceful_shutdown(closed());

        readiness.set_ready();
        tracing::info!(
            grpc_port = addresses.grpc.port(),
            http_port = addresses.http.port(),
            admin_port = addresses.admin.port(),
            "Listening"
        );

        let mut draining = readiness.subscribe();
        let receivers = async {
            let (grpc, http) = tokio::join!(grpc, http);
            grpc.context("OTLP/gRPC server failed")?;
            http.context("OTLP/HTTP server failed")
        };
        tokio::pin!(receivers);
        let grace_over = async {
            let _ = draining.wait_for(|state| *state == ReadinessState::Draining).await;
            tokio::time::sleep(drain_delay + grace).await;
        };
        let result = tokio::select! {
            result = &mut receivers => result,
            () = grace_over => {
                tracing::warn!("Grace period over; abandoning requests still in flight");
                Ok(())
            }
        };
        let deadline = grace_ends.get().copied().unwrap_or_else(|| tokio::time::Instant::now() + grace);
        let flush = forwarders.shutdown(deadline).await;
        tracing::info!(sent = flush.sent, dropped = flush.dropped, "Forwarding queues flushed");
        let _ = admin_stop.send(());
        let _ = admin.await;
        tracing::info!("Stopped");
        result
    }
}
