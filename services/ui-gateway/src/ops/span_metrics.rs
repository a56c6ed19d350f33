//! The collector's span metrics (docs/contracts.md §4): parsing its Prometheus text into snapshots, and
//! rate, error ratio and latency quantiles over the difference of two snapshots.

use std::collections::BTreeMap;
use std::time::Instant;

use axiom25_telemetry_query::span_metrics::{
    CALLS, DURATION_BUCKET as BUCKET, DURATION_COUNT as COUNT, SERVICE_NAME, SPAN_NAME, STATUS_CODE,
    STATUS_CODE_ERROR as ERROR,
};

/// One route or RPC: the service that served it and its span name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Operation {
    /// `service_name` label.
    pub service: String,
    /// `span_name` label.
    pub span_name: String,
}

/// Cumulative figures of one operation, summed over its span kinds and status codes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Calls.
    pub calls: f64,
    /// Calls whose status was `STATUS_CODE_ERROR`.
    pub errors: f64,
    /// Cumulative histogram buckets `(upper bound, count)`, sorted by bound.
    pub buckets: Vec<(f64, f64)>,
    /// Observations of the duration histogram.
    pub count: f64,
}

impl Totals {
    fn add_bucket(&mut self, bound: f64, count: f64) {
        match self.buckets.binary_search_by(|(le, _)| le.total_cmp(&bound)) {
            Ok(at) => self.buckets[at].1 += count,
            Err(at) => self.buckets.insert(at, (bound, count)),
        }
    }
}

/// The span metrics at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the metrics were read.
    pub taken_at: Instant,
    /// Per operation.
    pub operations: BTreeMap<Operation, Totals>,
}

/// A line of the exposition the parser could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub reason: &'static str,
}

/// Reads the span metric samples of a Prometheus text exposition; every other metric is skipped.
///
/// # Errors
/// When a span metric line is malformed.
pub fn parse(text: &str, taken_at: Instant) -> Result<Snapshot, ParseError> {
    let mut operations: BTreeMap<Operation, Totals> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        let Some(name_end) = line.find(['{', ' ']) else { continue };
        let name = &line[..name_end];
        if line.starts_with('#') || !matches!(name, CALLS | BUCKET | COUNT) {
            continue;
        }
        let error = |reason| ParseError { line: index + 1, reason };
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end + 1..]).ok_or_else(|| error("malformed labels"))?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let value = rest.split_whitespace().next().ok_or_else(|| error("no value"))?;
        let value = parse_float(value).ok_or_else(|| error("value is not a number"))?;
        let label = |key: &str| labels.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str());
        let operation = Operation {
            service: label(SERVICE_NAME).unwrap_or_default().to_owned(),
            span_name: label(SPAN_NAME).unwrap_or_default().to_owned(),
        };
        let totals = operations.entry(operation).or_default();
        match name {
            CALLS => {
                totals.calls += value;
                if label(STATUS_CODE) == Some(ERROR) {
                    totals.errors += value;
                }
            }
            COUNT => totals.count += value,
            _ => {
                let bound = label("le").and_then(parse_float).ok_or_else(|| error("bucket without a numeric le"))?;
                totals.add_bucket(bound, value);
            }
        }
    }
    Ok(Snapshot { taken_at, operations })
}

/// Parses `a="x",b="y\"z"} rest` into the labels and what follows the `}`.
fn parse_labels(text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (name, after) = rest.split_once('=')?;
        let mut chars = after.strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (at, '"') => break at,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, other) => value.push(other),
            }
        };
        labels.push((name.trim().to_owned(), value));
        rest = &after[end + 2..];
    }
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// Rate, errors and latency of one operation over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Red {
    /// The route or RPC.
    pub operation: Operation,
    /// Calls per second.
    pub rate: f64,
    /// Error calls over calls; `None` without calls.
    pub error_ratio: Option<f64>,
    /// Median latency in seconds; `None` without observations.
    pub p50: Option<f64>,
    /// 99th percentile latency in seconds; `None` without observations.
    pub p99: Option<f64>,
}

