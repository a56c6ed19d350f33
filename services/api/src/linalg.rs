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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
use faer::linalg::evd::{ComputeEigenvectors, self_adjoint_evd, self_adjoint_evd_scratch};
use faer::linalg::householder::{
    apply_block_householder_sequence_on_the_left_in_place_scratch,
    apply_block_householder_sequence_on_the_left_in_place_with_conj,
};
use faer::linalg::lu::partial_pivoting::{factor as lu, inverse as lu_inverse, solve as lu_solve};
use faer::linalg::matmul::matmul;
use faer::linalg::qr::no_pivoting::{factor as qr, solve as qr_solve};
use faer::linalg::svd::{ComputeSvdVectors, svd, svd_scratch};
use faer::perm::PermRef;
use faer::{Accum, Conj, Mat, MatMut, MatRef, Par};

/// Relative tolerance of the symmetry rule: `a` is symmetric iff
/// `|a[i][j] − a[j][i]| ≤ SYMMETRY_RTOL · max_ij |a[i][j]|` for all `i < j`.
pub const SYMMETRY_RTOL: f64 = 1e-12;

/// A factorization whose input's largest magnitude lies outside
/// `[2^-SAFE_EXPONENT, 2^SAFE_EXPONENT]` runs on a copy rescaled by a power of
/// two onto the nearer end of that range (LAPACK's `xGESDD`/`xGEQRF` drivers use
/// the same band, `sqrt(safe_min)/ε ≈ 1e-138` to its reciprocal). Squares and
/// products of in-band values can neither overflow nor underflow, and moving
/// only as far as the band loses the least of the smallest entries.
const SAFE_EXPONENT: i64 = 460;

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

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// A dense row-major matrix of `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Dense {
    /// Wraps row-major `data` as a `rows×cols` matrix.
    ///
    /// # Panics
    ///
    /// If `data.len() != rows * cols`. Callers validate the request first.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Self {
        assert!(
            rows.checked_mul(cols) == Some(data.len()),
            "Dense::new: a {rows}×{cols} matrix needs rows·cols elements, got {}",
            data.len()
        );
        Self { rows, cols, data }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// Consumes the matrix, returning its row-major elements.
    pub fn into_data(self) -> Vec<f64> {
        self.data
    }

    /// Whether `rows == cols`.
    pub fn is_square(&self) -> bool {
        self.rows == self.cols
    }

    /// A zero-copy faer view of the matrix (row-major strides).
    fn view(&self) -> MatRef<'_, f64> {
        MatRef::from_row_major_slice(&self.data, self.rows, self.cols)
    }

    fn shape(&self) -> Shape {
        Shape(self.rows, self.cols)
    }
}

/// Formats a shape as `2×3` in error messages.
struct Shape(usize, usize);

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}", self.0, self.1)
    }
}

/// Cooperative cancellation flag shared between the gRPC handler (which
/// cancels when the client goes away or the deadline passes) and the
/// computation (which polls it between stages).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A fresh, not-cancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation; every clone observes it.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn check(&self) -> Result<(), LinalgError> {
        if self.is_cancelled() { Err(LinalgError::Cancelled) } else { Ok(()) }
    }
}

/// Which factorization [`decompose`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecompositionKind {
    /// `p·a = l·u` with partial pivoting; any shape.
    Lu,
    /// Thin Householder QR `a = q·r`; any shape.
    Qr,
    /// `a = l·lᵀ`; symmetric positive definite `a` only.
    Cholesky,
    /// Thin SVD `a = u·diag(s)·vᵀ`; any shape.
    Svd,
    /// Symmetric eigendecomposition `a = vectors·diag(values)·vectorsᵀ`.
    Eigen,
}

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

/// What [`analyze`] reports about a matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Rows of `a`.
    pub rows: usize,
    /// Columns of `a`.
    pub cols: usize,
    /// Numerical rank (numpy's `matrix_rank` rule).
    pub rank: usize,
    /// `sqrt(Σ a_ij²)`, computed without overflow.
    pub frobenius_norm: f64,
    /// `σ_max / σ_min` in the 2-norm; `+inf` when `rank < min(rows, cols)`.
    pub condition_number: f64,
    /// Square and symmetric by the [`SYMMETRY_RTOL`] rule.
    pub symmetric: bool,
    /// Sum of the diagonal; `Some` only for square `a`.
    pub trace: Option<f64>,
    /// Determinant via LU; `Some` only for square `a`.
    pub determinant: Option<f64>,
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

/// `a·b`. Requires `a.cols == b.rows`.
pub fn multiply(a: &Dense, b: &Dense, cancel: &CancelToken) -> Result<Dense, LinalgError> {
    cancel.check()?;
    if a.cols != b.rows {
        return Err(LinalgError::ShapeMismatch {
            message: format!("a is {} and b is {}: multiply needs a.cols == b.rows", a.shape(), b.shape()),
        });
    }
    let (m, n) = (a.rows, b.cols);
    let mut out = vec![0.0; m * n];
    // Row-major data read as column-major is the transpose, so computing
    // cᵀ = bᵀ·aᵀ in column-major order yields c in row-major order with no
    // copies at all.
    matmul(
        MatMut::from_column_major_slice_mut(&mut out, n, m),
        Accum::Replace,
        MatRef::from_column_major_slice(&b.data, n, b.rows),
        MatRef::from_column_major_slice(&a.data, a.cols, m),
        1.0,
        par(),
    );
    cancel.check()?;
    Ok(Dense::new(m, n, out))
}

/// Solves `a·x = b` for `x`. Requires `b.rows == a.rows`.
///
/// * Square `a`: exact solution from LU with partial pivoting; a singular `a`
///   (see the module docs) gives [`LinalgError::Singular`].
/// * Tall `a`: least-squares solution from Householder QR; when `R` is
///   rank-deficient, the minimum-norm least-squares solution from the SVD.
/// * Wide `a`: [`LinalgError::Underdetermined`].
pub fn solve(a: &Dense, b: &Dense, cancel: &CancelToken) -> Result<Dense, LinalgError> {
    cancel.check()?;
    if b.rows != a.rows {
        return Err(LinalgError::ShapeMismatch {
            message: format!("a is {} and b is {}: solve needs b.rows == a.rows", a.shape(), b.shape()),
        });
    }
    if a.rows < a.cols {
        return Err(LinalgError::Underdetermined { rows: a.rows, cols: a.cols });
    }
    // Rescale b like a (see the module docs) so that a subnormal or huge b
    // keeps its precision: with 2ᵏ·a and 2ʲ·b, the solution is 2ᵏ⁻ʲ·y. The
    // copy of b is overwritten by the solution.
    let b_exp = scale_exponent(max_abs(&b.data));
    let mut rhs = b.data.clone();
    scale_in_place(&mut rhs, b_exp);
    let (mut x, a_exp) = if a.is_square() {
        solve_square(a, rhs, b.cols, cancel)?
    } else {
        solve_least_squares(a, rhs, b.cols, cancel)?
    };
    cancel.check()?;
    scale_in_place(&mut x, a_exp - b_exp);
    Ok(Dense::new(a.cols, b.cols, x))
}

/// `a⁻¹`. Requires square, non-singular `a` (see the module docs).
pub fn invert(a: &Dense, cancel: &CancelToken) -> Result<Dense, LinalgError> {
    const OPERATION: &str = "invert";
    cancel.check()?;
    require_square(a, OPERATION)?;
    let n = a.rows;
    let factors = LuWork::factor(a);
    cancel.check()?;
    if factors.is_singular() {
        return Err(LinalgError::Singular { operation: OPERATION });
    }
    let par = par();
    let mut out = vec![0.0; n * n];
    let lu = factors.lu();
    let mut mem = MemBuffer::new(lu_inverse::inverse_scratch::<usize, f64>(n, par));
    lu_inverse::inverse(
        MatMut::from_row_major_slice_mut(&mut out, n, n),
        lu,
        lu,
        factors.perm(),
        par,
        MemStack::new(&mut mem),
    );
    cancel.check()?;
    // a⁻¹ = 2ᵏ · (2ᵏ·a)⁻¹
    scale_in_place(&mut out, factors.scale_exp);
    Ok(Dense::new(n, n, out))
}

/// `det(a)` via LU: the product of `U`'s diagonal times the sign of the row
/// permutation. A singular `a` gives 0 (or the tiny value LU yields), not an
/// error. The product is accumulated without intermediate overflow, so only a
/// determinant that is itself out of range becomes `±inf` or 0.
pub fn determinant(a: &Dense, cancel: &CancelToken) -> Result<f64, LinalgError> {
    cancel.check()?;
    require_square(a, "determinant")?;
    let factors = LuWork::factor(a);
    cancel.check()?;
    Ok(factors.determinant())
}

/// Factorizes `a`; see [`DecompositionKind`] for the factors and their names:
///
/// * `Lu` → `"p"` (m×m permutation), `"l"` (m×k unit lower), `"u"` (k×n upper)
///   with `p·a = l·u`.
/// * `Qr` → `"q"` (m×k, orthonormal columns), `"r"` (k×n upper), `a = q·r`.
/// * `Cholesky` → `"l"` (n×n lower) with `a = l·lᵀ`.
/// * `Svd` → `"u"` (m×k), `"s"` (1×k, descending), `"v"` (n×k),
///   `a = u·diag(s)·vᵀ`.
/// * `Eigen` → `"values"` (1×n, ascending), `"vectors"` (n×n, unit eigenvectors
///   in columns), `a = vectors·diag(values)·vectorsᵀ`.
pub fn decompose(
    a: &Dense,
    kind: DecompositionKind,
    cancel: &CancelToken,
) -> Result<BTreeMap<&'static str, Dense>, LinalgError> {
    cancel.check()?;
    let factors: Vec<(&'static str, Dense)> = match kind {
        DecompositionKind::Lu => decompose_lu(a, cancel)?,
        DecompositionKind::Qr => decompose_qr(a, cancel)?,
        DecompositionKind::Cholesky => decompose_cholesky(a, cancel)?,
        DecompositionKind::Svd => decompose_svd(a, cancel)?,
        DecompositionKind::Eigen => decompose_eigen(a, cancel)?,
    };
    cancel.check()?;
    Ok(factors.into_iter().collect())
}

/// Rank, norms, condition number and structure of `a` (see [`Analysis`]).
pub fn analyze(a: &Dense, cancel: &CancelToken) -> Result<Analysis, LinalgError> {
    cancel.check()?;
    let (m, n) = (a.rows, a.cols);
    let k = m.min(n);
    let frobenius_norm = a.view().norm_l2();

    let max = max_abs(&a.data);
    let scale_exp = scale_exponent(max);
    let mut s = Diag::<f64>::zeros(k);
    {
        let scaled = scaled_copy(a, scale_exp);
        let input = scaled.as_ref().map_or_else(|| a.view(), |w| w.as_ref());
        let par = par();
        let mut mem = MemBuffer::new(svd_scratch::<f64>(
            m,
            n,
            ComputeSvdVectors::No,
            ComputeSvdVectors::No,
            par,
            Default::default(),
        ));
        svd(input, s.as_mut(), None, None, par, MemStack::new(&mut mem), Default::default())
            .map_err(|_| not_converged("analyze"))?;
    }
    cancel.check()?;
    // Scale-invariant quantities use the scaled values directly.
    let sv = s.column_vector();
    let sigma_max = if k == 0 { 0.0 } else { sv[0] };
    let threshold = rank_tolerance(m, n) * sigma_max;
    let rank = (0..k).filter(|&i| sv[i] > threshold).count();
    let condition_number = if rank < k || k == 0 { f64::INFINITY } else { sigma_max / sv[k - 1] };

    let (symmetric, trace, determinant) = if a.is_square() {
        let symmetric = first_asymmetry(a, cancel)?.is_none();
        let trace = (0..n).map(|i| a.data[i * n + i]).sum::<f64>();
        let factors = LuWork::factor(a);
        cancel.check()?;
        (symmetric, Some(trace), Some(factors.determinant()))
    } else {
        (false, None, None)
    };
    Ok(Analysis { rows: m, cols: n, rank, frobenius_norm, condition_number, symmetric, trace, determinant })
}

