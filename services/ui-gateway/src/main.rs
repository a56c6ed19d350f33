//! The ui-gateway binary: see [`axiom25_observability::service::main`] (`axiom25-ui-gateway
//! [healthcheck] [--config FILE]`).

use std::process::ExitCode;

use axiom25_ui_gateway::{Application, SERVICE};

#[tokio::main]
async fn main() -> ExitCode {
    axiom25_observability::service::main(&SERVICE, async |settings, stop| {
        Application::build(settings).await?.run_until_stopped(stop).await
    })
    .await
}
