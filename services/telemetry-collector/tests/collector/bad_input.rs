//! Bad input gets the OTLP answer the specification gives, changes nothing, and crashes nothing.

use std::io::Write as _;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;
use tonic::codec::CompressionEncoding;

use crate::helpers::*;

const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");
const JSON: (&str, &str) = ("content-type", "application/json");
const GZIP: (&str, &str) = ("content-encoding", "gzip");

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A trace request whose encoding is about `bytes` long.
fn large_request(bytes: usize) -> ExportTraceServiceRequest {
    let mut one = span(90, 1, None, "large", 1, false);
    one.attributes.push(string_attribute("payload", &"x".repeat(bytes)));
    traces("large", vec![one])
}

/// The HTTP status of a trace export with these headers and body.
async fn post_traces(collector: &TestCollector, headers: &[(&str, &str)], body: Vec<u8>) -> u16 {
    collector.post("/v1/traces", headers, body).await.0
}

/// Checks that the collector still serves both receivers, then stops it.
async fn still_serves_then_stop(collector: TestCollector) {
    let request = traces("after", vec![span(99, 1, None, "after", 1, false)]);
    collector.traces().export(request.clone()).await.expect("gRPC still serves");
    assert_eq!(post_traces(&collector, &[PROTOBUF], request.encode_to_vec()).await, 200, "HTTP still serves");
    collector.stop().await;
}

#[tokio::test]
async fn wrong_media_types_and_encodings_are_refused_with_415() {
    let collector = spawn_collector().await;
    let body = traces("m", vec![span(10, 1, None, "m", 1, false)]).encode_to_vec();
    for headers in [
        vec![("content-type", "text/plain")],
        vec![],
        vec![("content-type", "application/xml")],
        vec![PROTOBUF, ("content-encoding", "br")],
    ] {
        assert_eq!(post_traces(&collector, &headers, body.clone()).await, 415, "{headers:?}");
    }
    let charset = ("content-type", "application/json; charset=utf-8");
    assert_eq!(post_traces(&collector, &[charset], b"{}".to_vec()).await, 200, "a charset parameter is fine");
    let (_, missing) = collector.get_json(&format!("/api/v1/traces/{}", trace_hex(10))).await;
    assert_eq!(missing["status"], 404, "nothing refused was stored: {missing}");
    still_serves_then_stop(collector).await;
}

#[tokio::test]
async fn undecodable_bodies_are_400_with_a_status_naming_the_problem() {
    let collector = spawn_collector().await;
    let valid = traces("d", vec![span(11, 1, None, "d", 1, false)]).encode_to_vec();
    let cases: Vec<((&str, &str), Vec<u8>, &str)> = vec![
        (PROTOBUF, valid[..valid.len() - 3].to_vec(), "truncated protobuf"),
        (PROTOBUF, vec![0xff; 64], "garbage protobuf"),
        (JSON, b"{\"resourceSpans\": [".to_vec(), "truncated JSON"),
        (JSON, b"not json at all".to_vec(), "garbage JSON"),
        (JSON, br#"{"resourceSpans": "spans"}"#.to_vec(), "wrong JSON type"),
        (
            JSON,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0102030405060708"}]}]}]}"#
                .to_vec(),
            "bad hex trace id",
        ),
    ];
    for (content_type, body, case) in cases {
        let (status, headers, answer) = collector.post("/v1/traces", &[content_type], body).await;
        assert_eq!(status, 400, "{case}");
        assert_eq!(headers["content-type"], content_type.1, "{case}: the error is in the request's encoding");
        assert!(!answer.is_empty(), "{case}: a google.rpc.Status body");
        if content_type == JSON {
            let status: serde_json::Value = serde_json::from_slice(&answer).expect("JSON status");
            assert_eq!(status["code"], 3, "{case}: INVALID_ARGUMENT");
            assert!(status["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}: {status}");
        }
    }
    let bad_hex = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0102030405060708"}]}]}]}"#;
    let (_, _, answer) = collector.post("/v1/traces", &[JSON], bad_hex.to_vec()).await;
    let message = serde_json::from_slice::<serde_json::Value>(&answer).expect("json")["message"].to_string();
    assert!(message.contains("traceId"), "the message names the field: {message}");
    assert_eq!(post_traces(&collector, &[PROTOBUF, GZIP], valid).await, 400, "a body that is not gzip");
    still_serves_then_stop(collector).await;
}

#[tokio::test]
async fn oversize_bodies_are_413_before_and_after_decompression() {
    let collector = spawn_collector_with(|settings| {
        settings.limits.max_request_bytes = 64 << 10;
        settings.limits.max_decompressed_bytes = 256 << 10;
    })
    .await;
    let large = large_request(100 << 10).encode_to_vec();
    assert_eq!(post_traces(&collector, &[PROTOBUF], large.clone()).await, 413, "declared length over the limit");

    // Chunked, no Content-Length: the limit holds while reading.
    let mut stream = tokio::net::TcpStream::connect(collector.addresses.http).await.expect("connect");
    let head = "POST /v1/traces HTTP/1.1\r\nhost: test\r\ncontent-type: application/x-protobuf\r\ntransfer-encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("write");
    for chunk in large.chunks(16 << 10) {
        let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await;
        let _ = stream.write_all(chunk).await;
        let _ = stream.write_all(b"\r\n").await;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![0; 64];
    let read = stream.read(&mut answer).await.expect("answer");
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 413"), "chunked body over the limit");

    // 1 MiB of zeros compresses to about 1 KiB: small on the wire, too large once inflated.
    let bomb = gzip(&large_request(1 << 20).encode_to_vec());
    assert!(bomb.len() < 64 << 10);
    assert_eq!(post_traces(&collector, &[PROTOBUF, GZIP], bomb).await, 413, "decompressed size over the limit");
    still_serves_then_stop(collector).await;
}

#[tokio::test]
async fn oversize_grpc_messages_are_resource_exhausted_compressed_or_not() {
    let collector = spawn_collector_with(|settings| settings.limits.max_decompressed_bytes = 256 << 10).await;
    let error = collector.traces().export(large_request(1 << 20)).await.expect_err("too large");
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
    assert!(error.message().contains("limits.max_decompressed_bytes"), "{}", error.message());

    let mut compressed = collector.traces().send_compressed(CompressionEncoding::Gzip);
    let error = compressed.export(large_request(1 << 20)).await.expect_err("too large once inflated");
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
    let small = traces("gz", vec![span(12, 1, None, "gz", 1, false)]);
    compressed.export(small).await.expect("a small gzip message is fine");
    still_serves_then_stop(collector).await;
}

#[tokio::test]
async fn garbage_grpc_messages_are_invalid_argument_and_the_server_keeps_serving() {
    let collector = spawn_collector().await;
    for payload in [vec![0xff; 40], vec![0x0a, 0x80], vec![]] {
        let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
        let status = raw_grpc_status(collector.addresses.grpc, path, &payload).await;
        if payload.is_empty() {
            assert_eq!(status.as_deref(), Some("0"), "an empty message is a valid empty request");
        } else {
            assert_eq!(status.as_deref(), Some("3"), "undecodable messages are INVALID_ARGUMENT");
        }
    }
    still_serves_then_stop(collector).await;
}
