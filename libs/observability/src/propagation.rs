//! W3C trace-context propagation over HTTP headers (gRPC metadata travels as HTTP/2 headers).

use http::HeaderMap;
use opentelemetry::Context;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};

/// The context carried by `traceparent`/`tracestate` in `headers`, or an empty context.
#[must_use]
pub fn extract(headers: &HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)))
}

/// Writes `cx` into `headers` as `traceparent`/`tracestate`.
pub fn inject(cx: &Context, headers: &mut HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut HeaderInjector(headers));
    });
}
