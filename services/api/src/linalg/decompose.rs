//! The five factorizations (LU, QR, Cholesky, SVD, symmetric eigen) and the names of their factors.

use std::collections::BTreeMap;

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
use faer::linalg::evd::{ComputeEigenvectors, self_adjoint_evd, self_adjoint_evd_scratch};
use faer::linalg::householder::{
    apply_block_householder_sequence_on_the_left_in_place_scratch,
    apply_block_householder_sequence_on_the_left_in_place_with_conj,
};
use faer::linalg::qr::no_pivoting::factor as qr;
use faer::{Conj, Mat, Par};

use super::layout::{ColMajor, dense_from, par, scaled_copy};
use super::lu::{LuWork, upper_part};
use super::scaling::{max_abs, pow2, scale_exponent};
use super::svd::{Svd, not_converged, thin_svd};
use super::validation::require_symmetric;
use super::{CancelToken, Dense, LinalgError};

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

pub(super) fn decompose_lu(a: &Dense, cancel: &CancelToken) -> Result<Vec<(&'static str, Dense)>, LinalgError> {
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
pub(super) fn householder_qr(a: &Dense, scale_exp: i32, par: Par) -> (ColMajor, Mat<f64>) {
    let (m, n) = (a.rows, a.cols);
    let mut work = ColMajor::from_dense(a, scale_exp);
    let block_size = qr::recommended_block_size::<f64>(m, n);
    let mut coeff = Mat::<f64>::zeros(block_size, m.min(n));
    let mut mem = MemBuffer::new(qr::qr_in_place_scratch::<f64>(m, n, block_size, par, Default::default()));
    qr::qr_in_place(work.as_mut(), coeff.as_mut(), par, MemStack::new(&mut mem), Default::default());
    (work, coeff)
}

pub(super) fn decompose_qr(a: &Dense, cancel: &CancelToken) -> Result<Vec<(&'static str, Dense)>, LinalgError> {
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

pub(super) fn decompose_cholesky(a: &Dense, cancel: &CancelToken) -> Result<Vec<(&'static str, Dense)>, LinalgError> {
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

pub(super) fn decompose_svd(a: &Dense, cancel: &CancelToken) -> Result<Vec<(&'static str, Dense)>, LinalgError> {
    let k = a.rows.min(a.cols);
    let scale_exp = scale_exponent(max_abs(&a.data));
    let Svd { u, s, v } = thin_svd(a, scale_exp, "SVD")?;
    cancel.check()?;
    let unscale = pow2(-scale_exp);
    let sv = s.column_vector();
    let values = (0..k).map(|i| sv[i] * unscale).collect();
    Ok(vec![("u", dense_from(u.as_ref())), ("s", Dense::new(1, k, values)), ("v", dense_from(v.as_ref()))])
}

pub(super) fn decompose_eigen(a: &Dense, cancel: &CancelToken) -> Result<Vec<(&'static str, Dense)>, LinalgError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::test_support::*;
    use crate::linalg::validation::first_asymmetry;
    use proptest::prelude::*;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn lu_reconstructs_p_a_with_valid_factors(a in any_matrix()) {
            check_lu(&a, 1e-13);
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
    }
}
