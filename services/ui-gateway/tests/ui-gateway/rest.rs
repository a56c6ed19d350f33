//! The REST API of docs/contracts.md §3 against a real api: every route, answer and error status.

use std::time::{Duration, Instant};

use axiom25_testkit::HttpClient;
use http::Method;
use serde_json::{Value, json};

use crate::helpers::{Answer, gateway_settings, spawn_api, spawn_gateway, spawn_pair, spawn_pair_with};

fn assert_problem(answer: &Answer, status: u16) -> Value {
    assert_eq!(answer.status, status, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("content-type"), Some("application/problem+json"));
    let problem = answer.json();
    assert_eq!(problem["status"], status);
    for member in ["type", "title", "detail"] {
        assert!(problem[member].as_str().is_some_and(|text| !text.is_empty()), "{member} in {problem}");
    }
    assert!(answer.header("x-trace-id").is_some(), "an error answer has no x-trace-id");
    problem
}

fn close(actual: &Value, expected: &[&[f64]]) -> bool {
    let rows = actual.as_array().expect("rows");
    rows.len() == expected.len()
        && rows.iter().zip(expected).all(|(row, want)| {
            let row = row.as_array().expect("row");
            row.len() == want.len()
                && row.iter().zip(*want).all(|(got, want)| (got.as_f64().unwrap() - want).abs() < 1e-9)
        })
}

#[tokio::test]
async fn multiply_returns_the_product_as_rows_with_a_trace_id() {
    let (gateway, _api) = spawn_pair().await;
    let answer = gateway.post_json("multiply", json!({"a": [[1, 2], [3, 4]], "b": [[5], [6]]})).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.json(), json!({"result": [[17.0], [39.0]]}));
    let trace_id = answer.header("x-trace-id").expect("x-trace-id");
    assert!(
        trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{trace_id}"
    );
    assert_ne!(trace_id, "0".repeat(32), "the trace id is a real one");
    let other = gateway.post_json("multiply", json!({"a": [[1]], "b": [[1]]})).await;
    assert_ne!(other.header("x-trace-id"), Some(trace_id), "each request starts its own trace");
}

