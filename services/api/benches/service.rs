//! Service-level benchmark of the release binary: process start to gRPC SERVING, idle RSS, and
//! the round trip of a 64×64 Multiply on loopback at 8 concurrent clients.
//!
//! Run with `cargo bench -p axiom25-api --bench service`; writes `target/bench/service.json`
//! (tools/bench/api_report.py turns it into docs/benchmarks/api.md). Bounded: a fixed number of
//! calls, loopback only.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;
use axiom25_proto::matrix::v1::{Matrix, MultiplyRequest};
use axiom25_testkit::resources::Usage;
use axiom25_testkit::{Binary, RunningBinary};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const STARTS: usize = 20;
const CLIENTS: usize = 8;
const WARMUP_PER_CLIENT: usize = 200;
const CALLS_PER_CLIENT: usize = 2_500;

/// Starts the binary; returns it once its gRPC health answers SERVING, and how long that took.
async fn start() -> (RunningBinary, SocketAddr, Duration) {
    let began = Instant::now();
    // Measured to gRPC SERVING, not to /readyz: the kit only waits for the Listening line.
    let api = Binary::new(env!("CARGO_BIN_EXE_axiom25-api"))
        .ports(&["grpc", "admin"])
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

async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}")).expect("uri").tcp_nodelay(true).connect().await.expect("connect")
}

fn rss_kib(api: &RunningBinary) -> u64 {
    Usage::of(api.pid()).expect("/proc").resident_bytes / 1024
}

fn cpu_seconds(api: &RunningBinary) -> f64 {
    Usage::of(api.pid()).expect("/proc").cpu_seconds
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn matrix64(seed: u64) -> Option<Matrix> {
    let mut state = seed;
    let data = (0..64 * 64)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect();
    Some(Matrix { rows: 64, cols: 64, data })
}

#[tokio::main]
async fn main() {
    let mut starts = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let (mut api, _, elapsed) = start().await;
        starts.push(elapsed);
        let _ = api.child.kill().await;
    }
    starts.sort();

    let (api, addr, _) = start().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = rss_kib(&api);

    let request = MultiplyRequest { a: matrix64(1), b: matrix64(2) };
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(MatrixServiceClient::new(channel(addr).await));
    }
    let began = Instant::now();
    let server_cpu_before = cpu_seconds(&api);
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let request = request.clone();
            tokio::spawn(async move {
                for _ in 0..WARMUP_PER_CLIENT {
                    client.multiply(request.clone()).await.expect("multiply");
                }
                let mut latencies = Vec::with_capacity(CALLS_PER_CLIENT);
                for _ in 0..CALLS_PER_CLIENT {
                    let sent = Instant::now();
                    client.multiply(request.clone()).await.expect("multiply");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(CLIENTS * CALLS_PER_CLIENT);
    for task in tasks {
        latencies.extend(task.await.expect("client"));
    }
    let wall = began.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(&api) - server_cpu_before;
    latencies.sort();
    let loaded_rss_kib = rss_kib(&api);
    drop(api);

    let report = serde_json::json!({
        "start_to_serving_ms": { "runs": STARTS, "p50": percentile(&starts, 0.5), "max": percentile(&starts, 1.0) },
        "idle_rss_mib": idle_rss_kib as f64 / 1024.0,
        "rss_after_load_mib": loaded_rss_kib as f64 / 1024.0,
        "multiply_64": {
            "clients": CLIENTS,
            "calls": latencies.len(),
            "p50_ms": percentile(&latencies, 0.50),
            "p90_ms": percentile(&latencies, 0.90),
            "p99_ms": percentile(&latencies, 0.99),
            "p999_ms": percentile(&latencies, 0.999),
            "max_ms": percentile(&latencies, 1.0),
            "throughput_per_s": (CLIENTS * (WARMUP_PER_CLIENT + CALLS_PER_CLIENT)) as f64 / wall,
            "server_cpu_us_per_call": server_cpu * 1e6 / (CLIENTS * (WARMUP_PER_CLIENT + CALLS_PER_CLIENT)) as f64,
        },
        "cores": std::thread::available_parallelism().map_or(1, usize::from),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    let text = serde_json::to_string_pretty(&report).expect("json");
    std::fs::write(dir.join("service.json"), &text).expect("write report");
    writeln!(std::io::stderr(), "{text}").expect("stderr");
}