// ---------------------------------------------------------------------------
// Solve
// ---------------------------------------------------------------------------

/// Solves `(2ᵏ·a)·y = rhs` in place by LU; returns `(y, k)`.
fn solve_square(a: &Dense, mut rhs: Vec<f64>, p: usize, cancel: &CancelToken) -> Result<(Vec<f64>, i32), LinalgError> {
    let n = a.rows;
    let factors = LuWork::factor(a);
    cancel.check()?;
    if factors.is_singular() {
        return Err(LinalgError::Singular { operation: "solve" });
    }
    let par = par();
    let lu = factors.lu();
    let mut mem = MemBuffer::new(lu_solve::solve_in_place_scratch::<usize, f64>(n, p, par));
    lu_solve::solve_in_place(
        lu,
        lu,
        factors.perm(),
        MatMut::from_row_major_slice_mut(&mut rhs, n, p),
        par,
        MemStack::new(&mut mem),
    );
    Ok((rhs, factors.scale_exp))
}

/// Least-squares solution `y` of `(2ᵏ·a)·y ≈ rhs` for tall `a` (row-major
/// `rhs`, `m×p`); returns `(y, k)`.
fn solve_least_squares(
    a: &Dense,
    mut rhs: Vec<f64>,
    p: usize,
    cancel: &CancelToken,
) -> Result<(Vec<f64>, i32), LinalgError> {
    let (m, n) = (a.rows, a.cols);
    let par = par();
    let scale_exp = scale_exponent(max_abs(&a.data));
    let (work, coeff) = householder_qr(a, scale_exp, par);
    cancel.check()?;
    let r_diag = (0..n).map(|i| work.data[i * m + i]);
    if pivots_deficient(r_diag, m) {
        let y = min_norm_least_squares(a, &rhs, p, scale_exp, cancel)?;
        return Ok((y, scale_exp));
    }
    // Qᵀ·rhs in place, then R·y = (Qᵀ·rhs)[..n]; the first n rows of the
    // row-major buffer are the solution.
    let qr_ref = work.as_ref();
    let mut mem = MemBuffer::new(qr_solve::solve_lstsq_in_place_scratch::<f64>(m, n, coeff.nrows(), p, par));
    qr_solve::solve_lstsq_in_place_with_conj(
        qr_ref,
        coeff.as_ref(),
        qr_ref,
        Conj::No,
        MatMut::from_row_major_slice_mut(&mut rhs, m, p),
        par,
        MemStack::new(&mut mem),
    );
    rhs.truncate(n * p);
    Ok((rhs, scale_exp))
}

/// `y = pinv(2ᵏ·a)·rhs` (row-major `rhs`, `m×p`) with singular values
/// `σ_i ≤ max(m,n)·ε·σ_max` treated as zero (numpy.linalg.lstsq's default).
fn min_norm_least_squares(
    a: &Dense,
    rhs: &[f64],
    p: usize,
    scale_exp: i32,
    cancel: &CancelToken,
) -> Result<Vec<f64>, LinalgError> {
    let (m, n) = (a.rows, a.cols);
    let k = m.min(n);
    let par = par();
    let Svd { u, s, v } = thin_svd(a, scale_exp, "solve")?;
    cancel.check()?;
    // c = diag(1/σ)·Uᵀ·b, restricted to the numerically non-zero σ.
    let mut c = Mat::<f64>::zeros(k, p);
    let rhs = MatRef::from_row_major_slice(rhs, m, p);
    matmul(c.as_mut(), Accum::Replace, u.as_ref().transpose(), rhs, 1.0, par);
    let sv = s.column_vector();
    let sigma_max = if k == 0 { 0.0 } else { sv[0] };
    let threshold = rank_tolerance(m, n) * sigma_max;
    for i in 0..k {
        let factor = if sv[i] > threshold { sv[i].recip() } else { 0.0 };
        for j in 0..p {
            c[(i, j)] *= factor;
        }
    }
    cancel.check()?;
    let mut x = vec![0.0; n * p];
    matmul(MatMut::from_row_major_slice_mut(&mut x, n, p), Accum::Replace, v.as_ref(), c.as_ref(), 1.0, par);
    Ok(x)
}

// ---------------------------------------------------------------------------
// Decompositions
// ---------------------------------------------------------------------------

fn decompose_lu(a: &Dense, cancel: &CancelToken) -> Result<Vec<(&'static str, Dense)>, LinalgError> {
    let (m, n) = (a.rows, a.cols);
    let k = m.min(n);
    let mut factors = LuWork::factor(a);
    cancel.check()?;
    if factors.has_degenerate_pivot() {
        // faer divides by an exactly-zero pivot, which leaves NaNs in L; redo
        // the factorization LAPACK-style, skipping the division.
        factors = LuWork::factor_unblocked(a, cancel)?;
    }
    // The packed factors in row-major order; its first k rows become u.
    let mut packed = factors.work.to_row_major();
    let mut p = vec![0.0; m * m];
    for (i, &src) in factors.perm_fwd.iter().enumerate() {
        p[i * m + src] = 1.0;
    }
    cancel.check()?;
    // Row i of l is the strictly-lower part of row i of the packed factors
    // plus the unit diagonal.
    let mut l = vec![0.0; m * k];
    for (i, (l_row, packed_row)) in l.chunks_exact_mut(k).zip(packed.chunks_exact(n)).enumerate() {
        let below = i.min(k);
        l_row[..below].copy_from_slice(&packed_row[..below]);
        if i < k {
            l_row[i] = 1.0;
        }
    }
    packed.truncate(k * n);
    let u = upper_part(packed, n, pow2(-factors.scale_exp));
    Ok(vec![("p", Dense::new(m, m, p)), ("l", Dense::new(m, k, l)), ("u", Dense::new(k, n, u))])
}

/// Householder QR of `a`·2^`scale_exp`, in place: R in the upper triangle of the returned
/// column-major matrix, the reflectors below it, and their block coefficients beside.
fn householder_qr(a: &Dense, scale_exp: i32, par: Par) -> (ColMajor, Mat<f64>) {
    let (m, n) = (a.rows, a.cols);
    let mut work = ColMajor::from_dense(a, scale_exp);
    let block_size = qr::recommended_block_size::<f64>(m, n);
    let mut coeff = Mat::<f64>::zeros(block_size, m.min(n));
    let mut mem = MemBuffer::new(qr::qr_in_place_scratch::<f64>(m, n, block_size, par, Default::default()));
    qr::qr_in_place(work.as_mut(), coeff.as_mut(), par, MemStack::new(&mut mem), Default::default());
    (work, coeff)
}

fn decompose_qr(a: &Dense, cancel: &CancelToken) -> Result<Vec<(&'static str, Dense)>, LinalgError> {
    let (m, n) = (a.rows, a.cols);
    let k = m.min(n);
    let par = par();
    let scale_exp = scale_exponent(max_abs(&a.data));
    let (work, coeff) = householder_qr(a, scale_exp, par);
    cancel.check()?;
    // Thin Q: apply the Householder sequence to the first k columns of I.
    let mut q = Mat::<f64>::identity(m, k);
    {
        let mut mem =
            MemBuffer::new(apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(m, coeff.nrows(), k));
        apply_block_householder_sequence_on_the_left_in_place_with_conj(
            work.as_ref().get(.., ..k),
            coeff.as_ref(),
            Conj::No,
            q.as_mut(),
            par,
            MemStack::new(&mut mem),
        );
    }
    cancel.check()?;
    let unscale = pow2(-scale_exp);
    let mut packed = work.to_row_major();
    packed.truncate(k * n);
    let r = upper_part(packed, n, unscale);
    Ok(vec![("q", dense_from(q.as_ref())), ("r", Dense::new(k, n, r))])
}

fn decompose_cholesky(a: &Dense, cancel: &CancelToken) -> Result<Vec<(&'static str, Dense)>, LinalgError> {
    const OPERATION: &str = "Cholesky decomposition";
    require_symmetric(a, OPERATION, cancel)?;
    let n = a.rows;
    let par = par();
    // 2ᵏ·a = (2^(k/2)·l)(2^(k/2)·l)ᵀ, so k must be even (scale_exponent is).
    let scale_exp = scale_exponent(max_abs(&a.data));
    let mut work = ColMajor::from_dense(a, scale_exp);
    {
        let mut mem = MemBuffer::new(cholesky_in_place_scratch::<f64>(n, par, Default::default()));
        cholesky_in_place(work.as_mut(), Default::default(), par, MemStack::new(&mut mem), Default::default())
            .map_err(|_| LinalgError::NotPositiveDefinite)?;
    }
    cancel.check()?;
    let unscale = pow2(-scale_exp / 2);
    let mut l = work.to_row_major();
    for (i, row) in l.chunks_exact_mut(n).enumerate() {
        for x in &mut row[..=i] {
            *x *= unscale;
        }
        row[i + 1..].fill(0.0);
    }
    Ok(vec![("l", Dense::new(n, n, l))])
}

fn decompose_svd(a: &Dense, cancel: &CancelToken) -> Result<Vec<(&'static str, Dense)>, LinalgError> {
    let k = a.rows.min(a.cols);
    let scale_exp = scale_exponent(max_abs(&a.data));
    let Svd { u, s, v } = thin_svd(a, scale_exp, "SVD")?;
    cancel.check()?;
    let unscale = pow2(-scale_exp);
    let sv = s.column_vector();
    let values = (0..k).map(|i| sv[i] * unscale).collect();
    Ok(vec![("u", dense_from(u.as_ref())), ("s", Dense::new(1, k, values)), ("v", dense_from(v.as_ref()))])
}

fn decompose_eigen(a: &Dense, cancel: &CancelToken) -> Result<Vec<(&'static str, Dense)>, LinalgError> {
    const OPERATION: &str = "eigendecomposition";
    require_symmetric(a, OPERATION, cancel)?;
    let n = a.rows;
    let par = par();
    let scale_exp = scale_exponent(max_abs(&a.data));
    let scaled = scaled_copy(a, scale_exp);
    let input = scaled.as_ref().map_or_else(|| a.view(), |w| w.as_ref());
    let mut s = Diag::<f64>::zeros(n);
    let mut vectors = Mat::<f64>::zeros(n, n);
    {
        let mut mem =
            MemBuffer::new(self_adjoint_evd_scratch::<f64>(n, ComputeEigenvectors::Yes, par, Default::default()));
        // Reads the lower triangle of `input` only.
        self_adjoint_evd(input, s.as_mut(), Some(vectors.as_mut()), par, MemStack::new(&mut mem), Default::default())
            .map_err(|_| not_converged(OPERATION))?;
    }
    cancel.check()?;
    let unscale = pow2(-scale_exp);
    let sv = s.column_vector();
    let values = (0..n).map(|i| sv[i] * unscale).collect();
    Ok(vec![("values", Dense::new(1, n, values)), ("vectors", dense_from(vectors.as_ref()))])
}

