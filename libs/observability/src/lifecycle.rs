//! One service lifecycle: the listeners a service declares, the admin server beside them, and
//! the drain over all of them.
//!
//! On the stop signal: not ready at once (gRPC health follows readiness) → the drain delay, while
//! the listeners still accept, so that balancers polling health move traffic away first → every
//! listener stops accepting → work in flight gets the grace period → the post-drain hook (the
//! collector flushes its forwarding queues) gets what is left of the same deadline → the admin
//! server stops. The caller then flushes telemetry ([`crate::service::main`] does).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::transport::server::TcpIncoming;

use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::HealthReporter;

use crate::admin::{Readiness, ReadinessState};
use crate::reconnect::{self, Connections, ReconnectRequests};
use crate::shutdown::ShutdownSettings;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Serving = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
type AfterDrain = Box<dyn FnOnce(Instant) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Why a service could not bind or serve.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// A listener could not be bound.
    #[error("binding the {name} port {addr}")]
    Bind {
        /// The listener, e.g. `OTLP/gRPC`.
        name: &'static str,
        /// Where it was to listen.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A server failed while serving.
    #[error("the {name} server failed")]
    Serve {
        /// The listener whose server failed.
        name: &'static str,
        /// The server's error.
        #[source]
        source: BoxError,
    },
}

/// Which port a listener is, as the `Listening` log names it (`grpc_port`, `http_port`,
/// `admin_port`: tools and tests read those fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// A gRPC listener: `grpc_port`.
    Grpc,
    /// A public HTTP listener: `http_port`.
    Http,
    /// The admin listener: `admin_port`.
    Admin,
}

/// A bound listener, not yet serving. Binding port 0 picks a free port; [`Listener::local_addr`]
/// tells which.
#[derive(Debug)]
pub struct Listener {
    name: &'static str,
    port: Port,
    tcp: TcpListener,
    addr: SocketAddr,
}

impl Listener {
    /// Binds the `port` listener called `name` (for errors and logs) to `addr`.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn bind(port: Port, name: &'static str, addr: impl Into<SocketAddr>) -> Result<Self, LifecycleError> {
        let addr = addr.into();
        let bind_error = |source| LifecycleError::Bind { name, addr, source };
        let tcp = TcpListener::bind(addr).await.map_err(bind_error)?;
        let addr = tcp.local_addr().map_err(bind_error)?;
        Ok(Self { name, port, tcp, addr })
    }

    /// The address it is bound to.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Resolves when a listener is to stop accepting; the server then finishes what it has.
pub type StopAccepting = Pin<Box<dyn Future<Output = ()> + Send>>;

struct Served {
    name: &'static str,
    serving: Serving,
}

/// The listeners of one service and the drain over them; see the module docs for the order.
pub struct Lifecycle {
    readiness: Readiness,
    drain_delay: Duration,
    grace: Duration,
    ports: Vec<(Port, u16)>,
    admin: Option<(Listener, Router)>,
    served: Vec<Served>,
    close: Arc<watch::Sender<bool>>,
    after_drain: Option<AfterDrain>,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle").field("ports", &self.ports).finish_non_exhaustive()
    }
}

impl Lifecycle {
    /// A lifecycle with the drain delay and grace period of `settings`, reporting through
    /// `readiness` (starting until [`Lifecycle::run_until_stopped`] serves).
    #[must_use]
    pub fn new(settings: &ShutdownSettings, readiness: Readiness) -> Self {
        Self {
            readiness,
            drain_delay: Duration::from_millis(settings.drain_delay_ms),
            grace: Duration::from_millis(settings.grace_period_ms),
            ports: Vec::new(),
            admin: None,
            served: Vec::new(),
            close: Arc::new(watch::Sender::new(false)),
            after_drain: None,
        }
    }

    /// Serves `/livez`, `/readyz`, `/metrics` (and whatever else `router` has) on `listener`
    /// until the very end, so the drain can be watched.
    #[must_use]
    pub fn admin(mut self, listener: Listener, router: Router) -> Self {
        self.ports.push((listener.port, listener.addr.port()));
        self.admin = Some((listener, router));
        self
    }

