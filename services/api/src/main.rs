//! The api binary: load settings, start telemetry, serve until SIGTERM/SIGINT, flush, exit.

use std::process::ExitCode;

use axiom25_api::{Application, SERVICE, Settings};
use axiom25_observability::{config::Sources, shutdown, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Sources::from_process(std::env::args()).and_then(|sources| Settings::load(&sources)) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("axiom25-api: {error}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match telemetry::init(&settings.telemetry, &SERVICE) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("axiom25-api: {error:#}");
            return ExitCode::from(2);
        }
    };
    let result = async {
        let stop = shutdown::signal()?;
        Application::build(settings).await?.run_until_stopped(stop).await
    }
    .await;
    if let Err(error) = &result {
        tracing::error!(error = format!("{error:#}"), "Exiting on error");
    }
    // Flushing blocks; the runtime's own work is done by now.
    tokio::task::block_in_place(|| telemetry.shutdown());
    if result.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
