//! Prometheus exposition through the `metrics` facade, one registry per application: histogram
//! buckets for millisecond SLOs, process metrics and `axiom25_build_info`.
//!
//! Each application owns a [`MetricsHandle`], so two applications in one test process (the
//! gateway's tests run an api beside the gateway) count separately. The RED layers record through
//! the handle they are given; code that uses the `metrics` macros records into the application
//! whose [`MetricsHandle::scope`] it runs in (each request the RED layers serve, and each
//! background task the application wraps). A binary also installs its one application's handle as
//! the process's global recorder, which catches what runs outside any scope (the span export
//! thread), so production exposition is what a single global recorder gave.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use metrics::Recorder;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use pin_project_lite::pin_project;

/// Histogram buckets in seconds, dense below 100 ms where the latency SLOs live.
pub const LATENCY_BUCKETS_SECONDS: &[f64] =
    &[0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The process already has a global recorder: a second binary-style install, a wiring bug.
#[derive(Debug, thiserror::Error)]
#[error("a global metrics recorder is already installed in this process")]
pub struct AlreadyInstalled;

/// One application's metrics registry; renders it in the Prometheus text format. Cheap to clone;
/// clones share the registry.
#[derive(Clone)]
pub struct MetricsHandle {
    recorder: Arc<PrometheusRecorder>,
    prometheus: PrometheusHandle,
    process: Arc<metrics_process::Collector>,
}

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHandle").finish_non_exhaustive()
    }
}

impl MetricsHandle {
    /// A fresh registry for one application of `info`, holding `axiom25_build_info` and the
    /// descriptions of the RED metrics.
    #[must_use]
    pub fn new(info: &crate::ServiceInfo) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS_SECONDS)
            .expect("static buckets are non-empty")
            .build_recorder();
        let prometheus = recorder.handle();
        let handle = Self { recorder: Arc::new(recorder), prometheus, process: Arc::default() };
        handle.in_scope(|| {
            handle.process.describe();
            metrics::describe_gauge!("axiom25_build_info", "Build of the running service; always 1.");
            metrics::gauge!(
                "axiom25_build_info",
                "service" => info.name,
                "version" => info.version,
                "git_sha" => info.git_sha,
            )
            .set(1.0);
            describe_red_metrics();
        });
        handle
    }

    /// Makes this registry the process's global recorder as well, for code that runs outside any
    /// application's scope. For a binary, which runs one application; tests never call it.
    ///
    /// # Errors
    /// When the process already has a global recorder.
    pub fn install_global(&self) -> Result<(), AlreadyInstalled> {
        metrics::set_global_recorder(Arc::clone(&self.recorder)).map_err(|_| AlreadyInstalled)
    }

    /// Runs `f` with this registry as the recorder of the `metrics` macros on this thread.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&*self.recorder, f)
    }

    /// Wraps `future` so that every poll records into this registry; for the background tasks an
    /// application spawns.
    pub fn scope<F: Future>(&self, future: F) -> Scoped<F> {
        Scoped { inner: future, metrics: self.clone() }
    }

    /// A histogram of this registry (the RED layers record through these).
    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, String)]) -> metrics::Histogram {
        let labels: Vec<metrics::Label> =
            labels.iter().map(|(key, value)| metrics::Label::new(*key, value.clone())).collect();
        let key = metrics::Key::from_parts(name, labels);
        self.recorder.register_histogram(&key, &METADATA)
    }

    /// Samples process metrics and renders everything recorded so far.
    #[must_use]
    pub fn render(&self) -> String {
        self.in_scope(|| self.process.collect());
        self.prometheus.run_upkeep();
        self.prometheus.render()
    }
}

static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

pin_project! {
    /// A future that records into one application's registry: see [`MetricsHandle::scope`].
    pub struct Scoped<F> {
        #[pin]
        inner: F,
        metrics: MetricsHandle,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let metrics = &*this.metrics;
        metrics.in_scope(|| this.inner.poll(cx))
    }
}

fn describe_red_metrics() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_histogram!("rpc_server_duration_seconds", Unit::Seconds, "Duration of gRPC calls served.");
    describe_histogram!("rpc_client_duration_seconds", Unit::Seconds, "Duration of gRPC calls made.");
    describe_histogram!("http_server_request_duration_seconds", Unit::Seconds, "Duration of HTTP requests served.");
    describe_counter!("axiom25_telemetry_spans_exported_total", "Spans delivered to the OTLP endpoint.");
    describe_counter!(
        "axiom25_telemetry_spans_dropped_total",
        "Spans not delivered to the OTLP endpoint, by reason (queue_full, export_failed, shutdown)."
    );
    describe_counter!("axiom25_telemetry_logs_exported_total", "Log records delivered to the OTLP endpoint.");
    describe_counter!(
        "axiom25_telemetry_logs_dropped_total",
        "Log records not delivered to the OTLP endpoint, by reason (queue_full, export_failed, shutdown)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceInfo;

    fn count_line(text: &str, series: &str) -> Option<String> {
        text.lines().find(|line| line.starts_with(series)).map(str::to_owned)
    }

    #[test]
    fn two_registries_count_separately() {
        let one = MetricsHandle::new(&ServiceInfo::new("one", "1", None));
        let two = MetricsHandle::new(&ServiceInfo::new("two", "2", None));
        one.in_scope(|| metrics::counter!("axiom25_test_things_total").increment(3));
        two.in_scope(|| metrics::counter!("axiom25_test_things_total").increment(5));
        metrics::counter!("axiom25_test_things_total").increment(100);
        assert_eq!(
            count_line(&one.render(), "axiom25_test_things_total").as_deref(),
            Some("axiom25_test_things_total 3")
        );
        assert_eq!(
            count_line(&two.render(), "axiom25_test_things_total").as_deref(),
            Some("axiom25_test_things_total 5")
        );
        assert!(one.render().contains(r#"axiom25_build_info{service="one",version="1",git_sha="unknown"} 1"#));
        assert!(!one.render().contains(r#"service="two""#));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scoped_task_records_into_its_registry_on_whichever_thread_polls_it() {
        let app = MetricsHandle::new(&ServiceInfo::new("app", "0", None));
        let task = tokio::spawn(app.scope(async {
            for _ in 0..3 {
                metrics::counter!("axiom25_test_ticks_total").increment(1);
                tokio::task::yield_now().await;
            }
        }));
        task.await.expect("task");
        let text = app.render();
        assert_eq!(count_line(&text, "axiom25_test_ticks_total").as_deref(), Some("axiom25_test_ticks_total 3"));
    }

    #[test]
    fn the_handle_histograms_use_the_latency_buckets() {
        let app = MetricsHandle::new(&ServiceInfo::new("app", "0", None));
        app.histogram("rpc_server_duration_seconds", &[("rpc_method", "M".to_owned())]).record(0.003);
        let text = app.render();
        assert!(text.contains(r#"rpc_server_duration_seconds_bucket{rpc_method="M",le="0.005"} 1"#), "{text}");
        assert!(text.contains(r#"rpc_server_duration_seconds_bucket{rpc_method="M",le="0.002"} 0"#), "{text}");
    }
}
