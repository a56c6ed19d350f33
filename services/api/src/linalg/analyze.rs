//! What `analyze` reports about a matrix: rank, norms, condition number, symmetry, trace, determinant.

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::svd::{ComputeSvdVectors, svd, svd_scratch};

use super::layout::{par, scaled_copy};
use super::lu::LuWork;
use super::scaling::{max_abs, scale_exponent};
use super::svd::not_converged;
use super::validation::first_asymmetry;
use super::{CancelToken, Dense, LinalgError, rank_tolerance};

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
    /// Square and symmetric by the [`SYMMETRY_RTOL`](super::SYMMETRY_RTOL) rule.
    pub symmetric: bool,
    /// Sum of the diagonal; `Some` only for square `a`.
    pub trace: Option<f64>,
    /// Determinant via LU; `Some` only for square `a`.
    pub determinant: Option<f64>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::test_support::*;
    use crate::linalg::{DecompositionKind, decompose};
    use proptest::prelude::*;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

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
