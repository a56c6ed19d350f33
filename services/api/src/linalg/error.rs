//! Why an operation gave no result, and which gRPC class of error that is.

use super::SYMMETRY_RTOL;

/// Why an operation did not produce a result.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LinalgError {
    /// The shapes of `a` and `b` are incompatible (INVALID_ARGUMENT).
    #[error("{message}")]
    ShapeMismatch {
        /// Names both fields, their shapes and the rule they break.
        message: String,
    },
    /// `a` must be square for this operation (INVALID_ARGUMENT).
    #[error("a must be square for {operation}, but a is {rows}×{cols}")]
    NotSquare {
        /// The operation that needs a square matrix.
        operation: &'static str,
        /// Rows of `a`.
        rows: usize,
        /// Columns of `a`.
        cols: usize,
    },
    /// `a` must be symmetric for this operation (INVALID_ARGUMENT).
    #[error(
        "a must be symmetric for {operation}, but a[{row}][{col}] and a[{col}][{row}] differ: \
         symmetry requires |a[i][j] − a[j][i]| ≤ {rtol:e} · max|a[i][j]| for every i < j",
        rtol = SYMMETRY_RTOL
    )]
    NotSymmetric {
        /// The operation that needs a symmetric matrix.
        operation: &'static str,
        /// Row of the first offending element above the diagonal.
        row: usize,
        /// Column of the first offending element above the diagonal.
        col: usize,
    },
    /// Solve was given a wide `a` (INVALID_ARGUMENT).
    #[error(
        "a is {rows}×{cols}, which has fewer rows than columns: solve handles square systems \
         (exact solution) and tall ones (least squares), not underdetermined ones"
    )]
    Underdetermined {
        /// Rows of `a`.
        rows: usize,
        /// Columns of `a`.
        cols: usize,
    },
    /// `a` is singular to working precision (FAILED_PRECONDITION).
    #[error(
        "a is singular to working precision, so {operation} has no unique result: its LU \
         factorization with partial pivoting has min|u_ii| ≤ n·ε·max|u_ii| (n = order of a, \
         ε = 2.22e-16)"
    )]
    Singular {
        /// The operation that needs a non-singular matrix.
        operation: &'static str,
    },
    /// Cholesky was given a symmetric `a` that is not positive definite
    /// (FAILED_PRECONDITION).
    #[error(
        "a is symmetric but not positive definite, so it has no Cholesky factorization \
         (a non-positive pivot appeared); use the LU or eigen decomposition instead"
    )]
    NotPositiveDefinite,
    /// An iterative solver did not converge: a server fault, not the caller's (INTERNAL).
    #[error("the {operation} iteration did not converge; this is a fault of the service, please report it")]
    NoConvergence {
        /// The operation whose solver failed.
        operation: &'static str,
    },
    /// The caller cancelled or its deadline passed.
    #[error("the computation was cancelled because the caller cancelled or its deadline passed")]
    Cancelled,
}

impl LinalgError {
    /// Errors that map to gRPC FAILED_PRECONDITION: the request is well-formed
    /// but the matrix lacks a property the operation needs.
    pub fn is_precondition(&self) -> bool {
        matches!(self, Self::Singular { .. } | Self::NotPositiveDefinite)
    }

    /// Errors that map to gRPC INVALID_ARGUMENT: the shapes or structure of
    /// the arguments are wrong for the operation.
    pub fn is_invalid_argument(&self) -> bool {
        matches!(
            self,
            Self::ShapeMismatch { .. }
                | Self::NotSquare { .. }
                | Self::NotSymmetric { .. }
                | Self::Underdetermined { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::test_support::*;
    use crate::linalg::{DecompositionKind, decompose, invert, multiply, solve};

    #[test]
    fn errors_fall_into_exactly_one_grpc_class() {
        let invalid = [
            LinalgError::ShapeMismatch { message: String::new() },
            LinalgError::NotSquare { operation: "invert", rows: 2, cols: 3 },
            LinalgError::NotSymmetric { operation: "eigendecomposition", row: 0, col: 1 },
            LinalgError::Underdetermined { rows: 2, cols: 3 },
        ];
        for e in &invalid {
            assert!(e.is_invalid_argument() && !e.is_precondition(), "{e:?}");
        }
        let precondition = [LinalgError::Singular { operation: "solve" }, LinalgError::NotPositiveDefinite];
        for e in &precondition {
            assert!(e.is_precondition() && !e.is_invalid_argument(), "{e:?}");
        }
        assert!(!LinalgError::Cancelled.is_precondition());
        assert!(!LinalgError::Cancelled.is_invalid_argument());
    }

    #[test]
    fn error_messages_name_the_field_and_the_shapes() {
        let e = multiply(&mat(2, 3, &[0.0; 6]), &mat(4, 1, &[0.0; 4]), &live()).unwrap_err();
        assert_eq!(e.to_string(), "a is 2×3 and b is 4×1: multiply needs a.cols == b.rows");
        let e = solve(&mat(2, 2, &[1.0, 0.0, 0.0, 1.0]), &mat(3, 1, &[0.0; 3]), &live()).unwrap_err();
        assert_eq!(e.to_string(), "a is 2×2 and b is 3×1: solve needs b.rows == a.rows");
        let e = invert(&mat(2, 3, &[0.0; 6]), &live()).unwrap_err();
        assert_eq!(e.to_string(), "a must be square for invert, but a is 2×3");
        let e = decompose(&mat(2, 2, &[1.0, 2.0, 3.0, 1.0]), DecompositionKind::Eigen, &live()).unwrap_err();
        assert!(e.to_string().contains("a[0][1] and a[1][0] differ"), "{e}");
        assert!(e.to_string().contains("≤ 1e-12 · max|a[i][j]|"), "{e}");
        let e = solve(&mat(1, 2, &[1.0, 2.0]), &mat(1, 1, &[1.0]), &live()).unwrap_err();
        assert!(e.to_string().starts_with("a is 1×2, which has fewer rows than columns"), "{e}");
        let e = invert(&mat(1, 1, &[0.0]), &live()).unwrap_err();
        assert!(e.to_string().starts_with("a is singular to working precision, so invert"), "{e}");
        assert!(e.to_string().contains("n·ε·max|u_ii|"), "{e}");
    }
}
