//! The span store: recent traces kept whole, evicted oldest first, summarised for the query API.

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hasher;
use std::sync::Arc;

use axiom25_telemetry_query::{ServiceList, ServiceSummary, SpanView, TraceDetail, TraceList, TraceSummary};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use prost::Message;

use crate::otlp::byte_text::hex;

use super::bounded::{Index, ResourceBatch, Store, interned};
use super::{
    Attribute, DEFAULT_LIMIT, MAX_LIMIT, SpanId, SpanStoreSettings, TraceId, attributes, attributes_heap_bytes,
    attributes_json, heap_len, same_service, span_id_from, trace_id_from,
};

const STATUS_ERROR: i32 = StatusCode::Error as i32;
// A trace's entry, its slots in the id map, the arrival queue and a service's trace set.
const TRACE_OVERHEAD: usize = size_of::<TraceEntry>() + 4 * size_of::<TraceId>() + 64;
// A span's slot in its trace's set of (span id, content hash), with the hash table's slack.
const SEEN_OVERHEAD: usize = 2 * size_of::<(SpanId, u64)>();

/// Recent traces, bounded by span count and estimated bytes; only spans with well-formed ids are
/// stored.
///
/// A span whose trace id, span id and content (its service and OTLP encoding, hashed) are those of a stored
/// span is skipped and counted (`axiom25_collector_store_duplicate_spans_total`): a client that
/// retries an export whose answer was lost sends the same spans again. A span with the ids of a
/// stored one but other content is kept beside it: span ids are meant to be unique, so the store
/// cannot tell which copy is right and keeps both rather than lose what a client reported.
pub type SpanStore = Store<SpanIndex>;

/// Filters of a trace search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceQuery {
    /// Only traces with at least one span of this service.
    pub service: Option<String>,
    /// Only traces lasting at least this long.
    pub min_duration_ms: Option<u64>,
    /// Only traces with (true) or without (false) an error span.
    pub error: Option<bool>,
    /// Most traces answered, within 1..=[`MAX_LIMIT`].
    pub limit: usize,
}

impl Default for TraceQuery {
    fn default() -> Self {
        Self { service: None, min_duration_ms: None, error: None, limit: DEFAULT_LIMIT }
    }
}

/// A span in the compact form the store keeps; its trace id is its trace's key.
#[derive(Debug)]
pub struct StoredSpan {
    span_id: SpanId,
    /// Hash of the span's service and OTLP encoding: what tells a retried copy from another span.
    content: u64,
    parent_span_id: Option<SpanId>,
    kind: i32,
    status_code: i32,
    start: u64,
    end: u64,
    service: Arc<str>,
    name: Box<str>,
    status_message: Box<str>,
    attributes: Box<[Attribute]>,
}

impl StoredSpan {
    /// The span and its estimated size, or `None` when its ids are malformed.
    fn from_otlp(span: &Span, service: &Arc<str>) -> Option<(TraceId, Self, usize)> {
        let trace_id = trace_id_from(&span.trace_id)?;
        let span_id = span_id_from(&span.span_id)?;
        let status = span.status.as_ref();
        let mut content = DefaultHasher::new();
        content.write(service.as_bytes());
        content.write(&span.encode_to_vec());
        let stored = Self {
            span_id,
            content: content.finish(),
            parent_span_id: span_id_from(&span.parent_span_id),
            kind: span.kind,
            status_code: status.map_or(0, |status| status.code),
            start: span.start_time_unix_nano,
            end: span.end_time_unix_nano,
            service: Arc::clone(service),
            name: span.name.as_str().into(),
            status_message: status.map_or_else(Box::default, |status| status.message.as_str().into()),
            attributes: attributes(&span.attributes),
        };
        let bytes = size_of::<Self>()
            + SEEN_OVERHEAD
            + heap_len(stored.name.len())
            + heap_len(stored.status_message.len())
            + attributes_heap_bytes(&stored.attributes);
        Some((trace_id, stored, bytes))
    }

