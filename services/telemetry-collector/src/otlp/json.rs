//! The OTLP JSON encoding: the proto3 JSON mapping, except that trace and span ids are hex strings.
//!
//! Decoding parses the body to a [`serde_json::Value`], rewrites the hex ids to the base64 that proto3
//! JSON expects for `bytes`, reads the value as a [`DynamicMessage`] of the request's descriptor
//! (unknown fields ignored, enum names and numbers, 64-bit integers as strings or numbers, camelCase or
//! snake_case names) and transcodes it to the prost type. opentelemetry-proto's own serde support is
//! avoided: it is reported upstream to drop metric data.

use std::fmt::Write as _;

use prost_reflect::{DeserializeOptions, DynamicMessage, SerializeOptions, Value as Field};
use serde_json::{Map, Value};

use super::byte_text::{base64, decode_hex};
use super::{DecodeError, OtlpMessage, descriptor, shorten};

/// A JSON object on the way from a request's root to the objects that hold hex ids.
struct Container {
    /// The field's lowerCamelCase and original proto names.
    names: [&'static str; 2],
    children: &'static [Container],
    ids: &'static [IdField],
}

/// A `bytes` field that OTLP JSON writes as a hex string.
struct IdField {
    names: [&'static str; 2],
    bytes: usize,
}

const TRACE_ID: IdField = IdField { names: ["traceId", "trace_id"], bytes: 16 };
const SPAN_ID: IdField = IdField { names: ["spanId", "span_id"], bytes: 8 };
const PARENT_SPAN_ID: IdField = IdField { names: ["parentSpanId", "parent_span_id"], bytes: 8 };

const fn container(names: [&'static str; 2], children: &'static [Container], ids: &'static [IdField]) -> Container {
    Container { names, children, ids }
}

const TRACE_IDS: &[Container] = &[container(
    ["resourceSpans", "resource_spans"],
    &[container(
        ["scopeSpans", "scope_spans"],
        &[container(
            ["spans", "spans"],
            &[container(["links", "links"], &[], &[TRACE_ID, SPAN_ID])],
            &[TRACE_ID, SPAN_ID, PARENT_SPAN_ID],
        )],
        &[],
    )],
    &[],
)];

const LOG_IDS: &[Container] = &[container(
    ["resourceLogs", "resource_logs"],
    &[container(
        ["scopeLogs", "scope_logs"],
        &[container(["logRecords", "log_records"], &[], &[TRACE_ID, SPAN_ID])],
        &[],
    )],
    &[],
)];

const DATA_POINTS: &[Container] = &[container(
    ["dataPoints", "data_points"],
    &[container(["exemplars", "exemplars"], &[], &[TRACE_ID, SPAN_ID])],
    &[],
)];

const METRIC_IDS: &[Container] = &[container(
    ["resourceMetrics", "resource_metrics"],
    &[container(
        ["scopeMetrics", "scope_metrics"],
        &[container(
            ["metrics", "metrics"],
            &[
                container(["gauge", "gauge"], DATA_POINTS, &[]),
                container(["sum", "sum"], DATA_POINTS, &[]),
                container(["histogram", "histogram"], DATA_POINTS, &[]),
                container(["exponentialHistogram", "exponential_histogram"], DATA_POINTS, &[]),
            ],
            &[],
        )],
        &[],
    )],
    &[],
)];

/// Where the hex ids are in a message, by its full name.
fn id_containers(full_name: &str) -> &'static [Container] {
    match full_name {
        "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest" => TRACE_IDS,
        "opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest" => LOG_IDS,
        "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest" => METRIC_IDS,
        _ => &[],
    }
}

/// A JSON value's location, built from the innermost segment outwards as an error travels up.
struct InvalidId {
    reversed_path: Vec<Segment>,
    reason: String,
}

enum Segment {
    Key(String),
    Index(usize),
}

impl InvalidId {
    fn within(mut self, segment: Segment) -> Self {
        self.reversed_path.push(segment);
        self
    }

