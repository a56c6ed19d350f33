//! Typed settings of the api (CONTRACTS §1): defaults here, overridden by `--config FILE` and
//! `AXIOM25__SECTION__KEY` variables; see the README's configuration reference.

use std::net::IpAddr;
use std::time::Duration;

use axiom25_observability::config::{self, ConfigError, Sources, Validate, check_distinct_ports};
use axiom25_observability::shutdown::ShutdownSettings;
use axiom25_observability::telemetry::TelemetrySettings;
use serde::Deserialize;

use crate::faults::FaultSettings;
use crate::release::ReleaseSettings;

/// Everything the api can be configured with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Listeners.
    pub server: ServerSettings,
    /// Request size and concurrency limits.
    pub limits: LimitSettings,
    /// How computations use the CPU.
    pub compute: ComputeSettings,
    /// HTTP/2 connection management.
    pub grpc: GrpcSettings,
    /// Graceful shutdown.
    pub shutdown: ShutdownSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
    /// Blue/green colour and deployed version (CONTRACTS §8).
    pub release: ReleaseSettings,
    /// Fault injection for drills (CONTRACTS §9).
    pub faults: FaultSettings,
}

/// Listeners.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address both listeners bind.
    pub host: IpAddr,
    /// gRPC port; 0 picks a free one.
    pub grpc_port: u16,
    /// Admin HTTP port (`/livez`, `/readyz`, `/metrics`); 0 picks a free one.
    pub admin_port: u16,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self { host: IpAddr::from([0, 0, 0, 0]), grpc_port: 50051, admin_port: 8081 }
    }
}

/// Request size and concurrency limits (CONTRACTS §2 defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Largest accepted row count of any matrix.
    pub max_rows: u32,
    /// Largest accepted column count of any matrix.
    pub max_cols: u32,
    /// Largest accepted gRPC request message, in bytes. Answers may be larger: see
    /// [`LimitSettings::max_response_bytes`].
    pub max_message_bytes: usize,
    /// Requests admitted at once (computing or waiting for a CPU); more are shed with UNAVAILABLE.
    pub max_in_flight: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self { max_rows: 1024, max_cols: 1024, max_message_bytes: 16 * 1024 * 1024, max_in_flight: 64 }
    }
}

impl LimitSettings {
    /// Largest answer the service may send: whatever the dimension limits allow, so that every
    /// accepted request can be answered. LU of a max_rows × max_cols matrix is the largest
    /// (p, l and u: up to three max-size matrices), plus framing.
    #[must_use]
    pub fn max_response_bytes(&self) -> usize {
        let cells = self.max_rows as usize * self.max_cols as usize;
        (3 * cells * size_of::<f64>() + (1 << 20)).max(self.max_message_bytes)
    }
}

/// How computations use the CPU.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputeSettings {
    /// Computations running at once; 0 means one per available core.
    pub workers: usize,
    /// Threads one computation may use (faer parallelism); 1 keeps each request on one core,
    /// which maximises throughput under concurrent load. 0 means one per available core.
    pub threads_per_request: usize,
}

impl Default for ComputeSettings {
    fn default() -> Self {
        Self { workers: 0, threads_per_request: 1 }
    }
}

