//! SIGTERM under load: calls in flight complete, health turns NOT_SERVING before the listener
//! closes, and the process exits 0 within its grace period.

use std::time::{Duration, Instant};

use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;
use axiom25_proto::matrix::v1::{DecomposeRequest, Decomposition};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{ApiProcess, connect, dominant};

#[tokio::test]
async fn sigterm_under_load_finishes_calls_in_flight_and_exits_zero() {
    let mut api = ApiProcess::start(&[
        ("AXIOM25__SHUTDOWN__DRAIN_DELAY_MS", "700"),
        ("AXIOM25__SHUTDOWN__GRACE_PERIOD_MS", "10000"),
        ("AXIOM25__COMPUTE__WORKERS", "2"),
    ])
    .await;
    let channel = connect(api.grpc_addr).await;
    let mut health = HealthClient::new(channel.clone());
    let serving = health.check(HealthCheckRequest { service: String::new() }).await.expect("check");
    assert_eq!(serving.into_inner().status(), ServingStatus::Serving);

    // A burst of calls, each taking a while, all in flight when SIGTERM arrives.
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let mut client = MatrixServiceClient::new(channel.clone());
            tokio::spawn(async move {
                let request = DecomposeRequest { a: dominant(160), kind: Decomposition::Svd as i32 };
                client.decompose(request).await.map(|r| r.into_inner().factors.len())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let terminated = Instant::now();
    api.terminate().await;

    // Within the drain delay the listener is still open but health already says NOT_SERVING.
    tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            let status =
                health.check(HealthCheckRequest { service: String::new() }).await.expect("check while draining");
            if status.into_inner().status() == ServingStatus::NotServing {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("health turns NOT_SERVING soon after SIGTERM");
    assert_eq!(crate::helpers::http_get(api.admin_addr, "/readyz").await, (503, "draining\n".into()));
    // (Dropped at once: a connection that never speaks HTTP/2 would hold the drain open until the grace period.)
    let late = tokio::net::TcpStream::connect(api.grpc_addr).await.map(drop);
    assert!(late.is_ok(), "the listener closed before health turned NOT_SERVING");

    for call in calls {
        let factors = call.await.expect("join").expect("a call in flight at SIGTERM completes");
        assert_eq!(factors, 3);
    }
    let exit = tokio::time::timeout(Duration::from_secs(15), api.child.wait()).await.expect("exits").expect("status");
    assert!(exit.success(), "exit status {exit:?}");
    // Calls finished well before the grace period ran out, so the exit must not wait for it.
    assert!(terminated.elapsed() < Duration::from_millis(700 + 9_000), "exit waited for the grace period");
    assert!(tokio::net::TcpStream::connect(api.grpc_addr).await.is_err(), "the listener is closed after exit");
}
