//! The AXIOM-25 telemetry collector: receives OTLP traces, metrics and logs (gRPC on 4317, HTTP on
//! 4318), derives RED span metrics for Prometheus, keeps recent traces and logs queryable on its
//! admin port, and forwards upstream without losing anything in silence.

pub mod exposition;
pub mod forward;
pub mod limiter;
pub mod metric_store;
pub mod otlp;
pub mod pipeline;
pub mod query;
pub mod receiver;
pub mod settings;
pub mod spanmetrics;
pub mod startup;
pub mod store;
mod validate;

pub use settings::Settings;
pub use startup::Application;

/// This service's identity in logs, traces and metrics.
pub const SERVICE: axiom25_observability::ServiceInfo = axiom25_observability::ServiceInfo::new(
    "telemetry-collector",
    env!("CARGO_PKG_VERSION"),
    option_env!("AXIOM25_GIT_SHA"),
);
