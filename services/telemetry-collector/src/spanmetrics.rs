//! Span metrics (docs/contracts.md §4): calls and duration per service, span name, kind and status, named as
//! the OpenTelemetry Collector's spanmetrics connector names them through its Prometheus exporter
//! with seconds as the histogram unit, so dashboards written for the Collector work unchanged.
//!
//! Cardinality is bounded: once `max_series` label sets exist, spans of a new label set are counted
//! in one overflow series labelled only `otel_metric_overflow="true"`, as the connector does. A
//! series not updated for `series_expiry_ms` is removed when rendering (or when the limit is reached),
//! which frees its room; a returning label set then restarts from zero, which Prometheus reads as a
//! counter reset.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axiom25_telemetry_query::span_metrics;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use serde::Deserialize;

use crate::exposition::{self, MetricType};
use crate::metric_store::series_limit_problems;

/// The calls counter (its name is shared with the gateway, which reads it).
pub const CALLS_METRIC: &str = span_metrics::CALLS;
/// The duration histogram, in seconds.
pub const DURATION_METRIC: &str = span_metrics::DURATION;
/// Spans counted in the overflow series because `max_series` label sets existed.
pub const OVERFLOW_SPANS_METRIC: &str = "axiom25_collector_spanmetrics_overflow_spans_total";
/// Label sets currently kept, the overflow series not included.
pub const SERIES_METRIC: &str = "axiom25_collector_spanmetrics_series";
/// `service_name` of spans whose resource has no `service.name`.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

const OVERFLOW_LABELS: &str = "otel_metric_overflow=\"true\"";

/// Span metrics settings.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SpanMetricsSettings {
    /// Upper bounds of the duration histogram's buckets, in seconds (`+Inf` is implied).
    pub buckets_seconds: Vec<f64>,
    /// Label sets kept at most; spans of further label sets go to the overflow series.
    pub max_series: usize,
    /// A series not updated for this long is removed, in milliseconds.
    pub series_expiry_ms: u64,
}

impl Default for SpanMetricsSettings {
    fn default() -> Self {
        Self {
            // From 5 µs: the api answers in 15-50 µs, and a lowest bound of 1 ms made every quantile
            // read 0.5-1 ms. 0.1 s is a bound, as the latency SLOs need.
            buckets_seconds: vec![
                0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
                0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
            max_series: 2000,
            series_expiry_ms: 300_000,
        }
    }
}

impl SpanMetricsSettings {
    /// Problems with these settings, keys prefixed with `prefix` (e.g. `span_metrics`).
    #[must_use]
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let buckets = &self.buckets_seconds;
        if buckets.is_empty() {
            problems.push(format!("{prefix}.buckets_seconds: must list at least one bound"));
        } else if let Some(bad) = buckets.iter().find(|bound| !(bound.is_finite() && **bound > 0.0)) {
            problems.push(format!("{prefix}.buckets_seconds: every bound must be finite and positive, got {bad}"));
        } else if !buckets.windows(2).all(|pair| pair[0] < pair[1]) {
            problems.push(format!("{prefix}.buckets_seconds: bounds must be strictly increasing"));
        }
        problems.extend(series_limit_problems(prefix, self.max_series, self.series_expiry_ms));
        problems
    }
}

/// Calls and duration histograms derived from the spans received, rendered on `/metrics`.
#[derive(Debug)]
pub struct SpanMetrics {
    bounds: Box<[f64]>,
    max_series: usize,
    expiry: Duration,
    state: Mutex<State>,
}