    /// Serves `listener` with `serve`, given the listener and the future that says when to stop
    /// accepting; `serve` resolves once the work it accepted is done.
    #[must_use]
    pub fn serve<F, E>(mut self, listener: Listener, serve: impl FnOnce(TcpListener, StopAccepting) -> F) -> Self
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let mut closed = self.close.subscribe();
        let stop_accepting: StopAccepting = Box::pin(async move {
            let _ = closed.wait_for(|closed| *closed).await;
        });
        let serving = serve(listener.tcp, stop_accepting);
        let close = Arc::clone(&self.close);
        // One failed server closes the others, so the service stops as a whole.
        let serving: Serving = Box::pin(async move {
            let result: Result<(), BoxError> = serving.await.map_err(Into::into);
            if result.is_err() {
                close.send_replace(true);
            }
            result
        });
        self.ports.push((listener.port, listener.addr.port()));
        self.served.push(Served { name: listener.name, serving });
        self
    }

    /// Serves a tonic server on `listener`: `serve` is given the incoming connections (with
    /// TCP_NODELAY, which tonic sets only on listeners it creates) and the stop-accepting future,
    /// and is typically `|incoming, stop| router.serve_with_incoming_shutdown(incoming, stop)`.
    #[must_use]
    pub fn grpc<F>(self, listener: Listener, serve: impl FnOnce(TcpIncoming, StopAccepting) -> F) -> Self
    where
        F: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
    {
        // Nagle's algorithm with delayed ACKs costs 40 ms per small answer.
        self.serve(listener, |tcp, stop| serve(TcpIncoming::from(tcp).with_nodelay(Some(true)), stop))
    }

    /// Serves a tonic server on `listener` in generations, so that the [`reconnect::ReconnectClients`]
    /// of `requests` can ask the clients connected at a moment to reconnect ([`crate::reconnect`]).
    /// `serve` starts one generation and is typically
    /// `|incoming, stop| router.clone().serve_with_incoming_shutdown(incoming, stop)`; a generation
    /// retired by a reconnect gets `grace` to finish its calls. The stop signal stops them all.
    #[must_use]
    pub fn grpc_reconnectable<F>(
        self,
        listener: Listener,
        requests: ReconnectRequests,
        grace: Duration,
        serve: impl Fn(Connections, StopAccepting) -> F + Send + 'static,
    ) -> Self
    where
        F: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
    {
        self.serve(listener, move |tcp, stop| reconnect::serve_in_generations(tcp, stop, requests, grace, serve))
    }

    /// Serves an axum router on `listener`, with the peer address as `ConnectInfo<SocketAddr>`
    /// and TCP_NODELAY on every connection.
    #[must_use]
    pub fn http(self, listener: Listener, router: Router) -> Self {
        self.serve(listener, |tcp, stop| {
            let tcp = tcp.tap_io(|stream| {
                let _ = stream.set_nodelay(true);
            });
            axum::serve(tcp, router.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(stop)
                .into_future()
        })
    }

    /// Runs `hook` once the listeners are closed and their work is done or abandoned, before the
    /// admin server stops; it is given the deadline of the grace period, which it shares.
    #[must_use]
    pub fn after_drain<F>(mut self, hook: impl FnOnce(Instant) -> F + Send + 'static) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.after_drain =
            Some(Box::new(move |deadline| Box::pin(hook(deadline)) as Pin<Box<dyn Future<Output = ()> + Send>>));
        self
    }

    /// Serves until `stop` resolves (or a server ends by itself), then drains as the module docs
    /// say and returns.
    ///
    /// # Errors
    /// The first server that failed; the others are still drained.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = &'static str> + Send + 'static,
    ) -> Result<(), LifecycleError> {
        let Self { readiness, drain_delay, grace, ports, admin, served, close, after_drain } = self;

        let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin = admin.map(|(listener, router)| {
            tokio::spawn(async move {
                axum::serve(listener.tcp, router)
                    .with_graceful_shutdown(async {
                        let _ = admin_stopped.await;
                    })
                    .await
            })
        });

        let (names, servings): (Vec<_>, Vec<_>) = served.into_iter().map(|s| (s.name, s.serving)).unzip();
        // Boxed, so that dropping it below really drops (abandons) the servers.
        let mut serving = Box::pin(futures_util::future::join_all(servings));

        readiness.set_ready();
        let port = |wanted: Port| ports.iter().find(|(port, _)| *port == wanted).map(|(_, number)| *number);
        tracing::info!(
            grpc_port = port(Port::Grpc),
            http_port = port(Port::Http),
            admin_port = port(Port::Admin),
            "Listening"
        );

        // A server that ends before the signal (it failed) ends the service; the rest still drain.
        let mut results = None;
        let deadline = tokio::select! {
            ended = &mut serving => {
                results = Some(ended);
                readiness.set_draining();
                Instant::now() + grace
            }
            signal = stop => {
                let deadline = Instant::now() + drain_delay + grace;
                readiness.set_draining();
                tracing::info!(signal, drain_delay_ms = drain_delay.as_millis() as u64, "Draining");
                tokio::select! {
                    ended = &mut serving => results = Some(ended),
                    () = tokio::time::sleep(drain_delay) => {}
                }
                deadline
            }
        };
        close.send_replace(true);
        let results = match results {
            Some(results) => results,
            None => {
                tracing::info!(
                    grace_period_ms = grace.as_millis() as u64,
                    "Listeners closed; finishing work in flight"
                );
                match tokio::time::timeout_at(deadline, &mut serving).await {
                    Ok(results) => results,
                    Err(_) => {
                        tracing::warn!("Grace period over; abandoning work still in flight");
                        Vec::new()
                    }
                }
            }
        };
        // Dropping the servers abandons whatever they still hold.
        drop(serving);

        if let Some(hook) = after_drain {
            hook(deadline).await;
        }
        let _ = admin_stop.send(());
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        tracing::info!("Stopped");
        let failed = names.into_iter().zip(results).find_map(|(name, result)| result.err().map(|e| (name, e)));
        match failed {
            Some((name, source)) => Err(LifecycleError::Serve { name, source }),
            None => Ok(()),
        }
    }
}

