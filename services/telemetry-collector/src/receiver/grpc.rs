//! OTLP/gRPC receiver (port 4317): the trace, metrics and logs services of
//! `opentelemetry.proto.collector.*.v1`, gzip accepted.
//!
//! [`AdmissionLayer`] runs before tonic decodes anything: under memory pressure a call is answered
//! UNAVAILABLE with RetryInfo without reading its message, and tonic's OUT_OF_RANGE for an oversize
//! message becomes RESOURCE_EXHAUSTED without RetryInfo, as OTLP asks (the client must not retry it),
//! and its INTERNAL for an undecodable one becomes INVALID_ARGUMENT (the data is at fault).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::{HeaderValue, Request, Response};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};
use tower::{Layer, Service};

use super::Limits;
use crate::forward::{Logs, Metrics, Signal, Traces};
use crate::limiter::MemoryLimiter;
use crate::pipeline::{Intake, Pipeline, Refusal, Transport, count_refused_request};

/// The three OTLP services over one pipeline.
#[derive(Debug, Clone)]
pub struct OtlpGrpc {
    pipeline: Arc<Pipeline>,
}

/// The OTLP trace, metrics and logs services, ready to add to a tonic server.
#[must_use]
pub fn services(
    pipeline: Arc<Pipeline>,
    limits: Limits,
) -> (TraceServiceServer<OtlpGrpc>, MetricsServiceServer<OtlpGrpc>, LogsServiceServer<OtlpGrpc>) {
    let receiver = OtlpGrpc { pipeline };
    let max = limits.max_decompressed_bytes;
    (
        TraceServiceServer::new(receiver.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max),
        MetricsServiceServer::new(receiver.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max),
        LogsServiceServer::new(receiver).accept_compressed(CompressionEncoding::Gzip).max_decoding_message_size(max),
    )
}

/// UNAVAILABLE with RetryInfo for what may be retried; RESOURCE_EXHAUSTED without it otherwise.
fn refusal_status(refusal: Refusal) -> Status {
    match refusal.retry_after() {
        Some(delay) => Status::with_error_details(
            Code::Unavailable,
            refusal.to_string(),
            ErrorDetails::with_retry_info(Some(delay)),
        ),
        None => Status::resource_exhausted(refusal.to_string()),
    }
}

/// A call of signal `S`'s `Export` method.
type Call<S> = tonic::Request<<S as Signal>::Request>;
/// The answer to a [`Call`].
type Answer<S> = Result<tonic::Response<<S as Signal>::Response>, Status>;

impl OtlpGrpc {
    fn answer<S: Intake>(&self, request: Call<S>) -> Answer<S> {
        let rejected = self.pipeline.export::<S>(request.into_inner(), Transport::Grpc).map_err(refusal_status)?;
        Ok(tonic::Response::new(S::response(rejected.into_partial())))
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(&self, request: Call<Traces>) -> Answer<Traces> {
        self.answer::<Traces>(request)
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(&self, request: Call<Metrics>) -> Answer<Metrics> {
        self.answer::<Metrics>(request)
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(&self, request: Call<Logs>) -> Answer<Logs> {
        self.answer::<Logs>(request)
    }
}

/// Memory admission and the oversize answer, in front of the OTLP services; see the module docs.
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    limiter: MemoryLimiter,
    max_message_bytes: usize,
}

impl AdmissionLayer {
    /// A layer consulting `limiter`, for services whose message limit is `max_message_bytes`.
    #[must_use]
    pub const fn new(limiter: MemoryLimiter, max_message_bytes: usize) -> Self {
        Self { limiter, max_message_bytes }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Admission { inner, layer: self.clone() }
    }
}

/// The service produced by [`AdmissionLayer`].
#[derive(Debug, Clone)]
pub struct Admission<S> {
    inner: S,
    layer: AdmissionLayer,
}

type MapDecoderStatus<F, B> = futures_util::future::MapOk<F, Box<dyn FnOnce(Response<B>) -> Response<B> + Send>>;

impl<S, ResBody> Service<Request<Body>> for Admission<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<ResBody>, S::Error>>, MapDecoderStatus<S::Future, ResBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        use futures_util::TryFutureExt as _;
        let limiter = &self.layer.limiter;
        let signal = signal_of(request.uri().path());
        // Only the OTLP services are admitted here; tonic answers anything else UNIMPLEMENTED, which
        // the RED layer labels `_OTHER` (a refusal here would label the raw method name).
        if signal == "other" {
            return Either::Right(self.inner.call(request).map_ok(Box::new(|response| response)));
        }
        if limiter.under_pressure() {
            count_refused_request(signal, Transport::Grpc, "memory_pressure");
            let refusal = Refusal::MemoryPressure { retry_after: limiter.retry_after() };
            return Either::Left(ready(Ok(refusal_status(refusal).into_http())));
        }
        let max = self.layer.max_message_bytes;
        // Message bytes count as in flight while they arrive, so concurrent large calls see each other.
        let request = request.map(|body| Body::new(TrackedBody { inner: body, in_flight: limiter.track() }));
        let map: Box<dyn FnOnce(Response<ResBody>) -> Response<ResBody> + Send> =
            Box::new(move |response| decoder_statuses_per_otlp(response, max, signal));
        Either::Right(self.inner.call(request).map_ok(map))
    }
}

pin_project_lite::pin_project! {
    /// A request body whose bytes count as in flight (see [`MemoryLimiter::track`]) until dropped.
    struct TrackedBody {
        #[pin]
        inner: Body,
        in_flight: crate::limiter::Admission,
    }
}

impl http_body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &frame
            && let Some(data) = frame.data_ref()
        {
            this.in_flight.grow(data.len() * super::http::DECODED_EXPANSION);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn signal_of(path: &str) -> &'static str {
    if path.contains(".trace.") {
        "traces"
    } else if path.contains(".metrics.") {
        "metrics"
    } else if path.contains(".logs.") {
        "logs"
    } else {
        "other"
    }
}

/// tonic's decoder answers OUT_OF_RANGE for a message over its limit and INTERNAL for one it cannot
/// decode; OTLP wants RESOURCE_EXHAUSTED (without RetryInfo) and INVALID_ARGUMENT. The services never
/// answer either code themselves, so the mapping is unambiguous.
fn decoder_statuses_per_otlp<B>(mut response: Response<B>, max: usize, signal: &'static str) -> Response<B> {
    let headers = response.headers_mut();
    let (code, reason, message) = match headers.get("grpc-status").map(HeaderValue::as_bytes) {
        Some(b"11") => (
            "8",
            "too_large",
            format!("request message exceeds the limit of {max} bytes (limits.max_decompressed_bytes)"),
        ),
        Some(b"13") => {
            let detail = headers.get("grpc-message").and_then(|value| value.to_str().ok()).unwrap_or_default();
            ("3", "undecodable", format!("undecodable request message: {detail}"))
        }
        _ => return response,
    };
    count_refused_request(signal, Transport::Grpc, reason);
    headers.insert("grpc-status", HeaderValue::from_static(code));
    if let Ok(value) = HeaderValue::from_str(&message) {
        headers.insert("grpc-message", value);
    }
    response
}
