//! Dense linear algebra for the Matrix service, on [faer].
//!
//! Every operation takes row-major [`Dense`] matrices whose shape, length and
//! finiteness the gRPC layer has already validated, and returns either a result
//! or a [`LinalgError`] whose message tells the client which field (`a` or
//! `b`) is at fault and why. Nothing here panics on validated input.
//!
//! # Conventions
//!
//! * Matrices are row-major: element `a[i][j]` is `data[i * cols + j]`.
//! * Vectors produced by a decomposition (singular values, eigenvalues) are
//!   returned as `1×k` matrices.
//! * `k = min(rows, cols)` throughout.
//!
//! # Tolerance rules (public contract)
//!
//! `ε` is [`f64::EPSILON`] (2⁻⁵² ≈ 2.22e-16).
//!
//! * **Symmetry.** `a` is symmetric iff it is square and
//!   `|a[i][j] − a[j][i]| ≤ SYMMETRY_RTOL · max_ij |a[i][j]|` for all `i < j`
//!   (see [`SYMMETRY_RTOL`]). Cholesky and the eigendecomposition require it;
//!   they read the lower triangle of `a`.
//! * **Singularity (LU: square `solve`, `invert`).** `a` is singular iff the
//!   `U` factor of its partially pivoted LU factorization has
//!   `min_i |u_ii| ≤ n · ε · max_i |u_ii|` (an all-zero diagonal is singular).
//!   The factor `n · ε` is [`singularity_tolerance`].
//! * **Rank deficiency (QR: tall `solve`).** The same rule on the diagonal of
//!   `R` from the Householder QR of `a`, with `n` replaced by
//!   `max(rows, cols) = rows`. A rank-deficient tall system falls back to the
//!   minimum-norm least-squares solution from the SVD, as
//!   `numpy.linalg.lstsq` returns: singular values `σ_i ≤ max(m, n) · ε · σ_max`
//!   are treated as zero.
//! * **Numerical rank (`analyze`).** numpy's `matrix_rank` rule: the number of
//!   singular values with `σ_i > max(m, n) · ε · σ_max` (0 when `σ_max == 0`).
//!   The factor is [`rank_tolerance`].
//!
//! # Factor conventions
//!
//! * **LU** is `p·a = l·u` (row `i` of `p·a` is row `perm[i]` of `a`), which
//!   is faer's convention for `partial_pivoting::lu_in_place` (its `perm` is
//!   the forward array). When a pivot is exactly zero (a zero column, say),
//!   faer divides by it and leaves NaNs in `l`; `decompose` then refactors
//!   LAPACK-style, skipping the division, so `l` and `u` stay finite and exact.
//!   `determinant` returns 0 for such a matrix, and `solve`/`invert` report it
//!   as singular.
//! * **QR** signs are faer's (the diagonal of `r` may be negative), as are the
//!   signs of singular vectors and eigenvectors.
//! * **Cholesky** and **eigen** read the lower triangle of `a` (like numpy);
//!   `l` has a positive diagonal.
//!
//! # Scaling
//!
//! When the largest magnitude of `a` (and, for `solve`, of `b`) lies outside
//! `[2⁻⁴⁶⁰, 2⁴⁶⁰]` (about `1e-138` to `1e138`), factorizations run on `2ᵏ · a`
//! with the power of two `2ᵏ` that just brings it into that band, and the
//! results are scaled back exactly, as LAPACK's drivers do. Inputs like `1e300`
//! or `1e-300` therefore neither overflow nor lose precision inside the
//! algorithms. A result that is itself out of range (the determinant of a
//! large matrix of `1e300`s, a product of huge matrices) overflows to `±inf`
//! as numpy's does; it is not an error.
//!
//! faer's SVD and eigen solvers only fail to converge on non-finite data,
//! which validated, rescaled input cannot produce; should it ever happen, the
//! error is [`LinalgError::NoConvergence`], a server fault (INTERNAL).
//!
//! # Cancellation
//!
//! Every operation checks its [`CancelToken`] before starting, between stages
//! (factorization, back-substitution, assembling outputs) and inside the loops
//! written here, and then returns [`LinalgError::Cancelled`]. A single faer
//! call (one factorization or product) is not interruptible.
//!
//! # Parallelism
//!
//! Every faer call runs with [`faer::get_global_parallelism`], which the service
//! sets once at start-up (`faer::set_global_parallelism`). It must not be
//! disabled (`faer::disable_global_parallelism`), or faer panics.
//!
//! # Layout
//!
//! One file per operation (`multiply`, `solve`, `invert`, `determinant`, `decompose`, `analyze`);
//! the types they share (`dense`, `cancel`, `error`); and the machinery behind several of them:
//! `lu` and `svd` (factorizations), `validation` (square and symmetric checks), `layout` (row- and
//! column-major copies) and `scaling` (power-of-two rescaling, exact float helpers).

