//! Builds the gateway from its settings and runs it until told to stop.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axiom25_observability::admin::{self, Readiness};
use axiom25_observability::http::HttpServerLayer;
use axiom25_observability::metrics::{self, MetricsHandle};
use axiom25_observability::shutdown::Drain;
use axum::Router;
use axum::extract::OriginalUri;
use axum::response::IntoResponse as _;
use tokio::net::TcpListener;

use crate::SERVICE;
use crate::backend::Backend;
use crate::ops::Ops;
use crate::problem::Problem;
use crate::rest::{self, RestState};
use crate::security::{self, ApiKeys, RateLimit};
use crate::settings::Settings;
use crate::ui;

/// A bound, not yet serving gateway.
#[derive(Debug)]
pub struct Application {
    settings: Settings,
    http_listener: TcpListener,
    admin_listener: TcpListener,
    http_addr: SocketAddr,
    admin_addr: SocketAddr,
    readiness: Readiness,
    metrics: MetricsHandle,
}

impl Application {
    /// Binds both listeners (port 0 picks free ones).
    ///
    /// # Errors
    /// When a listener cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let host = settings.server.host;
        let http_listener = TcpListener::bind((host, settings.server.http_port))
            .await
            .with_context(|| format!("binding the HTTP port {host}:{}", settings.server.http_port))?;
        let admin_listener = TcpListener::bind((host, settings.server.admin_port))
            .await
            .with_context(|| format!("binding the admin port {host}:{}", settings.server.admin_port))?;
        let http_addr = http_listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;
        Ok(Self {
            settings,
            http_listener,
            admin_listener,
            http_addr,
            admin_addr,
            readiness: Readiness::new(),
            metrics: metrics::install(&SERVICE),
        })
    }

    /// Address of the public HTTP listener.
    #[must_use]
    pub const fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Address of the admin listener.
    #[must_use]
    pub const fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves until `stop` resolves, then drains: not ready at once, the listener closed after
    /// `shutdown.drain_delay_ms`, requests in flight given up to `shutdown.grace_period_ms`.
    ///
    /// Readiness depends on nothing but the gateway itself: an api outage is answered with 503
    /// and shown on `/ops`, it does not take every gateway out of its load balancer.
    ///
    /// # Errors
    /// When the API key file cannot be read, or a server fails.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = &'static str> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self { settings, http_listener, admin_listener, http_addr, admin_addr, readiness, metrics } = self;

        let keys = ApiKeys::load(&settings.auth).context("reading the API key file")?;
        let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin_app = admin::router(readiness.clone(), metrics);
        let admin = tokio::spawn(async move {
            axum::serve(admin_listener, admin_app)
                .with_graceful_shutdown(async {
                    let _ = admin_stopped.await;
                })
                .await
        });

        let backend = Backend::new(&settings.api);
        tokio::spawn(backend.clone().run_resolver());
        if let Some(keys) = &keys {
            tokio::spawn(keys.clone().run_reloader(Duration::from_millis(settings.auth.reload_interval_ms)));
        }
        let ops = Ops::start(&settings.ops, backend.clone());
        let app = router(&settings, backend, keys, ops);

        let drain = Drain::new(&settings.shutdown, readiness.clone());
        let serving = axum::serve(http_listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(drain.on_signal(stop))
            .into_future();
        readiness.set_ready();
        tracing::info!(http_port = http_addr.port(), admin_port = admin_addr.port(), "Listening");
        let result = drain.serve(serving).await.context("HTTP server failed");
        let _ = admin_stop.send(());
        let _ = admin.await;
        tracing::info!("Stopped");
        result
    }
}

/// The public router: REST API (guarded by keys, rate limit, CORS), its OpenAPI document, the
/// pages; 404 and 405 as problems; security headers and telemetry on every answer.
fn router(settings: &Settings, backend: Backend, keys: Option<ApiKeys>, ops: Ops) -> Router {
    let keys_required = keys.is_some();
    let (matrix, openapi) = rest::router(RestState::new(backend, &settings.limits)).split_for_parts();
    let guard = security::Guard::new(keys, RateLimit::new(&settings.rate_limit));
    let matrix = matrix
        .layer(axum::middleware::from_fn_with_state(guard, security::guard))
        .layer(axum::middleware::from_fn(crate::release_header::copy_release_header));
    let app = Router::new()
        .merge(matrix)
        .merge(rest::openapi_router(openapi))
        .merge(ui::router(ops, keys_required))
        .fallback(async |OriginalUri(uri): OriginalUri| Problem::not_found(uri.path()).into_response())
        .method_not_allowed_fallback(async |method: http::Method, OriginalUri(uri): OriginalUri| {
            Problem::method_not_allowed(&method, uri.path()).into_response()
        })
        .layer(HttpServerLayer::new().with_trace_id_header());
    // CORS outside the guard: a browser's preflight carries no key.
    let app = match security::cors(&settings.cors) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    app.layer(security::headers())
}
