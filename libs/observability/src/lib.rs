//! Observability, configuration and lifecycle plumbing shared by every AXIOM-25 service.
//!
//! A service's `main` ([`service::main`]) uses it in this order: [`config::load`] its settings,
//! [`telemetry::init`] logs and traces, then the application builds its [`metrics::MetricsHandle`],
//! wraps its servers in [`grpc::GrpcServerLayer`] or [`http::HttpServerLayer`], binds its
//! [`lifecycle::Listener`]s and runs a [`lifecycle::Lifecycle`] (admin server included) until
//! [`shutdown::signal`] resolves.

pub mod admin;
pub mod body;
pub mod config;
pub mod grpc;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod problem;
pub mod propagation;
pub mod reconnect;
pub mod service;
pub mod shutdown;
pub mod telemetry;

/// Identity of the running service, reported in logs, traces and `axiom25_build_info`.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// `service.name`, e.g. `api`.
    pub name: &'static str,
    /// `service.version`, the crate version.
    pub version: &'static str,
    /// Git revision the binary was built from, or `unknown`.
    pub git_sha: &'static str,
}

impl ServiceInfo {
    /// Identity of a service built from this workspace; the git revision comes from the
    /// `AXIOM25_GIT_SHA` variable at build time (set by the image build).
    #[must_use]
    pub const fn new(name: &'static str, version: &'static str, git_sha: Option<&'static str>) -> Self {
        let git_sha = match git_sha {
            Some(sha) => sha,
            None => "unknown",
        };
        Self { name, version, git_sha }
    }
}
