//! Typed settings of the ui-gateway (CONTRACTS §1, §3): defaults here, overridden by `--config FILE`
//! and `AXIOM25__SECTION__KEY` variables; see `docs/ui-gateway.md`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use axiom25_observability::config::{self, ConfigError, Sources, Validate, check_distinct_ports};
use axiom25_observability::shutdown::ShutdownSettings;
use axiom25_observability::telemetry::TelemetrySettings;
use serde::Deserialize;

/// Everything the gateway can be configured with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Listeners.
    pub server: ServerSettings,
    /// The gRPC client of the api.
    pub api: ApiSettings,
    /// Request body and matrix size limits of the REST API.
    pub limits: LimitSettings,
    /// API keys of the REST API.
    pub auth: AuthSettings,
    /// Request rate limit per API key (or per client address without keys).
    pub rate_limit: RateLimitSettings,
    /// Cross-origin requests to the REST API.
    pub cors: CorsSettings,
    /// Where the operations view reads health, span metrics and traces.
    pub ops: OpsSettings,
    /// Graceful shutdown.
    pub shutdown: ShutdownSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
}

/// Listeners.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address both listeners bind.
    pub host: IpAddr,
    /// Public HTTP port (web UI and REST API); 0 picks a free one.
    pub http_port: u16,
    /// Admin HTTP port (`/livez`, `/readyz`, `/metrics`); 0 picks a free one.
    pub admin_port: u16,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self { host: IpAddr::from([0, 0, 0, 0]), http_port: 8080, admin_port: 8082 }
    }
}

/// The gRPC client of the api.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// `http://host:port` of the api. A host name is resolved again every `resolve_interval_ms`
    /// and calls are spread over every address it resolves to (a headless Service in Kubernetes).
    pub endpoint: String,
    /// Time a REST request may spend on the api, retries included; sent as the gRPC timeout.
    pub deadline_ms: u64,
    /// Time to establish a connection to one api address.
    pub connect_timeout_ms: u64,
    /// Interval between resolutions of the endpoint's host name.
    pub resolve_interval_ms: u64,
    /// Attempts per request (1 disables retries). Only UNAVAILABLE is retried.
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles per retry, with jitter.
    pub retry_backoff_ms: u64,
    /// Longest backoff between two attempts.
    pub retry_max_backoff_ms: u64,
    /// Retries allowed as a percentage of recent requests (the retry budget), so that retries
    /// cannot multiply the load of an api that is already failing.
    pub retry_budget_percent: u32,
    /// Retries per second always allowed by the budget, whatever the request rate.
    pub retry_budget_min_per_second: u32,
    /// Largest answer accepted from the api, in bytes.
    pub max_response_bytes: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:50051".into(),
            deadline_ms: 10_000,
            connect_timeout_ms: 1_000,
            resolve_interval_ms: 5_000,
            max_attempts: 3,
            retry_backoff_ms: 25,
            retry_max_backoff_ms: 250,
            retry_budget_percent: 20,
            retry_budget_min_per_second: 10,
            max_response_bytes: 64 * 1024 * 1024,
        }
    }
}

impl ApiSettings {
    /// The per-request deadline.
    #[must_use]
    pub const fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
}

/// Request body and matrix size limits of the REST API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Largest accepted request body, in bytes (413 above).
    pub max_body_bytes: usize,
    /// Largest accepted row count of any matrix (413 above); keep it at the api's.
    pub max_rows: usize,
    /// Largest accepted column count of any matrix (413 above); keep it at the api's.
    pub max_cols: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self { max_body_bytes: 16 * 1024 * 1024, max_rows: 1024, max_cols: 1024 }
    }
}

/// API keys of the REST API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// File of accepted key hashes, one `sha256:<64 hex>` per line (`#` starts a comment); empty
    /// turns keys off. The file is read again when it changes (a rotated Kubernetes Secret).
    pub api_keys_file: Option<PathBuf>,
    /// Interval between checks of the key file for changes.
    pub reload_interval_ms: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self { api_keys_file: None, reload_interval_ms: 10_000 }
    }
}

/// Request rate limit of the REST API, per API key, or per client address without keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Sustained requests per second per client; 0 turns the limit off.
    pub requests_per_second: u32,
    /// Requests a client may send at once above the sustained rate.
    pub burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self { requests_per_second: 100, burst: 200 }
    }
}

/// Cross-origin requests to the REST API: closed unless origins are listed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    /// Origins (`https://app.example.com`) allowed to call the REST API from a browser.
    pub allowed_origins: Vec<String>,
    /// Seconds a browser may cache a preflight answer.
    pub max_age_seconds: u64,
}

impl Default for CorsSettings {
    fn default() -> Self {
        Self { allowed_origins: Vec::new(), max_age_seconds: 600 }
    }
}

/// Where the operations view reads health, span metrics and traces.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsSettings {
    /// `http://host:port` of the telemetry-collector's admin and query port; empty leaves the
    /// metrics and traces of `/ops` out.
    pub collector_endpoint: String,
    /// Time one request to the collector may take.
    pub collector_timeout_ms: u64,
    /// Interval between two reads of the collector's span metrics and of both upstreams' health.
    pub poll_interval_ms: u64,
    /// Window over which `/ops` computes rates, error ratios and latency quantiles.
    pub window_seconds: u64,
}

impl Default for OpsSettings {
    fn default() -> Self {
        Self {
            collector_endpoint: "http://127.0.0.1:8888".into(),
            collector_timeout_ms: 2_000,
            poll_interval_ms: 5_000,
            window_seconds: 60,
        }
    }
}

