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

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, DataPointFlags, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::Deserialize;

use crate::exposition::{self, MetricType, NameConflict};

/// Points refused, by `reason`.
pub const REFUSED_POINTS_METRIC: &str = "axiom25_collector_metric_points_refused_total";
/// Series currently kept.
pub const SERIES_METRIC: &str = "axiom25_collector_metric_store_series";

const MAX_MESSAGES: usize = 4;

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
        let mut problems = Vec::new();
        if self.max_series == 0 {
            problems.push(format!("{prefix}.max_series: must be at least 1"));
        }
        if self.series_expiry_ms == 0 {
            problems.push(format!("{prefix}.series_expiry_ms: must be at least 1"));
        }
        problems
    }
}

/// Points of one request that were not stored: the OTLP `partial_success`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejected {
    /// Points refused; 0 when all were accepted.
    pub points: i64,
    /// Why, for the client; empty when all were accepted.
    pub message: String,
}

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

#[derive(Debug)]
struct Series {
    value: Value,
    time_unix_nano: u64,
    updated: Instant,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Number(f64),
    Histogram(HistogramValue),
    Summary(SummaryValue),
}

#[derive(Debug, Clone, PartialEq)]
struct HistogramValue {
    bounds: Vec<f64>,
    /// Per bucket (not cumulative); one more than `bounds`, the last being `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct SummaryValue {
    /// (quantile, value), quantiles strictly increasing.
    quantiles: Vec<(f64, f64)>,
    sum: f64,
    count: u64,
}

/// How a point changes its series.
#[derive(Debug, Clone, PartialEq)]
enum Update {
    Replace(Value),
    AddNumber(f64),
    AddHistogram(HistogramValue),
}

/// A metric converted outside the lock: its Prometheus family and its points.
#[derive(Debug)]
struct Converted {
    name: String,
    kind: MetricType,
    help: String,
    points: Vec<Point>,
}

#[derive(Debug)]
struct Point {
    labels: String,
    time_unix_nano: u64,
    update: Update,
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

impl Update {
    fn into_value(self) -> Value {
        match self {
            Self::Replace(value) => value,
            Self::AddNumber(delta) => Value::Number(delta),
            Self::AddHistogram(delta) => Value::Histogram(delta),
        }
    }
}

impl Series {
    fn apply(&mut self, update: Update, time_unix_nano: u64, now: Instant) {
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

fn write_value(out: &mut String, name: &str, labels: &str, value: &Value) {
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

fn write_sum_and_count(out: &mut String, name: &str, labels: &str, sum: f64, count: u64) {
    exposition::write_series(out, name, "_sum", labels, None);
    exposition::write_float(out, sum);
    out.push('\n');
    exposition::write_series(out, name, "_count", labels, None);
    let _ = writeln!(out, "{count}");
}

fn publish_series(series: Option<usize>) {
    if let Some(series) = series {
        #[allow(clippy::cast_precision_loss)] // bounded by max_series
        metrics::gauge!(SERIES_METRIC).set(series as f64);
    }
}

/// Why points were refused; the label of `axiom25_collector_metric_points_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Cardinality,
    TypeConflict,
    NameConflict,
    Unsupported,
    Invalid,
}

impl Reason {
    const ALL: [Self; 5] =
        [Self::Cardinality, Self::TypeConflict, Self::NameConflict, Self::Unsupported, Self::Invalid];

    const fn label(self) -> &'static str {
        match self {
            Self::Cardinality => "cardinality",
            Self::TypeConflict => "type_conflict",
            Self::NameConflict => "name_conflict",
            Self::Unsupported => "unsupported",
            Self::Invalid => "invalid",
        }
    }
}

/// Points refused while handling one request, with the first message of each reason.
#[derive(Debug, Default)]
struct Refusals {
    points: [u64; 5],
    messages: Vec<String>,
}

impl Refusals {
    fn refuse(&mut self, reason: Reason, points: u64, message: impl FnOnce() -> String) {
        if points == 0 {
            return;
        }
        if self.points[reason as usize] == 0 && self.messages.len() < MAX_MESSAGES {
            let message = message();
            if !message.is_empty() {
                self.messages.push(message);
            }
        }
        self.points[reason as usize] += points;
    }

