//! OTLP/gRPC load generator for the collector benchmark (`make bench-collector`).
//!
//! Sends trace batches (100 spans per request, 10 attributes per span by default) at a fixed rate
//! for a bounded time and prints one JSON line with what happened: spans sent, accepted, refused,
//! failed, and call latency. Requests are encoded once and only their trace and span ids are
//! rewritten per call, so the generator spends little of the shared CPU. `--decode-only` instead
//! measures how fast this machine decodes the same payload with prost: the ceiling of any collector.
//! `--sink` instead serves `TraceService/Export` on 127.0.0.1 as the upstream of a forwarding
//! collector (ours or the peer's): it counts the spans it is given without building them, prints
//! `{"mode":"sink","listening":...}` once, a count line for every line read on stdin, and exits at
//! end of stdin or after `--seconds`.
//!
//! Usage: `axiom25-otlp-load [--endpoint URL] [--rate SPANS_PER_S] [--seconds N] [--spans N]
//! [--attributes N] [--concurrency N] [--decode-only | --sink]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axiom25_telemetry_collector::forward::Encoded;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use prost::Message;
use tonic::transport::Endpoint;

// The collector's allocator, so that `--decode-only` measures decoding as the collector does it.
#[global_allocator]
static HEAP: axiom25_telemetry_collector::limiter::Heap = axiom25_telemetry_collector::limiter::heap();

struct Options {
    endpoint: String,
    rate: u64,
    seconds: u64,
    spans: usize,
    attributes: usize,
    concurrency: usize,
    decode_only: bool,
    sink: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        endpoint: "http://127.0.0.1:4317".into(),
        rate: 50_000,
        seconds: 10,
        spans: 100,
        attributes: 10,
        concurrency: 16,
        decode_only: false,
        sink: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--decode-only" {
            options.decode_only = true;
            continue;
        }
        if flag == "--sink" {
            options.sink = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|_| format!("{flag}: not a number: {value}"));
        match flag.as_str() {
            "--endpoint" => options.endpoint = value.clone(),
            "--rate" => options.rate = number()?.max(1),
            "--seconds" => options.seconds = number()?.clamp(1, 600),
            "--spans" => options.spans = number()?.clamp(1, 10_000) as usize,
            "--attributes" => options.attributes = number()?.min(100) as usize,
            "--concurrency" => options.concurrency = number()?.clamp(1, 1024) as usize,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(options)
}

const SERVICES: [&str; 4] = ["checkout", "cart", "payment", "shipping"];
const TRACE_MARK: [u8; 12] = *b"TRACEMARKER!";

/// One encoded request and where its ids sit, so each call rewrites them in place.
struct Template {
    bytes: Vec<u8>,
    trace_id_offsets: Vec<usize>,
}

fn template(spans: usize, attributes: usize) -> Template {
    let attribute = |i: usize| KeyValue {
        key_strindex: 0,
        key: format!("attribute.{i}"),
        value: Some(AnyValue {
            value: Some(if i.is_multiple_of(2) {
                any_value::Value::StringValue(format!("value-{i}-of-a-typical-length"))
            } else {
                any_value::Value::IntValue(i as i64 * 1000)
            }),
        }),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    let spans: Vec<Span> = (0..spans)
        .map(|i| {
            // Ten spans per trace: a root and its children.
            let mut trace_id = [0u8; 16];
            trace_id[..12].copy_from_slice(&TRACE_MARK);
            trace_id[12..].copy_from_slice(&((i / 10) as u32).to_be_bytes());
            let start = now + i as u64 * 1_000;
            Span {
                trace_id: trace_id.to_vec(),
                span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                parent_span_id: if i.is_multiple_of(10) {
                    Vec::new()
                } else {
                    ((i - i % 10) as u64 + 1).to_be_bytes().to_vec()
                },
                name: format!("operation-{}", i % 20),
                kind: if i.is_multiple_of(10) { span::SpanKind::Server } else { span::SpanKind::Internal } as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 1_000_000 + (i as u64 % 7) * 3_000_000,
                attributes: (0..attributes).map(attribute).collect(),
                status: Some(Status {
                    code: if i % 50 == 49 { status::StatusCode::Error } else { status::StatusCode::Unset } as i32,
                    message: String::new(),
                }),
                ..Span::default()
            }
        })
        .collect();
    let request = ExportTraceServiceRequest {
        resource_spans: SERVICES
            .iter()
            .enumerate()
            .map(|(s, service)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key_strindex: 0,
                        key: "service.name".into(),
                        value: Some(AnyValue { value: Some(any_value::Value::StringValue((*service).into())) }),
                    }],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: spans.iter().skip(s).step_by(SERVICES.len()).cloned().collect(),
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            })
            .collect(),
    };
    let bytes = request.encode_to_vec();
    let trace_id_offsets =
        bytes.windows(TRACE_MARK.len()).enumerate().filter(|(_, w)| *w == TRACE_MARK).map(|(i, _)| i).collect();
    Template { bytes, trace_id_offsets }
}

