//! OTLP/HTTP receiver (port 4318): `POST /v1/traces`, `/v1/metrics`, `/v1/logs`.
//!
//! Checks run cheapest first and before any work is done for the body: media type (415), encoding
//! (415), memory pressure (503 with `Retry-After`), declared length (413); then the body is read up
//! to the limit (413), decompressed up to its own limit (413), decoded (400) and handed to the
//! [`Pipeline`]. Answers use the request's encoding; failures carry a `google.rpc.Status`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Limited};

use super::Limits;
use crate::forward::{Logs, Metrics, Traces};
use crate::otlp::{self, Encoding, GunzipError};
use crate::pipeline::{Intake, Pipeline, Refusal, Transport, count_refused_request};

/// Heap a request takes per byte of protobuf while it is decoded, stored and measured (attributes
/// with short keys and values take about five times their wire size as prost structs).
pub const DECODED_EXPANSION: usize = 5;

/// The same for JSON, which is parsed into a value tree and a dynamic message before the prost types.
const JSON_EXPANSION: usize = 10;

/// Protobuf bodies up to this size are decoded on the reactor thread (about 1 ms of work).
const INLINE_DECODE_BYTES: usize = 256 << 10;

#[derive(Clone)]
struct Receiver {
    pipeline: Arc<Pipeline>,
    limits: Limits,
    /// Decodes running on the blocking pool at once: one per core. CPU-bound work gains nothing
    /// from more threads, and every extra thread keeps its own allocator heap.
    decoders: Arc<tokio::sync::Semaphore>,
}

/// The OTLP/HTTP routes.
pub fn router(pipeline: Arc<Pipeline>, limits: Limits) -> Router {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Router::new()
        .route("/v1/traces", post(export::<Traces>))
        .route("/v1/metrics", post(export::<Metrics>))
        .route("/v1/logs", post(export::<Logs>))
        .with_state(Receiver { pipeline, limits, decoders: Arc::new(tokio::sync::Semaphore::new(cores)) })
}

/// A failed request: its status and what the client is told.
struct Failure {
    status: StatusCode,
    message: String,
    retry_after: Option<Duration>,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after: None }
    }

    fn into_response(self, encoding: Encoding) -> Response {
        let code = match self.status {
            StatusCode::PAYLOAD_TOO_LARGE => tonic::Code::ResourceExhausted,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => tonic::Code::Unavailable,
            _ => tonic::Code::InvalidArgument,
        };
        let body = otlp::encode(&otlp::rpc_status(code, self.message), encoding);
        let mut response = (self.status, [(header::CONTENT_TYPE, encoding.content_type())], body).into_response();
        if let Some(delay) = self.retry_after {
            let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        match refusal.retry_after() {
            Some(delay) => {
                Self { retry_after: Some(delay), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, refusal.to_string()) }
            }
            None => Self::new(StatusCode::PAYLOAD_TOO_LARGE, refusal.to_string()),
        }
    }
}

async fn export<S: Intake>(State(receiver): State<Receiver>, headers: HeaderMap, body: Body) -> Response {
    receiver
        .handle(S::NAME, &headers, body, |pipeline, bytes, encoding| {
            let request = otlp::decode::<S::Request>(&bytes, encoding)?;
            let rejected = pipeline.export::<S>(request, Transport::Http)?;
            Ok(otlp::encode(&S::response(rejected.into_partial()), encoding))
        })
        .await
}

impl From<otlp::DecodeError> for Failure {
    fn from(error: otlp::DecodeError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, format!("undecodable body: {error}"))
    }
}