// ---------------------------------------------------------------------------
// LU machinery
// ---------------------------------------------------------------------------

/// An LU factorization `P·(2ᵏ·a) = L·U` stored LAPACK-style in one
/// column-major buffer (strict lower part = L, upper part = U).
struct LuWork {
    work: ColMajor,
    /// `(P·x)[i] = x[perm_fwd[i]]`.
    perm_fwd: Vec<usize>,
    perm_bwd: Vec<usize>,
    transpositions: usize,
    scale_exp: i32,
}

impl LuWork {
    /// faer's blocked, partially pivoted LU of `2ᵏ·a`.
    fn factor(a: &Dense) -> Self {
        let (m, n) = (a.rows, a.cols);
        let par = par();
        let scale_exp = scale_exponent(max_abs(&a.data));
        let mut work = ColMajor::from_dense(a, scale_exp);
        let mut perm_fwd = vec![0usize; m];
        let mut perm_bwd = vec![0usize; m];
        let mut mem = MemBuffer::new(lu::lu_in_place_scratch::<usize, f64>(m, n, par, Default::default()));
        let (info, _) = lu::lu_in_place(
            work.as_mut(),
            &mut perm_fwd,
            &mut perm_bwd,
            par,
            MemStack::new(&mut mem),
            Default::default(),
        );
        Self { work, perm_fwd, perm_bwd, transpositions: info.transposition_count, scale_exp }
    }

    /// Unblocked right-looking LU that, like LAPACK's getf2, skips the column
    /// scaling when the pivot is exactly zero, so L stays finite for
    /// rank-deficient input.
    fn factor_unblocked(a: &Dense, cancel: &CancelToken) -> Result<Self, LinalgError> {
        let (m, n) = (a.rows, a.cols);
        let scale_exp = scale_exponent(max_abs(&a.data));
        let mut work = ColMajor::from_dense(a, scale_exp);
        let mut perm_fwd: Vec<usize> = (0..m).collect();
        let mut transpositions = 0;
        let data = &mut work.data;
        for c in 0..m.min(n) {
            cancel.check()?;
            let column = &data[c * m..(c + 1) * m];
            let mut pivot_row = c;
            let mut best = column[c].abs();
            for (i, x) in column.iter().enumerate().skip(c + 1) {
                if x.abs() > best {
                    best = x.abs();
                    pivot_row = i;
                }
            }
            if pivot_row != c {
                for j in 0..n {
                    data.swap(j * m + c, j * m + pivot_row);
                }
                perm_fwd.swap(c, pivot_row);
                transpositions += 1;
            }
            let pivot = data[c * m + c];
            if pivot == 0.0 {
                continue;
            }
            for x in &mut data[c * m + c + 1..(c + 1) * m] {
                *x /= pivot;
            }
            let (left, right) = data.split_at_mut((c + 1) * m);
            let multipliers = &left[c * m + c + 1..];
            for column in right.chunks_exact_mut(m) {
                let u = column[c];
                if u != 0.0 {
                    for (x, l) in column[c + 1..].iter_mut().zip(multipliers) {
                        *x -= l * u;
                    }
                }
            }
        }
        let mut perm_bwd = vec![0usize; m];
        for (i, &src) in perm_fwd.iter().enumerate() {
            perm_bwd[src] = i;
        }
        Ok(Self { work, perm_fwd, perm_bwd, transpositions, scale_exp })
    }

    fn lu(&self) -> MatRef<'_, f64> {
        self.work.as_ref()
    }

    fn perm(&self) -> PermRef<'_, usize> {
        PermRef::new_checked(&self.perm_fwd, &self.perm_bwd, self.work.rows)
    }

    fn pivots(&self) -> impl Iterator<Item = f64> + '_ {
        let m = self.work.rows;
        (0..m.min(self.work.cols)).map(move |i| self.work.data[i * m + i])
    }

    /// An exactly-zero or non-finite pivot (after which faer's L holds NaNs).
    fn has_degenerate_pivot(&self) -> bool {
        self.pivots().any(|d| d == 0.0 || !d.is_finite())
    }

    /// The documented singularity rule on U's diagonal.
    fn is_singular(&self) -> bool {
        pivots_deficient(self.pivots(), self.work.rows.max(self.work.cols))
    }

    /// `sign(P) · Π u_ii · 2^(−n·k)` without intermediate overflow/underflow.
    fn determinant(&self) -> f64 {
        let n = self.work.rows;
        if self.pivots().any(|d| d == 0.0) {
            return 0.0;
        }
        if self.pivots().any(|d| !d.is_finite()) {
            return self.pivots().product();
        }
        let mut mantissa = if self.transpositions.is_multiple_of(2) { 1.0 } else { -1.0 };
        let mut exponent = -(n as i64) * i64::from(self.scale_exp);
        for d in self.pivots() {
            let (m, e) = frexp(d);
            let (pm, pe) = frexp(mantissa * m);
            mantissa = pm;
            exponent += e + pe;
        }
        ldexp(mantissa, exponent)
    }
}

/// The singularity rule: the smallest pivot magnitude is at most
/// `dim · ε` times the largest (an empty, all-zero or non-finite diagonal is
/// deficient).
fn pivots_deficient(pivots: impl Iterator<Item = f64>, dim: usize) -> bool {
    let mut min = f64::INFINITY;
    let mut max = 0.0_f64;
    for d in pivots {
        let d = d.abs();
        if !d.is_finite() {
            return true;
        }
        min = min.min(d);
        max = max.max(d);
    }
    max == 0.0 || min <= singularity_tolerance(dim) * max
}

/// Keeps the upper-triangular part of the row-major `rows×cols` matrix in
/// `data` (any `rows`), multiplied by `scale`, and zeroes the rest in place.
fn upper_part(mut data: Vec<f64>, cols: usize, scale: f64) -> Vec<f64> {
    for (i, row) in data.chunks_exact_mut(cols).enumerate() {
        let diagonal = i.min(cols);
        row[..diagonal].fill(0.0);
        for x in &mut row[diagonal..] {
            *x *= scale;
        }
    }
    data
}

// ---------------------------------------------------------------------------
// SVD helper
// ---------------------------------------------------------------------------

struct Svd {
    u: Mat<f64>,
    s: Diag<f64>,
    v: Mat<f64>,
}

/// Thin SVD of `2ᵏ·a` (singular values are *not* scaled back).
fn thin_svd(a: &Dense, scale_exp: i32, operation: &'static str) -> Result<Svd, LinalgError> {
    let (m, n) = (a.rows, a.cols);
    let k = m.min(n);
    let par = par();
    let scaled = scaled_copy(a, scale_exp);
    let input = scaled.as_ref().map_or_else(|| a.view(), |w| w.as_ref());
    let mut u = Mat::<f64>::zeros(m, k);
    let mut v = Mat::<f64>::zeros(n, k);
    let mut s = Diag::<f64>::zeros(k);
    let mut mem = MemBuffer::new(svd_scratch::<f64>(
        m,
        n,
        ComputeSvdVectors::Thin,
        ComputeSvdVectors::Thin,
        par,
        Default::default(),
    ));
    svd(input, s.as_mut(), Some(u.as_mut()), Some(v.as_mut()), par, MemStack::new(&mut mem), Default::default())
        .map_err(|_| not_converged(operation))?;
    Ok(Svd { u, s, v })
}

/// faer's SVD/eigen iterations allow 32·n² sweeps and only give up on
/// non-finite data, which the power-of-two prescaling rules out for finite
/// input; reaching this is a server fault.
fn not_converged(operation: &'static str) -> LinalgError {
    LinalgError::NoConvergence { operation }
}

// ---------------------------------------------------------------------------
// Validation helpers
// ---------------------------------------------------------------------------

fn require_square(a: &Dense, operation: &'static str) -> Result<(), LinalgError> {
    if a.is_square() { Ok(()) } else { Err(LinalgError::NotSquare { operation, rows: a.rows, cols: a.cols }) }
}

fn require_symmetric(a: &Dense, operation: &'static str, cancel: &CancelToken) -> Result<(), LinalgError> {
    require_square(a, operation)?;
    match first_asymmetry(a, cancel)? {
        None => Ok(()),
        Some((row, col)) => Err(LinalgError::NotSymmetric { operation, row, col }),
    }
}

/// The first pair `(i, j)`, `i < j`, in row-major order that breaks the
/// symmetry rule. `a` must be square.
fn first_asymmetry(a: &Dense, cancel: &CancelToken) -> Result<Option<(usize, usize)>, LinalgError> {
    const BLOCK: usize = 32;
    let n = a.rows;
    let data = &a.data;
    let tolerance = SYMMETRY_RTOL * max_abs(data);
    // An overflowing difference (±inf) counts as asymmetric.
    let breaks = |i: usize, j: usize| {
        let difference = (data[i * n + j] - data[j * n + i]).abs();
        difference > tolerance || difference.is_nan()
    };
    // Cache-friendly pass over pairs of 32×32 tiles: is anything off?
    let mut asymmetric = false;
    'tiles: for row_start in (0..n).step_by(BLOCK) {
        cancel.check()?;
        let row_end = (row_start + BLOCK).min(n);
        for col_start in (row_start..n).step_by(BLOCK) {
            let col_end = (col_start + BLOCK).min(n);
            for i in row_start..row_end {
                if (col_start.max(i + 1)..col_end).any(|j| breaks(i, j)) {
                    asymmetric = true;
                    break 'tiles;
                }
            }
        }
    }
    if !asymmetric {
        return Ok(None);
    }
    // Error path only: the first offending pair in row-major order.
    for i in 0..n {
        cancel.check()?;
        if let Some(j) = (i + 1..n).find(|&j| breaks(i, j)) {
            return Ok(Some((i, j)));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------
// Layout, scaling and float helpers
// ---------------------------------------------------------------------------

fn par() -> Par {
    faer::get_global_parallelism()
}

/// A column-major working copy (element `(i, j)` at `data[j * rows + i]`).
struct ColMajor {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl ColMajor {
    /// Transposes `2^scale_exp · a` into column-major order in one pass.
    fn from_dense(a: &Dense, scale_exp: i32) -> Self {
        let (m, n) = (a.rows, a.cols);
        let mut data = vec![0.0; m * n];
        transpose_into(&a.data, m, n, &mut data);
        scale_in_place(&mut data, scale_exp);
        Self { rows: m, cols: n, data }
    }

    fn as_ref(&self) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.data, self.rows, self.cols)
    }

    /// The same matrix in row-major order (one blocked transpose).
    fn to_row_major(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.data.len()];
        // Column-major rows×cols data is the row-major cols×rows transpose.
        transpose_into(&self.data, self.cols, self.rows, &mut out);
        out
    }

    fn as_mut(&mut self) -> MatMut<'_, f64> {
        MatMut::from_column_major_slice_mut(&mut self.data, self.rows, self.cols)
    }
}

/// `Some(column-major 2ᵏ·a)` when `a` needs rescaling, `None` otherwise (use
/// the zero-copy view).
fn scaled_copy(a: &Dense, scale_exp: i32) -> Option<ColMajor> {
    (scale_exp != 0).then(|| ColMajor::from_dense(a, scale_exp))
}