#[tokio::test]
async fn every_operation_answers_as_the_contract_says() {
    let (gateway, _api) = spawn_pair().await;
    let solve = gateway.post_json("solve", json!({"a": [[2, 0], [0, 4]], "b": [[2], [4]]})).await;
    assert!(close(&solve.json()["result"], &[&[1.0], &[1.0]]), "{}", solve.json());
    let least_squares = gateway.post_json("solve", json!({"a": [[1], [1]], "b": [[1], [3]]})).await;
    assert!(close(&least_squares.json()["result"], &[&[2.0]]), "{}", least_squares.json());
    let invert = gateway.post_json("invert", json!({"a": [[4, 7], [2, 6]]})).await;
    assert!(close(&invert.json()["result"], &[&[0.6, -0.7], &[-0.2, 0.4]]), "{}", invert.json());
    let determinant = gateway.post_json("determinant", json!({"a": [[4, 7], [2, 6]]})).await;
    assert!((determinant.json()["value"].as_f64().unwrap() - 10.0).abs() < 1e-9);

    let symmetric = json!([[4, 1], [1, 3]]);
    for (kind, names) in [
        ("lu", &["l", "p", "u"][..]),
        ("qr", &["q", "r"]),
        ("cholesky", &["l"]),
        ("svd", &["s", "u", "v"]),
        ("eigen", &["values", "vectors"]),
    ] {
        let answer = gateway.post_json("decompose", json!({"a": symmetric, "kind": kind})).await;
        assert_eq!(answer.status, 200, "{kind}: {}", String::from_utf8_lossy(&answer.body));
        let factors = answer.json()["factors"].as_object().expect("factors").clone();
        let mut got: Vec<&str> = factors.keys().map(String::as_str).collect();
        got.sort_unstable();
        assert_eq!(got, names, "{kind}");
    }

    let square = gateway.post_json("analyze", json!({"a": [[1, 2], [2, 4]]})).await.json();
    assert_eq!(square["rows"], 2);
    assert_eq!(square["rank"], 1);
    assert_eq!(square["symmetric"], true);
    assert_eq!(square["condition_number"], Value::Null, "a singular matrix has an infinite condition number");
    assert!((square["trace"].as_f64().unwrap() - 5.0).abs() < 1e-9);
    let wide = gateway.post_json("analyze", json!({"a": [[1, 0, 0], [0, 1, 0]]})).await.json();
    assert_eq!((wide["trace"].clone(), wide["determinant"].clone()), (Value::Null, Value::Null));
    assert!((wide["condition_number"].as_f64().unwrap() - 1.0).abs() < 1e-9);
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_place_at_fault() {
    let (gateway, _api) = spawn_pair().await;
    let malformed = gateway
        .send(Method::POST, "/api/v1/matrix/multiply", &[("content-type", "application/json")], r#"{"a": [[1, 2]"#)
        .await;
    assert_eq!(assert_problem(&malformed, 400)["type"], "urn:axiom25:problem:invalid-json");

    let ragged =
        assert_problem(&gateway.post_json("multiply", json!({"a": [[1, 2], [3]], "b": [[1], [1]]})).await, 400);
    assert_eq!(ragged["pointer"], "/a");
    assert!(ragged["detail"].as_str().unwrap().contains("row 1 has 1 values but row 0 has 2"), "{ragged}");

    let not_a_number = assert_problem(&gateway.post_json("invert", json!({"a": [[1, "x"], [3, 4]]})).await, 400);
    assert_eq!(not_a_number["pointer"], "/a/0/1");
    assert!(not_a_number["detail"].as_str().unwrap().contains("\"x\""), "{not_a_number}");

    let shapes = assert_problem(&gateway.post_json("multiply", json!({"a": [[1, 2, 3]], "b": [[1], [1]]})).await, 400);
    assert_eq!(shapes["pointer"], "/b");
    assert!(shapes["detail"].as_str().unwrap().contains("a.cols == b.rows"), "{shapes}");

    let not_square = assert_problem(&gateway.post_json("determinant", json!({"a": [[1, 2, 3]]})).await, 400);
    assert_eq!(not_square["pointer"], "/a");

    let kind = assert_problem(&gateway.post_json("decompose", json!({"a": [[1]], "kind": "lq"})).await, 400);
    assert_eq!(kind["pointer"], "/kind");
    let missing = assert_problem(&gateway.post_json("solve", json!({"a": [[1]]})).await, 400);
    assert!(missing["detail"].as_str().unwrap().contains("missing field `b`"), "{missing}");
    let unknown = assert_problem(&gateway.post_json("invert", json!({"a": [[1]], "A": [[1]]})).await, 400);
    assert!(unknown["detail"].as_str().unwrap().contains("unknown field `A`"), "{unknown}");
    let empty = assert_problem(&gateway.post_json("invert", json!({"a": []})).await, 400);
    assert!(empty["detail"].as_str().unwrap().contains("at least one row"), "{empty}");
    let huge_number = gateway
        .send(Method::POST, "/api/v1/matrix/invert", &[("content-type", "application/json")], r#"{"a": [[1e400]]}"#)
        .await;
    assert_problem(&huge_number, 400);
    let trailing = gateway
        .send(Method::POST, "/api/v1/matrix/invert", &[("content-type", "application/json")], r#"{"a": [[1]]} x"#)
        .await;
    assert_problem(&trailing, 400);
}

#[tokio::test]
async fn singular_and_indefinite_matrices_are_422() {
    let (gateway, _api) = spawn_pair().await;
    let singular = assert_problem(&gateway.post_json("invert", json!({"a": [[1, 2], [2, 4]]})).await, 422);
    assert!(singular["detail"].as_str().unwrap().contains("singular"), "{singular}");
    assert_problem(&gateway.post_json("solve", json!({"a": [[1, 2], [2, 4]], "b": [[1], [1]]})).await, 422);
    assert_problem(&gateway.post_json("decompose", json!({"a": [[1, 2], [2, 1]], "kind": "cholesky"})).await, 422);
    let overflow = assert_problem(&gateway.post_json("multiply", json!({"a": [[1e300]], "b": [[1e300]]})).await, 422);
    assert_eq!(overflow["type"], "urn:axiom25:problem:overflow");
}

#[tokio::test]
async fn routes_methods_and_media_types_are_checked() {
    let (gateway, _api) = spawn_pair().await;
    assert_problem(&gateway.post_json("transpose", json!({"a": [[1]]})).await, 404);
    assert_problem(&gateway.get("/api/v2/anything").await, 404);
    let get = gateway.get("/api/v1/matrix/multiply").await;
    assert_problem(&get, 405);
    assert_eq!(get.header("allow"), Some("POST"));
    let text = gateway.send(Method::POST, "/api/v1/matrix/invert", &[("content-type", "text/plain")], "[[1]]").await;
    assert_problem(&text, 415);
    let none = gateway.send(Method::POST, "/api/v1/matrix/invert", &[], r#"{"a": [[1]]}"#).await;
    assert_problem(&none, 415);
    let charset = gateway
        .send(
            Method::POST,
            "/api/v1/matrix/invert",
            &[("content-type", "application/json; charset=utf-8")],
            r#"{"a": [[2]]}"#,
        )
        .await;
    assert_eq!(charset.status, 200);
}

#[tokio::test]
async fn bodies_and_matrices_over_the_limits_are_413() {
    let (gateway, _api) = spawn_pair_with(|settings| {
        settings.limits.max_body_bytes = 2048;
        settings.limits.max_rows = 4;
    })
    .await;
    let big: Vec<Vec<f64>> = vec![vec![1.0; 300]; 2];
    let body = assert_problem(&gateway.post_json("analyze", json!({"a": big})).await, 413);
    assert!(body["detail"].as_str().unwrap().contains("2048 bytes"), "{body}");
    let tall: Vec<Vec<f64>> = vec![vec![1.0]; 5];
    let matrix = assert_problem(&gateway.post_json("analyze", json!({"a": tall})).await, 413);
    assert_eq!(matrix["pointer"], "/a");
    assert!(matrix["detail"].as_str().unwrap().contains("5×1 exceeds the limit of 4×1024"), "{matrix}");
}

#[tokio::test]
async fn an_incoming_traceparent_is_joined_and_answered_in_x_trace_id() {
    let (gateway, _api) = spawn_pair().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let answer = gateway
        .send(
            Method::POST,
            "/api/v1/matrix/determinant",
            &[("content-type", "application/json"), ("traceparent", &format!("00-{trace_id}-00f067aa0ba902b7-01"))],
            r#"{"a": [[3]]}"#,
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-trace-id"), Some(trace_id));
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let (gateway, _api) = spawn_pair().await;
    for answer in [
        gateway.post_json("determinant", json!({"a": [[3]]})).await,
        gateway.get("/api/v1/openapi.json").await,
        gateway.get("/no/such/page").await,
        gateway.get("/").await,
    ] {
        let csp = answer.header("content-security-policy").expect("CSP");
        for directive in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(answer.header("x-frame-options"), Some("DENY"));
    }
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_six_operations() {
    let (gateway, _api) = spawn_pair().await;
    let document = gateway.get("/api/v1/openapi.json").await.json();
    assert_eq!(document["openapi"], "3.1.0");
    let mut paths: Vec<&str> = document["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    paths.sort_unstable();
    let ops = ["analyze", "decompose", "determinant", "invert", "multiply", "solve"];
    assert_eq!(paths, ops.map(|op| format!("/api/v1/matrix/{op}")).iter().map(String::as_str).collect::<Vec<_>>());
    for op in ops {
        let operation = &document["paths"][format!("/api/v1/matrix/{op}")];
        assert_eq!(operation.as_object().unwrap().keys().collect::<Vec<_>>(), ["post"], "{op}");
        let responses = operation["post"]["responses"].as_object().unwrap();
        for status in ["200", "400", "401", "413", "415", "422", "429", "503", "504"] {
            assert!(responses.contains_key(status), "{op} does not document {status}");
        }
        assert!(responses["503"]["headers"]["retry-after"].is_object(), "{op}");
    }
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]) {
        let name = reference.strip_prefix("#/components/schemas/").expect("a local schema reference");
        assert!(document["components"]["schemas"][name].is_object(), "{reference} points at nothing");
    }
    assert_eq!(
        document["components"]["schemas"]["OneMatrix"]["properties"]["a"]["$ref"],
        "#/components/schemas/JsonMatrix"
    );
    let problem = &document["components"]["schemas"]["Problem"]["properties"];
    for member in ["type", "title", "status", "detail", "pointer", "reason"] {
        assert!(problem[member].is_object(), "the Problem schema lacks {member}: {problem}");
    }
    let matrix = &document["components"]["schemas"]["JsonMatrix"];
    assert_eq!((matrix["minItems"].clone(), matrix["items"]["minItems"].clone()), (json!(1), json!(1)), "{matrix}");
}

mod keys {
    use super::*;
    use axiom25_ui_gateway::security::key_hash_line;

    async fn gateway_with_keys() -> (crate::helpers::TestGateway, crate::helpers::Running, tempfile::NamedTempFile) {
        let (api, running) = spawn_api().await;
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("# test keys\n{}\n", key_hash_line("correct horse"))).unwrap();
        let mut settings = gateway_settings(api);
        settings.auth.api_keys_file = Some(file.path().to_owned());
        (spawn_gateway(settings).await, running, file)
    }

    #[tokio::test]
    async fn with_keys_configured_a_request_needs_a_valid_key() {
        let (gateway, _api, _file) = gateway_with_keys().await;
        let body = r#"{"a": [[2]]}"#;
        let json = ("content-type", "application/json");
        let missing = gateway.send(Method::POST, "/api/v1/matrix/determinant", &[json], body).await;
        assert_problem(&missing, 401);
        assert_eq!(missing.header("www-authenticate"), Some("Bearer realm=\"axiom25\""));
        let wrong = gateway
            .send(Method::POST, "/api/v1/matrix/determinant", &[json, ("authorization", "Bearer nope")], body)
            .await;
        assert_problem(&wrong, 401);
        let bearer = gateway
            .send(Method::POST, "/api/v1/matrix/determinant", &[json, ("authorization", "Bearer correct horse")], body)
            .await;
        assert_eq!(bearer.status, 200);
        let header = gateway
            .send(Method::POST, "/api/v1/matrix/determinant", &[json, ("x-api-key", "correct horse")], body)
            .await;
        assert_eq!(header.status, 200);
        assert_eq!(gateway.get("/api/v1/openapi.json").await.status, 200, "the document is public");
    }

    #[tokio::test]
    async fn a_key_file_that_is_not_hashes_stops_the_gateway_at_start() {
        let (api, _api) = spawn_api().await;
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "plain-text-key\n").unwrap();
        let mut settings = gateway_settings(api);
        settings.auth.api_keys_file = Some(file.path().to_owned());
        let app = axiom25_ui_gateway::Application::build(settings).await.unwrap();
        let error = app.run_until_stopped(std::future::pending()).await.unwrap_err();
        assert!(format!("{error:#}").contains(":1: expected sha256:"), "{error:#}");
    }
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let (gateway, _api) = spawn_pair_with(|settings| {
        settings.rate_limit.requests_per_second = 1;
        settings.rate_limit.burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..5 {
        let answer = gateway.post_json("determinant", json!({"a": [[2]]})).await;
        statuses.push(answer.status.as_u16());
        if answer.status == 429 {
            limited = Some(answer);
        }
    }
    assert_eq!(&statuses[..3], [200, 200, 200]);
    let limited = limited.expect("the fourth or fifth request is limited");
    assert_problem(&limited, 429);
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(gateway.get("/").await.status, 200, "pages are not rate limited");
}

mod cors {
    use super::*;

    async fn preflight(gateway: &crate::helpers::TestGateway, origin: &str) -> Answer {
        gateway
            .send(
                Method::OPTIONS,
                "/api/v1/matrix/multiply",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type"),
                ],
                "",
            )
            .await
    }

    /// A browser's POST of det([[2]]) from a page of `origin`.
    async fn determinant_from(gateway: &crate::helpers::TestGateway, origin: &str) -> Answer {
        let headers = [("content-type", "application/json"), ("origin", origin)];
        gateway.send(Method::POST, "/api/v1/matrix/determinant", &headers, r#"{"a": [[2]]}"#).await
    }

    #[tokio::test]
    async fn cross_origin_calls_are_closed_by_default() {
        let (gateway, _api) = spawn_pair().await;
        let answer = preflight(&gateway, "https://elsewhere.example").await;
        assert!(answer.header("access-control-allow-origin").is_none());
        let post = determinant_from(&gateway, "https://elsewhere.example").await;
        assert!(post.header("access-control-allow-origin").is_none());
    }

    #[tokio::test]
    async fn a_configured_origin_may_call_and_others_may_not() {
        let (gateway, _api) =
            spawn_pair_with(|settings| settings.cors.allowed_origins = vec!["https://app.example".into()]).await;
        let allowed = preflight(&gateway, "https://app.example").await;
        assert!(allowed.status.is_success(), "{}", allowed.status);
        assert_eq!(allowed.header("access-control-allow-origin"), Some("https://app.example"));
        let other = preflight(&gateway, "https://evil.example").await;
        assert!(other.header("access-control-allow-origin").is_none());
        let post = determinant_from(&gateway, "https://app.example").await;
        assert_eq!(post.status, 200);
        assert_eq!(post.header("access-control-allow-origin"), Some("https://app.example"));
        assert!(post.header("access-control-expose-headers").is_some_and(|exposed| exposed.contains("x-trace-id")));
        let page = gateway.send(Method::GET, "/", &[("origin", "https://app.example")], "").await;
        assert!(page.header("access-control-allow-origin").is_none(), "pages are never shared cross-origin");
    }
}

#[tokio::test]
async fn a_stopped_api_is_503_at_once_the_gateway_stays_ready_and_recovers() {
    let (api, running) = spawn_api().await;
    let mut settings = gateway_settings(api);
    settings.api.resolve_interval_ms = 100;
    let gateway = spawn_gateway(settings).await;
    assert_eq!(gateway.post_json("determinant", json!({"a": [[2]]})).await.status, 200);

    drop(running);
    // The api drains its connections; wait until its port refuses.
    for _ in 0..100 {
        if std::net::TcpStream::connect(api).is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let down = gateway.post_json("determinant", json!({"a": [[2]]})).await;
    let first = started.elapsed();
    assert_problem(&down, 503);
    assert!(down.header("retry-after").is_some());
    let started = Instant::now();
    assert_problem(&gateway.post_json("determinant", json!({"a": [[2]]})).await, 503);
    let second = started.elapsed();
    assert!(first < Duration::from_secs(3) && second < Duration::from_millis(500), "{first:?} then {second:?}");
    assert_eq!(gateway.admin("/readyz").await.status, 200, "an api outage does not make the gateway unready");

    let mut api_settings = axiom25_api::Settings::default();
    api_settings.server.host = api.ip();
    api_settings.server.grpc_port = api.port();
    api_settings.server.admin_port = 0;
    let app = axiom25_api::Application::build(api_settings).await.expect("the api restarts on its port");
    let _restarted = tokio::spawn(app.run_until_stopped(std::future::pending()));
    let mut recovered = false;
    for _ in 0..100 {
        if gateway.post_json("determinant", json!({"a": [[2]]})).await.status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the gateway serves again once the api is back");
}

#[tokio::test]
async fn a_deadline_shorter_than_the_computation_is_504() {
    let (gateway, _api) = spawn_pair_with(|settings| settings.api.deadline_ms = 1).await;
    let n = 300;
    let a: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| ((i * 31 + j * 17) % 101) as f64).collect()).collect();
    let answer = gateway.post_json("decompose", json!({"a": a, "kind": "svd"})).await;
    assert_problem(&answer, 504);
}

#[tokio::test]
async fn the_gateway_is_ready_while_its_api_is_down() {
    let (api, running) = spawn_api().await;
    drop(running);
    let gateway = spawn_gateway(gateway_settings(api)).await;
    assert_eq!(gateway.admin("/readyz").await.status, 200);
    assert_eq!(gateway.get("/api/v1/openapi.json").await.status, 200);
}

#[tokio::test]
async fn http_metrics_use_route_templates_and_the_client_side_of_grpc_is_measured() {
    let (gateway, _api) = spawn_pair().await;
    gateway.post_json("determinant", json!({"a": [[2]]})).await;
    gateway.get("/no/such/path/12345").await;
    let metrics = String::from_utf8(gateway.admin("/metrics").await.body.to_vec()).unwrap();
    assert!(metrics.contains(r#"http_route="/api/v1/matrix/determinant""#), "{metrics}");
    assert!(!metrics.contains("12345"), "a raw path leaked into a label");
    assert!(metrics.contains("rpc_client_duration_seconds_bucket"), "{metrics}");
    assert!(metrics.contains(r#"rpc_method="Determinant""#), "{metrics}");
}

#[tokio::test]
async fn on_stop_the_gateway_turns_unready_first_then_closes_and_exits_cleanly() {
    let (api, _api) = spawn_api().await;
    let mut settings = gateway_settings(api);
    settings.shutdown.drain_delay_ms = 400;
    let app = axiom25_ui_gateway::Application::build(settings).await.unwrap();
    let (http, admin) = (app.http_addr(), app.admin_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
        "test"
    }));
    let client = HttpClient::new().with_timeout(Duration::from_secs(1));
    let probe = |addr| {
        let client = client.clone();
        async move { client.get(addr, "/readyz").await.map(|answer| answer.status.as_u16()) }
    };
    for _ in 0..50 {
        if probe(admin).await.ok() == Some(200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(probe(admin).await.ok(), Some(200));
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(probe(admin).await.ok(), Some(503), "not ready as soon as the stop signal arrives");
    assert!(std::net::TcpStream::connect(http).is_ok(), "the listener stays open during the drain delay");
    let result = tokio::time::timeout(Duration::from_secs(5), running).await.expect("it stops").expect("task");
    assert!(result.is_ok(), "{result:?}");
    assert!(std::net::TcpStream::connect(http).is_err(), "the listener is closed");
}

/// The gateway reads the api's `google.rpc` details, never its messages: a stand-in api answers
/// every call with one status whose message names no field, and the problem still points right.
mod error_details {
    use std::net::SocketAddr;

    use axiom25_proto::matrix::v1 as pb;
    use pb::matrix_service_server::{MatrixService, MatrixServiceServer};
    use tonic::{Code, Request, Response, Status};
    use tonic_types::{ErrorDetails, StatusExt as _};

    use super::*;

    /// Answers every call with the same status.
    struct FixedAnswer(Status);

    #[tonic::async_trait]
    impl MatrixService for FixedAnswer {
        async fn multiply(&self, _: Request<pb::MultiplyRequest>) -> Result<Response<pb::MultiplyResponse>, Status> {
            Err(self.0.clone())
        }
        async fn solve(&self, _: Request<pb::SolveRequest>) -> Result<Response<pb::SolveResponse>, Status> {
            Err(self.0.clone())
        }
        async fn invert(&self, _: Request<pb::InvertRequest>) -> Result<Response<pb::InvertResponse>, Status> {
            Err(self.0.clone())
        }
        async fn determinant(
            &self,
            _: Request<pb::DeterminantRequest>,
        ) -> Result<Response<pb::DeterminantResponse>, Status> {
            Err(self.0.clone())
        }
        async fn decompose(&self, _: Request<pb::DecomposeRequest>) -> Result<Response<pb::DecomposeResponse>, Status> {
            Err(self.0.clone())
        }
        async fn analyze(&self, _: Request<pb::AnalyzeRequest>) -> Result<Response<pb::AnalyzeResponse>, Status> {
            Err(self.0.clone())
        }
    }

    /// Stops the stand-in api when dropped.
    struct StandIn(tokio::task::JoinHandle<()>);

    impl Drop for StandIn {
        fn drop(&mut self) {
            self.0.abort();
        }
    }

    async fn spawn_stand_in(answer: Status) -> (SocketAddr, StandIn) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tonic::transport::Server::builder()
            .add_service(MatrixServiceServer::new(FixedAnswer(answer)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        (addr, StandIn(tokio::spawn(async move { server.await.expect("the stand-in api serves") })))
    }

    async fn answer_to(status: Status) -> Answer {
        let (api, _stand_in) = spawn_stand_in(status).await;
        let gateway = spawn_gateway(gateway_settings(api)).await;
        gateway.post_json("multiply", json!({"a": [[1]], "b": [[1]]})).await
    }

    fn violation(reason: &str, field: &str, metadata: &[(&str, &str)]) -> ErrorDetails {
        let metadata: std::collections::HashMap<String, String> =
            metadata.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
        let mut details = ErrorDetails::new();
        details.set_error_info(reason, "matrix.axiom25", metadata);
        details.add_bad_request_violation(field, format!("{field} does not fit"));
        details
    }

    #[tokio::test]
    async fn the_pointer_detail_and_reason_come_from_the_field_violation_not_the_message() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "the request is wrong",
            violation("SHAPE_MISMATCH", "b", &[]),
        );
        let problem = assert_problem(&answer_to(status).await, 400);
        assert_eq!(problem["pointer"], "/b");
        assert_eq!(problem["detail"], "b does not fit");
        assert_eq!(problem["reason"], "SHAPE_MISMATCH");
    }

    #[tokio::test]
    async fn an_element_named_by_row_and_column_is_pointed_at() {
        let details = violation("NOT_SYMMETRIC", "a.data[5]", &[("row", "1"), ("col", "2")]);
        let status = Status::with_error_details(Code::InvalidArgument, "no", details);
        assert_eq!(assert_problem(&answer_to(status).await, 400)["pointer"], "/a/1/2");
        let details = violation("SINGULAR_MATRIX", "a", &[]);
        let singular =
            assert_problem(&answer_to(Status::with_error_details(Code::FailedPrecondition, "no", details)).await, 422);
        assert_eq!((&singular["pointer"], &singular["reason"]), (&json!("/a"), &json!("SINGULAR_MATRIX")));
    }

    #[tokio::test]
    async fn a_message_naming_a_field_without_details_gets_no_pointer() {
        let problem = assert_problem(&answer_to(Status::invalid_argument("a: shape 0×1 is wrong")).await, 400);
        assert!(problem.get("pointer").is_none() && problem.get("reason").is_none(), "{problem}");
        assert_eq!(problem["detail"], "a: shape 0×1 is wrong");
    }

    #[tokio::test]
    async fn a_shed_call_s_retry_info_becomes_retry_after() {
        let mut details = ErrorDetails::with_retry_info(Some(Duration::from_secs(3)));
        details.set_error_info("OVERLOADED", "matrix.axiom25", std::collections::HashMap::new());
        let answer = answer_to(Status::with_error_details(Code::Unavailable, "at the limit", details)).await;
        let problem = assert_problem(&answer, 503);
        assert_eq!(answer.header("retry-after"), Some("3"));
        assert_eq!(problem["reason"], "OVERLOADED");
    }

    #[tokio::test]
    async fn the_real_api_s_details_point_at_the_element_and_name_the_reason() {
        let (gateway, _api) = spawn_pair().await;
        let eigen = gateway.post_json("decompose", json!({"a": [[1, 2], [3, 4]], "kind": "eigen"})).await;
        let asymmetric = assert_problem(&eigen, 400);
        assert_eq!((&asymmetric["pointer"], &asymmetric["reason"]), (&json!("/a/0/1"), &json!("NOT_SYMMETRIC")));
        assert!(asymmetric["detail"].as_str().unwrap().contains("a[0][1] and a[1][0] differ"), "{asymmetric}");
        let singular = assert_problem(&gateway.post_json("invert", json!({"a": [[1, 2], [2, 4]]})).await, 422);
        assert_eq!((&singular["pointer"], &singular["reason"]), (&json!("/a"), &json!("SINGULAR_MATRIX")));
        let shapes = assert_problem(&gateway.post_json("solve", json!({"a": [[1, 0], [0, 1]], "b": [[1]]})).await, 400);
        assert_eq!((&shapes["pointer"], &shapes["reason"]), (&json!("/b"), &json!("SHAPE_MISMATCH")));
    }
}

#[tokio::test]
async fn every_api_answer_names_the_release_that_served_it() {
    let (gateway, _api) = spawn_pair().await;
    let ok = gateway.post_json("determinant", json!({"a": [[1, 2], [3, 4]]})).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("x-axiom25-release"), Some(concat!("none/", env!("CARGO_PKG_VERSION"))));
    let singular = gateway.post_json("invert", json!({"a": [[1, 2], [2, 4]]})).await;
    assert_eq!(singular.status, 422);
    assert!(singular.header("x-axiom25-release").is_some(), "errors from the api name the release too");
    let not_json = gateway.send(Method::POST, "/api/v1/matrix/invert", &[("content-type", "text/plain")], "x").await;
    assert_eq!(not_json.header("x-axiom25-release"), None, "no api call, no release");
}
