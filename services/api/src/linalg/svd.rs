//! The thin singular value decomposition shared by solve and the SVD decomposition.

use faer::Mat;
use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::svd::{ComputeSvdVectors, svd, svd_scratch};

use super::layout::{par, scaled_copy};
use super::{Dense, LinalgError};

pub(super) struct Svd {
    pub(super) u: Mat<f64>,
    pub(super) s: Diag<f64>,
    pub(super) v: Mat<f64>,
}

/// Thin SVD of `2ᵏ·a` (singular values are *not* scaled back).
pub(super) fn thin_svd(a: &Dense, scale_exp: i32, operation: &'static str) -> Result<Svd, LinalgError> {
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
pub(super) fn not_converged(operation: &'static str) -> LinalgError {
    LinalgError::NoConvergence { operation }
}
