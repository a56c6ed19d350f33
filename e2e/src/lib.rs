//! Fixtures for the end-to-end suite: the project's own images (never pulled) in containers on
//! a network each test creates, one struct per container with its external endpoint (a port
//! published on 127.0.0.1) and its internal endpoint (its name on the test network).
//!
//! The images come from `make images`; `AXIOM25_IMAGE_TAG` selects the tag (default `dev`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
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

/// An HTTP/1.1 response as the tests read it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// Body, de-chunked.
    pub body: String,
}

impl HttpResponse {
    /// The first value of header `name` (lower case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// `POST path` with a JSON `body` to `addr`, one request per connection, every step bounded by
/// `timeout`.
///
/// # Errors
/// When the connection fails, times out or the answer is not HTTP.
pub fn http_post_json(addr: SocketAddr, path: &str, body: &str, timeout: Duration) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<HttpResponse> {
    let not_http = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n").ok_or_else(not_http)?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|line| line.split(' ').nth(1)).and_then(|code| code.parse().ok());
    let status = status.ok_or_else(not_http)?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut body = &raw[split + 4..];
    let chunked = headers.iter().any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let mut decoded = Vec::new();
    if chunked {
        loop {
            let end = body.windows(2).position(|window| window == b"\r\n").ok_or_else(not_http)?;
            let size = String::from_utf8_lossy(&body[..end]);
            let size =
                usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).map_err(|_| not_http())?;
            if size == 0 {
                break;
            }
            let chunk = body.get(end + 2..end + 2 + size).ok_or_else(not_http)?;
            decoded.extend_from_slice(chunk);
            body = body.get(end + 4 + size..).ok_or_else(not_http)?;
        }
        body = &decoded;
    }
    Ok(HttpResponse { status, headers, body: String::from_utf8_lossy(body).into_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_response_is_reassembled_and_header_names_are_lower_case() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n2\r\n\":\r\n1\r\n1\r\n1\r\n}\r\n0\r\n\r\n";
        let response = parse_response(raw).expect("parses");
        assert_eq!(response.status, 503);
        assert_eq!(response.header("retry-after"), Some("1"));
        assert_eq!(response.body, "{\"a\":1}");
    }

    #[test]
    fn a_response_with_a_length_keeps_its_body() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-trace-id: abc\r\n\r\n{}";
        let response = parse_response(raw).expect("parses");
        assert_eq!((response.status, response.header("x-trace-id"), response.body.as_str()), (200, Some("abc"), "{}"));
    }

    #[test]
    fn garbage_is_not_http() {
        assert!(parse_response(b"hello").is_err());
    }
}
