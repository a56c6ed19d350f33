//! `x-axiom25-release` (docs/contracts.md §8): the api names the release (`<color>/<version>`) that
//! answered each call in its metadata; this layer copies it into the REST answer's header of the
//! same name, so a REST client can see which release served it. The backend records the value in
//! a task-local slot that this middleware opens around each request (handlers run in the
//! request's task), so no handler signature changes.

use std::cell::RefCell;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;

/// The header (and api metadata) name.
pub const RELEASE_HEADER: &str = "x-axiom25-release";

tokio::task_local! {
    static RELEASE: RefCell<Option<HeaderValue>>;
}

/// Remembers the release named in an api answer's `metadata`, when a request is being served.
pub fn record(metadata: &tonic::metadata::MetadataMap) {
    let Some(value) = metadata.get(RELEASE_HEADER) else { return };
    let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) else { return };
    // Outside a request (health probes, tests calling the backend directly) there is no slot.
    let _ = RELEASE.try_with(|slot| *slot.borrow_mut() = Some(value));
}

/// Middleware: copies the release of the request's last api answer into the response.
pub async fn copy_release_header(request: Request, next: Next) -> Response {
    RELEASE
        .scope(RefCell::new(None), async move {
            let mut response = next.run(request).await;
            if let Some(value) = RELEASE.with(|slot| slot.borrow_mut().take()) {
                response.headers_mut().insert(RELEASE_HEADER, value);
            }
            response
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn answered_by_api(blue: bool) -> &'static str {
        if blue {
            let mut metadata = tonic::metadata::MetadataMap::new();
            metadata.insert(RELEASE_HEADER, "blue/1.2.3".parse().expect("ascii"));
            record(&metadata);
        }
        "ok"
    }

    #[tokio::test]
    async fn the_release_of_the_api_answer_becomes_the_rest_header_and_only_then() {
        let app = Router::new()
            .route("/api", get(|| answered_by_api(true)))
            .route("/static", get(|| answered_by_api(false)))
            .layer(axum::middleware::from_fn(copy_release_header));
        let request = |path: &str| Request::builder().uri(path).body(axum::body::Body::empty()).expect("request");
        let api = app.clone().oneshot(request("/api")).await.expect("answer");
        assert_eq!(api.headers()[RELEASE_HEADER], "blue/1.2.3");
        let other = app.oneshot(request("/static")).await.expect("answer");
        assert!(other.headers().get(RELEASE_HEADER).is_none());
    }

    #[test]
    fn recording_outside_a_request_is_harmless() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(RELEASE_HEADER, "green/2".parse().expect("ascii"));
        record(&metadata);
    }
}
