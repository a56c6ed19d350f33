//! The query API on the admin port (docs/contracts.md §4): services, traces, one trace, logs.
//!
//! The answers' types and routes live in `axiom25-telemetry-query`, shared with the ui-gateway's
//! client. Every error is an RFC 9457 `application/problem+json` body (the workspace's one
//! [`Problem`] type). Empty query parameters count as absent (HTML forms send them); unknown ones
//! are ignored.

use std::collections::HashMap;
use std::sync::Arc;

use axiom25_observability::problem::Problem;
use axiom25_telemetry_query::{LOGS_PATH, SERVICES_PATH, TRACE_PATH, TRACES_PATH};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::store::{
    DEFAULT_LIMIT, LogList, LogQuery, LogStore, MAX_LIMIT, ServiceList, SpanStore, TraceDetail, TraceId, TraceList,
    TraceQuery, parse_trace_id,
};

/// A query the API refuses, answered as a problem document.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A parameter (query or path) that does not parse; answered 400.
    #[error("{parameter}: {problem}")]
    InvalidParameter {
        /// The parameter's name.
        parameter: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A well-formed trace id the store does not hold; answered 404.
    #[error("trace_id: no trace {0} is held (never received, or evicted)")]
    TraceNotFound(String),
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            Self::TraceNotFound(_) => StatusCode::NOT_FOUND,
        };
        Problem::about_blank(status, self.to_string()).into_response()
    }
}

#[derive(Clone)]
struct Stores {
    spans: Arc<SpanStore>,
    logs: Arc<LogStore>,
}

type Parameters = Result<Query<HashMap<String, String>>, QueryRejection>;

/// Routes `GET /api/v1/services`, `/api/v1/traces`, `/api/v1/traces/{trace_id}` and `/api/v1/logs`.
pub fn router(spans: Arc<SpanStore>, logs: Arc<LogStore>) -> Router {
    Router::new()
        .route(SERVICES_PATH, get(services))
        .route(TRACES_PATH, get(traces))
        .route(TRACE_PATH, get(trace))
        .route(LOGS_PATH, get(logs_of))
        .with_state(Stores { spans, logs })
}

async fn services(State(stores): State<Stores>) -> Json<ServiceList> {
    Json(stores.spans.services())
}

async fn traces(State(stores): State<Stores>, parameters: Parameters) -> Result<Json<TraceList>, QueryError> {
    let parameters = parameters_of(parameters)?;
    let query = TraceQuery {
        service: present(&parameters, "service").map(str::to_owned),
        min_duration_ms: present(&parameters, "min_duration_ms")
            .map(|text| {
                text.parse()
                    .map_err(|_| invalid("min_duration_ms", format!("must be a whole number, got {:?}", shown(text))))
            })
            .transpose()?,
        error: present(&parameters, "error")
            .map(|text| match text {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(invalid("error", format!("must be true or false, got {:?}", shown(text)))),
            })
            .transpose()?,
        limit: limit(&parameters)?.unwrap_or(DEFAULT_LIMIT),
    };
    Ok(Json(stores.spans.traces(&query)))
}

async fn trace(
    State(stores): State<Stores>,
    trace_id: Result<Path<String>, PathRejection>,
) -> Result<Json<TraceDetail>, QueryError> {
    let Path(text) = trace_id.map_err(|rejection| invalid("trace_id", rejection.body_text()))?;
    let trace_id = trace_id_of(&text)?;
    stores.spans.trace(&trace_id).map(Json).ok_or_else(|| QueryError::TraceNotFound(text.to_ascii_lowercase()))
}

async fn logs_of(State(stores): State<Stores>, parameters: Parameters) -> Result<Json<LogList>, QueryError> {
    let parameters = parameters_of(parameters)?;
    let trace_id = present(&parameters, "trace_id").map(trace_id_of).transpose()?;
    // A trace's logs are answered whole (up to the maximum) unless a limit is asked for.
    let default_limit = if trace_id.is_some() { MAX_LIMIT } else { DEFAULT_LIMIT };
    let query = LogQuery { trace_id, limit: limit(&parameters)?.unwrap_or(default_limit) };
    Ok(Json(stores.logs.logs(&query)))
}

