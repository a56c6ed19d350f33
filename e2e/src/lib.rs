//! Fixtures for the end-to-end suite: the project's own images (never pulled) in containers on
//! a network each test creates, one struct per container with its external endpoint (a port
//! published on 127.0.0.1) and its internal endpoint (its name on the test network).
//!
//! The images come from `make images`; `AXIOM25_IMAGE_TAG` selects the tag (default `dev`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use testcontainers::bollard::models::{HostConfig, PortBinding};
use testcontainers::core::{ContainerPort, Healthcheck, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// The api's gRPC port inside its container.
pub const API_GRPC_PORT: u16 = 50051;
/// The api's admin port inside its container.
pub const API_ADMIN_PORT: u16 = 8081;
/// The collector's OTLP/gRPC port inside its container.
pub const COLLECTOR_GRPC_PORT: u16 = 4317;
/// The collector's OTLP/HTTP port inside its container.
pub const COLLECTOR_HTTP_PORT: u16 = 4318;
/// The collector's admin and query port inside its container.
pub const COLLECTOR_ADMIN_PORT: u16 = 8888;
/// The ui-gateway's public HTTP port inside its container.
pub const GATEWAY_HTTP_PORT: u16 = 8080;
/// The ui-gateway's admin port inside its container.
pub const GATEWAY_ADMIN_PORT: u16 = 8082;

/// Tag of the images under test.
#[must_use]
pub fn image_tag() -> String {
    std::env::var("AXIOM25_IMAGE_TAG").unwrap_or_else(|_| "dev".to_owned())
}

/// A name no other test (or concurrent run) uses: `axiom25-e2e-<pid>-<n>-<what>`.
#[must_use]
pub fn unique_name(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("axiom25-e2e-{}-{}-{what}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Fails unless `image` exists locally: this suite never pulls.
///
/// # Panics
/// When the image is missing, with the command that builds it.
pub fn require_image(image: &str) {
    let present =
        Command::new("docker").args(["image", "inspect", image]).output().is_ok_and(|out| out.status.success());
    assert!(present, "image {image} is missing: build it with `make images` (this suite never pulls)");
}

/// A Docker network of one test; testcontainers creates it with the first container on it and
/// removes it with the last.
#[derive(Debug, Clone)]
pub struct TestNetwork {
    /// The network's name.
    pub name: String,
}

impl TestNetwork {
    /// A fresh, uniquely named network.
    #[must_use]
    pub fn new() -> Self {
        Self { name: unique_name("net") }
    }
}

impl Default for TestNetwork {
    fn default() -> Self {
        Self::new()
    }
}

/// Publishes `ports` on 127.0.0.1 only, on ports Docker picks.
fn publish_on_loopback(ports: &'static [u16]) -> impl Fn(&mut HostConfig) + Send + Sync + 'static {
    move |host: &mut HostConfig| {
        host.publish_all_ports = Some(false);
        let bindings: HashMap<String, Option<Vec<PortBinding>>> = ports
            .iter()
            .map(|port| {
                let binding = PortBinding { host_ip: Some("127.0.0.1".to_owned()), host_port: Some(String::new()) };
                (format!("{port}/tcp"), Some(vec![binding]))
            })
            .collect();
        host.port_bindings = Some(bindings);
    }
}

/// The api image, running hardened as in production: read-only root, no capabilities,
/// no new privileges.
pub struct ApiContainer {
    container: ContainerAsync<GenericImage>,
    /// gRPC, from the host.
    pub grpc: SocketAddr,
    /// Admin HTTP, from the host.
    pub admin: SocketAddr,
    /// gRPC from other containers on the test network, e.g. `http://axiom25-e2e-…-api:50051`.
    pub internal_grpc: String,
}

impl ApiContainer {
    /// Starts the api on `network` with extra `AXIOM25__…` settings and waits until it listens.
    ///
    /// # Panics
    /// When the image is missing or the container does not start within 60 s.
    pub async fn start(network: &TestNetwork, env: &[(&str, &str)]) -> Self {
        const PORTS: &[u16] = &[API_GRPC_PORT, API_ADMIN_PORT];
        let (container, name) = start_hardened("api", PORTS, network, env, listening()).await;
        let grpc = container_port(&container, API_GRPC_PORT).await;
        let admin = container_port(&container, API_ADMIN_PORT).await;
        Self { container, grpc, admin, internal_grpc: format!("http://{name}:{API_GRPC_PORT}") }
    }

    /// The container's id.
    #[must_use]
    pub fn id(&self) -> &str {
        self.container.id()
    }

    /// `docker stop` with a timeout: SIGTERM, then SIGKILL when it passes.
    ///
    /// # Panics
    /// When Docker refuses.
    pub async fn stop(&self, timeout: Duration) {
        let seconds = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        self.container.stop_with_timeout(Some(seconds)).await.expect("docker stop");
    }

    /// `docker start` of the stopped container: the same name on the test network, maybe
    /// another address on it. Returns once the process has started, not once it listens.
    ///
    /// # Panics
    /// When Docker refuses.
    pub async fn start_again(&self) {
        self.container.start().await.expect("docker start");
    }

    /// The exit code once stopped.
    ///
    /// # Panics
    /// When Docker cannot say.
    pub async fn exit_code(&self) -> Option<i64> {
        self.container.exit_code().await.expect("exit code")
    }

    /// `docker inspect --format TEMPLATE` of this container.
    ///
    /// # Panics
    /// When Docker cannot inspect it.
    #[must_use]
    pub fn inspect(&self, template: &str) -> String {
        let out = Command::new("docker").args(["inspect", "--format", template, self.id()]).output().expect("docker");
        assert!(out.status.success(), "docker inspect failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// The telemetry-collector image, hardened like [`ApiContainer`].
pub struct CollectorContainer {
    container: ContainerAsync<GenericImage>,
    /// OTLP/gRPC, from the host.
    pub grpc: SocketAddr,
    /// OTLP/HTTP, from the host.
    pub http: SocketAddr,
    /// Admin and query API, from the host.
    pub admin: SocketAddr,
    /// OTLP/gRPC from other containers on the test network, e.g. `http://axiom25-e2e-…-collector:4317`.
    pub internal_grpc: String,
    /// Admin and query API from other containers on the test network (the gateway's `/ops`).
    pub internal_admin: String,
}

impl CollectorContainer {
    /// Starts the collector on `network` with extra `AXIOM25__…` settings and waits until it listens.
    ///
    /// # Panics
    /// When the image is missing or the container does not start within 60 s.
    pub async fn start(network: &TestNetwork, env: &[(&str, &str)]) -> Self {
        const PORTS: &[u16] = &[COLLECTOR_GRPC_PORT, COLLECTOR_HTTP_PORT, COLLECTOR_ADMIN_PORT];
        let (container, name) = start_hardened("telemetry-collector", PORTS, network, env, listening()).await;
        Self {
            grpc: container_port(&container, COLLECTOR_GRPC_PORT).await,
            http: container_port(&container, COLLECTOR_HTTP_PORT).await,
            admin: container_port(&container, COLLECTOR_ADMIN_PORT).await,
            container,
            internal_grpc: format!("http://{name}:{COLLECTOR_GRPC_PORT}"),
            internal_admin: format!("http://{name}:{COLLECTOR_ADMIN_PORT}"),
        }
    }

    /// The container's id.
    #[must_use]
    pub fn id(&self) -> &str {
        self.container.id()
    }

    /// The settings that make a service on the test network export its telemetry to this
    /// collector, every 100 ms so that tests need not wait.
    #[must_use]
    pub fn export_env(&self) -> [(&'static str, &str); 2] {
        [
            ("AXIOM25__TELEMETRY__OTLP_ENDPOINT", self.internal_grpc.as_str()),
            ("AXIOM25__TELEMETRY__EXPORT_INTERVAL_MS", "100"),
        ]
    }
}

/// The ui-gateway image, hardened like [`ApiContainer`]; ready means its own `/readyz` answers 200
/// (probed by the binary, as the image's health check does), which does not wait for the api.
pub struct GatewayContainer {
    container: ContainerAsync<GenericImage>,
    /// Public HTTP (web UI, REST API), from the host.
    pub http: SocketAddr,
    /// Admin HTTP, from the host.
    pub admin: SocketAddr,
    /// Public HTTP from other containers on the test network, e.g. `http://axiom25-e2e-…-ui-gateway:8080`.
    pub internal_http: String,
}

impl GatewayContainer {
    /// Starts the gateway on `network` with extra `AXIOM25__…` settings (its api endpoint among
    /// them) and waits until Docker reports it healthy.
    ///
    /// # Panics
    /// When the image is missing or the container is not healthy within 60 s.
    pub async fn start(network: &TestNetwork, env: &[(&str, &str)]) -> Self {
        const PORTS: &[u16] = &[GATEWAY_HTTP_PORT, GATEWAY_ADMIN_PORT];
        // The image's own check, polled faster than its 5 s interval so tests do not wait for it.
        let ready = Readiness::Healthy(
            Healthcheck::cmd(["/usr/local/bin/axiom25-ui-gateway", "healthcheck"])
                .with_interval(Duration::from_millis(250))
                .with_timeout(Duration::from_secs(2))
                .with_retries(120),
        );
        let (container, name) = start_hardened("ui-gateway", PORTS, network, env, ready).await;
        Self {
            http: container_port(&container, GATEWAY_HTTP_PORT).await,
            admin: container_port(&container, GATEWAY_ADMIN_PORT).await,
            container,
            internal_http: format!("http://{name}:{GATEWAY_HTTP_PORT}"),
        }
    }

    /// The container's id.
    #[must_use]
    pub fn id(&self) -> &str {
        self.container.id()
    }
}

/// What [`start_hardened`] waits for before it returns.
enum Readiness {
    /// The `Listening` log line (both listeners bound).
    Listening,
    /// Docker's health status `healthy`, with this check instead of the image's.
    Healthy(Healthcheck),
}

const fn listening() -> Readiness {
    Readiness::Listening
}

/// Starts `axiom25/<service>` hardened as in production (read-only root, no capabilities, no new
/// privileges) on `network`, publishing `ports` on loopback, and waits until it is `ready`.
async fn start_hardened(
    service: &str,
    ports: &'static [u16],
    network: &TestNetwork,
    env: &[(&str, &str)],
    ready: Readiness,
) -> (ContainerAsync<GenericImage>, String) {
    let tag = image_tag();
    let image = format!("axiom25/{service}");
    require_image(&format!("{image}:{tag}"));
    let name = unique_name(service);
    let mut generic = GenericImage::new(image, tag);
    for port in ports {
        generic = generic.with_exposed_port(ContainerPort::Tcp(*port));
    }
    let wait = match &ready {
        Readiness::Listening => WaitFor::message_on_stdout("\"message\":\"Listening\""),
        Readiness::Healthy(_) => WaitFor::healthcheck(),
    };
    let mut request = generic
        .with_wait_for(wait)
        .with_network(network.name.clone())
        .with_container_name(name.clone())
        .with_readonly_rootfs(true)
        .with_cap_drop("ALL")
        .with_security_opt("no-new-privileges:true")
        .with_startup_timeout(Duration::from_secs(60))
        .with_host_config_modifier(publish_on_loopback(ports));
    if let Readiness::Healthy(check) = ready {
        request = request.with_health_check(check);
    }
    for (key, value) in env {
        request = request.with_env_var(*key, *value);
    }
    let container = request.start().await.unwrap_or_else(|error| panic!("the {service} container starts: {error}"));
    (container, name)
}

async fn container_port(container: &ContainerAsync<GenericImage>, inner: u16) -> SocketAddr {
    let host_port = container.get_host_port_ipv4(ContainerPort::Tcp(inner)).await.expect("published port");
    SocketAddr::from((Ipv4Addr::LOCALHOST, host_port))
}
