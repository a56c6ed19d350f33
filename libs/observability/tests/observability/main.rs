//! W3C trace-context propagation and RED metrics of the tower layers, end to end through tower
//! services: what a client of the layers relies on; on-demand GOAWAY through a real server ([`reconnect`]).

mod reconnect;

use std::sync::{Arc, Mutex};

use axiom25_observability::ServiceInfo;
use axiom25_observability::grpc::GrpcClientLayer;
use axiom25_observability::http::HttpServerLayer;
use axiom25_observability::metrics::MetricsHandle;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderMap, Request, Response};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tower::{Layer, ServiceExt};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// A subscriber that gives spans OpenTelemetry ids, as `telemetry::init` does, for this thread.
fn with_tracing() -> tracing::subscriber::DefaultGuard {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = SdkTracerProvider::builder().build().tracer("test");
    let subscriber = tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    tracing::subscriber::set_default(subscriber)
}

#[tokio::test]
async fn the_grpc_client_layer_sends_the_current_trace_as_traceparent() {
    let _tracing = with_tracing();
    let seen: Arc<Mutex<Option<HeaderMap>>> = Arc::default();
    let recorded = Arc::clone(&seen);
    let server = tower::service_fn(move |request: Request<()>| {
        *recorded.lock().expect("lock") = Some(request.headers().clone());
        async {
            let mut response = Response::new(String::new());
            response.headers_mut().insert("grpc-status", "0".parse().expect("ascii"));
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let parent = tracing::info_span!("caller");
    let parent_trace = parent.context().span().span_context().trace_id().to_string();
    let request = Request::post("http://api/axiom25.matrix.v1.MatrixService/Multiply").body(()).expect("request");
    let _entered = parent.enter();
    GrpcClientLayer::new(MetricsHandle::new(&ServiceInfo::new("observability-test", "0", None)))
        .layer(server)
        .oneshot(request)
        .await
        .expect("response");

    let headers = seen.lock().expect("lock").clone().expect("the call reached the server");
    let traceparent = headers.get("traceparent").expect("traceparent sent").to_str().expect("ascii").to_owned();
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    assert_eq!(fields[1], parent_trace, "the client span belongs to the caller's trace");
}

#[tokio::test]
async fn the_http_layer_joins_the_callers_trace_answers_x_trace_id_and_labels_by_route_template() {
    let _tracing = with_tracing();
    let metrics = MetricsHandle::new(&ServiceInfo::new("observability-test", "0", None));
    let router = Router::new()
        .route("/things/{id}", get(|| async { "thing" }))
        .layer(HttpServerLayer::new(metrics.clone()).with_trace_id_header());

    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let request = Request::get("/things/12345")
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .body(Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-trace-id"], trace_id);
    drop(response);

    let fresh = router.clone().oneshot(Request::get("/things/1").body(Body::empty()).expect("request"));
    let fresh = fresh.await.expect("response");
    let started = fresh.headers()["x-trace-id"].to_str().expect("ascii").to_owned();
    assert!(started.len() == 32 && started != trace_id && started.bytes().all(|b| b.is_ascii_hexdigit()));
    drop(fresh);

    let missing = router.oneshot(Request::get("/no/such/path").body(Body::empty()).expect("request"));
    assert_eq!(missing.await.expect("response").status(), 404);

    let text = metrics.render();
    assert!(
        text.contains(
            r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/things/{id}",http_response_status_code="200"} 2"#
        ),
        "{text}"
    );
    assert!(!text.contains("12345") && !text.contains("/no/such/path"), "a raw path became a label:\n{text}");
}
