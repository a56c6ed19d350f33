//! OTLP wire formats: protobuf and JSON decoding and encoding, gzip with size limits.
//!
//! Follows the OTLP specification (opentelemetry-proto `docs/specification.md`, OTLP/HTTP): request
//! bodies are `application/x-protobuf` or `application/json`, responses use the request's encoding,
//! and failures carry a `google.rpc.Status`.

pub mod byte_text;
mod gzip;
mod json;

use std::sync::LazyLock;

use opentelemetry_proto::tonic::collector::{
    logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse},
    metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse},
    trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
};
use prost_reflect::{DescriptorPool, MessageDescriptor};

pub use gzip::{GunzipError, gunzip};
/// The `google.rpc.Status` body of an OTLP/HTTP failure.
pub use tonic_types::Status as RpcStatus;

/// Longest client-supplied text a [`DecodeError`] repeats.
const MAX_REASON_CHARS: usize = 160;

/// The body encodings OTLP/HTTP defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Binary protobuf, `application/x-protobuf`.
    Protobuf,
    /// The OTLP JSON mapping of protobuf, `application/json`.
    Json,
}

impl Encoding {
    /// The encoding named by a `Content-Type` header value, ignoring case and parameters such as
    /// `charset`; `None` for media types OTLP does not define.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Self::Protobuf)
        } else if media_type.eq_ignore_ascii_case("application/json") {
            Some(Self::Json)
        } else {
            None
        }
    }

    /// The `Content-Type` of a body in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// Why a request body could not be decoded. The message is meant for the client: short, and it never
/// repeats more than a few dozen characters of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not a valid protobuf encoding of the request.
    #[error("invalid protobuf: {reason}")]
    Protobuf {
        /// What the protobuf decoder found wrong.
        reason: String,
    },
    /// The body is not well-formed JSON.
    #[error("invalid JSON at line {line} column {column}: {reason}")]
    JsonSyntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser found wrong.
        reason: String,
    },
    /// The body is JSON but a value does not fit the OTLP message.
    #[error("{path}: {reason}")]
    JsonValue {
        /// Where the value is, e.g. `resourceSpans[0].scopeSpans[0].spans[2].traceId`.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl DecodeError {
    fn protobuf(error: &prost::DecodeError) -> Self {
        let text = error.to_string();
        let reason = text.strip_prefix("failed to decode Protobuf message: ").unwrap_or(&text);
        Self::Protobuf { reason: shorten(reason) }
    }
}

/// Cuts client-influenced text to [`MAX_REASON_CHARS`] characters.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_REASON_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A message of the OTLP services that has a descriptor in [`DESCRIPTORS`], so it can be read and
/// written as JSON.
pub trait OtlpMessage: prost::Message + Default + sealed::Sealed {
    /// The fully qualified protobuf name, e.g. `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`.
    const FULL_NAME: &'static str;
}

/// An OTLP export request, the body a client sends.
pub trait ExportRequest: OtlpMessage {}

/// A body the collector answers with: an export response or an error status.
pub trait ResponseBody: OtlpMessage {}

mod sealed {
    pub trait Sealed {}
}

macro_rules! otlp_messages {
    ($role:ident: $($message:ty => $name:literal),+ $(,)?) => {$(
        impl sealed::Sealed for $message {}
        impl OtlpMessage for $message {
            const FULL_NAME: &'static str = $name;
        }
        impl $role for $message {}
    )+};
}

otlp_messages! {ExportRequest:
    ExportTraceServiceRequest => "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
    ExportMetricsServiceRequest => "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest",
    ExportLogsServiceRequest => "opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest",
}

otlp_messages! {ResponseBody:
    ExportTraceServiceResponse => "opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse",
    ExportMetricsServiceResponse => "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse",
    ExportLogsServiceResponse => "opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse",
    RpcStatus => "google.rpc.Status",
}

