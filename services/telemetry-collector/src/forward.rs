//! Upstream OTLP/gRPC forwarding: one bounded queue and retry loop per signal and destination.
