//! `axiom25-release`: blue/green releases of the api (docs/contracts.md §8). `release VERSION` deploys,
//! smoke-tests, switches, watches and promotes or rolls back; `rollback` switches back at once;
//! `status` reports both colours. Events are JSON lines on stdout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use axiom25_release::analysis::{AnalysisSettings, Prometheus};
use axiom25_release::command::SystemRunner;
use axiom25_release::events::Events;
use axiom25_release::flow::{ReleasePlan, Releaser};
use axiom25_release::platform::compose::{Compose, ComposeSettings};
use axiom25_release::platform::kubernetes::{Kubernetes, KubernetesSettings};
use axiom25_release::platform::{ApiSetting, Platform};
use axiom25_release::probe::GrpcProber;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "axiom25-release", about = "Blue/green releases of the AXIOM-25 api")]
struct Cli {
    /// Where the colours run.
    #[arg(long, value_enum, default_value_t = PlatformKind::Compose, env = "AXIOM25_RELEASE_PLATFORM")]
    platform: PlatformKind,
    /// Prometheus the analysis reads.
    #[arg(long, default_value = "http://127.0.0.1:9090", env = "AXIOM25_RELEASE_PROMETHEUS")]
    prometheus: String,
    /// Local stack: the compose command.
    #[arg(long, default_value = "docker-compose", env = "AXIOM25_RELEASE_COMPOSE")]
    compose: String,
    /// Local stack: the compose file.
    #[arg(long, default_value = "infrastructure/docker/docker-compose.yml", env = "AXIOM25_RELEASE_COMPOSE_FILE")]
    compose_file: PathBuf,
    /// Local stack: the compose project.
    #[arg(long, default_value = "axiom25", env = "AXIOM25_RELEASE_PROJECT")]
    project: String,
    /// Local stack: HAProxy's runtime API.
    #[arg(long, default_value = "127.0.0.1:50059", env = "AXIOM25_RELEASE_SWITCH_ADMIN")]
    switch_admin: String,
    /// Local stack: host port of blue's preview name.
    #[arg(long, default_value_t = 50061, env = "AXIOM25_RELEASE_BLUE_PORT")]
    blue_port: u16,
    /// Local stack: host port of green's preview name.
    #[arg(long, default_value_t = 50062, env = "AXIOM25_RELEASE_GREEN_PORT")]
    green_port: u16,
    /// Local stack: host port of blue's preview admin port.
    #[arg(long, default_value_t = 8083, env = "AXIOM25_RELEASE_BLUE_ADMIN_PORT")]
    blue_admin_port: u16,
    /// Local stack: host port of green's preview admin port.
    #[arg(long, default_value_t = 8084, env = "AXIOM25_RELEASE_GREEN_ADMIN_PORT")]
    green_admin_port: u16,
    /// Local stack: where each colour's settings file is written.
    #[arg(long, default_value = "target/release-state", env = "AXIOM25_RELEASE_STATE_DIR")]
    state_dir: PathBuf,
    /// Kubernetes: helm release.
    #[arg(long, default_value = "axiom25")]
    release_name: String,
    /// Kubernetes: namespace.
    #[arg(long, default_value = "axiom25")]
    namespace: String,
    /// Kubernetes: the umbrella chart.
    #[arg(long, default_value = "helm/axiom25")]
    chart: PathBuf,
    /// Kubernetes: full name of the api objects (default `<release>-api`).
    #[arg(long)]
    api_name: Option<String>,
    /// Kubernetes: helm binary.
    #[arg(long, default_value = "helm", env = "HELM")]
    helm: String,
    /// Kubernetes: kubectl binary.
    #[arg(long, default_value = "kubectl", env = "KUBECTL")]
    kubectl: String,
    /// Kubernetes: the api pods' admin port (`api.ports.admin`), reached through the API server's pod proxy.
    #[arg(long, default_value_t = 8081)]
    admin_port: u16,
    /// Kubernetes: gRPC address of blue's preview Service (default: its in-cluster name).
    #[arg(long)]
    blue_preview: Option<String>,
    /// Kubernetes: gRPC address of green's preview Service (default: its in-cluster name).
    #[arg(long)]
    green_preview: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PlatformKind {
    Compose,
    Kubernetes,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Deploy VERSION as the idle colour, smoke-test, switch, analyse, promote or roll back.
    Release {
        /// Image tag of axiom25/api.
        version: String,
        /// Extra api settings of the new colour, `AXIOM25__SECTION__KEY=VALUE` (space-separated in one argument too).
        #[arg(long = "set", value_delimiter = ' ', num_args = 0..)]
        settings: Vec<String>,
        /// Seconds the new colour gets to become SERVING.
        #[arg(long, default_value_t = 60)]
        ready_timeout: u64,
        /// Seconds of analysis after the switch.
        #[arg(long, default_value_t = 60)]
        analysis_window: u64,
        /// Milliseconds between Prometheus reads.
        #[arg(long, default_value_t = 2000)]
        poll_ms: u64,
        /// Calls needed before the SLO ratios are judged.
        #[arg(long, default_value_t = 20.0)]
        min_calls: f64,
        /// Seconds the old colour stays warm after promotion.
        #[arg(long, default_value_t = 300)]
        rollback_window: u64,
    },
    /// Send traffic back to the other colour at once.
    Rollback {
        /// Seconds a scaled-down colour gets to become SERVING again.
        #[arg(long, default_value_t = 60)]
        ready_timeout: u64,
    },
    /// The active colour, each colour's version and health.
    Status,
}

async fn run<P: Platform>(platform: &P, cli: &Cli) -> ExitCode {
    let prober = GrpcProber;
    let events = Events::stdout();
    match &cli.command {
        Command::Release { version, settings, ready_timeout, analysis_window, poll_ms, min_calls, rollback_window } => {
            let parsed: Result<Vec<ApiSetting>, String> =
                settings.iter().filter(|pair| !pair.is_empty()).map(|pair| pair.parse()).collect();
            let settings = match parsed {
                Ok(settings) => settings,
                Err(error) => {
                    events.emit("release", serde_json::json!({"outcome": "failed", "exit_code": 2, "reason": error}));
                    return ExitCode::from(2);
                }
            };
            let analysis = AnalysisSettings {
                window: Duration::from_secs(*analysis_window),
                poll: Duration::from_millis(*poll_ms),
                min_calls: *min_calls,
                ..AnalysisSettings::default()
            };
            let metrics = Prometheus::new(&cli.prometheus, analysis.latency_threshold_s);
            let plan = ReleasePlan {
                version: version.clone(),
                settings,
                ready_timeout: Duration::from_secs(*ready_timeout),
                analysis,
                rollback_window: Duration::from_secs(*rollback_window),
            };
            let releaser = Releaser::new(platform, &prober, &metrics, events);
            ExitCode::from(releaser.release(&plan, interrupted()).await.exit_code())
        }
        Command::Rollback { ready_timeout } => {
            let metrics = Prometheus::new(&cli.prometheus, 0.1);
            let releaser = Releaser::new(platform, &prober, &metrics, events);
            match releaser.rollback(Duration::from_secs(*ready_timeout)).await {
                Ok(_) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(1),
            }
        }
        Command::Status => {
            let metrics = Prometheus::new(&cli.prometheus, 0.1);
            let releaser = Releaser::new(platform, &prober, &metrics, events);
            match releaser.status().await {
                Ok(_) => ExitCode::SUCCESS,
                Err(error) => {
                    releaser_error(&error);
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn releaser_error(error: &str) {
    Events::stdout().emit("status", serde_json::json!({"outcome": "failed", "reason": error}));
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.platform {
        PlatformKind::Compose => {
            let settings = ComposeSettings {
                compose: cli.compose.split_whitespace().map(str::to_owned).collect(),
                file: cli.compose_file.clone(),
                project: cli.project.clone(),
                switch_admin: cli.switch_admin.clone(),
                preview_ports: (cli.blue_port, cli.green_port),
                admin_ports: (cli.blue_admin_port, cli.green_admin_port),
                state_dir: cli.state_dir.clone(),
            };
            run(&Compose::new(settings, SystemRunner), &cli).await
        }
        PlatformKind::Kubernetes => {
            let api_name = cli.api_name.clone().unwrap_or_else(|| format!("{}-api", cli.release_name));
            let in_cluster = |color: &str| format!("http://{api_name}-{color}.{}.svc:50051", cli.namespace);
            let settings = KubernetesSettings {
                helm: cli.helm.clone(),
                kubectl: cli.kubectl.clone(),
                release: cli.release_name.clone(),
                namespace: cli.namespace.clone(),
                chart: cli.chart.clone(),
                api_name: api_name.clone(),
                rollout_timeout_s: 300,
                admin_port: cli.admin_port,
                preview_endpoints: (
                    cli.blue_preview.clone().unwrap_or_else(|| in_cluster("blue")),
                    cli.green_preview.clone().unwrap_or_else(|| in_cluster("green")),
                ),
            };
            run(&Kubernetes::new(settings, SystemRunner), &cli).await
        }
    }
}
