//! A series' value and how a point changes it: DELTA points accumulate into the cumulative value,
//! CUMULATIVE points, gauges and summaries replace it unless they are older.

use std::time::Instant;

#[derive(Debug)]
pub(super) struct Series {
    pub(super) value: Value,
    pub(super) time_unix_nano: u64,
    pub(super) updated: Instant,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Number(f64),
    Histogram(HistogramValue),
    Summary(SummaryValue),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct HistogramValue {
    pub(super) bounds: Vec<f64>,
    /// Per bucket (not cumulative); one more than `bounds`, the last being `+Inf`.
    pub(super) counts: Vec<u64>,
    pub(super) sum: f64,
    pub(super) count: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct SummaryValue {
    /// (quantile, value), quantiles strictly increasing.
    pub(super) quantiles: Vec<(f64, f64)>,
    pub(super) sum: f64,
    pub(super) count: u64,
}

/// How a point changes its series.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Update {
    Replace(Value),
    AddNumber(f64),
    AddHistogram(HistogramValue),
}

impl Update {
    pub(super) fn into_value(self) -> Value {
        match self {
            Self::Replace(value) => value,
            Self::AddNumber(delta) => Value::Number(delta),
            Self::AddHistogram(delta) => Value::Histogram(delta),
        }
    }
}

impl Series {
    pub(super) fn apply(&mut self, update: Update, time_unix_nano: u64, now: Instant) {
        self.updated = now;
        match (update, &mut self.value) {
            (Update::AddNumber(delta), Value::Number(total)) => *total += delta,
            (Update::AddHistogram(delta), Value::Histogram(total)) if total.bounds == delta.bounds => {
                for (count, added) in total.counts.iter_mut().zip(&delta.counts) {
                    *count = count.saturating_add(*added);
                }
                total.sum += delta.sum;
                total.count = total.count.saturating_add(delta.count);
            }
            // Changed bounds restart a delta histogram from this point.
            (update @ Update::AddHistogram(_), value) => *value = update.into_value(),
            (Update::Replace(_), _) if time_unix_nano < self.time_unix_nano => return,
            (update, value) => *value = update.into_value(),
        }
        self.time_unix_nano = self.time_unix_nano.max(time_unix_nano);
    }
}
