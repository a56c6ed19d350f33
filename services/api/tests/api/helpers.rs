//! Spawning the api for tests: in-process on port 0, or as the real binary for signal tests.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use axiom25_api::{Application, Settings};
use axiom25_proto::matrix::v1::Matrix;
use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

/// An api running inside the test process.
pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub client: MatrixServiceClient<Channel>,
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Stops the app and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("app task").expect("app ran");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Settings for a test: loopback, free ports, short grace.
pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    settings.server.host = IpAddr::V4(Ipv4Addr::LOCALHOST);
    settings.server.grpc_port = 0;
    settings.server.admin_port = 0;
    settings.shutdown.grace_period_ms = 5_000;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    tweak(&mut settings);
    let app = Application::build(settings).await.expect("app builds");
    let (grpc_addr, admin_addr) = (app.grpc_addr(), app.admin_addr());
    let (stop, stopped) = oneshot::channel();
    let handle = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
        "test"
    }));
    let channel = connect(grpc_addr).await;
    TestApp {
        grpc_addr,
        admin_addr,
        client: MatrixServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20),
        channel,
        stop: Some(stop),
        handle: Some(handle),
    }
}

pub async fn connect(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connects")
}

/// A client with no timer of its own: tonic's `Channel` enforces `grpc-timeout` locally (and
/// reports CANCELLED), which would hide what the server answers at a deadline.
pub type RawClient = MatrixServiceClient<
    hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, tonic::body::Body>,
>;

pub fn raw_client(addr: SocketAddr) -> RawClient {
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).http2_only(true).build_http();
    let origin = format!("http://{addr}").parse().expect("uri");
    MatrixServiceClient::with_origin(client, origin)
}

pub fn matrix(rows: u32, cols: u32, data: &[f64]) -> Option<Matrix> {
    Some(Matrix { rows, cols, data: data.to_vec() })
}

/// A deterministic well-conditioned n×n matrix (diagonally dominant).
pub fn dominant(n: u32) -> Option<Matrix> {
    let n_us = n as usize;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut data = Vec::with_capacity(n_us * n_us);
    for i in 0..n_us {
        for j in 0..n_us {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            data.push(if i == j { n as f64 + noise } else { noise });
        }
    }
    Some(Matrix { rows: n, cols: n, data })
}

/// GET on an admin port: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || axiom25_observability::admin::http_get(addr, &path, Duration::from_secs(5)))
        .await
        .expect("join")
        .expect("admin answers")
}

/// The real api binary, for tests that need signals or process-wide telemetry.
pub struct ApiProcess {
    pub child: Child,
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
}

impl ApiProcess {
    /// Starts the binary with `env` on free loopback ports and waits until it listens.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_axiom25-api"));
        command
            .env_clear()
            .env("AXIOM25__SERVER__HOST", "127.0.0.1")
            .env("AXIOM25__SERVER__GRPC_PORT", "0")
            .env("AXIOM25__SERVER__ADMIN_PORT", "0")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("api binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (grpc_port, admin_port) = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("read log") {
                let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                if entry["message"] == "Listening" {
                    let port = |key: &str| entry[key].as_u64().expect("port logged") as u16;
                    return (port("grpc_port"), port("admin_port"));
                }
            }
            panic!("the api exited before listening");
        })
        .await
        .expect("the api listens within 20 s");
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Self {
            child,
            grpc_addr: SocketAddr::new(localhost, grpc_port),
            admin_addr: SocketAddr::new(localhost, admin_port),
        }
    }

    /// Sends SIGTERM, as Kubernetes and Docker do.
    pub async fn terminate(&self) {
        let pid = self.child.id().expect("running").to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs");
        assert!(status.success());
    }
}