impl Template {
    /// The request with trace ids unique to call number `call`.
    fn instance(&self, call: u64) -> Bytes {
        let mut bytes = self.bytes.clone();
        for &offset in &self.trace_id_offsets {
            bytes[offset..offset + 8].copy_from_slice(&call.to_be_bytes());
            bytes[offset + 8..offset + 12].copy_from_slice(&(std::process::id()).to_be_bytes());
        }
        Bytes::from(bytes)
    }
}

#[derive(Default)]
struct Tally {
    calls: AtomicU64,
    accepted: AtomicU64,
    partially_rejected: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    latencies_us: std::sync::Mutex<Vec<u64>>,
}

fn decode_only(template: &Template, spans: usize, seconds: u64) -> String {
    let payload = template.instance(1);
    let started = Instant::now();
    let mut decoded = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        for _ in 0..100 {
            let request = ExportTraceServiceRequest::decode(payload.clone()).map(|r| r.resource_spans.len());
            decoded += u64::from(request.is_ok_and(|n| n > 0));
        }
    }
    let rate = decoded as f64 * spans as f64 / started.elapsed().as_secs_f64();
    format!(
        r#"{{"mode":"decode_only","spans_per_request":{spans},"request_bytes":{},"spans_per_second_one_core":{rate:.0}}}"#,
        payload.len()
    )
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("axiom25-otlp-load: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    if options.sink {
        return match sink::serve(Duration::from_secs(options.seconds)).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("axiom25-otlp-load: sink: {error}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let template = Arc::new(template(options.spans, options.attributes));
    if options.decode_only {
        let line = tokio::task::block_in_place(|| decode_only(&template, options.spans, options.seconds));
        emit(&line);
        return std::process::ExitCode::SUCCESS;
    }
    let channel = match Endpoint::from_shared(options.endpoint.clone()) {
        Ok(endpoint) => endpoint.tcp_nodelay(true).connect_lazy(),
        Err(error) => {
            eprintln!("axiom25-otlp-load: bad endpoint: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let tally = Arc::new(Tally::default());
    let permits = Arc::new(tokio::sync::Semaphore::new(options.concurrency));
    let requests_per_second = (options.rate as f64 / options.spans as f64).max(0.1);
    let interval = Duration::from_secs_f64(1.0 / requests_per_second);
    let total_calls = (requests_per_second * options.seconds as f64).ceil() as u64;
    let started = Instant::now();
    let mut late = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    for call in 0..total_calls {
        // Open loop: calls start on schedule; a call that finds every slot busy starts late.
        tokio::time::sleep_until((started + interval.mul_f64(call as f64)).into()).await;
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            late += 1;
            let permit = Arc::clone(&permits).acquire_owned().await.expect("never closed");
            tasks.spawn(send(channel.clone(), template.instance(call), Arc::clone(&tally), permit, options.spans));
            continue;
        };
        tasks.spawn(send(channel.clone(), template.instance(call), Arc::clone(&tally), permit, options.spans));
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = std::mem::take(&mut *tally.latencies_us.lock().expect("lock"));
    latencies.sort_unstable();
    let quantile = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let sent = tally.calls.load(Ordering::Relaxed) * options.spans as u64;
    emit(&format!(
        r#"{{"mode":"load","target_spans_per_second":{},"seconds":{elapsed:.2},"spans_sent":{sent},"spans_accepted":{},"spans_rejected_partially":{},"spans_refused":{},"spans_failed":{},"calls_started_late":{late},"achieved_spans_per_second":{:.0},"latency_p50_us":{},"latency_p99_us":{},"request_bytes":{}}}"#,
        options.rate,
        tally.accepted.load(Ordering::Relaxed),
        tally.partially_rejected.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
        tally.accepted.load(Ordering::Relaxed) as f64 / elapsed,
        quantile(0.5),
        quantile(0.99),
        template.bytes.len(),
    ));
    std::process::ExitCode::SUCCESS
}

/// Writes one result line to stdout, where the benchmark report reads it.
fn emit(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

async fn send(
    channel: tonic::transport::Channel,
    payload: Bytes,
    tally: Arc<Tally>,
    _permit: tokio::sync::OwnedSemaphorePermit,
    spans: usize,
) {
    let mut grpc = tonic::client::Grpc::new(channel);
    let spans = spans as u64;
    let started = Instant::now();
    let answer = async {
        grpc.ready().await.map_err(|error| tonic::Status::unavailable(error.to_string()))?;
        let path = http::uri::PathAndQuery::from_static("/opentelemetry.proto.collector.trace.v1.TraceService/Export");
        grpc.unary(tonic::Request::new(payload), path, Encoded::<ExportTraceServiceResponse>::default()).await
    }
    .await;
    tally.calls.fetch_add(1, Ordering::Relaxed);
    match answer {
        Ok(response) => {
            let rejected = response.into_inner().partial_success.map_or(0, |p| p.rejected_spans.max(0) as u64);
            tally.accepted.fetch_add(spans - rejected.min(spans), Ordering::Relaxed);
            tally.partially_rejected.fetch_add(rejected, Ordering::Relaxed);
            tally.latencies_us.lock().expect("lock").push(started.elapsed().as_micros() as u64);
        }
        Err(status) if status.code() == tonic::Code::Unavailable || status.code() == tonic::Code::ResourceExhausted => {
            tally.refused.fetch_add(spans, Ordering::Relaxed);
        }
        Err(_) => {
            tally.failed.fetch_add(spans, Ordering::Relaxed);
        }
    }
}

/// The upstream end of a forwarding benchmark: an OTLP/gRPC trace endpoint that counts spans.
mod sink {
    use std::convert::Infallible;
    use std::io::BufRead as _;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::task::{Context, Poll};
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::future::{BoxFuture, Ready, ready};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use tonic::codec::CompressionEncoding;
    use tonic_prost::ProstCodec;

    /// An export request read only as deep as its spans: each span stays an unparsed slice.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SpanCount {
        #[prost(message, repeated, tag = "1")]
        resource_spans: Vec<ResourceSpanCount>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct ResourceSpanCount {
        #[prost(message, repeated, tag = "2")]
        scope_spans: Vec<ScopeSpanCount>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct ScopeSpanCount {
        #[prost(bytes = "bytes", repeated, tag = "2")]
        spans: Vec<Bytes>,
    }

    impl SpanCount {
        pub fn spans(&self) -> u64 {
            self.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as u64).sum()
        }
    }

    #[derive(Default)]
    struct Received {
        requests: AtomicU64,
        spans: AtomicU64,
    }

    struct Export(Arc<Received>);

    impl tonic::server::UnaryService<SpanCount> for Export {
        type Response = ExportTraceServiceResponse;
        type Future = Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;
        fn call(&mut self, request: tonic::Request<SpanCount>) -> Self::Future {
            self.0.requests.fetch_add(1, Ordering::Relaxed);
            self.0.spans.fetch_add(request.get_ref().spans(), Ordering::Relaxed);
            ready(Ok(tonic::Response::new(ExportTraceServiceResponse::default())))
        }
    }

    #[derive(Clone)]
    struct TraceSink(Arc<Received>);

    impl tonic::server::NamedService for TraceSink {
        const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    }

    impl tower::Service<http::Request<tonic::body::Body>> for TraceSink {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
            let received = Arc::clone(&self.0);
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::<ExportTraceServiceResponse, SpanCount>::default())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(256 << 20);
                Ok(grpc.unary(Export(received), request).await)
            })
        }
    }

    fn emit_count(received: &Received) {
        super::emit(&format!(
            r#"{{"mode":"sink","requests":{},"spans_received":{}}}"#,
            received.requests.load(Ordering::Relaxed),
            received.spans.load(Ordering::Relaxed)
        ));
    }

    /// Serves until stdin ends or `lifetime` has passed, whichever comes first.
    pub async fn serve(lifetime: Duration) -> Result<(), Box<dyn std::error::Error>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        super::emit(&format!(r#"{{"mode":"sink","listening":"{}"}}"#, listener.local_addr()?));
        let received = Arc::new(Received::default());
        let (ended, stdin_ended) = tokio::sync::oneshot::channel::<()>();
        let counts = Arc::clone(&received);
        // Blocking stdin reads stay off the runtime; each line asks for the counts so far.
        std::thread::spawn(move || {
            for _ in std::io::stdin().lock().lines().map_while(Result::ok) {
                emit_count(&counts);
            }
            let _ = ended.send(());
        });
        let stop = async move {
            tokio::select! {
                _ = stdin_ended => {}
                () = tokio::time::sleep(lifetime) => {}
            }
        };
        tonic::transport::Server::builder()
            .add_service(TraceSink(Arc::clone(&received)))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                stop,
            )
            .await?;
        emit_count(&received);
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use prost::Message as _;

        use super::*;

        #[test]
        fn span_count_counts_every_span_of_every_resource_and_scope() {
            let bytes = super::super::template(100, 3).instance(7);
            assert_eq!(SpanCount::decode(bytes).expect("decodes").spans(), 100);
        }
    }
}
