//! A small HTTP/1 client of the telemetry-collector's admin and query port (CONTRACTS §4).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Largest answer read from the collector; a trace or a metrics page is far below it.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Why a collector request gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// Nothing answered in time, or the connection failed.
    #[error("the collector did not answer: {0}")]
    Unreachable(String),
    /// It answered with an unexpected status.
    #[error("the collector answered {0}")]
    Status(StatusCode),
    /// Its answer was not what CONTRACTS §4 describes.
    #[error("the collector's answer could not be read: {0}")]
    Malformed(String),
}

/// Client of one collector endpoint.
#[derive(Debug, Clone)]
pub struct Collector {
    endpoint: String,
    timeout: Duration,
    client: Client<HttpConnector, Empty<Bytes>>,
}

/// One trace in the list of recent traces.
#[derive(Debug, Clone, Deserialize)]
pub struct TraceSummary {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// Service of the root span.
    #[serde(default)]
    pub root_service: String,
    /// Name of the root span.
    #[serde(default)]
    pub root_name: String,
    /// Start, Unix nanoseconds.
    pub start_time_unix_nano: u64,
    /// Duration in nanoseconds.
    pub duration_ns: u64,
    /// Spans received so far.
    pub span_count: u64,
    /// Whether any span failed.
    pub error: bool,
}

#[derive(Deserialize)]
struct TraceList {
    traces: Vec<TraceSummary>,
}

/// One span of a trace.
#[derive(Debug, Clone, Deserialize)]
pub struct Span {
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// Empty for a root span.
    #[serde(default)]
    pub parent_span_id: String,
    /// Service that recorded it.
    pub service: String,
    /// Span name.
    pub name: String,
    /// e.g. `SPAN_KIND_SERVER`.
    pub kind: String,
    /// Start, Unix nanoseconds.
    pub start_time_unix_nano: u64,
    /// End, Unix nanoseconds.
    pub end_time_unix_nano: u64,
    /// e.g. `STATUS_CODE_ERROR`.
    pub status_code: String,
    /// Often empty.
    #[serde(default)]
    pub status_message: String,
    /// Span attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// A trace with its spans.
#[derive(Debug, Clone, Deserialize)]
pub struct Trace {
    /// Its spans.
    pub spans: Vec<Span>,
}

/// One log record.
#[derive(Debug, Clone, Deserialize)]
pub struct LogRecord {
    /// Unix nanoseconds.
    pub time_unix_nano: u64,
    /// e.g. `ERROR`.
    #[serde(default)]
    pub severity_text: String,
    /// The message; a string or any JSON value.
    #[serde(default)]
    pub body: serde_json::Value,
    /// Service that logged it.
    #[serde(default)]
    pub service: String,
    /// Span it was logged in, if any.
    #[serde(default)]
    pub span_id: String,
}

#[derive(Deserialize)]
struct LogList {
    logs: Vec<LogRecord>,
}

/// Filters of the list of recent traces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceFilter {
    /// Only traces with a failed span.
    pub error: bool,
    /// Only traces at least this long.
    pub min_duration_ms: Option<u64>,
}

impl Collector {
    /// A client of `endpoint` (`http://host:port`), each request bounded by `timeout`.
    #[must_use]
    pub fn new(endpoint: &str, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            timeout,
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// `GET path`: its status and body, within the timeout.
    ///
    /// # Errors
    /// When the collector cannot be reached in time.
    pub async fn get(&self, path: &str) -> Result<(StatusCode, Bytes), CollectorError> {
        let uri: Uri =
            format!("{}{path}", self.endpoint).parse().map_err(|_| CollectorError::Malformed(path.into()))?;
        let request =
            Request::get(uri).body(Empty::new()).map_err(|error| CollectorError::Malformed(error.to_string()))?;
        let exchange = async {
            let response =
                self.client.request(request).await.map_err(|error| CollectorError::Unreachable(error.to_string()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|error| CollectorError::Unreachable(error.to_string()))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| CollectorError::Unreachable(format!("no answer within {:?}", self.timeout)))?
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, CollectorError> {
        match self.get(path).await? {
            (StatusCode::OK, body) => {
                serde_json::from_slice(&body).map_err(|error| CollectorError::Malformed(error.to_string()))
            }
            (status, _) => Err(CollectorError::Status(status)),
        }
    }

    /// The newest traces, at most `limit`, filtered.
    ///
    /// # Errors
    /// When the collector gives no usable answer.
    pub async fn traces(&self, limit: usize, filter: TraceFilter) -> Result<Vec<TraceSummary>, CollectorError> {
        let mut path = format!("/api/v1/traces?limit={limit}");
        if filter.error {
            path.push_str("&error=true");
        }
        if let Some(min) = filter.min_duration_ms {
            path.push_str(&format!("&min_duration_ms={min}"));
        }
        Ok(self.get_json::<TraceList>(&path).await?.traces)
    }

    /// One trace; `None` when the collector does not know it. `id` must be validated hex.
    ///
    /// # Errors
    /// When the collector gives no usable answer.
    pub async fn trace(&self, id: &str) -> Result<Option<Trace>, CollectorError> {
        match self.get_json(&format!("/api/v1/traces/{id}")).await {
            Err(CollectorError::Status(StatusCode::NOT_FOUND)) => Ok(None),
            other => other.map(Some),
        }
    }

    /// The logs of a trace. `id` must be validated hex.
    ///
    /// # Errors
    /// When the collector gives no usable answer.
    pub async fn logs(&self, id: &str) -> Result<Vec<LogRecord>, CollectorError> {
        Ok(self.get_json::<LogList>(&format!("/api/v1/logs?trace_id={id}")).await?.logs)
    }
}
