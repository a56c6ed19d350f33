//! A colour losing traffic asks its clients to reconnect (HTTP/2 GOAWAY, docs/contracts.md §8):
//! the gateway's calls caught on the closing connection are sent again, so REST clients see none
//! of it.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;

use crate::helpers::{gateway_settings, spawn_gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rest_calls_made_while_the_api_sends_goaway_all_succeed() {
    let mut settings = axiom25_api::Settings::default();
    settings.server.host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    settings.server.grpc_port = 0;
    settings.server.admin_port = 0;
    let app = axiom25_api::Application::build(settings).await.expect("api builds");
    let (api, admin) = (app.grpc_addr(), app.admin_addr());
    let _api = axiom25_testkit::spawn((), |stop| app.run_until_stopped(stop));
    let mut gateway_settings = gateway_settings(api);
    gateway_settings.rate_limit.requests_per_second = 0;
    let gateway = Arc::new(spawn_gateway(gateway_settings).await);
    assert_eq!(gateway.post_json("determinant", json!({"a": [[2, 1], [1, 3]]})).await.status, StatusCode::OK);

    let callers: Vec<_> = (0..4)
        .map(|_| {
            let gateway = gateway.clone();
            tokio::spawn(async move {
                let mut failed = Vec::new();
                for _ in 0..150 {
                    let answer = gateway.post_json("determinant", json!({"a": [[2, 1], [1, 3]]})).await;
                    if answer.status != StatusCode::OK {
                        failed.push(answer.status);
                    }
                }
                failed
            })
        })
        .collect();
    let mut rounds = 0;
    while rounds < 10 && !callers.iter().all(tokio::task::JoinHandle::is_finished) {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let (status, _) = tokio::task::spawn_blocking(move || {
            axiom25_observability::admin::http_post(admin, "/admin/reconnect-clients", Duration::from_secs(2))
        })
        .await
        .expect("join")
        .expect("reconnect answered");
        assert_eq!(status, 200);
        rounds += 1;
    }
    let mut failed = Vec::new();
    for caller in callers {
        failed.extend(caller.await.expect("caller"));
    }
    assert!(rounds >= 3, "the calls ended before the api sent GOAWAY enough times ({rounds})");
    assert!(failed.is_empty(), "{} of 600 REST calls failed across {rounds} GOAWAY rounds: {failed:?}", failed.len());
}
