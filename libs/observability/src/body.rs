//! A response body wrapper that reports once when the exchange ends: on trailers, on the end of
//! the stream, or when the body is dropped early (client gone). RED metrics and spans use it so a
//! call is measured to its last byte and gRPC statuses sent in trailers are seen.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tracing::Span;

use crate::metrics::MetricsHandle;

/// How the body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd<'a> {
    /// The body sent these trailers.
    Trailers(&'a HeaderMap),
    /// The body ended without trailers.
    Finished,
    /// The body failed or was dropped before its end.
    Aborted,
}

/// Called once when the body ends.
pub trait OnBodyEnd: Send + 'static {
    /// Consumes the callback with how the body ended.
    fn on_end(self, end: BodyEnd<'_>);
}

/// Polls a response future inside the span and registry `scope` finds in its record; once it is
/// ready, hands out its output with the record, which moves on to the response body.
///
/// # Panics
/// When polled again after that.
pub(crate) fn poll_recorded<F: Future, R>(
    inner: Pin<&mut F>,
    record: &mut Option<R>,
    cx: &mut Context<'_>,
    scope: fn(&R) -> (&Span, &MetricsHandle),
) -> Poll<(F::Output, R)> {
    let output = ready!(match record.as_ref() {
        Some(record) => {
            let (span, metrics) = scope(record);
            metrics.in_scope(|| span.in_scope(|| inner.poll(cx)))
        }
        None => inner.poll(cx),
    });
    let record = record.take().expect("a telemetry future polled after completion");
    Poll::Ready((output, record))
}

pin_project! {
    /// Wraps `B`, calling `F` once when it ends.
    pub struct ObservedBody<B, F: OnBodyEnd> {
        #[pin]
        inner: B,
        on_end: Option<F>,
    }

    impl<B, F: OnBodyEnd> PinnedDrop for ObservedBody<B, F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(on_end) = this.project().on_end.take() {
                on_end.on_end(BodyEnd::Aborted);
            }
        }
    }
}

impl<B, F: OnBodyEnd> ObservedBody<B, F> {
    /// Wraps `inner`.
    pub const fn new(inner: B, on_end: F) -> Self {
        Self { inner, on_end: Some(on_end) }
    }
}

impl<B: Body, F: OnBodyEnd> Body for ObservedBody<B, F> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(on_end) = this.on_end.take()
                {
                    on_end.on_end(BodyEnd::Trailers(trailers));
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(on_end) = this.on_end.take() {
                    on_end.on_end(BodyEnd::Aborted);
                }
            }
            Poll::Ready(None) => {
                if let Some(on_end) = this.on_end.take() {
                    on_end.on_end(BodyEnd::Finished);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