    fn finish(self) -> Rejected {
        for reason in Reason::ALL {
            let points = self.points[reason as usize];
            if points > 0 {
                metrics::counter!(REFUSED_POINTS_METRIC, "reason" => reason.label()).increment(points);
            }
        }
        let points: u64 = self.points.iter().sum();
        if points == 0 {
            return Rejected::default();
        }
        let message = format!("{points} data point(s) refused: {}", self.messages.join("; "));
        Rejected { points: i64::try_from(points).unwrap_or(i64::MAX), message }
    }
}

/// `job` and `instance` of the resource, as the Collector's Prometheus exporter derives them.
#[derive(Debug, Default)]
struct ResourceLabels {
    job: Option<String>,
    instance: Option<String>,
}

impl ResourceLabels {
    fn of(resource: Option<&Resource>) -> Self {
        let attributes = resource.map(|resource| resource.attributes.as_slice()).unwrap_or_default();
        let attribute = |key: &str| {
            let found = attributes.iter().find(|attribute| attribute.key == key)?;
            Some(attribute_text(found.value.as_ref())).filter(|text| !text.is_empty())
        };
        let job = attribute("service.name").map(|name| match attribute("service.namespace") {
            Some(namespace) => format!("{namespace}/{name}"),
            None => name,
        });
        Self { job, instance: attribute("service.instance.id") }
    }

    /// The rendered label set of a point: its attributes and the resource's `job` and `instance`.
    fn series_labels(&self, attributes: &[KeyValue]) -> String {
        let taken = |key: &str| (key == "job" && self.job.is_some()) || (key == "instance" && self.instance.is_some());
        let mut pairs: Vec<(String, &str, String)> = attributes
            .iter()
            .filter_map(|attribute| {
                let key = label_name(&attribute.key)?;
                (!taken(&key)).then(|| (key, attribute.key.as_str(), attribute_text(attribute.value.as_ref())))
            })
            .collect();
        pairs.extend(self.job.iter().map(|job| ("job".to_owned(), "", job.clone())));
        pairs.extend(self.instance.iter().map(|instance| ("instance".to_owned(), "", instance.clone())));
        pairs.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        let mut labels = String::new();
        let mut pairs = pairs.into_iter().peekable();
        while let Some((key, _, mut value)) = pairs.next() {
            while let Some((_, _, more)) = pairs.next_if(|next| next.0 == key) {
                value.push(';');
                value.push_str(&more);
            }
            if !value.is_empty() {
                exposition::push_label(&mut labels, &key, &value);
            }
        }
        labels
    }
}

/// An attribute value as label text, as the Collector writes it: arrays and maps as JSON, bytes
/// as base64.
fn attribute_text(value: Option<&AnyValue>) -> String {
    let text = full_attribute_text(value);
    match exposition::bounded_label(&text).len() {
        len if len == text.len() => text,
        len => text[..len].to_owned(),
    }
}

fn full_attribute_text(value: Option<&AnyValue>) -> String {
    use any_value::Value as V;
    match value.and_then(|value| value.value.as_ref()) {
        None | Some(V::StringValueStrindex(_)) => String::new(),
        Some(V::StringValue(text)) => text.clone(),
        Some(V::BoolValue(flag)) => flag.to_string(),
        Some(V::IntValue(number)) => number.to_string(),
        Some(V::DoubleValue(number)) => number.to_string(),
        Some(V::BytesValue(bytes)) => base64(bytes),
        Some(other @ (V::ArrayValue(_) | V::KvlistValue(_))) => json(Some(other)).to_string(),
    }
}

fn json(value: Option<&any_value::Value>) -> serde_json::Value {
    use any_value::Value as V;
    use serde_json::Value as J;
    match value {
        None | Some(V::StringValueStrindex(_)) => J::Null,
        Some(V::StringValue(text)) => J::from(text.as_str()),
        Some(V::BoolValue(flag)) => J::from(*flag),
        Some(V::IntValue(number)) => J::from(*number),
        Some(V::DoubleValue(number)) => J::from(*number),
        Some(V::BytesValue(bytes)) => J::from(base64(bytes)),
        Some(V::ArrayValue(array)) => J::Array(array.values.iter().map(|value| json(value.value.as_ref())).collect()),
        Some(V::KvlistValue(map)) => J::Object(
            map.values
                .iter()
                .map(|pair| (pair.key.clone(), json(pair.value.as_ref().and_then(|value| value.value.as_ref()))))
                .collect(),
        ),
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let word = chunk.iter().enumerate().fold(0_u32, |word, (i, byte)| word | u32::from(*byte) << (16 - 8 * i));
        for position in 0..4 {
            if position <= chunk.len() {
                text.push(char::from(ALPHABET[(word >> (18 - 6 * position)) as usize & 63]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// A Prometheus label name for an attribute key, or `None` when nothing of it is left.
fn label_name(key: &str) -> Option<String> {
    let mut name = String::with_capacity(key.len() + 4);
    for c in key.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }) {
        if !(c == '_' && name.ends_with('_')) {
            name.push(c);
        }
    }
    if name.chars().all(|c| c == '_') {
        return None;
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "key_");
    }
    Some(name)
}

/// What decides the suffixes of a translated name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameKind {
    Gauge,
    MonotonicSum,
    Other,
}

/// The Prometheus name of an OTLP metric (see the module documentation).
fn prometheus_name(name: &str, unit: &str, kind: NameKind) -> String {
    let (main_unit, per_unit) = unit_suffixes(unit);
    let mut tokens: Vec<&str> =
        name.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':')).filter(|token| !token.is_empty()).collect();
    let per_unit = per_unit.strip_suffix('_').unwrap_or(&per_unit);
    let per_unit = if per_unit == "per" || tokens.contains(&per_unit) { "" } else { per_unit };
    let mut main_unit = if tokens.contains(&main_unit.as_str()) { "" } else { main_unit.as_str() };
    if !per_unit.is_empty() {
        main_unit = main_unit.strip_suffix('_').unwrap_or(main_unit);
    }
    tokens.extend([main_unit, per_unit].into_iter().filter(|unit| !unit.is_empty()));
    if kind == NameKind::MonotonicSum {
        tokens.retain(|token| *token != "total");
        tokens.push("total");
    }
    if unit == "1" && kind == NameKind::Gauge {
        tokens.retain(|token| *token != "ratio");
        tokens.push("ratio");
    }
    let mut translated = tokens.join("_");
    if translated.starts_with(|c: char| c.is_ascii_digit()) {
        translated.insert(0, '_');
    }
    translated
}

/// The main and "per" unit suffixes of a UCUM unit, cleaned to name characters (`By/s` →
/// `bytes`, `per_second`); annotations in braces give no suffix.
fn unit_suffixes(unit: &str) -> (String, String) {
    let (main, per) = unit.split_once('/').map_or((unit, None), |(main, per)| (main, Some(per)));
    let usable = |part: &str| !part.is_empty() && !part.contains(['{', '}']);
    let main = main.trim();
    let main = if usable(main) { main_unit_word(main).unwrap_or(main) } else { "" };
    let per = per.map(str::trim).filter(|per| usable(per)).map(|per| per_unit_word(per).unwrap_or(per));
    let per = per.map(|per| format!("per_{per}")).unwrap_or_default();
    (clean_unit(main), clean_unit(&per))
}

fn main_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        _ => return None,
    })
}

fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// Name characters only, runs of `_` made one, no leading `_`.
fn clean_unit(unit: &str) -> String {
    let mut cleaned = String::with_capacity(unit.len());
    for c in unit.chars().map(|c| if c.is_ascii_alphanumeric() || c == ':' { c } else { '_' }) {
        if !(c == '_' && (cleaned.is_empty() || cleaned.ends_with('_'))) {
            cleaned.push(c);
        }
    }
    cleaned
}

/// Converts one OTLP metric, refusing what cannot be stored; `None` when it has no point to store.
fn convert(metric: &Metric, resource: &ResourceLabels, refusals: &mut Refusals) -> Option<Converted> {
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

fn no_recorded_value(flags: u32) -> bool {
    flags & DataPointFlags::NoRecordedValueMask as u32 != 0
}

fn number_points(
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

fn histogram_value(point: &HistogramDataPoint) -> Result<HistogramValue, String> {
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

fn summary_value(point: &SummaryDataPoint) -> Result<SummaryValue, String> {
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

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::metrics::v1::{
        ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, ResourceMetrics, ScopeMetrics, Sum,
        Summary, summary_data_point::ValueAtQuantile,
    };

    use super::*;
    use crate::exposition::checker::{Sample, check, check_histograms};

    fn text(key: &str, value: &str) -> KeyValue {
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
    fn names_are_translated_as_the_collectors_prometheus_exporter_does() {
        use NameKind::{Gauge, MonotonicSum, Other};
        let table = [
            ("http.server.request.duration", "s", Other, "http_server_request_duration_seconds"),
            ("http.client.duration", "ms", Other, "http_client_duration_milliseconds"),
            ("process.memory.usage", "By", Gauge, "process_memory_usage_bytes"),
            ("system.cpu.utilization", "1", Gauge, "system_cpu_utilization_ratio"),
            ("system.cpu.utilization", "1", Other, "system_cpu_utilization"),
            ("http.requests", "{request}", MonotonicSum, "http_requests_total"),
            ("requests", "1", MonotonicSum, "requests_total"),
            ("requests_total", "", MonotonicSum, "requests_total"),
            ("total.requests", "", MonotonicSum, "requests_total"),
            ("network.io", "By/s", Gauge, "network_io_bytes_per_second"),
            ("queue.rate", "{item}/s", Gauge, "queue_rate_per_second"),
            ("latency_seconds", "s", Other, "latency_seconds"),
            ("room.temperature", "Cel", Gauge, "room_temperature_celsius"),
            ("disk.io", "KiBy", MonotonicSum, "disk_io_kibibytes_total"),
            ("widgets", "custom unit", Gauge, "widgets_custom_unit"),
            ("2xx.responses", "", MonotonicSum, "_2xx_responses_total"),
            ("app:cache/hits", "", Gauge, "app:cache_hits"),
            ("weird__name..x-y", "", Gauge, "weird_name_x_y"),
            ("déjà vu", "", Gauge, "d_j_vu"),
        ];
        for (name, unit, kind, expected) in table {
            assert_eq!(prometheus_name(name, unit, kind), expected, "{name} [{unit}] {kind:?}");
        }
    }

    #[test]
    fn attribute_keys_become_sanitised_labels_with_job_and_instance_from_the_resource() {
        let resource = ResourceLabels::of(Some(&Resource {
            attributes: vec![
                text("service.namespace", "matrix"),
                text("service.name", "api"),
                text("service.instance.id", "pod-1"),
            ],
            ..Resource::default()
        }));
        let attributes = [
            text("http.method", "GET"),
            text("http_method", "POST"),
            text("1st", "yes"),
            text("job", "ignored"),
            text("...", "dropped"),
            text("empty", ""),
            text("quote", "a\"b"),
        ];
        assert_eq!(
            resource.series_labels(&attributes),
            r#"http_method="GET;POST",instance="pod-1",job="matrix/api",key_1st="yes",quote="a\"b""#
        );
        let bare = ResourceLabels::of(None);
        assert_eq!(bare.series_labels(&[text("job", "mine")]), r#"job="mine""#);
    }

    #[test]
    fn a_huge_attribute_value_becomes_a_label_of_bounded_length() {
        let huge = AnyValue { value: Some(any_value::Value::StringValue("v".repeat(1 << 20))) };
        assert_eq!(attribute_text(Some(&huge)).len(), exposition::MAX_LABEL_VALUE_BYTES);
    }

    #[test]
    fn attribute_values_of_every_type_become_text() {
        use any_value::Value as V;
        let array = V::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
            values: vec![
                AnyValue { value: Some(V::IntValue(1)) },
                AnyValue { value: Some(V::StringValue("a".into())) },
            ],
        });
        let cases = [
            (V::BoolValue(true), "true"),
            (V::IntValue(-3), "-3"),
            (V::DoubleValue(1.5), "1.5"),
            (V::BytesValue(b"hello".to_vec()), "aGVsbG8="),
            (V::BytesValue(b"hi".to_vec()), "aGk="),
            (array, r#"[1,"a"]"#),
        ];
        for (value, expected) in cases {
            assert_eq!(attribute_text(Some(&AnyValue { value: Some(value) })), expected);
        }
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
        let delta =
            |value, time| sum("jobs.done", true, AggregationTemporality::Delta, vec![number(value, time, vec![])]);
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
        let rejected =
            store.record_at(&from_api(vec![exponential, gauge("up", "", vec![number(1.0, 1, vec![])])]), now);
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
        let rejected =
            store.record_at(&from_api(vec![gauge("lat.seconds.count", "", vec![number(1.0, 1, vec![])])]), now);
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
        let spans =
            "# TYPE traces_span_metrics_calls_total counter\ntraces_span_metrics_calls_total{span_name=\"a\"} 1\n";
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
