//! Fault injection for drills (docs/contracts.md §9): a share of MatrixService calls answered INTERNAL and
//! a delay before answering, to stage a bad release. Off unless configured; when on, the api
//! warns at start and exports `axiom25_fault_injection_active 1`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{Request, Response};
use serde::Deserialize;
use tower::Service;

use crate::layer::{ConfigLayer, Configured, Intercept};

/// Path prefix of the calls faults apply to; health and reflection stay truthful.
const MATRIX_PATH: &str = "/axiom25.matrix.v1.MatrixService/";

/// What to inject.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSettings {
    /// Share of MatrixService calls (0–1) answered INTERNAL, as a broken release would.
    pub error_ratio: f64,
    /// Milliseconds added before every MatrixService answer.
    pub latency_ms: u64,
}

impl FaultSettings {
    /// Whether any fault is configured.
    #[must_use]
    pub fn active(&self) -> bool {
        self.error_ratio > 0.0 || self.latency_ms > 0
    }

    /// Problems with these settings, each naming its key under `prefix`.
    #[must_use]
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if !(0.0..=1.0).contains(&self.error_ratio) {
            problems.push(format!("{prefix}.error_ratio: must be within 0..=1, got {}", self.error_ratio));
        }
        if self.latency_ms > 60_000 {
            problems.push(format!("{prefix}.latency_ms: must be at most 60000, got {}", self.latency_ms));
        }
        problems
    }

    /// Warns and records `axiom25_fault_injection_active` (1 when a fault is configured, else 0).
    pub fn announce(&self) {
        metrics::describe_gauge!("axiom25_fault_injection_active", "1 while faults.* injects errors or latency.");
        metrics::gauge!("axiom25_fault_injection_active").set(if self.active() { 1.0 } else { 0.0 });
        if self.active() {
            tracing::warn!(
                error_ratio = self.error_ratio,
                latency_ms = self.latency_ms,
                "Fault injection is on: MatrixService answers are deliberately degraded"
            );
        }
    }
}

/// Injects the configured faults into MatrixService calls.
pub type FaultLayer = ConfigLayer<FaultPlan>;

/// The service produced by [`FaultLayer`].
pub type FaultInjector<S> = Configured<FaultPlan, S>;

/// The faults to inject and the count of calls they applied to so far, shared by every service
/// the layer wraps.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    settings: FaultSettings,
    calls: Arc<AtomicU64>,
}

impl FaultLayer {
    /// A layer injecting `settings`.
    #[must_use]
    pub fn new(settings: FaultSettings) -> Self {
        Self::with_config(FaultPlan { settings, calls: Arc::new(AtomicU64::new(0)) })
    }
}

/// Whether call number `n` (from 0) fails: exactly ⌊(n+1)·ratio⌋ of the first n+1 calls do, spread
/// evenly, so a drill's error share is what was configured even over a few calls.
fn fails(n: u64, ratio: f64) -> bool {
    ((n + 1) as f64 * ratio).floor() > (n as f64 * ratio).floor()
}

impl<S, ReqBody, ResBody> Intercept<S, ReqBody> for FaultPlan
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn intercept(&self, inner: &mut S, request: Request<ReqBody>) -> Self::Future {
        let Self { settings, calls } = self;
        if !settings.active() || !request.uri().path().starts_with(MATRIX_PATH) {
            return Box::pin(inner.call(request));
        }
        let fail = fails(calls.fetch_add(1, Ordering::Relaxed), settings.error_ratio);
        let latency = Duration::from_millis(settings.latency_ms);
        // The readied service answers this call; a fresh clone takes its place (tower's idiom).
        let clone = inner.clone();
        let mut inner = std::mem::replace(inner, clone);
        Box::pin(async move {
            tokio::time::sleep(latency).await;
            if fail {
                metrics::counter!("axiom25_fault_injected_errors_total").increment(1);
                return Ok(tonic::Status::internal("fault injection: faults.error_ratio").into_http());
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::{Layer as _, ServiceExt};

    #[test]
    fn the_share_of_failed_calls_is_the_configured_ratio() {
        for ratio in [0.0, 0.1, 0.25, 0.5, 1.0] {
            let failed = (0..1000).filter(|&n| fails(n, ratio)).count();
            assert_eq!(failed, (1000.0 * ratio) as usize, "ratio {ratio}");
        }
    }

    #[test]
    fn out_of_range_faults_are_refused() {
        let bad = FaultSettings { error_ratio: 1.5, latency_ms: 120_000 };
        let problems = bad.validate("faults").join("\n");
        assert!(problems.contains("faults.error_ratio") && problems.contains("faults.latency_ms"), "{problems}");
        assert!(!FaultSettings::default().active());
    }

    async fn status_of(layer: &FaultLayer, path: &str) -> String {
        let ok = tower::service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(String::new())) });
        let request = Request::builder().uri(path).body(()).expect("request");
        let response = layer.layer(ok).oneshot(request).await.expect("answer");
        response.headers().get("grpc-status").map_or("0".into(), |code| code.to_str().expect("ascii").to_owned())
    }

    #[tokio::test]
    async fn matrix_calls_fail_with_internal_but_health_stays_truthful() {
        let layer = FaultLayer::new(FaultSettings { error_ratio: 1.0, latency_ms: 0 });
        assert_eq!(status_of(&layer, "/axiom25.matrix.v1.MatrixService/Multiply").await, "13");
        assert_eq!(status_of(&layer, "/grpc.health.v1.Health/Check").await, "0");
    }

    #[tokio::test(start_paused = true)]
    async fn latency_is_added_before_answering() {
        let layer = FaultLayer::new(FaultSettings { error_ratio: 0.0, latency_ms: 250 });
        let started = tokio::time::Instant::now();
        assert_eq!(status_of(&layer, "/axiom25.matrix.v1.MatrixService/Analyze").await, "0");
        assert!(started.elapsed() >= Duration::from_millis(250));
    }
}
