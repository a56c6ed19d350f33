//! Prometheus exposition through the `metrics` facade: one recorder per process, histogram buckets
//! for millisecond SLOs, process metrics and `axiom25_build_info`.

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets in seconds, dense below 100 ms where the latency SLOs live.
pub const LATENCY_BUCKETS_SECONDS: &[f64] =
    &[0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Renders the process's metrics in the Prometheus text format. Cheap to clone.
#[derive(Clone)]
pub struct MetricsHandle {
    prometheus: PrometheusHandle,
    process: Arc<metrics_process::Collector>,
}

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHandle").finish_non_exhaustive()
    }
}

impl MetricsHandle {
    /// Samples process metrics and renders everything recorded so far.
    #[must_use]
    pub fn render(&self) -> String {
        self.process.collect();
        self.prometheus.run_upkeep();
        self.prometheus.render()
    }
}

static HANDLE: OnceLock<MetricsHandle> = OnceLock::new();

/// Installs the process-wide recorder (first call wins; later calls return the same handle, so
/// tests may start several servers in one process) and records `axiom25_build_info`.
///
/// # Panics
/// If another crate installed a different global `metrics` recorder first: a wiring bug.
pub fn install(info: &crate::ServiceInfo) -> MetricsHandle {
    HANDLE
        .get_or_init(|| {
            let prometheus = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS_SECONDS)
                .expect("static buckets are non-empty")
                .install_recorder()
                .expect("the metrics recorder is installed once, here");
            let process = metrics_process::Collector::default();
            process.describe();
            metrics::describe_gauge!("axiom25_build_info", "Build of the running service; always 1.");
            metrics::gauge!(
                "axiom25_build_info",
                "service" => info.name,
                "version" => info.version,
                "git_sha" => info.git_sha,
            )
            .set(1.0);
            describe_red_metrics();
            MetricsHandle { prometheus, process: Arc::new(process) }
        })
        .clone()
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
}
