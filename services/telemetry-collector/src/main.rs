//! The telemetry-collector binary.

fn main() {}
