//! A series' samples in the Prometheus text format.

use std::fmt::Write as _;

use super::series::Value;
use crate::exposition;

pub(super) fn write_value(out: &mut String, name: &str, labels: &str, value: &Value) {
    match value {
        Value::Number(number) => {
            exposition::write_series(out, name, "", labels, None);
            exposition::write_float(out, *number);
            out.push('\n');
        }
        Value::Histogram(histogram) => {
            let mut cumulative = 0_u64;
            for (bound, count) in histogram.bounds.iter().zip(&histogram.counts) {
                cumulative = cumulative.saturating_add(*count);
                exposition::write_series(out, name, "_bucket", labels, Some(("le", *bound)));
                let _ = writeln!(out, "{cumulative}");
            }
            exposition::write_series(out, name, "_bucket", labels, Some(("le", f64::INFINITY)));
            let _ = writeln!(out, "{}", histogram.count);
            write_sum_and_count(out, name, labels, histogram.sum, histogram.count);
        }
        Value::Summary(summary) => {
            for (quantile, value) in &summary.quantiles {
                exposition::write_series(out, name, "", labels, Some(("quantile", *quantile)));
                exposition::write_float(out, *value);
                out.push('\n');
            }
            write_sum_and_count(out, name, labels, summary.sum, summary.count);
        }
    }
}

pub(super) fn write_sum_and_count(out: &mut String, name: &str, labels: &str, sum: f64, count: u64) {
    exposition::write_series(out, name, "_sum", labels, None);
    exposition::write_float(out, sum);
    out.push('\n');
    exposition::write_series(out, name, "_count", labels, None);
    let _ = writeln!(out, "{count}");
}
