//! The inverse of a square non-singular matrix, from its LU factorization.

use faer::MatMut;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::inverse as lu_inverse;

use super::layout::par;
use super::lu::LuWork;
use super::scaling::scale_in_place;
use super::validation::require_square;
use super::{CancelToken, Dense, LinalgError};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::test_support::*;
    use proptest::prelude::*;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn inverse_times_a_is_the_identity_for_diagonally_dominant_a(a in dominant_matrix()) {
            let inv = invert(&a, &live()).unwrap();
            assert_close(&product(&a, &inv), &identity(a.rows()), 1e-13);
            assert_close(&product(&inv, &a), &identity(a.rows()), 1e-13);
        }
    }
}
