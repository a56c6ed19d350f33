//! The store itself: families and series under one lock, the series limit, expiry, and the names
//! reserved by the collector's own metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

use super::convert::{Converted, convert};
use super::labels::ResourceLabels;
use super::refusals::{Reason, Refusals, Rejected};
use super::render::write_value;
use super::series::Series;
use super::{MetricStoreSettings, REFUSED_POINTS_METRIC, SERIES_METRIC};
use crate::exposition::{self, MetricType, NameConflict};

/// The received metrics, as Prometheus series.
#[derive(Debug)]
pub struct MetricStore {
    max_series: usize,
    expiry: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    families: HashMap<String, Family>,
    series: usize,
    /// When the oldest series expires, if any can: sweeping before then is pointless.
    next_expiry: Option<Instant>,
    /// Families taken by the collector's own metrics, by name: their points are refused.
    reserved: HashMap<String, Vec<MetricType>>,
}

#[derive(Debug)]
struct Family {
    kind: MetricType,
    help: String,
    /// By rendered label set (`a="1",b="2"`, sorted by name): canonical, and copied as is.
    series: HashMap<Arc<str>, Series>,
}

impl MetricStore {
    /// An empty store with these (validated) settings.
    #[must_use]
    pub fn new(settings: &MetricStoreSettings) -> Self {
        metrics::describe_counter!(
            REFUSED_POINTS_METRIC,
            "Received metric points not stored, by reason \
             (cardinality, type_conflict, name_conflict, unsupported, invalid)."
        );
        metrics::describe_gauge!(SERIES_METRIC, "Series of received metrics currently kept.");
        Self {
            max_series: settings.max_series,
            expiry: Duration::from_millis(settings.series_expiry_ms),
            state: Mutex::new(State::default()),
        }
    }

    /// Stores the points of `request`; returns those refused.
    pub fn record(&self, request: &ExportMetricsServiceRequest) -> Rejected {
        self.record_at(request, Instant::now())
    }

