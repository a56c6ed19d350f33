//! Spawning the collector for tests on free loopback ports, and talking to it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use std::process::Stdio;
use std::sync::Arc;

use axiom25_telemetry_collector::startup::Addresses;
use axiom25_telemetry_collector::store::SpanStore;
use axiom25_telemetry_collector::{Application, Settings};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

/// A collector running inside the test process.
pub struct TestCollector {
    pub addresses: Addresses,
    pub channel: Channel,
    /// Its span store, readable after it stopped.
    pub spans: Arc<SpanStore>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
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
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("collector task").expect("collector ran");
        }
    }

    /// GET on the admin port, answer parsed as JSON.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, _, body) = request(self.addresses.admin, "GET", path, &[], Vec::new()).await;
        (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }

    /// The `/metrics` exposition.
    pub async fn exposition(&self) -> String {
        let (status, _, body) = request(self.addresses.admin, "GET", "/metrics", &[], Vec::new()).await;
        assert_eq!(status, 200);
        String::from_utf8(body.to_vec()).expect("utf-8 exposition")
    }

    /// POST to the OTLP/HTTP port.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> HttpAnswer {
        request(self.addresses.http, "POST", path, headers, body).await
    }
}

impl Drop for TestCollector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Settings for a test: loopback, free ports, short grace.
pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    settings.server.host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    settings.server.grpc_port = 0;
    settings.server.http_port = 0;
    settings.server.admin_port = 0;
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
    let app = Application::build(settings).await.expect("collector builds");
    let addresses = app.addresses().expect("addresses");
    let spans = app.span_store();
    let (stop, stopped) = oneshot::channel();
    let handle = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
        "test"
    }));
    let channel =
        Endpoint::from_shared(format!("http://{}", addresses.grpc)).expect("uri").connect().await.expect("connects");
    TestCollector { addresses, channel, spans, stop: Some(stop), handle: Some(handle) }
}

/// Status, headers and body of an HTTP answer.
pub type HttpAnswer = (u16, http::HeaderMap, Bytes);

/// One HTTP/1.1 request on a fresh connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> HttpAnswer {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let mut builder = http::Request::builder().method(method).uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(Bytes::from(body))).expect("request");
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .expect("answer within 30 s")
        .expect("HTTP answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, headers, body)
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

/// The value of the sample `name{labels...}` in an exposition (labels matched as a subset).
pub fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        if metric != name {
            return None;
        }
        let all = labels.iter().all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")));
        if all { value.parse().ok() } else { None }
    })
}

/// Sum of every sample of `name` matching `labels`.
pub fn sample_sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            let all = labels.iter().all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")));
            (metric == name && all).then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// The real collector binary, for tests that need a process of its own: its own `/metrics`
/// counters, its own resident size, signals.
pub struct CollectorProcess {
    pub child: tokio::process::Child,
    pub addresses: Addresses,
}

impl CollectorProcess {
    /// Starts the binary with `env` on free loopback ports and waits until it listens.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        use tokio::io::{AsyncBufReadExt as _, BufReader};
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_axiom25-telemetry-collector"))
            .env_clear()
            .env("AXIOM25__SERVER__HOST", "127.0.0.1")
            .env("AXIOM25__SERVER__GRPC_PORT", "0")
            .env("AXIOM25__SERVER__HTTP_PORT", "0")
            .env("AXIOM25__SERVER__ADMIN_PORT", "0")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the collector binary starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let listening = loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("listening within 30 s")
                .expect("stdout readable")
                .expect("the collector exited before listening");
            let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if entry["message"] == "Listening" {
                break entry;
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let port = |key: &str| listening[key].as_u64().and_then(|port| u16::try_from(port).ok()).expect("port");
        let at = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let addresses =
            Addresses { grpc: at(port("grpc_port")), http: at(port("http_port")), admin: at(port("admin_port")) };
        Self { child, addresses }
    }

    /// Its `/metrics` exposition.
    pub async fn exposition(&self) -> String {
        let (status, _, body) = request(self.addresses.admin, "GET", "/metrics", &[], Vec::new()).await;
        assert_eq!(status, 200);
        String::from_utf8(body.to_vec()).expect("utf-8")
    }

    /// SIGTERM, then the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running");
        let killed = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
        assert!(killed.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.expect("exits").expect("status")
    }
}

/// Resident set size of process `pid`, from `/proc`.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Calls `path` on a gRPC server with `payload` as the raw message bytes, over a plain HTTP/2
/// client (no tonic codec, so any bytes can be sent); returns the `grpc-status` answered.
pub async fn raw_grpc_status(addr: SocketAddr, path: &str, payload: &[u8]) -> Option<String> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let mut frame = vec![0];
    frame.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(payload);
    let request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(frame)))
        .expect("request");
    let response = client.request(request).await.expect("answer");
    let headers = response.headers().clone();
    let trailers = response.into_body().collect().await.expect("body").trailers().cloned();
    let status = headers.get("grpc-status").or_else(|| trailers.as_ref().and_then(|t| t.get("grpc-status")));
    status.map(|value| value.to_str().unwrap_or_default().to_owned())
}