/// `src` is `rows×cols` row-major; writes it column-major into `dst`
/// (equivalently, writes the `cols×rows` transpose row-major). Cache-blocked.
fn transpose_into(src: &[f64], rows: usize, cols: usize, dst: &mut [f64]) {
    const BLOCK: usize = 32;
    for row_start in (0..rows).step_by(BLOCK) {
        let row_end = (row_start + BLOCK).min(rows);
        for col_start in (0..cols).step_by(BLOCK) {
            let col_end = (col_start + BLOCK).min(cols);
            for j in col_start..col_end {
                let out = &mut dst[j * rows + row_start..j * rows + row_end];
                for (x, i) in out.iter_mut().zip(row_start..row_end) {
                    *x = src[i * cols + j];
                }
            }
        }
    }
}

/// A row-major [`Dense`] copy of any faer matrix (built once, blocked by
/// columns so that column-major sources are read contiguously).
fn dense_from(mat: MatRef<'_, f64>) -> Dense {
    const BLOCK: usize = 32;
    let (m, n) = (mat.nrows(), mat.ncols());
    let mut out = vec![0.0; m * n];
    for col_start in (0..n).step_by(BLOCK) {
        let col_end = (col_start + BLOCK).min(n);
        let columns: Option<Vec<&[f64]>> =
            (col_start..col_end).map(|j| mat.col(j).try_as_col_major().map(|c| c.as_slice())).collect();
        match columns {
            Some(columns) => {
                for i in 0..m {
                    let row = &mut out[i * n + col_start..i * n + col_end];
                    for (x, column) in row.iter_mut().zip(&columns) {
                        *x = column[i];
                    }
                }
            }
            None => {
                for i in 0..m {
                    for j in col_start..col_end {
                        out[i * n + j] = mat[(i, j)];
                    }
                }
            }
        }
    }
    Dense::new(m, n, out)
}

/// `max |x|` over a slice (SIMD via faer).
fn max_abs(data: &[f64]) -> f64 {
    MatRef::from_column_major_slice(data, data.len(), 1).norm_max()
}

/// The even exponent `k` such that `2ᵏ·max_abs` lies in (or at the edge of)
/// `[2^-SAFE_EXPONENT, 2^SAFE_EXPONENT]`; 0 when it already does (or is zero).
/// Even, so that Cholesky can take its square root exactly.
fn scale_exponent(max_abs: f64) -> i32 {
    if max_abs == 0.0 || !max_abs.is_finite() {
        return 0;
    }
    let (_, e) = frexp(max_abs);
    // e ∈ [-1074, 1023], so k ∈ [-563, 614] and 2ᵏ, 2⁻ᵏ are normal numbers.
    let k = if e > SAFE_EXPONENT {
        SAFE_EXPONENT - e
    } else if e < -SAFE_EXPONENT {
        -SAFE_EXPONENT - e
    } else {
        return 0;
    };
    // Round away from zero to even: the scaled maximum stays inside the band.
    let k = if k % 2 == 0 { k } else { k + k.signum() };
    i32::try_from(k).unwrap_or(0)
}

/// Multiplies every element by `2^exp` (exact unless the result leaves the
/// normal range); a no-op for `exp == 0`.
fn scale_in_place(data: &mut [f64], exp: i32) {
    // Steps of at most 2^±1000 keep each factor representable; all steps go
    // the same way, so no intermediate is further out of range than the result.
    let mut remaining = exp;
    while remaining != 0 {
        let step = remaining.clamp(-1000, 1000);
        let factor = pow2(step);
        for x in data.iter_mut() {
            *x *= factor;
        }
        remaining -= step;
    }
}

/// `2^exp`, exactly, for `exp ∈ [-1022, 1023]` (clamped beyond).
fn pow2(exp: i32) -> f64 {
    let exp = exp.clamp(-1022, 1023);
    f64::from_bits(((exp + 1023) as u64) << 52)
}

/// Splits a finite non-zero `x` into `m·2^e` with `1 ≤ |m| < 2`.
fn frexp(x: f64) -> (f64, i64) {
    const EXP_MASK: u64 = 0x7ff << 52;
    let bits = x.to_bits();
    let biased = ((bits & EXP_MASK) >> 52) as i64;
    if biased == 0 {
        if x == 0.0 {
            return (0.0, 0);
        }
        // Subnormal: normalize first.
        let (m, e) = frexp(x * pow2(64));
        return (m, e - 64);
    }
    let mantissa = f64::from_bits((bits & !EXP_MASK) | (1023 << 52));
    (mantissa, biased - 1023)
}

