//! OTLP metrics converted, outside the store's lock, into a Prometheus family and the updates of its series.

use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, DataPointFlags, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint, metric,
    number_data_point,
};

use super::labels::ResourceLabels;
use super::naming::{NameKind, prometheus_name};
use super::refusals::{Reason, Refusals};
use super::series::{HistogramValue, SummaryValue, Update, Value};
use crate::exposition::MetricType;

/// A metric converted outside the lock: its Prometheus family and its points.
#[derive(Debug)]
pub(super) struct Converted {
    pub(super) name: String,
    pub(super) kind: MetricType,
    pub(super) help: String,
    pub(super) points: Vec<Point>,
}

#[derive(Debug)]
pub(super) struct Point {
    pub(super) labels: String,
    pub(super) time_unix_nano: u64,
    pub(super) update: Update,
}

/// Converts one OTLP metric, refusing what cannot be stored; `None` when it has no point to store.
pub(super) fn convert(metric: &Metric, resource: &ResourceLabels, refusals: &mut Refusals) -> Option<Converted> {
    let data = metric.data.as_ref()?;
    let (kind, name_kind, temporality) = match data {
        metric::Data::Gauge(_) => (MetricType::Gauge, NameKind::Gauge, None),
        metric::Data::Sum(sum) if sum.is_monotonic => {
            (MetricType::Counter, NameKind::MonotonicSum, Some(sum.aggregation_temporality))
        }
        metric::Data::Sum(sum) => (MetricType::Gauge, NameKind::Other, Some(sum.aggregation_temporality)),
        metric::Data::Histogram(histogram) => {
            (MetricType::Histogram, NameKind::Other, Some(histogram.aggregation_temporality))
        }
        metric::Data::Summary(_) => (MetricType::Summary, NameKind::Other, None),
        metric::Data::ExponentialHistogram(histogram) => {
            let recorded = histogram.data_points.iter().filter(|point| !no_recorded_value(point.flags)).count();
            refusals.refuse(Reason::Unsupported, recorded as u64, || {
                format!(
                    "exponential histogram {:?} refused: exponential histograms are not supported, \
                     export explicit-bucket histograms instead",
                    metric.name
                )
            });
            return None;
        }
    };
    let point_count = match data {
        metric::Data::Gauge(gauge) => gauge.data_points.len(),
        metric::Data::Sum(sum) => sum.data_points.len(),
        metric::Data::Histogram(histogram) => histogram.data_points.len(),
        metric::Data::Summary(summary) => summary.data_points.len(),
        metric::Data::ExponentialHistogram(_) => 0,
    };
    let name = prometheus_name(&metric.name, &metric.unit, name_kind);
    let problem = if name.is_empty() {
        Some(format!("metric {:?} refused: its name has no character Prometheus allows", metric.name))
    } else if temporality.is_some_and(|temporality| {
        !matches!(
            AggregationTemporality::try_from(temporality),
            Ok(AggregationTemporality::Delta | AggregationTemporality::Cumulative)
        )
    }) {
        Some(format!("metric {:?} refused: its aggregation temporality is unspecified", metric.name))
    } else {
        None
    };
    if let Some(problem) = problem {
        refusals.refuse(Reason::Invalid, point_count as u64, || problem);
        return None;
    }
    let delta = temporality == Some(AggregationTemporality::Delta as i32);
    let mut points = Vec::with_capacity(point_count);
    let mut invalid =
        |problem: String| refusals.refuse(Reason::Invalid, 1, || format!("metric {:?}: {problem}", metric.name));
    match data {
        metric::Data::Gauge(gauge) => number_points(&gauge.data_points, false, resource, &mut points, &mut invalid),
        metric::Data::Sum(sum) => number_points(&sum.data_points, delta, resource, &mut points, &mut invalid),
        metric::Data::Histogram(histogram) => {
            for point in histogram.data_points.iter().filter(|point| !no_recorded_value(point.flags)) {
                match histogram_value(point) {
                    Ok(value) => points.push(Point {
                        labels: resource.series_labels(&point.attributes),
                        time_unix_nano: point.time_unix_nano,
                        update: if delta {
                            Update::AddHistogram(value)
                        } else {
                            Update::Replace(Value::Histogram(value))
                        },
                    }),
                    Err(problem) => invalid(problem),
                }
            }
        }
        metric::Data::Summary(summary) => {
            for point in summary.data_points.iter().filter(|point| !no_recorded_value(point.flags)) {
                match summary_value(point) {
                    Ok(value) => points.push(Point {
                        labels: resource.series_labels(&point.attributes),
                        time_unix_nano: point.time_unix_nano,
                        update: Update::Replace(Value::Summary(value)),
                    }),
                    Err(problem) => invalid(problem),
                }
            }
        }
        metric::Data::ExponentialHistogram(_) => {}
    }
    (!points.is_empty()).then(|| Converted { name, kind, help: metric.description.clone(), points })
}