/// Series by service name, then span name, then (kind, status): lookups borrow the span's strings,
/// so recording into an existing series allocates nothing.
#[derive(Debug, Default)]
struct State {
    services: HashMap<Arc<str>, HashMap<Arc<str>, Vec<Series>>>,
    series: usize,
    overflow: Option<Series>,
    /// When the oldest series expires, if any can: sweeping at the limit before then is pointless.
    next_expiry: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Series {
    kind: SpanKind,
    status: StatusCode,
    /// Per-bucket (not cumulative) counts; the last one is `+Inf`.
    buckets: Box<[u64]>,
    sum_seconds: f64,
    updated: Instant,
}

/// What one span adds to its series.
#[derive(Debug, Clone, Copy)]
struct Observation {
    kind: SpanKind,
    status: StatusCode,
    bucket: usize,
    seconds: f64,
}

impl Observation {
    fn of(span: &Span, bounds: &[f64]) -> Self {
        let nanos = span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano);
        #[allow(clippy::cast_precision_loss)] // nanoseconds far beyond 2^53 are not durations of spans
        let seconds = nanos as f64 / 1e9;
        // `le` is inclusive: a span of exactly a bound's duration belongs to that bound's bucket.
        let bucket = bounds.partition_point(|bound| *bound < seconds);
        let kind = SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified);
        let status = span.status.as_ref().and_then(|status| StatusCode::try_from(status.code).ok());
        Self { kind, status: status.unwrap_or(StatusCode::Unset), bucket, seconds }
    }
}

impl Series {
    fn new(observation: Observation, bucket_count: usize, now: Instant) -> Self {
        let buckets = vec![0; bucket_count].into_boxed_slice();
        Self { kind: observation.kind, status: observation.status, buckets, sum_seconds: 0.0, updated: now }
    }

    fn matches(&self, observation: Observation) -> bool {
        self.kind == observation.kind && self.status == observation.status
    }

    fn observe(&mut self, observation: Observation, now: Instant) {
        if let Some(count) = self.buckets.get_mut(observation.bucket) {
            *count += 1;
        }
        self.sum_seconds += observation.seconds;
        self.updated = now;
    }
}

fn find(series: &mut [Series], observation: Observation) -> Option<&mut Series> {
    series.iter_mut().find(|series| series.matches(observation))
}

impl SpanMetrics {
    /// Empty span metrics with these (validated) settings.
    #[must_use]
    pub fn new(settings: &SpanMetricsSettings) -> Self {
        metrics::describe_counter!(
            OVERFLOW_SPANS_METRIC,
            "Spans counted in the span metrics overflow series because the series limit was reached."
        );
        metrics::describe_gauge!(SERIES_METRIC, "Span metrics label sets currently kept.");
        Self {
            bounds: settings.buckets_seconds.clone().into_boxed_slice(),
            max_series: settings.max_series,
            expiry: Duration::from_millis(settings.series_expiry_ms),
            state: Mutex::new(State::default()),
        }
    }

    /// Counts every span of `request`.
    pub fn record(&self, request: &ExportTraceServiceRequest) {
        self.record_at(request, Instant::now());
    }

