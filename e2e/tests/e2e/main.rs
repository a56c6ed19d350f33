//! The images as shipped: started hardened on test networks, called from the host.

mod collector;
mod gateway;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axiom25_e2e::{ApiContainer, TestNetwork};
use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;
use axiom25_proto::matrix::v1::{DecomposeRequest, Decomposition, Matrix, MultiplyRequest};
use axiom25_testkit::{Answer, HttpClient};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn channel(api: &ApiContainer) -> Channel {
    Endpoint::from_shared(format!("http://{}", api.grpc)).expect("uri").connect().await.expect("connects")
}

/// `GET path` on a published port: its answer within 5 s, whatever the status.
async fn get(addr: SocketAddr, path: &str) -> Answer {
    let client = HttpClient::new().with_timeout(Duration::from_secs(5));
    client.get(addr, path).await.unwrap_or_else(|error| panic!("{addr}{path} answers: {error:#}"))
}

fn matrix(rows: u32, cols: u32, data: Vec<f64>) -> Option<Matrix> {
    Some(Matrix { rows, cols, data })
}

#[tokio::test]
async fn the_api_container_serves_health_and_a_multiply_and_counts_it_on_metrics() {
    let api = ApiContainer::start(&TestNetwork::new(), &[]).await;
    let channel = channel(&api).await;
    let health = HealthClient::new(channel.clone()).check(HealthCheckRequest { service: String::new() }).await;
    assert_eq!(health.expect("health").into_inner().status(), ServingStatus::Serving);

    let request = MultiplyRequest { a: matrix(2, 2, vec![1., 2., 3., 4.]), b: matrix(2, 1, vec![1., 1.]) };
    let product = MatrixServiceClient::new(channel).multiply(request).await.expect("multiply").into_inner();
    assert_eq!(product.result.expect("result").data, vec![3., 7.]);

    let answer = get(api.admin, "/metrics").await;
    let metrics = answer.text();
    assert_eq!(answer.status, 200);
    assert!(
        metrics.contains(r#"rpc_server_duration_seconds_count{rpc_service="axiom25.matrix.v1.MatrixService",rpc_method="Multiply",rpc_grpc_status_code="0"} 1"#),
        "{metrics}"
    );
    let ready = get(api.admin, "/readyz").await;
    assert_eq!((ready.status.as_u16(), ready.text().as_str()), (200, "ready\n"));
}

#[tokio::test]
async fn the_api_runs_as_uid_65532_on_a_read_only_root_filesystem() {
    let api = ApiContainer::start(&TestNetwork::new(), &[]).await;
    assert_eq!(api.inspect("{{.HostConfig.ReadonlyRootfs}}"), "true");
    assert_eq!(api.inspect("{{.Config.User}}"), "65532:65532");
    let pid = api.inspect("{{.State.Pid}}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the container's process");
    let uids = status.lines().find_map(|line| line.strip_prefix("Uid:")).expect("Uid line");
    assert!(uids.split_whitespace().all(|uid| uid == "65532"), "process runs as {uids}");
    let caps = status.lines().find_map(|line| line.strip_prefix("CapEff:")).expect("CapEff line");
    assert_eq!(caps.trim(), "0000000000000000", "no effective capabilities");
}

#[tokio::test]
async fn sigterm_during_a_burst_completes_every_call_in_flight_and_exits_zero() {
    let api = ApiContainer::start(
        &TestNetwork::new(),
        &[("AXIOM25__SHUTDOWN__DRAIN_DELAY_MS", "500"), ("AXIOM25__SHUTDOWN__GRACE_PERIOD_MS", "10000")],
    )
    .await;
    let channel = channel(&api).await;
    let n = 160usize;
    let data: Vec<f64> = (0..n * n).map(|i| if i % (n + 1) == 0 { n as f64 } else { (i % 7) as f64 * 0.01 }).collect();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let mut client = MatrixServiceClient::new(channel.clone());
            let request =
                DecomposeRequest { a: matrix(n as u32, n as u32, data.clone()), kind: Decomposition::Svd as i32 };
            tokio::spawn(async move { client.decompose(request).await.map(|r| r.into_inner().factors.len()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let stopping = Instant::now();
    api.stop(Duration::from_secs(15)).await;
    for call in calls {
        assert_eq!(call.await.expect("join").expect("every call in flight completes"), 3);
    }
    assert_eq!(api.exit_code().await, Some(0), "exit status after SIGTERM");
    assert!(stopping.elapsed() < Duration::from_secs(12), "stopped within the grace period: {:?}", stopping.elapsed());
}