pub(super) fn no_recorded_value(flags: u32) -> bool {
    flags & DataPointFlags::NoRecordedValueMask as u32 != 0
}

pub(super) fn number_points(
    data_points: &[NumberDataPoint],
    delta: bool,
    resource: &ResourceLabels,
    points: &mut Vec<Point>,
    invalid: &mut impl FnMut(String),
) {
    for point in data_points.iter().filter(|point| !no_recorded_value(point.flags)) {
        #[allow(clippy::cast_precision_loss)] // Prometheus samples are doubles
        let value = match point.value {
            Some(number_data_point::Value::AsDouble(value)) => value,
            Some(number_data_point::Value::AsInt(value)) => value as f64,
            None => {
                invalid("a data point has no value".to_owned());
                continue;
            }
        };
        let update = if delta { Update::AddNumber(value) } else { Update::Replace(Value::Number(value)) };
        points.push(Point {
            labels: resource.series_labels(&point.attributes),
            time_unix_nano: point.time_unix_nano,
            update,
        });
    }
}

pub(super) fn histogram_value(point: &HistogramDataPoint) -> Result<HistogramValue, String> {
    let sum = point.sum.unwrap_or(0.0);
    if point.bucket_counts.is_empty() {
        return Ok(HistogramValue { bounds: Vec::new(), counts: vec![point.count], sum, count: point.count });
    }
    if point.bucket_counts.len() != point.explicit_bounds.len() + 1 {
        return Err(format!(
            "a histogram point has {} bucket counts for {} bounds (expected one more count than bounds)",
            point.bucket_counts.len(),
            point.explicit_bounds.len()
        ));
    }
    let bounds = &point.explicit_bounds;
    if !bounds.iter().all(|bound| bound.is_finite()) || !bounds.windows(2).all(|pair| pair[0] < pair[1]) {
        return Err("histogram bounds must be finite and strictly increasing".to_owned());
    }
    let total = point.bucket_counts.iter().try_fold(0_u64, |total, count| total.checked_add(*count));
    if total != Some(point.count) {
        return Err(format!("histogram bucket counts do not add up to its count {}", point.count));
    }
    Ok(HistogramValue { bounds: bounds.clone(), counts: point.bucket_counts.clone(), sum, count: point.count })
}

pub(super) fn summary_value(point: &SummaryDataPoint) -> Result<SummaryValue, String> {
    let mut quantiles: Vec<(f64, f64)> =
        point.quantile_values.iter().map(|quantile| (quantile.quantile, quantile.value)).collect();
    if !quantiles.iter().all(|(quantile, _)| (0.0..=1.0).contains(quantile)) {
        return Err("summary quantiles must be within 0..=1".to_owned());
    }
    quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
    if !quantiles.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        return Err("a summary point repeats a quantile".to_owned());
    }
    Ok(SummaryValue { quantiles, sum: point.sum, count: point.count })
}
