//! Settings of upstream forwarding: where each signal goes and how hard the collector tries.

use std::time::Duration;

use serde::Deserialize;

use crate::validate::{below_problem, zero_problems};

/// Upstream OTLP/gRPC forwarding, one optional destination per signal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardSettings {
    /// Upstream for traces, `http://host:port`; empty turns trace forwarding off.
    pub traces_endpoint: String,
    /// Upstream for metrics, `http://host:port`; empty turns metric forwarding off.
    pub metrics_endpoint: String,
    /// Upstream for logs, `http://host:port`; empty turns log forwarding off.
    pub logs_endpoint: String,
    /// Items (spans, metric data points, log records) each destination's queue holds. A request
    /// with more items than this is refused for good.
    pub queue_capacity_items: usize,
    /// What a full queue does with a new request.
    pub full_policy: FullPolicy,
    /// Longest wait for one export call, in milliseconds.
    pub timeout_ms: u64,
    /// First wait after a failed export, in milliseconds; it doubles up to `max_backoff_ms`.
    pub initial_backoff_ms: u64,
    /// Longest wait between two export attempts, in milliseconds (an upstream's RetryInfo may ask
    /// for more and is honoured).
    pub max_backoff_ms: u64,
    /// How long one batch is retried before it is dropped, in milliseconds; 0 never retries.
    pub max_retry_elapsed_ms: u64,
    /// Queued requests are merged into one export up to this many items.
    pub max_batch_items: usize,
}

/// What a full forwarding queue does with a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FullPolicy {
    /// Refuse it, so the sender retries later (OTLP backpressure): nothing is lost here.
    #[default]
    Backpressure,
    /// Accept and drop it, counted with reason `queue_full`: senders never wait on the upstream.
    Drop,
}

impl Default for ForwardSettings {
    fn default() -> Self {
        Self {
            traces_endpoint: String::new(),
            metrics_endpoint: String::new(),
            logs_endpoint: String::new(),
            queue_capacity_items: 100_000,
            full_policy: FullPolicy::Backpressure,
            timeout_ms: 5_000,
            initial_backoff_ms: 100,
            max_backoff_ms: 5_000,
            max_retry_elapsed_ms: 300_000,
            max_batch_items: 8_192,
        }
    }
}

impl ForwardSettings {
    /// Longest wait for one export call.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Every problem with these settings, as `prefix.key: problem`.
    #[must_use]
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, endpoint) in [
            ("traces_endpoint", &self.traces_endpoint),
            ("metrics_endpoint", &self.metrics_endpoint),
            ("logs_endpoint", &self.logs_endpoint),
        ] {
            if !endpoint.is_empty() && !is_plain_http_endpoint(endpoint) {
                problems.push(format!("{prefix}.{key}: must be empty or http://host:port, got {endpoint:?}"));
            }
        }
        problems.extend(zero_problems(
            prefix,
            &[
                ("queue_capacity_items", self.queue_capacity_items == 0),
                ("max_batch_items", self.max_batch_items == 0),
                ("timeout_ms", self.timeout_ms == 0),
                ("initial_backoff_ms", self.initial_backoff_ms == 0),
            ],
        ));
        problems.extend(below_problem(
            prefix,
            ("max_backoff_ms", self.max_backoff_ms),
            ("initial_backoff_ms", self.initial_backoff_ms),
        ));
        problems
    }
}

/// `http://host:port` with nothing after the authority but an optional `/`.
fn is_plain_http_endpoint(endpoint: &str) -> bool {
    endpoint.parse::<http::Uri>().is_ok_and(|uri| {
        uri.scheme_str() == Some("http")
            && uri.host().is_some_and(|host| !host.is_empty())
            && uri.port_u16().is_some()
            && matches!(uri.path_and_query().map(http::uri::PathAndQuery::as_str), None | Some("/" | ""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_forward_nothing() {
        let settings = ForwardSettings::default();
        assert!(settings.validate("forward").is_empty());
        assert!(settings.traces_endpoint.is_empty() && settings.metrics_endpoint.is_empty());
        assert_eq!(settings.full_policy, FullPolicy::Backpressure);
        assert_eq!((settings.queue_capacity_items, settings.max_batch_items), (100_000, 8_192));
    }

    #[test]
    fn endpoints_must_be_plain_http_with_a_port() {
        for good in ["http://upstream:4317", "http://127.0.0.1:4317/", "http://[::1]:4317"] {
            let settings = ForwardSettings { traces_endpoint: good.into(), ..ForwardSettings::default() };
            assert!(settings.validate("forward").is_empty(), "{good} refused");
        }
        for bad in ["upstream:4317", "https://upstream:4317", "http://upstream", "http://upstream:4317/v1/traces"] {
            let settings = ForwardSettings { logs_endpoint: bad.into(), ..ForwardSettings::default() };
            let problems = settings.validate("forward");
            assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
            assert!(problems[0].starts_with("forward.logs_endpoint: "), "{problems:?}");
        }
    }

    #[test]
    fn every_bad_number_is_named() {
        let settings = ForwardSettings {
            queue_capacity_items: 0,
            max_batch_items: 0,
            timeout_ms: 0,
            initial_backoff_ms: 200,
            max_backoff_ms: 100,
            ..ForwardSettings::default()
        };
        let text = settings.validate("forward").join("\n");
        for key in ["queue_capacity_items", "max_batch_items", "timeout_ms", "max_backoff_ms"] {
            assert!(text.contains(&format!("forward.{key}: ")), "{key} not named in: {text}");
        }
    }

    #[test]
    fn the_full_policy_is_read_in_lowercase() {
        let policy: FullPolicy = serde_json::from_str("\"drop\"").expect("valid");
        assert_eq!(policy, FullPolicy::Drop);
        assert!(serde_json::from_str::<FullPolicy>("\"Drop\"").is_err());
    }
}
