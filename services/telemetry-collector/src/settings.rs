//! Typed settings of the collector (CONTRACTS §1, §4): defaults here, overridden by `--config FILE`
//! and `AXIOM25__SECTION__KEY` variables; see the README's configuration reference.

use std::net::IpAddr;

use axiom25_observability::config::{self, ConfigError, Sources, Validate, check_distinct_ports};
use axiom25_observability::shutdown::ShutdownSettings;
use axiom25_observability::telemetry::TelemetrySettings;
use serde::Deserialize;

use crate::forward::ForwardSettings;
use crate::limiter::MemorySettings;
use crate::metric_store::MetricStoreSettings;
use crate::receiver::Limits;
use crate::spanmetrics::SpanMetricsSettings;
use crate::store::{LogStoreSettings, SpanStoreSettings};

/// Everything the collector can be configured with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Listeners.
    pub server: ServerSettings,
    /// Request size limits of both receivers.
    pub limits: Limits,
    /// The memory limiter.
    pub memory: MemorySettings,
    /// The span store behind the trace query API.
    pub span_store: SpanStoreSettings,
    /// The log store behind the log query API.
    pub log_store: LogStoreSettings,
    /// Span metrics (`traces_span_metrics_*`).
    pub span_metrics: SpanMetricsSettings,
    /// OTLP metrics received from clients, re-exposed on `/metrics`.
    pub metric_store: MetricStoreSettings,
    /// Upstream OTLP/gRPC forwarding.
    pub forward: ForwardSettings,
    /// Graceful shutdown.
    pub shutdown: ShutdownSettings,
    /// The collector's own logs and traces.
    pub telemetry: TelemetrySettings,
}

/// Listeners.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address every listener binds.
    pub host: IpAddr,
    /// OTLP/gRPC port; 0 picks a free one.
    pub grpc_port: u16,
    /// OTLP/HTTP port; 0 picks a free one.
    pub http_port: u16,
    /// Admin and query HTTP port; 0 picks a free one.
    pub admin_port: u16,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self { host: IpAddr::from([0, 0, 0, 0]), grpc_port: 4317, http_port: 4318, admin_port: 8888 }
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

/// Share of the soft memory limit the two stores may fill: the rest is the process itself, the
/// stores' estimate error, the allocator's overhead and data in flight.
const STORE_SHARE_OF_SOFT_LIMIT: f64 = 0.6;

impl Settings {
    /// The stores are caches that never shrink below their bounds: if they could fill the soft
    /// memory limit, the limiter would refuse every request for good once they were full.
    fn check_stores_fit_in_memory(&self) -> Vec<String> {
        let soft = self.memory.soft_limit_bytes();
        let stores = self.span_store.max_bytes as u64 + self.log_store.max_bytes as u64;
        if soft == 0 || stores as f64 <= soft as f64 * STORE_SHARE_OF_SOFT_LIMIT {
            return Vec::new();
        }
        vec![format!(
            "span_store.max_bytes + log_store.max_bytes: {stores} bytes is more than {:.0} % of the soft memory \
             limit (memory.limit_mib - memory.spike_limit_mib = {} MiB); lower the stores or raise the limit",
            STORE_SHARE_OF_SOFT_LIMIT * 100.0,
            soft >> 20
        )]
    }
}

impl axiom25_observability::service::ServiceSettings for Settings {
    fn admin_endpoint(&self) -> (std::net::IpAddr, u16) {
        (self.server.host, self.server.admin_port)
    }

    fn telemetry(&self) -> &TelemetrySettings {
        &self.telemetry
    }
}

impl Validate for Settings {
    fn validate(&self) -> Vec<String> {
        let mut problems = check_distinct_ports(&[
            ("server.grpc_port", self.server.grpc_port),
            ("server.http_port", self.server.http_port),
            ("server.admin_port", self.server.admin_port),
        ]);
        problems.extend(self.limits.validate("limits"));
        problems.extend(self.memory.validate("memory"));
        problems.extend(self.span_store.validate("span_store"));
        problems.extend(self.log_store.validate("log_store"));
        problems.extend(self.span_metrics.validate("span_metrics"));
        problems.extend(self.metric_store.validate("metric_store"));
        problems.extend(self.forward.validate("forward"));
        problems.extend(self.check_stores_fit_in_memory());
        problems.extend(self.shutdown.validate("shutdown"));
        problems.extend(self.telemetry.validate("telemetry"));
        problems
    }
}
