//! The ui-gateway image in front of the api image: one trace across the REST → gRPC hop, and the
//! gateway's answers while the api is gone and after it comes back at another address.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axiom25_e2e::{ApiContainer, CollectorContainer, GatewayContainer, TestNetwork};
use axiom25_testkit::{Answer, HttpClient};

use crate::get;

const MULTIPLY: &str = "/api/v1/matrix/multiply";
const PRODUCT_BODY: &str = r#"{"a":[[1,2],[3,4]],"b":[[1],[1]]}"#;

/// `POST path` with a JSON `body`: the gateway's answer within 15 s, whatever the status.
async fn post(addr: SocketAddr, path: &str, body: &'static str) -> Answer {
    let client = HttpClient::new().with_timeout(Duration::from_secs(15));
    let json = [("content-type", "application/json")];
    client.post(addr, path, &json, body).await.unwrap_or_else(|error| panic!("the gateway answers: {error:#}"))
}

fn assert_product(response: &Answer) {
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.json(), serde_json::json!({"result": [[3.0], [7.0]]}), "{response:?}");
}

#[tokio::test]
async fn a_rest_call_is_one_trace_whose_api_server_span_is_a_child_of_a_gateway_span() {
    let network = TestNetwork::new();
    let collector = CollectorContainer::start(&network, &[]).await;
    let export = collector.export_env();
    let api = ApiContainer::start(&network, &export).await;
    let mut gateway_env = export.to_vec();
    gateway_env.push(("AXIOM25__API__ENDPOINT", api.internal_grpc.as_str()));
    gateway_env.push(("AXIOM25__OPS__COLLECTOR_ENDPOINT", collector.internal_admin.as_str()));
    let gateway = GatewayContainer::start(&network, &gateway_env).await;

    let response = post(gateway.http, MULTIPLY, PRODUCT_BODY).await;
    assert_product(&response);
    let trace_id = response.header("x-trace-id").expect("x-trace-id").to_owned();
    assert!(
        trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "x-trace-id is 32 lowercase hex: {trace_id}"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let answer = get(collector.admin, &format!("/api/v1/traces/{trace_id}")).await;
        let (status, body) = (answer.status, answer.text());
        if status == 200 {
            let trace = answer.json();
            let spans = trace["spans"].as_array().cloned().unwrap_or_default();
            let has = |service: &str| spans.iter().any(|span| span["service"] == service);
            if has("ui-gateway") && has("api") {
                break spans;
            }
        } else {
            assert_eq!(status, 404, "unknown traces are 404 until they arrive: {body}");
        }
        assert!(Instant::now() < deadline, "trace {trace_id} never held spans of both services: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let api_server = spans
        .iter()
        .find(|span| span["service"] == "api" && span["kind"] == "SPAN_KIND_SERVER")
        .unwrap_or_else(|| panic!("no server span of the api: {spans:#?}"));
    let parent = api_server["parent_span_id"].as_str().expect("the api's span has a parent");
    let gateway_span = spans
        .iter()
        .find(|span| span["service"] == "ui-gateway" && span["span_id"] == parent)
        .unwrap_or_else(|| panic!("the api's parent {parent} is no span of the ui-gateway: {spans:#?}"));
    assert!(spans.iter().all(|span| span["trace_id"] == trace_id.as_str()), "{spans:#?}");
    eprintln!(
        "trace {trace_id}: api span {:?} is a child of ui-gateway span {:?} ({:?})",
        api_server["name"], gateway_span["name"], gateway_span["kind"]
    );
}

#[tokio::test]
async fn without_the_api_the_gateway_answers_503_quickly_stays_ready_and_recovers_when_it_returns() {
    let network = TestNetwork::new();
    let api = ApiContainer::start(&network, &[]).await;
    let gateway = GatewayContainer::start(
        &network,
        &[
            ("AXIOM25__API__ENDPOINT", api.internal_grpc.as_str()),
            ("AXIOM25__API__RESOLVE_INTERVAL_MS", "1000"),
            ("AXIOM25__OPS__COLLECTOR_ENDPOINT", ""),
        ],
    )
    .await;
    assert_product(&post(gateway.http, MULTIPLY, PRODUCT_BODY).await);

    api.stop(Duration::from_secs(10)).await;
    let started = Instant::now();
    let response = post(gateway.http, MULTIPLY, PRODUCT_BODY).await;
    let latency = started.elapsed();
    eprintln!("503 with the api stopped answered in {latency:?}: {response:?}");
    assert_eq!(response.status, 503, "{response:?}");
    let retry_after = response.header("retry-after").expect("Retry-After on a 503");
    assert!(retry_after.parse::<u64>().is_ok_and(|seconds| seconds >= 1), "Retry-After in seconds: {retry_after}");
    assert_eq!(response.header("content-type"), Some("application/problem+json"), "{response:?}");
    assert!(latency < Duration::from_secs(5), "the 503 took {latency:?}");
    assert_eq!(get(gateway.admin, "/readyz").await.status, 200, "the gateway stays ready without the api");

    api.start_again().await;
    let restarted = Instant::now();
    let deadline = restarted + Duration::from_secs(60);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let response = post(gateway.http, MULTIPLY, PRODUCT_BODY).await;
        if response.status == 200 {
            assert_product(&response);
            break;
        }
        assert_eq!(response.status, 503, "only 503 while the api comes back: {response:?}");
        assert!(Instant::now() < deadline && attempts < 300, "no recovery after {attempts} attempts: {response:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("recovered {:?} after docker start, {attempts} attempts", restarted.elapsed());
    assert_eq!(get(gateway.admin, "/readyz").await.status, 200);
}
