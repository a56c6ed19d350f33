//! Spawning the api for tests: in-process on port 0, or as the real binary for signal tests.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};

use axiom25_api::{Application, Settings};
use axiom25_proto::matrix::v1::Matrix;
use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;
use axiom25_testkit::{Binary, HttpClient, InProcess, RunningBinary, Xorshift};
use tonic::transport::{Channel, Endpoint};

/// An api running inside the test process; stopped when dropped.
pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub client: MatrixServiceClient<Channel>,
    pub channel: Channel,
    running: InProcess<()>,
}

impl TestApp {
    /// Stops the app and waits for it.
    pub async fn stop(self) {
        self.running.stop().await.expect("app ran");
    }
}

/// Settings for a test: loopback, free ports, short grace.
pub fn test_settings() -> Settings {
    let mut settings = Settings::default().on_free_loopback_ports();
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
    let running = axiom25_testkit::spawn((), |stop| app.run_until_stopped(stop));
    let channel = connect(grpc_addr).await;
    TestApp {
        grpc_addr,
        admin_addr,
        client: MatrixServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20),
        channel,
        running,
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
    let mut data = Xorshift::new(1).take(n_us * n_us, |x| x - 0.5);
    for i in 0..n_us {
        data[i * n_us + i] += f64::from(n);
    }
    Some(Matrix { rows: n, cols: n, data })
}

/// GET on an admin port: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let answer = HttpClient::new().get(addr, path).await.expect("admin answers");
    (answer.status.as_u16(), answer.text())
}

/// The real api binary, for tests that need signals or process-wide telemetry: a
/// [`RunningBinary`] with its two addresses.
pub struct ApiProcess {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    binary: RunningBinary,
}

impl ApiProcess {
    /// Starts the binary with `env` on free loopback ports and waits until it is ready.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let binary = Binary::new(env!("CARGO_BIN_EXE_axiom25-api"))
            .ports(&["grpc", "admin"])
            .envs(env.iter().copied())
            .start()
            .await
            .expect("the api binary starts and gets ready");
        Self { grpc_addr: binary.addr("grpc"), admin_addr: binary.addr("admin"), binary }
    }

    /// Sends SIGTERM, as Kubernetes and Docker do, without waiting for the exit.
    pub async fn terminate(&self) {
        self.binary.signal_term().expect("SIGTERM sent");
    }
}

impl Deref for ApiProcess {
    type Target = RunningBinary;

    fn deref(&self) -> &RunningBinary {
        &self.binary
    }
}

impl DerefMut for ApiProcess {
    fn deref_mut(&mut self) -> &mut RunningBinary {
        &mut self.binary
    }
}
