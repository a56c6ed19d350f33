//! The partially pivoted LU factorization behind solve, invert, determinant and the LU decomposition.

use faer::MatRef;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::factor as lu;
use faer::perm::PermRef;

use super::layout::{ColMajor, par};
use super::scaling::{frexp, ldexp, max_abs, scale_exponent};
use super::{CancelToken, Dense, LinalgError, singularity_tolerance};

/// An LU factorization `P·(2ᵏ·a) = L·U` stored LAPACK-style in one
/// column-major buffer (strict lower part = L, upper part = U).
pub(super) struct LuWork {
    pub(super) work: ColMajor,
    /// `(P·x)[i] = x[perm_fwd[i]]`.
    pub(super) perm_fwd: Vec<usize>,
    pub(super) perm_bwd: Vec<usize>,
    pub(super) transpositions: usize,
    pub(super) scale_exp: i32,
}

impl LuWork {
    /// faer's blocked, partially pivoted LU of `2ᵏ·a`.
    pub(super) fn factor(a: &Dense) -> Self {
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
    pub(super) fn factor_unblocked(a: &Dense, cancel: &CancelToken) -> Result<Self, LinalgError> {
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

    pub(super) fn lu(&self) -> MatRef<'_, f64> {
        self.work.as_ref()
    }

    pub(super) fn perm(&self) -> PermRef<'_, usize> {
        PermRef::new_checked(&self.perm_fwd, &self.perm_bwd, self.work.rows)
    }

    pub(super) fn pivots(&self) -> impl Iterator<Item = f64> + '_ {
        let m = self.work.rows;
        (0..m.min(self.work.cols)).map(move |i| self.work.data[i * m + i])
    }

    /// An exactly-zero or non-finite pivot (after which faer's L holds NaNs).
    pub(super) fn has_degenerate_pivot(&self) -> bool {
        self.pivots().any(|d| d == 0.0 || !d.is_finite())
    }

    /// The documented singularity rule on U's diagonal.
    pub(super) fn is_singular(&self) -> bool {
        pivots_deficient(self.pivots(), self.work.rows.max(self.work.cols))
    }

    /// `sign(P) · Π u_ii · 2^(−n·k)` without intermediate overflow/underflow.
    pub(super) fn determinant(&self) -> f64 {
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
pub(super) fn pivots_deficient(pivots: impl Iterator<Item = f64>, dim: usize) -> bool {
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
pub(super) fn upper_part(mut data: Vec<f64>, cols: usize, scale: f64) -> Vec<f64> {
    for (i, row) in data.chunks_exact_mut(cols).enumerate() {
        let diagonal = i.min(cols);
        row[..diagonal].fill(0.0);
        for x in &mut row[diagonal..] {
            *x *= scale;
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::test_support::*;

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
}
