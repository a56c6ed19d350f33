//! Which release this process is (docs/contracts.md §8): its colour and version, stamped on every answer
//! as the `x-axiom25-release` metadata and exported as `axiom25_release_info{color, version}`, so
//! every api metric can be split by colour and version with a join on `instance`.

use futures_util::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use tower::Service;

use crate::layer::{ConfigLayer, Configured, Intercept};

/// Name of the metadata (and of the gateway's REST header) naming the release that answered.
pub const RELEASE_HEADER: &str = "x-axiom25-release";

axiom25_observability::settings_section! {
    /// The blue/green track this process belongs to, and the version it was deployed as.
    pub struct ReleaseSettings {
        /// `blue`, `green`, or empty when the api runs outside blue/green.
        #[schemars(extend("enum" = ["", "blue", "green"]))]
        pub color: String,
        /// The deployed version (the image tag); empty means this build's version.
        #[schemars(regex(pattern = r"^[A-Za-z0-9._+-]{0,128}$"))]
        pub version: String,
    }
}

impl ReleaseSettings {
    /// Problems with these settings, each naming its key under `prefix`.
    #[must_use]
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if !matches!(self.color.as_str(), "" | "blue" | "green") {
            problems.push(format!("{prefix}.color: must be blue, green or empty, got {:?}", self.color));
        }
        if !self.version.chars().all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c)) || self.version.len() > 128 {
            problems.push(format!("{prefix}.version: at most 128 of [A-Za-z0-9._+-], got {:?}", self.version));
        }
        problems
    }

    /// `<color>/<version>`, with `none` for no colour and `build_version` for no version.
    #[must_use]
    pub fn identity(&self, build_version: &str) -> String {
        let color = if self.color.is_empty() { "none" } else { &self.color };
        let version = if self.version.is_empty() { build_version } else { &self.version };
        format!("{color}/{version}")
    }
}

/// Records `axiom25_release_info{color, version} 1` for `identity` (`<color>/<version>`).
pub fn record_release_info(identity: &str) {
    let (color, version) = identity.split_once('/').unwrap_or((identity, ""));
    metrics::describe_gauge!(
        "axiom25_release_info",
        "Blue/green colour and deployed version of this process; always 1."
    );
    metrics::gauge!("axiom25_release_info", "color" => color.to_owned(), "version" => version.to_owned()).set(1.0);
}

/// Adds `x-axiom25-release: <color>/<version>` to every answer's headers (gRPC initial metadata,
/// or the trailers-only answer of an error).
pub type ReleaseLayer = ConfigLayer<HeaderValue>;

/// The service produced by [`ReleaseLayer`].
pub type ReleaseStamp<S> = Configured<HeaderValue, S>;

impl ReleaseLayer {
    /// A layer stamping `identity`.
    ///
    /// # Panics
    /// When `identity` is not a valid header value, which [`ReleaseSettings::validate`] rules out.
    #[must_use]
    pub fn new(identity: &str) -> Self {
        Self::with_config(HeaderValue::from_str(identity).expect("validated release identity"))
    }
}

impl<S, ReqBody, ResBody> Intercept<S, ReqBody> for HeaderValue
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn intercept(&self, inner: &mut S, request: Request<ReqBody>) -> Self::Future {
        let value = self.clone();
        let answer = inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            response.headers_mut().insert(RELEASE_HEADER, value);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::{Layer as _, ServiceExt};

    #[test]
    fn the_identity_names_colour_and_version_with_defaults() {
        let blue = ReleaseSettings { color: "blue".into(), version: "1.2.3".into() };
        assert_eq!(blue.identity("0.1.0"), "blue/1.2.3");
        assert_eq!(ReleaseSettings::default().identity("0.1.0"), "none/0.1.0");
    }

    #[test]
    fn an_unknown_colour_or_a_version_that_is_no_tag_is_refused() {
        let bad = ReleaseSettings { color: "red".into(), version: "a b".into() };
        let problems = bad.validate("release").join("\n");
        assert!(problems.contains("release.color"), "{problems}");
        assert!(problems.contains("release.version"), "{problems}");
        assert!(ReleaseSettings { color: "green".into(), version: "r2-1.0+x".into() }.validate("release").is_empty());
    }

    #[tokio::test]
    async fn every_answer_carries_the_release_header_errors_included() {
        let failing = tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(tonic::Status::internal("broken").into_http::<String>())
        });
        let response = ReleaseLayer::new("green/2.0.0").layer(failing).oneshot(Request::new(())).await.expect("answer");
        assert_eq!(response.headers()[RELEASE_HEADER], "green/2.0.0");
        assert_eq!(response.headers()["grpc-status"], "13");
    }
}