    fn into_decode_error(self) -> DecodeError {
        let mut path = String::new();
        for segment in self.reversed_path.iter().rev() {
            // Writing to a String cannot fail.
            let _ = match segment {
                Segment::Key(key) if path.is_empty() => write!(path, "{}", shorten(key)),
                Segment::Key(key) => write!(path, ".{}", shorten(key)),
                Segment::Index(index) => write!(path, "[{index}]"),
            };
        }
        DecodeError::JsonValue { path, reason: self.reason }
    }
}

/// Decodes an OTLP JSON request body.
pub(super) fn decode<M: OtlpMessage>(body: &[u8]) -> Result<M, DecodeError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|error| syntax_error(&error))?;
    if let Value::Object(root) = &mut value {
        hex_ids_to_base64(root, id_containers(M::FULL_NAME), &[]).map_err(InvalidId::into_decode_error)?;
    }
    let mut track = serde_path_to_error::Track::new();
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let deserializer = serde_path_to_error::Deserializer::new(value, &mut track);
    let message =
        DynamicMessage::deserialize_with_options(descriptor::<M>(), deserializer, &options).map_err(|error| {
            let path = track.path().to_string();
            DecodeError::JsonValue {
                path: if path == "." { "request body".to_owned() } else { shorten(&path) },
                reason: shorten(&error.to_string()),
            }
        })?;
    message.transcode_to().map_err(|error| DecodeError::protobuf(&error))
}

fn syntax_error(error: &serde_json::Error) -> DecodeError {
    let text = error.to_string();
    let location = format!(" at line {} column {}", error.line(), error.column());
    let reason = text.strip_suffix(&location).unwrap_or(&text);
    DecodeError::JsonSyntax { line: error.line(), column: error.column(), reason: shorten(reason) }
}

fn hex_ids_to_base64(
    object: &mut Map<String, Value>,
    children: &[Container],
    ids: &[IdField],
) -> Result<(), InvalidId> {
    for (key, value) in object.iter_mut() {
        let name = key.as_str();
        if let Some(id) = ids.iter().find(|id| id.names.contains(&name)) {
            hex_id_to_base64(value, id).map_err(|invalid| invalid.within(Segment::Key(key.clone())))?;
        } else if let Some(child) = children.iter().find(|child| child.names.contains(&name)) {
            let within_key = |invalid: InvalidId| invalid.within(Segment::Key(key.clone()));
            match value {
                Value::Array(items) => {
                    for (index, item) in items.iter_mut().enumerate() {
                        if let Value::Object(item) = item {
                            hex_ids_to_base64(item, child.children, child.ids)
                                .map_err(|invalid| within_key(invalid.within(Segment::Index(index))))?;
                        }
                    }
                }
                Value::Object(inner) => hex_ids_to_base64(inner, child.children, child.ids).map_err(within_key)?,
                // Anything else is left for the message reader to reject with its own reason.
                _ => {}
            }
        }
    }
    Ok(())
}

fn hex_id_to_base64(value: &mut Value, id: &IdField) -> Result<(), InvalidId> {
    let invalid =
        || InvalidId { reversed_path: Vec::new(), reason: format!("expected {} hex characters", id.bytes * 2) };
    match value {
        Value::Null => Ok(()),
        Value::String(text) if text.is_empty() => Ok(()),
        Value::String(text) => {
            *text = hex_to_base64(text, id.bytes).ok_or_else(invalid)?;
            Ok(())
        }
        _ => Err(invalid()),
    }
}

/// Longest id OTLP has: a trace id.
const MAX_ID_BYTES: usize = 16;

fn hex_to_base64(hex: &str, bytes: usize) -> Option<String> {
    let mut raw = [0; MAX_ID_BYTES];
    let raw = raw.get_mut(..bytes)?;
    decode_hex(hex, raw).then(|| base64(raw))
}

/// Encodes a response body as proto3 JSON (int64 as strings, enums as numbers, defaults left out).
pub(super) fn encode<M: OtlpMessage>(message: &M) -> Vec<u8> {
    let mut dynamic = DynamicMessage::new(descriptor::<M>());
    if dynamic.transcode_from(message).is_err() {
        return b"{}".to_vec();
    }
    let empty_partial_success = matches!(
        dynamic.get_field_by_name("partial_success").as_deref(),
        Some(Field::Message(partial_success)) if partial_success.fields().next().is_none()
    );
    if empty_partial_success {
        dynamic.clear_field_by_name("partial_success");
    }
    if let Ok(json) = to_json(&dynamic) {
        return json;
    }
    // An `Any` detail whose type is not in the descriptor pool cannot be written as JSON.
    if let Some(Field::List(details)) = dynamic.get_field_by_name_mut("details") {
        details.retain(|detail| matches!(detail, Field::Message(any) if to_json(any).is_ok()));
    }
    to_json(&dynamic).unwrap_or_else(|_| b"{}".to_vec())
}

