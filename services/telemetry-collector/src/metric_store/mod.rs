//! OTLP metrics received from clients, kept as Prometheus series and rendered on `/metrics` the way
//! the OpenTelemetry Collector's Prometheus exporter renders them (OpenTelemetry "Prometheus and
//! OpenMetrics compatibility", as the Collector's `otlptranslator` applies it).
//!
//! - Names: runs of characters outside `[a-zA-Z0-9:]` become one `_`; the unit adds a suffix
//!   (`s` → `_seconds`, `ms` → `_milliseconds`, `By` → `_bytes`, `x/y` → `_x_per_y`, `{...}`
//!   annotations dropped) unless the name has that word already; monotonic sums end in `_total`,
//!   gauges of unit `1` in `_ratio`; a leading digit gets a `_` before it.
//! - Labels: data-point attributes, keys sanitised the same way (`[^a-zA-Z0-9_]` → `_`, a leading
//!   digit gets `key_`); keys equal after sanitising have their values joined with `;` in the order of
//!   the original keys. From the resource, `job` (`service.namespace/service.name`, or `service.name`)
//!   and `instance` (`service.instance.id`), which win over attributes of those names. Empty values
//!   are left out, as Prometheus treats them as absent. Scope labels and `target_info` are not written.
//! - Types: gauge → gauge, monotonic sum → counter, non-monotonic sum → gauge, explicit-bucket
//!   histogram → histogram, summary → summary.
//! - Temporality: DELTA points are accumulated per series into cumulative values: sums add up,
//!   histograms add bucket by bucket while their bounds stay the same and restart from the point
//!   when the bounds change. CUMULATIVE points, gauges and summaries replace the value kept, unless
//!   they are older than it.
//! - Refused points, reported through `partial_success` and counted in
//!   `axiom25_collector_metric_points_refused_total{reason}`: exponential histograms (`unsupported`:
//!   re-bucketing them into fixed bounds would invent precision, so clients should export
//!   explicit-bucket histograms), malformed points and unspecified temporality (`invalid`), new series
//!   beyond `max_series` (`cardinality`), a name already used with another type (`type_conflict`), a
//!   name taken by one of the collector's own families (`name_conflict`, learnt when the page is
//!   rendered: see [`MetricStore::render_page`]). Points flagged "no recorded value" are skipped.
//! - A series not updated for `series_expiry_ms` is removed when rendering (or when the limit is
//!   near), which frees its room under the limit.
//!
//! The parts: `convert` turns OTLP metrics into points outside the lock, naming them with `naming`
//! and labelling them with `labels`; `store` keeps them as `series` (whose updates accumulate
//! DELTA points) under the limits of `settings`; `render` writes them out; `refusals` counts and
//! reports what was refused.

mod convert;
mod labels;
mod naming;
mod refusals;
mod render;
mod series;
mod settings;
mod store;
#[cfg(test)]
mod tests;

pub use refusals::Rejected;
pub use settings::MetricStoreSettings;
pub(crate) use settings::series_limit_problems;
pub use store::MetricStore;

/// Points refused, by `reason`.
pub const REFUSED_POINTS_METRIC: &str = "axiom25_collector_metric_points_refused_total";

/// Series currently kept.
pub const SERIES_METRIC: &str = "axiom25_collector_metric_store_series";
