//! The store as its callers use it: points recorded, the page rendered and checked.

use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, ResourceMetrics, ScopeMetrics, Sum, Summary,
    summary_data_point::ValueAtQuantile,
};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, DataPointFlags, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::*;
use crate::exposition::checker::{Sample, check, check_histograms};

pub(super) fn text(key: &str, value: &str) -> KeyValue {
    let value = Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) });
    KeyValue { key: key.into(), value, ..KeyValue::default() }
}

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: resource, ..Resource::default() }),
            scope_metrics: vec![ScopeMetrics { metrics, ..ScopeMetrics::default() }],
            ..ResourceMetrics::default()
        }],
    }
}

fn from_api(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    request(vec![text("service.name", "api")], metrics)
}

fn metric(name: &str, unit: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: format!("About {name}."),
        data: Some(data),
        ..Metric::default()
    }
}

fn number(value: f64, time: u64, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..NumberDataPoint::default()
    }
}

fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
    metric(name, unit, metric::Data::Gauge(Gauge { data_points: points }))
}

fn sum(name: &str, monotonic: bool, temporality: AggregationTemporality, points: Vec<NumberDataPoint>) -> Metric {
    let data = Sum { data_points: points, aggregation_temporality: temporality as i32, is_monotonic: monotonic };
    metric(name, "", metric::Data::Sum(data))
}

fn histogram_point(bounds: &[f64], counts: &[u64], sum: f64) -> HistogramDataPoint {
    HistogramDataPoint {
        count: counts.iter().sum(),
        sum: Some(sum),
        bucket_counts: counts.to_vec(),
        explicit_bounds: bounds.to_vec(),
        ..HistogramDataPoint::default()
    }
}

fn histogram(name: &str, temporality: AggregationTemporality, points: Vec<HistogramDataPoint>) -> Metric {
    let data = Histogram { data_points: points, aggregation_temporality: temporality as i32 };
    metric(name, "s", metric::Data::Histogram(data))
}

fn store(max_series: usize) -> MetricStore {
    MetricStore::new(&MetricStoreSettings { max_series, ..MetricStoreSettings::default() })
}

fn rendered(store: &MetricStore, now: Instant) -> (Vec<Sample>, HashMap<String, String>) {
    let mut out = String::new();
    store.render_at(&mut out, now);
    check(&out).unwrap_or_else(|problem| panic!("{problem}\n{out}"))
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found = samples.iter().find(|sample| {
        sample.name == name
            && sample.labels.len() == labels.len()
            && labels.iter().all(|(key, value)| sample.label(key) == Some(*value))
    });
    found.map(|sample| sample.value)
}

#[test]
fn gauges_counters_and_histograms_are_exposed_with_their_types() {
    let store = store(100);
    let now = Instant::now();
    let rejected = store.record_at(
        &from_api(vec![
            gauge("queue.depth", "{item}", vec![number(3.0, 1, vec![text("queue", "jobs")])]),
            sum("http.requests", true, AggregationTemporality::Cumulative, vec![number(12.0, 1, vec![])]),
            sum("connections.open", false, AggregationTemporality::Cumulative, vec![number(-2.0, 1, vec![])]),
            histogram(
                "rpc.duration",
                AggregationTemporality::Cumulative,
                vec![histogram_point(&[0.1, 1.0], &[1, 2, 1], 3.25)],
            ),
        ]),
        now,
    );
    assert_eq!(rejected, Rejected::default());
    let (samples, types) = rendered(&store, now);
    assert_eq!(types["queue_depth"], "gauge");
    assert_eq!(types["http_requests_total"], "counter");
    assert_eq!(types["connections_open"], "gauge");
    assert_eq!(types["rpc_duration_seconds"], "histogram");
    assert_eq!(value(&samples, "queue_depth", &[("job", "api"), ("queue", "jobs")]), Some(3.0));
    assert_eq!(value(&samples, "http_requests_total", &[("job", "api")]), Some(12.0));
    assert_eq!(value(&samples, "connections_open", &[("job", "api")]), Some(-2.0));
    let bucket = |le| value(&samples, "rpc_duration_seconds_bucket", &[("job", "api"), ("le", le)]);
    assert_eq!([bucket("0.1"), bucket("1"), bucket("+Inf")], [Some(1.0), Some(3.0), Some(4.0)]);
    assert_eq!(value(&samples, "rpc_duration_seconds_sum", &[("job", "api")]), Some(3.25));
    check_histograms(&samples, "rpc_duration_seconds").expect("valid histogram");
}

