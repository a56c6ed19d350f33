//! One HTTP client for tests and benches (hyper-util's pooled client): any method, headers and
//! body; the answer's status, headers and whole body, whatever the status.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An HTTP/1.1 (or HTTP/2 prior-knowledge) client with keep-alive and a per-request time limit.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

/// Status, headers and body of an answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The trailers (gRPC's `grpc-status`, for one); empty when there were none.
    pub trailers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// HTTP/1.1, 30 s per request.
    pub fn new() -> Self {
        Self { client: Client::builder(TokioExecutor::new()).build_http(), timeout: Duration::from_secs(30) }
    }

    /// HTTP/2 with prior knowledge (h2c), as gRPC servers speak it.
    pub fn http2_only() -> Self {
        Self { client: Client::builder(TokioExecutor::new()).http2_only(true).build_http(), ..Self::new() }
    }

    /// The time limit for one request, answer body included.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// Sends `method` to `http://{addr}{path}` with `headers` and `body`.
    pub async fn send(
        &self,
        method: Method,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Answer> {
        let mut request = Request::builder().method(method).uri(format!("http://{addr}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).context("building the request")?;
        let exchange = async {
            let response = self.client.request(request).await.context("no HTTP answer")?;
            let (parts, body) = response.into_parts();
            let collected = body.collect().await.context("reading the answer body")?;
            let trailers = collected.trailers().cloned().unwrap_or_default();
            anyhow::Ok(Answer { status: parts.status, headers: parts.headers, trailers, body: collected.to_bytes() })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .with_context(|| format!("no answer from {addr}{path} within {:?}", self.timeout))?
    }

    /// `GET http://{addr}{path}`.
    pub async fn get(&self, addr: SocketAddr, path: &str) -> anyhow::Result<Answer> {
        self.send(Method::GET, addr, path, &[], Bytes::new()).await
    }

    /// `POST http://{addr}{path}` with `headers` and `body`.
    pub async fn post(
        &self,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Answer> {
        self.send(Method::POST, addr, path, headers, body).await
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap as AxumHeaders;
    use axum::routing::{get, post};

    use super::*;

    async fn echo_server() -> SocketAddr {
        let router = axum::Router::new()
            .route("/hello", get(async || ([("x-kind", "greeting")], "hi")))
            .route(
                "/echo",
                post(async |headers: AxumHeaders, body: Bytes| {
                    let kind = headers.get("content-type").cloned().expect("content-type sent");
                    (StatusCode::CREATED, [("content-type", kind)], body)
                }),
            )
            .route("/slow", get(async || tokio::time::sleep(Duration::from_secs(5)).await));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr
    }

    #[tokio::test]
    async fn a_post_sends_its_headers_and_body_and_gets_status_headers_and_body_back() {
        let addr = echo_server().await;
        let answer = HttpClient::new()
            .post(addr, "/echo", &[("content-type", "application/json")], "{\"a\":1}")
            .await
            .expect("answer");
        assert_eq!(answer.status, StatusCode::CREATED);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_eq!(answer.json(), serde_json::json!({"a": 1}));
    }

    #[tokio::test]
    async fn an_error_status_is_an_answer_not_an_error() {
        let addr = echo_server().await;
        let client = HttpClient::new();
        assert_eq!(client.get(addr, "/nope").await.expect("answer").status, StatusCode::NOT_FOUND);
        let hello = client.get(addr, "/hello").await.expect("answer");
        assert_eq!(
            (hello.status, hello.header("x-kind"), hello.text().as_str()),
            (StatusCode::OK, Some("greeting"), "hi")
        );
    }

    #[tokio::test]
    async fn a_request_slower_than_the_limit_fails_in_time() {
        let addr = echo_server().await;
        let started = std::time::Instant::now();
        let client = HttpClient::new().with_timeout(Duration::from_millis(100));
        let error = client.get(addr, "/slow").await.expect_err("times out");
        assert!(error.to_string().contains("within"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn an_http2_client_talks_to_an_h2c_server() {
        let addr = echo_server().await;
        let answer = HttpClient::http2_only().get(addr, "/hello").await.expect("answer");
        assert_eq!((answer.status, answer.text().as_str()), (StatusCode::OK, "hi"));
    }

    /// A server that answers one request with `raw` bytes, whatever it asked.
    async fn raw_server(raw: &'static [u8]) -> SocketAddr {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accepts");
            let mut request = vec![0; 4096];
            let _ = stream.read(&mut request).await;
            stream.write_all(raw).await.expect("writes");
        });
        addr
    }

    #[tokio::test]
    async fn a_chunked_answer_is_read_whole_with_its_headers() {
        let addr = raw_server(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nTransfer-Encoding: chunked\r\n\r\n\
              3\r\n{\"a\r\n2\r\n\":\r\n1\r\n1\r\n1\r\n}\r\n0\r\n\r\n",
        )
        .await;
        let answer = HttpClient::new().post(addr, "/", &[], "{}").await.expect("answer");
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.header("retry-after"), Some("1"));
        assert_eq!(answer.json(), serde_json::json!({"a": 1}));
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error_at_once() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds").local_addr().expect("addr");
        let started = std::time::Instant::now();
        assert!(HttpClient::new().get(closed, "/").await.is_err(), "nothing listens on {closed}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
