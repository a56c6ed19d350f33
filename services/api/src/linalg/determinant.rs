//! The determinant, from the LU factorization, without intermediate overflow.

use super::lu::LuWork;
use super::validation::require_square;
use super::{CancelToken, Dense, LinalgError};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::test_support::*;
    use proptest::prelude::*;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

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
    }
}
