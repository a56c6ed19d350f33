//! The span and log stores: bounded, oldest traces evicted whole, indexed for the query API.
//!
//! Both stores keep a compact owned copy of what the receivers accepted, bounded by item count and
//! by an estimate of the bytes held. Metrics (labels `store="spans"|"logs"`):
//! `axiom25_collector_store_items`, `axiom25_collector_store_bytes` (gauges),
//! `axiom25_collector_store_evicted_spans_total`, `axiom25_collector_store_evicted_traces_total`
//! (both `store="spans"`) and `axiom25_collector_store_evicted_logs_total` (`store="logs"`), and
//! `axiom25_collector_store_duplicate_spans_total` (`store="spans"`): spans not stored again.

mod bounded;
mod logs;
mod spans;

use std::sync::Arc;

use metrics::{Counter, Gauge};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::otlp::byte_text::{base64, decode_hex};

pub use axiom25_telemetry_query::{
    LogList, LogView, ServiceList, ServiceSummary, SpanView, TraceDetail, TraceList, TraceSummary,
};
pub use logs::{LogQuery, LogStore};
pub use spans::{SpanStore, TraceQuery};

/// Traces (or logs) answered when the query names no limit.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest limit a query may ask for.
pub const MAX_LIMIT: usize = 1000;
/// Service of a resource without a string `service.name` (the OpenTelemetry SDK default).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// A W3C trace id.
pub type TraceId = [u8; 16];
/// A W3C span id.
pub type SpanId = [u8; 8];

const MAX_ITEMS_CEILING: usize = 10_000_000;
const MIN_BYTES: usize = 1024;
const MAX_BYTES_CEILING: u64 = 16 << 30;
// Deeper values are stored as empty; prost already refuses nesting past 100.
const MAX_VALUE_DEPTH: usize = 32;
// What the allocator keeps beside each heap block, for the byte estimate.
const ALLOCATION_OVERHEAD: usize = 16;

/// Bounds of the span store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SpanStoreSettings {
    /// Most spans kept; past it, the oldest traces are evicted whole.
    pub max_spans: usize,
    /// Most bytes (estimated) kept; past it, the oldest traces are evicted whole.
    pub max_bytes: usize,
}

impl Default for SpanStoreSettings {
    fn default() -> Self {
        Self { max_spans: 100_000, max_bytes: 64 << 20 }
    }
}

impl SpanStoreSettings {
    /// Every problem with these settings, each prefixed with `prefix` (e.g. `store.spans`).
    #[must_use]
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        validate_bounds(prefix, ("max_spans", self.max_spans), self.max_bytes)
    }
}

/// Bounds of the log store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LogStoreSettings {
    /// Most log records kept; past it, the oldest are evicted.
    pub max_records: usize,
    /// Most bytes (estimated) kept; past it, the oldest records are evicted.
    pub max_bytes: usize,
}

impl Default for LogStoreSettings {
    fn default() -> Self {
        Self { max_records: 100_000, max_bytes: 32 << 20 }
    }
}

impl LogStoreSettings {
    /// Every problem with these settings, each prefixed with `prefix` (e.g. `store.logs`).
    #[must_use]
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        validate_bounds(prefix, ("max_records", self.max_records), self.max_bytes)
    }
}

fn validate_bounds(prefix: &str, (items_key, items): (&str, usize), max_bytes: usize) -> Vec<String> {
    let mut problems = Vec::new();
    if !(1..=MAX_ITEMS_CEILING).contains(&items) {
        problems.push(format!("{prefix}.{items_key}: must be within 1..={MAX_ITEMS_CEILING}, got {items}"));
    }
    if max_bytes < MIN_BYTES || max_bytes as u64 > MAX_BYTES_CEILING {
        problems.push(format!("{prefix}.max_bytes: must be within {MIN_BYTES}..={MAX_BYTES_CEILING}, got {max_bytes}"));
    }
    problems
}

/// Occupancy and eviction totals of a store since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Spans or log records held.
    pub items: usize,
    /// Estimated bytes held.
    pub bytes: usize,
    /// Spans or log records evicted.
    pub evicted_items: u64,
    /// Whole traces evicted (always 0 for the log store).
    pub evicted_traces: u64,
    /// Spans skipped as copies of stored ones (always 0 for the log store).
    pub duplicate_items: u64,
}