#[test]
fn delta_sums_accumulate_into_a_cumulative_counter() {
    let store = store(100);
    let now = Instant::now();
    let delta = |value, time| sum("jobs.done", true, AggregationTemporality::Delta, vec![number(value, time, vec![])]);
    for (value, time) in [(3.0, 10), (4.0, 20), (0.5, 30)] {
        assert_eq!(store.record_at(&from_api(vec![delta(value, time)]), now).points, 0);
    }
    let (samples, _) = rendered(&store, now);
    assert_eq!(value(&samples, "jobs_done_total", &[("job", "api")]), Some(7.5));

    let cumulative = sum("jobs.done", true, AggregationTemporality::Cumulative, vec![number(2.0, 40, vec![])]);
    store.record_at(&from_api(vec![cumulative]), now);
    let stale = sum("jobs.done", true, AggregationTemporality::Cumulative, vec![number(99.0, 5, vec![])]);
    store.record_at(&from_api(vec![stale]), now);
    let (samples, _) = rendered(&store, now);
    assert_eq!(value(&samples, "jobs_done_total", &[("job", "api")]), Some(2.0), "newest cumulative wins");
}

#[test]
fn delta_histograms_accumulate_bucket_by_bucket_and_restart_when_bounds_change() {
    let store = store(100);
    let now = Instant::now();
    let delta = |bounds: &[f64], counts: &[u64], sum| {
        histogram("rpc.duration", AggregationTemporality::Delta, vec![histogram_point(bounds, counts, sum)])
    };
    store.record_at(&from_api(vec![delta(&[0.1, 1.0], &[1, 0, 0], 0.25)]), now);
    store.record_at(&from_api(vec![delta(&[0.1, 1.0], &[2, 1, 1], 5.0)]), now);
    let (samples, _) = rendered(&store, now);
    let job = [("job", "api")];
    let bucket = |samples: &[Sample], le| value(samples, "rpc_duration_seconds_bucket", &[job[0], ("le", le)]);
    assert_eq!(
        [bucket(&samples, "0.1"), bucket(&samples, "1"), bucket(&samples, "+Inf")],
        [Some(3.0), Some(4.0), Some(5.0)]
    );
    assert_eq!(value(&samples, "rpc_duration_seconds_sum", &job), Some(5.25));
    assert_eq!(value(&samples, "rpc_duration_seconds_count", &job), Some(5.0));

    store.record_at(&from_api(vec![delta(&[0.5], &[1, 1], 1.0)]), now);
    let (samples, _) = rendered(&store, now);
    assert_eq!(
        [bucket(&samples, "0.1"), bucket(&samples, "0.5"), bucket(&samples, "+Inf")],
        [None, Some(1.0), Some(2.0)]
    );
    check_histograms(&samples, "rpc_duration_seconds").expect("valid histogram");
}