/// Descriptors of the OTLP services, `google.rpc` (status and error details) and the well-known
/// types, for the JSON mapping.
static DESCRIPTORS: LazyLock<DescriptorPool> = LazyLock::new(|| {
    // Both sets are compiled into the binary; `descriptors_resolve_every_otlp_message` checks them.
    let mut pool = DescriptorPool::global();
    pool.decode_file_descriptor_set(opentelemetry_proto::DESCRIPTORS)
        .expect("opentelemetry-proto ships a valid descriptor set");
    pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .expect("tonic-types ships a valid descriptor set");
    pool
});

fn descriptor<M: OtlpMessage>() -> MessageDescriptor {
    DESCRIPTORS.get_message_by_name(M::FULL_NAME).expect("every OtlpMessage names a message in DESCRIPTORS")
}

/// Decodes an OTLP export request body (already decompressed).
pub fn decode<M: ExportRequest>(body: &[u8], encoding: Encoding) -> Result<M, DecodeError> {
    match encoding {
        Encoding::Protobuf => M::decode(body).map_err(|error| DecodeError::protobuf(&error)),
        Encoding::Json => json::decode(body),
    }
}

/// Encodes a response body: an export response, or an [`RpcStatus`] for a failed request.
///
/// In JSON an all-default `partialSuccess` is left out (the specification makes it equivalent to full
/// success), and status details whose type is unknown are dropped.
pub fn encode<M: ResponseBody>(message: &M, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => message.encode_to_vec(),
        Encoding::Json => json::encode(message),
    }
}

