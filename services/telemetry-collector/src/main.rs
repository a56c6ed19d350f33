//! The telemetry-collector binary: see [`axiom25_observability::service::main`]
//! (`axiom25-telemetry-collector [healthcheck] [--config FILE]`).

use std::process::ExitCode;

use axiom25_telemetry_collector::{Application, SERVICE};

#[tokio::main]
async fn main() -> ExitCode {
    axiom25_observability::service::main(&SERVICE, async |settings, stop| {
        let app = Application::build(settings).await?;
        // The one application of this process also records what runs outside it (span export).
        app.metrics().install_global()?;
        app.run_until_stopped(stop).await
    })
    .await
}
