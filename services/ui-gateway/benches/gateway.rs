//! The gateway's cost: a 16×16 Multiply through the REST API against the same call straight to
//! the api over gRPC, in the same run, at the same concurrency, alternating rounds so that drift
//! of the shared machine hits both alike.
//!
//! Then the floor: one client at a steady 80 calls/s, REST through the gateway against gRPC to a
//! bare tonic server on the same proto (the api's benches/peer/bare_tonic.rs), CPU per call of
//! each process (utime+stime from /proc) in alternating rounds.
//!
//! Run with `cargo bench -p axiom25-ui-gateway --bench gateway` after `cargo build --release -p
//! axiom25-api --features bare-tonic` (or set `AXIOM25_API_BIN` and `AXIOM25_BARE_TONIC_BIN`);
//! writes `target/bench/gateway.json`, which tools/bench/gateway_report.py turns into
//! docs/benchmarks/gateway.md. Bounded: a fixed number of calls per round, loopback only.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;
use axiom25_proto::matrix::v1::{Matrix, MultiplyRequest};
use axiom25_testkit::resources::Usage;
use axiom25_testkit::{Binary, RunningBinary};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tonic::transport::Endpoint;

const N: usize = 16;
const ROUNDS: usize = 3;
const CALLS_PER_ROUND: usize = 6_000;
const WARMUP: usize = 500;
const CONCURRENCY: &[usize] = &[1, 8, 32];
const STEADY_RATE: u32 = 80;
const STEADY_CALLS_PER_ROUND: usize = 400;

/// Starts a service binary on free loopback ports, logging at `warn` but for its `Listening` line.
async fn start(binary: &str, ports: &[&str], env: &[(&str, String)]) -> RunningBinary {
    Binary::new(binary)
        .ports(ports)
        .env("AXIOM25__TELEMETRY__LOG_LEVEL", "warn,axiom25=info")
        .envs(env.iter().map(|(key, value)| (key, value)))
        .start()
        .await
        .unwrap_or_else(|error| panic!("{binary}: {error:#}"))
}

/// CPU seconds used so far and resident KiB.
fn proc_stat(service: &RunningBinary) -> (f64, u64) {
    let usage = Usage::of(service.pid()).expect("/proc");
    (usage.cpu_seconds, usage.resident_bytes / 1024)
}

fn matrix(seed: u64) -> Matrix {
    let data = (0..N * N).map(|i| ((i as u64 * 2_654_435_761 + seed) % 1000) as f64 / 100.0 - 5.0).collect();
    Matrix { rows: N as u32, cols: N as u32, data }
}

fn rows_json(matrix: &Matrix) -> serde_json::Value {
    serde_json::Value::Array(matrix.data.chunks(N).map(|row| serde_json::json!(row)).collect())
}

#[derive(Clone, Copy)]
enum Path {
    Grpc(SocketAddr),
    Rest(SocketAddr),
}

/// `calls` calls split over `concurrency` clients (each with its own connection); latencies and wall time.
async fn round(path: Path, concurrency: usize, calls: usize) -> (Vec<Duration>, Duration) {
    paced_round(path, concurrency, calls, None).await
}

