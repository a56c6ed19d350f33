//! What makes the gateway safe to expose: API keys (a mounted file of key hashes, compared in
//! constant time), a rate limit per key or per client address, CORS closed unless configured, and
//! the security headers every answer carries.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::problem::Problem;
use crate::settings::{AuthSettings, CorsSettings, RateLimitSettings};

/// Header that may carry the API key instead of `Authorization: Bearer`.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The Content-Security-Policy of every answer: nothing inline, nothing from another host.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Why the key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not `sha256:<64 hex>`.
    #[error("{path}:{line}: expected sha256:<64 hex digits>, a comment (#) or an empty line")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// The file holds no key: every request would be refused.
    #[error("{0}: holds no key hash; unset auth.api_keys_file to turn keys off")]
    Empty(PathBuf),
}

/// The accepted API keys, as SHA-256 hashes read from a file, re-read when it changes.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    path: PathBuf,
    hashes: Arc<RwLock<Arc<Vec<[u8; 32]>>>>,
    modified: Arc<RwLock<Option<SystemTime>>>,
}

/// The hash under which a key is stored in the key file (`sha256:<hex>`).
#[must_use]
pub fn key_hash_line(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

fn parse_key_file(path: &std::path::Path, text: &str) -> Result<Vec<[u8; 32]>, KeyFileError> {
    let mut hashes = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || KeyFileError::Line { path: path.to_owned(), line: index + 1 };
        let hex = line.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() != 64 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut hash = [0_u8; 32];
        for (slot, pair) in hash.iter_mut().zip(hex.as_bytes().chunks(2)) {
            *slot = u8::from_str_radix(std::str::from_utf8(pair).map_err(|_| bad())?, 16).map_err(|_| bad())?;
        }
        hashes.push(hash);
    }
    if hashes.is_empty() {
        return Err(KeyFileError::Empty(path.to_owned()));
    }
    Ok(hashes)
}

fn read_key_file(path: &std::path::Path) -> Result<(Vec<[u8; 32]>, Option<SystemTime>), KeyFileError> {
    let read = |source| KeyFileError::Read { path: path.to_owned(), source };
    let modified = std::fs::metadata(path).map_err(read)?.modified().ok();
    let text = std::fs::read_to_string(path).map_err(read)?;
    Ok((parse_key_file(path, &text)?, modified))
}

impl ApiKeys {
    /// Reads the key file, if one is configured.
    ///
    /// # Errors
    /// When the file cannot be read, a line is malformed or no key is in it.
    pub fn load(settings: &AuthSettings) -> Result<Option<Self>, KeyFileError> {
        let Some(path) = &settings.api_keys_file else { return Ok(None) };
        let (hashes, modified) = read_key_file(path)?;
        tracing::info!(path = %path.display(), keys = hashes.len(), "API keys loaded");
        Ok(Some(Self {
            path: path.clone(),
            hashes: Arc::new(RwLock::new(Arc::new(hashes))),
            modified: Arc::new(RwLock::new(modified)),
        }))
    }

    /// Re-reads the file whenever its modification time changes (a Secret volume swaps it by a
    /// symlink). A bad new file is logged and counted; the keys in use stay.
    pub async fn run_reloader(self, interval: Duration) {
        loop {
            tokio::time::sleep(interval).await;
            let modified = std::fs::metadata(&self.path).ok().and_then(|metadata| metadata.modified().ok());
            if modified == *self.modified.read().unwrap_or_else(std::sync::PoisonError::into_inner) {
                continue;
            }
            match read_key_file(&self.path) {
                Ok((hashes, modified)) => {
                    tracing::info!(path = %self.path.display(), keys = hashes.len(), "API keys reloaded");
                    *self.hashes.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(hashes);
                    *self.modified.write().unwrap_or_else(std::sync::PoisonError::into_inner) = modified;
                }
                Err(error) => {
                    metrics::counter!("axiom25_gateway_api_key_reload_failures_total").increment(1);
                    tracing::error!(error = %error, "Reloading the API keys failed; keeping the previous keys");
                }
            }
        }
    }

    /// The hash of `presented` when it is an accepted key. Every stored hash is compared, each in
    /// constant time, so the time taken tells nothing about which bytes or which key matched.
    #[must_use]
    pub fn verify(&self, presented: &str) -> Option<[u8; 32]> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let hashes = self.hashes.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let matched = hashes.iter().fold(subtle::Choice::from(0), |found, hash| found | hash.ct_eq(&digest));
        bool::from(matched).then_some(digest)
    }
}

/// Who a request is counted against by the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// An API key, by its hash.
    Key([u8; 32]),
    /// A client address, when keys are off.
    Address(IpAddr),
}

