//! The telemetry-collector binary: load settings, start telemetry, serve until SIGTERM/SIGINT, flush, exit.
//! `axiom25-telemetry-collector healthcheck` instead asks a running collector on this host whether it is ready (exit 0).

use std::process::ExitCode;
use std::time::Duration;

use axiom25_observability::{admin, config::Sources, shutdown, telemetry};
use axiom25_telemetry_collector::{Application, SERVICE, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let healthcheck = args.get(1).is_some_and(|arg| arg == "healthcheck");
    if healthcheck {
        args.remove(1);
    }
    let settings = match Sources::from_process(args).and_then(|sources| Settings::load(&sources)) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("axiom25-telemetry-collector: {error}");
            return ExitCode::from(2);
        }
    };
    if healthcheck {
        let (host, port) = (settings.server.host, settings.server.admin_port);
        let ready = tokio::task::spawn_blocking(move || admin::probe_ready(host, port, Duration::from_secs(2)));
        return if ready.await.unwrap_or(false) { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let telemetry = match telemetry::init(&settings.telemetry, &SERVICE) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("axiom25-telemetry-collector: {error:#}");
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