    /// Counts every span of `request` as received at `now`.
    pub fn record_at(&self, request: &ExportTraceServiceRequest, now: Instant) {
        let mut outcome = Outcome::default();
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            for resource_spans in &request.resource_spans {
                let service = exposition::bounded_label(service_name(resource_spans.resource.as_ref()));
                let spans = resource_spans.scope_spans.iter().flat_map(|scope| &scope.spans);
                // Allocated only when a span needs a series that does not exist yet.
                let mut new_series = Vec::new();
                if let Some(names) = state.services.get_mut(service) {
                    for span in spans {
                        let observation = Observation::of(span, &self.bounds);
                        let name = exposition::bounded_label(&span.name);
                        match names.get_mut(name).and_then(|series| find(series, observation)) {
                            Some(series) => series.observe(observation, now),
                            None => new_series.push((span, observation)),
                        }
                    }
                } else {
                    new_series.extend(spans.map(|span| (span, Observation::of(span, &self.bounds))));
                }
                for (span, observation) in new_series {
                    let name = exposition::bounded_label(&span.name);
                    self.record_new(&mut state, service, name, observation, now, &mut outcome);
                }
            }
        }
        outcome.publish();
    }

    fn record_new(
        &self,
        state: &mut State,
        service: &str,
        span_name: &str,
        observation: Observation,
        now: Instant,
        outcome: &mut Outcome,
    ) {
        // An earlier span of this request may have created the series already.
        let existing = state.services.get_mut(service).and_then(|names| names.get_mut(span_name));
        if let Some(series) = existing.and_then(|series| find(series, observation)) {
            series.observe(observation, now);
            return;
        }
        if state.series >= self.max_series && state.next_expiry.is_some_and(|expiry| now > expiry) {
            self.sweep(state, now);
            outcome.series = Some(state.series);
        }
        if state.series >= self.max_series {
            let bucket_count = self.bounds.len() + 1;
            state.overflow.get_or_insert_with(|| Series::new(observation, bucket_count, now)).observe(observation, now);
            outcome.overflowed += 1;
            return;
        }
        if !state.services.contains_key(service) {
            state.services.insert(Arc::from(service), HashMap::new());
        }
        let Some(names) = state.services.get_mut(service) else { return };
        if !names.contains_key(span_name) {
            names.insert(Arc::from(span_name), Vec::with_capacity(1));
        }
        let Some(series) = names.get_mut(span_name) else { return };
        let mut created = Series::new(observation, self.bounds.len() + 1, now);
        created.observe(observation, now);
        series.push(created);
        state.series += 1;
        state.next_expiry = state.next_expiry.or_else(|| now.checked_add(self.expiry));
        outcome.series = Some(state.series);
    }

    /// Removes series idle for longer than the expiry.
    fn sweep(&self, state: &mut State, now: Instant) {
        let fresh = |series: &Series| now.saturating_duration_since(series.updated) <= self.expiry;
        let (mut kept, mut oldest) = (0, None::<Instant>);
        state.services.retain(|_, names| {
            names.retain(|_, series| {
                series.retain(fresh);
                for series in series.iter() {
                    oldest = Some(oldest.map_or(series.updated, |oldest| oldest.min(series.updated)));
                }
                kept += series.len();
                !series.is_empty()
            });
            !names.is_empty()
        });
        state.series = kept;
        state.next_expiry = oldest.and_then(|oldest| oldest.checked_add(self.expiry));
        if state.overflow.as_ref().is_some_and(|overflow| !fresh(overflow)) {
            state.overflow = None;
        }
    }

    /// Appends both families in the Prometheus text format to `out` (nothing when no span was seen).
    pub fn render(&self, out: &mut String) {
        self.render_at(out, Instant::now());
    }

    /// Appends both families as of `now`, after removing expired series.
    pub fn render_at(&self, out: &mut String, now: Instant) {
        let (mut rows, overflow, series) = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            self.sweep(&mut state, now);
            let rows: Vec<(Arc<str>, Arc<str>, Series)> = state
                .services
                .iter()
                .flat_map(|(service, names)| {
                    names.iter().flat_map(move |(name, all)| {
                        all.iter().map(move |series| (Arc::clone(service), Arc::clone(name), series.clone()))
                    })
                })
                .collect();
            (rows, state.overflow.clone(), state.series)
        };
        Outcome { series: Some(series), overflowed: 0 }.publish();
        rows.sort_by(|a, b| (&a.0, &a.1, a.2.kind, a.2.status).cmp(&(&b.0, &b.1, b.2.kind, b.2.status)));
        let mut labelled: Vec<(String, Series)> = rows
            .into_iter()
            .map(|(service, name, series)| {
                let mut labels = String::new();
                exposition::push_label(&mut labels, span_metrics::SERVICE_NAME, &service);
                exposition::push_label(&mut labels, span_metrics::SPAN_KIND, series.kind.as_str_name());
                exposition::push_label(&mut labels, span_metrics::SPAN_NAME, &name);
                exposition::push_label(&mut labels, span_metrics::STATUS_CODE, series.status.as_str_name());
                (labels, series)
            })
            .collect();
        labelled.extend(overflow.map(|series| (OVERFLOW_LABELS.to_owned(), series)));
        if labelled.is_empty() {
            return;
        }
        let help = "Spans received, by service, name, kind and status.";
        exposition::write_family_header(out, CALLS_METRIC, help, MetricType::Counter);
        for (labels, series) in &labelled {
            exposition::write_series(out, CALLS_METRIC, "", labels, None);
            push_count(out, series.buckets.iter().sum());
        }
        let help = "Duration of the spans received.";
        exposition::write_family_header(out, DURATION_METRIC, help, MetricType::Histogram);
        for (labels, series) in &labelled {
            let mut cumulative = 0;
            for (bound, count) in self.bounds.iter().zip(series.buckets.iter()) {
                cumulative += count;
                exposition::write_series(out, DURATION_METRIC, "_bucket", labels, Some(("le", *bound)));
                push_count(out, cumulative);
            }
            let total = series.buckets.iter().sum();
            exposition::write_series(out, DURATION_METRIC, "_bucket", labels, Some(("le", f64::INFINITY)));
            push_count(out, total);
            exposition::write_series(out, DURATION_METRIC, "_sum", labels, None);
            exposition::write_float(out, series.sum_seconds);
            out.push('\n');
            exposition::write_series(out, DURATION_METRIC, "_count", labels, None);
            push_count(out, total);
        }
    }
}

