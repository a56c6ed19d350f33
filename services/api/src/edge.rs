//! The api's outermost own layer, where two docs/contracts.md §2 rows are enforced for every call:
//!
//! - DEADLINE_EXCEEDED: the client's `grpc-timeout` is measured from arrival, so it covers
//!   decoding as well as computing. When it passes the call is answered and its future dropped,
//!   which cancels the computation (see [`crate::compute`]). tonic's own timer would answer
//!   CANCELLED at the same instant, so the answer is due a little earlier (2 %, at least 2 ms).
//! - RESOURCE_EXHAUSTED for an oversize request message, where tonic's decoder answers
//!   OUT_OF_RANGE. The service itself never answers OUT_OF_RANGE, so the mapping is unambiguous.
//!
//! Both answers carry their `ErrorInfo` (see [`crate::error`]) like every other error.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tonic::Status;
use tower::Service;

use crate::error::{ApiError, Reason};
use crate::layer::{ConfigLayer, Configured, Intercept};

/// See the module documentation.
pub type EdgeLayer = ConfigLayer<MessageLimit>;

/// The service produced by [`EdgeLayer`].
pub type Edge<S> = Configured<MessageLimit, S>;

/// The largest request message the server accepts, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct MessageLimit(usize);

impl EdgeLayer {
    /// A layer for a server whose message limit is `max_message_bytes`.
    #[must_use]
    pub const fn new(max_message_bytes: usize) -> Self {
        Self::with_config(MessageLimit(max_message_bytes))
    }
}

impl<S, ReqBody, ResBody> Intercept<S, ReqBody> for MessageLimit
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Future = EdgeFuture<S::Future>;

    fn intercept(&self, inner: &mut S, request: Request<ReqBody>) -> Self::Future {
        let timeout = request.headers().get("grpc-timeout").and_then(|value| value.to_str().ok());
        let deadline = deadline_from(timeout, Instant::now()).map(tokio::time::sleep_until);
        EdgeFuture { inner: inner.call(request), deadline, max_message_bytes: self.0 }
    }
}

pin_project! {
    /// Response future of [`Edge`].
    pub struct EdgeFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        deadline: Option<Sleep>,
        max_message_bytes: usize,
    }
}

impl<F, ResBody, E> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.poll(cx) {
            Poll::Ready(Ok(response)) => response,
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Pending => {
                if let Some(deadline) = this.deadline.as_pin_mut()
                    && deadline.poll(cx).is_ready()
                {
                    metrics::counter!("axiom25_api_deadline_exceeded_total").increment(1);
                    let status =
                        ApiError::new(Reason::DeadlineExceeded, "the client's deadline passed; the call was abandoned");
                    return Poll::Ready(Ok(Status::from(status).into_http()));
                }
                return Poll::Pending;
            }
        };
        let headers = response.headers_mut();
        if headers.get("grpc-status").is_some_and(|code| code == "11") {
            let message = format!(
                "request message exceeds the limit of {} bytes (limits.max_message_bytes)",
                this.max_message_bytes
            );
            let status = Status::from(
                ApiError::new(Reason::MessageTooLarge, message).meta("maxMessageBytes", *this.max_message_bytes),
            );
            // Replaces grpc-status, grpc-message and grpc-status-details-bin; it fails only for
            // a message that is not a valid header, which this one always is.
            if status.add_header(headers).is_err() {
                headers.insert("grpc-status", HeaderValue::from_static("8"));
            }
        }
        Poll::Ready(Ok(response))
    }
}

/// The instant a call with `grpc-timeout` arriving at `arrived` must be answered by.
#[must_use]
pub fn deadline_from(grpc_timeout: Option<&str>, arrived: Instant) -> Option<Instant> {
    let timeout = parse_grpc_timeout(grpc_timeout?)?;
    let margin = (timeout / 50).max(Duration::from_millis(2));
    Some(arrived + timeout.saturating_sub(margin))
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (gRPC over HTTP/2 spec).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::{Layer as _, ServiceExt};

    #[test]
    fn grpc_timeouts_parse_per_the_spec() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("5u"), Some(Duration::from_micros(5)));
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
    }

    #[test]
    fn the_answer_is_due_slightly_before_the_clients_deadline() {
        let now = Instant::now();
        assert_eq!(deadline_from(Some("1S"), now), Some(now + Duration::from_millis(980)));
        assert_eq!(deadline_from(Some("10m"), now), Some(now + Duration::from_millis(8)));
        assert_eq!(deadline_from(None, now), None);
    }

    fn grpc_request(timeout: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(timeout) = timeout {
            request.headers_mut().insert("grpc-timeout", HeaderValue::from_str(timeout).expect("ascii"));
        }
        request
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_still_running_at_its_deadline_is_answered_deadline_exceeded_and_dropped() {
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        let guard = std::sync::Mutex::new(Some(dropped_tx));
        let slow = tower::service_fn(move |_: Request<()>| {
            let guard = guard.lock().expect("lock").take();
            async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(guard);
                Ok::<_, Infallible>(Response::new(String::new()))
            }
        });
        let response = EdgeLayer::new(1024).layer(slow).oneshot(grpc_request(Some("100m"))).await.expect("response");
        assert_eq!(response.headers()["grpc-status"], "4");
        let status = Status::from_header_map(response.headers()).expect("a status");
        let reason = tonic_types::StatusExt::get_error_details(&status).error_info().map(|info| info.reason.clone());
        assert_eq!(reason.as_deref(), Some("DEADLINE_EXCEEDED"));
        assert!(dropped_rx.await.is_err(), "the call's future was dropped, not left running");
    }

    #[tokio::test]
    async fn an_oversize_message_is_resource_exhausted_not_out_of_range() {
        let decoder_refusal = tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Status::out_of_range("too large").into_http())
        });
        let response: Response<String> =
            EdgeLayer::new(4096).layer(decoder_refusal).oneshot(grpc_request(None)).await.expect("response");
        assert_eq!(response.headers()["grpc-status"], "8");
        let status = Status::from_header_map(response.headers()).expect("a status");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("4096 bytes"), "{}", status.message());
        let details = tonic_types::StatusExt::get_error_details(&status);
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!((info.reason.as_str(), info.metadata["maxMessageBytes"].as_str()), ("MESSAGE_TOO_LARGE", "4096"));
    }
}