/// A token bucket per client.
#[derive(Debug, Clone)]
pub struct RateLimit {
    limiter: Option<Arc<DefaultKeyedRateLimiter<Client>>>,
}

impl RateLimit {
    /// The limit of `settings`; off when `requests_per_second` is 0. Buckets of clients that have
    /// gone quiet are dropped every minute, so the table stays bounded by recent clients.
    #[must_use]
    pub fn new(settings: &RateLimitSettings) -> Self {
        let (Some(rate), Some(burst)) =
            (NonZeroU32::new(settings.requests_per_second), NonZeroU32::new(settings.burst))
        else {
            return Self { limiter: None };
        };
        let limiter = Arc::new(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)));
        let weak = Arc::downgrade(&limiter);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    let Some(limiter) = weak.upgrade() else { return };
                    limiter.retain_recent();
                    limiter.shrink_to_fit();
                }
            });
        }
        Self { limiter: Some(limiter) }
    }

    /// `Err(wait)` when `client` is over its rate.
    ///
    /// # Errors
    /// How long until the client may send again.
    pub fn check(&self, client: &Client) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        limiter.check_key(client).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// State of the [`guard`] middleware.
#[derive(Debug, Clone)]
pub struct Guard {
    keys: Option<ApiKeys>,
    rate_limit: RateLimit,
}

impl Guard {
    /// Keys (if configured) and the rate limit.
    #[must_use]
    pub const fn new(keys: Option<ApiKeys>, rate_limit: RateLimit) -> Self {
        Self { keys, rate_limit }
    }
}

fn presented_key(headers: &http::HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    headers.get(API_KEY_HEADER).and_then(|value| value.to_str().ok()).map(str::trim)
}

/// Refuses requests without a valid key (401) or over their rate (429 with `Retry-After`).
pub async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    let client = match &guard.keys {
        Some(keys) => match presented_key(request.headers()) {
            None => {
                return unauthorized(
                    "missing",
                    "send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                );
            }
            Some(key) => match keys.verify(key) {
                Some(hash) => Client::Key(hash),
                None => return unauthorized("invalid", "the API key is not valid"),
            },
        },
        None => {
            let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
            Client::Address(peer.unwrap_or(IpAddr::from([0, 0, 0, 0])))
        }
    };
    if let Err(wait) = guard.rate_limit.check(&client) {
        metrics::counter!("axiom25_gateway_rate_limited_total").increment(1);
        return rate_limited(wait);
    }
    next.run(request).await
}

/// The 429 for a client that may send again after `wait`. `Retry-After` counts whole seconds
/// (RFC 9110 §10.2.3), so the wait is rounded up once and the detail names the same figure.
fn rate_limited(wait: Duration) -> Response {
    let seconds = wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0)).max(1);
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too Many Requests",
        format!("over the request rate; try again in {seconds} s"),
    )
    .retry_after(Duration::from_secs(seconds))
    .into_response()
}

fn unauthorized(reason: &'static str, detail: &str) -> Response {
    metrics::counter!("axiom25_gateway_auth_failures_total", "reason" => reason).increment(1);
    let mut response = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", detail).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"axiom25\""));
    response
}

/// The CORS layer, when origins are configured; none otherwise, so browsers keep the same-origin
/// policy. It allows the listed origins on the REST API (`/api/v1/`) only, never on the pages.
/// It wraps the whole router: a preflight must be answered before routing answers 405 to OPTIONS.
#[must_use]
pub fn cors(settings: &CorsSettings) -> Option<CorsLayer> {
    if settings.allowed_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> =
        settings.allowed_origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()).collect();
    let allowed = move |origin: &HeaderValue, request: &http::request::Parts| {
        request.uri.path().starts_with("/api/v1/") && origins.contains(origin)
    };
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(allowed))
            .allow_methods([Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static(API_KEY_HEADER),
                HeaderName::from_static("traceparent"),
                HeaderName::from_static("tracestate"),
            ])
            .expose_headers([HeaderName::from_static("x-trace-id"), header::RETRY_AFTER])
            .max_age(Duration::from_secs(settings.max_age_seconds)),
    )
}

type SetHeader = SetResponseHeaderLayer<HeaderValue>;

/// The security headers of every answer, pages, API and errors alike.
#[must_use]
#[allow(clippy::type_complexity)]
pub fn headers() -> ServiceBuilder<
    Stack<
        SetHeader,
        Stack<SetHeader, Stack<SetHeader, Stack<SetHeader, Stack<SetHeader, Stack<SetHeader, Identity>>>>>,
    >,
