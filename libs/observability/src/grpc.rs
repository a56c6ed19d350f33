//! Tower layers for tonic servers and clients: one span per call (W3C context extracted on the
//! server, injected on the client) and the RED histograms of docs/contracts.md §5,
//! `rpc_server_duration_seconds` / `rpc_client_duration_seconds` with `rpc_service`, `rpc_method`
//! and `rpc_grpc_status_code`; a `debug` log line per finished call, in the call's span.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use tonic::Code;
use tower::{Layer, Service};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::body::{BodyEnd, ObservedBody, OnBodyEnd, poll_recorded};
use crate::metrics::MetricsHandle;
use crate::propagation;

/// Label value standing in for a method name the server does not know, so a client probing
/// random paths cannot create unbounded series (the OpenTelemetry conventions use `_OTHER` alike).
pub const OTHER: &str = "_OTHER";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

/// Traces and measures every call a tonic server receives, into one application's registry.
#[derive(Debug, Clone)]
pub struct GrpcServerLayer {
    metrics: MetricsHandle,
}

impl GrpcServerLayer {
    /// Measures into `metrics`, which is also the recorder of whatever the calls record.
    #[must_use]
    pub const fn new(metrics: MetricsHandle) -> Self {
        Self { metrics }
    }
}

/// The gRPC health service, whose calls are measured but never traced.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// Traces and measures every call a tonic client makes, propagating the trace context.
#[derive(Debug, Clone)]
pub struct GrpcClientLayer {
    metrics: MetricsHandle,
}

impl GrpcClientLayer {
    /// Measures into `metrics`.
    #[must_use]
    pub const fn new(metrics: MetricsHandle) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for GrpcServerLayer {
    type Service = GrpcTelemetry<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcTelemetry { inner, side: Side::Server, metrics: self.metrics.clone() }
    }
}

impl<S> Layer<S> for GrpcClientLayer {
    type Service = GrpcTelemetry<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcTelemetry { inner, side: Side::Client, metrics: self.metrics.clone() }
    }
}

/// The service produced by [`GrpcServerLayer`] and [`GrpcClientLayer`].
#[derive(Debug, Clone)]
pub struct GrpcTelemetry<S> {
    inner: S,
    side: Side,
    metrics: MetricsHandle,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcTelemetry<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ObservedBody<ResBody, CallRecord>>;
    type Error = S::Error;
    type Future = GrpcFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let (service, method) = split_path(request.uri().path());
        let (service, method) = (service.to_owned(), method.to_owned());
        // A span's name is part of its static metadata: one call site per side.
        macro_rules! call_span {
            ($name:literal, $kind:literal) => {
                tracing::info_span!(
                    $name,
                    otel.name = format!("{service}/{method}"),
                    otel.kind = $kind,
                    rpc.system = "grpc",
                    rpc.service = service.as_str(),
                    rpc.method = method.as_str(),
                    rpc.grpc.status_code = tracing::field::Empty,
                    otel.status_code = tracing::field::Empty,
                    otel.status_description = tracing::field::Empty,
                )
            };
        }
        let span = match self.side {
            // Probes (kubelet, load balancers, the gateway's /ops poller) call Health every few
            // seconds: measured like any call, but not traced, or they would bury real traces.
            _ if service == HEALTH_SERVICE => tracing::Span::none(),
            Side::Server => call_span!("grpc.server", "server"),
            Side::Client => call_span!("grpc.client", "client"),
        };
        match self.side {
            Side::Server => {
                // A span that is disabled by the log filter has no context to join; that is fine.
                let _ = span.set_parent(propagation::extract(request.headers()));
            }
            Side::Client => propagation::inject(&span.context(), request.headers_mut()),
        }
        let record = CallRecord {
            side: self.side,
            service,
            method,
            start: Instant::now(),
            header_status: None,
            header_message: None,
            span: span.clone(),
            metrics: self.metrics.clone(),
        };
        let inner = self.metrics.in_scope(|| span.in_scope(|| self.inner.call(request)));
        GrpcFuture { inner, record: Some(record) }
    }
}

pin_project! {
    /// Response future of [`GrpcTelemetry`].
    pub struct GrpcFuture<F> {
        #[pin]
        inner: F,
        record: Option<CallRecord>,
    }
}

impl<F, ResBody, E> Future for GrpcFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ObservedBody<ResBody, CallRecord>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (result, mut record) =
            ready!(poll_recorded(this.inner, this.record, cx, |record| (&record.span, &record.metrics)));
        Poll::Ready(match result {
            Ok(response) => {
                // A "trailers-only" answer (every error tonic returns early) carries its status
                // in the headers.
                record.header_status = grpc_status(response.headers());
                record.header_message = grpc_message(response.headers());
                Ok(response.map(|body| ObservedBody::new(body, record)))
            }
            Err(error) => {
                record.finish(Code::Unavailable, None);
                Err(error)
            }
        })
    }
}

