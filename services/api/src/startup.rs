//! Builds the api from its settings and runs it until told to stop.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axiom25_observability::admin::{self, Readiness, ReadinessState};
use axiom25_observability::grpc::GrpcServerLayer;
use axiom25_observability::metrics::{self, MetricsHandle};
use axiom25_observability::shutdown::Drain;
use axiom25_proto::matrix::v1::matrix_service_server::MatrixServiceServer;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::SERVICE;
use crate::compute::ComputeGate;
use crate::convert::Limits;
use crate::edge::EdgeLayer;
use crate::faults::FaultLayer;
use crate::release::{ReleaseLayer, record_release_info};
use crate::service::MatrixApi;
use crate::settings::Settings;

/// Name under which gRPC health reports the Matrix service.
pub const MATRIX_SERVICE_NAME: &str = "axiom25.matrix.v1.MatrixService";

/// A bound, not yet serving api.
#[derive(Debug)]
pub struct Application {
    settings: Settings,
    grpc_listener: TcpListener,
    admin_listener: TcpListener,
    grpc_addr: SocketAddr,
    admin_addr: SocketAddr,
    readiness: Readiness,
    metrics: MetricsHandle,
}

impl Application {
    /// Binds both listeners (port 0 picks free ones) and prepares the service.
    ///
    /// # Errors
    /// When a listener cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let host = settings.server.host;
        let grpc_listener = TcpListener::bind((host, settings.server.grpc_port))
            .await
            .with_context(|| format!("binding the gRPC port {host}:{}", settings.server.grpc_port))?;
        let admin_listener = TcpListener::bind((host, settings.server.admin_port))
            .await
            .with_context(|| format!("binding the admin port {host}:{}", settings.server.admin_port))?;
        let grpc_addr = grpc_listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;
        configure_parallelism(settings.compute.threads_per_request);
        Ok(Self {
            settings,
            grpc_listener,
            admin_listener,
            grpc_addr,
            admin_addr,
            readiness: Readiness::new(),
            metrics: metrics::install(&SERVICE),
        })
    }

    /// Address of the gRPC listener.
    #[must_use]
    pub const fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Address of the admin listener.
    #[must_use]
    pub const fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves until `stop` resolves, then drains: NOT_SERVING and not ready at once, the
    /// listener closed after `shutdown.drain_delay_ms`, calls in flight given up to
    /// `shutdown.grace_period_ms` to finish.
    ///
    /// # Errors
    /// When a server fails.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = &'static str> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self { settings, grpc_listener, admin_listener, grpc_addr, admin_addr, readiness, metrics } = self;

        let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin_app = admin::router(readiness.clone(), metrics);
        let admin = tokio::spawn(async move {
            axum::serve(admin_listener, admin_app)
                .with_graceful_shutdown(async {
                    let _ = admin_stopped.await;
                })
                .await
        });

        let (health, health_service) = tonic_health::server::health_reporter();
        set_health(&health, ServingStatus::NotServing).await;
        tokio::spawn(follow_readiness(readiness.clone(), health));

        let reflection_v1 = reflection().build_v1().context("building reflection v1")?;
        let reflection_v1alpha = reflection().build_v1alpha().context("building reflection v1alpha")?;

        let limits = &settings.limits;
        let workers = match settings.compute.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let api = MatrixApi::new(
            Limits { max_rows: limits.max_rows, max_cols: limits.max_cols },
            ComputeGate::new(limits.max_in_flight, workers),
        );
        let matrix = MatrixServiceServer::new(api)
            .max_decoding_message_size(limits.max_message_bytes)
            .max_encoding_message_size(limits.max_response_bytes());

        let grpc = &settings.grpc;
        // Windows of 1 MiB / 4 MiB: a 64×64 request (64 KiB) would otherwise wait a round trip for
        // a WINDOW_UPDATE at the 64 KiB HTTP/2 default.
        let mut server = Server::builder()
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            .http2_keepalive_interval(settings.keepalive_interval())
            .http2_keepalive_timeout(Some(Duration::from_millis(grpc.keepalive_timeout_ms)));
        if grpc.max_connection_age_ms > 0 {
            server = server
                .max_connection_age(Duration::from_millis(grpc.max_connection_age_ms))
                .max_connection_age_grace(Duration::from_millis(grpc.max_connection_age_grace_ms));
        }

        let release = settings.release.identity(SERVICE.version);
        record_release_info(&release);
        settings.faults.announce();

        let drain = Drain::new(&settings.shutdown, readiness.clone());
        let serving = server
            .layer(GrpcServerLayer)
            .layer(ReleaseLayer::new(&release))
            .layer(EdgeLayer::new(limits.max_message_bytes))
            .layer(FaultLayer::new(settings.faults.clone()))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(matrix)
            // Nagle's algorithm with delayed ACKs costs 40 ms per small answer; tonic sets
            // TCP_NODELAY only on listeners it creates, so set it on ours.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
                drain.on_signal(stop),
            );

        readiness.set_ready();
        tracing::info!(grpc_port = grpc_addr.port(), admin_port = admin_addr.port(), %release, "Listening");
        let result = drain.serve(serving).await.context("gRPC server failed");
        let _ = admin_stop.send(());
        let _ = admin.await;
        tracing::info!("Stopped");
        result
    }
}

/// Reflection over every service this server offers.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(axiom25_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health.set_service_status(MATRIX_SERVICE_NAME, status).await;
}

/// gRPC health mirrors readiness: SERVING only while ready.
async fn follow_readiness(readiness: Readiness, health: HealthReporter) {
    let mut changes = readiness.subscribe();
    loop {
        let status = if *changes.borrow_and_update() == ReadinessState::Ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        set_health(&health, status).await;
        if changes.changed().await.is_err() {
            return;
        }
    }
}

fn configure_parallelism(threads_per_request: usize) {
    let threads = match threads_per_request {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    faer::set_global_parallelism(if threads <= 1 { faer::Par::Seq } else { faer::Par::rayon(threads) });
}
