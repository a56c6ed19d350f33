//! The api binary: see [`axiom25_observability::service::main`] (`axiom25-api [healthcheck]
//! [--config FILE]`).

axiom25_observability::service_main!(axiom25_api);
