//! The AXIOM-25 Matrix api: dense linear algebra over gRPC (`axiom25.matrix.v1.MatrixService`),
//! with gRPC health, server reflection and an admin HTTP port.

pub mod compute;
pub mod convert;
pub mod edge;
pub mod error;
pub mod faults;
pub mod layer;
pub mod linalg;
pub mod release;
pub mod service;
pub mod settings;
pub mod startup;

pub use settings::Settings;
pub use startup::Application;

/// This service's identity in logs, traces and metrics.
pub const SERVICE: axiom25_observability::ServiceInfo =
    axiom25_observability::ServiceInfo::new("api", env!("CARGO_PKG_VERSION"), option_env!("AXIOM25_GIT_SHA"));
