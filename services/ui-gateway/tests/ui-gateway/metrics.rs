//! Each application in a process keeps its own metrics: with an api and a gateway in this test
//! process, each `/metrics` shows its own side of the same calls and nothing of the other's.

use axiom25_testkit::{Exposition, HttpClient};
use serde_json::json;
use std::net::SocketAddr;
use tokio::sync::oneshot;

use crate::helpers::{gateway_settings, spawn_gateway};

async fn admin_metrics(admin: SocketAddr) -> Exposition {
    let answer = HttpClient::new().get(admin, "/metrics").await.expect("api /metrics");
    assert_eq!(answer.status, 200);
    Exposition::parse(&answer.text()).expect("the Prometheus text format")
}

#[tokio::test]
async fn an_api_and_a_gateway_in_one_process_count_the_same_calls_separately() {
    let api_settings = axiom25_api::Settings::default().on_free_loopback_ports();
    let api = axiom25_api::Application::build(api_settings).await.expect("api builds");
    let (api_grpc, api_admin) = (api.grpc_addr(), api.admin_addr());
    let (stop_api, api_stopped) = oneshot::channel::<()>();
    let api = tokio::spawn(api.run_until_stopped(async move {
        let _ = api_stopped.await;
        "test"
    }));
    let gateway = spawn_gateway(gateway_settings(api_grpc)).await;
    for _ in 0..3 {
        assert_eq!(gateway.post_json("determinant", json!({"a": [[1, 2], [3, 4]]})).await.status, 200);
    }

    let gateway_metrics = admin_metrics(gateway.admin_addr).await;
    let api_metrics = admin_metrics(api_admin).await;
    let rest = [("http_request_method", "POST"), ("http_route", "/api/v1/matrix/determinant")];
    let determinant = [("rpc_method", "Determinant"), ("rpc_grpc_status_code", "0")];
    assert_eq!(
        gateway_metrics.value("http_server_request_duration_seconds_count", &rest),
        Some(3.0),
        "{gateway_metrics}"
    );
    assert_eq!(
        gateway_metrics.value("rpc_client_duration_seconds_count", &determinant),
        Some(3.0),
        "{gateway_metrics}"
    );
    assert_eq!(api_metrics.value("rpc_server_duration_seconds_count", &determinant), Some(3.0), "{api_metrics}");
    let none = |exposition: &Exposition, name: &str| exposition.matching(name, &[]).count() == 0;
    assert!(
        none(&gateway_metrics, "rpc_server_duration_seconds_count"),
        "the api's calls on the gateway:\n{gateway_metrics}"
    );
    assert!(
        none(&api_metrics, "http_server_request_duration_seconds_count"),
        "the gateway's requests on the api:\n{api_metrics}"
    );
    assert!(none(&api_metrics, "rpc_client_duration_seconds_count"), "the gateway's calls on the api:\n{api_metrics}");
    assert_eq!(api_metrics.value("axiom25_build_info", &[("service", "api")]), Some(1.0), "{api_metrics}");
    assert_eq!(api_metrics.value("axiom25_build_info", &[("service", "ui-gateway")]), None, "{api_metrics}");

    let _ = stop_api.send(());
    api.await.expect("join").expect("the api stops cleanly");
}