    fn view(&self, trace_id: &str) -> SpanView {
        SpanView {
            trace_id: trace_id.to_owned(),
            span_id: hex(&self.span_id),
            parent_span_id: self.parent_span_id.map_or_else(String::new, |parent| hex(&parent)),
            service: self.service.to_string(),
            name: self.name.to_string(),
            kind: SpanKind::try_from(self.kind).unwrap_or(SpanKind::Unspecified).as_str_name().into(),
            start_time_unix_nano: self.start,
            end_time_unix_nano: self.end,
            status_code: StatusCode::try_from(self.status_code).unwrap_or(StatusCode::Unset).as_str_name().into(),
            status_message: self.status_message.to_string(),
            attributes: attributes_json(&self.attributes),
        }
    }
}

/// The spans of one resource with well-formed ids, each with its trace id and estimated size.
fn batch_of(resource_spans: &ResourceSpans) -> Option<ResourceBatch<(TraceId, StoredSpan, usize)>> {
    let scopes = resource_spans.scope_spans.iter().map(|scope| &scope.spans[..]);
    ResourceBatch::convert(resource_spans.resource.as_ref(), scopes, StoredSpan::from_otlp)
}

/// A trace's spans and its summary, kept up to date as spans arrive.
#[derive(Debug)]
pub struct TraceEntry {
    spans: Vec<StoredSpan>,
    /// (span id, content hash) of every stored span: finds retried copies.
    seen: HashSet<(SpanId, u64)>,
    /// Services of the trace with their span counts.
    services: Vec<(Arc<str>, usize)>,
    bytes: usize,
    root: usize,
    start: u64,
    end: u64,
    error: bool,
}

impl TraceEntry {
    fn new() -> Self {
        Self {
            spans: Vec::new(),
            seen: HashSet::new(),
            services: Vec::new(),
            bytes: 0,
            root: 0,
            start: u64::MAX,
            end: 0,
            error: false,
        }
    }

    /// Adds a span unless the trace holds a copy; (added, first span of its service in the trace).
    fn add(&mut self, span: StoredSpan, bytes: usize) -> (bool, bool) {
        if !self.seen.insert((span.span_id, span.content)) {
            return (false, false);
        }
        self.start = self.start.min(span.start);
        self.end = self.end.max(span.end);
        self.error |= span.status_code == STATUS_ERROR;
        self.bytes += bytes;
        let better_root = self.spans.get(self.root).is_none_or(|root| {
            let (is_root, was_root) = (span.parent_span_id.is_none(), root.parent_span_id.is_none());
            (is_root && !was_root) || (is_root == was_root && span.start < root.start)
        });
        if better_root {
            self.root = self.spans.len();
        }
        let first_of_service = match self.services.iter_mut().find(|(service, _)| same_service(service, &span.service))
        {
            Some((_, count)) => {
                *count += 1;
                false
            }
            None => {
                self.services.push((Arc::clone(&span.service), 1));
                true
            }
        };
        self.spans.push(span);
        (true, first_of_service)
    }

    fn duration(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    fn summary(&self, trace_id: &TraceId) -> TraceSummary {
        let root = self.spans.get(self.root);
        TraceSummary {
            trace_id: hex(trace_id),
            root_service: root.map(|span| span.service.to_string()).unwrap_or_default(),
            root_name: root.map(|span| span.name.to_string()).unwrap_or_default(),
            start_time_unix_nano: self.start,
            duration_ns: self.duration(),
            span_count: self.spans.len() as u64,
            error: self.error,
        }
    }
}

/// What a service has in the store.
#[derive(Debug, Default)]
struct ServiceEntry {
    spans: usize,
    traces: HashSet<TraceId>,
}

/// Everything behind the store's lock.
#[derive(Debug, Default)]
pub struct SpanIndex {
    traces: HashMap<TraceId, TraceEntry>,
    /// Trace ids by first arrival, oldest first: the eviction order.
    arrival: VecDeque<TraceId>,
    /// Also the interner of service names.
    services: HashMap<Arc<str>, ServiceEntry>,
    spans: usize,
    bytes: usize,
    evicted_spans: u64,
    evicted_traces: u64,
    duplicate_spans: u64,
}

impl Index for SpanIndex {
    type Settings = SpanStoreSettings;
    type Request = ExportTraceServiceRequest;
    type Item = (TraceId, StoredSpan, usize);
    type Evicted = TraceEntry;
    const STORE: &'static str = "spans";
    const EVICTED_ITEMS_METRIC: &'static str = "axiom25_collector_store_evicted_spans_total";
    const DUPLICATE_ITEMS_METRIC: Option<&'static str> = Some("axiom25_collector_store_duplicate_spans_total");