fn to_json(message: &DynamicMessage) -> Result<Vec<u8>, serde_json::Error> {
    let options = SerializeOptions::new().use_enum_numbers(true).skip_default_fields(true);
    let mut serializer = serde_json::Serializer::new(Vec::new());
    message.serialize_with_options(&mut serializer, &options)?;
    Ok(serializer.into_inner())
}

#[cfg(test)]
mod tests {
    use super::super::{RpcStatus, encode as encode_body, rpc_status};
    use super::*;
    use crate::otlp::{Encoding, decode as decode_body};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{
        exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
        summary_data_point::ValueAtQuantile,
    };
    use prost_reflect::prost_types;

    const TRACE: &[u8] = include_bytes!("../../tests/fixtures/otlp/trace.json");
    const LOGS: &[u8] = include_bytes!("../../tests/fixtures/otlp/logs.json");
    const METRICS: &[u8] = include_bytes!("../../tests/fixtures/otlp/metrics.json");

    fn hex(id: &str) -> Vec<u8> {
        (0..id.len()).step_by(2).map(|at| u8::from_str_radix(&id[at..at + 2], 16).unwrap()).collect()
    }

    fn string(text: &str) -> Option<AnyValue> {
        Some(AnyValue { value: Some(any_value::Value::StringValue(text.into())) })
    }

    fn attribute(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
    }

    fn trace(json: &str) -> Result<ExportTraceServiceRequest, DecodeError> {
        decode_body(json.as_bytes(), Encoding::Json)
    }