/// What one call records when its response body ends.
#[derive(Debug)]
pub struct CallRecord {
    side: Side,
    service: String,
    method: String,
    start: Instant,
    header_status: Option<Code>,
    header_message: Option<String>,
    span: Span,
    metrics: MetricsHandle,
}

impl CallRecord {
    fn finish(self, code: Code, message: Option<&str>) {
        let elapsed = self.start.elapsed().as_secs_f64();
        let unknown_method = code == Code::Unimplemented && self.side == Side::Server;
        let (service, method) =
            if unknown_method { (OTHER.to_owned(), OTHER.to_owned()) } else { (self.service, self.method) };
        let labels =
            [("rpc_service", service), ("rpc_method", method), ("rpc_grpc_status_code", (code as i32).to_string())];
        match self.side {
            Side::Server => self.metrics.histogram("rpc_server_duration_seconds", &labels).record(elapsed),
            Side::Client => self.metrics.histogram("rpc_client_duration_seconds", &labels).record(elapsed),
        }
        self.span.record("rpc.grpc.status_code", code as i64);
        if is_span_error(self.side, code) {
            self.span.record("otel.status_code", "error");
            self.span.record("otel.status_description", message.unwrap_or_else(|| code.description()));
        }
        // The body can end outside the call's span: enter it, so the line joins the call's trace
        // on stdout and over OTLP. Skipped for untraced health probes, and unless debug logs are
        // on, as entering costs.
        if !self.span.is_none() && tracing::enabled!(tracing::Level::DEBUG) {
            self.span.in_scope(|| {
                tracing::debug!(rpc.grpc.status_code = code as i32, duration_ms = elapsed * 1000.0, "Call finished");
            });
        }
    }
}

impl OnBodyEnd for CallRecord {
    fn on_end(mut self, end: BodyEnd<'_>) {
        // A trailers-only answer's status is final even if its (empty) body is never polled.
        let code = match end {
            BodyEnd::Trailers(trailers) => grpc_status(trailers).or(self.header_status),
            BodyEnd::Finished => self.header_status,
            BodyEnd::Aborted => self.header_status.or(Some(Code::Cancelled)),
        };
        let message = match end {
            BodyEnd::Trailers(trailers) => grpc_message(trailers),
            _ => None,
        };
        let message = message.or_else(|| self.header_message.take());
        self.finish(code.unwrap_or(Code::Unknown), message.as_deref());
    }
}

/// Server spans are errors only for codes that mean the server failed (OpenTelemetry's gRPC
/// conventions); client spans are errors for every non-OK code.
fn is_span_error(side: Side, code: Code) -> bool {
    match side {
        Side::Client => code != Code::Ok,
        Side::Server => matches!(
            code,
            Code::Unknown
                | Code::DeadlineExceeded
                | Code::Unimplemented
                | Code::Internal
                | Code::Unavailable
                | Code::DataLoss
        ),
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?;
    Some(Code::from_bytes(value.as_bytes()))
}

fn grpc_message(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("grpc-message")?.to_str().ok()?;
    Some(percent_decode(value))
}

/// grpc-message is percent-encoded on the wire (gRPC over HTTP/2 spec).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex()) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`); anything else is reported as `_OTHER`.
fn split_path(path: &str) -> (&str, &str) {
    path.strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .filter(|(service, method)| !service.is_empty() && !method.is_empty() && !method.contains('/'))
        .unwrap_or((OTHER, OTHER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_path_separates_service_and_method() {
        assert_eq!(
            split_path("/axiom25.matrix.v1.MatrixService/Multiply"),
            ("axiom25.matrix.v1.MatrixService", "Multiply")
        );
        assert_eq!(split_path("/"), (OTHER, OTHER));
        assert_eq!(split_path("/a/b/c"), (OTHER, OTHER));
        assert_eq!(split_path("nope"), (OTHER, OTHER));
    }

    #[test]
    fn grpc_message_is_percent_decoded() {
        assert_eq!(percent_decode("a%20is%202%C3%973"), "a is 2×3");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn server_spans_are_errors_only_for_server_faults() {
        assert!(!is_span_error(Side::Server, Code::InvalidArgument));
        assert!(is_span_error(Side::Server, Code::Unavailable));
        assert!(is_span_error(Side::Client, Code::InvalidArgument));
        assert!(!is_span_error(Side::Client, Code::Ok));
    }
}
