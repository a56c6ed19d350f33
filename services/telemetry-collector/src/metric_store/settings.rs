//! The store's limits: how many series it keeps and how long an idle one lives.

use serde::Deserialize;

use crate::validate::zero_problems;

/// Metric store settings.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MetricStoreSettings {
    /// Series kept at most; points of further series are refused.
    pub max_series: usize,
    /// A series not updated for this long is removed, in milliseconds.
    pub series_expiry_ms: u64,
}

impl Default for MetricStoreSettings {
    fn default() -> Self {
        Self { max_series: 10_000, series_expiry_ms: 300_000 }
    }
}

impl MetricStoreSettings {
    /// Problems with these settings, keys prefixed with `prefix` (e.g. `metric_store`).
    #[must_use]
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        series_limit_problems(prefix, self.max_series, self.series_expiry_ms)
    }
}

/// Problems with a series cap and idle expiry, under the keys `max_series` and `series_expiry_ms`:
/// the metric store and span metrics bound their series alike.
pub(crate) fn series_limit_problems(prefix: &str, max_series: usize, series_expiry_ms: u64) -> Vec<String> {
    zero_problems(prefix, &[("max_series", max_series == 0), ("series_expiry_ms", series_expiry_ms == 0)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_validation_names_every_bad_key() {
        assert!(MetricStoreSettings::default().validate("metric_store").is_empty());
        let problems = MetricStoreSettings { max_series: 0, series_expiry_ms: 0 }.validate("metric_store");
        assert_eq!(
            problems,
            ["metric_store.max_series: must be at least 1", "metric_store.series_expiry_ms: must be at least 1"]
        );
    }
}