/// As [`round`], each client sending at most `rate` calls per second when a rate is given.
async fn paced_round(path: Path, concurrency: usize, calls: usize, rate: Option<u32>) -> (Vec<Duration>, Duration) {
    let (a, b) = (matrix(1), matrix(2));
    let body = Bytes::from(serde_json::json!({"a": rows_json(&a), "b": rows_json(&b)}).to_string());
    let request = MultiplyRequest { a: Some(a), b: Some(b) };
    let per_client = calls / concurrency;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (body, request) = (body.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            let mut ticks =
                tokio::time::interval(rate.map_or(Duration::from_nanos(1), |rate| Duration::from_secs(1) / rate));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            match path {
                Path::Grpc(addr) => {
                    let channel = Endpoint::from_shared(format!("http://{addr}"))
                        .unwrap()
                        .tcp_nodelay(true)
                        .connect()
                        .await
                        .unwrap();
                    let mut client = MatrixServiceClient::new(channel);
                    for _ in 0..per_client {
                        if rate.is_some() {
                            ticks.tick().await;
                        }
                        let began = Instant::now();
                        client.multiply(request.clone()).await.expect("gRPC multiply");
                        latencies.push(began.elapsed());
                    }
                }
                Path::Rest(addr) => {
                    let client: Client<_, Full<Bytes>> =
                        Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1).build_http();
                    let uri: http::Uri = format!("http://{addr}/api/v1/matrix/multiply").parse().unwrap();
                    for _ in 0..per_client {
                        if rate.is_some() {
                            ticks.tick().await;
                        }
                        let began = Instant::now();
                        let request = http::Request::post(uri.clone())
                            .header("content-type", "application/json")
                            .body(Full::new(body.clone()))
                            .unwrap();
                        let response = client.request(request).await.expect("REST multiply");
                        assert_eq!(response.status(), 200);
                        response.into_body().collect().await.expect("body");
                        latencies.push(began.elapsed());
                    }
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(calls);
    for task in tasks {
        latencies.extend(task.await.expect("client"));
    }
    (latencies, started.elapsed())
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let api_bin = std::env::var("AXIOM25_API_BIN")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/axiom25-api").into());
    let api = start(&api_bin, &["grpc", "admin"], &[]).await;
    let api_addr = api.addr("grpc");
    let gateway_env = [
        ("AXIOM25__API__ENDPOINT", format!("http://{api_addr}")),
        ("AXIOM25__RATE_LIMIT__REQUESTS_PER_SECOND", "0".into()),
        ("AXIOM25__OPS__COLLECTOR_ENDPOINT", String::new()),
    ];
    let gateway = start(env!("CARGO_BIN_EXE_axiom25-ui-gateway"), &["http", "admin"], &gateway_env).await;
    let gateway_addr = gateway.addr("http");
    let bare_bin = std::env::var("AXIOM25_BARE_TONIC_BIN")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/axiom25-bare-tonic").into());
    let bare =
        Binary::new(&bare_bin).wait_ready(false).start().await.unwrap_or_else(|error| panic!("{bare_bin}: {error:#}"));
    let bare_addr = bare.addr("grpc");
    round(Path::Grpc(bare_addr), 4, WARMUP).await;

    round(Path::Grpc(api_addr), 4, WARMUP).await;
    round(Path::Rest(gateway_addr), 4, WARMUP).await;

    let mut results = Vec::new();
    for &concurrency in CONCURRENCY {
        let mut grpc = (Vec::new(), Duration::ZERO);
        let mut rest = (Vec::new(), Duration::ZERO);
        let gateway_before = proc_stat(&gateway).0;
        for _ in 0..ROUNDS {
            let (latencies, wall) = round(Path::Grpc(api_addr), concurrency, CALLS_PER_ROUND).await;
            grpc.0.extend(latencies);
            grpc.1 += wall;
            let (latencies, wall) = round(Path::Rest(gateway_addr), concurrency, CALLS_PER_ROUND).await;
            rest.0.extend(latencies);
            rest.1 += wall;
        }
        let (gateway_after, gateway_rss_kib) = proc_stat(&gateway);
        let summary = |(mut latencies, wall): (Vec<Duration>, Duration)| {
            latencies.sort_unstable();
            serde_json::json!({
                "calls": latencies.len(),
                "p50_ms": percentile_ms(&latencies, 0.50),
                "p99_ms": percentile_ms(&latencies, 0.99),
                "throughput_per_s": latencies.len() as f64 / wall.as_secs_f64(),
            })
        };
        let (grpc, rest) = (summary(grpc), summary(rest));
        let calls = rest["calls"].as_f64().unwrap();
        eprintln!("concurrency {concurrency}: gRPC {grpc} REST {rest}");
        results.push(serde_json::json!({
            "concurrency": concurrency,
            "grpc": grpc,
            "rest": rest,
            "gateway_cpu_us_per_call": (gateway_after - gateway_before) * 1e6 / calls,
            "gateway_rss_kib": gateway_rss_kib,
        }));
    }
    let steady = steady_floor(&gateway, &api, &bare, gateway_addr, bare_addr).await;
    let report = serde_json::json!({
        "steady": steady,
        "matrix": format!("{N}x{N}"),
        "rounds": ROUNDS,
        "calls_per_round": CALLS_PER_ROUND,
        "cpus": std::thread::available_parallelism().map_or(1, usize::from),
        "results": results,
        "api_cpu_seconds": proc_stat(&api).0,
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    let mut file = std::fs::File::create(out.join("gateway.json")).expect("gateway.json");
    writeln!(file, "{report:#}").expect("write");
    drop((api, gateway, bare));
}

/// CPU per call at a steady `STEADY_RATE` from one client: the gateway's and the api's per REST
/// call against the bare server's per gRPC call, in alternating rounds.
async fn steady_floor(
    gateway: &RunningBinary,
    api: &RunningBinary,
    bare: &RunningBinary,
    gateway_addr: SocketAddr,
    bare_addr: SocketAddr,
) -> serde_json::Value {
    let (mut gateway_cpu, mut api_cpu, mut bare_cpu) = (0.0, 0.0, 0.0);
    let (mut rest, mut grpc) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (gateway_before, api_before) = (proc_stat(gateway).0, proc_stat(api).0);
        rest.extend(paced_round(Path::Rest(gateway_addr), 1, STEADY_CALLS_PER_ROUND, Some(STEADY_RATE)).await.0);
        gateway_cpu += proc_stat(gateway).0 - gateway_before;
        api_cpu += proc_stat(api).0 - api_before;
        let bare_before = proc_stat(bare).0;
        grpc.extend(paced_round(Path::Grpc(bare_addr), 1, STEADY_CALLS_PER_ROUND, Some(STEADY_RATE)).await.0);
        bare_cpu += proc_stat(bare).0 - bare_before;
    }
    rest.sort_unstable();
    grpc.sort_unstable();
    let calls = (ROUNDS * STEADY_CALLS_PER_ROUND) as f64;
    let per_call = |seconds: f64| seconds * 1e6 / calls;
    let report = serde_json::json!({
        "rate_per_s": STEADY_RATE,
        "calls": calls,
        "gateway_cpu_us_per_rest_call": per_call(gateway_cpu),
        "api_cpu_us_per_rest_call": per_call(api_cpu),
        "bare_cpu_us_per_grpc_call": per_call(bare_cpu),
        "gateway_over_bare": gateway_cpu / bare_cpu,
        "rest_p50_ms": percentile_ms(&rest, 0.5),
        "bare_grpc_p50_ms": percentile_ms(&grpc, 0.5),
    });
    eprintln!("steady {STEADY_RATE}/s: {report}");
    report
}
