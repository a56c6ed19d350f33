//! Spawning an api and a gateway in the test process, on port 0, and calling the gateway.

use std::net::SocketAddr;

pub use axiom25_testkit::Answer;
use axiom25_testkit::{HttpClient, InProcess};
use axiom25_ui_gateway::{Application, Settings};
use bytes::Bytes;
use http::{Method, StatusCode};

/// A server running inside the test process, stopped when dropped.
pub type Running = InProcess<()>;

/// An api on a free port.
pub async fn spawn_api() -> (SocketAddr, Running) {
    let settings = axiom25_api::Settings::default().on_free_loopback_ports();
    let app = axiom25_api::Application::build(settings).await.expect("api builds");
    let addr = app.grpc_addr();
    (addr, axiom25_testkit::spawn((), |stop| app.run_until_stopped(stop)))
}

/// Gateway settings for a test: loopback, free ports, the api at `api`, the collector off.
pub fn gateway_settings(api: SocketAddr) -> Settings {
    let mut settings = Settings::default().on_free_loopback_ports();
    settings.api.endpoint = format!("http://{api}");
    settings.ops.collector_endpoint = String::new();
    settings.shutdown.drain_delay_ms = 0;
    settings
}

/// A gateway running inside the test process.
pub struct TestGateway {
    pub http_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    client: HttpClient,
    _running: Running,
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
    let running = axiom25_testkit::spawn((), |stop| app.run_until_stopped(stop));
    TestGateway { http_addr, admin_addr, client: HttpClient::new(), _running: running }
}

/// An api and a gateway in front of it.
pub async fn spawn_pair() -> (TestGateway, Running) {
    spawn_pair_with(|_| {}).await
}

/// An api and a gateway in front of it, the gateway's test settings changed by `tweak`.
pub async fn spawn_pair_with(tweak: impl FnOnce(&mut Settings)) -> (TestGateway, Running) {
    let (api, running) = spawn_api().await;
    let mut settings = gateway_settings(api);
    tweak(&mut settings);
    (spawn_gateway(settings).await, running)
}

impl TestGateway {
    /// Sends `method path` with `headers` and `body` to the public port.
    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Answer {
        self.client.send(method, self.http_addr, path, headers, body).await.expect("the gateway answers")
    }

