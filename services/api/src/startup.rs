//! Builds the api from its settings and runs it until told to stop: its two listeners and what
//! each serves; the drain is [`Lifecycle`]'s.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axiom25_observability::admin::{self, Readiness};
use axiom25_observability::grpc::GrpcServerLayer;
use axiom25_observability::lifecycle::{self, Lifecycle, Listener, Port};
use axiom25_observability::metrics::MetricsHandle;
use axiom25_observability::reconnect;
use axiom25_proto::matrix::v1::matrix_service_server::MatrixServiceServer;
use tonic::transport::Server;

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
    grpc: Listener,
    admin: Listener,
    metrics: MetricsHandle,
}

impl Application {
    /// Binds both listeners (port 0 picks free ones) and prepares the service.
    ///
    /// # Errors
    /// When a listener cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let (host, server) = (settings.server.host, &settings.server);
        let grpc = Listener::bind(Port::Grpc, "gRPC", (host, server.grpc_port)).await?;
        let admin = Listener::bind(Port::Admin, "admin", (host, server.admin_port)).await?;
        configure_parallelism(settings.compute.threads_per_request);
        Ok(Self { settings, grpc, admin, metrics: MetricsHandle::new(&SERVICE) })
    }

    /// Address of the gRPC listener.
    #[must_use]
    pub const fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr()
    }

    /// Address of the admin listener.
    #[must_use]
    pub const fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr()
    }

    /// This api's metrics registry (a binary also makes it the process's global recorder).
    #[must_use]
    pub fn metrics(&self) -> &MetricsHandle {
        &self.metrics
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
        let Self { settings, grpc, admin, metrics } = self;
        let readiness = Readiness::new();
        let health = lifecycle::grpc_health(&readiness, &[MATRIX_SERVICE_NAME]).await;
        let reflection_v1 = reflection().build_v1().context("building reflection v1")?;
        let reflection_v1alpha = reflection().build_v1alpha().context("building reflection v1alpha")?;

        let limits = &settings.limits;
        let workers = match settings.compute.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        // The compute gate registers its gauges now, into this api's registry.
        let gate = metrics.in_scope(|| ComputeGate::new(limits.max_in_flight, workers));
        let api = MatrixApi::new(Limits { max_rows: limits.max_rows, max_cols: limits.max_cols }, gate);
        let matrix = MatrixServiceServer::new(api)
            .max_decoding_message_size(limits.max_message_bytes)
            .max_encoding_message_size(limits.max_response_bytes());

        let grpc_settings = &settings.grpc;
        // Windows of 1 MiB / 4 MiB: a 64×64 request (64 KiB) would otherwise wait a round trip for
        // a WINDOW_UPDATE at the 64 KiB HTTP/2 default.
        let mut server = Server::builder()
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            .http2_keepalive_interval(settings.keepalive_interval())
            .http2_keepalive_timeout(Some(Duration::from_millis(grpc_settings.keepalive_timeout_ms)));
        if grpc_settings.max_connection_age_ms > 0 {
            server = server
                .max_connection_age(Duration::from_millis(grpc_settings.max_connection_age_ms))
                .max_connection_age_grace(Duration::from_millis(grpc_settings.max_connection_age_grace_ms));
        }
        let release = settings.release.identity(SERVICE.version);
        metrics.in_scope(|| {
            record_release_info(&release);
            settings.faults.announce();
        });
        tracing::info!(%release, "Release");
        let router = server
            .layer(GrpcServerLayer::new(metrics.clone()))
            .layer(ReleaseLayer::new(&release))
            .layer(EdgeLayer::new(limits.max_message_bytes))
            .layer(FaultLayer::new(settings.faults.clone()))
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(matrix);

        // `POST /admin/reconnect-clients` (docs/contracts.md §8): the colour losing traffic asks its
        // clients to reconnect, giving calls in flight the grace of a connection's maximum age.
        let (reconnect, requests) = reconnect::channel(&metrics);
        let reconnect_grace = Duration::from_millis(grpc_settings.max_connection_age_grace_ms);
        Lifecycle::new(&settings.shutdown, readiness.clone())
            .admin(admin, admin::router(readiness, metrics).merge(reconnect.router()))
            .grpc_reconnectable(grpc, requests, reconnect_grace, move |incoming, stop| {
                router.clone().serve_with_incoming_shutdown(incoming, stop)
            })
            .run_until_stopped(stop)
            .await?;
        Ok(())
    }
}

/// Reflection over every service this server offers.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(axiom25_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

fn configure_parallelism(threads_per_request: usize) {
    let threads = match threads_per_request {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    faer::set_global_parallelism(if threads <= 1 { faer::Par::Seq } else { faer::Par::rayon(threads) });
}