/// HTTP/2 connection management, so long-lived clients spread over new replicas.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcSettings {
    /// Interval of HTTP/2 PING keepalives, in milliseconds; 0 disables them.
    pub keepalive_interval_ms: u64,
    /// How long a keepalive PING may go unanswered before the connection is closed, in milliseconds.
    pub keepalive_timeout_ms: u64,
    /// Connections are asked to go away (GOAWAY) after this age, in milliseconds; 0 disables it.
    pub max_connection_age_ms: u64,
    /// Time calls in flight get to finish after a connection's age is reached, in milliseconds.
    pub max_connection_age_grace_ms: u64,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        Self {
            keepalive_interval_ms: 30_000,
            keepalive_timeout_ms: 10_000,
            max_connection_age_ms: 300_000,
            max_connection_age_grace_ms: 30_000,
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

    /// Keepalive PING interval, if enabled.
    #[must_use]
    pub fn keepalive_interval(&self) -> Option<Duration> {
        (self.grpc.keepalive_interval_ms > 0).then(|| Duration::from_millis(self.grpc.keepalive_interval_ms))
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
            ("server.admin_port", self.server.admin_port),
        ]);
        let limits = &self.limits;
        for (key, value) in [("limits.max_rows", limits.max_rows), ("limits.max_cols", limits.max_cols)] {
            if !(1..=65_536).contains(&value) {
                problems.push(format!("{key}: must be within 1..=65536, got {value}"));
            }
        }
        if limits.max_message_bytes < 1024 {
            problems.push(format!("limits.max_message_bytes: must be at least 1024, got {}", limits.max_message_bytes));
        }
        if limits.max_in_flight == 0 {
            problems.push("limits.max_in_flight: must be at least 1".into());
        }
        if self.grpc.keepalive_interval_ms > 0 && self.grpc.keepalive_timeout_ms == 0 {
            problems.push("grpc.keepalive_timeout_ms: must be at least 1 when keepalives are on".into());
        }
        problems.extend(self.shutdown.validate("shutdown"));
        problems.extend(self.telemetry.validate("telemetry"));
        problems.extend(self.release.validate("release"));
        problems.extend(self.faults.validate("faults"));
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Sources {
        Sources { file: None, env: pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect() }
    }

    #[test]
    fn defaults_match_the_contract() {
        let settings = Settings::load(&env(&[])).expect("defaults are valid");
        assert_eq!((settings.server.grpc_port, settings.server.admin_port), (50051, 8081));
        assert_eq!((settings.limits.max_rows, settings.limits.max_cols), (1024, 1024));
        assert_eq!(settings.limits.max_message_bytes, 16 * 1024 * 1024);
        // One thread per computation: fanning small work out to a pool costs more than it saves.
        assert_eq!((settings.compute.workers, settings.compute.threads_per_request), (0, 1));
    }

    #[test]
    fn the_largest_answer_the_dimension_limits_allow_can_be_sent() {
        let limits = LimitSettings::default();
        // LU of 1024×1024: p, l and u, each 1024² doubles.
        assert!(limits.max_response_bytes() >= 3 * 1024 * 1024 * 8);
        let small = LimitSettings { max_rows: 2, max_cols: 2, ..LimitSettings::default() };
        assert_eq!(small.max_response_bytes(), small.max_message_bytes);
    }

    #[test]
    fn environment_variables_override_defaults() {
        let settings =
            Settings::load(&env(&[("AXIOM25__SERVER__GRPC_PORT", "6000"), ("AXIOM25__LIMITS__MAX_ROWS", "10")]))
                .expect("valid");
        assert_eq!(settings.server.grpc_port, 6000);
        assert_eq!(settings.limits.max_rows, 10);
    }

    #[test]
    fn invalid_settings_name_every_bad_key() {
        let error = Settings::load(&env(&[
            ("AXIOM25__SERVER__GRPC_PORT", "8081"),
            ("AXIOM25__LIMITS__MAX_ROWS", "0"),
            ("AXIOM25__TELEMETRY__SAMPLING_RATIO", "2"),
            ("AXIOM25__TELEMETRY__OTLP_ENDPOINT", "collector:4317"),
            ("AXIOM25__LIMITS__MAX_COLZ", "3"),
            ("AXIOM25__RELEASE__COLOR", "red"),
            ("AXIOM25__FAULTS__ERROR_RATIO", "2"),
        ]))
        .expect_err("invalid");
        let text = error.to_string();
        for key in [
            "server.grpc_port",
            "limits.max_rows",
            "telemetry.sampling_ratio",
            "telemetry.otlp_endpoint",
            "limits.max_colz",
            "release.color",
            "faults.error_ratio",
        ] {
            assert!(text.contains(key), "{key} not named in: {text}");
        }
    }
}
