//! Each application in a process keeps its own metrics: with an api and a gateway in this test
//! process, each `/metrics` shows its own side of the same calls and nothing of the other's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::json;
use tokio::sync::oneshot;

use crate::helpers::{gateway_settings, spawn_gateway};

/// The value of the one `name` series whose labels include every one of `labels`.
fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let prefix = format!("{name}{{");
    let line =
        text.lines().find(|line| line.starts_with(&prefix) && labels.iter().all(|label| line.contains(label)))?;
    line.rsplit(' ').next()?.parse().ok()
}

async fn admin_metrics(admin: SocketAddr) -> String {
    let read = move || axiom25_observability::admin::http_get(admin, "/metrics", Duration::from_secs(5));
    let (status, body) = tokio::task::spawn_blocking(read).await.expect("join").expect("api /metrics");
    assert_eq!(status, 200);
    body
}

#[tokio::test]
async fn an_api_and_a_gateway_in_one_process_count_the_same_calls_separately() {
    let mut api_settings = axiom25_api::Settings::default();
    api_settings.server.host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    (api_settings.server.grpc_port, api_settings.server.admin_port) = (0, 0);
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

    let gateway_text = String::from_utf8(gateway.admin("/metrics").await.body.to_vec()).expect("utf-8");
    let api_text = admin_metrics(api_admin).await;
    let rest = ["http_request_method=\"POST\"", "http_route=\"/api/v1/matrix/determinant\""];
    let determinant = ["rpc_method=\"Determinant\"", "rpc_grpc_status_code=\"0\""];
    assert_eq!(value(&gateway_text, "http_server_request_duration_seconds_count", &rest), Some(3.0), "{gateway_text}");
    assert_eq!(value(&gateway_text, "rpc_client_duration_seconds_count", &determinant), Some(3.0), "{gateway_text}");
    assert_eq!(value(&api_text, "rpc_server_duration_seconds_count", &determinant), Some(3.0), "{api_text}");
    assert!(
        !gateway_text.contains("rpc_server_duration_seconds_count{"),
        "the api's calls on the gateway:\n{gateway_text}"
    );
    assert!(!api_text.contains("http_server_request_duration_seconds_count{"), "the gateway's requests on the api");
    assert!(!api_text.contains("rpc_client_duration_seconds_count{"), "the gateway's calls on the api:\n{api_text}");
    assert_eq!(value(&api_text, "axiom25_build_info", &["service=\"api\""]), Some(1.0), "{api_text}");
    assert_eq!(value(&api_text, "axiom25_build_info", &["service=\"ui-gateway\""]), None, "{api_text}");

    let _ = stop_api.send(());
    api.await.expect("join").expect("the api stops cleanly");
}
