//! Asking a colour through its preview name whether it serves, and smoke-testing it: every
//! MatrixService RPC once, each answer checked against a value known by hand.

use std::time::Duration;

use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;
use axiom25_proto::matrix::v1::{
    AnalyzeRequest, DecomposeRequest, Decomposition, DeterminantRequest, InvertRequest, Matrix, MultiplyRequest,
    SolveRequest,
};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Metadata naming the release that answered (docs/contracts.md §8).
pub const RELEASE_HEADER: &str = "x-axiom25-release";

/// What asking a colour can find.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    /// Not SERVING before the deadline; the last thing seen.
    #[error("not SERVING within {waited_s} s (last: {last})")]
    NeverServing {
        /// Seconds waited.
        waited_s: u64,
        /// The last answer or error.
        last: String,
    },
    /// An RPC failed or answered wrong.
    #[error("smoke test {rpc}: {problem}")]
    Smoke {
        /// The RPC.
        rpc: &'static str,
        /// What was wrong.
        problem: String,
    },
}

/// Probes colours over gRPC.
pub trait Prober: Send + Sync {
    /// Waits until `endpoint` answers gRPC health SERVING, polling every 250 ms up to `timeout`.
    fn wait_serving(&self, endpoint: &str, timeout: Duration) -> impl Future<Output = Result<(), ProbeError>> + Send;
    /// Calls every RPC once through `endpoint` and checks the answers and that they come from
    /// `expected_release` (`<color>/<version>`).
    fn smoke(&self, endpoint: &str, expected_release: &str) -> impl Future<Output = Result<(), ProbeError>> + Send;
    /// `SERVING`, `NOT_SERVING` or why it could not be asked, for `release-status`.
    fn health(&self, endpoint: &str) -> impl Future<Output = String> + Send;
}

/// The real prober.
#[derive(Debug, Default, Clone, Copy)]
pub struct GrpcProber;

async fn channel(endpoint: &str) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(endpoint.to_owned()).map_err(|error| error.to_string())?;
    endpoint
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|error| format!("connect: {error}"))
}

async fn check_health(endpoint: &str) -> Result<i32, String> {
    let mut client = HealthClient::new(channel(endpoint).await?);
    let answer = client
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?;
    Ok(answer.into_inner().status)
}

fn matrix(rows: u32, cols: u32, data: &[f64]) -> Option<Matrix> {
    Some(Matrix { rows, cols, data: data.to_vec() })
}

fn close(got: &[f64], want: &[f64]) -> bool {
    got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-9)
}

fn check(rpc: &'static str, ok: bool, got: impl std::fmt::Debug) -> Result<(), ProbeError> {
    if ok { Ok(()) } else { Err(ProbeError::Smoke { rpc, problem: format!("wrong answer {got:?}") }) }
}

fn failed(rpc: &'static str) -> impl Fn(tonic::Status) -> ProbeError {
    move |status| ProbeError::Smoke { rpc, problem: format!("{:?}: {}", status.code(), status.message()) }
}

/// What `rpc` answered, once it succeeded and its release header says `expected` answered it.
fn answered<T>(
    rpc: &'static str,
    expected: &str,
    answer: Result<tonic::Response<T>, tonic::Status>,
) -> Result<T, ProbeError> {
    let answer = answer.map_err(failed(rpc))?;
    released_by(rpc, &answer, expected)?;
    Ok(answer.into_inner())
}

fn released_by<T>(rpc: &'static str, answer: &tonic::Response<T>, expected: &str) -> Result<(), ProbeError> {
    let got = answer.metadata().get(RELEASE_HEADER).and_then(|value| value.to_str().ok()).unwrap_or("(none)");
    if got == expected {
        Ok(())
    } else {
        Err(ProbeError::Smoke { rpc, problem: format!("answered by {got}, expected {expected}") })
    }
}

impl Prober for GrpcProber {
    async fn wait_serving(&self, endpoint: &str, timeout: Duration) -> Result<(), ProbeError> {
        let started = tokio::time::Instant::now();
        loop {
            let last = match check_health(endpoint).await {
                Ok(1) => return Ok(()),
                Ok(status) => format!("health status {status}"),
                Err(error) => error,
            };
            if started.elapsed() >= timeout {
                return Err(ProbeError::NeverServing { waited_s: timeout.as_secs(), last });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn smoke(&self, endpoint: &str, expected: &str) -> Result<(), ProbeError> {
        let channel = channel(endpoint).await.map_err(|problem| ProbeError::Smoke { rpc: "connect", problem })?;
        let mut client = MatrixServiceClient::new(channel);
        let a = matrix(2, 2, &[4.0, 3.0, 6.0, 3.0]);

        let multiply = MultiplyRequest { a: a.clone(), b: matrix(2, 1, &[1.0, 2.0]) };
        let result = answered("Multiply", expected, client.multiply(multiply).await)?.result.unwrap_or_default();
        check("Multiply", close(&result.data, &[10.0, 12.0]), &result)?;

        let solve = SolveRequest { a: a.clone(), b: matrix(2, 1, &[10.0, 12.0]) };
        let result = answered("Solve", expected, client.solve(solve).await)?.result.unwrap_or_default();
        check("Solve", close(&result.data, &[1.0, 2.0]), &result)?;

        let invert = InvertRequest { a: a.clone() };
        let result = answered("Invert", expected, client.invert(invert).await)?.result.unwrap_or_default();
        check("Invert", close(&result.data, &[-0.5, 0.5, 1.0, -2.0 / 3.0]), &result)?;

        let determinant = DeterminantRequest { a: a.clone() };
        let value = answered("Determinant", expected, client.determinant(determinant).await)?.value;
        check("Determinant", (value + 6.0).abs() < 1e-9, value)?;

        let cholesky =
            DecomposeRequest { a: matrix(2, 2, &[4.0, 2.0, 2.0, 3.0]), kind: Decomposition::Cholesky.into() };
        let factors = answered("Decompose", expected, client.decompose(cholesky).await)?.factors;
        let l = factors.get("l").cloned().unwrap_or_default();
        check("Decompose", close(&l.data, &[2.0, 0.0, 1.0, 2f64.sqrt()]), &l)?;

        let analysis = answered("Analyze", expected, client.analyze(AnalyzeRequest { a }).await)?;
        check("Analyze", analysis.rank == 2 && analysis.trace == Some(7.0) && !analysis.symmetric, analysis)?;
        Ok(())
    }

    async fn health(&self, endpoint: &str) -> String {
        match check_health(endpoint).await {
            Ok(1) => "SERVING".into(),
            Ok(2) => "NOT_SERVING".into(),
            Ok(other) => format!("status {other}"),
            Err(error) => error,
        }
    }
}