    fn batches(request: &ExportTraceServiceRequest) -> Vec<ResourceBatch<Self::Item>> {
        request.resource_spans.iter().filter_map(batch_of).collect()
    }

    fn insert(&mut self, batch: Vec<ResourceBatch<Self::Item>>) -> usize {
        let mut duplicates = 0;
        for group in batch {
            let service = interned(&self.services, &group.service);
            let service_entry = self.services.entry(Arc::clone(&service)).or_default();
            for (trace_id, mut span, bytes) in group.items {
                if !Arc::ptr_eq(&span.service, &service) {
                    span.service = Arc::clone(&service);
                }
                let trace = match self.traces.entry(trace_id) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => {
                        self.arrival.push_back(trace_id);
                        self.bytes += TRACE_OVERHEAD;
                        entry.insert(TraceEntry::new())
                    }
                };
                let (added, first_of_service) = trace.add(span, bytes);
                if !added {
                    duplicates += 1;
                    continue;
                }
                if first_of_service {
                    service_entry.traces.insert(trace_id);
                }
                service_entry.spans += 1;
                self.spans += 1;
                self.bytes += bytes;
            }
        }
        self.duplicate_spans += duplicates as u64;
        duplicates
    }

    /// Evicts whole traces, oldest first, until both bounds hold.
    fn evict(&mut self, settings: &SpanStoreSettings, evicted: &mut Vec<TraceEntry>) {
        while self.spans > settings.max_spans || self.bytes > settings.max_bytes {
            let Some(trace_id) = self.arrival.pop_front() else { break };
            let Some(trace) = self.traces.remove(&trace_id) else { continue };
            for (service, count) in &trace.services {
                if let Some(entry) = self.services.get_mut(&**service) {
                    entry.spans = entry.spans.saturating_sub(*count);
                    entry.traces.remove(&trace_id);
                    if entry.spans == 0 {
                        self.services.remove(&**service);
                    }
                }
            }
            self.spans = self.spans.saturating_sub(trace.spans.len());
            self.bytes = self.bytes.saturating_sub(trace.bytes + TRACE_OVERHEAD);
            self.evicted_spans += trace.spans.len() as u64;
            self.evicted_traces += 1;
            evicted.push(trace);
        }
    }

    fn occupancy(&self) -> (usize, usize) {
        (self.spans, self.bytes)
    }

    fn evictions(&self) -> (u64, u64) {
        (self.evicted_spans, self.evicted_traces)
    }

    fn duplicates(&self) -> u64 {
        self.duplicate_spans
    }
}

impl SpanStore {
    /// Services with spans in the store, sorted by name.
    #[must_use]
    pub fn services(&self) -> ServiceList {
        let mut services: Vec<ServiceSummary> = {
            let index = self.lock();
            index
                .services
                .iter()
                .map(|(name, entry)| ServiceSummary { name: name.to_string(), span_count: entry.spans as u64 })
                .collect()
        };
        services.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        ServiceList { services }
    }

    /// Summaries of the traces matching `query`, newest (by start time) first.
    #[must_use]
    pub fn traces(&self, query: &TraceQuery) -> TraceList {
        let limit = query.limit.clamp(1, MAX_LIMIT);
        let min_duration_ns = query.min_duration_ms.map(|ms| ms.saturating_mul(1_000_000));
        let matches = |trace: &TraceEntry| {
            min_duration_ns.is_none_or(|min| trace.duration() >= min) && query.error.is_none_or(|e| trace.error == e)
        };
        let index = self.lock();
        let mut candidates: Vec<(u64, TraceId)> = match &query.service {
            Some(service) => index.services.get(service.as_str()).map_or_else(Vec::new, |entry| {
                entry
                    .traces
                    .iter()
                    .filter_map(|id| {
                        index.traces.get(id).filter(|trace| matches(trace)).map(|trace| (trace.start, *id))
                    })
                    .collect()
            }),
            None => {
                index.traces.iter().filter(|(_, trace)| matches(trace)).map(|(id, trace)| (trace.start, *id)).collect()
            }
        };
        // Newest first; the id breaks ties so that equal start times answer in a stable order.
        let newest_first = |a: &(u64, TraceId), b: &(u64, TraceId)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        if candidates.len() > limit {
            candidates.select_nth_unstable_by(limit - 1, newest_first);
            candidates.truncate(limit);
        }
        candidates.sort_unstable_by(newest_first);
        let traces =
            candidates.iter().filter_map(|(_, id)| index.traces.get(id).map(|trace| trace.summary(id))).collect();
        TraceList { traces }
    }

