//! Builds the gateway from its settings and runs it until told to stop: its two listeners and
//! what each serves; the drain is [`Lifecycle`]'s.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axiom25_observability::admin::{self, Readiness};
use axiom25_observability::http::HttpServerLayer;
use axiom25_observability::lifecycle::{Lifecycle, Listener, Port};
use axiom25_observability::metrics::MetricsHandle;
use axum::Router;
use axum::extract::OriginalUri;
use axum::response::IntoResponse as _;

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
    http: Listener,
    admin: Listener,
    metrics: MetricsHandle,
}

impl Application {
    /// Binds both listeners (port 0 picks free ones).
    ///
    /// # Errors
    /// When a listener cannot be bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let (host, server) = (settings.server.host, &settings.server);
        let http = Listener::bind(Port::Http, "HTTP", (host, server.http_port)).await?;
        let admin = Listener::bind(Port::Admin, "admin", (host, server.admin_port)).await?;
        Ok(Self { settings, http, admin, metrics: MetricsHandle::new(&SERVICE) })
    }

    /// Address of the public HTTP listener.
    #[must_use]
    pub const fn http_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    /// Address of the admin listener.
    #[must_use]
    pub const fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr()
    }

    /// This gateway's metrics registry (a binary also makes it the process's global recorder).
    #[must_use]
    pub fn metrics(&self) -> &MetricsHandle {
        &self.metrics
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
        let Self { settings, http, admin, metrics } = self;
        let keys = ApiKeys::load(&settings.auth).context("reading the API key file")?;
        let backend = Backend::new(&settings.api, metrics.clone());
        // Background tasks count into this gateway's registry too.
        tokio::spawn(metrics.scope(backend.clone().run_resolver()));
        if let Some(keys) = &keys {
            let reload = Duration::from_millis(settings.auth.reload_interval_ms);
            tokio::spawn(metrics.scope(keys.clone().run_reloader(reload)));
        }
        let ops = Ops::start(&settings.ops, backend.clone(), &metrics);
        let app = router(&settings, backend, keys, ops, &metrics);

        let readiness = Readiness::new();
        Lifecycle::new(&settings.shutdown, readiness.clone())
            .admin(admin, admin::router(readiness, metrics))
            .http(http, app)
            .run_until_stopped(stop)
            .await?;
        Ok(())
    }
}

/// The public router: REST API (guarded by keys, rate limit, CORS), its OpenAPI document, the
/// pages; 404 and 405 as problems; security headers and telemetry on every answer.
fn router(settings: &Settings, backend: Backend, keys: Option<ApiKeys>, ops: Ops, metrics: &MetricsHandle) -> Router {
    let keys_required = keys.is_some();
    let (matrix, openapi) = rest::router(RestState::new(backend, &settings.limits)).split_for_parts();
    let guard = security::Guard::new(keys, RateLimit::new(&settings.rate_limit));
    let matrix = matrix.layer(axum::middleware::from_fn_with_state(guard, security::guard));
    let app = Router::new()
        .merge(matrix)
        .merge(rest::openapi_router(openapi))
        .merge(ui::router(ops, keys_required))
        .fallback(async |OriginalUri(uri): OriginalUri| Problem::not_found(uri.path()).into_response())
        .method_not_allowed_fallback(async |method: http::Method, OriginalUri(uri): OriginalUri| {
            Problem::method_not_allowed(&method, uri.path()).into_response()
        })
        .layer(HttpServerLayer::new(metrics.clone()).with_trace_id_header());
    // CORS outside the guard: a browser's preflight carries no key.
    let app = match security::cors(&settings.cors) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    app.layer(security::headers())
}
