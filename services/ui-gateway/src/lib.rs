//! The AXIOM-25 Matrix ui-gateway: the public REST API (`/api/v1`, docs/contracts.md §3) translated to gRPC
//! calls to the api, the web calculator (`/`) and the operations view (`/ops`), with an admin port.

pub mod backend;
pub mod ops;
pub mod problem;
pub mod release_header;
pub mod rest;
pub mod security;
pub mod settings;
pub mod startup;
pub mod ui;

pub use settings::Settings;
pub use startup::Application;

/// This service's identity in logs, traces and metrics.
pub const SERVICE: axiom25_observability::ServiceInfo =
    axiom25_observability::ServiceInfo::new("ui-gateway", env!("CARGO_PKG_VERSION"), option_env!("AXIOM25_GIT_SHA"));