/// A gRPC health service that follows `readiness`: SERVING only while ready, NOT_SERVING while
/// starting and from the stop signal on, for the whole server (`""`) and each of `services`.
pub async fn grpc_health(
    readiness: &Readiness,
    services: &'static [&'static str],
) -> HealthServer<impl tonic_health::pb::health_server::Health> {
    let (reporter, server) = tonic_health::server::health_reporter();
    set_health(&reporter, services, ServingStatus::NotServing).await;
    let mut changes = readiness.subscribe();
    tokio::spawn(async move {
        loop {
            let ready = *changes.borrow_and_update() == ReadinessState::Ready;
            let status = if ready { ServingStatus::Serving } else { ServingStatus::NotServing };
            set_health(&reporter, services, status).await;
            if changes.changed().await.is_err() {
                return;
            }
        }
    });
    server
}

async fn set_health(reporter: &HealthReporter, services: &[&'static str], status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for service in services {
        reporter.set_service_status(*service, status).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// What happened when, in paused-clock seconds since the test started.
    #[derive(Clone, Default)]
    struct Events(Arc<Mutex<Vec<(u64, String)>>>);

    impl Events {
        fn push(&self, start: Instant, what: impl Into<String>) {
            self.0.lock().expect("lock").push((start.elapsed().as_secs(), what.into()));
        }
        fn take(&self) -> Vec<(u64, String)> {
            std::mem::take(&mut *self.0.lock().expect("lock"))
        }
    }

    fn settings(drain_delay_s: u64, grace_s: u64) -> ShutdownSettings {
        ShutdownSettings { drain_delay_ms: drain_delay_s * 1000, grace_period_ms: grace_s * 1000 }
    }

    async fn listener(port: Port) -> Listener {
        Listener::bind(port, "test", (std::net::Ipv4Addr::LOCALHOST, 0)).await.expect("bind")
    }

    /// A lifecycle whose one listener "accepts" until told to stop, then needs `in_flight`
    /// seconds (or forever) to finish; stopped at t = 10 s.
    async fn run(events: &Events, in_flight: Option<u64>) -> Result<(), LifecycleError> {
        let start = Instant::now();
        let readiness = Readiness::new();
        let mut states = readiness.subscribe();
        let watcher = events.clone();
        tokio::spawn(async move {
            while states.changed().await.is_ok() {
                let state = *states.borrow_and_update();
                watcher.push(start, state.as_str());
            }
        });
        let (server, hook) = (events.clone(), events.clone());
        let lifecycle = Lifecycle::new(&settings(1, 5), readiness)
            .serve(listener(Port::Grpc).await, move |_tcp, stop_accepting| async move {
                stop_accepting.await;
                server.push(start, "stopped accepting");
                match in_flight {
                    Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
                    None => std::future::pending().await,
                }
                server.push(start, "work in flight done");
                Ok::<_, std::io::Error>(())
            })
            .after_drain(move |deadline| async move {
                hook.push(start, format!("after drain, deadline at {}", (deadline - start).as_secs()));
            });
        let stop = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            "SIGTERM"
        };
        let result = lifecycle.run_until_stopped(stop).await;
        events.push(start, "returned");
        result
    }

    /// What [`run`] sees up to the closing of the listener (ready, stopped at 10 s, closed after
    /// the 1 s drain delay), then `end`.
    fn drain_then(end: &[(u64, &str)]) -> Vec<(u64, String)> {
        let start = [(0, "ready"), (10, "draining"), (11, "stopped accepting")];
        start.iter().chain(end).map(|(at, what)| (*at, (*what).to_owned())).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn the_drain_runs_not_ready_then_delay_then_close_then_grace_then_the_hook() {
        let events = Events::default();
        run(&events, Some(2)).await.expect("clean stop");
        let end = [(13, "work in flight done"), (13, "after drain, deadline at 16"), (13, "returned")];
        assert_eq!(events.take(), drain_then(&end));
    }

    #[tokio::test(start_paused = true)]
    async fn work_still_in_flight_at_the_grace_deadline_is_abandoned() {
        let events = Events::default();
        run(&events, None).await.expect("an abandoned request is not a failure");
        assert_eq!(events.take(), drain_then(&[(16, "after drain, deadline at 16"), (16, "returned")]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_server_closes_the_others_and_is_reported_by_name() {
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::clone(&closed);
        let failing = Listener::bind(Port::Http, "OTLP/HTTP", (std::net::Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
        let readiness = Readiness::new();
        let result = Lifecycle::new(&settings(1, 5), readiness.clone())
            .serve(listener(Port::Grpc).await, move |_tcp, stop_accepting| async move {
                stop_accepting.await;
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, std::io::Error>(())
            })
            .serve(failing, |_tcp, _stop| async { Err(std::io::Error::other("accept failed")) })
            .run_until_stopped(std::future::pending::<&'static str>())
            .await;
        match result {
            Err(LifecycleError::Serve { name, source }) => {
                assert_eq!((name, source.to_string().as_str()), ("OTLP/HTTP", "accept failed"));
            }
            other => panic!("expected the OTLP/HTTP failure, got {other:?}"),
        }
        assert!(closed.load(std::sync::atomic::Ordering::SeqCst), "the healthy server was told to stop");
        assert_eq!(readiness.state(), ReadinessState::Draining);
    }

    #[tokio::test]
    async fn a_port_in_use_is_reported_with_its_name_and_address() {
        let taken = listener(Port::Http).await;
        let error = Listener::bind(Port::Http, "OTLP/HTTP", taken.local_addr()).await.expect_err("in use");
        assert_eq!(error.to_string(), format!("binding the OTLP/HTTP port {}", taken.local_addr()));
    }

    async fn get(addr: SocketAddr, path: &'static str) -> std::io::Result<(u16, String)> {
        tokio::task::spawn_blocking(move || crate::admin::http_get(addr, path, Duration::from_secs(2)))
            .await
            .expect("join")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn real_listeners_accept_during_the_drain_delay_and_refuse_after_it() {
        let readiness = Readiness::new();
        let metrics = crate::metrics::MetricsHandle::new(&crate::ServiceInfo::new("t", "0", None));
        let (public, admin) = (listener(Port::Http).await, listener(Port::Admin).await);
        let (public_addr, admin_addr) = (public.local_addr(), admin.local_addr());
        let router = Router::new().route("/", axum::routing::get(async || "hello"));
        let lifecycle =
            Lifecycle::new(&ShutdownSettings { drain_delay_ms: 600, grace_period_ms: 1000 }, readiness.clone())
                .http(public, router)
                .admin(admin, crate::admin::router(readiness.clone(), metrics));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(lifecycle.run_until_stopped(async {
            let _ = stop_rx.await;
            "SIGTERM"
        }));
        let mut ready = readiness.subscribe();
        let _ = ready.wait_for(|state| *state == ReadinessState::Ready).await;
        assert_eq!(get(public_addr, "/").await.expect("served").0, 200);
        assert_eq!(get(admin_addr, "/readyz").await.expect("admin").0, 200);

        let _ = stop_tx.send(());
        let _ = ready.wait_for(|state| *state == ReadinessState::Draining).await;
        assert_eq!(get(admin_addr, "/readyz").await.expect("admin during the drain").0, 503);
        assert_eq!(get(public_addr, "/").await.expect("still accepting during the drain delay").0, 200);

        tokio::time::timeout(Duration::from_secs(5), running).await.expect("stops").expect("join").expect("clean");
        assert!(get(public_addr, "/").await.is_err(), "accepting after the drain");
        assert!(get(admin_addr, "/livez").await.is_err(), "the admin server outlived the service");
    }
}
