//! `axiom25.matrix.v1.MatrixService`: each RPC validates its input, runs the computation through
//! the [`ComputeGate`] and converts the result.

use std::collections::HashMap;

use axiom25_proto::matrix::v1::matrix_service_server::MatrixService;
use axiom25_proto::matrix::v1::{
    AnalyzeRequest, AnalyzeResponse, DecomposeRequest, DecomposeResponse, Decomposition, DeterminantRequest,
    DeterminantResponse, InvertRequest, InvertResponse, MultiplyRequest, MultiplyResponse, SolveRequest, SolveResponse,
};
use tonic::{Request, Response, Status};

use crate::compute::ComputeGate;
use crate::convert::{Limits, dense_from_proto, dense_to_proto};
use crate::error::{ApiError, Operands, Reason};
use crate::linalg::{self, DecompositionKind, Dense};

/// The Matrix service.
#[derive(Debug, Clone)]
pub struct MatrixApi {
    limits: Limits,
    gate: ComputeGate,
}

impl MatrixApi {
    /// A service checking inputs against `limits` and computing through `gate`.
    #[must_use]
    pub const fn new(limits: Limits, gate: ComputeGate) -> Self {
        Self { limits, gate }
    }
}

/// rows·cols of `a`, for cost estimates.
fn dims(a: &Dense) -> f64 {
    a.rows() as f64 * a.cols() as f64
}

/// About the cost of one factorization of `a`: rows·cols·min(rows, cols). The estimates only
/// decide whether work is worth a thread hop; decompositions are weighted up (SVD and eigen
/// iterate).
fn cubic(a: &Dense) -> f64 {
    dims(a) * a.rows().min(a.cols()) as f64
}

fn decomposition_kind(kind: i32) -> Result<DecompositionKind, Status> {
    match Decomposition::try_from(kind) {
        Ok(Decomposition::Lu) => Ok(DecompositionKind::Lu),
        Ok(Decomposition::Qr) => Ok(DecompositionKind::Qr),
        Ok(Decomposition::Cholesky) => Ok(DecompositionKind::Cholesky),
        Ok(Decomposition::Svd) => Ok(DecompositionKind::Svd),
        Ok(Decomposition::Eigen) => Ok(DecompositionKind::Eigen),
        Ok(Decomposition::Unspecified) => Err(ApiError::new(
            Reason::InvalidDecomposition,
            "kind: DECOMPOSITION_UNSPECIFIED; choose LU, QR, CHOLESKY, SVD or EIGEN",
        )
        .field("kind")
        .into()),
        Err(_) => {
            Err(ApiError::new(Reason::InvalidDecomposition, format!("kind: {kind} is not a known Decomposition value"))
                .field("kind")
                .meta("value", kind)
                .into())
        }
    }
}

#[tonic::async_trait]
impl MatrixService for MatrixApi {
    async fn multiply(&self, request: Request<MultiplyRequest>) -> Result<Response<MultiplyResponse>, Status> {
        let MultiplyRequest { a, b } = request.into_inner();
        let (a, b) = (dense_from_proto("a", a, self.limits)?, dense_from_proto("b", b, self.limits)?);
        let flops = 2.0 * dims(&a) * b.cols() as f64;
        let result =
            self.gate.run(flops, Operands::two(&a, &b), move |cancel| linalg::multiply(&a, &b, cancel)).await?;
        Ok(Response::new(MultiplyResponse { result: Some(dense_to_proto(result)) }))
    }

    async fn solve(&self, request: Request<SolveRequest>) -> Result<Response<SolveResponse>, Status> {
        let SolveRequest { a, b } = request.into_inner();
        let (a, b) = (dense_from_proto("a", a, self.limits)?, dense_from_proto("b", b, self.limits)?);
        let flops = cubic(&a) + 2.0 * dims(&a) * b.cols() as f64;
        let result = self.gate.run(flops, Operands::two(&a, &b), move |cancel| linalg::solve(&a, &b, cancel)).await?;
        Ok(Response::new(SolveResponse { result: Some(dense_to_proto(result)) }))
    }

    async fn invert(&self, request: Request<InvertRequest>) -> Result<Response<InvertResponse>, Status> {
        let a = dense_from_proto("a", request.into_inner().a, self.limits)?;
        let result =
            self.gate.run(3.0 * cubic(&a), Operands::one(&a), move |cancel| linalg::invert(&a, cancel)).await?;
        Ok(Response::new(InvertResponse { result: Some(dense_to_proto(result)) }))
    }

    async fn determinant(&self, request: Request<DeterminantRequest>) -> Result<Response<DeterminantResponse>, Status> {
        let a = dense_from_proto("a", request.into_inner().a, self.limits)?;
        let value = self.gate.run(cubic(&a), Operands::one(&a), move |cancel| linalg::determinant(&a, cancel)).await?;
        Ok(Response::new(DeterminantResponse { value }))
    }

    async fn decompose(&self, request: Request<DecomposeRequest>) -> Result<Response<DecomposeResponse>, Status> {
        let DecomposeRequest { a, kind } = request.into_inner();
        let a = dense_from_proto("a", a, self.limits)?;
        let kind = decomposition_kind(kind)?;
        let factors = self
            .gate
            .run(20.0 * cubic(&a), Operands::one(&a), move |cancel| linalg::decompose(&a, kind, cancel))
            .await?;
        let factors: HashMap<String, _> =
            factors.into_iter().map(|(name, factor)| (name.to_owned(), dense_to_proto(factor))).collect();
        Ok(Response::new(DecomposeResponse { factors }))
    }

    async fn analyze(&self, request: Request<AnalyzeRequest>) -> Result<Response<AnalyzeResponse>, Status> {
        let a = dense_from_proto("a", request.into_inner().a, self.limits)?;
        let analysis =
            self.gate.run(20.0 * cubic(&a), Operands::one(&a), move |cancel| linalg::analyze(&a, cancel)).await?;
        // Shapes and ranks are bounded by the u32 limits of validated input.
        Ok(Response::new(AnalyzeResponse {
            rows: analysis.rows as u32,
            cols: analysis.cols as u32,
            rank: analysis.rank as u32,
            frobenius_norm: analysis.frobenius_norm,
            condition_number: analysis.condition_number,
            symmetric: analysis.symmetric,
            trace: analysis.trace,
            determinant: analysis.determinant,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decomposition_kind_maps_and_unspecified_is_rejected() {
        assert_eq!(decomposition_kind(Decomposition::Svd as i32).expect("svd"), DecompositionKind::Svd);
        let unspecified = decomposition_kind(0).expect_err("unspecified");
        assert_eq!(unspecified.code(), tonic::Code::InvalidArgument);
        assert!(unspecified.message().starts_with("kind:"));
        let details = tonic_types::StatusExt::get_error_details(&unspecified);
        assert_eq!(details.error_info().expect("ErrorInfo").reason, "INVALID_DECOMPOSITION");
        assert_eq!(details.bad_request().expect("BadRequest").field_violations[0].field, "kind");
        assert_eq!(decomposition_kind(99).expect_err("unknown").code(), tonic::Code::InvalidArgument);
    }
}
