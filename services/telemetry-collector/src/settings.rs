//! Typed settings of the collector (CONTRACTS §1, §4): defaults here, overridden by `--config FILE`
//! and `AXIOM25__SECTION__KEY` variables; see the README's configuration reference.

use std::net::IpAddr;

use axiom25_observability::config::{self, ConfigError, Sources, Validate, check_distinct_ports};
use axiom25_observability::telemetry::TelemetrySettings;
use serde::Deserialize;

/// Everything the collector can be configured with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Listeners.
    pub server: ServerSettings,
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

/// Graceful shutdown.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// Time between turning not ready and closing the listeners, in milliseconds.
    pub drain_delay_ms: u64,
    /// Longest wait for requests in flight and for the forwarding queues to empty, in milliseconds.
    pub grace_period_ms: u64,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self { drain_delay_ms: 0, grace_period_ms: 20_000 }
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

impl Validate for Settings {
    fn validate(&self) -> Vec<String> {
        let mut problems = check_distinct_ports(&[
            ("server.grpc_port", self.server.grpc_port),
            ("server.http_port", self.server.http_port),
            ("server.admin_port", self.server.admin_port),
        ]);
        if self.shutdown.grace_period_ms == 0 {
            problems.push("shutdown.grace_period_ms: must be at least 1".into());
        }
        problems.extend(self.telemetry.validate("telemetry"));
        problems
    }
}