> {
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    ServiceBuilder::new()
        .layer(set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
        .layer(set(HeaderName::from_static("cross-origin-opener-policy"), "same-origin"))
        .layer(set(
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=()",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> ApiKeys {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        let settings = AuthSettings { api_keys_file: Some(file.path().to_owned()), ..AuthSettings::default() };
        ApiKeys::load(&settings).unwrap().unwrap()
    }

    #[test]
    fn a_key_is_accepted_only_when_its_hash_is_listed() {
        let keys = keys(&format!("# operators\n{}\n\n{}\n", key_hash_line("alpha"), key_hash_line("beta")));
        assert!(keys.verify("alpha").is_some());
        assert!(keys.verify("beta").is_some());
        assert!(keys.verify("gamma").is_none());
        assert!(keys.verify("").is_none());
        assert_ne!(keys.verify("alpha"), keys.verify("beta"));
    }

    #[test]
    fn a_malformed_line_is_refused_with_its_number() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("{}\nplain-key\n", key_hash_line("a"))).unwrap();
        let settings = AuthSettings { api_keys_file: Some(file.path().to_owned()), ..AuthSettings::default() };
        let error = ApiKeys::load(&settings).unwrap_err().to_string();
        assert!(error.ends_with(":2: expected sha256:<64 hex digits>, a comment (#) or an empty line"), "{error}");
    }

    #[test]
    fn a_file_without_keys_is_refused() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "# nothing\n").unwrap();
        let settings = AuthSettings { api_keys_file: Some(file.path().to_owned()), ..AuthSettings::default() };
        assert!(matches!(ApiKeys::load(&settings), Err(KeyFileError::Empty(_))));
    }

    #[tokio::test]
    async fn a_changed_key_file_is_picked_up_and_a_broken_one_is_ignored() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), key_hash_line("old")).unwrap();
        let settings = AuthSettings { api_keys_file: Some(file.path().to_owned()), ..AuthSettings::default() };
        let keys = ApiKeys::load(&settings).unwrap().unwrap();
        tokio::spawn(keys.clone().run_reloader(Duration::from_millis(10)));
        // A different modification time even on file systems with coarse timestamps.
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::write(file.path(), key_hash_line("new")).unwrap();
        std::fs::File::options().write(true).open(file.path()).unwrap().set_modified(later).unwrap();
        for _ in 0..200 {
            if keys.verify("new").is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(keys.verify("new").is_some() && keys.verify("old").is_none());
        std::fs::write(file.path(), "garbage").unwrap();
        std::fs::File::options()
            .write(true)
            .open(file.path())
            .unwrap()
            .set_modified(later + Duration::from_secs(5))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(keys.verify("new").is_some());
    }

    #[test]
    fn the_bearer_scheme_and_the_header_both_carry_a_key() {
        let mut headers = http::HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
        assert_eq!(presented_key(&headers), Some("s3cret"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic czNjcmV0"));
        assert_eq!(presented_key(&headers), None);
        let mut headers = http::HeaderMap::new();
        headers.insert(API_KEY_HEADER, HeaderValue::from_static("s3cret"));
        assert_eq!(presented_key(&headers), Some("s3cret"));
    }

    #[test]
    fn a_client_over_its_burst_is_told_when_to_come_back() {
        let limit = RateLimit::new(&RateLimitSettings { requests_per_second: 1, burst: 2 });
        let client = Client::Address(IpAddr::from([10, 0, 0, 1]));
        assert!(limit.check(&client).is_ok());
        assert!(limit.check(&client).is_ok());
        let wait = limit.check(&client).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limit.check(&Client::Address(IpAddr::from([10, 0, 0, 2]))).is_ok());
    }

    #[test]
    fn keyed_clients_behind_one_address_each_have_their_own_bucket() {
        let limit = RateLimit::new(&RateLimitSettings { requests_per_second: 1, burst: 1 });
        let (first, second) = (Client::Key([1; 32]), Client::Key([2; 32]));
        assert!(limit.check(&first).is_ok());
        assert!(limit.check(&first).is_err());
        assert!(limit.check(&second).is_ok(), "another key is not charged for the first one's calls");
    }

    async fn detail_and_retry_after(wait: Duration) -> (String, String) {
        use http_body_util::BodyExt as _;
        let response = rate_limited(wait);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after = response.headers()[header::RETRY_AFTER].to_str().unwrap().to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (problem["detail"].as_str().unwrap().to_owned(), retry_after)
    }

    #[tokio::test]
    async fn the_429_detail_names_the_wait_that_retry_after_gives() {
        for (wait, seconds) in
            [(Duration::from_millis(1), "1"), (Duration::from_millis(1_500), "2"), (Duration::from_secs(3), "3")]
        {
            let (detail, retry_after) = detail_and_retry_after(wait).await;
            assert_eq!(retry_after, seconds, "{wait:?}");
            assert!(detail.ends_with(&format!("try again in {seconds} s")), "{wait:?}: {detail}");
        }
    }
}
