//! The gRPC client of the api, written the way production gateways call their backends:
//! - one HTTP/2 connection per api address, reused by every request;
//! - the endpoint's host name resolved again and again, and calls spread over every address it
//!   resolves to (power of two choices on calls in flight);
//! - a deadline per REST request, sent as the gRPC timeout of each attempt;
//! - retries only for UNAVAILABLE, and for calls lost when the api asked the connection to go away
//!   (an HTTP/2 GOAWAY from a colour losing traffic, docs/contracts.md §8), with jittered exponential
//!   backoff, on another address when there is one, and only while a retry budget (a share of recent
//!   requests) allows;
//! - an address whose connection fails is ejected for a while (passive health checking), so an api
//!   outage is answered at once instead of after a connect timeout per request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axiom25_observability::grpc::{GrpcClientLayer, GrpcTelemetry};
use axiom25_observability::metrics::MetricsHandle;
use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;
use rand::Rng as _;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::Layer as _;
use tower::retry::budget::{Budget as _, TpsBudget};

use crate::settings::ApiSettings;

/// Whether a call failed because its HTTP/2 connection went away before the api took it: the
/// server's GOAWAY (sent by a colour losing traffic, or at its maximum connection age) left the
/// stream unprocessed, or the connection closed while the call waited for it. The api's calls are
/// pure computations, so sending one again is safe; tonic's own timeout (CANCELLED without a
/// transport error) is not one of these.
fn connection_went_away(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            return h2.is_go_away() || h2.reason() == Some(h2::Reason::REFUSED_STREAM);
        }
        if let Some(hyper) = error.downcast_ref::<hyper::Error>()
            && hyper.is_canceled()
        {
            return true;
        }
        source = error.source();
    }
    false
}

/// The client type handed to each call.
pub type MatrixClient = MatrixServiceClient<GrpcTelemetry<Channel>>;

/// How long an address whose connection failed is left out.
const EJECTION: Duration = Duration::from_secs(2);
/// Shortest interval between two resolutions triggered by failures.
const MIN_RERESOLVE: Duration = Duration::from_millis(500);

/// Why a call to the api gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The api answered with an error status (after retries, for UNAVAILABLE).
    #[error("{}", .0.message())]
    Status(Status),
    /// No address of the api can take calls now.
    #[error("no api address can take calls ({reason})")]
    NoEndpoint {
        /// Why: nothing resolved, or every address ejected.
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// The request's deadline passed before the api answered.
    #[error("the api did not answer within {0:?}")]
    Deadline(Duration),
}

/// One api address and its connection.
#[derive(Debug)]
struct Address {
    addr: SocketAddr,
    channel: Channel,
    in_flight: AtomicUsize,
    calls: AtomicU64,
    ejected_until: Mutex<Option<Instant>>,
}

impl Address {
    fn ejected(&self, now: Instant) -> Option<Instant> {
        let until = *self.ejected_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        until.filter(|until| *until > now)
    }

    fn eject(&self, now: Instant) {
        *self.ejected_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(now + EJECTION);
    }
}

/// Health of one api address as the gateway sees it.
#[derive(Debug, Clone)]
pub struct AddressHealth {
    /// The address.
    pub addr: SocketAddr,
    /// `SERVING`, `NOT_SERVING`, ... from `grpc.health.v1.Health`, or why the check failed.
    pub status: Result<String, String>,
    /// Calls in flight on it now.
    pub in_flight: usize,
    /// Attempts sent to it since it was resolved.
    pub calls: u64,
    /// Whether it is ejected after a connection failure.
    pub ejected: bool,
}

/// A cloneable handle on the api client.
#[derive(Debug, Clone)]
pub struct Backend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: ApiSettings,
    host: String,
    port: u16,
    addresses: RwLock<Arc<Vec<Arc<Address>>>>,
    budget: TpsBudget,
    last_resolution: Mutex<Option<Instant>>,
    resolving: tokio::sync::Mutex<()>,
    metrics: MetricsHandle,
}

