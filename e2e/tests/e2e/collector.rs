//! The collector image beside the api image: the api's traces reach the collector over the test
//! network, where the query API and span metrics show them.

use std::time::{Duration, Instant};

use axiom25_e2e::{ApiContainer, CollectorContainer, TestNetwork};
use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;
use axiom25_proto::matrix::v1::{Matrix, MultiplyRequest};
use tonic::transport::Endpoint;

use crate::get;

#[tokio::test]
async fn a_grpc_call_to_the_api_becomes_a_trace_and_span_metrics_in_the_collector() {
    let network = TestNetwork::new();
    let collector = CollectorContainer::start(&network, &[]).await;
    let api = ApiContainer::start(&network, &collector.export_env()).await;
    let channel =
        Endpoint::from_shared(format!("http://{}", api.grpc)).expect("uri").connect().await.expect("connects");
    let square = Some(Matrix { rows: 2, cols: 2, data: vec![1., 2., 3., 4.] });
    let request = MultiplyRequest { a: square.clone(), b: square };
    MatrixServiceClient::new(channel).multiply(request).await.expect("multiply");

    let deadline = Instant::now() + Duration::from_secs(20);
    let trace_id = loop {
        let answer = get(collector.admin, "/api/v1/traces?service=api").await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let list = answer.json();
        if let Some(id) = list["traces"][0]["trace_id"].as_str() {
            break id.to_owned();
        }
        assert!(Instant::now() < deadline, "no trace of the api reached the collector: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let answer = get(collector.admin, &format!("/api/v1/traces/{trace_id}")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let trace = answer.json();
    let span = &trace["spans"][0];
    assert_eq!(span["service"], "api", "{trace}");
    assert_eq!(span["kind"], "SPAN_KIND_SERVER", "{trace}");
    assert!(span["name"].as_str().is_some_and(|name| name.contains("Multiply")), "{trace}");

    let metrics = get(collector.admin, "/metrics").await.text();
    let calls = metrics
        .lines()
        .find(|line| {
            line.starts_with("traces_span_metrics_calls_total{")
                && line.contains(r#"service_name="api""#)
                && line.contains(r#"span_kind="SPAN_KIND_SERVER""#)
        })
        .unwrap_or_else(|| panic!("no span metrics for the api: {metrics}"));
    assert!(calls.ends_with(" 1"), "one call counted: {calls}");
    assert!(
        metrics.contains(r#"otelcol_receiver_accepted_spans_total{receiver="otlp",transport="grpc"}"#),
        "{metrics}"
    );
}
