//! OTLP wire formats: protobuf and JSON decoding and encoding, gzip with size limits.