    fn one_span(json: &str) -> opentelemetry_proto::tonic::trace::v1::Span {
        let request = trace(&format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{json}]}}]}}]}}"#));
        request.unwrap().resource_spans[0].scope_spans[0].spans[0].clone()
    }

    fn error_text(json: &str) -> String {
        trace(json).unwrap_err().to_string()
    }

    #[test]
    fn the_trace_fixture_keeps_every_value() {
        let request: ExportTraceServiceRequest = decode_body(TRACE, Encoding::Json).unwrap();
        let resource_spans = &request.resource_spans[0];
        let resource = resource_spans.resource.as_ref().unwrap();
        assert_eq!(
            resource.attributes[0],
            KeyValue { key: "service.name".into(), value: string("checkout"), ..Default::default() }
        );
        assert_eq!(resource.attributes[1].value, string("checkout-7d9f"));
        assert_eq!(resource.dropped_attributes_count, 1);
        assert_eq!(resource_spans.schema_url, "https://opentelemetry.io/schemas/1.25.0");
        let scope_spans = &resource_spans.scope_spans[0];
        let scope = scope_spans.scope.as_ref().unwrap();
        assert_eq!((scope.name.as_str(), scope.version.as_str()), ("my.library", "1.0.0"));
        assert_eq!(scope.attributes[0].value, string("some scope attribute"));
        assert_eq!(scope_spans.schema_url, "https://opentelemetry.io/schemas/1.26.0");
        assert_eq!(scope_spans.spans.len(), 2);

        let server = &scope_spans.spans[0];
        assert_eq!(server.trace_id, hex("5b8efff798038103d269b633813fc60c"));
        assert_eq!(server.span_id, hex("eee19b7ec3c1b174"));
        assert!(server.parent_span_id.is_empty());
        assert_eq!(server.trace_state, "vendor=value");
        assert_eq!(server.name, "POST /checkout");
        assert_eq!((server.kind, server.flags), (2, 257));
        assert_eq!(server.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(server.end_time_unix_nano, 1_544_712_661_000_000_000);
        use any_value::Value as V;
        assert_eq!(
            server.attributes,
            vec![
                attribute("my.span.attr", V::StringValue("some value".into())),
                attribute("http.response.status_code", V::IntValue(500)),
                attribute("retry.ratio", V::DoubleValue(0.25)),
                attribute("cache.hit", V::BoolValue(true)),
                attribute("payload", V::BytesValue(vec![0, 1, 2, 255])),
                attribute(
                    "tags",
                    V::ArrayValue(ArrayValue {
                        values: vec![
                            AnyValue { value: Some(V::StringValue("a".into())) },
                            AnyValue { value: Some(V::IntValue(7)) },
                        ],
                    }),
                ),
                attribute(
                    "owner",
                    V::KvlistValue(KeyValueList { values: vec![attribute("team", V::StringValue("payments".into()))] }),
                ),
            ]
        );
        assert_eq!(server.dropped_attributes_count, 2);
        let event = &server.events[0];
        assert_eq!((event.time_unix_nano, event.name.as_str()), (1_544_712_660_500_000_000, "exception"));
        assert_eq!(event.attributes, vec![attribute("exception.message", V::StringValue("card declined".into()))]);
        assert_eq!(event.dropped_attributes_count, 3);
        assert_eq!(server.dropped_events_count, 4);
        let link = &server.links[0];
        assert_eq!(link.trace_id, hex("0af7651916cd43dd8448eb211c80319c"));
        assert_eq!(link.span_id, hex("b7ad6b7169203331"));
        assert_eq!(link.trace_state, "linked=1");
        assert_eq!(link.attributes, vec![attribute("link.reason", V::StringValue("batch".into()))]);
        assert_eq!((link.dropped_attributes_count, link.flags), (5, 256));
        assert_eq!(server.dropped_links_count, 6);
        let status = server.status.as_ref().unwrap();
        assert_eq!((status.code, status.message.as_str()), (2, "card declined"));

        let client = &scope_spans.spans[1];
        assert_eq!(client.trace_id, server.trace_id);
        assert_eq!(client.span_id, hex("0102030405060708"));
        assert_eq!(client.parent_span_id, server.span_id);
        assert_eq!((client.name.as_str(), client.kind), ("SELECT orders", 3));
        assert_eq!(client.start_time_unix_nano, 1_544_712_660_100_000_000);
        assert_eq!(client.end_time_unix_nano, 1_544_712_660_900_000_000);
        assert_eq!(client.status.as_ref().unwrap().code, 1);
    }

    #[test]
    fn the_logs_fixture_keeps_every_value() {
        let request: ExportLogsServiceRequest = decode_body(LOGS, Encoding::Json).unwrap();
        let resource_logs = &request.resource_logs[0];
        assert_eq!(resource_logs.resource.as_ref().unwrap().attributes[0].value, string("checkout"));
        let scope_logs = &resource_logs.scope_logs[0];
        assert_eq!(scope_logs.scope.as_ref().unwrap().name, "my.library");
        let record = &scope_logs.log_records[0];
        assert_eq!(record.time_unix_nano, 1_544_712_660_300_000_000);
        assert_eq!(record.observed_time_unix_nano, 1_544_712_660_300_000_001);
        assert_eq!((record.severity_number, record.severity_text.as_str()), (10, "Information"));
        assert_eq!(record.trace_id, hex("5b8efff798038103d269b633813fc60c"));
        assert_eq!(record.span_id, hex("eee19b7ec3c1b174"));
        assert_eq!(record.event_name, "checkout.declined");
        assert_eq!(record.body, string("Example log record"));
        use any_value::Value as V;
        assert_eq!(
            record.attributes,
            vec![
                attribute("string.attribute", V::StringValue("some string".into())),
                attribute("boolean.attribute", V::BoolValue(true)),
                attribute("int.attribute", V::IntValue(10)),
                attribute("double.attribute", V::DoubleValue(637.704)),
                attribute(
                    "array.attribute",
                    V::ArrayValue(ArrayValue { values: vec![string("many").unwrap(), string("values").unwrap()] }),
                ),
                attribute(
                    "map.attribute",
                    V::KvlistValue(KeyValueList {
                        values: vec![attribute("some.map.key", V::StringValue("some value".into()))],
                    }),
                ),
            ]
        );
        assert_eq!((record.dropped_attributes_count, record.flags), (1, 1));
        let error = &scope_logs.log_records[1];
        assert_eq!((error.severity_number, error.severity_text.as_str()), (17, "ERROR"));
        assert!(error.trace_id.is_empty() && error.span_id.is_empty());
        let body =
            V::KvlistValue(KeyValueList { values: vec![attribute("error", V::StringValue("card declined".into()))] });
        assert_eq!(error.body, Some(AnyValue { value: Some(body) }));
    }

    #[test]
    fn the_metrics_fixture_keeps_every_data_point_of_every_kind() {
        let request: ExportMetricsServiceRequest = decode_body(METRICS, Encoding::Json).unwrap();
        let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 5);
        const START: u64 = 1_544_712_660_000_000_000;
        const TIME: u64 = 1_544_712_660_300_000_000;

        assert_eq!((metrics[0].name.as_str(), metrics[0].unit.as_str()), ("my.gauge", "1"));
        assert_eq!(metrics[0].description, "I am a Gauge");
        let Some(Data::Gauge(gauge)) = &metrics[0].data else { panic!("{:?}", metrics[0].data) };
        assert_eq!(gauge.data_points[0].value, Some(number_data_point::Value::AsDouble(10.5)));
        assert_eq!(gauge.data_points[0].time_unix_nano, TIME);
        assert_eq!(gauge.data_points[0].attributes[0].value, string("some value"));
        assert_eq!(gauge.data_points[1].value, Some(number_data_point::Value::AsInt(-3)));
        assert_eq!((gauge.data_points[1].start_time_unix_nano, gauge.data_points[1].flags), (START, 1));

        assert_eq!(metrics[1].metadata, vec![attribute("origin", any_value::Value::StringValue("sdk".into()))]);
        let Some(Data::Sum(sum)) = &metrics[1].data else { panic!("{:?}", metrics[1].data) };
        assert_eq!((sum.aggregation_temporality, sum.is_monotonic), (2, true));
        let point = &sum.data_points[0];
        assert_eq!(
            (point.value, point.start_time_unix_nano, point.time_unix_nano),
            (Some(number_data_point::Value::AsInt(5)), START, TIME)
        );
        assert_eq!(point.attributes[0].key, "my.counter.attr");
        let exemplar = &point.exemplars[0];
        assert_eq!(exemplar.time_unix_nano, 1_544_712_660_200_000_000);
        assert_eq!(exemplar.value, Some(exemplar::Value::AsInt(2)));
        assert_eq!(exemplar.trace_id, hex("5b8efff798038103d269b633813fc60c"));
        assert_eq!(exemplar.span_id, hex("eee19b7ec3c1b174"));

        let Some(Data::Histogram(histogram)) = &metrics[2].data else { panic!("{:?}", metrics[2].data) };
        assert_eq!(histogram.aggregation_temporality, 1);
        let point = &histogram.data_points[0];
        assert_eq!((point.start_time_unix_nano, point.time_unix_nano, point.count), (START, TIME, 3));
        assert_eq!((point.sum, point.min, point.max), (Some(4.5), Some(0.5), Some(3.0)));
        assert_eq!(point.bucket_counts, vec![1, 0, 2]);
        assert_eq!(point.explicit_bounds, vec![1.0, 2.5]);
        assert_eq!(point.attributes[0].key, "my.histogram.attr");
        let exemplar = &point.exemplars[0];
        assert_eq!(exemplar.value, Some(exemplar::Value::AsDouble(3.0)));
        assert_eq!(exemplar.trace_id, hex("0af7651916cd43dd8448eb211c80319c"));
        assert_eq!(exemplar.span_id, hex("b7ad6b7169203331"));
        assert_eq!(
            exemplar.filtered_attributes,
            vec![attribute("http.route", any_value::Value::StringValue("/checkout".into()))]
        );

        let Some(Data::ExponentialHistogram(exponential)) = &metrics[3].data else { panic!("{:?}", metrics[3].data) };
        assert_eq!(exponential.aggregation_temporality, 2);
        let point = &exponential.data_points[0];
        assert_eq!((point.start_time_unix_nano, point.time_unix_nano, point.count), (START, TIME, 7));
        assert_eq!((point.sum, point.min, point.max), (Some(19.5), Some(-2.0), Some(12.0)));
        assert_eq!((point.scale, point.zero_count, point.zero_threshold), (-1, 1, 0.001));
        assert_eq!(point.positive, Some(Buckets { offset: 2, bucket_counts: vec![3, 1] }));
        assert_eq!(point.negative, Some(Buckets { offset: -1, bucket_counts: vec![2] }));
        assert_eq!(point.attributes[0].key, "my.exponential.histogram.attr");

        let Some(Data::Summary(summary)) = &metrics[4].data else { panic!("{:?}", metrics[4].data) };
        let point = &summary.data_points[0];
        assert_eq!((point.start_time_unix_nano, point.time_unix_nano, point.count, point.sum), (START, TIME, 4, 42.5));
        assert_eq!(
            point.quantile_values,
            vec![ValueAtQuantile { quantile: 0.5, value: 9.5 }, ValueAtQuantile { quantile: 0.99, value: 20.0 }]
        );
        assert_eq!(point.attributes[0].key, "my.summary.attr");
    }

    #[test]
    fn enums_are_read_as_numbers_and_as_names() {
        let by_number = one_span(r#"{"kind": 3, "status": {"code": 2}}"#);
        let by_name = one_span(r#"{"kind": "SPAN_KIND_CLIENT", "status": {"code": "STATUS_CODE_ERROR"}}"#);
        assert_eq!((by_number.kind, by_number.status.as_ref().unwrap().code), (3, 2));
        assert_eq!(by_name, by_number);

        let logs: ExportLogsServiceRequest = decode_body(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_WARN"}]}]}]}"#,
            Encoding::Json,
        )
        .unwrap();
        assert_eq!(logs.resource_logs[0].scope_logs[0].log_records[0].severity_number, 13);
        let metrics: ExportMetricsServiceRequest = decode_body(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
                {"sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA"}}]}]}]}"#,
            Encoding::Json,
        )
        .unwrap();
        let Some(Data::Sum(sum)) = &metrics.resource_metrics[0].scope_metrics[0].metrics[0].data else { panic!() };
        assert_eq!(sum.aggregation_temporality, 1);
    }

    #[test]
    fn sixty_four_bit_integers_are_read_as_strings_and_as_numbers() {
        let as_strings = one_span(
            r#"{"startTimeUnixNano": "1544712660000000000",
                "attributes": [{"key": "n", "value": {"intValue": "-9007199254740993"}}]}"#,
        );
        let as_numbers = one_span(
            r#"{"startTimeUnixNano": 1544712660000000000,
                "attributes": [{"key": "n", "value": {"intValue": -9007199254740993}}]}"#,
        );
        assert_eq!(as_strings.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(as_strings.attributes, vec![attribute("n", any_value::Value::IntValue(-9_007_199_254_740_993))]);
        assert_eq!(as_numbers, as_strings);
    }

    #[test]
    fn original_snake_case_field_names_are_accepted() {
        let request = trace(
            r#"{"resource_spans":[{"scope_spans":[{"spans":[{
                "trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174",
                "parent_span_id": "0102030405060708", "start_time_unix_nano": "7",
                "links": [{"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}]}]}]}]}"#,
        )
        .unwrap();
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id, hex("5b8efff798038103d269b633813fc60c"));
        assert_eq!(span.span_id, hex("eee19b7ec3c1b174"));
        assert_eq!(span.parent_span_id, hex("0102030405060708"));
        assert_eq!(span.start_time_unix_nano, 7);
        assert_eq!(span.links[0].trace_id, hex("0af7651916cd43dd8448eb211c80319c"));
        assert_eq!(span.links[0].span_id, hex("b7ad6b7169203331"));

        let logs: ExportLogsServiceRequest = decode_body(
            br#"{"resource_logs":[{"scope_logs":[{"log_records":[
                {"trace_id":"5b8efff798038103d269b633813fc60c"}]}]}]}"#,
            Encoding::Json,
        )
        .unwrap();
        assert_eq!(
            logs.resource_logs[0].scope_logs[0].log_records[0].trace_id,
            hex("5b8efff798038103d269b633813fc60c")
        );
        let metrics: ExportMetricsServiceRequest = decode_body(
            br#"{"resource_metrics":[{"scope_metrics":[{"metrics":[{"exponential_histogram":{"data_points":[
                {"zero_count":"4","exemplars":[{"span_id":"eee19b7ec3c1b174"}]}]}}]}]}]}"#,
            Encoding::Json,
        )
        .unwrap();
        let Some(Data::ExponentialHistogram(histogram)) = &metrics.resource_metrics[0].scope_metrics[0].metrics[0].data
        else {
            panic!()
        };
        assert_eq!(histogram.data_points[0].zero_count, 4);
        assert_eq!(histogram.data_points[0].exemplars[0].span_id, hex("eee19b7ec3c1b174"));
    }

    #[test]
    fn unknown_fields_are_ignored_at_every_level() {
        let request = trace(
            r#"{"future": {"nested": [1, {"deep": null}]}, "resourceSpans":[{"extra": 1, "scopeSpans":[{"spans":[{
                "name": "kept", "newField": "x", "status": {"code": 1, "detail": [true]},
                "attributes": [{"key": "k", "value": {"stringValue": "v", "annotation": {}}, "unit": "s"}]}]}]}]}"#,
        )
        .unwrap();
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.name, "kept");
        assert_eq!(span.status.as_ref().unwrap().code, 1);
        assert_eq!(span.attributes, vec![attribute("k", any_value::Value::StringValue("v".into()))]);
    }

    #[test]
    fn uppercase_hex_and_empty_or_null_ids_are_accepted() {
        let span = one_span(r#"{"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "", "parentSpanId": null}"#);
        assert_eq!(span.trace_id, hex("5b8efff798038103d269b633813fc60c"));
        assert!(span.span_id.is_empty() && span.parent_span_id.is_empty());
    }

    #[test]
    fn bytes_attribute_values_stay_base64() {
        let span = one_span(r#"{"attributes": [{"key": "b", "value": {"bytesValue": "3q2+7w=="}}]}"#);
        assert_eq!(span.attributes, vec![attribute("b", any_value::Value::BytesValue(vec![0xde, 0xad, 0xbe, 0xef]))]);
    }

    #[test]
    fn bad_hex_ids_are_errors_that_name_the_field() {
        let spans =
            |third: &str| format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{}},{{}},{third}]}}]}}]}}"#);
        for (span, expected) in [
            (
                r#"{"traceId": "5b8efff798038103d269b633813fc60"}"#,
                "resourceSpans[0].scopeSpans[0].spans[2].traceId: expected 32 hex characters",
            ),
            (
                r#"{"traceId": "5b8efff798038103d269b633813fc60g"}"#,
                "resourceSpans[0].scopeSpans[0].spans[2].traceId: expected 32 hex characters",
            ),
            (
                r#"{"spanId": "W47xm37DwbF0"}"#,
                "resourceSpans[0].scopeSpans[0].spans[2].spanId: expected 16 hex characters",
            ),
            (
                r#"{"parent_span_id": 12}"#,
                "resourceSpans[0].scopeSpans[0].spans[2].parent_span_id: expected 16 hex characters",
            ),
            (
                r#"{"links": [{}, {"spanId": "éééééééé"}]}"#,
                "resourceSpans[0].scopeSpans[0].spans[2].links[1].spanId: expected 16 hex characters",
            ),
        ] {
            assert_eq!(error_text(&spans(span)), expected);
        }
        let metrics = decode_body::<ExportMetricsServiceRequest>(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
                {"histogram":{"dataPoints":[{"exemplars":[{"traceId":"zz"}]}]}}]}]}]}"#,
            Encoding::Json,
        );
        assert_eq!(
            metrics.unwrap_err().to_string(),
            concat!(
                "resourceMetrics[0].scopeMetrics[0].metrics[0].histogram.dataPoints[0].exemplars[0].traceId: ",
                "expected 32 hex characters"
            )
        );
    }

    #[test]
    fn wrong_types_are_errors_that_name_the_field() {
        assert_eq!(
            error_text(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano": true}]}]}]}"#),
            "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: invalid type: boolean `true`, \
             expected a 64-bit unsigned integer or decimal string",
        );
        assert_eq!(
            error_text(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"endTimeUnixNano": -1}]}]}]}"#),
            "resourceSpans[0].scopeSpans[0].spans[0].endTimeUnixNano: out of range integral type conversion attempted",
        );
        assert_eq!(
            error_text(r#"{"resourceSpans": {"scopeSpans": 3}}"#),
            "resourceSpans: invalid type: map, expected a list"
        );
        assert_eq!(error_text("[1, 2]"), "request body: invalid type: sequence, expected a map");
    }

    #[test]
    fn malformed_json_is_an_error_with_its_position() {
        assert_eq!(error_text("{\"resourceSpans\": [}"), "invalid JSON at line 1 column 20: expected value");
        assert!(matches!(trace(""), Err(DecodeError::JsonSyntax { line: 1, column: 0, .. })));
        assert!(matches!(trace("{\n  \"resourceSpans\": [\n"), Err(DecodeError::JsonSyntax { line: 3, .. })));
        assert!(matches!(trace("\u{0}\u{1}garbage"), Err(DecodeError::JsonSyntax { .. })));
        assert!(matches!(trace("{} trailing"), Err(DecodeError::JsonSyntax { .. })));
    }

    #[test]
    fn errors_never_echo_a_huge_input() {
        let huge = "x".repeat(1 << 20);
        for json in [
            format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"startTimeUnixNano": "{huge}"}}]}}]}}]}}"#),
            format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"name": {huge}}}]}}]}}]}}"#),
            format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId": "{huge}"}}]}}]}}]}}"#),
            format!(r#"{{"resourceSpans":[{{"{huge}": 1, "scopeSpans": 1}}]}}"#),
        ] {
            let text = error_text(&json);
            assert!(text.len() < 400, "{} characters: {}", text.len(), &text[..400]);
        }
    }

    #[test]
    fn hex_ids_become_the_same_bytes_as_base64_would() {
        for bytes in [&[][..], &[0], &[1, 2], &[0xff, 0xfe, 0xfd], &[0xab; 8], &[0x5b; 16]] {
            let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            let encoded = hex_to_base64(&hex, bytes.len()).unwrap();
            let roundtrip = prost_reflect::DynamicMessage::deserialize(
                super::super::descriptor::<ExportTraceServiceRequest>(),
                serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": encoded}]}]}]}),
            )
            .unwrap()
            .transcode_to::<ExportTraceServiceRequest>()
            .unwrap();
            assert_eq!(roundtrip.resource_spans[0].scope_spans[0].spans[0].trace_id, bytes, "{hex}");
        }
    }

    fn json_of<M: super::super::ResponseBody>(message: &M) -> String {
        String::from_utf8(encode_body(message, Encoding::Json)).unwrap()
    }

    #[test]
    fn responses_encode_partial_success_with_int64_as_string() {
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 3, error_message: "queue full".into() }),
        };
        assert_eq!(json_of(&partial), r#"{"partialSuccess":{"rejectedSpans":"3","errorMessage":"queue full"}}"#);
        let metrics = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 9,
                error_message: String::new(),
            }),
        };
        assert_eq!(json_of(&metrics), r#"{"partialSuccess":{"rejectedDataPoints":"9"}}"#);
        let warning = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 0,
                error_message: "slow down".into(),
            }),
        };
        assert_eq!(json_of(&warning), r#"{"partialSuccess":{"errorMessage":"slow down"}}"#);
    }

    #[test]
    fn responses_with_nothing_to_report_encode_as_an_empty_object() {
        assert_eq!(json_of(&ExportTraceServiceResponse::default()), "{}");
        let empty = ExportTraceServiceResponse { partial_success: Some(ExportTracePartialSuccess::default()) };
        assert_eq!(json_of(&empty), "{}");
        assert_eq!(json_of(&ExportLogsServiceResponse::default()), "{}");
    }

    #[test]
    fn error_statuses_encode_code_message_and_known_details() {
        assert_eq!(
            json_of(&rpc_status(tonic::Code::InvalidArgument, "bad traceId")),
            r#"{"code":3,"message":"bad traceId"}"#
        );
        let retry_info =
            tonic_types::pb::RetryInfo { retry_delay: Some(prost_types::Duration { seconds: 5, nanos: 0 }) };
        let mut status = rpc_status(tonic::Code::Unavailable, "busy");
        status.details.push(prost_types::Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: prost::Message::encode_to_vec(&retry_info),
        });
        let with_retry = json_of(&status);
        assert_eq!(
            with_retry,
            concat!(
                r#"{"code":14,"message":"busy","#,
                r#""details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"5s"}]}"#
            )
        );
        status.details.push(prost_types::Any { type_url: "type.googleapis.com/acme.Unknown".into(), value: vec![1] });
        assert_eq!(json_of(&status), with_retry);
        let decoded: RpcStatus = prost::Message::decode(encode_body(&status, Encoding::Protobuf).as_slice()).unwrap();
        assert_eq!(decoded, status);
    }
}
