//! Every error answer of the gateway: `application/problem+json` (RFC 9457), built in this one place
//! from the REST layer's and the api's errors (CONTRACTS §3).

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// URI naming the kind of problem, e.g. `urn:axiom25:problem:invalid-matrix`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong with this request, naming the field and value at fault.
    pub detail: String,
    /// JSON pointer to the part of the request body at fault (e.g. `/a/1`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Seconds to wait before trying again (429, 503), as in `Retry-After`.
    #[serde(skip)]
    #[schema(ignore)]
    pub retry_after: Option<Duration>,
}

impl Problem {
    /// A problem of `status`, kind `slug`, titled `title`.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:axiom25:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            pointer: None,
            retry_after: None,
        }
    }

    /// Points at the part of the body at fault.
    #[must_use]
    pub fn at(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }

    /// Asks the client to wait before trying again (`Retry-After`, rounded up to whole seconds,
    /// at least 1).
    #[must_use]
    pub const fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
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
        let retry_after = self.retry_after.map(|after| after.as_secs() + u64::from(after.subsec_nanos() > 0));
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response =
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))], body).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_rounded_up_to_at_least_one_second() {
        for (after, expected) in
            [(Duration::from_millis(1), "1"), (Duration::from_millis(1500), "2"), (Duration::ZERO, "1")]
        {
            let response =
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "x", "X", "x").retry_after(after).into_response();
            assert_eq!(response.headers()[header::RETRY_AFTER], expected);
        }
    }

    #[test]
    fn the_body_is_rfc_9457() {
        let problem =
            Problem::new(StatusCode::BAD_REQUEST, "invalid-matrix", "Invalid matrix", "row 1 has 3 values").at("/a/1");
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "urn:axiom25:problem:invalid-matrix", "title": "Invalid matrix", "status": 400,
                "detail": "row 1 has 3 values", "pointer": "/a/1"})
        );
    }
}