/// RED figures per operation between `oldest` and `newest`; a counter that went down was reset, and
/// counts from zero again as Prometheus' `increase` assumes.
#[must_use]
pub fn red(oldest: &Snapshot, newest: &Snapshot) -> Vec<Red> {
    let seconds = newest.taken_at.saturating_duration_since(oldest.taken_at).as_secs_f64();
    if seconds <= 0.0 {
        return Vec::new();
    }
    let empty = Totals::default();
    newest
        .operations
        .iter()
        .map(|(operation, new)| {
            let old = oldest.operations.get(operation).unwrap_or(&empty);
            let reset = new.calls < old.calls || new.count < old.count;
            let old = if reset { &empty } else { old };
            let calls = new.calls - old.calls;
            let errors = new.errors - old.errors;
            let mut buckets: Vec<(f64, f64)> = new
                .buckets
                .iter()
                .map(|&(bound, count)| {
                    let before =
                        old.buckets.iter().find(|(le, _)| le.total_cmp(&bound).is_eq()).map_or(0.0, |(_, c)| *c);
                    (bound, count - before)
                })
                .collect();
            if buckets.last().is_some_and(|(bound, _)| *bound != f64::INFINITY) {
                buckets.push((f64::INFINITY, new.count - old.count));
            }
            Red {
                operation: operation.clone(),
                rate: calls / seconds,
                error_ratio: (calls > 0.0).then(|| errors / calls),
                p50: histogram_quantile(0.5, &buckets),
                p99: histogram_quantile(0.99, &buckets),
            }
        })
        .collect()
}

