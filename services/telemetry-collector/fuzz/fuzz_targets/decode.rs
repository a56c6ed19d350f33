//! Feeds arbitrary bytes to every OTLP decoder: both encodings of the three export requests, and
//! gunzip under a small limit. None may panic, and no error message may grow with the input.

#![no_main]

use axiom25_telemetry_collector::otlp::{self, Encoding};
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
};

const GUNZIP_LIMIT: usize = 64 * 1024;
const LONGEST_ERROR: usize = 2048;

fn check<M: otlp::ExportRequest>(body: &[u8]) {
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        if let Err(error) = otlp::decode::<M>(body, encoding) {
            assert!(error.to_string().len() <= LONGEST_ERROR, "{encoding:?}: {error}");
        }
    }
}

fuzz_target!(|body: &[u8]| {
    check::<ExportTraceServiceRequest>(body);
    check::<ExportMetricsServiceRequest>(body);
    check::<ExportLogsServiceRequest>(body);
    match otlp::gunzip(body, GUNZIP_LIMIT) {
        Ok(inflated) => {
            assert!(inflated.len() <= GUNZIP_LIMIT);
            check::<ExportTraceServiceRequest>(&inflated);
        }
        Err(error) => assert!(error.to_string().len() <= LONGEST_ERROR),
    }
});
