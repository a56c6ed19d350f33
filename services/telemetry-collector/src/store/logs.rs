//! The log store: recent log records, evicted oldest first, indexed by trace id.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axiom25_telemetry_query::{LogList, LogView};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs};

use crate::otlp::byte_text::hex;

use super::bounded::{Index, ResourceBatch, Store, interned};
use super::{
    Attribute, AttributeValue, DEFAULT_LIMIT, LogStoreSettings, MAX_LIMIT, SpanId, TraceId, attributes,
    attributes_heap_bytes, attributes_json, heap_len, span_id_from, trace_id_from,
};

// A record's slots in the trace index and a share of the index's own entry.
const RECORD_OVERHEAD: usize = 2 * size_of::<u64>() + 16;

/// Recent log records, bounded by count and estimated bytes; malformed trace or span ids are
/// stored as absent.
pub type LogStore = Store<LogIndex>;

/// Which records a log search returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// The records of this trace (the earliest `limit` of them); without it, the `limit` records
    /// received last.
    pub trace_id: Option<TraceId>,
    /// Most records answered, within 1..=[`MAX_LIMIT`].
    pub limit: usize,
}

impl Default for LogQuery {
    fn default() -> Self {
        Self { trace_id: None, limit: DEFAULT_LIMIT }
    }
}

/// A log record in the compact form the store keeps.
#[derive(Debug)]
pub struct StoredLog {
    time: u64,
    bytes: usize,
    trace_id: Option<TraceId>,
    span_id: Option<SpanId>,
    service: Arc<str>,
    severity_text: Box<str>,
    body: AttributeValue,
    attributes: Box<[Attribute]>,
}

impl StoredLog {
    fn from_otlp(record: &LogRecord, service: &Arc<str>) -> Self {
        let time = if record.time_unix_nano == 0 { record.observed_time_unix_nano } else { record.time_unix_nano };
        let mut stored = Self {
            time,
            bytes: 0,
            trace_id: trace_id_from(&record.trace_id),
            span_id: span_id_from(&record.span_id),
            service: Arc::clone(service),
            severity_text: record.severity_text.as_str().into(),
            body: AttributeValue::from_any(record.body.as_ref(), 0),
            attributes: attributes(&record.attributes),
        };
        stored.bytes = size_of::<Self>()
            + RECORD_OVERHEAD
            + heap_len(stored.severity_text.len())
            + stored.body.heap_bytes()
            + attributes_heap_bytes(&stored.attributes);
        stored
    }

    fn view(&self) -> LogView {
        LogView {
            time_unix_nano: self.time,
            severity_text: self.severity_text.to_string(),
            body: self.body.to_json(),
            service: self.service.to_string(),
            trace_id: self.trace_id.map_or_else(String::new, |id| hex(&id)),
            span_id: self.span_id.map_or_else(String::new, |id| hex(&id)),
            attributes: attributes_json(&self.attributes),
        }
    }
}

/// The records of one resource; malformed ids are kept as absent.
fn batch_of(resource_logs: &ResourceLogs) -> Option<ResourceBatch<StoredLog>> {
    let scopes = resource_logs.scope_logs.iter().map(|scope| &scope.log_records[..]);
    ResourceBatch::convert(resource_logs.resource.as_ref(), scopes, |record, service| {
        Some(StoredLog::from_otlp(record, service))
    })
}

/// Everything behind the store's lock.
#[derive(Debug, Default)]
pub struct LogIndex {
    /// Records by arrival, oldest first: the eviction order.
    records: VecDeque<StoredLog>,
    /// Arrival number of `records[0]`; record n sits at `n - first_sequence`.
    first_sequence: u64,
    /// Arrival numbers of each trace's records, ascending.
    by_trace: HashMap<TraceId, VecDeque<u64>>,
    /// Interned service names with their record counts.
    services: HashMap<Arc<str>, usize>,
    bytes: usize,
    evicted: u64,
}

impl Index for LogIndex {
    type Settings = LogStoreSettings;
    type Request = ExportLogsServiceRequest;
    type Item = StoredLog;
    type Evicted = StoredLog;
    const STORE: &'static str = "logs";
    const EVICTED_ITEMS_METRIC: &'static str = "axiom25_collector_store_evicted_logs_total";

    fn batches(request: &ExportLogsServiceRequest) -> Vec<ResourceBatch<StoredLog>> {
        request.resource_logs.iter().filter_map(batch_of).collect()
    }

