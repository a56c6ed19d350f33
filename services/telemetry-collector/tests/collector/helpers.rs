//! Spawning the collector for tests on free loopback ports, and talking to it.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use axiom25_telemetry_collector::startup::Addresses;
use axiom25_telemetry_collector::store::SpanStore;
use axiom25_telemetry_collector::{Application, Settings};
pub use axiom25_testkit::Exposition;
use axiom25_testkit::{Binary, HttpClient, InProcess, RunningBinary};
use hyper::body::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use tonic::transport::{Channel, Endpoint};

/// A collector running inside the test process; stopped when dropped.
pub struct TestCollector {
    pub addresses: Addresses,
    pub channel: Channel,
    /// Its span store, readable after it stopped.
    pub spans: Arc<SpanStore>,
    running: InProcess<()>,
}

impl TestCollector {
    pub fn traces(&self) -> TraceServiceClient<Channel> {
        TraceServiceClient::new(self.channel.clone())
    }

    pub fn metrics(&self) -> MetricsServiceClient<Channel> {
        MetricsServiceClient::new(self.channel.clone())
    }

    pub fn logs(&self) -> LogsServiceClient<Channel> {
        LogsServiceClient::new(self.channel.clone())
    }

    /// Stops the collector and waits until it has flushed and exited.
    pub async fn stop(self) {
        self.running.stop().await.expect("collector ran");
    }

    /// GET on the admin port, answer parsed as JSON.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, _, body) = request(self.addresses.admin, "GET", path, &[], Vec::new()).await;
        (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }

    /// The `/metrics` exposition.
    pub async fn exposition(&self) -> Exposition {
        exposition(self.addresses.admin).await
    }

    /// POST to the OTLP/HTTP port.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> HttpAnswer {
        request(self.addresses.http, "POST", path, headers, body).await
    }
}

/// Settings for a test: loopback, free ports, short grace.
pub fn test_settings() -> Settings {
    let mut settings = Settings::default().on_free_loopback_ports();
    settings.shutdown.grace_period_ms = 5_000;
    // The test process holds many collectors and clients: pressure is tested on purpose only.
    settings.memory.limit_mib = 0;
    settings
}

pub async fn spawn_collector() -> TestCollector {
    spawn_collector_with(|_| {}).await
}

pub async fn spawn_collector_with(tweak: impl FnOnce(&mut Settings)) -> TestCollector {
    let mut settings = test_settings();
    tweak(&mut settings);
    start(settings).await
}

/// Starts a collector with exactly these settings.
pub async fn start(settings: Settings) -> TestCollector {
    axiom25_telemetry_collector::limiter::count_heap_with(|| crate::HEAP.allocated());
    let app = Application::build(settings).await.expect("collector builds");
    let addresses = app.addresses().expect("addresses");
    let spans = app.span_store();
    let running = axiom25_testkit::spawn((), |stop| app.run_until_stopped(stop));
    let channel =
        Endpoint::from_shared(format!("http://{}", addresses.grpc)).expect("uri").connect().await.expect("connects");
    TestCollector { addresses, channel, spans, running }
}

/// Status, headers and body of an HTTP answer.
pub type HttpAnswer = (u16, http::HeaderMap, Bytes);

/// One HTTP/1.1 request.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> HttpAnswer {
    let method = http::Method::from_bytes(method.as_bytes()).expect("method");
    let answer = HttpClient::new().send(method, addr, path, headers, body).await.expect("HTTP answer within 30 s");
    (answer.status.as_u16(), answer.headers, answer.body)
}

/// The `/metrics` exposition of the admin port `admin`.
pub async fn exposition(admin: SocketAddr) -> Exposition {
    let answer = HttpClient::new().get(admin, "/metrics").await.expect("/metrics answers");
    assert_eq!(answer.status, 200);
    Exposition::parse(&answer.text()).expect("a valid exposition")
}

pub fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key_strindex: 0,
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
    }
}

pub fn resource(service: &str) -> Option<Resource> {
    Some(Resource { attributes: vec![string_attribute("service.name", service)], ..Resource::default() })
}

/// A span of `trace` (16-byte id from the number) lasting `millis`, child of `parent` when given.
pub fn span(trace: u64, id: u64, parent: Option<u64>, name: &str, millis: u64, error: bool) -> Span {
    let start = 1_700_000_000_000_000_000 + id * 1_000;
    Span {
        trace_id: trace_id(trace).to_vec(),
        span_id: id.to_be_bytes().to_vec(),
        parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
        name: name.into(),
        kind: if parent.is_none() { span::SpanKind::Server } else { span::SpanKind::Client } as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + millis * 1_000_000,
        attributes: vec![string_attribute("rpc.method", "Multiply")],
        status: Some(Status {
            code: if error { status::StatusCode::Error } else { status::StatusCode::Ok } as i32,
            message: if error { "boom".into() } else { String::new() },
        }),
        ..Span::default()
    }
}

pub fn trace_id(trace: u64) -> [u8; 16] {
    let mut id = [0xab; 16];
    id[8..].copy_from_slice(&trace.to_be_bytes());
    id
}

pub fn trace_hex(trace: u64) -> String {
    trace_id(trace).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A request with `spans` from `service`.
pub fn traces(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service),
            scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    }
}

/// The real collector binary, for tests that need a process of its own: its own `/metrics`
/// counters, its own resident size, signals. A [`RunningBinary`] with its addresses.
pub struct CollectorProcess {
    pub addresses: Addresses,
    binary: RunningBinary,
}

impl CollectorProcess {
    /// Starts the binary with `env` on free loopback ports and waits until it is ready.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let binary = Binary::new(env!("CARGO_BIN_EXE_axiom25-telemetry-collector"))
            .ports(&["grpc", "http", "admin"])
            .envs(env.iter().copied())
            .start()
            .await
            .expect("the collector binary starts and gets ready");
        let addresses = Addresses { grpc: binary.addr("grpc"), http: binary.addr("http"), admin: binary.addr("admin") };
        Self { addresses, binary }
    }

    /// Its `/metrics` exposition.
    pub async fn exposition(&self) -> Exposition {
        exposition(self.addresses.admin).await
    }

    /// SIGTERM, then the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        self.binary.terminate(Duration::from_secs(30)).await.expect("exits on SIGTERM")
    }
}

impl Deref for CollectorProcess {
    type Target = RunningBinary;

    fn deref(&self) -> &RunningBinary {
        &self.binary
    }
}

impl DerefMut for CollectorProcess {
    fn deref_mut(&mut self) -> &mut RunningBinary {
        &mut self.binary
    }
}

/// Calls `path` on a gRPC server with `payload` as the raw message bytes, over a plain HTTP/2
/// client (no tonic codec, so any bytes can be sent); returns the `grpc-status` answered.
pub async fn raw_grpc_status(addr: SocketAddr, path: &str, payload: &[u8]) -> Option<String> {
    let mut frame = vec![0];
    frame.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(payload);
    let headers = [("content-type", "application/grpc"), ("te", "trailers")];
    let answer = HttpClient::http2_only().post(addr, path, &headers, frame).await.expect("answer");
    let status = answer.headers.get("grpc-status").or_else(|| answer.trailers.get("grpc-status"));
    status.map(|value| value.to_str().unwrap_or_default().to_owned())
}
