//! Service-level benchmark of the release binary against its floor: process start to gRPC
//! SERVING, idle RSS, and CPU per call (utime+stime from /proc) of the api with telemetry on as
//! deployed (every trace sampled and exported over OTLP to a sink in this process, metrics, JSON
//! logs) against a bare tonic server on the same proto (benches/peer/bare_tonic.rs) in the same
//! run, in alternating rounds so that drift of the shared machine hits both alike:
//! - 64×64 Multiply with 8 calls in flight (8 clients, each its own connection);
//! - 16×16 Multiply at a steady 80 calls/s from one client.
//!
//! Run with `cargo bench -p axiom25-api --features bare-tonic --bench service`; writes
//! `target/bench/service.json` (tools/bench/api_report.py turns it into docs/benchmarks/api.md).
//! Bounded: a fixed number of calls per round, loopback only.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;
use axiom25_proto::matrix::v1::{Matrix, MultiplyRequest};
use axiom25_testkit::resources::Usage;
use axiom25_testkit::{Binary, RunningBinary};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const STARTS: usize = 20;
const ROUNDS: usize = 3;
const IN_FLIGHT: usize = 8;
const IN_FLIGHT_CALLS_PER_CLIENT: usize = 1_000;
const STEADY_RATE: u32 = 80;
const STEADY_CALLS_PER_ROUND: usize = 400;

/// Accepts every span export and counts the spans, as a collector would.
#[derive(Default)]
struct SpanSink(std::sync::Arc<std::sync::atomic::AtomicU64>);

#[tonic::async_trait]
impl TraceService for SpanSink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// Serves the span sink on a free loopback port; its endpoint and span counter.
async fn span_sink() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the sink");
    let endpoint = format!("http://{}", listener.local_addr().expect("sink address"));
    let sink = SpanSink::default();
    let spans = sink.0.clone();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(sink))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (endpoint, spans)
}

/// Starts the api, exporting spans to `otlp`; returns it once its gRPC health answers SERVING,
/// and how long that took.
async fn start_api(otlp: &str) -> (RunningBinary, SocketAddr, Duration) {
    let began = Instant::now();
    // Measured to gRPC SERVING, not to /readyz: the kit only waits for the Listening line.
    let api = Binary::new(env!("CARGO_BIN_EXE_axiom25-api"))
        .ports(&["grpc", "admin"])
        .env("AXIOM25__TELEMETRY__OTLP_ENDPOINT", otlp)
        .wait_ready(false)
        .start()
        .await
        .expect("the api listens");
    let addr = api.addr("grpc");
    let mut health = HealthClient::new(channel(addr).await);
    loop {
        let status = health.check(HealthCheckRequest { service: String::new() }).await.expect("health");
        if status.into_inner().status() == ServingStatus::Serving {
            break;
        }
    }
    (api, addr, began.elapsed())
}

async fn start_bare() -> (RunningBinary, SocketAddr) {
    let bare = Binary::new(env!("CARGO_BIN_EXE_axiom25-bare-tonic"))
        .wait_ready(false)
        .start()
        .await
        .expect("the bare server listens");
    let addr = bare.addr("grpc");
    (bare, addr)
}

async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}")).expect("uri").tcp_nodelay(true).connect().await.expect("connect")
}

fn usage(server: &RunningBinary) -> Usage {
    Usage::of(server.pid()).expect("/proc")
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn matrix(n: u32, seed: u64) -> Option<Matrix> {
    let mut state = seed;
    let data = (0..n * n)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect();
    Some(Matrix { rows: n, cols: n, data })
}

/// What one server did over a case: latencies of every call, wall time and CPU seconds.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    wall: Duration,
    cpu_seconds: f64,
}

impl Tally {
    fn json(mut self) -> serde_json::Value {
        self.latencies.sort_unstable();
        let calls = self.latencies.len();
        serde_json::json!({
            "calls": calls,
            "p50_ms": percentile_ms(&self.latencies, 0.50),
            "p90_ms": percentile_ms(&self.latencies, 0.90),
            "p99_ms": percentile_ms(&self.latencies, 0.99),
            "p999_ms": percentile_ms(&self.latencies, 0.999),
            "max_ms": percentile_ms(&self.latencies, 1.0),
            "throughput_per_s": calls as f64 / self.wall.as_secs_f64(),
            "cpu_us_per_call": self.cpu_seconds * 1e6 / calls as f64,
        })
    }
}