    fn insert(&mut self, batch: Vec<ResourceBatch<StoredLog>>) -> usize {
        for group in batch {
            let service = interned(&self.services, &group.service);
            *self.services.entry(Arc::clone(&service)).or_default() += group.items.len();
            for mut record in group.items {
                if !Arc::ptr_eq(&record.service, &service) {
                    record.service = Arc::clone(&service);
                }
                if let Some(trace_id) = record.trace_id {
                    let sequence = self.first_sequence + self.records.len() as u64;
                    self.by_trace.entry(trace_id).or_default().push_back(sequence);
                }
                self.bytes += record.bytes;
                self.records.push_back(record);
            }
        }
        0
    }

    /// Evicts the oldest records until both bounds hold.
    fn evict(&mut self, settings: &LogStoreSettings, evicted: &mut Vec<StoredLog>) {
        while self.records.len() > settings.max_records || self.bytes > settings.max_bytes {
            let Some(record) = self.records.pop_front() else { break };
            let sequence = self.first_sequence;
            self.first_sequence += 1;
            if let Some(trace_id) = record.trace_id
                && let Some(sequences) = self.by_trace.get_mut(&trace_id)
            {
                if sequences.front() == Some(&sequence) {
                    sequences.pop_front();
                }
                if sequences.is_empty() {
                    self.by_trace.remove(&trace_id);
                }
            }
            if let Some(count) = self.services.get_mut(&*record.service) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.services.remove(&*record.service);
                }
            }
            self.bytes = self.bytes.saturating_sub(record.bytes);
            self.evicted += 1;
            evicted.push(record);
        }
    }

    fn occupancy(&self) -> (usize, usize) {
        (self.records.len(), self.bytes)
    }

    fn evictions(&self) -> (u64, u64) {
        (self.evicted, 0)
    }
}

impl LogIndex {
    fn get(&self, sequence: u64) -> Option<&StoredLog> {
        self.records.get(usize::try_from(sequence.checked_sub(self.first_sequence)?).ok()?)
    }
}