fn push_count(out: &mut String, count: u64) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "{count}");
}

/// What a request changed, published to the collector's own metrics once the lock is released.
#[derive(Debug, Default)]
struct Outcome {
    overflowed: u64,
    series: Option<usize>,
}

impl Outcome {
    fn publish(self) {
        if self.overflowed > 0 {
            metrics::counter!(OVERFLOW_SPANS_METRIC).increment(self.overflowed);
        }
        if let Some(series) = self.series {
            #[allow(clippy::cast_precision_loss)] // bounded by max_series
            metrics::gauge!(SERIES_METRIC).set(series as f64);
        }
    }
}

/// The resource's `service.name`, or [`UNKNOWN_SERVICE`].
fn service_name(resource: Option<&Resource>) -> &str {
    let attributes = resource.map(|resource| resource.attributes.as_slice()).unwrap_or_default();
    attributes
        .iter()
        .find(|attribute| attribute.key == "service.name")
        .and_then(|attribute| match attribute.value.as_ref()?.value.as_ref()? {
            Value::StringValue(name) => Some(name.as_str()),
            _ => None,
        })
        .unwrap_or(UNKNOWN_SERVICE)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    use super::*;
    use crate::exposition::checker::{Sample, check, check_histograms};

    const MS: u64 = 1_000_000;

    fn span(name: &str, kind: SpanKind, status: StatusCode, duration_ns: u64) -> Span {
        Span {
            name: name.to_owned(),
            kind: kind as i32,
            start_time_unix_nano: 1_000 * MS,
            end_time_unix_nano: 1_000 * MS + duration_ns,
            status: Some(Status { message: String::new(), code: status as i32 }),
            ..Span::default()
        }
    }

    fn request(service: Option<&str>, spans: Vec<Span>) -> ExportTraceServiceRequest {
        let attributes = service
            .map(|name| KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue { value: Some(Value::StringValue(name.into())) }),
                ..KeyValue::default()
            })
            .into_iter()
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource { attributes, ..Resource::default() }),
                scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
                ..ResourceSpans::default()
            }],
        }
    }

    fn settings(max_series: usize) -> SpanMetricsSettings {
        SpanMetricsSettings { max_series, ..SpanMetricsSettings::default() }
    }

    fn rendered(metrics: &SpanMetrics, now: Instant) -> Vec<Sample> {
        let mut out = String::new();
        metrics.render_at(&mut out, now);
        let (samples, types) = check(&out).unwrap_or_else(|problem| panic!("{problem}\n{out}"));
        if !samples.is_empty() {
            assert_eq!(types[CALLS_METRIC], "counter");
            assert_eq!(types[DURATION_METRIC], "histogram");
        }
        check_histograms(&samples, DURATION_METRIC).unwrap_or_else(|problem| panic!("{problem}\n{out}"));
        samples
    }

    fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        samples
            .iter()
            .find(|sample| {
                sample.name == name
                    && sample.labels.len() == labels.len()
                    && labels.iter().all(|(key, value)| sample.label(key) == Some(*value))
            })
            .map(|sample| sample.value)
    }

    /// The count of bucket `le` of the `api` spans named `name` of this (kind, status).
    fn api_bucket(samples: &[Sample], (kind, status): (&str, &str), name: &str, le: &str) -> Option<f64> {
        let labels =
            [("service_name", "api"), ("span_kind", kind), ("span_name", name), ("status_code", status), ("le", le)];
        value(samples, "traces_span_metrics_duration_seconds_bucket", &labels)
    }

    #[test]
    fn huge_service_and_span_names_become_labels_of_bounded_length() {
        let metrics = SpanMetrics::new(&SpanMetricsSettings::default());
        let now = Instant::now();
        let (service, name) = ("s".repeat(100_000), "n".repeat(1 << 20));
        let spans =
            vec![span(&name, SpanKind::Server, StatusCode::Ok, MS), span(&name, SpanKind::Server, StatusCode::Ok, MS)];
        metrics.record_at(&request(Some(&service), spans), now);
        let samples = rendered(&metrics, now);
        let calls = samples.iter().find(|sample| sample.name == CALLS_METRIC).expect("calls");
        assert_eq!(calls.label("span_name").map(str::len), Some(exposition::MAX_LABEL_VALUE_BYTES));
        assert_eq!(calls.label("service_name").map(str::len), Some(exposition::MAX_LABEL_VALUE_BYTES));
        assert_eq!(calls.value, 2.0, "both spans share the one bounded series");
    }

    #[test]
    fn counts_calls_and_duration_per_service_span_name_kind_and_status() {
        let metrics = SpanMetrics::new(&SpanMetricsSettings::default());
        let now = Instant::now();
        metrics.record_at(
            &request(
                Some("api"),
                vec![
                    span("Solve", SpanKind::Server, StatusCode::Unset, 3 * MS),
                    span("Solve", SpanKind::Server, StatusCode::Unset, 5 * MS),
                    span("Solve", SpanKind::Server, StatusCode::Error, 7 * MS),
                    span("query", SpanKind::Client, StatusCode::Ok, MS),
                ],
            ),
            now,
        );
        let samples = rendered(&metrics, now);
        let solve = [
            ("service_name", "api"),
            ("span_kind", "SPAN_KIND_SERVER"),
            ("span_name", "Solve"),
            ("status_code", "STATUS_CODE_UNSET"),
        ];
        assert_eq!(value(&samples, CALLS_METRIC, &solve), Some(2.0));
        let sum = value(&samples, "traces_span_metrics_duration_seconds_sum", &solve).expect("sum");
        assert!((sum - 0.008).abs() < 1e-12, "{sum}");
        let error = [solve[0], solve[1], solve[2], ("status_code", "STATUS_CODE_ERROR")];
        assert_eq!(value(&samples, CALLS_METRIC, &error), Some(1.0));
        let client = [("service_name", "api"), ("span_kind", "SPAN_KIND_CLIENT"), ("span_name", "query")];
        let ok = [client[0], client[1], client[2], ("status_code", "STATUS_CODE_OK")];
        assert_eq!(value(&samples, "traces_span_metrics_duration_seconds_count", &ok), Some(1.0));
    }

    #[test]
    fn a_duration_equal_to_a_bucket_bound_falls_in_that_bucket() {
        let metrics = SpanMetrics::new(&SpanMetricsSettings::default());
        let now = Instant::now();
        let spans = vec![
            span("exact", SpanKind::Internal, StatusCode::Unset, MS),
            span("above", SpanKind::Internal, StatusCode::Unset, MS + 1),
            span("second", SpanKind::Internal, StatusCode::Unset, 1_000 * MS),
        ];
        metrics.record_at(&request(Some("api"), spans), now);
        let samples = rendered(&metrics, now);
        let bucket = |name: &str, le: &str| api_bucket(&samples, ("SPAN_KIND_INTERNAL", "STATUS_CODE_UNSET"), name, le);
        assert_eq!(bucket("exact", "0.001"), Some(1.0));
        assert_eq!((bucket("above", "0.001"), bucket("above", "0.0025")), (Some(0.0), Some(1.0)));
        assert_eq!((bucket("second", "0.5"), bucket("second", "1")), (Some(0.0), Some(1.0)));
        assert_eq!(bucket("second", "+Inf"), Some(1.0));
        let les: Vec<_> = samples.iter().filter_map(|s| s.label("le")).take(21).collect();
        assert_eq!(les[..3], ["5e-06", "1e-05", "2.5e-05"]);
        assert_eq!(les[13..], ["0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]);
    }

    #[test]
    fn a_span_of_twenty_microseconds_is_told_apart_from_one_of_a_millisecond() {
        let metrics = SpanMetrics::new(&SpanMetricsSettings::default());
        let now = Instant::now();
        let spans = vec![
            span("fast", SpanKind::Server, StatusCode::Ok, 20_000),
            span("slow", SpanKind::Server, StatusCode::Ok, MS),
        ];
        metrics.record_at(&request(Some("api"), spans), now);
        let samples = rendered(&metrics, now);
        let bucket = |name: &str, le: &str| api_bucket(&samples, ("SPAN_KIND_SERVER", "STATUS_CODE_OK"), name, le);
        assert_eq!((bucket("fast", "1e-05"), bucket("fast", "2.5e-05")), (Some(0.0), Some(1.0)));
        assert_eq!((bucket("slow", "0.0005"), bucket("slow", "0.001")), (Some(0.0), Some(1.0)));
    }

    #[test]
    fn a_span_ending_before_it_starts_lasts_zero_seconds() {
        let metrics = SpanMetrics::new(&SpanMetricsSettings::default());
        let now = Instant::now();
        let mut backwards = span("backwards", SpanKind::Server, StatusCode::Ok, 0);
        backwards.end_time_unix_nano = 0;
        metrics.record_at(&request(Some("api"), vec![backwards]), now);
        let samples = rendered(&metrics, now);
        let sum = samples.iter().find(|s| s.name == "traces_span_metrics_duration_seconds_sum").map(|s| s.value);
        assert_eq!(sum, Some(0.0));
        let first = samples.iter().find(|s| s.label("le") == Some("0.001")).map(|s| s.value);
        assert_eq!(first, Some(1.0));
    }

    #[test]
    fn spans_of_new_label_sets_go_to_one_overflow_series_once_max_series_exist() {
        let metrics = SpanMetrics::new(&settings(2));
        let now = Instant::now();
        let spans = ["a", "b", "c", "d", "a"].map(|name| span(name, SpanKind::Server, StatusCode::Unset, MS));
        metrics.record_at(&request(Some("api"), spans.to_vec()), now);
        let samples = rendered(&metrics, now);
        let overflow = [("otel_metric_overflow", "true")];
        assert_eq!(value(&samples, CALLS_METRIC, &overflow), Some(2.0));
        assert_eq!(value(&samples, "traces_span_metrics_duration_seconds_count", &overflow), Some(2.0));
        let labelled = samples.iter().filter(|s| s.name == CALLS_METRIC && s.label("span_name").is_some());
        let calls: Vec<_> = labelled.map(|s| (s.label("span_name").unwrap_or_default(), s.value)).collect();
        assert_eq!(calls, [("a", 2.0), ("b", 1.0)], "existing series keep counting");
    }

    #[test]
    fn an_idle_series_expires_and_frees_room_under_the_limit() {
        let metrics = SpanMetrics::new(&SpanMetricsSettings { series_expiry_ms: 60_000, ..settings(1) });
        let start = Instant::now();
        metrics.record_at(&request(Some("api"), vec![span("old", SpanKind::Server, StatusCode::Unset, MS)]), start);
        assert_eq!(rendered(&metrics, start + Duration::from_secs(60)).len(), 1 + 21 + 2, "still fresh");

        let later = start + Duration::from_millis(60_001);
        metrics.record_at(&request(Some("api"), vec![span("new", SpanKind::Server, StatusCode::Unset, MS)]), later);
        let samples = rendered(&metrics, later);
        let names: Vec<_> = samples.iter().filter(|s| s.name == CALLS_METRIC).map(|s| s.label("span_name")).collect();
        assert_eq!(names, [Some("new")], "the idle series left and the new one took its room");
        assert!(rendered(&metrics, later + Duration::from_secs(61)).is_empty());
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = SpanMetrics::new(&SpanMetricsSettings::default());
        let now = Instant::now();
        let name = "GET \"/a\\b\"\nnext";
        metrics.record_at(&request(Some("svc\"1"), vec![span(name, SpanKind::Server, StatusCode::Unset, MS)]), now);
        let mut out = String::new();
        metrics.render_at(&mut out, now);
        assert!(out.contains(r#"service_name="svc\"1",span_kind="SPAN_KIND_SERVER",span_name="GET \"/a\\b\"\nnext""#));
        let samples = rendered(&metrics, now);
        assert_eq!(samples[0].label("span_name"), Some(name));
    }

    #[test]
    fn a_resource_without_a_service_name_counts_as_unknown_service() {
        let metrics = SpanMetrics::new(&SpanMetricsSettings::default());
        let now = Instant::now();
        let mut odd = span("odd", SpanKind::Server, StatusCode::Unset, MS);
        odd.kind = 42;
        odd.status = None;
        metrics.record_at(&request(None, vec![odd]), now);
        let samples = rendered(&metrics, now);
        assert_eq!(samples[0].label("service_name"), Some(UNKNOWN_SERVICE));
        assert_eq!(samples[0].label("span_kind"), Some("SPAN_KIND_UNSPECIFIED"));
        assert_eq!(samples[0].label("status_code"), Some("STATUS_CODE_UNSET"));
    }

    #[test]
    fn nothing_is_rendered_before_the_first_span() {
        let mut out = String::new();
        SpanMetrics::new(&SpanMetricsSettings::default()).render(&mut out);
        assert_eq!(out, "");
    }

    #[test]
    fn settings_validation_names_every_bad_key() {
        assert!(SpanMetricsSettings::default().validate("span_metrics").is_empty());
        let bad = |buckets_seconds: Vec<f64>| {
            SpanMetricsSettings { buckets_seconds, max_series: 0, series_expiry_ms: 0 }.validate("span_metrics")
        };
        for buckets in
            [vec![0.1, 0.1], vec![0.2, 0.1], vec![f64::NAN], vec![0.0, 1.0], vec![1.0, f64::INFINITY], vec![]]
        {
            let problems = bad(buckets.clone());
            assert_eq!(problems.len(), 3, "{buckets:?}: {problems:?}");
            assert!(problems[0].starts_with("span_metrics.buckets_seconds: "), "{problems:?}");
            assert!(problems[1].starts_with("span_metrics.max_series: "));
            assert!(problems[2].starts_with("span_metrics.series_expiry_ms: "));
        }
    }
}