/// A `google.rpc.Status` without details, the usual OTLP/HTTP failure body.
pub fn rpc_status(code: tonic::Code, message: impl Into<String>) -> RpcStatus {
    RpcStatus { code: code as i32, message: message.into(), details: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;

    fn names<M: OtlpMessage>() -> (String, &'static str) {
        (descriptor::<M>().full_name().to_owned(), M::FULL_NAME)
    }

    #[test]
    fn descriptors_resolve_every_otlp_message() {
        for (found, wanted) in [
            names::<ExportTraceServiceRequest>(),
            names::<ExportMetricsServiceRequest>(),
            names::<ExportLogsServiceRequest>(),
            names::<ExportTraceServiceResponse>(),
            names::<ExportMetricsServiceResponse>(),
            names::<ExportLogsServiceResponse>(),
            names::<RpcStatus>(),
        ] {
            assert_eq!(found, wanted);
        }
        assert!(DESCRIPTORS.get_message_by_name("google.rpc.RetryInfo").is_some());
    }

    #[test]
    fn content_types_are_recognised_regardless_of_case_and_parameters() {
        for (header, expected) in [
            ("application/x-protobuf", Some(Encoding::Protobuf)),
            ("Application/X-Protobuf", Some(Encoding::Protobuf)),
            ("application/json", Some(Encoding::Json)),
            ("application/json; charset=utf-8", Some(Encoding::Json)),
            (" APPLICATION/JSON ;charset=UTF-8", Some(Encoding::Json)),
            ("application/x-protobuf;proto=x", Some(Encoding::Protobuf)),
            ("text/plain", None),
            ("application/jsonx", None),
            ("", None),
        ] {
            assert_eq!(Encoding::from_content_type(header), expected, "{header:?}");
        }
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            assert_eq!(Encoding::from_content_type(encoding.content_type()), Some(encoding));
        }
    }

    fn sample_request() -> ExportTraceServiceRequest {
        let span = Span {
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            name: "GET /matrix".into(),
            kind: 2,
            start_time_unix_nano: 1_544_712_660_000_000_000,
            end_time_unix_nano: 1_544_712_661_000_000_000,
            attributes: vec![KeyValue {
                key: "http.method".into(),
                value: Some(AnyValue { value: Some(any_value::Value::StringValue("GET".into())) }),
                ..Default::default()
            }],
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn protobuf_requests_round_trip() {
        let request = sample_request();
        let decoded: ExportTraceServiceRequest = decode(&request.encode_to_vec(), Encoding::Protobuf).unwrap();
        assert_eq!(decoded, request);
    }

    #[test]
    fn truncated_protobuf_is_an_error() {
        let bytes = sample_request().encode_to_vec();
        let error = decode::<ExportTraceServiceRequest>(&bytes[..bytes.len() - 3], Encoding::Protobuf).unwrap_err();
        assert!(matches!(error, DecodeError::Protobuf { .. }), "{error}");
        assert!(error.to_string().starts_with("invalid protobuf: "), "{error}");
    }

    #[test]
    fn protobuf_responses_decode_back_to_the_same_message() {
        let response = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 3, error_message: "full".into() }),
        };
        let bytes = encode(&response, Encoding::Protobuf);
        assert_eq!(ExportTraceServiceResponse::decode(bytes.as_slice()).unwrap(), response);
    }

    #[test]
    fn long_reasons_are_shortened() {
        let long = "x".repeat(10_000);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), MAX_REASON_CHARS + 1);
        assert_eq!(shorten("brief"), "brief");
    }

    const FIXTURES: [&[u8]; 3] = [
        include_bytes!("../../tests/fixtures/otlp/trace.json"),
        include_bytes!("../../tests/fixtures/otlp/logs.json"),
        include_bytes!("../../tests/fixtures/otlp/metrics.json"),
    ];

    /// Runs every decoder over `body`: both encodings of all three requests, and gunzip.
    fn decode_everything(body: &[u8]) -> [bool; 7] {
        [
            decode::<ExportTraceServiceRequest>(body, Encoding::Json).is_ok(),
            decode::<ExportMetricsServiceRequest>(body, Encoding::Json).is_ok(),
            decode::<ExportLogsServiceRequest>(body, Encoding::Json).is_ok(),
            decode::<ExportTraceServiceRequest>(body, Encoding::Protobuf).is_ok(),
            decode::<ExportMetricsServiceRequest>(body, Encoding::Protobuf).is_ok(),
            decode::<ExportLogsServiceRequest>(body, Encoding::Protobuf).is_ok(),
            gunzip(body, 1 << 16).is_ok(),
        ]
    }

    /// The fixture as protobuf, through the request type it holds.
    fn as_protobuf(fixture: &[u8]) -> Vec<u8> {
        if let Ok(request) = decode::<ExportTraceServiceRequest>(fixture, Encoding::Json)
            && !request.resource_spans.is_empty()
        {
            return request.encode_to_vec();
        }
        if let Ok(request) = decode::<ExportLogsServiceRequest>(fixture, Encoding::Json)
            && !request.resource_logs.is_empty()
        {
            return request.encode_to_vec();
        }
        decode::<ExportMetricsServiceRequest>(fixture, Encoding::Json).unwrap().encode_to_vec()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn every_decoder_fails_cleanly_on_every_truncation_of_the_fixtures() {
        for fixture in FIXTURES {
            let json = fixture.trim_ascii_end();
            assert!(decode_everything(json)[..3].iter().any(|ok| *ok));
            for end in 0..json.len() {
                let [trace, metrics, logs, .., gzip_ok] = decode_everything(&json[..end]);
                assert!(!(trace || metrics || logs || gzip_ok), "JSON cut at byte {end} was accepted");
            }

            let protobuf = as_protobuf(fixture);
            assert!(protobuf.len() > 100);
            for end in 1..protobuf.len() {
                let [json_trace, json_metrics, json_logs, trace, metrics, logs, _] =
                    decode_everything(&protobuf[..end]);
                assert!(!(json_trace || json_metrics || json_logs), "protobuf cut at byte {end} was read as JSON");
                // A cut inside the one top-level element leaves its declared length unfilled.
                assert!(!(trace || metrics || logs), "protobuf cut at byte {end} was accepted");
            }

            let compressed = gzip(fixture);
            assert_eq!(gunzip(&compressed, fixture.len()).unwrap(), fixture);
            for end in 1..compressed.len() {
                assert!(
                    matches!(gunzip(&compressed[..end], 1 << 20), Err(GunzipError::Corrupt(_))),
                    "gzip cut at {end}"
                );
                decode_everything(&compressed[..end]);
            }
        }
    }
}