impl LogStore {
    /// The records `query` asks for, by time (records with equal times in arrival order).
    #[must_use]
    pub fn logs(&self, query: &LogQuery) -> LogList {
        let limit = query.limit.clamp(1, MAX_LIMIT);
        let index = self.lock();
        let mut records: Vec<&StoredLog> = match &query.trace_id {
            Some(trace_id) => index
                .by_trace
                .get(trace_id)
                .map_or_else(Vec::new, |sequences| sequences.iter().filter_map(|&n| index.get(n)).collect()),
            None => index.records.iter().skip(index.records.len().saturating_sub(limit)).collect(),
        };
        records.sort_by_key(|record| record.time);
        records.truncate(limit);
        LogList { logs: records.into_iter().map(StoredLog::view).collect() }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::ScopeLogs;
    use serde_json::{Value, json};

    use super::super::StoreStats;
    use super::super::test_support::{attribute, service_resource, string_attribute, trace_id_bytes};
    use super::*;

    fn trace(n: u8) -> Vec<u8> {
        trace_id_bytes(0, n)
    }

    fn record(trace_id: Option<u8>, time: u64, body: &str) -> LogRecord {
        LogRecord {
            time_unix_nano: time,
            severity_text: "INFO".into(),
            body: Some(AnyValue { value: Some(Any::StringValue(body.into())) }),
            trace_id: trace_id.map(trace).unwrap_or_default(),
            span_id: trace_id.map(|_| vec![0, 0, 0, 0, 0, 0, 0, 9]).unwrap_or_default(),
            ..Default::default()
        }
    }

    fn request(service: &str, log_records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: service_resource(service),
                scope_logs: vec![ScopeLogs { log_records, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    fn store(max_records: usize, max_bytes: usize) -> LogStore {
        LogStore::new(LogStoreSettings { max_records, max_bytes })
    }

    fn bodies(list: &LogList) -> Vec<&str> {
        list.logs.iter().map(|log| log.body.as_str().unwrap_or("?")).collect()
    }

    fn all_of(n: u8) -> LogQuery {
        LogQuery { trace_id: trace_id_from(&trace(n)), limit: MAX_LIMIT }
    }

    #[test]
    fn evicts_the_oldest_records_when_the_record_limit_is_reached() {
        let store = store(3, usize::MAX);
        store.insert(&request("api", vec![record(Some(1), 1, "a"), record(Some(2), 2, "b")]));
        store.insert(&request("api", vec![record(Some(1), 3, "c"), record(None, 4, "d")]));
        let stats = store.stats();
        assert_eq!((stats.items, stats.evicted_items), (3, 1));
        assert_eq!(bodies(&store.logs(&all_of(1))), vec!["c"]);
        assert_eq!(bodies(&store.logs(&LogQuery::default())), vec!["b", "c", "d"]);
    }

    #[test]
    fn evicts_the_oldest_records_when_the_byte_limit_is_reached() {
        let probe = store(usize::MAX, usize::MAX);
        probe.insert(&request("api", vec![record(Some(1), 1, "a")]));
        let one = probe.stats().bytes;
        let store = store(usize::MAX, 2 * one);
        for (n, body) in [(1, "a"), (2, "b"), (3, "c")] {
            store.insert(&request("api", vec![record(Some(n), u64::from(n), body)]));
        }
        assert_eq!(
            store.stats(),
            StoreStats { items: 2, bytes: 2 * one, evicted_items: 1, evicted_traces: 0, duplicate_items: 0 }
        );
        assert!(store.logs(&all_of(1)).logs.is_empty());
        assert_eq!(bodies(&store.logs(&LogQuery::default())), vec!["b", "c"]);
    }

    #[test]
    fn logs_of_a_trace_come_by_time_and_stop_at_the_limit() {
        let store = store(100, usize::MAX);
        store.insert(&request("api", vec![record(Some(1), 30, "late"), record(Some(2), 10, "other")]));
        store.insert(&request("web", vec![record(Some(1), 20, "early"), record(None, 5, "loose")]));
        assert_eq!(bodies(&store.logs(&all_of(1))), vec!["early", "late"]);
        let first = LogQuery { limit: 1, ..all_of(1) };
        assert_eq!(bodies(&store.logs(&first)), vec!["early"]);
        assert!(store.logs(&all_of(7)).logs.is_empty());
    }

    #[test]
    fn without_a_trace_id_the_records_received_last_are_answered_by_time() {
        let store = store(100, usize::MAX);
        store.insert(&request("api", vec![record(None, 1, "a"), record(None, 9, "b"), record(None, 5, "c")]));
        let query = LogQuery { trace_id: None, limit: 2 };
        assert_eq!(bodies(&store.logs(&query)), vec!["c", "b"]);
    }

    #[test]
    fn a_log_record_serialises_as_the_contract_says() {
        let store = store(100, usize::MAX);
        let mut structured = record(Some(1), 7, "");
        structured.body =
            Some(AnyValue { value: Some(Any::KvlistValue(KeyValueList { values: vec![string_attribute("k", "v")] })) });
        structured.attributes = vec![attribute("retry", Any::BoolValue(true))];
        let mut observed_only = record(None, 0, "plain");
        observed_only.observed_time_unix_nano = 8;
        observed_only.severity_text = String::new();
        store.insert(&request("api", vec![structured, observed_only]));
        let list = store.logs(&LogQuery::default());
        assert_eq!(
            serde_json::to_value(list).unwrap(),
            json!({"logs": [
                {
                    "time_unix_nano": 7, "severity_text": "INFO", "body": {"k": "v"}, "service": "api",
                    "trace_id": "00000000000000000000000000000001", "span_id": "0000000000000009",
                    "attributes": {"retry": true},
                },
                {
                    "time_unix_nano": 8, "severity_text": "", "body": "plain", "service": "api",
                    "trace_id": "", "span_id": "", "attributes": {},
                },
            ]})
        );
    }

    #[test]
    fn malformed_ids_and_empty_records_are_stored_without_panicking() {
        let store = store(100, usize::MAX);
        let mut bad = record(Some(1), 1, "x");
        bad.trace_id = vec![1; 3];
        bad.span_id = vec![0; 8];
        assert_eq!(store.insert(&request("api", vec![bad, LogRecord::default()])), 2);
        let list = store.logs(&LogQuery::default());
        assert_eq!((list.logs[0].trace_id.as_str(), list.logs[0].span_id.as_str()), ("", ""));
        assert_eq!(list.logs[0].body, Value::Null);
        assert_eq!(store.insert(&ExportLogsServiceRequest::default()), 0);
    }

    #[test]
    fn the_trace_index_follows_evictions_across_many_records() {
        let store = store(10, usize::MAX);
        for time in 0..95u64 {
            let trace_id = u8::try_from(time % 3).unwrap() + 1;
            store.insert(&request("api", vec![record(Some(trace_id), time, "r")]));
        }
        let held: usize = (1..=3).map(|n| store.logs(&all_of(n)).logs.len()).sum();
        assert_eq!(held, 10);
        let times: Vec<u64> = store.logs(&all_of(1)).logs.iter().map(|log| log.time_unix_nano).collect();
        assert_eq!(times, vec![87, 90, 93]);
        assert_eq!(store.lock().services.get("api"), Some(&10));
    }
}
