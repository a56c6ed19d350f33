//! The telemetry-collector binary: see [`axiom25_observability::service::main`]
//! (`axiom25-telemetry-collector [healthcheck] [--config FILE]`).

axiom25_observability::service_main!(axiom25_telemetry_collector);
