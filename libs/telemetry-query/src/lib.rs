//! The telemetry-collector's query API (docs/contracts.md §4) in one place: the routes, the JSON answers
//! and the names of the span metrics. The collector serializes these types and the ui-gateway
//! deserializes them, so the two cannot disagree about the wire.
//!
//! Times are Unix nanoseconds; ids are lowercase hex. Members a reader may miss from an older
//! collector are `#[serde(default)]`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `GET`: [`ServiceList`].
pub const SERVICES_PATH: &str = "/api/v1/services";
/// `GET` with `service`, `limit`, `min_duration_ms`, `error`: [`TraceList`].
pub const TRACES_PATH: &str = "/api/v1/traces";
/// `GET`, the route template of one trace: [`TraceDetail`], or 404 problem+json.
pub const TRACE_PATH: &str = "/api/v1/traces/{trace_id}";
/// `GET` with `trace_id`, `limit`: [`LogList`].
pub const LOGS_PATH: &str = "/api/v1/logs";

/// The path of one trace, `id` being validated hex.
#[must_use]
pub fn trace_path(id: &str) -> String {
    format!("{TRACES_PATH}/{id}")
}

/// `GET /api/v1/services`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceList {
    /// Services with spans in the store, by name.
    pub services: Vec<ServiceSummary>,
}

/// A service and how many of its spans the store holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSummary {
    /// `service.name` of the spans' resource.
    pub name: String,
    /// Spans held.
    pub span_count: u64,
}

/// `GET /api/v1/traces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceList {
    /// Matching traces, newest (by start time) first.
    pub traces: Vec<TraceSummary>,
}

/// One trace at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceSummary {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// Service of the root span (the span without parent, else the earliest).
    #[serde(default)]
    pub root_service: String,
    /// Name of the root span.
    #[serde(default)]
    pub root_name: String,
    /// Earliest span start.
    pub start_time_unix_nano: u64,
    /// From the earliest start to the latest end.
    pub duration_ns: u64,
    /// Spans held.
    pub span_count: u64,
    /// Whether any span has `STATUS_CODE_ERROR`.
    pub error: bool,
}

/// `GET /api/v1/traces/{trace_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceDetail {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// Every span held, by start time.
    pub spans: Vec<SpanView>,
}

/// One span as the query API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanView {
    /// 32 lowercase hex digits.
    #[serde(default)]
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// 16 lowercase hex digits, empty for a root span.
    #[serde(default)]
    pub parent_span_id: String,
    /// `service.name` of the span's resource.
    pub service: String,
    /// Span name.
    pub name: String,
    /// Enum name, e.g. `SPAN_KIND_SERVER` (borrowed from the proto's names when serialized).
    pub kind: Cow<'static, str>,
    /// Start time.
    pub start_time_unix_nano: u64,
    /// End time.
    pub end_time_unix_nano: u64,
    /// Enum name, e.g. [`span_metrics::STATUS_CODE_ERROR`].
    pub status_code: Cow<'static, str>,
    /// Status message, often empty.
    #[serde(default)]
    pub status_message: String,
    /// Span attributes.
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// `GET /api/v1/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogList {
    /// Matching records, by time.
    pub logs: Vec<LogView>,
}

