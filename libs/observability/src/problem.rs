//! RFC 9457 problem documents (`application/problem+json`): the one error body of every HTTP API
//! of AXIOM-25, the ui-gateway's REST API and the telemetry-collector's query API alike.
//!
//! Beside the standard members (`type`, `title`, `status`, `detail`) a problem may carry two
//! extension members, `pointer` (a JSON pointer to the part of the request at fault) and `reason`
//! (the stable `ErrorInfo.reason` of the gRPC answer behind it), and a `Retry-After` header.

use std::num::NonZeroU64;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

/// Media type of every problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of the problem types AXIOM-25 defines, followed by a slug such as `invalid-argument`.
pub const TYPE_PREFIX: &str = "urn:axiom25:problem:";

/// An RFC 9457 problem document. The optional members are boxed so that a `Result<_, Problem>`
/// stays small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// URI naming the kind of problem, e.g. `urn:axiom25:problem:invalid-argument`, or
    /// `about:blank` when the status code says all there is.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong with this request, naming the field and value at fault.
    pub detail: String,
    /// JSON pointer to the part of the request body at fault (e.g. `/a/1/0`), when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<Box<str>>,
    /// Stable machine-readable reason, e.g. `SINGULAR_MATRIX`, when the service behind gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Box<str>>,
    /// Whole seconds to wait before trying again (429, 503); sent as `Retry-After`, not in the body.
    #[serde(skip)]
    retry_after: Option<NonZeroU64>,
}

impl Problem {
    /// A problem of `status`, of type `urn:axiom25:problem:{slug}`, titled `title`.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self::typed(status, format!("{TYPE_PREFIX}{slug}"), title.to_owned(), detail.into())
    }

    /// A problem whose status code says all there is: type `about:blank`, titled with the
    /// status's reason phrase (RFC 9457 §4.2.1).
    pub fn about_blank(status: StatusCode, detail: impl Into<String>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        Self::typed(status, "about:blank".to_owned(), title, detail.into())
    }

    const fn typed(status: StatusCode, kind: String, title: String, detail: String) -> Self {
        Self { kind, title, status: status.as_u16(), detail, pointer: None, reason: None, retry_after: None }
    }

    /// Points at the part of the body at fault.
    #[must_use]
    pub fn at(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into().into_boxed_str());
        self
    }

    /// Names the stable reason of the failure.
    #[must_use]
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into().into_boxed_str());
        self
    }

    /// Asks the client to wait before trying again (`Retry-After`, rounded up to whole seconds,
    /// at least 1).
    #[must_use]
    pub fn retry_after(mut self, after: Duration) -> Self {
        let seconds = after.as_secs().saturating_add(u64::from(after.subsec_nanos() > 0));
        self.retry_after = Some(NonZeroU64::new(seconds).unwrap_or(NonZeroU64::MIN));
        self
    }

    /// The `Retry-After` value in whole seconds, if one is asked for.
    #[must_use]
    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.retry_after.map(NonZeroU64::get)
    }

    /// 404 for a path no route serves.
    #[must_use]
    pub fn not_found(path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not Found", format!("no route serves {path}"))
    }

    /// 405 for a method a route does not serve.
    #[must_use]
    pub fn method_not_allowed(method: &http::Method, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method Not Allowed",
            format!("{path} does not accept {method}"),
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after_seconds();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response =
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))], body).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> serde_json::Value {
        use http_body_util::BodyExt as _;
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[test]
    fn a_result_of_a_problem_stays_small() {
        assert!(std::mem::size_of::<Problem>() <= 120, "{}", std::mem::size_of::<Problem>());
    }

    #[test]
    fn retry_after_is_rounded_up_to_at_least_one_second() {
        for (after, expected) in
            [(Duration::from_millis(1), "1"), (Duration::from_millis(1500), "2"), (Duration::ZERO, "1")]
        {
            let response =
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "x", "X", "x").retry_after(after).into_response();
            assert_eq!(response.headers()[header::RETRY_AFTER], expected);
        }
        let plain = Problem::new(StatusCode::BAD_REQUEST, "x", "X", "x").into_response();
        assert!(plain.headers().get(header::RETRY_AFTER).is_none());
    }

    #[tokio::test]
    async fn the_answer_is_an_rfc_9457_document_with_its_status_and_media_type() {
        let problem = Problem::new(StatusCode::BAD_REQUEST, "invalid-argument", "Invalid matrix", "row 1 has 3 values")
            .at("/a/1")
            .because("SHAPE_MISMATCH");
        let response = problem.clone().into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let json = body_of(response).await;
        assert_eq!(
            json,
            serde_json::json!({"type": "urn:axiom25:problem:invalid-argument", "title": "Invalid matrix",
                "status": 400, "detail": "row 1 has 3 values", "pointer": "/a/1", "reason": "SHAPE_MISMATCH"})
        );
        assert_eq!(serde_json::from_value::<Problem>(json).expect("reads back"), problem);
    }

    #[tokio::test]
    async fn without_extensions_only_the_standard_members_are_sent() {
        let json = body_of(Problem::about_blank(StatusCode::NOT_FOUND, "no trace ab").into_response()).await;
        assert_eq!(
            json,
            serde_json::json!({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no trace ab"})
        );
    }
}
