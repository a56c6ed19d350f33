//! The operations view's data: readiness of the api and the collector and RED figures from the
//! collector's span metrics, polled in the background; recent traces, a trace and its logs, read
//! from the collector on request.

pub mod collector;
pub mod span_metrics;

use std::collections::VecDeque;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use axiom25_observability::metrics::MetricsHandle;
use http::StatusCode;

pub use axiom25_telemetry_query::{LogView as LogRecord, SpanView as Span, TraceDetail as Trace, TraceSummary};

pub use self::collector::{Collector, CollectorError, TraceFilter};
use self::span_metrics::{Red, Snapshot};
use crate::backend::Backend;
use crate::settings::OpsSettings;

/// Gauge of each upstream's readiness (1 or 0), labelled `upstream`.
pub const UPSTREAM_READY: &str = "axiom25_gateway_upstream_ready";

/// What the last check of one upstream found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// Not checked yet.
    Unknown,
    /// `ready` with what was seen, e.g. per-address health.
    Checked {
        /// Whether it can serve.
        ready: bool,
        /// What the check saw.
        detail: String,
        /// When.
        at: SystemTime,
    },
    /// The collector endpoint is empty.
    NotConfigured,
}

impl Upstream {
    /// Whether the last check found it ready.
    #[must_use]
    pub const fn is_ready(&self) -> bool {
        matches!(self, Self::Checked { ready: true, .. })
    }
}

/// RED figures over the window, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub enum RedView {
    /// The collector is not configured.
    NotConfigured,
    /// Fewer than two snapshots in the window so far.
    Collecting,
    /// The figures, with the seconds they cover.
    Ready {
        /// Seconds between the oldest and the newest snapshot.
        window_seconds: f64,
        /// Per operation, by service and span name.
        rows: Vec<Red>,
    },
}

/// Everything `/ops` shows from the poller.
#[derive(Debug, Clone)]
pub struct OpsView {
    /// The api.
    pub api: Upstream,
    /// The telemetry-collector.
    pub collector: Upstream,
    /// RED figures.
    pub red: RedView,
    /// Why the last metrics read failed, if it did.
    pub metrics_error: Option<String>,
}

/// Handle on the operations data; clones share one poller.
#[derive(Debug, Clone)]
pub struct Ops {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    collector: Option<Collector>,
    window: Duration,
    timeout: Duration,
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    api: Upstream,
    collector: Upstream,
    snapshots: VecDeque<Snapshot>,
    metrics_error: Option<String>,
}

impl Ops {
    /// Starts the poller: a check of both upstreams and a read of the span metrics every
    /// `settings.poll_interval_ms`. Must run inside a tokio runtime.
    #[must_use]
    pub fn start(settings: &OpsSettings, backend: Backend, metrics: &MetricsHandle) -> Self {
        metrics.in_scope(|| {
            metrics::describe_gauge!(
                UPSTREAM_READY,
                "Whether the upstream passed its last readiness check (1) or not (0)."
            );
        });
        let timeout = Duration::from_millis(settings.collector_timeout_ms);
        let collector =
            (!settings.collector_endpoint.is_empty()).then(|| Collector::new(&settings.collector_endpoint, timeout));
        let state = State {
            api: Upstream::Unknown,
            collector: if collector.is_some() { Upstream::Unknown } else { Upstream::NotConfigured },
            snapshots: VecDeque::new(),
            metrics_error: None,
        };
        let inner = Arc::new(Inner {
            backend,
            collector,
            window: Duration::from_secs(settings.window_seconds),
            timeout,
            state: RwLock::new(state),
        });
        // The poller holds only a weak reference: it stops once the last handle (the router's) is
        // dropped, so a stopped server leaves no task behind. It publishes the upstream gauges into
        // this gateway's registry.
        tokio::spawn(metrics.scope(poll(Arc::downgrade(&inner), Duration::from_millis(settings.poll_interval_ms))));
        Self { inner }
    }

    /// The collector client, `None` when not configured.
    #[must_use]
    pub fn collector(&self) -> Option<&Collector> {
        self.inner.collector.as_ref()
    }

    /// What the poller knows now.
    #[must_use]
    pub fn view(&self) -> OpsView {
        let state = self.inner.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let red = if self.inner.collector.is_none() {
            RedView::NotConfigured
        } else {
            match (state.snapshots.front(), state.snapshots.back()) {
                (Some(oldest), Some(newest)) if state.snapshots.len() >= 2 => RedView::Ready {
                    window_seconds: newest.taken_at.duration_since(oldest.taken_at).as_secs_f64(),
                    rows: span_metrics::red(oldest, newest),
                },
                _ => RedView::Collecting,
            }
        };
        OpsView {
            api: state.api.clone(),
            collector: state.collector.clone(),
            red,
            metrics_error: state.metrics_error.clone(),
        }
    }
}

async fn poll(inner: Weak<Inner>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        inner.poll_once().await;
    }
}

impl Inner {
    async fn poll_once(&self) {
        let api = self.check_api();
        let collector = async {
            match &self.collector {
                Some(collector) => Some(tokio::join!(check_collector(collector), read_metrics(collector))),
                None => None,
            }
        };
        let (api, collector) = tokio::join!(api, collector);
        metrics::gauge!(UPSTREAM_READY, "upstream" => "api").set(if api.is_ready() { 1.0 } else { 0.0 });
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.api = api;
        if let Some((ready, snapshot)) = collector {
            metrics::gauge!(UPSTREAM_READY, "upstream" => "telemetry-collector").set(if ready.is_ready() {
                1.0
            } else {
                0.0
            });
            state.collector = ready;
            match snapshot {
                Ok(snapshot) => {
                    let newest = snapshot.taken_at;
                    state.snapshots.push_back(snapshot);
                    while state
                        .snapshots
                        .front()
                        .is_some_and(|oldest| newest.duration_since(oldest.taken_at) > self.window)
                    {
                        state.snapshots.pop_front();
                    }
                    state.metrics_error = None;
                }
                Err(error) => {
                    tracing::debug!(%error, "Reading the collector's span metrics failed");
                    state.metrics_error = Some(error);
                }
            }
        }
    }

    async fn check_api(&self) -> Upstream {
        let health = self.backend.health(self.timeout).await;
        let ready = health.iter().any(|address| address.status.as_deref() == Ok("SERVING"));
        let detail = if health.is_empty() {
            "no address resolved".to_owned()
        } else {
            health
                .iter()
                .map(|address| match &address.status {
                    Ok(status) => format!("{}: {status}", address.addr),
                    Err(error) => format!("{}: {error}", address.addr),
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        Upstream::Checked { ready, detail, at: SystemTime::now() }
    }
}

async fn check_collector(collector: &Collector) -> Upstream {
    let (ready, detail) = match collector.get("/readyz").await {
        Ok((status, _)) => (status == StatusCode::OK, format!("/readyz answered {status}")),
        Err(error) => (false, error.to_string()),
    };
    Upstream::Checked { ready, detail, at: SystemTime::now() }
}

async fn read_metrics(collector: &Collector) -> Result<Snapshot, String> {
    let (status, body) = collector.get("/metrics").await.map_err(|error| error.to_string())?;
    if status != StatusCode::OK {
        return Err(format!("/metrics answered {status}"));
    }
    let text = std::str::from_utf8(&body).map_err(|_| "/metrics is not UTF-8".to_owned())?;
    span_metrics::parse(text, Instant::now()).map_err(|error| format!("/metrics {error}"))
}
