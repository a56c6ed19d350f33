//! The web UI: the calculator (`/`), the operations view (`/ops`) and one trace (`/ops/traces/{id}`),
//! rendered on the server from askama templates; the only script is the calculator's, served with
//! the stylesheet from the binary, so pages satisfy the gateway's strict Content-Security-Policy.

mod assets;
mod format;
mod waterfall;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use serde::Deserialize;

use crate::ops::{Ops, RedView, TraceFilter, Upstream};
use crate::problem::Problem;

/// Traces listed on `/ops`.
const RECENT_TRACES: usize = 50;
/// Longest `min_duration_ms` filter accepted: a day.
const MAX_MIN_DURATION_MS: u64 = 86_400_000;

#[derive(Clone)]
struct UiState {
    ops: Ops,
    keys_required: bool,
}

/// The pages and their assets. With `keys_required` the calculator asks for an API key.
pub fn router(ops: Ops, keys_required: bool) -> Router {
    Router::new()
        .route("/", get(calculator))
        .route("/ops", get(operations))
        .route("/ops/traces/{id}", get(trace))
        .route("/assets/{name}", get(assets::serve))
        .with_state(UiState { ops, keys_required })
}

/// What every page's layout needs.
struct Layout {
    css: String,
    nav: &'static str,
}

impl Layout {
    fn new(nav: &'static str) -> Self {
        Self { css: assets::href("app.css"), nav }
    }
}

fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "Rendering a page failed");
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "render", "Page rendering failed", error.to_string())
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    layout: Layout,
    title: &'static str,
    message: String,
}

fn message(status: StatusCode, title: &'static str, message: String) -> Response {
    render(status, &MessagePage { layout: Layout::new("ops"), title, message })
}

#[derive(Template)]
#[template(path = "calculator.html")]
struct CalculatorPage {
    layout: Layout,
    js: String,
    keys_required: bool,
}

async fn calculator(State(state): State<UiState>) -> Response {
    render(
        StatusCode::OK,
        &CalculatorPage {
            layout: Layout::new("calculator"),
            js: assets::href("calc.js"),
            keys_required: state.keys_required,
        },
    )
}

struct UpstreamRow {
    name: &'static str,
    ready: bool,
    class: &'static str,
    state: &'static str,
    detail: String,
}

fn upstream_row(name: &'static str, upstream: &Upstream) -> UpstreamRow {
    let (class, state, detail) = match upstream {
        Upstream::Unknown => ("unknown", "checking…", String::new()),
        Upstream::NotConfigured => ("unknown", "not configured", "ops.collector_endpoint is empty".to_owned()),
        Upstream::Checked { ready, detail, at } => {
            let since_epoch = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let checked = format::unix_nanos(u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX));
            let detail = format!("{detail} (checked {checked})");
            if *ready { ("ok", "ready", detail) } else { ("down", "not ready", detail) }
        }
    };
    UpstreamRow { name, ready: upstream.is_ready(), class, state, detail }
}

struct RedRow {
    service: String,
    span_name: String,
    rate: String,
    errors: String,
    failing: bool,
    p50: String,
    p99: String,
}

enum RedTable {
    NotConfigured,
    Collecting,
    Ready { window: String, rows: Vec<RedRow> },
}

struct TraceRow {
    id: String,
    short_id: String,
    root: String,
    start: String,
    duration: String,
    spans: u64,
    error: bool,
}

#[derive(Template)]
#[template(path = "ops.html")]
struct OpsPage {
    layout: Layout,
    upstreams: Vec<UpstreamRow>,
    red: RedTable,
    metrics_error: Option<String>,
    collector_configured: bool,
    filter_error: bool,
    filter_min_duration: String,
    traces: Result<Vec<TraceRow>, String>,
}

/// The filters of `/ops` as the browser sends them: an unchecked box and an empty number field
/// are absent or empty.
#[derive(Deserialize)]
struct OpsQuery {
    error: Option<String>,
    min_duration_ms: Option<String>,
}

/// Reads the filters; a value that is neither is refused with what was expected.
fn trace_filter(query: &OpsQuery) -> Result<TraceFilter, String> {
    let error = match query.error.as_deref().map(str::trim) {
        None | Some("" | "false" | "0") => false,
        Some("true" | "on" | "1") => true,
        Some(other) => return Err(format!("error must be true or false, got {other:?}")),
    };
    let min_duration_ms = match query.min_duration_ms.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => match text.parse::<u64>() {
            Ok(ms) if ms <= MAX_MIN_DURATION_MS => Some(ms),
            _ => {
                return Err(format!(
                    "min_duration_ms must be a whole number of milliseconds from 0 to {MAX_MIN_DURATION_MS}, got {text:?}"
                ));
            }
        },
    };
    Ok(TraceFilter { error, min_duration_ms })
}

