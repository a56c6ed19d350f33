//! Connection management: a maximum connection age so long-lived clients move to new replicas,
//! and telemetry that never holds the service back.

use std::time::{Duration, Instant};

use axiom25_proto::matrix::v1::MultiplyRequest;
use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::helpers::{ApiProcess, connect, http_get, matrix, spawn_app_with};

#[tokio::test]
async fn connections_are_closed_after_their_maximum_age_so_clients_rebalance() {
    let app = spawn_app_with(|s| {
        s.grpc.max_connection_age_ms = 300;
        s.grpc.max_connection_age_grace_ms = 200;
    })
    .await;
    let tcp = TcpStream::connect(app.grpc_addr).await.expect("connect");
    let (_sender, connection) =
        hyper::client::conn::http2::handshake::<_, _, tonic::body::Body>(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("HTTP/2 handshake");
    let opened = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(10), connection).await;
    assert!(closed.is_ok(), "the server never closed an old connection");
    assert!(opened.elapsed() >= Duration::from_millis(250), "closed before its age: {:?}", opened.elapsed());
    app.stop().await;
}

#[tokio::test]
async fn the_admin_reconnect_route_sends_goaway_to_open_connections_long_before_their_maximum_age() {
    let app = spawn_app_with(|s| s.grpc.max_connection_age_ms = 300_000).await;
    let tcp = TcpStream::connect(app.grpc_addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake::<_, _, tonic::body::Body>(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    sender.ready().await.expect("the connection is up");
    let admin = app.admin_addr;
    let answer = tokio::task::spawn_blocking(move || {
        axiom25_observability::admin::http_post(admin, "/admin/reconnect-clients", Duration::from_secs(2))
    });
    let (status, body) = answer.await.expect("join").expect("admin answers");
    assert_eq!(status, 200, "{body}");
    let asked: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    // This connection and the test app's own client's.
    assert_eq!(asked["connections"], 2, "{body}");
    let closed = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(closed.is_ok(), "the connection stayed open after GOAWAY");
    let mut client = MatrixServiceClient::new(connect(app.grpc_addr).await);
    let request = MultiplyRequest { a: matrix(1, 1, &[2.]), b: matrix(1, 1, &[3.]) };
    client.multiply(request).await.expect("new connections are still served");
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_collector_costs_requests_nothing_and_every_lost_span_is_counted() {
    let mut api = ApiProcess::start(&[
        ("AXIOM25__TELEMETRY__OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("AXIOM25__TELEMETRY__EXPORT_INTERVAL_MS", "50"),
        ("AXIOM25__TELEMETRY__EXPORT_TIMEOUT_MS", "200"),
    ])
    .await;
    let mut client = MatrixServiceClient::new(connect(api.grpc_addr).await);
    for _ in 0..50 {
        let request = MultiplyRequest { a: matrix(1, 1, &[2.]), b: matrix(1, 1, &[3.]) };
        client.multiply(request).await.expect("served while the collector is down");
    }
    let counted = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (_, body) = http_get(api.admin_addr, "/metrics").await;
            if body.contains(r#"axiom25_telemetry_spans_dropped_total{reason="export_failed"}"#) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(counted.is_ok(), "failed exports are counted");
    api.terminate().await;
    let exit = tokio::time::timeout(Duration::from_secs(15), api.child.wait()).await.expect("exits").expect("status");
    assert!(exit.success(), "a failing collector must not fail the shutdown: {exit:?}");
}