/// Metric handles of one store, registered once so inserts do not look them up.
#[derive(Debug)]
struct StoreMetrics {
    items: Gauge,
    bytes: Gauge,
    evicted_items: Counter,
    evicted_traces: Counter,
    duplicate_items: Option<Counter>,
}

impl StoreMetrics {
    fn new(store: &'static str, evicted_items_name: &'static str, duplicate_items_name: Option<&'static str>) -> Self {
        metrics::describe_gauge!("axiom25_collector_store_items", "Spans or log records held by the query store.");
        metrics::describe_gauge!(
            "axiom25_collector_store_bytes",
            metrics::Unit::Bytes,
            "Estimated bytes held by the query store."
        );
        metrics::describe_counter!("axiom25_collector_store_evicted_spans_total", "Spans evicted from the span store.");
        metrics::describe_counter!(
            "axiom25_collector_store_evicted_traces_total",
            "Whole traces evicted from the span store."
        );
        metrics::describe_counter!(
            "axiom25_collector_store_evicted_logs_total",
            "Log records evicted from the log store."
        );
        metrics::describe_counter!(
            "axiom25_collector_store_duplicate_spans_total",
            "Spans not stored again because the span store already held them (a retried export)."
        );
        Self {
            items: metrics::gauge!("axiom25_collector_store_items", "store" => store),
            bytes: metrics::gauge!("axiom25_collector_store_bytes", "store" => store),
            evicted_items: metrics::counter!(evicted_items_name, "store" => store),
            evicted_traces: metrics::counter!("axiom25_collector_store_evicted_traces_total", "store" => store),
            duplicate_items: duplicate_items_name.map(|name| metrics::counter!(name, "store" => store)),
        }
    }

    fn record(&self, occupancy: (usize, usize), evicted_items: u64, evicted_traces: u64, duplicate_items: u64) {
        self.items.set(occupancy.0 as f64);
        self.bytes.set(occupancy.1 as f64);
        if evicted_items > 0 {
            self.evicted_items.increment(evicted_items);
        }
        if evicted_traces > 0 {
            self.evicted_traces.increment(evicted_traces);
        }
        if let Some(counter) = self.duplicate_items.as_ref().filter(|_| duplicate_items > 0) {
            counter.increment(duplicate_items);
        }
    }
}

/// One attribute in compact owned form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attribute {
    key: Box<str>,
    value: AttributeValue,
}

/// An OTLP `AnyValue` in compact owned form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttributeValue {
    Empty,
    String(Box<str>),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Box<[u8]>),
    Array(Box<[AttributeValue]>),
    Map(Box<[Attribute]>),
}

impl AttributeValue {
    fn from_any(value: Option<&AnyValue>, depth: usize) -> Self {
        let Some(value) = value.and_then(|any| any.value.as_ref()) else { return Self::Empty };
        match value {
            any_value::Value::StringValue(text) => Self::String(text.as_str().into()),
            any_value::Value::BoolValue(flag) => Self::Bool(*flag),
            any_value::Value::IntValue(number) => Self::Int(*number),
            any_value::Value::DoubleValue(number) => Self::Double(*number),
            any_value::Value::BytesValue(bytes) => Self::Bytes(bytes.as_slice().into()),
            _ if depth >= MAX_VALUE_DEPTH => Self::Empty,
            any_value::Value::ArrayValue(array) => {
                Self::Array(array.values.iter().map(|item| Self::from_any(Some(item), depth + 1)).collect())
            }
            any_value::Value::KvlistValue(list) => Self::Map(attributes_at(&list.values, depth + 1)),
            // Profiles only: meaningless without the profile's string table.
            any_value::Value::StringValueStrindex(_) => Self::Empty,
        }
    }

    /// Heap bytes held beyond the value itself.
    fn heap_bytes(&self) -> usize {
        match self {
            Self::Empty | Self::Bool(_) | Self::Int(_) | Self::Double(_) => 0,
            Self::String(text) => heap_len(text.len()),
            Self::Bytes(bytes) => heap_len(bytes.len()),
            Self::Array(items) => {
                heap_len(size_of_val::<[Self]>(items)) + items.iter().map(Self::heap_bytes).sum::<usize>()
            }
            Self::Map(attributes) => attributes_heap_bytes(attributes),
        }
    }