impl Settings {
    /// Loads and validates the settings from `sources`.
    ///
    /// # Errors
    /// Every bad key at once.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        config::load(sources)
    }
}

impl axiom25_observability::service::ServiceSettings for Settings {
    fn admin_endpoint(&self) -> (IpAddr, u16) {
        (self.server.host, self.server.admin_port)
    }

    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }
}

/// `http://host:port` with nothing after the port, as both endpoints are written.
fn check_endpoint(key: &str, value: &str, problems: &mut Vec<String>) {
    match value.parse::<http::Uri>() {
        Ok(uri)
            if uri.scheme_str() == Some("http")
                && uri.host().is_some_and(|host| !host.is_empty())
                && uri.port_u16().is_some()
                && uri.path_and_query().is_none_or(|path| path.as_str() == "/") => {}
        _ => problems.push(format!("{key}: must be http://host:port, got {value:?}")),
    }
}

impl Validate for Settings {
    fn validate(&self) -> Vec<String> {
        let mut problems = check_distinct_ports(&[
            ("server.http_port", self.server.http_port),
            ("server.admin_port", self.server.admin_port),
        ]);
        let api = &self.api;
        check_endpoint("api.endpoint", &api.endpoint, &mut problems);
        for (key, value) in [
            ("api.deadline_ms", api.deadline_ms),
            ("api.connect_timeout_ms", api.connect_timeout_ms),
            ("api.resolve_interval_ms", api.resolve_interval_ms),
            ("auth.reload_interval_ms", self.auth.reload_interval_ms),
            ("ops.collector_timeout_ms", self.ops.collector_timeout_ms),
            ("ops.poll_interval_ms", self.ops.poll_interval_ms),
            ("ops.window_seconds", self.ops.window_seconds),
        ] {
            if value == 0 {
                problems.push(format!("{key}: must be at least 1"));
            }
        }
        if !(1..=10).contains(&api.max_attempts) {
            problems.push(format!("api.max_attempts: must be within 1..=10, got {}", api.max_attempts));
        }
        if api.retry_max_backoff_ms < api.retry_backoff_ms {
            problems.push(format!(
                "api.retry_max_backoff_ms: must be at least api.retry_backoff_ms ({}), got {}",
                api.retry_backoff_ms, api.retry_max_backoff_ms
            ));
        }
        if api.retry_budget_percent > 1000 {
            problems.push(format!("api.retry_budget_percent: must be at most 1000, got {}", api.retry_budget_percent));
        }
        if api.max_response_bytes < 1024 {
            problems.push(format!("api.max_response_bytes: must be at least 1024, got {}", api.max_response_bytes));
        }
        let limits = &self.limits;
        if limits.max_body_bytes < 1024 {
            problems.push(format!("limits.max_body_bytes: must be at least 1024, got {}", limits.max_body_bytes));
        }
        for (key, value) in [("limits.max_rows", limits.max_rows), ("limits.max_cols", limits.max_cols)] {
            if !(1..=65_536).contains(&value) {
                problems.push(format!("{key}: must be within 1..=65536, got {value}"));
            }
        }
        if let Some(path) = &self.auth.api_keys_file
            && path.as_os_str().is_empty()
        {
            problems.push("auth.api_keys_file: must be a path; leave it unset to turn keys off".into());
        }
        if self.rate_limit.requests_per_second > 0 && self.rate_limit.burst == 0 {
            problems.push("rate_limit.burst: must be at least 1 while the limit is on".into());
        }
        for origin in &self.cors.allowed_origins {
            let valid = origin.parse::<http::Uri>().is_ok_and(|uri| {
                matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some()
                    && uri.path_and_query().is_none_or(|path| path.as_str() == "/")
            }) && !origin.ends_with('/')
                && http::HeaderValue::from_str(origin).is_ok();
            if !valid {
                problems
                    .push(format!("cors.allowed_origins: {origin:?} is not an origin such as https://app.example.com"));
            }
        }
        if !self.ops.collector_endpoint.is_empty() {
            check_endpoint("ops.collector_endpoint", &self.ops.collector_endpoint, &mut problems);
        }
        problems.extend(self.shutdown.validate("shutdown"));
        problems.extend(self.telemetry.validate("telemetry"));
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Settings::default().validate(), Vec::<String>::new());
    }

    #[test]
    fn every_bad_key_is_named() {
        let mut settings = Settings::default();
        settings.api.endpoint = "api:50051/x".into();
        settings.api.max_attempts = 0;
        settings.cors.allowed_origins = vec!["https://ok.example".into(), "not an origin".into()];
        settings.ops.collector_endpoint = "ftp://collector:8888".into();
        settings.rate_limit.burst = 0;
        let problems = settings.validate().join("\n");
        for key in [
            "api.endpoint",
            "api.max_attempts",
            "cors.allowed_origins: \"not an origin\"",
            "ops.collector_endpoint",
            "rate_limit.burst",
        ] {
            assert!(problems.contains(key), "{key} missing from {problems}");
        }
        assert!(!problems.contains("ok.example"), "{problems}");
    }

    #[test]
    fn an_empty_collector_endpoint_turns_the_ops_data_off_and_is_valid() {
        let mut settings = Settings::default();
        settings.ops.collector_endpoint.clear();
        assert_eq!(settings.validate(), Vec::<String>::new());
    }
}
