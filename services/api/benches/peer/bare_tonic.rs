//! The floor of the api's request path: a bare tonic server on the same proto, with no layers, no
//! telemetry and tokio's default runtime, answering Multiply with the api's own conversion and
//! product. The benches run it beside the api in the same run and report the api's CPU per call
//! as a ratio against it (docs/benchmarks/api.md).
//!
//! `axiom25-bare-tonic` (built with `--features bare-tonic`) listens on `127.0.0.1:$PORT` (0 by
//! default) and prints one JSON line `{"message": "Listening", "grpc_port": N}` on stdout, the
//! form the test kit's `Binary` waits for.

use std::net::{Ipv4Addr, SocketAddr};

use axiom25_api::convert::{Limits, dense_from_proto, dense_to_proto};
use axiom25_api::linalg::{self, CancelToken};
use axiom25_proto::matrix::v1::matrix_service_server::{MatrixService, MatrixServiceServer};
use axiom25_proto::matrix::v1::{
    AnalyzeRequest, AnalyzeResponse, DecomposeRequest, DecomposeResponse, DeterminantRequest, DeterminantResponse,
    InvertRequest, InvertResponse, MultiplyRequest, MultiplyResponse, SolveRequest, SolveResponse,
};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

const LIMITS: Limits = Limits { max_rows: 1024, max_cols: 1024 };

/// Multiply on the caller's task; every other RPC is unimplemented.
struct BareMatrix;

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("the bare server answers Multiply only"))
}

#[tonic::async_trait]
impl MatrixService for BareMatrix {
    async fn multiply(&self, request: Request<MultiplyRequest>) -> Result<Response<MultiplyResponse>, Status> {
        let MultiplyRequest { a, b } = request.into_inner();
        let (a, b) = (dense_from_proto("a", a, LIMITS)?, dense_from_proto("b", b, LIMITS)?);
        let product =
            linalg::multiply(&a, &b, &CancelToken::new()).map_err(|error| Status::internal(error.to_string()))?;
        Ok(Response::new(MultiplyResponse { result: Some(dense_to_proto(product)) }))
    }

    async fn solve(&self, _: Request<SolveRequest>) -> Result<Response<SolveResponse>, Status> {
        unimplemented()
    }

    async fn invert(&self, _: Request<InvertRequest>) -> Result<Response<InvertResponse>, Status> {
        unimplemented()
    }

    async fn determinant(&self, _: Request<DeterminantRequest>) -> Result<Response<DeterminantResponse>, Status> {
        unimplemented()
    }

    async fn decompose(&self, _: Request<DecomposeRequest>) -> Result<Response<DecomposeResponse>, Status> {
        unimplemented()
    }

    async fn analyze(&self, _: Request<AnalyzeRequest>) -> Result<Response<AnalyzeResponse>, Status> {
        unimplemented()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // One thread per computation, as the api's default `compute.threads_per_request: 1`.
    faer::set_global_parallelism(faer::Par::Seq);
    let port = std::env::var("PORT").ok().map_or(Ok(0), |port| port.parse())?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let grpc_port = listener.local_addr()?.port();
    let line = format!("{{\"message\":\"Listening\",\"grpc_port\":{grpc_port}}}\n");
    std::io::Write::write_all(&mut std::io::stdout(), line.as_bytes())?;
    tonic::transport::Server::builder()
        .add_service(MatrixServiceServer::new(BareMatrix))
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await?;
    Ok(())
}