/// The `q` quantile of cumulative `buckets` sorted by upper bound, as Prometheus'
/// `histogram_quantile` computes it: linear interpolation inside the bucket the rank falls in, the
/// highest finite bound when it falls in the `+Inf` bucket; `None` where Prometheus answers NaN.
#[must_use]
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    if q.is_nan() || buckets.len() < 2 || buckets.last().is_none_or(|(bound, _)| *bound != f64::INFINITY) {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    // Scrapes are not atomic, so a bucket may read lower than the one before it.
    let mut counts: Vec<f64> = Vec::with_capacity(buckets.len());
    for &(_, count) in buckets {
        let floor = counts.last().copied().unwrap_or(f64::NEG_INFINITY);
        counts.push(count.max(floor));
    }
    let observations = *counts.last()?;
    if observations <= 0.0 {
        return None;
    }
    let rank = q * observations;
    let b = counts.partition_point(|count| *count < rank);
    if b == buckets.len() - 1 {
        return Some(buckets[b - 1].0);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return Some(buckets[0].0);
    }
    let (start, below) = if b == 0 { (0.0, 0.0) } else { (buckets[b - 1].0, counts[b - 1]) };
    let end = buckets[b].0;
    let count = counts[b] - below;
    Some(start + (end - start) * ((rank - below) / count))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    const EXPOSITION: &str = r#"# HELP traces_span_metrics_calls_total Calls.
# TYPE traces_span_metrics_calls_total counter
traces_span_metrics_calls_total{service_name="api",span_name="Multiply",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"} 9
traces_span_metrics_calls_total{service_name="api",span_name="Multiply",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"} 1
traces_span_metrics_calls_total{service_name="ui-gateway",span_name="POST /a \"b\"",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"} 4 1700000000000
traces_span_metrics_duration_seconds_bucket{service_name="api",span_name="Multiply",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET",le="0.1"} 9
traces_span_metrics_duration_seconds_bucket{service_name="api",span_name="Multiply",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET",le="+Inf"} 9
traces_span_metrics_duration_seconds_bucket{service_name="api",span_name="Multiply",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR",le="0.1"} 0
traces_span_metrics_duration_seconds_bucket{service_name="api",span_name="Multiply",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR",le="+Inf"} 1
traces_span_metrics_duration_seconds_count{service_name="api",span_name="Multiply",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"} 9
traces_span_metrics_duration_seconds_count{service_name="api",span_name="Multiply",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"} 1
traces_span_metrics_duration_seconds_sum{service_name="api",span_name="Multiply",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"} 7
process_cpu_seconds_total 3.5
"#;

    fn operation(service: &str, span_name: &str) -> Operation {
        Operation { service: service.into(), span_name: span_name.into() }
    }

    #[test]
    fn span_metrics_are_summed_per_service_and_span_name() {
        let snapshot = parse(EXPOSITION, Instant::now()).unwrap();
        assert_eq!(snapshot.operations.len(), 2);
        let multiply = &snapshot.operations[&operation("api", "Multiply")];
        assert_eq!(
            multiply,
            &Totals { calls: 10.0, errors: 1.0, buckets: vec![(0.1, 9.0), (f64::INFINITY, 10.0)], count: 10.0 }
        );
        let escaped = &snapshot.operations[&operation("ui-gateway", "POST /a \"b\"")];
        assert_eq!(escaped.calls, 4.0);
    }

    #[test]
    fn a_malformed_span_metric_line_is_reported_with_its_number() {
        let text = "process_cpu_seconds_total 1\ntraces_span_metrics_calls_total{service_name=\"api\" 3\n";
        assert_eq!(parse(text, Instant::now()).unwrap_err(), ParseError { line: 2, reason: "malformed labels" });
        let text = "traces_span_metrics_calls_total{service_name=\"api\"} many\n";
        assert_eq!(parse(text, Instant::now()).unwrap_err().reason, "value is not a number");
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket_as_prometheus_does() {
        let buckets = [(0.005, 0.0), (0.01, 5.0), (0.1, 10.0), (f64::INFINITY, 11.0)];
        let p50 = histogram_quantile(0.5, &buckets).unwrap();
        assert!((p50 - 0.019).abs() < 1e-12, "{p50}");
        // The rank falls in the +Inf bucket: the highest finite bound.
        assert_eq!(histogram_quantile(0.99, &buckets), Some(0.1));
        // Inside the first bucket the lower end is 0.
        assert_eq!(histogram_quantile(0.5, &[(1.0, 4.0), (f64::INFINITY, 4.0)]), Some(0.5));
        assert_eq!(histogram_quantile(0.5, &[(1.0, 0.0), (f64::INFINITY, 0.0)]), None);
        assert_eq!(histogram_quantile(0.5, &[(1.0, 3.0)]), None);
        assert_eq!(histogram_quantile(1.5, &buckets), Some(f64::INFINITY));
    }

    #[test]
    fn red_is_the_difference_of_two_snapshots_per_second() {
        let start = Instant::now();
        let old = parse(EXPOSITION, start).unwrap();
        let newer = EXPOSITION.replace("} 9", "} 29").replace("STATUS_CODE_UNSET\"} 4", "STATUS_CODE_UNSET\"} 2");
        let new = parse(&newer, start + Duration::from_secs(10)).unwrap();
        let red = red(&old, &new);
        let multiply = red.iter().find(|red| red.operation.span_name == "Multiply").unwrap();
        assert!((multiply.rate - 2.0).abs() < 1e-9, "{multiply:?}");
        assert_eq!(multiply.error_ratio, Some(0.0));
        assert_eq!(multiply.p50, Some(0.05));
        // The gateway's counter went from 4 to 2: a restart, so the 2 calls are new.
        let gateway = red.iter().find(|red| red.operation.service == "ui-gateway").unwrap();
        assert!((gateway.rate - 0.2).abs() < 1e-9, "{gateway:?}");
    }

    #[test]
    fn no_calls_in_the_window_give_no_ratio_and_no_latency() {
        let start = Instant::now();
        let old = parse(EXPOSITION, start).unwrap();
        let new = parse(EXPOSITION, start + Duration::from_secs(5)).unwrap();
        let multiply = red(&old, &new).into_iter().find(|red| red.operation.span_name == "Multiply").unwrap();
        assert_eq!((multiply.rate, multiply.error_ratio, multiply.p50, multiply.p99), (0.0, None, None, None));
    }

    proptest! {
        #[test]
        fn a_quantile_lies_within_the_bucket_bounds_and_grows_with_q(
            increments in proptest::collection::vec(0u32..100, 1..12),
            q1 in 0.0f64..=1.0,
            q2 in 0.0f64..=1.0,
        ) {
            let mut total = 0.0;
            let mut buckets: Vec<(f64, f64)> = increments
                .iter()
                .enumerate()
                .map(|(i, increment)| {
                    total += f64::from(*increment);
                    (0.001 * 2f64.powi(i as i32), total)
                })
                .collect();
            buckets.push((f64::INFINITY, total));
            let highest = buckets[buckets.len() - 2].0;
            let (low, high) = if q1 <= q2 { (q1, q2) } else { (q2, q1) };
            match (histogram_quantile(low, &buckets), histogram_quantile(high, &buckets)) {
                (Some(a), Some(b)) => {
                    prop_assert!((0.0..=highest).contains(&a) && (0.0..=highest).contains(&b), "{a} {b}");
                    prop_assert!(a <= b + 1e-12, "q{low} = {a} > q{high} = {b}");
                }
                (None, None) => prop_assert_eq!(total, 0.0),
                other => prop_assert!(false, "{other:?}"),
            }
        }

        #[test]
        fn the_error_ratio_is_errors_over_calls(ok in 0u32..10_000, failed in 0u32..10_000, seconds in 1u64..600) {
            let line = |status: &str, value: u32| format!(
                "traces_span_metrics_calls_total{{service_name=\"api\",span_name=\"x\",status_code=\"{status}\"}} {value}\n");
            let start = Instant::now();
            let old = parse(&(line("STATUS_CODE_OK", 0) + &line("STATUS_CODE_ERROR", 0)), start).unwrap();
            let new = parse(
                &(line("STATUS_CODE_OK", ok) + &line("STATUS_CODE_ERROR", failed)),
                start + Duration::from_secs(seconds),
            ).unwrap();
            let red = &red(&old, &new)[0];
            let calls = f64::from(ok) + f64::from(failed);
            prop_assert!((red.rate - calls / seconds as f64).abs() < 1e-9);
            prop_assert_eq!(red.error_ratio, (calls > 0.0).then(|| f64::from(failed) / calls));
        }
    }
}
