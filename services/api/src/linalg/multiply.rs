//! The matrix product.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef};

use super::layout::par;
use super::{CancelToken, Dense, LinalgError};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::test_support::*;
    use proptest::prelude::*;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn multiply_matches_the_reference_product((a, b) in (1..=12usize, 1..=12usize, 1..=12usize)
            .prop_flat_map(|(m, k, n)| (matrix(m, k), matrix(k, n)))) {
            assert_close(&multiply(&a, &b, &live()).unwrap(), &product(&a, &b), 1e-14);
        }
    }
}
