//! OTLP receivers: gRPC (4317) and HTTP (4318), both feeding one [`crate::pipeline::Pipeline`].

pub mod grpc;
pub mod http;

use serde::Deserialize;

use crate::validate::below_problem;

/// Request size limits of both receivers.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body as received (HTTP, possibly compressed), in bytes.
    pub max_request_bytes: usize,
    /// Largest request once decompressed, in bytes: the HTTP body after gzip and the gRPC message.
    pub max_decompressed_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_request_bytes: 8 << 20, max_decompressed_bytes: 32 << 20 }
    }
}

impl Limits {
    /// Problems with these settings, keys prefixed with `prefix`.
    #[must_use]
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, value) in
            [("max_request_bytes", self.max_request_bytes), ("max_decompressed_bytes", self.max_decompressed_bytes)]
        {
            if !(1024..=1 << 30).contains(&value) {
                problems.push(format!("{prefix}.{key}: must be within 1024..=1073741824, got {value}"));
            }
        }
        problems.extend(below_problem(
            prefix,
            ("max_decompressed_bytes", self.max_decompressed_bytes),
            ("max_request_bytes", self.max_request_bytes),
        ));
        problems
    }
}
