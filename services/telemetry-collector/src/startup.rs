//! Builds the collector from its settings and runs it until told to stop: its three listeners,
//! what each serves, and the forwarding flush after the drain; the drain is [`Lifecycle`]'s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axiom25_observability::admin::{self, Readiness};
use axiom25_observability::grpc::GrpcServerLayer;
use axiom25_observability::http::HttpServerLayer;
use axiom25_observability::lifecycle::{Lifecycle, Listener, Port};
use axiom25_observability::metrics::MetricsHandle;
use tonic::transport::Server;

use crate::SERVICE;
use crate::forward::Forwarders;
use crate::limiter::MemoryLimiter;
use crate::metric_store::MetricStore;
use crate::pipeline::{Pipeline, Stores};
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
    grpc: Listener,
    http: Listener,
    admin: Listener,
    metrics: MetricsHandle,
    limiter: MemoryLimiter,
    stores: Stores,
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
        let (host, server) = (settings.server.host, &settings.server);
        let grpc = Listener::bind(Port::Grpc, "OTLP/gRPC", (host, server.grpc_port)).await?;
        let http = Listener::bind(Port::Http, "OTLP/HTTP", (host, server.http_port)).await?;
        let admin = Listener::bind(Port::Admin, "admin", (host, server.admin_port)).await?;
        let metrics = MetricsHandle::new(&SERVICE);
        let limiter = MemoryLimiter::new(&settings.memory);
        limiter.spawn_sampler(Duration::from_millis(settings.memory.check_interval_ms), &metrics);
        // The stores and forwarders register their series now, into this collector's registry.
        let forwarders = metrics.in_scope(|| Forwarders::start(&settings.forward));
        metrics.in_scope(|| {
            Ok(Self {
                grpc,
                http,
                admin,
                limiter,
                stores: Stores {
                    spans: Arc::new(SpanStore::new(settings.span_store.clone())),
                    logs: Arc::new(LogStore::new(settings.log_store.clone())),
                    span_metrics: Arc::new(SpanMetrics::new(&settings.span_metrics)),
                    metric_store: Arc::new(MetricStore::new(&settings.metric_store)),
                },
                forwarders: forwarders.context("starting the upstream forwarders")?,
                settings,
                metrics: metrics.clone(),
            })
        })
    }

    /// The span store, which outlives the server (tests count what a stopped collector received).
    #[must_use]
    pub fn span_store(&self) -> Arc<SpanStore> {
        Arc::clone(&self.stores.spans)
    }

    /// This collector's metrics registry (a binary also makes it the process's global recorder).
    #[must_use]
    pub fn metrics(&self) -> &MetricsHandle {
        &self.metrics
    }

    /// Where the listeners are bound.
    ///
    /// # Errors
    /// Never: the addresses are known since binding (kept fallible for existing callers).
    pub fn addresses(&self) -> std::io::Result<Addresses> {
        Ok(Addresses { grpc: self.grpc.local_addr(), http: self.http.local_addr(), admin: self.admin.local_addr() })
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
        let Self { settings, grpc, http, admin, metrics, limiter, stores, forwarders } = self;
        let pipeline = Arc::new(Pipeline::new(limiter.clone(), stores.clone(), forwarders.clone(), metrics.clone()));
        let Stores { spans, logs, span_metrics, metric_store } = stores;

        let exposition = {
            let metrics = metrics.clone();
            move || {
                // Rendering publishes the stores' series gauges: into this collector's registry.
                metrics.in_scope(|| {
                    let mut derived = String::new();
                    span_metrics.render(&mut derived);
                    metric_store.render_page(&metrics.render(), &[&derived])
                })
            }
        };
        let readiness = Readiness::new();
        let admin_app = admin::router_rendering(readiness.clone(), exposition)
            .merge(query::router(spans, logs).layer(HttpServerLayer::new(metrics.clone())));

        let limits = settings.limits;
        let (traces, metrics_service, logs_service) = otlp_grpc::services(Arc::clone(&pipeline), limits);
        let otlp_grpc = Server::builder()
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            .layer(GrpcServerLayer::new(metrics.clone()))
            .layer(AdmissionLayer::new(limiter, limits.max_decompressed_bytes))
            .add_service(traces)
            .add_service(metrics_service)
            .add_service(logs_service);
        let otlp_http = otlp_http::router(pipeline, limits).layer(HttpServerLayer::new(metrics));

        Lifecycle::new(&settings.shutdown, readiness.clone())
            .admin(admin, admin_app)
            .grpc(grpc, |incoming, stop| otlp_grpc.serve_with_incoming_shutdown(incoming, stop))
            .http(http, otlp_http)
            // The forwarding queues get what the receivers leave of the grace period.
            .after_drain(move |deadline| async move {
                let flush = forwarders.shutdown(deadline).await;
                tracing::info!(sent = flush.sent, dropped = flush.dropped, "Forwarding queues flushed");
            })
            .run_until_stopped(stop)
            .await?;
        Ok(())
    }
}