mod analyze;
mod cancel;
mod decompose;
mod dense;
mod determinant;
mod error;
mod invert;
mod layout;
mod lu;
mod multiply;
mod scaling;
mod solve;
mod svd;
mod validation;

#[cfg(test)]
mod test_support;

pub use analyze::{Analysis, analyze};
pub use cancel::CancelToken;
pub use decompose::{DecompositionKind, decompose};
pub use dense::Dense;
pub use determinant::determinant;
pub use error::LinalgError;
pub use invert::invert;
pub use multiply::multiply;
pub use solve::solve;

/// Relative tolerance of the symmetry rule: `a` is symmetric iff
/// `|a[i][j] − a[j][i]| ≤ SYMMETRY_RTOL · max_ij |a[i][j]|` for all `i < j`.
pub const SYMMETRY_RTOL: f64 = 1e-12;

/// Relative pivot tolerance of the singularity rule for an `n×n` LU
/// factorization: `a` is singular iff `min_i |u_ii| ≤ singularity_tolerance(n) · max_i |u_ii|`.
/// Equal to `n · ε`.
pub fn singularity_tolerance(n: usize) -> f64 {
    n as f64 * f64::EPSILON
}

/// Relative tolerance of the numerical-rank rule for an `m×n` matrix:
/// `σ_i` counts iff `σ_i > rank_tolerance(m, n) · σ_max`. Equal to
/// `max(m, n) · ε`, numpy's `matrix_rank` and `lstsq` default.
pub fn rank_tolerance(rows: usize, cols: usize) -> f64 {
    rows.max(cols) as f64 * f64::EPSILON
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::test_support::*;

    #[test]
    fn every_operation_returns_cancelled_when_the_token_is_cancelled() {
        let a = mat(2, 2, &[2.0, 1.0, 1.0, 2.0]);
        let b = mat(2, 1, &[1.0, 1.0]);
        let tall = mat(3, 2, &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let c = cancelled();
        assert_eq!(multiply(&a, &b, &c).unwrap_err(), LinalgError::Cancelled);
        assert_eq!(solve(&a, &b, &c).unwrap_err(), LinalgError::Cancelled);
        assert_eq!(solve(&tall, &mat(3, 1, &[1.0; 3]), &c).unwrap_err(), LinalgError::Cancelled);
        assert_eq!(invert(&a, &c).unwrap_err(), LinalgError::Cancelled);
        assert_eq!(determinant(&a, &c).unwrap_err(), LinalgError::Cancelled);
        assert_eq!(analyze(&a, &c).unwrap_err(), LinalgError::Cancelled);
        for kind in EVERY_DECOMPOSITION {
            assert_eq!(decompose(&a, kind, &c).unwrap_err(), LinalgError::Cancelled, "{kind:?}");
        }
        assert!(!LinalgError::Cancelled.to_string().is_empty());
    }

    #[test]
    fn no_operation_panics_on_extreme_or_degenerate_input() {
        let tiny = f64::MIN_POSITIVE / 8.0;
        let inputs = [
            mat(1, 1, &[0.0]),
            mat(1, 1, &[f64::MAX]),
            mat(1, 1, &[tiny]),
            mat(2, 2, &[f64::MAX, -f64::MAX, f64::MAX, f64::MAX]),
            mat(2, 2, &[f64::MAX, f64::MAX, f64::MAX, f64::MAX]),
            mat(2, 2, &[tiny, 0.0, 0.0, tiny]),
            mat(2, 2, &[1e300, 1e-300, 1e-300, 1e300]),
            mat(3, 3, &[0.0; 9]),
            mat(3, 2, &[1e300, 0.0, 0.0, 1e300, 1e300, 1e300]),
            mat(2, 3, &[1e-300, 0.0, 1.0, 0.0, 1e-300, 1.0]),
            mat(4, 1, &[0.0; 4]),
            mat(1, 4, &[f64::MAX; 4]),
        ];
        let token = live();
        for a in &inputs {
            let b = Dense::new(a.rows(), 2, vec![1.0; a.rows() * 2]);
            let _ = multiply(a, &transpose(a), &token);
            let _ = solve(a, &b, &token);
            let _ = invert(a, &token);
            let _ = determinant(a, &token);
            let _ = analyze(a, &token);
            for kind in EVERY_DECOMPOSITION {
                let _ = decompose(a, kind, &token);
            }
        }
        // The largest finite matrices still solve exactly (their U has a
        // genuinely overflowing 2·MAX, so only the factors overflow).
        let a = mat(2, 2, &[f64::MAX, -f64::MAX, f64::MAX, f64::MAX]);
        let x = solve(&a, &mat(2, 1, &[f64::MAX, f64::MAX]), &token).unwrap();
        assert_close(&x, &mat(2, 1, &[1.0, 0.0]), 1e-15);
        let s = decompose(&a, DecompositionKind::Svd, &token).unwrap();
        let expected = f64::MAX * 2f64.sqrt();
        assert!(s["s"].data().iter().all(|&x| x == expected || x.is_infinite()));
    }
}
