//! OTLP metrics converted, outside the store's lock, into a Prometheus family and the updates of its series.

use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, DataPointFlags, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint, metric,
    number_data_point,
};

use opentelemetry_proto::tonic::common::v1::KeyValue;

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
    let invalid =
        |problem: String| refusals.refuse(Reason::Invalid, 1, || format!("metric {:?}: {problem}", metric.name));
    let mut points = PointSink { resource, points: Vec::with_capacity(point_count), invalid };
    match data {
        metric::Data::Gauge(gauge) => points.add(&gauge.data_points, |point| number_update(point, false)),
        metric::Data::Sum(sum) => points.add(&sum.data_points, |point| number_update(point, delta)),
        metric::Data::Histogram(histogram) => points.add(&histogram.data_points, |point| {
            let value = histogram_value(point)?;
            Ok(if delta { Update::AddHistogram(value) } else { Update::Replace(Value::Histogram(value)) })
        }),
        metric::Data::Summary(summary) => {
            points.add(&summary.data_points, |point| Ok(Update::Replace(Value::Summary(summary_value(point)?))));
        }
        metric::Data::ExponentialHistogram(_) => {}
    }
    let points = points.points;
    (!points.is_empty()).then(|| Converted { name, kind, help: metric.description.clone(), points })
}

pub(super) fn no_recorded_value(flags: u32) -> bool {
    flags & DataPointFlags::NoRecordedValueMask as u32 != 0
}

/// What every kind of OTLP data point has, whatever its value.
trait DataPoint {
    fn flags(&self) -> u32;
    fn attributes(&self) -> &[KeyValue];
    fn time_unix_nano(&self) -> u64;
}

macro_rules! data_points {
    ($($point:ty),+) => {$(
        impl DataPoint for $point {
            fn flags(&self) -> u32 {
                self.flags
            }
            fn attributes(&self) -> &[KeyValue] {
                &self.attributes
            }
            fn time_unix_nano(&self) -> u64 {
                self.time_unix_nano
            }
        }
    )+};
}

data_points!(NumberDataPoint, HistogramDataPoint, SummaryDataPoint);

/// Where a metric's points go as they are converted; `invalid` refuses the points that cannot be.
struct PointSink<'a, F> {
    resource: &'a ResourceLabels,
    points: Vec<Point>,
    invalid: F,
}

impl<F: FnMut(String)> PointSink<'_, F> {
    /// Adds the points of `data_points` that carry a value, each as `update` makes it.
    fn add<P: DataPoint>(&mut self, data_points: &[P], update: impl Fn(&P) -> Result<Update, String>) {
        for point in data_points.iter().filter(|point| !no_recorded_value(point.flags())) {
            match update(point) {
                Ok(update) => self.points.push(Point {
                    labels: self.resource.series_labels(point.attributes()),
                    time_unix_nano: point.time_unix_nano(),
                    update,
                }),
                Err(problem) => (self.invalid)(problem),
            }
        }
    }
}

fn number_update(point: &NumberDataPoint, delta: bool) -> Result<Update, String> {
    #[allow(clippy::cast_precision_loss)] // Prometheus samples are doubles
    let value = match point.value {
        Some(number_data_point::Value::AsDouble(value)) => value,
        Some(number_data_point::Value::AsInt(value)) => value as f64,
        None => return Err("a data point has no value".to_owned()),
    };
    Ok(if delta { Update::AddNumber(value) } else { Update::Replace(Value::Number(value)) })
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