    /// Sends to the admin port.
    pub async fn admin(&self, path: &str) -> Answer {
        self.client.get(self.admin_addr, path).await.expect("the gateway's admin port answers")
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

/// The trace the fake collector knows, with three spans over two services, one failed.
pub const KNOWN_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A stand-in telemetry-collector: canned `/readyz`, `/metrics` (span metrics that grow with each
/// read), `/api/v1/traces`, `/api/v1/traces/{id}` and `/api/v1/logs`.
pub struct FakeCollector {
    /// `http://127.0.0.1:port`.
    pub endpoint: String,
    /// Query strings of the `/api/v1/traces` requests received.
    pub trace_queries: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _running: Running,
}

/// Per read `n` of `/metrics`: 10n successful and n failed Multiply calls, with 5n of the
/// successful ones under 10 ms and all under 100 ms, the failed ones over 100 ms. Over any two
/// reads: an error ratio of 1/11, p50 = 19 ms and p99 = 100 ms by `histogram_quantile`.
fn fake_span_metrics(n: u64) -> String {
    let labels = |status: &str| {
        format!(
            "service_name=\"api\",span_name=\"axiom25.matrix.v1.MatrixService/Multiply\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"{status}\""
        )
    };
    let (ok, err) = (labels("STATUS_CODE_UNSET"), labels("STATUS_CODE_ERROR"));
    let mut text = String::from("# TYPE traces_span_metrics_calls_total counter\n");
    text += &format!("traces_span_metrics_calls_total{{{ok}}} {}\n", 10 * n);
    text += &format!("traces_span_metrics_calls_total{{{err}}} {n}\n");
    for (le, ok_count, err_count) in [("0.005", 0, 0), ("0.01", 5 * n, 0), ("0.1", 10 * n, 0), ("+Inf", 10 * n, n)] {
        text += &format!("traces_span_metrics_duration_seconds_bucket{{{ok},le=\"{le}\"}} {ok_count}\n");
        text += &format!("traces_span_metrics_duration_seconds_bucket{{{err},le=\"{le}\"}} {err_count}\n");
    }
    text += &format!("traces_span_metrics_duration_seconds_count{{{ok}}} {}\n", 10 * n);
    text += &format!("traces_span_metrics_duration_seconds_count{{{err}}} {n}\n");
    text
}

pub async fn spawn_fake_collector() -> FakeCollector {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, RawQuery};
    use axum::response::IntoResponse as _;
    use axum::routing::get;
    use serde_json::json;

    let reads = Arc::new(AtomicU64::new(0));
    let trace_queries = Arc::new(Mutex::new(Vec::new()));
    let queries = trace_queries.clone();
    let span = |id: &str, parent: &str, service: &str, name: &str, start: u64, end: u64, status: &str| {
        json!({"trace_id": KNOWN_TRACE, "span_id": id, "parent_span_id": parent, "service": service, "name": name,
            "kind": "SPAN_KIND_SERVER", "start_time_unix_nano": start, "end_time_unix_nano": end,
            "status_code": status, "status_message": if status == "STATUS_CODE_ERROR" { "matrix is singular" } else { "" },
            "attributes": {"http.route": "/api/v1/matrix/{op}", "attempt": 1}})
    };
    let trace = json!({"trace_id": KNOWN_TRACE, "spans": [
        span("00f067aa0ba902b7", "", "ui-gateway", "POST /api/v1/matrix/{op}", 1_000_000_000, 1_040_000_000, "STATUS_CODE_ERROR"),
        span("00f067aa0ba902b8", "00f067aa0ba902b7", "ui-gateway", "axiom25.matrix.v1.MatrixService/Invert", 1_005_000_000, 1_035_000_000, "STATUS_CODE_ERROR"),
        span("00f067aa0ba902b9", "00f067aa0ba902b8", "api", "axiom25.matrix.v1.MatrixService/Invert", 1_010_000_000, 1_030_000_000, "STATUS_CODE_ERROR"),
    ]});
    let router = axum::Router::new()
        .route("/readyz", get(async || "ready"))
        .route("/metrics", get(async move || fake_span_metrics(reads.fetch_add(1, Ordering::SeqCst) + 1)))
        .route(
            "/api/v1/traces",
            get(async move |RawQuery(query): RawQuery| {
                queries.lock().unwrap().push(query.unwrap_or_default());
                axum::Json(json!({"traces": [{"trace_id": KNOWN_TRACE, "root_service": "ui-gateway",
                    "root_name": "POST /api/v1/matrix/{op}", "start_time_unix_nano": 1_000_000_000u64,
                    "duration_ns": 40_000_000u64, "span_count": 3, "error": true}]}))
            }),
        )
        .route(
            "/api/v1/traces/{id}",
            get(async move |Path(id): Path<String>| {
                if id == KNOWN_TRACE {
                    axum::Json(trace.clone()).into_response()
                } else {
                    (StatusCode::NOT_FOUND, [("content-type", "application/problem+json")], "{\"status\":404}")
                        .into_response()
                }
            }),
        )
        .route(
            "/api/v1/logs",
            get(async || {
                // Out of time order, as records of two services can be.
                axum::Json(json!({"logs": [
                    {"time_unix_nano": 1_031_000_000u64, "severity_text": "WARN",
                        "body": "Invert refused: matrix is singular", "service": "api", "trace_id": KNOWN_TRACE,
                        "span_id": "00f067aa0ba902b9", "attributes": {"rpc.grpc.status_code": 9, "operation": "invert"}},
                    {"time_unix_nano": 1_012_000_000u64, "severity_text": "DEBUG", "body": "Call finished",
                        "service": "ui-gateway", "trace_id": KNOWN_TRACE, "span_id": "b7ad6b7169203331",
                        "attributes": {}},
                ]}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let running = axiom25_testkit::spawn((), |stop| async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                stop.await;
            })
            .await?;
        anyhow::Ok(())
    });
    FakeCollector { endpoint, trace_queries, _running: running }
}

/// `http://127.0.0.1:port` where nothing listens.
pub fn dead_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// Settings for a gateway in front of `api` that reads the collector at `collector` ("" for none),
/// polling every 50 ms.
pub fn ops_settings(api: SocketAddr, collector: &str) -> Settings {
    let mut settings = gateway_settings(api);
    settings.ops.collector_endpoint = collector.to_owned();
    settings.ops.poll_interval_ms = 50;
    settings.ops.collector_timeout_ms = 1_000;
    settings
}

impl TestGateway {
    /// `GET path` until its body satisfies `done`, for at most 10 s; the last answer either way.
    pub async fn get_until(&self, path: &str, done: impl Fn(&str) -> bool) -> Answer {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let answer = self.get(path).await;
            if done(&String::from_utf8_lossy(&answer.body)) || tokio::time::Instant::now() > deadline {
                return answer;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The body as text.
    pub async fn text(&self, path: &str) -> (StatusCode, String) {
        let answer = self.get(path).await;
        (answer.status, answer.text())
    }
}