async fn operations(State(state): State<UiState>, Query(query): Query<OpsQuery>) -> Response {
    let filter = match trace_filter(&query) {
        Ok(filter) => filter,
        Err(reason) => return message(StatusCode::BAD_REQUEST, "Bad filter", reason),
    };
    let view = state.ops.view();
    let red = match view.red {
        RedView::NotConfigured => RedTable::NotConfigured,
        RedView::Collecting => RedTable::Collecting,
        RedView::Ready { window_seconds, rows } => RedTable::Ready {
            window: format::seconds(window_seconds),
            rows: rows
                .into_iter()
                .map(|red| RedRow {
                    service: red.operation.service,
                    span_name: red.operation.span_name,
                    rate: format::rate(red.rate),
                    errors: red.error_ratio.map_or_else(|| "–".to_owned(), format::percent),
                    failing: red.error_ratio.is_some_and(|ratio| ratio > 0.0),
                    p50: red.p50.map_or_else(|| "–".to_owned(), format::seconds),
                    p99: red.p99.map_or_else(|| "–".to_owned(), format::seconds),
                })
                .collect(),
        },
    };
    let traces = match state.ops.collector() {
        Some(collector) => collector
            .traces(RECENT_TRACES, filter)
            .await
            .map(|traces| {
                traces
                    .into_iter()
                    .map(|trace| TraceRow {
                        short_id: trace.trace_id.chars().take(12).collect(),
                        id: trace.trace_id,
                        root: format!("{} {}", trace.root_service, trace.root_name),
                        start: format::unix_nanos(trace.start_time_unix_nano),
                        duration: format::nanos(trace.duration_ns),
                        spans: trace.span_count,
                        error: trace.error,
                    })
                    .filter(|row| is_trace_id(&row.id))
                    .collect()
            })
            .map_err(|error| error.to_string()),
        None => Ok(Vec::new()),
    };
    let page = OpsPage {
        layout: Layout::new("ops"),
        upstreams: vec![upstream_row("api", &view.api), upstream_row("telemetry-collector", &view.collector)],
        red,
        metrics_error: view.metrics_error,
        collector_configured: state.ops.collector().is_some(),
        filter_error: filter.error,
        filter_min_duration: filter.min_duration_ms.map(|ms| ms.to_string()).unwrap_or_default(),
        traces,
    };
    render(StatusCode::OK, &page)
}

/// A trace id as the collector writes it: 32 lowercase hex digits.
fn is_trace_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

struct LogRow {
    time: String,
    severity: String,
    class: &'static str,
    service: String,
    body: String,
    /// The record's attributes as `key=value`, by key.
    fields: String,
}

#[derive(Template)]
#[template(path = "trace.html")]
struct TracePage {
    layout: Layout,
    trace_id: String,
    span_count: usize,
    services: String,
    duration: String,
    start: String,
    spans: Vec<waterfall::SpanRow>,
    logs: Result<Vec<LogRow>, String>,
}

async fn trace(State(state): State<UiState>, Path(id): Path<String>) -> Response {
    if !is_trace_id(&id) {
        return message(
            StatusCode::BAD_REQUEST,
            "Not a trace id",
            format!("{id:?} is not a trace id: a trace id is 32 lowercase hexadecimal digits."),
        );
    }
    let Some(collector) = state.ops.collector() else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Collector not configured",
            "The telemetry-collector is not configured (ops.collector_endpoint is empty), so no trace can be shown."
                .into(),
        );
    };
    let (trace, logs) = tokio::join!(collector.trace(&id), collector.logs(&id));
    let trace = match trace {
        Ok(Some(trace)) if !trace.spans.is_empty() => trace,
        Ok(_) => {
            return message(
                StatusCode::NOT_FOUND,
                "Trace not found",
                format!("The telemetry-collector knows no trace {id}: it may not have arrived yet, or it was evicted."),
            );
        }
        Err(error) => {
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Collector unavailable",
                format!("The trace cannot be shown now: {error}."),
            );
        }
    };
    let summary = waterfall::Summary::of(&trace.spans);
    let logs = logs
        .map(|mut logs| {
            // Services' clocks and batches interleave: the view orders by time itself.
            logs.sort_by_key(|log| log.time_unix_nano);
            logs.into_iter()
                .map(|log| LogRow {
                    time: format::unix_nanos(log.time_unix_nano),
                    class: match log.severity_text.to_ascii_uppercase().as_str() {
                        "ERROR" | "FATAL" => "err",
                        "WARN" | "WARNING" => "warn",
                        _ => "",
                    },
                    severity: log.severity_text,
                    service: log.service,
                    body: text_of(log.body),
                    fields: fields(log.attributes),
                })
                .collect()
        })
        .map_err(|error| error.to_string());
    let page = TracePage {
        layout: Layout::new("ops"),
        span_count: trace.spans.len(),
        spans: waterfall::rows(&trace.spans, &summary),
        duration: format::nanos(summary.duration_ns),
        start: format::unix_nanos(summary.start),
        services: summary.services,
        trace_id: id,
        logs,
    };
    render(StatusCode::OK, &page)
}

/// Attributes as `key=value`, by key.
fn fields(attributes: serde_json::Map<String, serde_json::Value>) -> String {
    let mut fields: Vec<String> =
        attributes.into_iter().map(|(key, value)| format!("{key}={}", text_of(value))).collect();
    fields.sort();
    fields.join(" ")
}

/// A JSON value as a log line shows it: a string without quotes, anything else as JSON.
fn text_of(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(error: Option<&str>, min: Option<&str>) -> OpsQuery {
        OpsQuery { error: error.map(str::to_owned), min_duration_ms: min.map(str::to_owned) }
    }

    #[test]
    fn trace_filters_accept_what_the_form_sends_and_refuse_the_rest() {
        assert_eq!(trace_filter(&query(None, None)), Ok(TraceFilter::default()));
        assert_eq!(
            trace_filter(&query(Some("true"), Some("250"))),
            Ok(TraceFilter { error: true, min_duration_ms: Some(250) })
        );
        assert_eq!(trace_filter(&query(Some(""), Some(""))), Ok(TraceFilter::default()));
        assert!(trace_filter(&query(Some("yes please"), None)).unwrap_err().contains("error"));
        assert!(trace_filter(&query(None, Some("-5"))).unwrap_err().contains("min_duration_ms"));
        assert!(trace_filter(&query(None, Some("86400001"))).is_err());
    }

    #[test]
    fn only_32_lowercase_hex_digits_are_a_trace_id() {
        assert!(is_trace_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_trace_id("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_trace_id("0123456789abcdef"));
        assert!(!is_trace_id("0123456789abcdef0123456789abcdeg"));
    }
}