impl Receiver {
    async fn handle(
        &self,
        signal: &'static str,
        headers: &HeaderMap,
        body: Body,
        export: impl FnOnce(&Pipeline, Bytes, Encoding) -> Result<Vec<u8>, Failure> + Send + 'static,
    ) -> Response {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
        let Some(encoding) = content_type.and_then(Encoding::from_content_type) else {
            count_refused_request(signal, Transport::Http, "media_type");
            let message = format!(
                "unsupported media type {:?}: send application/x-protobuf or application/json",
                content_type.unwrap_or("")
            );
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, message).into_response();
        };
        match self.read_and_export(signal, headers, body, encoding, export).await {
            Ok(answer) => ([(header::CONTENT_TYPE, encoding.content_type())], answer).into_response(),
            Err(failure) => failure.into_response(encoding),
        }
    }

    async fn read_and_export(
        &self,
        signal: &'static str,
        headers: &HeaderMap,
        body: Body,
        encoding: Encoding,
        export: impl FnOnce(&Pipeline, Bytes, Encoding) -> Result<Vec<u8>, Failure> + Send + 'static,
    ) -> Result<Vec<u8>, Failure> {
        let refuse = |reason: &'static str, failure: Failure| {
            count_refused_request(signal, Transport::Http, reason);
            failure
        };
        let gzip = match headers.get(header::CONTENT_ENCODING).map(HeaderValue::as_bytes) {
            None => false,
            Some(value) if value.eq_ignore_ascii_case(b"identity") => false,
            Some(value) if value.eq_ignore_ascii_case(b"gzip") => true,
            Some(_) => {
                let failure =
                    Failure::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported Content-Encoding: send gzip or none");
                return Err(refuse("content_encoding", failure));
            }
        };
        let max = self.limits.max_request_bytes;
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        let too_large = || {
            let message = format!("request body exceeds the limit of {max} bytes (limits.max_request_bytes)");
            refuse("too_large", Failure::new(StatusCode::PAYLOAD_TOO_LARGE, message))
        };
        if declared.is_some_and(|length| length > max as u64) {
            return Err(too_large());
        }
        // Admitted before reading: the body, and what it decodes to, are in flight from now on. A
        // gzip body's decoded size is a guess, so no reservation may alone fill the soft limit.
        let wire = declared.map_or(0, |length| length as usize);
        let plain = if gzip { wire.saturating_mul(8).min(self.limits.max_decompressed_bytes) } else { wire };
        let expansion = if encoding == Encoding::Json { JSON_EXPANSION } else { DECODED_EXPANSION };
        let expected = plain.saturating_mul(expansion).min(self.pipeline.limiter().largest_reservation());
        let _admission = self.pipeline.limiter().admit(expected).map_err(|pressure| {
            let refusal = Refusal::MemoryPressure { retry_after: pressure.retry_after };
            refuse("memory_pressure", Failure::from(refusal))
        })?;
        let bytes = match Limited::new(body, max).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
            Err(error) => {
                let failure = Failure::new(StatusCode::BAD_REQUEST, format!("reading the body failed: {error}"));
                return Err(refuse("unreadable", failure));
            }
        };
        let bytes = if gzip {
            let max = self.limits.max_decompressed_bytes;
            match otlp::gunzip(&bytes, max) {
                Ok(plain) => Bytes::from(plain),
                Err(GunzipError::TooLarge { .. }) => {
                    let message =
                        format!("decompressed body exceeds the limit of {max} bytes (limits.max_decompressed_bytes)");
                    return Err(refuse("too_large", Failure::new(StatusCode::PAYLOAD_TOO_LARGE, message)));
                }
                Err(error) => {
                    let failure = Failure::new(StatusCode::BAD_REQUEST, format!("undecodable gzip body: {error}"));
                    return Err(refuse("undecodable", failure));
                }
            }
        } else {
            bytes
        };
        // JSON decodes about 25 times slower than protobuf: a large body would hold a reactor thread
        // (and every connection on it) for tens of milliseconds, so it is decoded on the blocking pool.
        let exported = if encoding == Encoding::Json || bytes.len() > INLINE_DECODE_BYTES {
            let pipeline = Arc::clone(&self.pipeline);
            let permit = Arc::clone(&self.decoders).acquire_owned().await;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                export(&pipeline, bytes, encoding)
            })
            .await
            .unwrap_or_else(|_| Err(Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "decoding failed")))
        } else {
            export(&self.pipeline, bytes, encoding)
        };
        exported.inspect_err(|failure| {
            if failure.status == StatusCode::BAD_REQUEST {
                count_refused_request(signal, Transport::Http, "undecodable");
            }
        })
    }
}
