//! Linear systems: exact (LU) for square `a`, least squares (QR, or the SVD when rank-deficient) for tall `a`.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::solve as lu_solve;
use faer::linalg::matmul::matmul;
use faer::linalg::qr::no_pivoting::solve as qr_solve;
use faer::{Accum, Conj, Mat, MatMut, MatRef};

use super::decompose::householder_qr;
use super::layout::par;
use super::lu::{LuWork, pivots_deficient};
use super::scaling::{max_abs, scale_exponent, scale_in_place};
use super::svd::{Svd, thin_svd};
use super::{CancelToken, Dense, LinalgError, rank_tolerance};

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

/// Solves `(2ᵏ·a)·y = rhs` in place by LU; returns `(y, k)`.
pub(super) fn solve_square(
    a: &Dense,
    mut rhs: Vec<f64>,
    p: usize,
    cancel: &CancelToken,
) -> Result<(Vec<f64>, i32), LinalgError> {
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
pub(super) fn solve_least_squares(
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
pub(super) fn min_norm_least_squares(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::invert;
    use crate::linalg::test_support::*;
    use proptest::prelude::*;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

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
    }
}