impl Backend {
    /// A client of `settings.endpoint`, measured into `metrics`; resolution starts with the first
    /// call or [`Self::run_resolver`].
    ///
    /// # Panics
    /// When the endpoint was not validated (see `Settings::validate`).
    #[must_use]
    pub fn new(settings: &ApiSettings, metrics: MetricsHandle) -> Self {
        let uri: http::Uri = settings.endpoint.parse().expect("api.endpoint is validated");
        let host = uri.host().expect("api.endpoint has a host").trim_matches(['[', ']']).to_owned();
        let port = uri.port_u16().expect("api.endpoint has a port");
        let budget = TpsBudget::new(
            Duration::from_secs(10),
            settings.retry_budget_min_per_second,
            settings.retry_budget_percent as f32 / 100.0,
        );
        Self {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                host,
                port,
                addresses: RwLock::new(Arc::new(Vec::new())),
                budget,
                last_resolution: Mutex::new(None),
                resolving: tokio::sync::Mutex::new(()),
                metrics,
            }),
        }
    }

    /// Resolves the endpoint every `resolve_interval_ms` until the handle's last clone is dropped.
    pub async fn run_resolver(self) {
        let weak = Arc::downgrade(&self.inner);
        let interval = Duration::from_millis(self.inner.settings.resolve_interval_ms);
        drop(self);
        loop {
            let Some(inner) = weak.upgrade() else { return };
            Self { inner }.resolve().await;
            tokio::time::sleep(interval).await;
        }
    }

    /// The addresses the endpoint resolved to last.
    #[must_use]
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.snapshot().iter().map(|address| address.addr).collect()
    }

    fn snapshot(&self) -> Arc<Vec<Arc<Address>>> {
        self.inner.addresses.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Resolves the host name and replaces the address set, keeping the connections of addresses
    /// that stay. A failed resolution keeps the last set: a DNS hiccup must not become an outage.
    async fn resolve(&self) {
        let _one_at_a_time = self.inner.resolving.lock().await;
        *self.inner.last_resolution.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        let resolved = match tokio::net::lookup_host((self.inner.host.as_str(), self.inner.port)).await {
            Ok(addrs) => {
                let mut addrs: Vec<SocketAddr> = addrs.collect();
                addrs.sort_unstable();
                addrs.dedup();
                addrs
            }
            Err(error) => {
                metrics::counter!("axiom25_gateway_api_resolution_failures_total").increment(1);
                tracing::warn!(host = self.inner.host, error = %error, "Resolving the api failed; keeping the last addresses");
                return;
            }
        };
        self.install(&resolved);
    }

    /// Replaces the address set with `resolved`, keeping the connections of addresses that stay.
    fn install(&self, resolved: &[SocketAddr]) {
        let current = self.snapshot();
        if current.iter().map(|address| address.addr).eq(resolved.iter().copied()) {
            return;
        }
        let next: Vec<Arc<Address>> = resolved
            .iter()
            .map(|addr| {
                current.iter().find(|address| address.addr == *addr).cloned().unwrap_or_else(|| {
                    Arc::new(Address {
                        addr: *addr,
                        channel: self.connect_lazy(*addr),
                        in_flight: AtomicUsize::new(0),
                        calls: AtomicU64::new(0),
                        ejected_until: Mutex::new(None),
                    })
                })
            })
            .collect();
        tracing::info!(host = self.inner.host, addresses = ?resolved, "Api addresses changed");
        metrics::gauge!("axiom25_gateway_api_addresses").set(next.len() as f64);
        *self.inner.addresses.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
    }

    fn connect_lazy(&self, addr: SocketAddr) -> Channel {
        let settings = &self.inner.settings;
        Endpoint::from_shared(format!("http://{addr}"))
            .expect("a socket address is a valid URI")
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            .connect_lazy()
    }

    /// Resolves again now unless that was done very recently: after a connection failure the api
    /// may have moved.
    async fn reresolve_soon(&self) {
        let recent = self
            .inner
            .last_resolution
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < MIN_RERESOLVE);
        if !recent {
            self.resolve().await;
        }
    }

    /// Picks an address for an attempt: the less busy of two random healthy ones, other than
    /// `avoid` when possible.
    fn pick(&self, avoid: Option<SocketAddr>) -> Result<Arc<Address>, BackendError> {
        let addresses = self.snapshot();
        let now = Instant::now();
        if addresses.is_empty() {
            return Err(BackendError::NoEndpoint {
                reason: format!("{} resolves to no address", self.inner.host),
                retry_after: Duration::from_secs(1),
            });
        }
        let healthy: Vec<&Arc<Address>> = addresses.iter().filter(|address| address.ejected(now).is_none()).collect();
        if healthy.is_empty() {
            let next = addresses.iter().filter_map(|address| address.ejected(now)).min().unwrap_or(now);
            return Err(BackendError::NoEndpoint {
                reason: format!("the connections to every address of {} failed", self.inner.host),
                retry_after: next.saturating_duration_since(now),
            });
        }
        let preferred: Vec<&Arc<Address>> = match avoid {
            Some(avoid) if healthy.len() > 1 => {
                healthy.iter().copied().filter(|address| address.addr != avoid).collect()
            }
            _ => healthy,
        };
        let mut rng = rand::rng();
        let first = preferred[rng.random_range(0..preferred.len())];
        let second = preferred[rng.random_range(0..preferred.len())];
        let chosen = if second.in_flight.load(Ordering::Relaxed) < first.in_flight.load(Ordering::Relaxed) {
            second
        } else {
            first
        };
        Ok(Arc::clone(chosen))
    }

    fn backoff(&self, retry: u32) -> Duration {
        let settings = &self.inner.settings;
        let base = settings.retry_backoff_ms.saturating_mul(1 << retry.min(16)).min(settings.retry_max_backoff_ms);
        // Full jitter in [base/2, base]: retries of many gateways do not arrive together.
        Duration::from_millis(rand::rng().random_range(base / 2..=base.max(1)))
    }

    /// Calls the api with `call`, under the request deadline, retrying UNAVAILABLE as the module
    /// documentation says.
    ///
    /// # Errors
    /// The api's status after the last attempt, no usable address, or the deadline.
    pub async fn call<Req, Resp, F, Fut>(&self, request: Req, call: F) -> Result<Resp, BackendError>
    where
        Req: Clone,
        F: Fn(MatrixClient, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let settings = &self.inner.settings;
        let deadline_after = settings.deadline();
        let deadline = Instant::now() + deadline_after;
        self.inner.budget.deposit();
        if self.snapshot().is_empty() {
            self.reresolve_soon().await;
        }
        let mut previous: Option<SocketAddr> = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let address = match self.pick(previous) {
                Ok(address) => address,
                Err(error) => {
                    self.reresolve_soon().await;
                    return Err(error);
                }
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(BackendError::Deadline(deadline_after));
            }
            let client = MatrixServiceClient::new(
                GrpcClientLayer::new(self.inner.metrics.clone()).layer(address.channel.clone()),
            )
            .max_decoding_message_size(settings.max_response_bytes)
            .max_encoding_message_size(usize::MAX);
            let mut grpc_request = tonic::Request::new(request.clone());
            grpc_request.set_timeout(remaining);
            address.in_flight.fetch_add(1, Ordering::Relaxed);
            address.calls.fetch_add(1, Ordering::Relaxed);
            let outcome = tokio::time::timeout(remaining, call(client, grpc_request)).await;
            address.in_flight.fetch_sub(1, Ordering::Relaxed);
            let status = match outcome {
                Ok(Ok(response)) => {
                    crate::release_header::record(response.metadata());
                    return Ok(response.into_inner());
                }
                Err(_elapsed) => return Err(BackendError::Deadline(deadline_after)),
                Ok(Err(status)) if connection_went_away(&status) => status,
                // tonic reports its own client-side timeout as CANCELLED.
                Ok(Err(status)) if matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled) => {
                    return Err(BackendError::Deadline(deadline_after));
                }
                Ok(Err(status)) => {
                    crate::release_header::record(status.metadata());
                    status
                }
            };
            let went_away = connection_went_away(&status);
            if status.code() != Code::Unavailable && !went_away {
                return Err(BackendError::Status(status));
            }
            // A status with a source came from the transport (refused, reset, timed out
            // connecting), not from the api: leave that address out for a while. A connection the
            // api asked to go away is not a failed address: the next call reconnects.
            let transport_failure = !went_away && std::error::Error::source(&status).is_some();
            if transport_failure {
                address.eject(Instant::now());
                self.reresolve_soon().await;
            }
            let backoff = self.backoff(attempt - 1);
            let exhausted = attempt >= settings.max_attempts;
            if exhausted || Instant::now() + backoff >= deadline || !self.inner.budget.withdraw() {
                let outcome = if exhausted { "attempts_exhausted" } else { "budget_exhausted" };
                metrics::counter!("axiom25_gateway_api_retries_total", "outcome" => outcome).increment(1);
                return Err(match self.pick(None) {
                    Err(no_endpoint) if transport_failure => no_endpoint,
                    _ => BackendError::Status(status),
                });
            }
            metrics::counter!("axiom25_gateway_api_retries_total", "outcome" => "retried").increment(1);
            tracing::debug!(addr = %address.addr, attempt, code = ?status.code(), "Retrying an UNAVAILABLE api call");
            previous = Some(address.addr);
            tokio::time::sleep(backoff).await;
        }
    }

    /// Asks every resolved address for its `grpc.health.v1.Health` status.
    pub async fn health(&self, timeout: Duration) -> Vec<AddressHealth> {
        let addresses = self.snapshot();
        let now = Instant::now();
        let checks = addresses.iter().map(|address| async move {
            let mut client = HealthClient::new(address.channel.clone());
            let check = client.check(tonic_health::pb::HealthCheckRequest { service: String::new() });
            let status = match tokio::time::timeout(timeout, check).await {
                Ok(Ok(response)) => Ok(ServingStatus::try_from(response.into_inner().status)
                    .map_or_else(|_| "UNKNOWN".to_owned(), |status| status.as_str_name().to_owned())),
                Ok(Err(status)) => Err(status.message().to_owned()),
                Err(_) => Err(format!("no answer within {timeout:?}")),
            };
            AddressHealth {
                addr: address.addr,
                status,
                in_flight: address.in_flight.load(Ordering::Relaxed),
                calls: address.calls.load(Ordering::Relaxed),
                ejected: address.ejected(now).is_some(),
            }
        });
        futures_util::future::join_all(checks).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_metrics() -> MetricsHandle {
        MetricsHandle::new(&crate::SERVICE)
    }

    fn backend(endpoint: &str) -> Backend {
        Backend::new(&ApiSettings { endpoint: endpoint.into(), ..ApiSettings::default() }, test_metrics())
    }

    #[tokio::test]
    async fn a_literal_address_resolves_to_itself() {
        let backend = backend("http://127.0.0.1:1");
        backend.resolve().await;
        assert_eq!(backend.addresses(), vec!["127.0.0.1:1".parse().unwrap()]);
    }

    #[tokio::test]
    async fn a_host_name_resolves_to_its_addresses() {
        let backend = backend("http://localhost:1");
        backend.resolve().await;
        assert!(!backend.addresses().is_empty());
        assert!(backend.addresses().iter().all(|addr| addr.ip().is_loopback()));
    }

    #[tokio::test]
    async fn a_refused_connection_ejects_the_address_and_later_calls_fail_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let backend = backend(&format!("http://127.0.0.1:{port}"));
        let request = axiom25_proto::matrix::v1::DeterminantRequest::default();
        let first =
            backend.call(request.clone(), |mut client, request| async move { client.determinant(request).await }).await;
        assert!(matches!(first, Err(BackendError::NoEndpoint { .. })), "{first:?}");
        let started = std::time::Instant::now();
        let second =
            backend.call(request, |mut client, request| async move { client.determinant(request).await }).await;
        match second {
            Err(BackendError::NoEndpoint { retry_after, .. }) => assert!(retry_after <= EJECTION),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_millis(100), "{:?}", started.elapsed());
    }

    /// A name that never resolves (RFC 6761), so a failure-triggered resolution keeps the
    /// addresses a test installs.
    const UNRESOLVABLE: &str = "http://gateway-test.invalid:1";

    async fn spawn_api() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let mut settings = axiom25_api::Settings::default();
        settings.server.host = std::net::IpAddr::from([127, 0, 0, 1]);
        settings.server.grpc_port = 0;
        settings.server.admin_port = 0;
        let app = axiom25_api::Application::build(settings).await.unwrap();
        let addr = app.grpc_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
            "test"
        }));
        (addr, stop)
    }

    /// det([[2]]) through `backend`.
    async fn determinant_of_two(backend: &Backend) -> Result<f64, BackendError> {
        let request = axiom25_proto::matrix::v1::DeterminantRequest {
            a: Some(axiom25_proto::matrix::v1::Matrix { rows: 1, cols: 1, data: vec![2.0] }),
        };
        let answer = backend.call(request, |mut client, request| async move { client.determinant(request).await });
        Ok(answer.await?.value)
    }

    #[tokio::test]
    async fn calls_are_spread_over_every_address() {
        let (first, _stop_first) = spawn_api().await;
        let (second, _stop_second) = spawn_api().await;
        let backend = backend(UNRESOLVABLE);
        backend.install(&[first, second]);
        for _ in 0..40 {
            assert_eq!(determinant_of_two(&backend).await.expect("the api answers"), 2.0);
        }
        let health = backend.health(Duration::from_secs(2)).await;
        assert_eq!(health.len(), 2);
        for address in &health {
            assert_eq!(address.status.as_deref(), Ok("SERVING"));
            assert!(address.calls >= 5, "{health:?}");
        }
    }

    #[tokio::test]
    async fn an_unavailable_address_is_retried_on_another_and_the_caller_never_sees_it() {
        let (alive, _stop) = spawn_api().await;
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let backend = backend(UNRESOLVABLE);
        backend.install(&[alive, dead]);
        for _ in 0..20 {
            assert_eq!(determinant_of_two(&backend).await.expect("the api answers"), 2.0);
        }
        let health = backend.health(Duration::from_secs(2)).await;
        let dead = health.iter().find(|address| address.addr == dead).unwrap();
        assert!(dead.ejected && dead.status.is_err(), "{dead:?}");
    }

    #[tokio::test]
    async fn the_retry_budget_stops_retries_when_most_calls_fail() {
        let dead = |_: u8| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let addresses: Vec<SocketAddr> = (0..8).map(dead).collect();
        let settings = ApiSettings {
            endpoint: UNRESOLVABLE.into(),
            max_attempts: 10,
            retry_budget_percent: 0,
            retry_budget_min_per_second: 0,
            ..ApiSettings::default()
        };
        let backend = Backend::new(&settings, test_metrics());
        backend.install(&addresses);
        assert!(determinant_of_two(&backend).await.is_err());
        let calls: u64 = backend.health(Duration::from_millis(100)).await.iter().map(|address| address.calls).sum();
        assert_eq!(calls, 1, "with an empty budget no call is retried");
    }

    #[test]
    fn backoff_grows_and_stays_under_the_maximum() {
        let backend = backend("http://127.0.0.1:1");
        for retry in 0..20 {
            let backoff = backend.backoff(retry);
            assert!(backoff <= Duration::from_millis(250), "{retry}: {backoff:?}");
        }
        assert!(backend.backoff(0) <= Duration::from_millis(25));
        assert!(backend.backoff(4) >= Duration::from_millis(125));
    }
}
