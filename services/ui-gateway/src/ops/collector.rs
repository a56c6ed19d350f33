//! A small HTTP/1 client of the telemetry-collector's admin and query port (docs/contracts.md §4); the
//! answers' types and routes are the collector's own, from `axiom25-telemetry-query`.

use std::time::Duration;

use axiom25_telemetry_query::{
    LOGS_PATH, LogList, LogView, TRACES_PATH, TraceDetail, TraceList, TraceSummary, trace_path,
};
use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
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
    /// Its answer was not what docs/contracts.md §4 describes.
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
        let mut path = format!("{TRACES_PATH}?limit={limit}");
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
    pub async fn trace(&self, id: &str) -> Result<Option<TraceDetail>, CollectorError> {
        match self.get_json(&trace_path(id)).await {
            Err(CollectorError::Status(StatusCode::NOT_FOUND)) => Ok(None),
            other => other.map(Some),
        }
    }

    /// The logs of a trace. `id` must be validated hex.
    ///
    /// # Errors
    /// When the collector gives no usable answer.
    pub async fn logs(&self, id: &str) -> Result<Vec<LogView>, CollectorError> {
        Ok(self.get_json::<LogList>(&format!("{LOGS_PATH}?trace_id={id}")).await?.logs)
    }
}