    /// The value as JSON: kvlists become objects, bytes base64 strings, non-finite doubles null.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Self::Empty => Value::Null,
            Self::String(text) => Value::String(text.to_string()),
            Self::Bool(flag) => Value::Bool(*flag),
            Self::Int(number) => Value::from(*number),
            Self::Double(number) => Number::from_f64(*number).map_or(Value::Null, Value::Number),
            Self::Bytes(bytes) => Value::String(base64(bytes)),
            Self::Array(items) => Value::Array(items.iter().map(Self::to_json).collect()),
            Self::Map(attributes) => Value::Object(attributes_json(attributes)),
        }
    }
}

/// Converts OTLP attributes to their compact form.
pub(crate) fn attributes(key_values: &[KeyValue]) -> Box<[Attribute]> {
    attributes_at(key_values, 0)
}

fn attributes_at(key_values: &[KeyValue], depth: usize) -> Box<[Attribute]> {
    key_values
        .iter()
        .map(|kv| Attribute { key: kv.key.as_str().into(), value: AttributeValue::from_any(kv.value.as_ref(), depth) })
        .collect()
}

/// Heap bytes held by a compact attribute list.
pub(crate) fn attributes_heap_bytes(attributes: &[Attribute]) -> usize {
    heap_len(size_of_val(attributes))
        + attributes.iter().map(|attribute| heap_len(attribute.key.len()) + attribute.value.heap_bytes()).sum::<usize>()
}

/// Attributes as a JSON object; a repeated key keeps its last value.
pub(crate) fn attributes_json(attributes: &[Attribute]) -> Map<String, Value> {
    attributes.iter().map(|attribute| (attribute.key.to_string(), attribute.value.to_json())).collect()
}

/// Estimated bytes of a heap block of `len` bytes (empty boxes do not allocate).
pub(crate) fn heap_len(len: usize) -> usize {
    if len == 0 { 0 } else { len + ALLOCATION_OVERHEAD }
}

/// The string `service.name` of a resource's attributes, if any.
pub(crate) fn service_name(resource_attributes: &[KeyValue]) -> &str {
    resource_attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(name) if !name.is_empty() => Some(name.as_str()),
            _ => None,
        })
        .unwrap_or(UNKNOWN_SERVICE)
}

/// A trace id from OTLP bytes: 16 bytes, not all zero.
pub(crate) fn trace_id_from(bytes: &[u8]) -> Option<TraceId> {
    <TraceId>::try_from(bytes).ok().filter(|id| id.iter().any(|&byte| byte != 0))
}

/// A span id from OTLP bytes: 8 bytes, not all zero.
pub(crate) fn span_id_from(bytes: &[u8]) -> Option<SpanId> {
    <SpanId>::try_from(bytes).ok().filter(|id| id.iter().any(|&byte| byte != 0))
}

/// Parses a trace id written as 32 hex digits, either case; the all-zero id is invalid.
#[must_use]
pub fn parse_trace_id(text: &str) -> Option<TraceId> {
    let mut id = [0u8; 16];
    if decode_hex(text, &mut id) { trace_id_from(&id) } else { None }
}

