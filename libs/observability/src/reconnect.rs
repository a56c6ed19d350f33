//! On-demand reconnection of gRPC clients: `POST /admin/reconnect-clients` makes the server send
//! HTTP/2 GOAWAY on every connection open at that moment, lets their calls in flight finish, and
//! keeps accepting new connections. The release tool calls it on the colour that lost traffic, so
//! clients follow a switch at once instead of at their maximum connection age.
//!
//! The listener's accept loop is the lifecycle's; it hands each accepted connection to the
//! current *generation*, one whole tonic server (`serve_with_incoming_shutdown` over a channel of
//! connections), so every tonic feature (maximum connection age, keepalive, layers) still applies.
//! A reconnect starts a new generation for new connections and shuts the old one down gracefully:
//! tonic sends GOAWAY on each of its connections and waits for their streams, for at most the
//! grace given. After it the accept loop stops waiting for the old generation; tonic's connection
//! tasks are its own, so calls still in flight are not cut but end with their connection, at its
//! maximum age plus grace.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use futures_util::StreamExt as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

use crate::lifecycle::StopAccepting;
use crate::metrics::MetricsHandle;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Reconnect rounds served.
const ROUNDS_METRIC: &str = "axiom25_grpc_reconnect_rounds_total";
/// Connections asked to reconnect, over all rounds.
const CONNECTIONS_METRIC: &str = "axiom25_grpc_reconnect_connections_total";

/// The gRPC server is not serving (not started, or draining): nothing to reconnect.
#[derive(Debug, thiserror::Error)]
#[error("the gRPC server is not accepting connections")]
pub struct NotServing;

/// Asks the gRPC clients connected at this moment to reconnect. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReconnectClients {
    requests: mpsc::Sender<oneshot::Sender<usize>>,
    metrics: MetricsHandle,
}

/// The other end of [`ReconnectClients`], for the one gRPC listener it drives
/// ([`crate::lifecycle::Lifecycle::grpc_reconnectable`]).
#[derive(Debug)]
pub struct ReconnectRequests(mpsc::Receiver<oneshot::Sender<usize>>);

/// A handle and the requests it sends; rounds and connections are counted in `metrics`.
#[must_use]
pub fn channel(metrics: &MetricsHandle) -> (ReconnectClients, ReconnectRequests) {
    metrics.in_scope(|| {
        metrics::describe_counter!(ROUNDS_METRIC, "Rounds of GOAWAY asked through /admin/reconnect-clients.");
        metrics::describe_counter!(CONNECTIONS_METRIC, "gRPC connections sent GOAWAY by a reconnect round.");
    });
    let (requests, receiver) = mpsc::channel(4);
    (ReconnectClients { requests, metrics: metrics.clone() }, ReconnectRequests(receiver))
}

impl ReconnectClients {
    /// Sends GOAWAY on every connection open now; returns how many there were.
    ///
    /// # Errors
    /// When the gRPC server has stopped accepting connections (the drain).
    pub async fn request(&self) -> Result<usize, NotServing> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(reply).await.map_err(|_| NotServing)?;
        let connections = answer.await.map_err(|_| NotServing)?;
        self.metrics.in_scope(|| {
            metrics::counter!(ROUNDS_METRIC).increment(1);
            metrics::counter!(CONNECTIONS_METRIC).increment(connections as u64);
        });
        Ok(connections)
    }

    /// `POST /admin/reconnect-clients`, to merge into the admin router: 200 with
    /// `{"connections": n}`, or 503 once the gRPC server has stopped accepting connections.
    pub fn router(self) -> Router {
        Router::new().route("/admin/reconnect-clients", axum::routing::post(reconnect_clients)).with_state(self)
    }
}

async fn reconnect_clients(State(reconnect): State<ReconnectClients>) -> impl IntoResponse {
    let (status, body) = match reconnect.request().await {
        Ok(connections) => (StatusCode::OK, serde_json::json!({"connections": connections})),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"error": error.to_string()})),
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string())
}

/// An accepted TCP connection, counted as open in its generation until tonic drops it.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    _open: Arc<()>,
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The connections handed to one generation; ends when the generation is retired or stopped.
#[derive(Debug)]
pub struct Connections(mpsc::Receiver<io::Result<Connection>>);