    /// Stores the points of `request` as received at `now`; returns those refused.
    pub fn record_at(&self, request: &ExportMetricsServiceRequest, now: Instant) -> Rejected {
        let mut refusals = Refusals::default();
        let mut converted = Vec::new();
        for resource_metrics in &request.resource_metrics {
            let resource = ResourceLabels::of(resource_metrics.resource.as_ref());
            for metric in resource_metrics.scope_metrics.iter().flat_map(|scope| &scope.metrics) {
                converted.extend(convert(metric, &resource, &mut refusals));
            }
        }
        let points: usize = converted.iter().map(|metric| metric.points.len()).sum();
        let series = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let before = state.series;
            if state.series + points >= self.max_series && state.next_expiry.is_some_and(|expiry| now > expiry) {
                self.sweep(&mut state, now);
            }
            for metric in converted {
                self.store(&mut state, metric, now, &mut refusals);
            }
            (state.series != before).then_some(state.series)
        };
        publish_series(series);
        refusals.finish()
    }

    fn store(&self, state: &mut State, metric: Converted, now: Instant, refusals: &mut Refusals) {
        let Converted { name, kind, help, points } = metric;
        let count = points.len() as u64;
        if state.reserved.get(&name).is_some_and(|kinds| kinds.contains(&kind)) {
            refusals.refuse(Reason::NameConflict, count, || {
                format!("{} {name:?} refused: the name is taken by one of the collector's own metrics", kind.as_str())
            });
            return;
        }
        let conflict = match state.families.get(&name) {
            Some(family) => (family.kind != kind).then(|| (name.clone(), family.kind)),
            None => colliding_family(&state.families, &name, kind),
        };
        if let Some((other, other_kind)) = conflict {
            refusals.refuse(Reason::TypeConflict, count, || {
                format!("{} {name:?} refused: {other:?} is already a {}", kind.as_str(), other_kind.as_str())
            });
            return;
        }
        let (max_series, expiry) = (self.max_series, self.expiry);
        let State { families, series: series_count, next_expiry, .. } = state;
        // A family is created only with room for its first series, so no family is ever empty.
        if *series_count >= max_series && !families.contains_key(&name) {
            refusals.refuse(Reason::Cardinality, count, || cardinality_message(max_series));
            return;
        }
        let family =
            families.entry(name).or_insert_with(|| Family { kind, help, series: HashMap::with_capacity(points.len()) });
        for point in points {
            if let Some(series) = family.series.get_mut(point.labels.as_str()) {
                series.apply(point.update, point.time_unix_nano, now);
            } else if *series_count >= max_series {
                refusals.refuse(Reason::Cardinality, 1, || cardinality_message(max_series));
            } else {
                let series =
                    Series { value: point.update.into_value(), time_unix_nano: point.time_unix_nano, updated: now };
                family.series.insert(Arc::from(point.labels), series);
                *series_count += 1;
                *next_expiry = next_expiry.or_else(|| now.checked_add(expiry));
            }
        }
    }

    /// Removes series idle for longer than the expiry, and families left empty.
    fn sweep(&self, state: &mut State, now: Instant) {
        let (mut kept, mut oldest) = (0, None::<Instant>);
        state.families.retain(|_, family| {
            family.series.retain(|_, series| now.saturating_duration_since(series.updated) <= self.expiry);
            for series in family.series.values() {
                oldest = Some(oldest.map_or(series.updated, |oldest| oldest.min(series.updated)));
            }
            kept += family.series.len();
            !family.series.is_empty()
        });
        state.series = kept;
        state.next_expiry = oldest.and_then(|oldest| oldest.checked_add(self.expiry));
    }

    /// Appends every family in the Prometheus text format to `out`.
    pub fn render(&self, out: &mut String) {
        self.render_at(out, Instant::now());
    }

    /// Appends every family as of `now`, after removing expired series.
    pub fn render_at(&self, out: &mut String, now: Instant) {
        let (mut families, series) = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            self.sweep(&mut state, now);
            let families: Vec<_> = state
                .families
                .iter()
                .map(|(name, family)| {
                    let series: Vec<_> = family
                        .series
                        .iter()
                        .map(|(labels, series)| (Arc::clone(labels), series.value.clone()))
                        .collect();
                    (name.clone(), family.kind, family.help.clone(), series)
                })
                .collect();
            (families, state.series)
        };
        publish_series(Some(series));
        families.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, kind, help, mut series) in families {
            series.sort_by(|a, b| a.0.cmp(&b.0));
            exposition::write_family_header(out, &name, &help, kind);
            for (labels, value) in &series {
                write_value(out, &name, labels, value);
            }
        }
    }

    /// The whole `/metrics` page: the collector's `own` metrics, then `derived` expositions (span
    /// metrics), then the received families, merged by [`exposition::merge`] so no family is written
    /// twice. A received family that collides with an earlier one of another type is left out; its
    /// series are dropped and counted as refused (`name_conflict`), and its later points are refused
    /// when received.
    pub fn render_page(&self, own: &str, derived: &[&str]) -> String {
        self.render_page_at(own, derived, Instant::now())
    }

    /// [`MetricStore::render_page`] as of `now`.
    pub fn render_page_at(&self, own: &str, derived: &[&str], now: Instant) -> String {
        let mut received = String::new();
        self.render_at(&mut received, now);
        let mut parts = Vec::with_capacity(derived.len() + 2);
        parts.push(own);
        parts.extend_from_slice(derived);
        parts.push(received.as_str());
        let merged = exposition::merge(&parts);
        let ours = parts.len() - 1;
        let conflicts: Vec<_> = merged.conflicts.iter().filter(|conflict| conflict.part == ours).collect();
        if !conflicts.is_empty() {
            self.reserve(&conflicts);
        }
        merged.text
    }

    fn reserve(&self, conflicts: &[&NameConflict]) {
        for conflict in conflicts {
            tracing::warn!(
                metric = %conflict.name,
                kind = conflict.kind.as_str(),
                "Received metric family collides with one of the collector's own; refusing it"
            );
        }
        let mut refusals = Refusals::default();
        let series = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            for conflict in conflicts {
                let kinds = state.reserved.entry(conflict.name.clone()).or_default();
                if !kinds.contains(&conflict.kind) {
                    kinds.push(conflict.kind);
                }
                if state.families.get(&conflict.name).is_some_and(|family| family.kind == conflict.kind) {
                    let dropped = state.families.remove(&conflict.name).map_or(0, |family| family.series.len());
                    state.series = state.series.saturating_sub(dropped);
                    refusals.refuse(Reason::NameConflict, dropped as u64, String::new);
                }
            }
            state.series
        };
        publish_series(Some(series));
        refusals.finish();
    }
}

fn cardinality_message(max_series: usize) -> String {
    format!("new series refused: the store holds its limit of {max_series} series until idle ones expire")
}

/// A family other than `name` that a new family `name` of type `kind` would collide with: one whose
/// sample names (`_bucket`, `_sum`, `_count`) it would write, or which would write its name.
fn colliding_family(families: &HashMap<String, Family>, name: &str, kind: MetricType) -> Option<(String, MetricType)> {
    let written = kind.occupied_names(name).into_iter().skip(1);
    let writes_another = written.filter_map(|sample| families.get(&sample).map(|family| (sample, family.kind))).next();
    writes_another.or_else(|| {
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let base = name.strip_suffix(suffix)?;
            let family = families.get(base)?;
            family.kind.sample_suffixes().contains(suffix).then(|| (base.to_owned(), family.kind))
        })
    })
}

fn publish_series(series: Option<usize>) {
    if let Some(series) = series {
        #[allow(clippy::cast_precision_loss)] // bounded by max_series
        metrics::gauge!(SERIES_METRIC).set(series as f64);
    }
}