/// Whether two service names are the same service (interned names compare by pointer).
pub(crate) fn same_service(a: &Arc<str>, b: &Arc<str>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

#[cfg(test)]
pub(crate) mod test_support {
    //! OTLP values for the store tests.

    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    pub fn string_attribute(key: &str, value: &str) -> KeyValue {
        attribute(key, Value::StringValue(value.into()))
    }

    pub fn attribute(key: &str, value: Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
    }

    /// A resource whose `service.name` is `service`.
    pub fn service_resource(service: &str) -> Option<Resource> {
        Some(Resource { attributes: vec![string_attribute("service.name", service)], ..Default::default() })
    }

    /// Trace id bytes that start with `first` and end with `last`, zero between.
    pub fn trace_id_bytes(first: u8, last: u8) -> Vec<u8> {
        let mut id = vec![0; 16];
        (id[0], id[15]) = (first, last);
        id
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList, any_value::Value as Any};
    use serde_json::json;

    use super::test_support::{attribute, string_attribute};
    use super::*;
    use crate::otlp::byte_text::hex;

    #[test]
    fn default_settings_are_valid_and_match_the_documented_bounds() {
        let spans = SpanStoreSettings::default();
        let logs = LogStoreSettings::default();
        assert_eq!((spans.max_spans, spans.max_bytes), (100_000, 64 * 1024 * 1024));
        assert_eq!((logs.max_records, logs.max_bytes), (100_000, 32 * 1024 * 1024));
        assert!(spans.validate("store.spans").is_empty());
        assert!(logs.validate("store.logs").is_empty());
    }

    #[test]
    fn zero_limits_are_reported_with_their_key_path() {
        let problems = SpanStoreSettings { max_spans: 0, max_bytes: 0 }.validate("store.spans");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("store.spans.max_spans: "));
        assert!(problems[1].starts_with("store.spans.max_bytes: "));
        let problems = LogStoreSettings { max_records: 0, max_bytes: 1 << 40 }.validate("store.logs");
        assert!(problems[0].starts_with("store.logs.max_records: "));
        assert!(problems[1].starts_with("store.logs.max_bytes: "));
    }

    #[test]
    fn settings_reject_unknown_keys_and_fill_missing_ones() {
        let settings: SpanStoreSettings = serde_json::from_value(json!({"max_spans": 5})).expect("valid");
        assert_eq!(settings, SpanStoreSettings { max_spans: 5, ..SpanStoreSettings::default() });
        assert!(serde_json::from_value::<LogStoreSettings>(json!({"max_spans": 5})).is_err());
    }

    #[test]
    fn attributes_render_as_a_json_object_of_every_value_kind() {
        let nested = KeyValueList { values: vec![attribute("n", Any::IntValue(1))] };
        let array = ArrayValue { values: vec![AnyValue { value: Some(Any::BoolValue(true)) }, AnyValue::default()] };
        let converted = attributes(&[
            string_attribute("s", "text"),
            attribute("b", Any::BoolValue(false)),
            attribute("i", Any::IntValue(-7)),
            attribute("d", Any::DoubleValue(1.5)),
            attribute("nan", Any::DoubleValue(f64::NAN)),
            attribute("bytes", Any::BytesValue(b"hello".to_vec())),
            attribute("array", Any::ArrayValue(array)),
            attribute("map", Any::KvlistValue(nested)),
            KeyValue { key: "empty".into(), value: None, ..Default::default() },
        ]);
        assert_eq!(
            Value::Object(attributes_json(&converted)),
            json!({
                "s": "text", "b": false, "i": -7, "d": 1.5, "nan": null, "bytes": "aGVsbG8=",
                "array": [true, null], "map": {"n": 1}, "empty": null,
            })
        );
    }

    #[test]
    fn trace_ids_parse_in_either_case_and_reject_zero_and_bad_lengths() {
        let id = parse_trace_id("0123456789ABCDEF0123456789abcdef").expect("valid");
        assert_eq!(hex(&id), "0123456789abcdef0123456789abcdef");
        assert_eq!(parse_trace_id(&"0".repeat(32)), None);
        assert_eq!(parse_trace_id(&"a".repeat(31)), None);
        assert_eq!(parse_trace_id(&"g".repeat(32)), None);
        assert_eq!(parse_trace_id("é123456789abcdef0123456789abcde"), None);
    }

    #[test]
    fn the_service_is_the_string_service_name_or_unknown_service() {
        assert_eq!(service_name(&[string_attribute("service.name", "api")]), "api");
        assert_eq!(service_name(&[attribute("service.name", Any::IntValue(3))]), UNKNOWN_SERVICE);
        assert_eq!(service_name(&[string_attribute("service.name", "")]), UNKNOWN_SERVICE);
        assert_eq!(service_name(&[]), UNKNOWN_SERVICE);
    }

    #[test]
    fn deeply_nested_values_are_cut_off_instead_of_recursing_without_bound() {
        let mut value = AnyValue { value: Some(Any::IntValue(1)) };
        for _ in 0..80 {
            value = AnyValue { value: Some(Any::ArrayValue(ArrayValue { values: vec![value] })) };
        }
        let converted = AttributeValue::from_any(Some(&value), 0);
        let mut depth = 0;
        let mut current = &converted;
        while let AttributeValue::Array(items) = current {
            depth += 1;
            current = &items[0];
        }
        assert_eq!((depth, current), (MAX_VALUE_DEPTH, &AttributeValue::Empty));
    }
}
