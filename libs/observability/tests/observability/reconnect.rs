//! On-demand GOAWAY (`POST /admin/reconnect-clients`) through a real tonic server and client: what
//! the release tool relies on when it moves traffic off a colour.

use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axiom25_observability::ServiceInfo;
use axiom25_observability::admin::{self, Readiness, ReadinessState};
use axiom25_observability::lifecycle::{self, Lifecycle, Listener, Port};
use axiom25_observability::metrics::MetricsHandle;
use axiom25_observability::reconnect;
use axiom25_observability::shutdown::ShutdownSettings;
use futures_util::StreamExt as _;
use tokio::sync::Notify;
use tonic::transport::{Channel, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// How long a call marked `x-slow` takes.
const SLOW: Duration = Duration::from_millis(600);

/// Delays the calls marked `x-slow`, telling `started` when one begins; counts every call.
#[derive(Clone)]
struct Slow<S> {
    inner: S,
    started: Arc<Notify>,
    received: Arc<AtomicUsize>,
}

impl<S, B> tower::Service<http::Request<B>> for Slow<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.received.fetch_add(1, Ordering::SeqCst);
        let slow = request.headers().contains_key("x-slow");
        let answer = self.inner.call(request);
        let started = Arc::clone(&self.started);
        Box::pin(async move {
            if slow {
                started.notify_one();
                tokio::time::sleep(SLOW).await;
            }
            answer.await
        })
    }
}

/// A running server with health on gRPC and the reconnect route on admin, counting the TCP
/// connections its gRPC listener accepts.
struct Served {
    grpc: SocketAddr,
    admin: SocketAddr,
    accepted: Arc<AtomicUsize>,
    received: Arc<AtomicUsize>,
    started: Arc<Notify>,
    metrics: MetricsHandle,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<Result<(), lifecycle::LifecycleError>>,
}

async fn serve() -> Served {
    let metrics = MetricsHandle::new(&ServiceInfo::new("t", "0", None));
    let readiness = Readiness::new();
    let health = lifecycle::grpc_health(&readiness, &[]).await;
    let (reconnect, requests) = reconnect::channel(&metrics);
    let local = (Ipv4Addr::LOCALHOST, 0);
    let grpc = Listener::bind(Port::Grpc, "gRPC", local).await.expect("bind");
    let admin = Listener::bind(Port::Admin, "admin", local).await.expect("bind");
    let (grpc_addr, admin_addr) = (grpc.local_addr(), admin.local_addr());
    let started = Arc::new(Notify::new());
    let received = Arc::new(AtomicUsize::new(0));
    let (slow, counting) = (Arc::clone(&started), Arc::clone(&received));
    let router = Server::builder()
        .layer(tower::layer::layer_fn(move |inner| Slow {
            inner,
            started: Arc::clone(&slow),
            received: Arc::clone(&counting),
        }))
        .add_service(health);
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    let lifecycle = Lifecycle::new(&ShutdownSettings { drain_delay_ms: 0, grace_period_ms: 3000 }, readiness.clone())
        .admin(admin, admin::router(readiness.clone(), metrics.clone()).merge(reconnect.router()))
        .grpc_reconnectable(grpc, requests, Duration::from_secs(5), move |incoming, stop| {
            let counted = Arc::clone(&counted);
            let incoming = incoming.inspect(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
            });
            router.clone().serve_with_incoming_shutdown(incoming, stop)
        });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(lifecycle.run_until_stopped(async {
        let _ = stopped.await;
        "SIGTERM"
    }));
    let _ = readiness.subscribe().wait_for(|state| *state == ReadinessState::Ready).await;
    Served { grpc: grpc_addr, admin: admin_addr, accepted, received, started, metrics, stop, running }
}

async fn post(addr: SocketAddr, path: &'static str) -> (u16, String) {
    tokio::task::spawn_blocking(move || admin::http_post(addr, path, Duration::from_secs(2)))
        .await
        .expect("join")
        .expect("admin answers")
}

async fn client(addr: SocketAddr) -> HealthClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connect");
    HealthClient::new(channel)
}

