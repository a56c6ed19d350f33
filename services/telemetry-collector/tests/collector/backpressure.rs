//! Refusals that ask the client to come back later: memory pressure and a full upstream queue.

use std::time::Duration;

use prost::Message as _;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::*;

const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");

fn hundred_spans(trace: u64) -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    traces("burst", (1..=100).map(|id| span(trace, id, None, "burst", 1, false)).collect())
}

fn retry_info(status: &tonic::Status) -> Option<Duration> {
    status.get_details_retry_info().and_then(|info| info.retry_delay)
}

#[tokio::test]
async fn above_the_soft_memory_limit_new_data_is_refused_with_retry_advice() {
    // The test process is far above 16 MiB resident; make sure of it.
    let ballast = vec![1u8; 32 << 20];
    assert!(ballast.iter().step_by(4096).all(|byte| *byte == 1));
    let collector = spawn_collector_with(|settings| {
        settings.memory.limit_mib = 32;
        settings.memory.spike_limit_mib = 16;
        settings.memory.retry_after_ms = 2_500;
    })
    .await;
    let error = collector.traces().export(hundred_spans(20)).await.expect_err("refused");
    assert_eq!(error.code(), Code::Unavailable, "{error:?}");
    assert_eq!(retry_info(&error), Some(Duration::from_millis(2_500)));

    let (status, headers, _) = collector.post("/v1/traces", &[PROTOBUF], hundred_spans(21).encode_to_vec()).await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "3", "whole seconds, rounded up");
    let (_, services) = collector.get_json("/api/v1/services").await;
    assert_eq!(services["services"], serde_json::json!([]), "nothing refused was stored");
    // Only OTLP calls are refused: anything else is UNIMPLEMENTED as always, so the RED metrics
    // label it `_OTHER` instead of a method name the client chose.
    let status = raw_grpc_status(collector.addresses.grpc, "/made.up.Service/Method42", &[]).await;
    assert_eq!(status.as_deref(), Some("12"));
    drop(ballast);
    collector.stop().await;
}

#[tokio::test]
async fn a_full_upstream_queue_answers_backpressure_and_an_impossible_request_is_refused_for_good() {
    // Port 9 (discard) is closed on loopback: every export fails and is retried, so the queue fills.
    let collector = spawn_collector_with(|settings| {
        settings.forward.traces_endpoint = "http://127.0.0.1:9".into();
        settings.forward.queue_capacity_items = 250;
    })
    .await;
    let mut client = collector.traces();
    for trace in [30, 31] {
        client.export(hundred_spans(trace)).await.expect("room in the queue");
    }
    // The export loop may hold a few batches in flight outside the queue; fill what is left.
    let mut refused = None;
    for trace in 32..40 {
        if let Err(status) = client.export(hundred_spans(trace)).await {
            refused = Some((trace, status));
            break;
        }
    }
    let (trace, status) = refused.expect("the queue fills up");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(retry_info(&status).is_some(), "backpressure carries RetryInfo");
    let (found, _) = collector.get_json(&format!("/api/v1/traces/{}", trace_hex(trace))).await;
    assert_eq!(found, 404, "a refused request changes nothing");
    let (status, headers, _) = collector.post("/v1/traces", &[PROTOBUF], hundred_spans(40).encode_to_vec()).await;
    assert_eq!(status, 503);
    assert!(headers.contains_key("retry-after"));

    let too_many = traces("big", (1..=300).map(|id| span(41, id, None, "big", 1, false)).collect());
    let status = client.export(too_many.clone()).await.expect_err("larger than the queue");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(retry_info(&status).is_none(), "never retried");
    let (status, _, _) = collector.post("/v1/traces", &[PROTOBUF], too_many.encode_to_vec()).await;
    assert_eq!(status, 413);
    collector.stop().await;
}

#[tokio::test]
async fn a_gzip_body_is_not_refused_for_good_on_a_guess_about_its_decoded_size() {
    use std::io::Write as _;
    // Over 5 MiB of gzip could inflate to 40 MiB or more, and five times that is more than the soft
    // limit of 200 MiB: reserving the guess in full would answer 503 to this body forever.
    let collector = spawn_collector_with(|settings| {
        settings.memory.limit_mib = 240;
        settings.memory.spike_limit_mib = 40;
        settings.limits.max_decompressed_bytes = 64 << 20;
    })
    .await;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let noise: String = (0..7 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % 64) as usize])
        })
        .collect();
    let mut one = span(50, 1, None, "incompressible", 1, false);
    one.attributes.push(string_attribute("payload", &noise));
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&traces("gz", vec![one]).encode_to_vec()).expect("gzip");
    let body = encoder.finish().expect("gzip");
    assert!(body.len() > 5 << 20, "the body stays large once compressed: {} bytes", body.len());
    let (status, _, _) = collector.post("/v1/traces", &[PROTOBUF, ("content-encoding", "gzip")], body).await;
    assert_eq!(status, 200);
    collector.stop().await;
}