/// One log record as the query API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogView {
    /// The record's time, or its observed time when the source left it unset.
    pub time_unix_nano: u64,
    /// Severity as the source wrote it, often empty.
    #[serde(default)]
    pub severity_text: String,
    /// The body as JSON; a string body stays a string.
    #[serde(default)]
    pub body: Value,
    /// `service.name` of the record's resource.
    #[serde(default)]
    pub service: String,
    /// 32 lowercase hex digits, empty when the record belongs to no trace.
    #[serde(default)]
    pub trace_id: String,
    /// 16 lowercase hex digits, empty when the record belongs to no span.
    #[serde(default)]
    pub span_id: String,
    /// Record attributes.
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// The span metrics on the collector's `/metrics`, named as the OpenTelemetry Collector's
/// spanmetrics connector names them through its Prometheus exporter (seconds).
pub mod span_metrics {
    /// The calls counter.
    pub const CALLS: &str = "traces_span_metrics_calls_total";
    /// The duration histogram, in seconds.
    pub const DURATION: &str = "traces_span_metrics_duration_seconds";
    /// Its buckets.
    pub const DURATION_BUCKET: &str = "traces_span_metrics_duration_seconds_bucket";
    /// Its observation count.
    pub const DURATION_COUNT: &str = "traces_span_metrics_duration_seconds_count";
    /// Its sum of seconds.
    pub const DURATION_SUM: &str = "traces_span_metrics_duration_seconds_sum";
    /// Label: `service.name` of the span's resource.
    pub const SERVICE_NAME: &str = "service_name";
    /// Label: the span name.
    pub const SPAN_NAME: &str = "span_name";
    /// Label: the span kind's enum name, e.g. `SPAN_KIND_SERVER`.
    pub const SPAN_KIND: &str = "span_kind";
    /// Label: the status code's enum name.
    pub const STATUS_CODE: &str = "status_code";
    /// The `status_code` of a failed span.
    pub const STATUS_CODE_ERROR: &str = "STATUS_CODE_ERROR";
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Serializes `value`, checks the JSON is `wire`, and reads it back unchanged.
    fn round_trip<T>(value: &T, wire: &Value)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        assert_eq!(&serde_json::to_value(value).unwrap(), wire);
        assert_eq!(&serde_json::from_value::<T>(wire.clone()).unwrap(), value);
    }

    #[test]
    fn every_answer_has_the_contract_s_members_and_reads_back_unchanged() {
        let services = ServiceList { services: vec![ServiceSummary { name: "api".into(), span_count: 3 }] };
        round_trip(&services, &json!({"services": [{"name": "api", "span_count": 3}]}));

        let summary = TraceSummary {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            root_service: "ui-gateway".into(),
            root_name: "POST /api/v1/matrix/{op}".into(),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            duration_ns: 2_500_000,
            span_count: 4,
            error: true,
        };
        round_trip(
            &TraceList { traces: vec![summary] },
            &json!({"traces": [{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "root_service": "ui-gateway",
                "root_name": "POST /api/v1/matrix/{op}", "start_time_unix_nano": 1_700_000_000_000_000_000_u64,
                "duration_ns": 2_500_000, "span_count": 4, "error": true}]}),
        );

        let mut attributes = Map::new();
        attributes.insert("rpc.method".into(), json!("Solve"));
        let span = SpanView {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            parent_span_id: String::new(),
            service: "api".into(),
            name: "axiom25.matrix.v1.MatrixService/Solve".into(),
            kind: "SPAN_KIND_SERVER".into(),
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            status_code: span_metrics::STATUS_CODE_ERROR.into(),
            status_message: "a is singular".into(),
            attributes,
        };
        round_trip(
            &TraceDetail { trace_id: span.trace_id.clone(), spans: vec![span] },
            &json!({"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "spans": [{
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7", "parent_span_id": "",
                "service": "api", "name": "axiom25.matrix.v1.MatrixService/Solve", "kind": "SPAN_KIND_SERVER",
                "start_time_unix_nano": 10, "end_time_unix_nano": 20, "status_code": "STATUS_CODE_ERROR",
                "status_message": "a is singular", "attributes": {"rpc.method": "Solve"}}]}),
        );

        let log = LogView {
            time_unix_nano: 15,
            severity_text: "WARN".into(),
            body: json!({"event": "shed"}),
            service: "api".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            attributes: Map::new(),
        };
        round_trip(
            &LogList { logs: vec![log] },
            &json!({"logs": [{"time_unix_nano": 15, "severity_text": "WARN", "body": {"event": "shed"},
                "service": "api", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
                "attributes": {}}]}),
        );
    }

    #[test]
    fn a_reader_tolerates_the_members_an_older_collector_leaves_out() {
        let span: SpanView = serde_json::from_value(json!({"span_id": "01", "service": "api", "name": "x",
            "kind": "SPAN_KIND_CLIENT", "start_time_unix_nano": 1, "end_time_unix_nano": 2,
            "status_code": "STATUS_CODE_UNSET"}))
        .unwrap();
        assert_eq!((span.parent_span_id.as_str(), span.attributes.len()), ("", 0));
        let log: LogView = serde_json::from_value(json!({"time_unix_nano": 3})).unwrap();
        assert_eq!((log.body, log.service.as_str()), (Value::Null, ""));
    }

    #[test]
    fn the_histogram_series_are_the_histogram_s_name_with_prometheus_suffixes() {
        use span_metrics::{DURATION, DURATION_BUCKET, DURATION_COUNT, DURATION_SUM};
        assert_eq!(
            [DURATION_BUCKET, DURATION_COUNT, DURATION_SUM],
            ["_bucket", "_count", "_sum"].map(|s| DURATION.to_owned() + s)
        );
        assert_eq!(trace_path("ab"), "/api/v1/traces/ab");
        assert_eq!(TRACE_PATH.replace("{trace_id}", "ab"), trace_path("ab"));
    }
}
