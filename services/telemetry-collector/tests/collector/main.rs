//! Integration tests of the collector: the real server on free loopback ports, real clients.

mod backpressure;
mod bad_input;
mod burst;
mod chained;
mod helpers;
mod interop;
mod receive;
