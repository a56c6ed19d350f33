//! The admin HTTP surface every service serves on its own port: `/livez`, `/readyz`, `/metrics`.
//!
//! Liveness only says the process answers; readiness follows the service's lifecycle
//! (starting → ready → draining) so load balancers stop sending work before shutdown begins.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use axum::{Router, extract::State, http::StatusCode, http::header, response::IntoResponse, routing::get};
use tokio::sync::watch;

use crate::metrics::MetricsHandle;

/// Where a service is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadinessState {
    /// Listeners are being set up; not yet taking work.
    Starting,
    /// Taking work.
    Ready,
    /// Shutting down: finishing work in flight, taking no new work.
    Draining,
}

impl ReadinessState {
    /// Lower-case name, as `/readyz` reports it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Draining => "draining",
        }
    }
}

/// Shared, observable readiness of one service. Clones share the same state.
#[derive(Debug, Clone)]
pub struct Readiness {
    state: Arc<watch::Sender<ReadinessState>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// A new readiness in [`ReadinessState::Starting`].
    #[must_use]
    pub fn new() -> Self {
        Self { state: Arc::new(watch::Sender::new(ReadinessState::Starting)) }
    }

    /// Marks the service ready, unless it is already draining (draining is final).
    pub fn set_ready(&self) {
        self.state.send_if_modified(|state| {
            let change = *state == ReadinessState::Starting;
            if change {
                *state = ReadinessState::Ready;
            }
            change
        });
    }

    /// Marks the service draining; it never becomes ready again.
    pub fn set_draining(&self) {
        self.state.send_replace(ReadinessState::Draining);
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> ReadinessState {
        *self.state.borrow()
    }

    /// A receiver that sees every change, e.g. to drive gRPC health.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<ReadinessState> {
        self.state.subscribe()
    }
}

/// Renders the `/metrics` body.
type Render = std::sync::Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
struct AdminState {
    readiness: Readiness,
    render: Render,
}

/// The admin router: `/livez`, `/readyz` and `/metrics`.
pub fn router(readiness: Readiness, metrics: MetricsHandle) -> Router {
    router_rendering(readiness, move || metrics.render())
}

/// The admin router for a service whose `/metrics` holds more than the recorder's series (the
/// collector adds the series it derives and receives): `render` produces the whole exposition.
pub fn router_rendering(readiness: Readiness, render: impl Fn() -> String + Send + Sync + 'static) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(AdminState { readiness, render: std::sync::Arc::new(render) })
}

async fn livez() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let current = state.readiness.state();
    let code = if current == ReadinessState::Ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, format!("{}\n", current.as_str()))
}

async fn render_metrics(State(state): State<AdminState>) -> impl IntoResponse {
    // Rendering walks every series; keep it off the reactor threads that serve requests.
    let render = state.render.clone();
    let body = tokio::task::spawn_blocking(move || render()).await.unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

/// Asks a service's own `/readyz` whether it is ready: the container health check of images that
/// carry no shell and no curl (`<binary> healthcheck`). A wildcard bind address is probed on
/// loopback.
#[must_use]
pub fn probe_ready(host: IpAddr, port: u16, timeout: Duration) -> bool {
    let host = if host.is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { host };
    http_get(SocketAddr::new(host, port), "/readyz", timeout).is_ok_and(|(status, _)| status == 200)
}

/// A minimal blocking HTTP/1.1 GET of an admin endpoint: (status, body). For health checks and
/// tests, which must not pull in an HTTP client; not for arbitrary servers (no chunked bodies).
///
/// # Errors
/// When the connection fails, times out, or the answer is not HTTP.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    http_call(addr, "GET", path, timeout)
}

/// [`http_get`]'s twin for an admin action with no body, e.g. `POST /admin/reconnect-clients`.
///
/// # Errors
/// As [`http_get`].
pub fn http_post(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    http_call(addr, "POST", path, timeout)
}

fn http_call(addr: SocketAddr, method: &str, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let not_http = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let status = response.split(' ').nth(1).and_then(|code| code.parse().ok()).ok_or_else(not_http)?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get_path(router: Router, path: &str) -> (StatusCode, String) {
        let request = http::Request::get(path).body(Body::empty()).expect("request");
        let response = router.oneshot(request).await.expect("response");
        let status = response.status();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn readyz_follows_starting_ready_and_draining() {
        let readiness = Readiness::new();
        let router =
            router(readiness.clone(), crate::metrics::MetricsHandle::new(&crate::ServiceInfo::new("t", "0", None)));
        assert_eq!(get_path(router.clone(), "/readyz").await, (StatusCode::SERVICE_UNAVAILABLE, "starting\n".into()));
        readiness.set_ready();
        assert_eq!(get_path(router.clone(), "/readyz").await, (StatusCode::OK, "ready\n".into()));
        readiness.set_draining();
        readiness.set_ready();
        assert_eq!(get_path(router.clone(), "/readyz").await, (StatusCode::SERVICE_UNAVAILABLE, "draining\n".into()));
        assert_eq!(get_path(router, "/livez").await.0, StatusCode::OK);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_health_check_probe_follows_readiness() {
        let readiness = Readiness::new();
        let app =
            router(readiness.clone(), crate::metrics::MetricsHandle::new(&crate::ServiceInfo::new("t", "0", None)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let probe = move || {
            tokio::task::spawn_blocking(move || probe_ready(IpAddr::from([0, 0, 0, 0]), port, Duration::from_secs(2)))
        };
        assert!(!probe().await.expect("join"), "starting is not ready");
        readiness.set_ready();
        assert!(probe().await.expect("join"));
        readiness.set_draining();
        assert!(!probe().await.expect("join"), "draining is not ready");
        let closed =
            tokio::task::spawn_blocking(|| probe_ready(IpAddr::from([127, 0, 0, 1]), 9, Duration::from_secs(1)));
        assert!(!closed.await.expect("join"), "nothing listening is not ready");
    }

    #[tokio::test]
    async fn metrics_shows_build_info_and_process_metrics() {
        let router =
            router(Readiness::new(), crate::metrics::MetricsHandle::new(&crate::ServiceInfo::new("t", "0", None)));
        let (status, body) = get_path(router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("axiom25_build_info{"), "{body}");
        assert!(body.contains("process_resident_memory_bytes"), "{body}");
        assert!(body.contains("process_start_time_seconds"), "{body}");
    }
}
