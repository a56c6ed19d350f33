//! Collector A forwards to collector B; B stops mid-stream and comes back on the same port. Every
//! span A accepted reaches B or is counted as dropped by A, and the counts add up exactly.

use std::time::{Duration, Instant};

use axiom25_telemetry_collector::Settings;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

const TRACES: &[(&str, &str)] = &[("exporter", "otlp/traces")];

/// Sends `requests` batches of 100 spans to `a`, retrying refusals as an OTLP client does (bounded),
/// and signals `midway` after a third of them. Returns the spans A accepted.
async fn send(a: &CollectorProcess, first_trace: u64, requests: u64, midway: tokio::sync::oneshot::Sender<()>) -> u64 {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", a.addresses.grpc))
        .expect("uri")
        .connect()
        .await
        .expect("A listens");
    let mut client =
        opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::new(channel);
    let mut midway = Some(midway);
    let mut accepted = 0;
    for trace in first_trace..first_trace + requests {
        if trace == first_trace + requests / 3
            && let Some(midway) = midway.take()
        {
            let _ = midway.send(());
        }
        let request = traces("chain", (1..=100).map(|id| span(trace, id, None, "hop", 1, false)).collect());
        for _attempt in 0..50 {
            match client.export(request.clone()).await {
                Ok(answer) => {
                    let rejected = answer.into_inner().partial_success.map_or(0, |p| p.rejected_spans);
                    accepted += 100 - rejected as u64;
                    break;
                }
                Err(status) if status.code() == Code::Unavailable => {
                    let delay = status.get_details_retry_info().and_then(|info| info.retry_delay);
                    tokio::time::sleep(delay.unwrap_or(Duration::from_millis(100)).min(Duration::from_millis(200)))
                        .await;
                }
                Err(status) => panic!("unexpected answer from A: {status:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    accepted
}

/// A's counters once its queue has settled: (accepted, sent, dropped).
async fn settled_counts(a: &CollectorProcess) -> (f64, f64, f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let exposition = a.exposition().await;
        let accepted = exposition.sum("otelcol_receiver_accepted_spans_total", &[]);
        let sent = exposition.value("otelcol_exporter_sent_spans_total", TRACES).unwrap_or(0.0);
        let dropped = exposition.sum("axiom25_collector_dropped_items_total", &[("signal", "traces")]);
        let queued = exposition.value("otelcol_exporter_queue_size", TRACES).unwrap_or(0.0);
        if queued == 0.0 && sent + dropped == accepted {
            return (accepted, sent, dropped);
        }
        assert!(
            Instant::now() < deadline,
            "A never settled: accepted {accepted}, sent {sent}, dropped {dropped}, queued {queued}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn downstream(port: u16) -> Settings {
    let mut settings = test_settings();
    settings.server.grpc_port = port;
    settings
}

async fn chain(policy: &str, capacity: &str, outage: Duration) -> (u64, (f64, f64, f64), usize) {
    let b1 = start(downstream(0)).await;
    let port = b1.addresses.grpc.port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let a = CollectorProcess::start(&[
        ("AXIOM25__FORWARD__TRACES_ENDPOINT", endpoint.as_str()),
        ("AXIOM25__FORWARD__FULL_POLICY", policy),
        ("AXIOM25__FORWARD__QUEUE_CAPACITY_ITEMS", capacity),
        ("AXIOM25__FORWARD__INITIAL_BACKOFF_MS", "50"),
        ("AXIOM25__FORWARD__MAX_BACKOFF_MS", "300"),
    ])
    .await;
    let b1_spans = b1.spans.clone();
    let (midway, reached) = tokio::sync::oneshot::channel();
    // B goes down and comes back while the client keeps sending.
    let restart = tokio::spawn(async move {
        let _ = reached.await;
        b1.stop().await;
        tokio::time::sleep(outage).await;
        start(downstream(port)).await
    });
    let accepted = send(&a, 1000, 60, midway).await;
    let b2 = restart.await.expect("B restarted");
    let counts = settled_counts(&a).await;
    let delivered = b1_spans.stats().items + b2.spans.stats().items;
    assert_eq!(a.terminate().await.code(), Some(0));
    b2.stop().await;
    (accepted, counts, delivered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_backpressure_nothing_is_lost_while_the_downstream_restarts() {
    let (accepted, (a_accepted, sent, dropped), delivered) =
        chain("backpressure", "1000", Duration::from_secs(2)).await;
    assert_eq!(accepted, 6_000, "the client got every span in, retrying refusals");
    assert_eq!(a_accepted, accepted as f64);
    assert_eq!(dropped, 0.0, "nothing dropped, for any reason");
    assert_eq!(sent, accepted as f64);
    assert_eq!(delivered as f64, sent, "B's two lives received exactly what A sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_drop_policy_every_span_is_delivered_or_counted_as_dropped() {
    let (accepted, (a_accepted, sent, dropped), delivered) = chain("drop", "300", Duration::from_secs(2)).await;
    assert_eq!(a_accepted, accepted as f64);
    assert!(dropped > 0.0, "a 2 s outage overflows a 300-span queue");
    assert_eq!(delivered as f64, sent);
    assert_eq!(sent + dropped, accepted as f64, "delivered + dropped = accepted, exactly");
}