#[test]
fn summaries_are_exposed_with_quantiles() {
    let store = store(100);
    let now = Instant::now();
    let point = SummaryDataPoint {
        count: 10,
        sum: 2.5,
        quantile_values: vec![
            ValueAtQuantile { quantile: 0.99, value: 0.9 },
            ValueAtQuantile { quantile: 0.5, value: 0.2 },
        ],
        ..SummaryDataPoint::default()
    };
    let summary = metric("gc.pause", "s", metric::Data::Summary(Summary { data_points: vec![point] }));
    store.record_at(&from_api(vec![summary]), now);
    let mut out = String::new();
    store.render_at(&mut out, now);
    assert_eq!(
        out,
        "# HELP gc_pause_seconds About gc.pause.\n# TYPE gc_pause_seconds summary\n\
         gc_pause_seconds{job=\"api\",quantile=\"0.5\"} 0.2\ngc_pause_seconds{job=\"api\",quantile=\"0.99\"} 0.9\n\
         gc_pause_seconds_sum{job=\"api\"} 2.5\ngc_pause_seconds_count{job=\"api\"} 10\n"
    );
}

#[test]
fn exponential_histograms_are_refused_with_a_message_and_the_rest_is_stored() {
    let store = store(100);
    let now = Instant::now();
    let points = vec![ExponentialHistogramDataPoint { count: 1, ..ExponentialHistogramDataPoint::default() }; 2];
    let data = ExponentialHistogram { data_points: points, aggregation_temporality: 2 };
    let exponential = metric("rpc.latency", "s", metric::Data::ExponentialHistogram(data));
    let rejected = store.record_at(&from_api(vec![exponential, gauge("up", "", vec![number(1.0, 1, vec![])])]), now);
    assert_eq!(rejected.points, 2);
    assert!(rejected.message.contains("exponential histogram \"rpc.latency\""), "{}", rejected.message);
    assert!(rejected.message.contains("explicit-bucket"), "{}", rejected.message);
    let (samples, _) = rendered(&store, now);
    assert_eq!(value(&samples, "up", &[("job", "api")]), Some(1.0));
}

#[test]
fn points_without_a_recorded_value_are_skipped_not_refused() {
    let store = store(100);
    let now = Instant::now();
    let mut missing = number(f64::NAN, 1, vec![]);
    missing.flags = DataPointFlags::NoRecordedValueMask as u32;
    let rejected = store.record_at(&from_api(vec![gauge("up", "", vec![missing])]), now);
    assert_eq!(rejected, Rejected::default());
    assert!(rendered(&store, now).0.is_empty());
}

#[test]
fn malformed_points_and_unspecified_temporality_are_refused_as_invalid() {
    let store = store(100);
    let now = Instant::now();
    let mut uneven = histogram_point(&[0.1, 1.0], &[1, 1, 1], 1.0);
    uneven.count = 2;
    let rejected = store.record_at(
        &from_api(vec![
            histogram("a", AggregationTemporality::Cumulative, vec![histogram_point(&[1.0], &[1], 1.0), uneven]),
            sum("b", true, AggregationTemporality::Unspecified, vec![number(1.0, 1, vec![])]),
            gauge("c", "", vec![NumberDataPoint::default()]),
            gauge("...", "", vec![number(1.0, 1, vec![])]),
        ]),
        now,
    );
    assert_eq!(rejected.points, 5);
    assert!(rejected.message.contains("bucket counts"), "{}", rejected.message);
    assert!(rendered(&store, now).0.is_empty());
}

#[test]
fn a_name_used_with_another_type_is_refused() {
    let store = store(100);
    let now = Instant::now();
    store.record_at(&from_api(vec![gauge("queue", "", vec![number(1.0, 1, vec![])])]), now);
    let queue_histogram = metric(
        "queue",
        "",
        metric::Data::Histogram(Histogram {
            data_points: vec![histogram_point(&[], &[], 0.0)],
            aggregation_temporality: 2,
        }),
    );
    let rejected = store.record_at(&from_api(vec![queue_histogram]), now);
    assert_eq!(rejected.points, 1);
    assert!(rejected.message.contains("\"queue\" is already a gauge"), "{}", rejected.message);

    store.record_at(
        &from_api(vec![histogram("lat", AggregationTemporality::Cumulative, vec![histogram_point(&[], &[], 0.0)])]),
        now,
    );
    let rejected = store.record_at(&from_api(vec![gauge("lat.seconds.count", "", vec![number(1.0, 1, vec![])])]), now);
    assert_eq!(rejected.points, 1, "lat_seconds_count is a sample of the lat_seconds histogram");
    let (_, types) = rendered(&store, now);
    assert_eq!(types.len(), 2);
}