    /// Every span of one trace, by start time; `None` if the store does not hold it.
    #[must_use]
    pub fn trace(&self, trace_id: &TraceId) -> Option<TraceDetail> {
        let id = hex(trace_id);
        let mut spans: Vec<SpanView> = {
            let index = self.lock();
            index.traces.get(trace_id)?.spans.iter().map(|span| span.view(&id)).collect()
        };
        spans.sort_by_key(|span| span.start_time_unix_nano);
        Some(TraceDetail { trace_id: id, spans })
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Status};
    use serde_json::json;

    use super::super::UNKNOWN_SERVICE;
    use super::super::test_support::{attribute, service_resource, string_attribute, trace_id_bytes};
    use super::*;

    fn trace_id(n: u8) -> Vec<u8> {
        trace_id_bytes(0xab, n)
    }

    fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, start_ms: u64, end_ms: u64) -> Span {
        Span {
            trace_id: trace_id(trace),
            span_id: vec![0, 0, 0, 0, 0, 0, 0, id],
            parent_span_id: parent.map(|p| vec![0, 0, 0, 0, 0, 0, 0, p]).unwrap_or_default(),
            name: name.into(),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: start_ms * 1_000_000,
            end_time_unix_nano: end_ms * 1_000_000,
            ..Default::default()
        }
    }

    fn failed(mut span: Span) -> Span {
        span.status = Some(Status { code: STATUS_ERROR, message: "boom".into() });
        span
    }

    fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: service_resource(service),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    fn store(max_spans: usize, max_bytes: usize) -> SpanStore {
        SpanStore::new(SpanStoreSettings { max_spans, max_bytes })
    }

    fn trace_ids(list: &TraceList) -> Vec<String> {
        list.traces.iter().map(|trace| trace.trace_id.clone()).collect()
    }

    fn hex_id(n: u8) -> String {
        hex(&trace_id(n))
    }

    #[test]
    fn evicts_the_oldest_whole_trace_when_the_span_limit_is_reached() {
        let store = store(4, usize::MAX);
        store.insert(&request("api", vec![span(1, 1, None, "a", 0, 1), span(1, 2, Some(1), "b", 0, 1)]));
        store.insert(&request("api", vec![span(2, 1, None, "a", 0, 1), span(2, 2, Some(1), "b", 0, 1)]));
        // Trace 1 grows after trace 2 arrived: it is still the oldest by first arrival.
        store.insert(&request("api", vec![span(1, 3, Some(1), "c", 0, 1)]));
        let stats = store.stats();
        assert_eq!((stats.items, stats.evicted_items, stats.evicted_traces), (2, 3, 1));
        assert!(store.trace(&trace_id_from(&trace_id(1)).unwrap()).is_none());
        assert_eq!(store.trace(&trace_id_from(&trace_id(2)).unwrap()).unwrap().spans.len(), 2);
        assert_eq!(store.services().services[0].span_count, 2);
    }

    #[test]
    fn evicts_the_oldest_whole_traces_when_the_byte_limit_is_reached() {
        let probe = store(usize::MAX, usize::MAX);
        probe.insert(&request("api", vec![span(1, 1, None, "a", 0, 1)]));
        let one_trace = probe.stats().bytes;
        let store = store(usize::MAX, 2 * one_trace);
        for n in 1..=5 {
            store.insert(&request("api", vec![span(n, 1, None, "a", 0, 1)]));
        }
        let stats = store.stats();
        assert_eq!((stats.items, stats.bytes, stats.evicted_traces), (2, 2 * one_trace, 3));
        let held = trace_ids(&store.traces(&TraceQuery::default()));
        assert_eq!(held.len(), 2);
        assert!(held.contains(&hex_id(4)) && held.contains(&hex_id(5)), "{held:?}");
    }

    #[test]
    fn evicting_everything_returns_the_store_to_zero() {
        let store = store(1, usize::MAX);
        store.insert(&request("api", vec![span(1, 1, None, "a", 0, 1), span(2, 1, None, "a", 0, 1)]));
        store.insert(&request("web", vec![span(3, 1, None, "a", 0, 1), span(3, 2, Some(1), "b", 0, 1)]));
        let stats = store.stats();
        assert_eq!((stats.items, stats.bytes, stats.evicted_items, stats.evicted_traces), (0, 0, 4, 3));
        assert!(store.services().services.is_empty());
    }

    #[test]
    fn a_trace_summary_matches_its_spans() {
        let store = store(100, usize::MAX);
        store.insert(&request("web", vec![span(1, 2, Some(1), "GET /child", 5, 40)]));
        store.insert(&request("api", vec![failed(span(1, 3, Some(2), "db", 1, 30))]));
        store.insert(&request("web", vec![span(1, 1, None, "GET /", 10, 20)]));
        let list = store.traces(&TraceQuery::default());
        assert_eq!(
            list.traces,
            vec![TraceSummary {
                trace_id: hex_id(1),
                root_service: "web".into(),
                root_name: "GET /".into(),
                start_time_unix_nano: 1_000_000,
                duration_ns: 39_000_000,
                span_count: 3,
                error: true,
            }]
        );
    }

    #[test]
    fn without_a_parentless_span_the_earliest_span_is_the_root() {
        let store = store(100, usize::MAX);
        store.insert(&request("web", vec![span(1, 2, Some(1), "late", 9, 10), span(1, 3, Some(1), "early", 2, 10)]));
        assert_eq!(store.traces(&TraceQuery::default()).traces[0].root_name, "early");
    }

    #[test]
    fn the_service_index_counts_spans_per_service_sorted_by_name() {
        let store = store(100, usize::MAX);
        store.insert(&request("web", vec![span(1, 1, None, "a", 0, 1), span(2, 1, None, "a", 0, 1)]));
        store.insert(&request("api", vec![span(1, 2, Some(1), "b", 0, 1)]));
        store.insert(&ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans { spans: vec![span(3, 1, None, "x", 0, 1)], ..Default::default() }],
                ..Default::default()
            }],
        });
        assert_eq!(
            serde_json::to_value(store.services()).unwrap(),
            json!({"services": [
                {"name": "api", "span_count": 1},
                {"name": UNKNOWN_SERVICE, "span_count": 1},
                {"name": "web", "span_count": 2},
            ]})
        );
    }

    #[test]
    fn traces_come_newest_first_and_stop_at_the_limit() {
        let store = store(100, usize::MAX);
        for (n, start) in [(1, 30), (2, 10), (3, 50), (4, 20)] {
            store.insert(&request("api", vec![span(n, 1, None, "a", start, start + 1)]));
        }
        let all = store.traces(&TraceQuery::default());
        assert_eq!(trace_ids(&all), vec![hex_id(3), hex_id(1), hex_id(4), hex_id(2)]);
        let two = store.traces(&TraceQuery { limit: 2, ..TraceQuery::default() });
        assert_eq!(trace_ids(&two), vec![hex_id(3), hex_id(1)]);
    }

    #[test]
    fn traces_filter_by_service_duration_and_error() {
        let store = store(100, usize::MAX);
        store.insert(&request("web", vec![span(1, 1, None, "a", 0, 5)]));
        store.insert(&request("web", vec![span(2, 1, None, "a", 1, 100)]));
        store.insert(&request("api", vec![failed(span(2, 2, Some(1), "b", 2, 3))]));
        store.insert(&request("api", vec![failed(span(3, 1, None, "c", 3, 4))]));
        let query = |query: TraceQuery| trace_ids(&store.traces(&query));
        let base = TraceQuery::default;
        assert_eq!(query(TraceQuery { service: Some("api".into()), ..base() }), vec![hex_id(3), hex_id(2)]);
        assert_eq!(query(TraceQuery { service: Some("web".into()), ..base() }), vec![hex_id(2), hex_id(1)]);
        assert_eq!(query(TraceQuery { service: Some("nobody".into()), ..base() }), Vec::<String>::new());
        assert_eq!(query(TraceQuery { min_duration_ms: Some(5), ..base() }), vec![hex_id(2), hex_id(1)]);
        assert_eq!(query(TraceQuery { min_duration_ms: Some(6), ..base() }), vec![hex_id(2)]);
        assert_eq!(query(TraceQuery { error: Some(true), ..base() }), vec![hex_id(3), hex_id(2)]);
        assert_eq!(query(TraceQuery { error: Some(false), ..base() }), vec![hex_id(1)]);
        assert_eq!(
            query(TraceQuery { service: Some("web".into()), error: Some(true), min_duration_ms: Some(50), limit: 1 }),
            vec![hex_id(2)]
        );
    }

    #[test]
    fn one_trace_serialises_as_the_contract_says_with_spans_by_start_time() {
        let store = store(100, usize::MAX);
        let mut child = failed(span(1, 2, Some(1), "db", 2, 3));
        child.kind = SpanKind::Client as i32;
        child.attributes = vec![string_attribute("db.system", "postgresql"), attribute("rows", Any::IntValue(3))];
        store.insert(&request("api", vec![child, span(1, 1, None, "GET /", 1, 4)]));
        let detail = store.trace(&trace_id_from(&trace_id(1)).unwrap()).unwrap();
        let id = hex_id(1);
        assert_eq!(
            serde_json::to_value(detail).unwrap(),
            json!({"trace_id": id, "spans": [
                {
                    "trace_id": id, "span_id": "0000000000000001", "parent_span_id": "", "service": "api",
                    "name": "GET /", "kind": "SPAN_KIND_SERVER", "start_time_unix_nano": 1_000_000,
                    "end_time_unix_nano": 4_000_000, "status_code": "STATUS_CODE_UNSET", "status_message": "",
                    "attributes": {},
                },
                {
                    "trace_id": id, "span_id": "0000000000000002", "parent_span_id": "0000000000000001",
                    "service": "api", "name": "db", "kind": "SPAN_KIND_CLIENT", "start_time_unix_nano": 2_000_000,
                    "end_time_unix_nano": 3_000_000, "status_code": "STATUS_CODE_ERROR", "status_message": "boom",
                    "attributes": {"db.system": "postgresql", "rows": 3},
                },
            ]})
        );
    }

    #[test]
    fn trace_summaries_serialise_as_the_contract_says() {
        let store = store(100, usize::MAX);
        store.insert(&request("api", vec![span(1, 1, None, "GET /", 1, 4)]));
        assert_eq!(
            serde_json::to_value(store.traces(&TraceQuery::default())).unwrap(),
            json!({"traces": [{
                "trace_id": hex_id(1), "root_service": "api", "root_name": "GET /",
                "start_time_unix_nano": 1_000_000, "duration_ns": 3_000_000, "span_count": 1, "error": false,
            }]})
        );
    }

    #[test]
    fn spans_with_bad_ids_are_skipped_and_empty_names_or_unknown_enums_do_not_panic() {
        let store = store(100, usize::MAX);
        let mut short_trace = span(1, 1, None, "", 0, 1);
        short_trace.trace_id = vec![1; 15];
        let mut zero_trace = span(1, 1, None, "", 0, 1);
        zero_trace.trace_id = vec![0; 16];
        let mut long_span = span(1, 1, None, "", 0, 1);
        long_span.span_id = vec![1; 9];
        let mut odd = span(2, 1, None, "", 5, 1);
        odd.kind = 99;
        odd.status = Some(Status { code: -4, message: String::new() });
        odd.parent_span_id = vec![1, 2, 3];
        assert_eq!(store.insert(&request("api", vec![short_trace, zero_trace, long_span, odd])), 1);
        let detail = store.trace(&trace_id_from(&trace_id(2)).unwrap()).unwrap();
        let view = &detail.spans[0];
        assert_eq!(
            (view.name.as_str(), view.kind.as_ref(), view.status_code.as_ref()),
            ("", "SPAN_KIND_UNSPECIFIED", "STATUS_CODE_UNSET")
        );
        assert_eq!(view.parent_span_id, "");
        assert_eq!(store.traces(&TraceQuery::default()).traces[0].duration_ns, 0);
        assert_eq!(store.insert(&ExportTraceServiceRequest::default()), 0);
    }

    #[test]
    fn a_retried_export_leaves_one_copy_and_counts_the_duplicates() {
        let store = store(100, usize::MAX);
        let retried = request("api", vec![span(1, 1, None, "GET /", 0, 4), span(1, 2, Some(1), "db", 1, 3)]);
        assert_eq!(store.insert(&retried), 2);
        let first = store.stats();
        assert_eq!(store.insert(&retried), 0);
        assert_eq!(store.insert(&retried), 0);
        let stats = store.stats();
        assert_eq!((stats.items, stats.bytes, stats.duplicate_items), (2, first.bytes, 4));
        assert_eq!(store.trace(&trace_id_from(&trace_id(1)).unwrap()).unwrap().spans.len(), 2);
        assert_eq!(store.traces(&TraceQuery::default()).traces[0].span_count, 2);
        assert_eq!(store.services().services[0].span_count, 2);
        // A retry that brings a new span along stores only the new one.
        let grown = request(
            "api",
            vec![span(1, 1, None, "GET /", 0, 4), span(1, 2, Some(1), "db", 1, 3), span(1, 3, Some(1), "c", 2, 3)],
        );
        assert_eq!(store.insert(&grown), 1);
        assert_eq!((store.stats().items, store.stats().duplicate_items), (3, 6));
    }

    #[test]
    fn a_span_with_the_ids_of_a_stored_one_but_other_content_is_kept_beside_it() {
        let store = store(100, usize::MAX);
        store.insert(&request("api", vec![span(1, 1, None, "GET /", 0, 4)]));
        // Same ids, other end time; then same ids and content under another service.
        assert_eq!(store.insert(&request("api", vec![span(1, 1, None, "GET /", 0, 9)])), 1);
        assert_eq!(store.insert(&request("web", vec![span(1, 1, None, "GET /", 0, 4)])), 1);
        let detail = store.trace(&trace_id_from(&trace_id(1)).unwrap()).unwrap();
        let mut ends: Vec<u64> = detail.spans.iter().map(|span| span.end_time_unix_nano).collect();
        ends.sort_unstable();
        assert_eq!(ends, vec![4_000_000, 4_000_000, 9_000_000]);
        assert_eq!((store.stats().items, store.stats().duplicate_items), (3, 0));
    }

    #[test]
    fn duplicates_do_not_take_the_store_past_its_bounds_and_evicted_spans_can_be_stored_again() {
        let store = store(2, usize::MAX);
        let one = request("api", vec![span(1, 1, None, "a", 0, 1), span(1, 2, Some(1), "b", 0, 1)]);
        store.insert(&one);
        for _ in 0..5 {
            assert_eq!(store.insert(&one), 0);
        }
        let stats = store.stats();
        assert_eq!((stats.items, stats.evicted_items, stats.duplicate_items), (2, 0, 10));
        // Trace 2 evicts trace 1; trace 1 sent again is then new to the store.
        store.insert(&request("api", vec![span(2, 1, None, "a", 0, 1)]));
        assert_eq!(store.insert(&one), 2);
        let stats = store.stats();
        assert_eq!((stats.items, stats.evicted_traces, stats.duplicate_items), (2, 2, 10));
        assert!(store.trace(&trace_id_from(&trace_id(1)).unwrap()).is_some());
    }

    #[test]
    fn services_share_one_interned_name() {
        let store = store(100, usize::MAX);
        store.insert(&request("api", vec![span(1, 1, None, "a", 0, 1)]));
        store.insert(&request("api", vec![span(2, 1, None, "a", 0, 1)]));
        let index = store.lock();
        let first = &index.traces[&trace_id_from(&trace_id(1)).unwrap()].spans[0].service;
        let second = &index.traces[&trace_id_from(&trace_id(2)).unwrap()].spans[0].service;
        assert!(Arc::ptr_eq(first, second));
    }
}
