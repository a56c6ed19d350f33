//! Integration tests of the collector: the real server on free loopback ports, real clients.

mod backpressure;
mod bad_input;
mod burst;
mod chained;
mod helpers;
mod interop;
mod receive;

/// The collector runs in this process: install its heap as its binary does, so that the memory
/// limiter measures the live heap ([`helpers::spawn_collector_with`] registers it).
#[global_allocator]
static HEAP: axiom25_telemetry_collector::limiter::Heap = axiom25_telemetry_collector::limiter::heap();