#[test]
fn new_series_beyond_the_limit_are_refused_until_idle_ones_expire() {
    let store = MetricStore::new(&MetricStoreSettings { max_series: 2, series_expiry_ms: 1_000 });
    let start = Instant::now();
    let points = |names: &[&str]| {
        let points = names.iter().map(|name| number(1.0, 1, vec![text("name", name)])).collect();
        from_api(vec![gauge("up", "", points)])
    };
    let rejected = store.record_at(&points(&["a", "b", "c"]), start);
    assert_eq!(rejected.points, 1);
    assert!(rejected.message.contains("limit of 2 series"), "{}", rejected.message);
    assert_eq!(store.record_at(&points(&["a"]), start + Duration::from_millis(600)).points, 0, "existing series");

    let later = start + Duration::from_millis(1_001);
    assert_eq!(store.record_at(&points(&["c"]), later).points, 0, "b expired and made room");
    let (samples, _) = rendered(&store, later);
    let names: Vec<_> = samples.iter().filter_map(|sample| sample.label("name")).collect();
    assert_eq!(names, ["a", "c"]);
    assert!(rendered(&store, later + Duration::from_secs(2)).0.is_empty());
}

#[test]
fn the_page_merges_received_families_into_the_collectors_own_without_duplicates() {
    let store = store(100);
    let now = Instant::now();
    let own = "# HELP process_cpu_seconds_total CPU.\n# TYPE process_cpu_seconds_total counter\n\
               process_cpu_seconds_total 1.5\n\n# TYPE process_open_fds gauge\nprocess_open_fds 12\n";
    let spans = "# TYPE traces_span_metrics_calls_total counter\ntraces_span_metrics_calls_total{span_name=\"a\"} 1\n";
    let mut cpu = metric(
        "process.cpu",
        "s",
        metric::Data::Sum(Sum {
            data_points: vec![number(9.0, 1, vec![])],
            aggregation_temporality: 2,
            is_monotonic: true,
        }),
    );
    cpu.description = String::new();
    let fds = |point| {
        metric(
            "process.open.fds",
            "",
            metric::Data::Histogram(Histogram { data_points: vec![point], aggregation_temporality: 2 }),
        )
    };
    let calls =
        sum("traces.span.metrics.calls", true, AggregationTemporality::Cumulative, vec![number(5.0, 1, vec![])]);
    let rejected = store.record_at(&from_api(vec![cpu, fds(histogram_point(&[1.0], &[1, 0], 0.5)), calls]), now);
    assert_eq!(rejected.points, 0, "conflicts with the collector's families are learnt when rendering");

    let page = store.render_page_at(own, &[spans], now);
    let (samples, types) = check(&page).unwrap_or_else(|problem| panic!("{problem}\n{page}"));
    assert_eq!(types.len(), 3, "{types:?}");
    assert_eq!(types["process_open_fds"], "gauge", "the collector's own family wins");
    assert_eq!(value(&samples, "process_cpu_seconds_total", &[]), Some(1.5));
    assert_eq!(value(&samples, "process_cpu_seconds_total", &[("job", "api")]), Some(9.0));
    assert_eq!(value(&samples, "traces_span_metrics_calls_total", &[("job", "api")]), Some(5.0));
    assert!(!page.contains("process_open_fds_bucket"));
    assert!(!store.render_page_at(own, &[spans], now).contains("process_open_fds_bucket"), "and forgotten");

    let rejected = store.record_at(&from_api(vec![fds(histogram_point(&[1.0], &[0, 1], 2.0))]), now);
    assert_eq!(rejected.points, 1, "a name taken by the collector is refused from then on");
    assert!(rejected.message.contains("collector's own"), "{}", rejected.message);
}
