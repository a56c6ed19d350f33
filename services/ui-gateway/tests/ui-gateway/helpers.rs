//! Spawning an api and a gateway in the test process, on port 0, and calling the gateway.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axiom25_ui_gateway::{Application, Settings};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;

/// A server running inside the test process, stopped when dropped.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An api on a free port.
pub async fn spawn_api() -> (SocketAddr, Running) {
    let mut settings = axiom25_api::Settings::default();
    settings.server.host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    settings.server.grpc_port = 0;
    settings.server.admin_port = 0;
    let app = axiom25_api::Application::build(settings).await.expect("api builds");
    let addr = app.grpc_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
        "test"
    }));
    (addr, Running { stop: Some(stop) })
}

/// Gateway settings for a test: loopback, free ports, the api at `api`, the collector off.
pub fn gateway_settings(api: SocketAddr) -> Settings {
    let mut settings = Settings::default();
    settings.server.host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    settings.server.http_port = 0;
    settings.server.admin_port = 0;
    settings.api.endpoint = format!("http://{api}");
    settings.ops.collector_endpoint = String::new();
    settings.shutdown.drain_delay_ms = 0;
    settings
}

/// A gateway running inside the test process.
pub struct TestGateway {
    pub http_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    _running: Running,
}

/// An answer: status, headers, body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Installs the process's log subscriber and trace provider once, as the binary does, so spans
/// get real ids (`x-trace-id`, `traceparent` to the api).
fn init_telemetry() {
    static TELEMETRY: std::sync::OnceLock<Option<axiom25_observability::telemetry::TelemetryGuard>> =
        std::sync::OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let settings = axiom25_observability::telemetry::TelemetrySettings {
            log_level: "warn,axiom25_observability=info".into(),
            ..Default::default()
        };
        axiom25_observability::telemetry::init(&settings, &axiom25_ui_gateway::SERVICE).ok()
    });
}

pub async fn spawn_gateway(settings: Settings) -> TestGateway {
    init_telemetry();
    let app = Application::build(settings).await.expect("gateway builds");
    let (http_addr, admin_addr) = (app.http_addr(), app.admin_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
        "test"
    }));
    TestGateway {
        http_addr,
        admin_addr,
        client: Client::builder(TokioExecutor::new()).build_http(),
        _running: Running { stop: Some(stop) },
    }
}

/// An api and a gateway in front of it.
pub async fn spawn_pair() -> (TestGateway, Running) {
    let (api, running) = spawn_api().await;
    (spawn_gateway(gateway_settings(api)).await, running)
}

impl TestGateway {
    /// Sends `method path` with `headers` and `body` to the public port.
    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Answer {
        self.send_to(self.http_addr, method, path, headers, body).await
    }

    /// Sends to the admin port.
    pub async fn admin(&self, path: &str) -> Answer {
        self.send_to(self.admin_addr, Method::GET, path, &[], Bytes::new()).await
    }

    async fn send_to(
        &self,
        addr: SocketAddr,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(format!("http://{addr}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response =
            self.client.request(request.body(Full::new(body.into())).unwrap()).await.expect("gateway answers");
        let (parts, body) = response.into_parts();
        Answer { status: parts.status, headers: parts.headers, body: body.collect().await.expect("body").to_bytes() }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }

    /// `POST /api/v1/matrix/{op}` with a JSON body.
    pub async fn post_json(&self, op: &str, body: serde_json::Value) -> Answer {
        self.send(
            Method::POST,
            &format!("/api/v1/matrix/{op}"),
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }
}
