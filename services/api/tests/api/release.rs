//! Blue/green identity (docs/contracts.md §8) and fault injection (docs/contracts.md §9), seen from a client.

use axiom25_proto::matrix::v1::DeterminantRequest;
use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::{ApiProcess, connect, http_get, matrix, spawn_app_with};

#[tokio::test]
async fn every_answer_names_the_colour_and_version_that_served_it() {
    let app = spawn_app_with(|settings| {
        settings.release.color = "green".into();
        settings.release.version = "7.7.7-rc1".into();
    })
    .await;
    let mut client = app.client.clone();
    let ok =
        client.determinant(DeterminantRequest { a: matrix(2, 2, &[1.0, 2.0, 3.0, 4.0]) }).await.expect("determinant");
    assert_eq!(ok.metadata().get("x-axiom25-release").expect("metadata on success"), "green/7.7.7-rc1");
    let refused =
        client.determinant(DeterminantRequest { a: matrix(1, 2, &[1.0, 2.0]) }).await.expect_err("not square");
    assert_eq!(refused.metadata().get("x-axiom25-release").expect("metadata on errors too"), "green/7.7.7-rc1");

    let (_, metrics) = http_get(app.admin_addr, "/metrics").await;
    assert!(metrics.contains(r#"axiom25_release_info{color="green",version="7.7.7-rc1"} 1"#), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn a_fault_injected_release_answers_internal_warns_and_says_so_in_its_metrics() {
    let api =
        ApiProcess::start(&[("AXIOM25__FAULTS__ERROR_RATIO", "0.5"), ("AXIOM25__FAULTS__LATENCY_MS", "20")]).await;
    let channel = connect(api.grpc_addr).await;
    let mut client = MatrixServiceClient::new(channel.clone());
    let mut internal = 0;
    for _ in 0..10 {
        let started = std::time::Instant::now();
        match client.determinant(DeterminantRequest { a: matrix(1, 1, &[2.0]) }).await {
            Ok(answer) => assert_eq!(answer.into_inner().value, 2.0),
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::Internal);
                internal += 1;
            }
        }
        assert!(started.elapsed() >= std::time::Duration::from_millis(20), "latency is injected");
    }
    assert_eq!(internal, 5, "half the calls fail");

    let health = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .expect("health is never faulted")
        .into_inner();
    assert_eq!(health.status, 1, "SERVING");
    let (_, metrics) = http_get(api.admin_addr, "/metrics").await;
    assert!(metrics.contains("axiom25_fault_injection_active 1"), "{metrics}");
    assert!(metrics.contains(r#"rpc_grpc_status_code="13""#), "injected errors count as INTERNAL: {metrics}");
}

#[tokio::test]
async fn without_faults_configured_the_gauge_reads_zero() {
    let api = ApiProcess::start(&[]).await;
    let (_, metrics) = http_get(api.admin_addr, "/metrics").await;
    assert!(metrics.contains("axiom25_fault_injection_active 0"), "{metrics}");
    assert!(metrics.contains(r#"axiom25_release_info{color="none",version=""#), "{metrics}");
}