/// `IN_FLIGHT` clients, each on its own connection, each sending `calls` calls back to back.
async fn in_flight_round(
    server: &RunningBinary,
    addr: SocketAddr,
    request: &MultiplyRequest,
    calls: usize,
    tally: &mut Tally,
) {
    let mut clients = Vec::with_capacity(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        clients.push(MatrixServiceClient::new(channel(addr).await));
    }
    let cpu_before = usage(server).cpu_seconds;
    let began = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(calls);
                for _ in 0..calls {
                    let sent = Instant::now();
                    client.multiply(request.clone()).await.expect("multiply");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    for task in tasks {
        tally.latencies.extend(task.await.expect("client"));
    }
    tally.wall += began.elapsed();
    tally.cpu_seconds += usage(server).cpu_seconds - cpu_before;
}

/// One client sending `calls` calls at `STEADY_RATE` per second, a call at every tick.
async fn steady_round(
    server: &RunningBinary,
    addr: SocketAddr,
    request: &MultiplyRequest,
    calls: usize,
    tally: &mut Tally,
) {
    let mut client = MatrixServiceClient::new(channel(addr).await);
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / STEADY_RATE);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let cpu_before = usage(server).cpu_seconds;
    let began = Instant::now();
    for _ in 0..calls {
        ticks.tick().await;
        let sent = Instant::now();
        client.multiply(request.clone()).await.expect("multiply");
        tally.latencies.push(sent.elapsed());
    }
    tally.wall += began.elapsed();
    tally.cpu_seconds += usage(server).cpu_seconds - cpu_before;
}

fn case(name: &str, api: Tally, bare: Tally) -> serde_json::Value {
    let (api, bare) = (api.json(), bare.json());
    let ratio = api["cpu_us_per_call"].as_f64().unwrap() / bare["cpu_us_per_call"].as_f64().unwrap();
    eprintln!("{name}: api {api} bare {bare} api/bare CPU {ratio:.2}");
    serde_json::json!({ "api": api, "bare": bare, "cpu_ratio": ratio })
}

#[tokio::main]
async fn main() {
    let (otlp, spans) = span_sink().await;
    let mut starts = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let (mut api, _, elapsed) = start_api(&otlp).await;
        starts.push(elapsed);
        let _ = api.child.kill().await;
    }
    starts.sort();

    let (api, api_addr, _) = start_api(&otlp).await;
    let (bare, bare_addr) = start_bare().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = usage(&api).resident_bytes / 1024;
    let spans_before = spans.load(std::sync::atomic::Ordering::Relaxed);

    let big = MultiplyRequest { a: matrix(64, 1), b: matrix(64, 2) };
    let small = MultiplyRequest { a: matrix(16, 3), b: matrix(16, 4) };
    // Warm both: connections, allocator pools, the compute workers.
    for (server, addr) in [(&api, api_addr), (&bare, bare_addr)] {
        in_flight_round(server, addr, &big, 100, &mut Tally::default()).await;
    }
    let (mut api_big, mut bare_big) = (Tally::default(), Tally::default());
    let (mut api_small, mut bare_small) = (Tally::default(), Tally::default());
    for _ in 0..ROUNDS {
        in_flight_round(&api, api_addr, &big, IN_FLIGHT_CALLS_PER_CLIENT, &mut api_big).await;
        in_flight_round(&bare, bare_addr, &big, IN_FLIGHT_CALLS_PER_CLIENT, &mut bare_big).await;
    }
    for _ in 0..ROUNDS {
        steady_round(&api, api_addr, &small, STEADY_CALLS_PER_ROUND, &mut api_small).await;
        steady_round(&bare, bare_addr, &small, STEADY_CALLS_PER_ROUND, &mut bare_small).await;
    }
    let loaded_rss_kib = usage(&api).resident_bytes / 1024;
    // The batch exporter sends within seconds; wait for it so the count shows spans were exported.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let exported = spans.load(std::sync::atomic::Ordering::Relaxed) - spans_before;
    drop((api, bare));

    let report = serde_json::json!({
        "start_to_serving_ms": { "runs": STARTS, "p50": percentile_ms(&starts, 0.5), "max": percentile_ms(&starts, 1.0) },
        "idle_rss_mib": idle_rss_kib as f64 / 1024.0,
        "rss_after_load_mib": loaded_rss_kib as f64 / 1024.0,
        "rounds": ROUNDS,
        "multiply_64_in_flight": { "in_flight": IN_FLIGHT, "case": case("64x64, 8 in flight", api_big, bare_big) },
        "multiply_16_steady": { "rate_per_s": STEADY_RATE, "case": case("16x16, 80/s", api_small, bare_small) },
        "spans_exported": exported,
        "cores": std::thread::available_parallelism().map_or(1, usize::from),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    let text = serde_json::to_string_pretty(&report).expect("json");
    std::fs::write(dir.join("service.json"), &text).expect("write report");
    writeln!(std::io::stderr(), "{text}").expect("stderr");
}
