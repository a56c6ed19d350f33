//! A burst well above capacity against the real binary: backpressure answers, resident memory
//! under the configured limit, and accepted spans all accounted for in the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message as _;

use crate::helpers::*;

const LIMIT_MIB: u64 = 96;

/// 1000 spans with ten attributes each (about 400 KB encoded), all in trace `trace`.
fn heavy_request(trace: u64) -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    let spans = (1..=1000)
        .map(|id| {
            let mut span = span(trace, id, (id > 1).then_some(1), "burst", 2, false);
            span.attributes
                .extend((0..9).map(|i| string_attribute(&format!("attribute.{i}"), "a value of some length")));
            span
        })
        .collect();
    traces("burst", spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_gets_backpressure_stays_under_the_memory_limit_and_loses_nothing_it_accepted() {
    let limit = LIMIT_MIB.to_string();
    let collector = CollectorProcess::start(&[
        ("AXIOM25__MEMORY__LIMIT_MIB", limit.as_str()),
        ("AXIOM25__MEMORY__SPIKE_LIMIT_MIB", "48"),
        ("AXIOM25__MEMORY__CHECK_INTERVAL_MS", "10"),
        // As the image sets them: see infrastructure/docker/Dockerfile.
        ("MIMALLOC_PURGE_DELAY", "0"),
        ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
        ("AXIOM25__SPAN_STORE__MAX_BYTES", "8388608"),
        ("AXIOM25__LOG_STORE__MAX_BYTES", "4194304"),
    ])
    .await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", collector.addresses.grpc))
        .expect("uri")
        .connect()
        .await
        .expect("connects");

    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let pid = collector.pid();
    let sampler = {
        let (done, peak) = (Arc::clone(&done), Arc::clone(&peak));
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Ok(bytes) = axiom25_testkit::resources::resident_bytes(pid) {
                    peak.fetch_max(bytes, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    // OTLP/HTTP with bodies encoded once, so the test's own CPU goes into sending, not encoding.
    let (accepted, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let until = Instant::now() + Duration::from_secs(4);
    let http = collector.addresses.http;
    let senders: Vec<_> = (0..32u64)
        .map(|sender| {
            let body = heavy_request(sender).encode_to_vec();
            let (accepted, refused) = (Arc::clone(&accepted), Arc::clone(&refused));
            tokio::spawn(async move {
                for _ in 0..200 {
                    if Instant::now() > until {
                        break;
                    }
                    let (status, _, _) = request(
                        http,
                        "POST",
                        "/v1/traces",
                        &[("content-type", "application/x-protobuf")],
                        body.clone(),
                    )
                    .await;
                    match status {
                        200 => accepted.fetch_add(1000, Ordering::Relaxed),
                        503 => refused.fetch_add(1000, Ordering::Relaxed),
                        other => panic!("unexpected answer: {other}"),
                    };
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender");
    }
    done.store(true, Ordering::Relaxed);
    sampler.await.expect("sampler");

    let (accepted, refused) = (accepted.load(Ordering::Relaxed), refused.load(Ordering::Relaxed));
    let peak = peak.load(Ordering::Relaxed);
    assert!(refused > 0, "a burst this size is pushed back (accepted {accepted})");
    assert!(accepted > 0, "and some of it is taken");
    assert!(peak < LIMIT_MIB << 20, "resident memory peaked at {} MiB, limit {LIMIT_MIB} MiB", peak >> 20);
    // The live heap, not the resident size, decides: pressure passes once the burst is over.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let exposition = collector.exposition().await;
    let received = exposition.sum("otelcol_receiver_accepted_spans_total", &[]);
    let stored = exposition.value("axiom25_collector_store_items", &[("store", "spans")]).unwrap_or(0.0);
    let evicted = exposition.value("axiom25_collector_store_evicted_spans_total", &[]).unwrap_or(0.0);
    assert_eq!(received, accepted as f64, "the collector counted what the client was told it accepted");
    // Each sender sends one body again and again: its copies are counted as duplicates.
    let duplicates = exposition.value("axiom25_collector_store_duplicate_spans_total", &[]).unwrap_or(0.0);
    assert!(duplicates > 0.0, "repeated bodies are not stored twice");
    assert_eq!(stored + evicted + duplicates, received, "every accepted span is stored, evicted or a duplicate");
    let metrics = exposition.sum("traces_span_metrics_calls_total", &[("service_name", "burst")]);
    assert_eq!(metrics, accepted as f64, "span metrics saw every accepted span");

    TraceServiceClient::new(channel).export(heavy_request(999_999)).await.expect("still serving after the burst");
    assert_eq!(collector.terminate().await.code(), Some(0));
}
