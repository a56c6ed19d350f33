//! Tower layer for axum servers: one server span per request (joining a W3C `traceparent`) and
//! `http_server_request_duration_seconds` with `http_request_method`, `http_route` (the route
//! template, never the raw path) and `http_response_status_code`.
//!
//! Add it with `Router::layer` so it runs after routing and sees [`axum::extract::MatchedPath`].

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::MatchedPath;
use http::{HeaderValue, Method, Request, Response};
use opentelemetry::trace::TraceContextExt;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::body::{BodyEnd, ObservedBody, OnBodyEnd, poll_recorded};
use crate::metrics::MetricsHandle;
use crate::propagation;

/// Route label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Traces and measures every request an axum router serves, into one application's registry.
#[derive(Debug, Clone)]
pub struct HttpServerLayer {
    trace_id_header: bool,
    metrics: MetricsHandle,
}

impl HttpServerLayer {
    /// A layer that traces and measures into `metrics`, which is also the recorder of whatever the
    /// handlers record.
    #[must_use]
    pub const fn new(metrics: MetricsHandle) -> Self {
        Self { trace_id_header: false, metrics }
    }

    /// Also answer every request with `x-trace-id`: the trace it started or joined.
    #[must_use]
    pub fn with_trace_id_header(mut self) -> Self {
        self.trace_id_header = true;
        self
    }
}

impl<S> Layer<S> for HttpServerLayer {
    type Service = HttpTelemetry<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HttpTelemetry { inner, trace_id_header: self.trace_id_header, metrics: self.metrics.clone() }
    }
}

/// The service produced by [`HttpServerLayer`].
#[derive(Debug, Clone)]
pub struct HttpTelemetry<S> {
    inner: S,
    trace_id_header: bool,
    metrics: MetricsHandle,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpTelemetry<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ObservedBody<ResBody, RequestRecord>>;
    type Error = S::Error;
    type Future = HttpFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let method = bounded_method(request.method());
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |path| path.as_str().to_owned());
        let span = tracing::info_span!(
            "http.server",
            otel.name = format!("{method} {route}"),
            otel.kind = "server",
            http.request.method = method,
            http.route = route.as_str(),
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        // A span disabled by the log filter has no context to join; that is fine.
        let _ = span.set_parent(propagation::extract(request.headers()));
        let trace_id = self.trace_id_header.then(|| span.context().span().span_context().trace_id().to_string());
        let record = RequestRecord {
            method,
            route,
            status: 0,
            start: Instant::now(),
            span: span.clone(),
            metrics: self.metrics.clone(),
        };
        let inner = self.metrics.in_scope(|| span.in_scope(|| self.inner.call(request)));
        HttpFuture { inner, record: Some(record), trace_id }
    }
}

pin_project! {
    /// Response future of [`HttpTelemetry`].
    pub struct HttpFuture<F> {
        #[pin]
        inner: F,
        record: Option<RequestRecord>,
        trace_id: Option<String>,
    }
}

impl<F, ResBody, E> Future for HttpFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ObservedBody<ResBody, RequestRecord>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (result, mut record) =
            ready!(poll_recorded(this.inner, this.record, cx, |record| (&record.span, &record.metrics)));
        Poll::Ready(result.map(|mut response| {
            record.status = response.status().as_u16();
            if let Some(value) = this.trace_id.take().and_then(|id| HeaderValue::from_str(&id).ok()) {
                response.headers_mut().insert("x-trace-id", value);
            }
            response.map(|body| ObservedBody::new(body, record))
        }))
    }
}

/// What one request records when its response body ends.
#[derive(Debug)]
pub struct RequestRecord {
    method: &'static str,
    route: String,
    status: u16,
    start: Instant,
    span: Span,
    metrics: MetricsHandle,
}

impl OnBodyEnd for RequestRecord {
    fn on_end(self, _end: BodyEnd<'_>) {
        let labels = [
            ("http_request_method", self.method.to_owned()),
            ("http_route", self.route),
            ("http_response_status_code", self.status.to_string()),
        ];
        self.metrics
            .histogram("http_server_request_duration_seconds", &labels)
            .record(self.start.elapsed().as_secs_f64());
        self.span.record("http.response.status_code", i64::from(self.status));
        if self.status >= 500 {
            self.span.record("otel.status_code", "error");
        }
    }
}

/// The request method as a label: the registered methods, anything else `_OTHER`.
fn bounded_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => crate::grpc::OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(bounded_method(&Method::POST), "POST");
        assert_eq!(bounded_method(&Method::from_bytes(b"BREW").expect("method")), "_OTHER");
    }
}
