//! The telemetry-collector binary: see [`axiom25_observability::service::main`]
//! (`axiom25-telemetry-collector [healthcheck] [--config FILE]`). The binary, not the library,
//! installs the process's allocator (mimalloc, every live byte counted for the memory limiter).

use std::process::ExitCode;

use axiom25_telemetry_collector::{Application, SERVICE, limiter};

#[global_allocator]
static HEAP: limiter::Heap = limiter::heap();

#[tokio::main]
async fn main() -> ExitCode {
    limiter::count_heap_with(|| HEAP.allocated());
    // As `axiom25_observability::service_main!`, with the heap registered first.
    axiom25_observability::service::main(&SERVICE, async |settings, stop| {
        let app = Application::build(settings).await?;
        app.metrics().install_global()?;
        app.run_until_stopped(stop).await
    })
    .await
}