/// `m·2^e`, saturating to ±inf / ±0 as the true value would.
fn ldexp(mut m: f64, mut e: i64) -> f64 {
    while e > 1000 {
        m *= pow2(1000);
        e -= 1000;
        if m.is_infinite() {
            return m;
        }
    }
    while e < -1000 {
        m *= pow2(-1000);
        e += 1000;
        if m == 0.0 {
            return m;
        }
    }
    // |e| ≤ 1000 here.
    m * pow2(e as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // -- helpers -------------------------------------------------------------

    fn mat(rows: usize, cols: usize, data: &[f64]) -> Dense {
        Dense::new(rows, cols, data.to_vec())
    }

    fn live() -> CancelToken {
        CancelToken::new()
    }

    fn cancelled() -> CancelToken {
        let token = CancelToken::new();
        token.cancel();
        token
    }

    fn get(a: &Dense, i: usize, j: usize) -> f64 {
        a.data()[i * a.cols() + j]
    }

    /// Reference product, independent of faer.
    fn product(a: &Dense, b: &Dense) -> Dense {
        assert_eq!(a.cols(), b.rows());
        let mut out = vec![0.0; a.rows() * b.cols()];
        for i in 0..a.rows() {
            for j in 0..b.cols() {
                out[i * b.cols() + j] = (0..a.cols()).map(|k| get(a, i, k) * get(b, k, j)).sum();
            }
        }
        Dense::new(a.rows(), b.cols(), out)
    }

    fn transpose(a: &Dense) -> Dense {
        let mut out = vec![0.0; a.rows() * a.cols()];
        for i in 0..a.rows() {
            for j in 0..a.cols() {
                out[j * a.rows() + i] = get(a, i, j);
            }
        }
        Dense::new(a.cols(), a.rows(), out)
    }

    fn identity(n: usize) -> Dense {
        let mut out = vec![0.0; n * n];
        for i in 0..n {
            out[i * n + i] = 1.0;
        }
        Dense::new(n, n, out)
    }

    /// `a · diag(d)` (scales columns).
    fn scale_columns(a: &Dense, d: &Dense) -> Dense {
        let mut out = a.clone();
        for i in 0..a.rows() {
            for j in 0..a.cols() {
                out.data[i * a.cols() + j] *= d.data()[j];
            }
        }
        out
    }

    fn norm(a: &Dense) -> f64 {
        a.data().iter().map(|x| x * x).sum::<f64>().sqrt()
    }

    fn distance(a: &Dense, b: &Dense) -> f64 {
        assert_eq!((a.rows(), a.cols()), (b.rows(), b.cols()), "shapes differ");
        a.data().iter().zip(b.data()).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
    }

    /// `‖actual − expected‖_F ≤ rtol · max(‖expected‖_F, 1e-300)`.
    fn assert_close(actual: &Dense, expected: &Dense, rtol: f64) {
        let error = distance(actual, expected);
        let bound = rtol * norm(expected).max(1e-300);
        assert!(error <= bound, "error {error:e} exceeds {bound:e}\nactual:   {actual:?}\nexpected: {expected:?}");
    }

    fn assert_orthonormal_columns(q: &Dense, rtol: f64) {
        let gram = product(&transpose(q), q);
        assert_close(&gram, &identity(q.cols()), rtol);
    }

    fn assert_upper_triangular(u: &Dense) {
        for i in 0..u.rows() {
            for j in 0..i.min(u.cols()) {
                assert_eq!(get(u, i, j), 0.0, "element [{i}][{j}] below the diagonal");
            }
        }
    }

    fn assert_lower_triangular(l: &Dense) {
        for i in 0..l.rows() {
            for j in i + 1..l.cols() {
                assert_eq!(get(l, i, j), 0.0, "element [{i}][{j}] above the diagonal");
            }
        }
    }

    fn assert_permutation_matrix(p: &Dense) {
        assert!(p.is_square());
        let n = p.rows();
        for i in 0..n {
            let row: Vec<f64> = (0..n).map(|j| get(p, i, j)).collect();
            let col: Vec<f64> = (0..n).map(|j| get(p, j, i)).collect();
            for line in [row, col] {
                assert!(line.iter().all(|&x| x == 0.0 || x == 1.0), "{p:?}");
                assert_eq!(line.iter().filter(|&&x| x == 1.0).count(), 1, "{p:?}");
            }
        }
    }

    fn factor<'a>(factors: &'a BTreeMap<&'static str, Dense>, name: &str) -> &'a Dense {
        factors.get(name).unwrap_or_else(|| panic!("missing factor {name}"))
    }

    fn check_lu(a: &Dense, rtol: f64) {
        let f = decompose(a, DecompositionKind::Lu, &live()).expect("lu");
        let (p, l, u) = (factor(&f, "p"), factor(&f, "l"), factor(&f, "u"));
        let k = a.rows().min(a.cols());
        assert_eq!((p.rows(), p.cols()), (a.rows(), a.rows()));
        assert_eq!((l.rows(), l.cols()), (a.rows(), k));
        assert_eq!((u.rows(), u.cols()), (k, a.cols()));
        assert_permutation_matrix(p);
        assert_lower_triangular(l);
        assert_upper_triangular(u);
        for i in 0..k {
            assert_eq!(get(l, i, i), 1.0);
        }
        // Partial pivoting keeps every multiplier at most 1 in magnitude.
        assert!(l.data().iter().all(|x| x.abs() <= 1.0), "{l:?}");
        assert_close(&product(l, u), &product(p, a), rtol);
    }

    fn check_qr(a: &Dense, rtol: f64) {
        let f = decompose(a, DecompositionKind::Qr, &live()).expect("qr");
        let (q, r) = (factor(&f, "q"), factor(&f, "r"));
        let k = a.rows().min(a.cols());
        assert_eq!((q.rows(), q.cols()), (a.rows(), k));
        assert_eq!((r.rows(), r.cols()), (k, a.cols()));
        assert_upper_triangular(r);
        assert_orthonormal_columns(q, rtol);
        assert_close(&product(q, r), a, rtol);
    }

    fn check_svd(a: &Dense, rtol: f64) {
        let f = decompose(a, DecompositionKind::Svd, &live()).expect("svd");
        let (u, s, v) = (factor(&f, "u"), factor(&f, "s"), factor(&f, "v"));
        let k = a.rows().min(a.cols());
        assert_eq!((u.rows(), u.cols()), (a.rows(), k));
        assert_eq!((s.rows(), s.cols()), (1, k));
        assert_eq!((v.rows(), v.cols()), (a.cols(), k));
        assert!(s.data().windows(2).all(|w| w[0] >= w[1]), "not descending: {s:?}");
        assert!(s.data().iter().all(|&x| x >= 0.0));
        assert_orthonormal_columns(u, rtol);
        assert_orthonormal_columns(v, rtol);
        assert_close(&product(&scale_columns(u, s), &transpose(v)), a, rtol);
    }

    fn check_eigen(a: &Dense, rtol: f64) {
        let f = decompose(a, DecompositionKind::Eigen, &live()).expect("eigen");
        let (values, vectors) = (factor(&f, "values"), factor(&f, "vectors"));
        let n = a.rows();
        assert_eq!((values.rows(), values.cols()), (1, n));
        assert_eq!((vectors.rows(), vectors.cols()), (n, n));
        assert!(values.data().windows(2).all(|w| w[0] <= w[1]), "not ascending: {values:?}");
        assert_orthonormal_columns(vectors, rtol);
        let rebuilt = product(&scale_columns(vectors, values), &transpose(vectors));
        assert_close(&rebuilt, a, rtol);
    }

    // -- Dense and errors ----------------------------------------------------

    #[test]
    fn dense_new_keeps_shape_and_row_major_data() {
        let a = mat(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!((a.rows(), a.cols(), a.is_square()), (2, 3, false));
        assert_eq!(get(&a, 1, 0), 4.0);
        assert!(mat(2, 2, &[0.0; 4]).is_square());
        assert_eq!(a.into_data(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    #[should_panic(expected = "Dense::new")]
    fn dense_new_panics_when_the_data_length_does_not_match_the_shape() {
        let _ = Dense::new(2, 2, vec![1.0; 3]);
    }

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

    // -- multiply ------------------------------------------------------------

    #[test]
    fn multiply_computes_a_small_product_exactly() {
        let a = mat(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let b = mat(3, 2, &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
        let c = multiply(&a, &b, &live()).unwrap();
        assert_eq!(c, mat(2, 2, &[58.0, 64.0, 139.0, 154.0]));
    }

    #[test]
    fn multiply_handles_outer_and_inner_products_of_vectors() {
        let column = mat(3, 1, &[1.0, 2.0, 3.0]);
        let row = mat(1, 3, &[4.0, 5.0, 6.0]);
        let outer = multiply(&column, &row, &live()).unwrap();
        assert_eq!(outer, mat(3, 3, &[4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 12.0, 15.0, 18.0]));
        let inner = multiply(&row, &column, &live()).unwrap();
        assert_eq!(inner, mat(1, 1, &[32.0]));
    }

    #[test]
    fn multiply_of_one_by_one_matrices_is_the_scalar_product() {
        let c = multiply(&mat(1, 1, &[3.0]), &mat(1, 1, &[-2.5]), &live()).unwrap();
        assert_eq!(c, mat(1, 1, &[-7.5]));
    }

    #[test]
    fn multiply_rejects_mismatched_inner_dimensions() {
        let e = multiply(&mat(2, 2, &[0.0; 4]), &mat(3, 2, &[0.0; 6]), &live()).unwrap_err();
        assert!(matches!(e, LinalgError::ShapeMismatch { .. }));
        assert!(e.is_invalid_argument());
    }

    #[test]
    fn multiply_overflows_to_infinity_on_huge_entries_without_panicking() {
        let c = multiply(&mat(1, 1, &[1e300]), &mat(1, 1, &[1e300]), &live()).unwrap();
        assert_eq!(c.data()[0], f64::INFINITY);
    }

    #[test]
    fn multiply_matches_the_reference_product_at_a_blocked_size() {
        let a = pseudo_random(70, 45, 1);
        let b = pseudo_random(45, 33, 2);
        assert_close(&multiply(&a, &b, &live()).unwrap(), &product(&a, &b), 1e-13);
    }

    // -- solve ---------------------------------------------------------------

    #[test]
    fn solve_returns_the_exact_solution_of_a_small_square_system() {
        let a = mat(2, 2, &[2.0, 1.0, 1.0, 3.0]);
        let b = mat(2, 1, &[3.0, 5.0]);
        let x = solve(&a, &b, &live()).unwrap();
        assert_close(&x, &mat(2, 1, &[0.8, 1.4]), 1e-15);
    }

    #[test]
    fn solve_handles_several_right_hand_sides_at_once() {
        let a = mat(3, 3, &[4.0, -2.0, 1.0, -2.0, 4.0, -2.0, 1.0, -2.0, 4.0]);
        let x_true = mat(3, 2, &[1.0, -1.0, 2.0, 0.5, 3.0, 0.0]);
        let b = product(&a, &x_true);
        assert_close(&solve(&a, &b, &live()).unwrap(), &x_true, 1e-14);
    }

    #[test]
    fn solve_of_a_one_by_one_system_divides() {
        let x = solve(&mat(1, 1, &[4.0]), &mat(1, 3, &[2.0, -8.0, 1.0]), &live()).unwrap();
        assert_eq!(x, mat(1, 3, &[0.5, -2.0, 0.25]));
    }

    #[test]
    fn solve_needs_row_pivoting_when_the_leading_entry_is_zero() {
        let a = mat(2, 2, &[0.0, 1.0, 1.0, 0.0]);
        let x = solve(&a, &mat(2, 1, &[3.0, 7.0]), &live()).unwrap();
        assert_eq!(x, mat(2, 1, &[7.0, 3.0]));
    }

    #[test]
    fn solve_returns_singular_for_a_rank_deficient_square_matrix() {
        let a = mat(3, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let e = solve(&a, &mat(3, 1, &[1.0, 2.0, 3.0]), &live()).unwrap_err();
        assert_eq!(e, LinalgError::Singular { operation: "solve" });
        assert!(e.is_precondition());
    }

    #[test]
    fn solve_returns_singular_for_the_all_zero_matrix() {
        let e = solve(&mat(2, 2, &[0.0; 4]), &mat(2, 1, &[1.0, 1.0]), &live()).unwrap_err();
        assert_eq!(e, LinalgError::Singular { operation: "solve" });
    }

    #[test]
    fn solve_returns_singular_for_a_matrix_with_a_zero_column() {
        let a = mat(3, 3, &[0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 5.0, 7.0]);
        let e = solve(&a, &mat(3, 1, &[1.0; 3]), &live()).unwrap_err();
        assert_eq!(e, LinalgError::Singular { operation: "solve" });
    }

    #[test]
    fn solve_returns_singular_when_the_pivot_ratio_is_at_most_n_epsilon() {
        // u_22 = 2.2e-16 ≤ 2·ε·1.
        let a = mat(2, 2, &[1.0, 1.0, 1.0, 1.0 + f64::EPSILON]);
        let e = solve(&a, &mat(2, 1, &[1.0, 1.0]), &live()).unwrap_err();
        assert_eq!(e, LinalgError::Singular { operation: "solve" });
    }

    #[test]
    fn solve_succeeds_on_a_nearly_singular_but_nonsingular_matrix() {
        let a = mat(2, 2, &[1.0, 1.0, 1.0, 1.0 + 1e-10]);
        // b = a·[1, 0] exactly, and the elimination is exact.
        let x = solve(&a, &mat(2, 1, &[1.0, 1.0]), &live()).unwrap();
        assert_close(&x, &mat(2, 1, &[1.0, 0.0]), 1e-12);
        // b = a·[1, 1]; the rounding of b is amplified by cond(a) ≈ 4e10.
        let b = mat(2, 1, &[2.0, 1.0 + (1.0 + 1e-10)]);
        let x = solve(&a, &b, &live()).unwrap();
        assert_close(&x, &mat(2, 1, &[1.0, 1.0]), 1e-5);
    }

    #[test]
    fn solve_rejects_a_wide_matrix_as_underdetermined() {
        let e = solve(&mat(2, 3, &[1.0; 6]), &mat(2, 1, &[1.0; 2]), &live()).unwrap_err();
        assert_eq!(e, LinalgError::Underdetermined { rows: 2, cols: 3 });
        assert!(e.is_invalid_argument());
    }

    #[test]
    fn solve_rejects_b_with_the_wrong_number_of_rows() {
        let e = solve(&mat(3, 2, &[1.0; 6]), &mat(2, 1, &[1.0; 2]), &live()).unwrap_err();
        assert!(matches!(e, LinalgError::ShapeMismatch { .. }));
    }

    #[test]
    fn solve_of_a_consistent_tall_system_recovers_the_exact_solution() {
        let a = mat(3, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let x_true = mat(2, 1, &[-1.0, 2.0]);
        let x = solve(&a, &product(&a, &x_true), &live()).unwrap();
        assert_close(&x, &x_true, 1e-14);
    }

    #[test]
    fn solve_of_an_inconsistent_tall_system_returns_the_least_squares_fit() {
        // Fit y = c0 + c1·t through (0, 1), (1, 2), (2, 2), (3, 4):
        // normal equations give c0 = 0.9, c1 = 0.9.
        let a = mat(4, 2, &[1.0, 0.0, 1.0, 1.0, 1.0, 2.0, 1.0, 3.0]);
        let b = mat(4, 1, &[1.0, 2.0, 2.0, 4.0]);
        let x = solve(&a, &b, &live()).unwrap();
        assert_close(&x, &mat(2, 1, &[0.9, 0.9]), 1e-14);
    }

    #[test]
    fn solve_of_a_rank_deficient_tall_system_returns_the_minimum_norm_solution() {
        // Every row is [1, 1]: least squares needs x0 + x1 = mean(b) = 2, and
        // the minimum-norm choice is [1, 1] (numpy.linalg.lstsq agrees).
        let a = mat(3, 2, &[1.0; 6]);
        let b = mat(3, 2, &[1.0, 0.0, 2.0, 0.0, 3.0, 0.0]);
        let x = solve(&a, &b, &live()).unwrap();
        assert_close(&x, &mat(2, 2, &[1.0, 0.0, 1.0, 0.0]), 1e-14);
    }

    #[test]
    fn solve_of_a_rank_one_tall_system_matches_numpy_lstsq() {
        // a = u·vᵀ with u = [1, 2, 3], v = [1, 2]: the minimum-norm solution is
        // v·(u·b)/(|u|²|v|²) = [11/70, 22/70], as numpy.linalg.lstsq returns.
        let a = mat(3, 2, &[1.0, 2.0, 2.0, 4.0, 3.0, 6.0]);
        let x = solve(&a, &mat(3, 1, &[1.0, 2.0, 2.0]), &live()).unwrap();
        assert_close(&x, &mat(2, 1, &[11.0 / 70.0, 22.0 / 70.0]), 1e-14);
    }

    #[test]
    fn solve_and_invert_refuse_a_matrix_whose_third_row_is_the_sum_of_the_others() {
        let a = mat(3, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 5.0, 7.0, 9.0]);
        let e = solve(&a, &mat(3, 1, &[1.0; 3]), &live()).unwrap_err();
        assert_eq!(e, LinalgError::Singular { operation: "solve" });
        assert_eq!(invert(&a, &live()).unwrap_err(), LinalgError::Singular { operation: "invert" });
    }

    #[test]
    fn solve_of_an_all_zero_tall_system_returns_zeros() {
        let x = solve(&mat(3, 2, &[0.0; 6]), &mat(3, 1, &[1.0, 2.0, 3.0]), &live()).unwrap();
        assert_eq!(x, mat(2, 1, &[0.0, 0.0]));
    }

    #[test]
    fn solve_gives_the_same_answer_for_huge_and_tiny_scalings_of_a() {
        let a = mat(2, 2, &[2.0, 1.0, 1.0, 3.0]);
        let b = mat(2, 1, &[3.0, 5.0]);
        let tall = mat(3, 2, &[1.0, 0.0, 1.0, 1.0, 1.0, 2.0]);
        let b_tall = mat(3, 1, &[1.0, 2.0, 4.0]);
        for scale in [1e300, 1e-300] {
            let scaled = Dense::new(2, 2, a.data().iter().map(|x| x * scale).collect());
            let x = solve(&scaled, &b, &live()).unwrap();
            assert_close(&x, &mat(2, 1, &[0.8 / scale, 1.4 / scale]), 1e-12);
        }
        // Subnormal a (exact powers of two times small integers) and b.
        let tiny = f64::MIN_POSITIVE / 2f64.powi(18); // 2^-1040
        let scaled = Dense::new(2, 2, a.data().iter().map(|x| x * tiny).collect());
        let b_tiny = Dense::new(2, 1, b.data().iter().map(|x| x * tiny).collect());
        let x = solve(&scaled, &b_tiny, &live()).unwrap();
        assert_close(&x, &mat(2, 1, &[0.8, 1.4]), 1e-15);
        let expected = solve(&tall, &b_tall, &live()).unwrap();
        for scale in [1e300, 1e-300, tiny] {
            let scaled = Dense::new(3, 2, tall.data().iter().map(|x| x * scale).collect());
            let b_scaled = Dense::new(3, 1, b_tall.data().iter().map(|x| x * scale).collect());
            let x = solve(&scaled, &b_scaled, &live()).unwrap();
            assert_close(&x, &expected, 1e-12);
        }
    }

    // -- invert --------------------------------------------------------------

    #[test]
    fn invert_computes_the_inverse_of_a_two_by_two_matrix() {
        let inv = invert(&mat(2, 2, &[1.0, 2.0, 3.0, 4.0]), &live()).unwrap();
        assert_close(&inv, &mat(2, 2, &[-2.0, 1.0, 1.5, -0.5]), 1e-15);
    }

    #[test]
    fn invert_of_a_one_by_one_matrix_is_the_reciprocal() {
        assert_eq!(invert(&mat(1, 1, &[-4.0]), &live()).unwrap(), mat(1, 1, &[-0.25]));
    }

    #[test]
    fn invert_of_a_permutation_matrix_is_its_transpose() {
        let p = mat(3, 3, &[0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        assert_eq!(invert(&p, &live()).unwrap(), transpose(&p));
    }

    #[test]
    fn invert_of_huge_and_tiny_diagonal_matrices_is_exact() {
        let inv = invert(&mat(2, 2, &[1e-300, 0.0, 0.0, 4e-300]), &live()).unwrap();
        assert_close(&inv, &mat(2, 2, &[1e300, 0.0, 0.0, 0.25e300]), 1e-15);
        let inv = invert(&mat(2, 2, &[2e300, 0.0, 0.0, 8e300]), &live()).unwrap();
        assert_close(&inv, &mat(2, 2, &[0.5e-300, 0.0, 0.0, 0.125e-300]), 1e-15);
    }

    #[test]
    fn invert_rejects_a_non_square_matrix() {
        let e = invert(&mat(3, 2, &[1.0; 6]), &live()).unwrap_err();
        assert_eq!(e, LinalgError::NotSquare { operation: "invert", rows: 3, cols: 2 });
    }

    #[test]
    fn invert_returns_singular_for_a_singular_matrix() {
        let e = invert(&mat(2, 2, &[1.0, 2.0, 2.0, 4.0]), &live()).unwrap_err();
        assert_eq!(e, LinalgError::Singular { operation: "invert" });
        let e = invert(&mat(3, 3, &[0.0; 9]), &live()).unwrap_err();
        assert_eq!(e, LinalgError::Singular { operation: "invert" });
    }

    // -- determinant ---------------------------------------------------------

    #[test]
    fn determinant_of_one_two_three_four_is_minus_two() {
        let det = determinant(&mat(2, 2, &[1.0, 2.0, 3.0, 4.0]), &live()).unwrap();
        assert!((det + 2.0).abs() <= 4.0 * f64::EPSILON, "{det}");
    }

    #[test]
    fn determinant_includes_the_sign_of_the_row_permutation() {
        assert_eq!(determinant(&mat(2, 2, &[0.0, 1.0, 1.0, 0.0]), &live()).unwrap(), -1.0);
        let cycle = mat(3, 3, &[0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        assert_eq!(determinant(&cycle, &live()).unwrap(), 1.0);
        let upper = mat(3, 3, &[2.0, 5.0, 7.0, 0.0, 3.0, 1.0, 0.0, 0.0, -4.0]);
        assert_eq!(determinant(&upper, &live()).unwrap(), -24.0);
        assert_eq!(determinant(&mat(1, 1, &[-3.5]), &live()).unwrap(), -3.5);
    }

    #[test]
    fn determinant_of_a_singular_matrix_is_zero_or_tiny_and_not_an_error() {
        let det = determinant(&mat(2, 2, &[1.0, 2.0, 2.0, 4.0]), &live()).unwrap();
        assert!(det.abs() <= 1e-15, "{det}");
        let det = determinant(&mat(3, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]), &live()).unwrap();
        assert!(det.abs() <= 1e-14, "{det}");
        // A zero column makes faer's L contain NaN; the result must still be 0.
        let zero_column = mat(3, 3, &[0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 5.0, 7.0]);
        assert_eq!(determinant(&zero_column, &live()).unwrap(), 0.0);
        assert_eq!(determinant(&mat(2, 2, &[0.0; 4]), &live()).unwrap(), 0.0);
    }

    #[test]
    fn determinant_avoids_intermediate_overflow_and_underflow() {
        let a = mat(
            4,
            4,
            &[
                1e200, 0.0, 0.0, 0.0, //
                0.0, 1e200, 0.0, 0.0, //
                0.0, 0.0, 1e-200, 0.0, //
                0.0, 0.0, 0.0, 1e-200,
            ],
        );
        let det = determinant(&a, &live()).unwrap();
        assert!((det - 1.0).abs() <= 1e-14, "{det}");
    }

    #[test]
    fn determinant_overflows_or_underflows_only_when_the_true_value_does() {
        let huge = mat(2, 2, &[1e300, 2e300, 3e300, 4e300]);
        assert_eq!(determinant(&huge, &live()).unwrap(), f64::NEG_INFINITY);
        let tiny = mat(2, 2, &[1e-300, 2e-300, 3e-300, 4e-300]);
        assert_eq!(determinant(&tiny, &live()).unwrap(), 0.0);
        let representable = mat(2, 2, &[1e150, 2e150, 3e150, 4e150]);
        let det = determinant(&representable, &live()).unwrap();
        assert!((det / -2e300 - 1.0).abs() <= 1e-14, "{det}");
    }

    #[test]
    fn determinant_rejects_a_non_square_matrix() {
        let e = determinant(&mat(1, 2, &[1.0, 2.0]), &live()).unwrap_err();
        assert_eq!(e, LinalgError::NotSquare { operation: "determinant", rows: 1, cols: 2 });
    }

    // -- LU ------------------------------------------------------------------

    #[test]
    fn lu_follows_the_p_times_a_equals_l_times_u_convention() {
        let a = mat(2, 2, &[1.0, 2.0, 3.0, 4.0]);
        let f = decompose(&a, DecompositionKind::Lu, &live()).unwrap();
        // Partial pivoting moves row 1 (pivot 3) to the top.
        assert_eq!(factor(&f, "p"), &mat(2, 2, &[0.0, 1.0, 1.0, 0.0]));
        assert_close(factor(&f, "l"), &mat(2, 2, &[1.0, 0.0, 1.0 / 3.0, 1.0]), 1e-15);
        assert_close(factor(&f, "u"), &mat(2, 2, &[3.0, 4.0, 0.0, 2.0 / 3.0]), 1e-15);
        check_lu(&a, 1e-15);
    }

    #[test]
    fn lu_permutation_is_correct_for_a_three_cycle() {
        // The largest pivots sit in rows 2, 0, 1 in turn.
        let a = mat(3, 3, &[1.0, 9.0, 0.5, 0.5, 1.0, 9.0, 9.0, 1.0, 1.0]);
        check_lu(&a, 1e-14);
        let f = decompose(&a, DecompositionKind::Lu, &live()).unwrap();
        assert_eq!(get(factor(&f, "p"), 0, 2), 1.0);
    }

    #[test]
    fn lu_of_tall_and_wide_matrices_has_thin_factors() {
        check_lu(&mat(3, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 1e-14);
        check_lu(&mat(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 1e-14);
        check_lu(&mat(1, 4, &[2.0, -1.0, 0.0, 3.0]), 1e-15);
        check_lu(&mat(4, 1, &[2.0, -1.0, 5.0, 3.0]), 1e-15);
        check_lu(&pseudo_random(40, 7, 3), 1e-13);
        check_lu(&pseudo_random(7, 40, 4), 1e-13);
    }

    #[test]
    fn lu_of_rank_deficient_matrices_has_finite_factors() {
        for a in [
            mat(3, 3, &[0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 5.0, 7.0]),
            mat(3, 3, &[1.0, 1.0, 2.0, 2.0, 2.0, 5.0, 3.0, 3.0, 1.0]),
            mat(3, 2, &[1.0, 2.0, 2.0, 4.0, 3.0, 6.0]),
            mat(2, 3, &[0.0, 0.0, 1.0, 0.0, 0.0, 2.0]),
            mat(3, 3, &[0.0; 9]),
            mat(1, 1, &[0.0]),
        ] {
            let f = decompose(&a, DecompositionKind::Lu, &live()).unwrap();
            assert!(f.values().all(|d| d.data().iter().all(|x| x.is_finite())), "{f:?}");
            check_lu(&a, 1e-15);
        }
    }

    #[test]
    fn lu_of_huge_and_tiny_matrices_reconstructs() {
        for scale in [1e300, 1e-300, 1e-315] {
            let a = Dense::new(3, 3, pseudo_random(3, 3, 5).data.iter().map(|x| x * scale).collect());
            check_lu(&a, 1e-14);
        }
    }

    #[test]
    fn unblocked_lu_fallback_agrees_with_faer_on_regular_input() {
        let a = pseudo_random(9, 6, 6);
        let fast = LuWork::factor(&a);
        let slow = LuWork::factor_unblocked(&a, &live()).unwrap();
        assert_eq!(fast.perm_fwd, slow.perm_fwd);
        assert_eq!(fast.transpositions % 2, slow.transpositions % 2);
        let diff = fast.work.data.iter().zip(&slow.work.data).map(|(x, y)| (x - y).abs());
        assert!(diff.fold(0.0, f64::max) <= 1e-13);
        assert_eq!(LuWork::factor_unblocked(&a, &cancelled()).err(), Some(LinalgError::Cancelled));
    }

    // -- QR ------------------------------------------------------------------

    #[test]
    fn qr_of_square_tall_and_wide_matrices_reconstructs_with_orthonormal_q() {
        check_qr(&mat(2, 2, &[1.0, 2.0, 3.0, 4.0]), 1e-14);
        check_qr(&mat(3, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 1e-14);
        check_qr(&mat(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 1e-14);
        check_qr(&mat(1, 1, &[-5.0]), 1e-15);
        check_qr(&mat(1, 3, &[1.0, 2.0, 3.0]), 1e-15);
        check_qr(&mat(3, 1, &[1.0, 2.0, 3.0]), 1e-15);
        check_qr(&pseudo_random(90, 20, 7), 1e-13);
        check_qr(&pseudo_random(20, 90, 8), 1e-13);
    }

    #[test]
    fn qr_of_a_diagonal_matrix_has_r_equal_to_a_up_to_signs() {
        let f = decompose(&mat(2, 2, &[3.0, 0.0, 0.0, 2.0]), DecompositionKind::Qr, &live()).unwrap();
        let r = factor(&f, "r");
        assert_eq!((get(r, 0, 0).abs(), get(r, 1, 1).abs(), get(r, 0, 1)), (3.0, 2.0, 0.0));
    }

    #[test]
    fn qr_of_zero_and_extreme_matrices_does_not_break() {
        let f = decompose(&mat(3, 2, &[0.0; 6]), DecompositionKind::Qr, &live()).unwrap();
        assert!(factor(&f, "r").data().iter().all(|&x| x == 0.0));
        assert_orthonormal_columns(factor(&f, "q"), 1e-15);
        for scale in [1e300, 1e-300] {
            let a = Dense::new(4, 3, pseudo_random(4, 3, 9).data.iter().map(|x| x * scale).collect());
            check_qr(&a, 1e-14);
        }
    }

    // -- Cholesky ------------------------------------------------------------

    #[test]
    fn cholesky_of_a_known_matrix_is_exact() {
        let f = decompose(&mat(2, 2, &[4.0, 2.0, 2.0, 3.0]), DecompositionKind::Cholesky, &live()).unwrap();
        assert_close(factor(&f, "l"), &mat(2, 2, &[2.0, 0.0, 1.0, 2f64.sqrt()]), 1e-15);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn cholesky_of_a_one_by_one_matrix_is_the_square_root() {
        let f = decompose(&mat(1, 1, &[9.0]), DecompositionKind::Cholesky, &live()).unwrap();
        assert_eq!(factor(&f, "l"), &mat(1, 1, &[3.0]));
    }

    #[test]
    fn cholesky_rejects_a_non_square_matrix() {
        let e = decompose(&mat(2, 3, &[1.0; 6]), DecompositionKind::Cholesky, &live()).unwrap_err();
        assert!(matches!(e, LinalgError::NotSquare { rows: 2, cols: 3, .. }), "{e:?}");
    }

    #[test]
    fn cholesky_rejects_a_non_symmetric_matrix_naming_the_first_offending_pair() {
        let a = mat(3, 3, &[4.0, 1.0, 1.0, 1.0, 4.0, 2.0, 1.0, 1.0, 4.0]);
        let e = decompose(&a, DecompositionKind::Cholesky, &live()).unwrap_err();
        assert_eq!(e, LinalgError::NotSymmetric { operation: "Cholesky decomposition", row: 1, col: 2 });
    }

    #[test]
    fn cholesky_returns_not_positive_definite_for_indefinite_and_semidefinite_matrices() {
        for a in [
            mat(2, 2, &[1.0, 2.0, 2.0, 1.0]),
            mat(2, 2, &[-1.0, 0.0, 0.0, -1.0]),
            mat(2, 2, &[0.0; 4]),
            mat(1, 1, &[0.0]),
            mat(3, 3, &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
        ] {
            let e = decompose(&a, DecompositionKind::Cholesky, &live()).unwrap_err();
            assert_eq!(e, LinalgError::NotPositiveDefinite, "{a:?}");
            assert!(e.is_precondition());
        }
    }

    #[test]
    fn not_symmetric_names_the_first_offending_pair_in_row_major_order_across_tiles() {
        let n = 70;
        let base = pseudo_random(n, n, 13);
        let symmetric: Vec<f64> =
            (0..n * n).map(|idx| (base.data[idx] + base.data[(idx % n) * n + idx / n]) / 2.0).collect();
        let a = Dense::new(n, n, symmetric.clone());
        assert_eq!(first_asymmetry(&a, &live()), Ok(None));
        for (perturbed, expected) in [(vec![(40, 65), (3, 50)], (3, 50)), (vec![(69, 68)], (68, 69))] {
            let mut data = symmetric.clone();
            for (i, j) in perturbed {
                data[i * n + j] += 1.0;
            }
            let e = decompose(&Dense::new(n, n, data), DecompositionKind::Eigen, &live()).unwrap_err();
            let (row, col) = expected;
            assert_eq!(e, LinalgError::NotSymmetric { operation: "eigendecomposition", row, col });
        }
    }

    #[test]
    fn cholesky_accepts_asymmetry_within_the_relative_tolerance() {
        let a = mat(2, 2, &[4.0, 2.0, 2.0 + 1e-12, 3.0]);
        assert!(decompose(&a, DecompositionKind::Cholesky, &live()).is_ok());
        let a = mat(2, 2, &[4.0, 2.0, 2.0 + 1e-10, 3.0]);
        assert!(matches!(
            decompose(&a, DecompositionKind::Cholesky, &live()),
            Err(LinalgError::NotSymmetric { row: 0, col: 1, .. })
        ));
    }

    #[test]
    fn cholesky_of_huge_and_tiny_matrices_reconstructs() {
        for scale in [1e300, 1e-300, 3e-310] {
            let a = mat(2, 2, &[4.0 * scale, 2.0 * scale, 2.0 * scale, 3.0 * scale]);
            let f = decompose(&a, DecompositionKind::Cholesky, &live()).unwrap();
            let l = factor(&f, "l");
            let expected = mat(2, 2, &[2.0, 0.0, 1.0, 2f64.sqrt()]);
            let unscaled = Dense::new(2, 2, l.data().iter().map(|x| x / scale.sqrt()).collect());
            assert_close(&unscaled, &expected, 1e-12);
        }
    }

    // -- SVD -----------------------------------------------------------------

    #[test]
    fn svd_of_a_diagonal_matrix_sorts_singular_values_descending() {
        let a = mat(3, 3, &[1.0, 0.0, 0.0, 0.0, -3.0, 0.0, 0.0, 0.0, 2.0]);
        let f = decompose(&a, DecompositionKind::Svd, &live()).unwrap();
        assert_close(factor(&f, "s"), &mat(1, 3, &[3.0, 2.0, 1.0]), 1e-15);
        check_svd(&a, 1e-15);
    }

    #[test]
    fn svd_of_a_rank_one_matrix_has_one_nonzero_singular_value() {
        let a = mat(2, 2, &[3.0, 4.0, 6.0, 8.0]);
        let f = decompose(&a, DecompositionKind::Svd, &live()).unwrap();
        let s = factor(&f, "s").data();
        assert!((s[0] - 125f64.sqrt()).abs() <= 1e-14 && s[1].abs() <= 1e-14, "{s:?}");
    }

    #[test]
    fn svd_of_tall_wide_zero_and_extreme_matrices_reconstructs() {
        check_svd(&mat(3, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 1e-14);
        check_svd(&mat(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 1e-14);
        check_svd(&mat(1, 1, &[-2.0]), 1e-15);
        check_svd(&mat(1, 3, &[1.0, 2.0, 2.0]), 1e-15);
        check_svd(&pseudo_random(60, 25, 10), 1e-13);
        check_svd(&pseudo_random(25, 60, 11), 1e-13);
        let f = decompose(&mat(2, 3, &[0.0; 6]), DecompositionKind::Svd, &live()).unwrap();
        assert_eq!(factor(&f, "s"), &mat(1, 2, &[0.0, 0.0]));
        for scale in [1e300, 1e-300, 1e-320] {
            let a = Dense::new(3, 4, pseudo_random(3, 4, 12).data.iter().map(|x| x * scale).collect());
            if scale > 1e-310 {
                check_svd(&a, 1e-13);
            } else {
                // Subnormal input has few significant bits; only check sanity.
                let f = decompose(&a, DecompositionKind::Svd, &live()).unwrap();
                assert!(f.values().all(|d| d.data().iter().all(|x| x.is_finite())));
            }
        }
    }

    // -- Eigen ---------------------------------------------------------------

    #[test]
    fn eigen_of_a_diagonal_matrix_sorts_values_ascending() {
        let a = mat(3, 3, &[2.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 5.0]);
        let f = decompose(&a, DecompositionKind::Eigen, &live()).unwrap();
        assert_close(factor(&f, "values"), &mat(1, 3, &[-1.0, 2.0, 5.0]), 1e-15);
        check_eigen(&a, 1e-15);
    }

    #[test]
    fn eigen_of_a_known_symmetric_two_by_two_matrix() {
        let a = mat(2, 2, &[2.0, 1.0, 1.0, 2.0]);
        let f = decompose(&a, DecompositionKind::Eigen, &live()).unwrap();
        assert_close(factor(&f, "values"), &mat(1, 2, &[1.0, 3.0]), 1e-15);
        let v = factor(&f, "vectors");
        // The eigenvector of 3 is ±[1, 1]/√2.
        assert!((get(v, 0, 1).abs() - 0.5f64.sqrt()).abs() <= 1e-15);
        assert!((get(v, 0, 1) - get(v, 1, 1)).abs() <= 1e-15);
        check_eigen(&a, 1e-15);
    }

    #[test]
    fn eigen_rejects_non_square_and_non_symmetric_matrices() {
        let e = decompose(&mat(1, 2, &[1.0, 2.0]), DecompositionKind::Eigen, &live()).unwrap_err();
        assert_eq!(e, LinalgError::NotSquare { operation: "eigendecomposition", rows: 1, cols: 2 });
        let e = decompose(&mat(2, 2, &[1.0, 2.0, 0.0, 1.0]), DecompositionKind::Eigen, &live()).unwrap_err();
        assert_eq!(e, LinalgError::NotSymmetric { operation: "eigendecomposition", row: 0, col: 1 });
    }

    #[test]
    fn eigen_of_one_by_one_zero_and_extreme_matrices() {
        let f = decompose(&mat(1, 1, &[-7.0]), DecompositionKind::Eigen, &live()).unwrap();
        assert_eq!(factor(&f, "values"), &mat(1, 1, &[-7.0]));
        assert_eq!(factor(&f, "vectors").data()[0].abs(), 1.0);
        check_eigen(&mat(3, 3, &[0.0; 9]), 1e-15);
        for scale in [1e300, 1e-300] {
            let a = mat(2, 2, &[2.0 * scale, scale, scale, 2.0 * scale]);
            let f = decompose(&a, DecompositionKind::Eigen, &live()).unwrap();
            let values = factor(&f, "values");
            assert_close(values, &mat(1, 2, &[scale, 3.0 * scale]), 1e-14);
        }
    }

    // -- analyze -------------------------------------------------------------

    #[test]
    fn analyze_reports_every_property_of_a_diagonal_matrix() {
        let a = mat(3, 3, &[1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 4.0]);
        let r = analyze(&a, &live()).unwrap();
        assert_eq!((r.rows, r.cols, r.rank, r.symmetric), (3, 3, 3, true));
        assert!((r.frobenius_norm - 21f64.sqrt()).abs() <= 1e-15);
        assert!((r.condition_number - 4.0).abs() <= 1e-14);
        assert_eq!(r.trace, Some(7.0));
        assert_eq!(r.determinant, Some(8.0));
    }

    #[test]
    fn analyze_of_a_singular_matrix_has_deficient_rank_and_infinite_condition() {
        let a = mat(3, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let r = analyze(&a, &live()).unwrap();
        assert_eq!((r.rank, r.condition_number, r.symmetric), (2, f64::INFINITY, false));
        assert_eq!(r.trace, Some(15.0));
        assert!(r.determinant.is_some_and(|d| d.abs() <= 1e-14));
    }

    #[test]
    fn analyze_of_rectangular_matrices_has_no_trace_determinant_or_symmetry() {
        let r = analyze(&mat(3, 2, &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]), &live()).unwrap();
        assert_eq!((r.rows, r.cols, r.rank, r.symmetric), (3, 2, 2, false));
        assert_eq!((r.trace, r.determinant), (None, None));
        assert!((r.condition_number - 1.0).abs() <= 1e-15);
        let r = analyze(&mat(1, 3, &[3.0, 0.0, 4.0]), &live()).unwrap();
        assert_eq!((r.rank, r.frobenius_norm, r.condition_number), (1, 5.0, 1.0));
    }

    #[test]
    fn analyze_of_the_zero_matrix_has_rank_zero() {
        let r = analyze(&mat(2, 3, &[0.0; 6]), &live()).unwrap();
        assert_eq!((r.rank, r.frobenius_norm, r.condition_number), (0, 0.0, f64::INFINITY));
        let r = analyze(&mat(1, 1, &[0.0]), &live()).unwrap();
        assert_eq!((r.rank, r.symmetric, r.trace, r.determinant), (0, true, Some(0.0), Some(0.0)));
    }

    #[test]
    fn analyze_uses_numpys_matrix_rank_tolerance() {
        // σ = [1, 1e-15]: 1e-15 > 2·ε·1 counts; 1e-16 does not.
        let r = analyze(&mat(2, 2, &[1.0, 0.0, 0.0, 1e-15]), &live()).unwrap();
        assert_eq!(r.rank, 2);
        assert!((r.condition_number / 1e15 - 1.0).abs() <= 1e-12);
        let r = analyze(&mat(2, 2, &[1.0, 0.0, 0.0, 1e-16]), &live()).unwrap();
        assert_eq!((r.rank, r.condition_number), (1, f64::INFINITY));
    }

    #[test]
    fn analyze_handles_huge_and_tiny_entries_without_overflow() {
        let r = analyze(&mat(1, 2, &[1e300, 1e300]), &live()).unwrap();
        assert!((r.frobenius_norm / (2f64.sqrt() * 1e300) - 1.0).abs() <= 1e-15);
        assert_eq!(r.rank, 1);
        let r = analyze(&mat(2, 2, &[3e-300, 0.0, 0.0, 1e-300]), &live()).unwrap();
        assert_eq!(r.rank, 2);
        assert!((r.condition_number - 3.0).abs() <= 1e-14);
        assert!((r.frobenius_norm / (10f64.sqrt() * 1e-300) - 1.0).abs() <= 1e-15);
    }

    #[test]
    fn analyze_symmetry_follows_the_relative_tolerance_rule() {
        let scale = 1e6;
        let a = mat(2, 2, &[scale, 1.0, 1.0 + 0.5e-12 * scale, 0.0]);
        assert!(analyze(&a, &live()).unwrap().symmetric);
        let a = mat(2, 2, &[scale, 1.0, 1.0 + 2e-12 * scale, 0.0]);
        assert!(!analyze(&a, &live()).unwrap().symmetric);
    }

    // -- cancellation and robustness ------------------------------------------

    #[test]
    fn cancel_token_clones_share_one_flag() {
        let token = CancelToken::default();
        let clone = token.clone();
        assert!(!clone.is_cancelled());
        token.cancel();
        assert!(clone.is_cancelled());
    }

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
        for kind in [
            DecompositionKind::Lu,
            DecompositionKind::Qr,
            DecompositionKind::Cholesky,
            DecompositionKind::Svd,
            DecompositionKind::Eigen,
        ] {
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
            for kind in [
                DecompositionKind::Lu,
                DecompositionKind::Qr,
                DecompositionKind::Cholesky,
                DecompositionKind::Svd,
                DecompositionKind::Eigen,
            ] {
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

    #[test]
    fn float_helpers_are_exact() {
        assert_eq!(frexp(12.0), (1.5, 3));
        assert_eq!(frexp(-0.75), (-1.5, -1));
        assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (1.0, -1024));
        assert_eq!(ldexp(1.5, 3), 12.0);
        assert_eq!(ldexp(1.0, 5000), f64::INFINITY);
        assert_eq!(ldexp(-1.0, -5000), 0.0);
        assert_eq!(ldexp(1.0, -1074), f64::from_bits(1));
        assert_eq!(scale_exponent(1.0), 0);
        assert_eq!(scale_exponent(0.0), 0);
        assert_eq!(scale_exponent(2f64.powi(460)), 0);
        assert_eq!(scale_exponent(2f64.powi(-460)), 0);
        assert_eq!(scale_exponent(1e300), -536);
        assert_eq!(scale_exponent(1e-300), 538);
        assert_eq!(scale_exponent(f64::MAX), -564);
        assert_eq!(scale_exponent(f64::from_bits(1)), 614);
        assert_eq!(pow2(-3), 0.125);
    }

    // -- property tests --------------------------------------------------------

    /// Deterministic matrix with entries in [-1, 1).
    fn pseudo_random(rows: usize, cols: usize, seed: u64) -> Dense {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let data = (0..rows * cols)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 52) as f64 - 1.0
            })
            .collect();
        Dense::new(rows, cols, data)
    }

    fn matrix(rows: usize, cols: usize) -> impl Strategy<Value = Dense> {
        proptest::collection::vec(-1.0..1.0f64, rows * cols).prop_map(move |data| Dense::new(rows, cols, data))
    }

    fn any_matrix() -> impl Strategy<Value = Dense> {
        (1..=12usize, 1..=12usize).prop_flat_map(|(m, n)| matrix(m, n))
    }

    fn square_matrix() -> impl Strategy<Value = Dense> {
        (1..=12usize).prop_flat_map(|n| matrix(n, n))
    }

    /// Strictly diagonally dominant, hence well conditioned.
    fn dominant_matrix() -> impl Strategy<Value = Dense> {
        square_matrix().prop_map(|mut a| {
            let n = a.rows;
            for i in 0..n {
                let diagonal = &mut a.data[i * n + i];
                *diagonal += if *diagonal < 0.0 { -(n as f64) } else { n as f64 };
            }
            a
        })
    }

    fn symmetric_matrix() -> impl Strategy<Value = Dense> {
        square_matrix().prop_map(|a| {
            let at = transpose(&a);
            let data = a.data().iter().zip(at.data()).map(|(x, y)| (x + y) / 2.0).collect();
            Dense::new(a.rows(), a.cols(), data)
        })
    }

    /// A tall system (rows > cols) and a right-hand side.
    fn tall_system() -> impl Strategy<Value = (Dense, Dense)> {
        (1..=11usize, 1..=3usize)
            .prop_flat_map(|(n, p)| (n + 1..=12usize, Just(n), Just(p)))
            .prop_flat_map(|(m, n, p)| (matrix(m, n), matrix(m, p)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn inverse_times_a_is_the_identity_for_diagonally_dominant_a(a in dominant_matrix()) {
            let inv = invert(&a, &live()).unwrap();
            assert_close(&product(&a, &inv), &identity(a.rows()), 1e-13);
            assert_close(&product(&inv, &a), &identity(a.rows()), 1e-13);
        }

        #[test]
        fn square_solve_satisfies_a_x_equals_b(a in dominant_matrix(), p in 1..=3usize, seed in any::<u64>()) {
            let b = pseudo_random(a.rows(), p, seed);
            let x = solve(&a, &b, &live()).unwrap();
            let residual = distance(&product(&a, &x), &b);
            prop_assert!(residual <= 1e-13 * (norm(&a) * norm(&x) + norm(&b)), "residual {residual:e}");
        }

        #[test]
        fn tall_solve_satisfies_the_normal_equations((a, b) in tall_system()) {
            let x = solve(&a, &b, &live()).unwrap();
            prop_assert_eq!((x.rows(), x.cols()), (a.cols(), b.cols()));
            let ax = product(&a, &x);
            let r = Dense::new(b.rows(), b.cols(), ax.data().iter().zip(b.data()).map(|(p, q)| p - q).collect());
            let gradient = norm(&product(&transpose(&a), &r));
            let bound = 1e-12 * norm(&a) * (norm(&a) * norm(&x) + norm(&b));
            prop_assert!(gradient <= bound, "‖aᵀ(ax − b)‖ = {gradient:e} > {bound:e}");
        }

        #[test]
        fn lu_reconstructs_p_a_with_valid_factors(a in any_matrix()) {
            check_lu(&a, 1e-13);
        }

        #[test]
        fn determinant_is_multiplicative(a in dominant_matrix(), seed in any::<u64>()) {
            let n = a.rows();
            let b = pseudo_random(n, n, seed);
            let det_ab = determinant(&product(&a, &b), &live()).unwrap();
            let det_a = determinant(&a, &live()).unwrap();
            let det_b = determinant(&b, &live()).unwrap();
            // |det(ab) − det(a)det(b)| is bounded by rounding relative to the
            // product of the norms' powers.
            let scale = (norm(&a) * norm(&b)).powi(n as i32);
            prop_assert!((det_ab - det_a * det_b).abs() <= 1e-12 * scale);
        }

        #[test]
        fn qr_reconstructs_a_with_orthonormal_q(a in any_matrix()) {
            check_qr(&a, 1e-13);
        }

        #[test]
        fn cholesky_of_bt_b_plus_n_i_reconstructs(b in any_matrix()) {
            let n = b.cols();
            let mut a = product(&transpose(&b), &b);
            for i in 0..n {
                a.data[i * n + i] += n as f64;
            }
            let f = decompose(&a, DecompositionKind::Cholesky, &live()).unwrap();
            let l = factor(&f, "l");
            assert_lower_triangular(l);
            prop_assert!((0..n).all(|i| get(l, i, i) > 0.0));
            assert_close(&product(l, &transpose(l)), &a, 1e-13);
        }

        #[test]
        fn svd_reconstructs_a_with_descending_singular_values(a in any_matrix()) {
            check_svd(&a, 1e-13);
        }

        #[test]
        fn eigen_reconstructs_a_symmetric_matrix(a in symmetric_matrix()) {
            check_eigen(&a, 1e-13);
        }

        #[test]
        fn multiply_matches_the_reference_product((a, b) in (1..=12usize, 1..=12usize, 1..=12usize)
            .prop_flat_map(|(m, k, n)| (matrix(m, k), matrix(k, n)))) {
            assert_close(&multiply(&a, &b, &live()).unwrap(), &product(&a, &b), 1e-14);
        }

        #[test]
        fn analyze_agrees_with_the_svd_and_lu(a in any_matrix()) {
            let r = analyze(&a, &live()).unwrap();
            let f = decompose(&a, DecompositionKind::Svd, &live()).unwrap();
            let s = factor(&f, "s").data();
            let threshold = rank_tolerance(a.rows(), a.cols()) * s[0];
            prop_assert_eq!(r.rank, s.iter().filter(|&&x| x > threshold).count());
            prop_assert!((r.frobenius_norm - norm(&a)).abs() <= 1e-14 * norm(&a));
            if r.rank == s.len() {
                prop_assert!((r.condition_number / (s[0] / s[s.len() - 1]) - 1.0).abs() <= 1e-12);
            }
            prop_assert_eq!(r.determinant.is_some(), a.is_square());
        }
    }
}