impl futures_util::Stream for Connections {
    type Item = io::Result<Connection>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// The accept loop's end of one generation; dropping it stops the generation gracefully.
struct Generation {
    connections: mpsc::Sender<io::Result<Connection>>,
    open: Arc<()>,
    _stop: oneshot::Sender<()>,
    abandon_at: oneshot::Sender<Instant>,
}

impl Generation {
    fn start<F>(
        number: u64,
        serve: &impl Fn(Connections, StopAccepting) -> F,
        tasks: &mut JoinSet<Result<(), BoxError>>,
    ) -> Self
    where
        F: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
    {
        // A few connections of slack; the generation's task takes them as fast as they come, so
        // waiting on a full channel is back-pressure on the accept loop, never a deadlock.
        let (connections, incoming) = mpsc::channel(16);
        let (stop, stopped) = oneshot::channel::<()>();
        let (abandon_at, abandon) = oneshot::channel::<Instant>();
        let serving = serve(
            Connections(incoming),
            Box::pin(async move {
                let _ = stopped.await;
            }),
        );
        tasks.spawn(async move {
            let abandon = async move {
                match abandon.await {
                    Ok(deadline) => tokio::time::sleep_until(deadline).await,
                    // Stopped by the drain, whose own grace period bounds it.
                    Err(_) => std::future::pending().await,
                }
            };
            tokio::select! {
                served = serving => served.map_err(Into::into),
                () = abandon => {
                    tracing::warn!(generation = number, "Reconnect grace over; connections still open end at their maximum age");
                    Ok(())
                }
            }
        });
        Self { connections, open: Arc::new(()), _stop: stop, abandon_at }
    }

    /// Connections accepted by this generation and not yet closed.
    fn open(&self) -> usize {
        Arc::strong_count(&self.open) - 1
    }

    async fn hand_over(&self, accepted: io::Result<TcpStream>) {
        let accepted = accepted.map(|stream| Connection { stream, _open: Arc::clone(&self.open) });
        // A closed channel means the generation's server failed; the loop learns it from the task.
        let _ = self.connections.send(accepted).await;
    }

    /// Stops the generation (tonic sends GOAWAY and waits for calls in flight) for at most `grace`.
    fn retire(self, grace: Duration) {
        let _ = self.abandon_at.send(Instant::now() + grace);
    }
}

/// Accepts on `tcp` until `stop_accepting`, serving each generation with `serve`; see the module
/// docs. Resolves once every generation has finished, with the first server error.
pub(crate) async fn serve_in_generations<F>(
    tcp: TcpListener,
    mut stop_accepting: StopAccepting,
    ReconnectRequests(mut requests): ReconnectRequests,
    grace: Duration,
    serve: impl Fn(Connections, StopAccepting) -> F,
) -> Result<(), BoxError>
where
    F: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
{
    // Nagle's algorithm with delayed ACKs costs 40 ms per small answer.
    let mut incoming = TcpIncoming::from(tcp).with_nodelay(Some(true));
    let mut tasks = JoinSet::new();
    let mut number = 0;
    let mut current = Generation::start(number, &serve, &mut tasks);
    let mut failed = None;
    loop {
        tokio::select! {
            () = &mut stop_accepting => break,
            accepted = incoming.next() => match accepted {
                Some(accepted) => current.hand_over(accepted).await,
                None => break,
            },
            Some(reply) = requests.recv() => {
                number += 1;
                let retiring = std::mem::replace(&mut current, Generation::start(number, &serve, &mut tasks));
                let connections = retiring.open();
                retiring.retire(grace);
                tracing::info!(connections, generation = number, "Asked gRPC clients to reconnect");
                let _ = reply.send(connections);
            }
            Some(ended) = tasks.join_next() => {
                if let Some(error) = finished(ended) {
                    failed = Some(error);
                    break;
                }
            }
        }
    }
    // Closing the listening socket now makes new clients fail fast instead of hanging.
    drop(incoming);
    drop(requests);
    drop(current);
    while let Some(ended) = tasks.join_next().await {
        if let Some(error) = finished(ended) {
            failed.get_or_insert(error);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// The error of a generation that ended, if it failed.
fn finished(ended: Result<Result<(), BoxError>, tokio::task::JoinError>) -> Option<BoxError> {
    match ended {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error),
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => Some(Box::new(join)),
    }
}