fn slow_check() -> tonic::Request<HealthCheckRequest> {
    let mut request = tonic::Request::new(HealthCheckRequest::default());
    request.metadata_mut().insert("x-slow", "1".parse().expect("ascii"));
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_lets_the_call_in_flight_finish_and_moves_the_next_call_to_a_new_connection() {
    let served = serve().await;
    let mut health = client(served.grpc).await;
    health.check(HealthCheckRequest::default()).await.expect("first call");
    assert_eq!(served.accepted.load(Ordering::SeqCst), 1);

    let mut in_flight = health.clone();
    let slow = tokio::spawn(async move { in_flight.check(slow_check()).await });
    served.started.notified().await;
    let asked = tokio::time::Instant::now();
    assert_eq!(post(served.admin, "/admin/reconnect-clients").await, (200, r#"{"connections":1}"#.to_owned()));
    assert!(asked.elapsed() < SLOW / 2, "the answer does not wait for the calls in flight");
    slow.await.expect("join").expect("the call in flight when GOAWAY was sent finished OK");

    // The client learns that the old connection ended when it reads its end; a call queued on the
    // Channel in that instant is the next test's case.
    tokio::time::sleep(Duration::from_millis(200)).await;
    health.check(HealthCheckRequest::default()).await.expect("the same Channel is served after GOAWAY");
    assert_eq!(served.accepted.load(Ordering::SeqCst), 2, "the next call came over a new connection");
    let mut fresh = client(served.grpc).await;
    fresh.check(HealthCheckRequest::default()).await.expect("new clients are still accepted");
    assert_eq!(served.accepted.load(Ordering::SeqCst), 3);

    let text = served.metrics.render();
    assert!(text.contains("axiom25_grpc_reconnect_rounds_total 1"), "{text}");
    assert!(text.contains("axiom25_grpc_reconnect_connections_total 1"), "{text}");

    let _ = served.stop.send(());
    let stopped = tokio::time::timeout(Duration::from_secs(5), served.running).await;
    stopped.expect("stops within the grace period").expect("join").expect("clean stop");
    assert!(tokio::net::TcpStream::connect(served.grpc).await.is_err(), "the gRPC port still accepts after the drain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_after_a_reconnect_still_finishes_the_calls_in_flight_of_every_generation() {
    let served = serve().await;
    let mut first = client(served.grpc).await;
    let slow = tokio::spawn(async move { first.check(slow_check()).await });
    served.started.notified().await;
    assert_eq!(post(served.admin, "/admin/reconnect-clients").await.0, 200);

    // A call on the new generation, in flight when the stop signal comes.
    let mut second = client(served.grpc).await;
    let slow_too = tokio::spawn(async move { second.check(slow_check()).await });
    served.started.notified().await;
    let _ = served.stop.send(());

    slow.await.expect("join").expect("the retired generation's call finished");
    slow_too.await.expect("join").expect("the current generation's call finished");
    let stopped = tokio::time::timeout(Duration::from_secs(5), served.running).await;
    stopped.expect("stops").expect("join").expect("clean stop");
    assert_eq!(served.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_reconnect_with_no_grpc_server_running_answers_503() {
    let metrics = MetricsHandle::new(&ServiceInfo::new("t", "0", None));
    let (reconnect, requests) = reconnect::channel(&metrics);
    drop(requests);
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, reconnect.router()).await });
    let (status, body) = post(addr, "/admin/reconnect-clients").await;
    assert_eq!(status, 503, "{body}");
    let get =
        tokio::task::spawn_blocking(move || admin::http_get(addr, "/admin/reconnect-clients", Duration::from_secs(2)));
    assert_eq!(get.await.expect("join").expect("answers").0, 405, "only POST changes anything");
}

/// hyper's client (under tonic's Channel) fails the calls it has queued on a connection when that
/// connection ends after a GOAWAY, with CANCELLED "connection closed"
/// (<https://github.com/s2-streamstore/s2-sdk-rust/pull/149>), or INTERNAL "h2 protocol error"
/// when h2 already refuses new streams: at a reconnect, as at every maximum
/// connection age, a busy Channel loses a few calls. They never reach the server, so a client
/// may retry them as it retries UNAVAILABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calls_a_busy_channel_loses_to_a_reconnect_never_reached_the_server() {
    let served = serve().await;
    let health = client(served.grpc).await;
    let mut in_flight = health.clone();
    let slow = tokio::spawn(async move { in_flight.check(slow_check()).await });
    served.started.notified().await;
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (mut health, running) = (health.clone(), Arc::clone(&running));
            tokio::spawn(async move {
                let (mut ok, mut lost) = (0, 0);
                while running.load(Ordering::SeqCst) {
                    match health.check(HealthCheckRequest::default()).await {
                        Ok(_) => ok += 1,
                        Err(status) => {
                            let code = status.code();
                            assert!(matches!(code, tonic::Code::Cancelled | tonic::Code::Internal), "{status:?}");
                            lost += 1;
                        }
                    }
                }
                (ok, lost)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(post(served.admin, "/admin/reconnect-clients").await.0, 200);
    tokio::time::sleep(SLOW).await;
    running.store(false, Ordering::SeqCst);
    let (mut ok, mut lost) = (0, 0);
    for caller in callers {
        let (served_ok, served_lost) = caller.await.expect("join");
        (ok, lost) = (ok + served_ok, lost + served_lost);
    }
    slow.await.expect("join").expect("the call in flight finished OK");
    assert!(ok > 0, "calls went on over the new connection");
    assert_eq!(served.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(served.received.load(Ordering::SeqCst), ok + 1, "{lost} lost calls, none of them received");
}