fn parameters_of(parameters: Parameters) -> Result<HashMap<String, String>, QueryError> {
    parameters.map(|Query(parameters)| parameters).map_err(|rejection| invalid("query", rejection.body_text()))
}

fn present<'a>(parameters: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    parameters.get(name).map(String::as_str).filter(|value| !value.is_empty())
}

fn limit(parameters: &HashMap<String, String>) -> Result<Option<usize>, QueryError> {
    let Some(text) = present(parameters, "limit") else { return Ok(None) };
    match text.parse::<usize>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(Some(limit)),
        _ => Err(invalid("limit", format!("must be a whole number within 1..={MAX_LIMIT}, got {:?}", shown(text)))),
    }
}

fn trace_id_of(text: &str) -> Result<TraceId, QueryError> {
    parse_trace_id(text)
        .ok_or_else(|| invalid("trace_id", format!("must be 32 hex digits and not all zero, got {:?}", shown(text))))
}

fn invalid(parameter: &'static str, problem: String) -> QueryError {
    QueryError::InvalidParameter { parameter, problem }
}

/// A client's parameter as quoted back in an error: at most 64 characters.
fn shown(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(64).collect();
    if chars.next().is_some() { format!("{head}…") } else { head }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, header};
    use http_body_util::BodyExt;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;
    use crate::store::{LogStoreSettings, SpanStoreSettings};

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

    fn stores() -> (Arc<SpanStore>, Arc<LogStore>) {
        let spans = Arc::new(SpanStore::new(SpanStoreSettings::default()));
        let logs = Arc::new(LogStore::new(LogStoreSettings::default()));
        let trace_id = parse_trace_id(TRACE).unwrap().to_vec();
        let span = |id: u8, start: u64, end: u64| Span {
            trace_id: trace_id.clone(),
            span_id: vec![1, 1, 1, 1, 1, 1, 1, id],
            name: "GET /".into(),
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            ..Default::default()
        };
        spans.insert(&ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![span(1, 10, 3_000_010)], ..Default::default() }],
                ..Default::default()
            }],
        });
        logs.insert(&ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord { time_unix_nano: 5, trace_id, ..Default::default() }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
        (spans, logs)
    }

    async fn get(uri: &str) -> (StatusCode, String, Value) {
        let (spans, logs) = stores();
        let response = router(spans, logs).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap().to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, serde_json::from_slice(&body).unwrap())
    }

    async fn assert_bad_request(uri: &str, parameter: &str) {
        let (status, content_type, body) = get(uri).await;
        assert_eq!((status, content_type.as_str()), (StatusCode::BAD_REQUEST, "application/problem+json"), "{uri}");
        assert_eq!(
            (&body["type"], &body["title"], &body["status"]),
            (&json!("about:blank"), &json!("Bad Request"), &json!(400))
        );
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("{parameter}: ")), "{uri}: {detail}");
    }

    #[tokio::test]
    async fn services_are_listed_with_their_span_counts() {
        let (status, content_type, body) = get("/api/v1/services").await;
        assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/json"));
        assert_eq!(body, json!({"services": [{"name": "unknown_service", "span_count": 1}]}));
    }

    #[tokio::test]
    async fn traces_answer_with_filters_applied_and_unknown_parameters_ignored() {
        let (status, _, body) = get("/api/v1/traces?limit=5&error=false&min_duration_ms=3&colour=blue&service=").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["traces"][0]["trace_id"], TRACE);
        assert_eq!(body["traces"][0]["duration_ns"], 3_000_000);
        for uri in ["/api/v1/traces?min_duration_ms=4", "/api/v1/traces?error=true", "/api/v1/traces?service=web"] {
            assert_eq!(get(uri).await.2, json!({"traces": []}), "{uri}");
        }
    }

    #[tokio::test]
    async fn bad_trace_parameters_are_problem_documents_naming_the_parameter() {
        assert_bad_request("/api/v1/traces?limit=ten", "limit").await;
        assert_bad_request("/api/v1/traces?limit=0", "limit").await;
        assert_bad_request("/api/v1/traces?limit=1001", "limit").await;
        assert_bad_request("/api/v1/traces?limit=-1", "limit").await;
        assert_bad_request("/api/v1/traces?error=yes", "error").await;
        assert_bad_request("/api/v1/traces?min_duration_ms=1.5", "min_duration_ms").await;
        assert_bad_request("/api/v1/logs?trace_id=abc", "trace_id").await;
        assert_bad_request("/api/v1/logs?limit=5000", "limit").await;
    }

    #[tokio::test]
    async fn one_trace_is_found_by_id_in_either_case_and_answered_in_lowercase() {
        let (status, _, body) = get(&format!("/api/v1/traces/{}", TRACE.to_ascii_uppercase())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["trace_id"], TRACE);
        assert_eq!(body["spans"][0]["span_id"], "0101010101010101");
    }

    #[tokio::test]
    async fn a_malformed_trace_id_is_a_bad_request_and_an_unknown_one_not_found() {
        assert_bad_request("/api/v1/traces/xyz", "trace_id").await;
        assert_bad_request(&format!("/api/v1/traces/{}", "0".repeat(32)), "trace_id").await;
        assert_bad_request(&format!("/api/v1/traces/{TRACE}0"), "trace_id").await;
        let unknown = "4bf92f3577b34da6a3ce929d0e0e4736";
        let (status, content_type, body) = get(&format!("/api/v1/traces/{}", unknown.to_ascii_uppercase())).await;
        assert_eq!((status, content_type.as_str()), (StatusCode::NOT_FOUND, "application/problem+json"));
        assert_eq!((&body["title"], &body["status"]), (&json!("Not Found"), &json!(404)));
        assert!(body["detail"].as_str().unwrap().contains(unknown));
    }

    #[tokio::test]
    async fn every_answer_reads_back_through_the_shared_types_as_the_store_holds_it() {
        use axiom25_telemetry_query::trace_path;
        let (spans, logs) = stores();
        let trace_id = parse_trace_id(TRACE).unwrap();
        let read = |uri: String| async move { get(&uri).await.2 };
        let services: ServiceList = serde_json::from_value(read(SERVICES_PATH.to_owned()).await).unwrap();
        assert_eq!(services, spans.services());
        let traces: TraceList = serde_json::from_value(read(format!("{TRACES_PATH}?limit=5")).await).unwrap();
        assert_eq!(traces, spans.traces(&TraceQuery { limit: 5, ..TraceQuery::default() }));
        let trace: TraceDetail = serde_json::from_value(read(trace_path(TRACE)).await).unwrap();
        assert_eq!(Some(trace), spans.trace(&trace_id));
        let found: LogList = serde_json::from_value(read(format!("{LOGS_PATH}?trace_id={TRACE}")).await).unwrap();
        assert_eq!(found, logs.logs(&LogQuery { trace_id: Some(trace_id), limit: MAX_LIMIT }));
        assert_eq!(found.logs.len(), 1);
    }

    #[tokio::test]
    async fn logs_are_answered_by_trace_id_and_without_one() {
        let (status, _, body) = get(&format!("/api/v1/logs?trace_id={}", TRACE.to_ascii_uppercase())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["logs"][0]["trace_id"], TRACE);
        assert_eq!(body["logs"][0]["time_unix_nano"], 5);
        let (_, _, body) = get("/api/v1/logs?trace_id=4bf92f3577b34da6a3ce929d0e0e4736").await;
        assert_eq!(body, json!({"logs": []}));
        let (_, _, body) = get("/api/v1/logs?limit=1").await;
        assert_eq!(body["logs"].as_array().unwrap().len(), 1);
    }
}
