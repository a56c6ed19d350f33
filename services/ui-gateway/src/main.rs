//! The ui-gateway binary: see [`axiom25_observability::service::main`] (`axiom25-ui-gateway
//! [healthcheck] [--config FILE]`).

axiom25_observability::service_main!(axiom25_ui_gateway);
