//! Checks that `a` has the structure an operation needs (square, symmetric).

use super::scaling::max_abs;
use super::{CancelToken, Dense, LinalgError, SYMMETRY_RTOL};

pub(super) fn require_square(a: &Dense, operation: &'static str) -> Result<(), LinalgError> {
    if a.is_square() { Ok(()) } else { Err(LinalgError::NotSquare { operation, rows: a.rows, cols: a.cols }) }
}

pub(super) fn require_symmetric(a: &Dense, operation: &'static str, cancel: &CancelToken) -> Result<(), LinalgError> {
    require_square(a, operation)?;
    match first_asymmetry(a, cancel)? {
        None => Ok(()),
        Some((row, col)) => Err(LinalgError::NotSymmetric { operation, row, col }),
    }
}

/// The first pair `(i, j)`, `i < j`, in row-major order that breaks the
/// symmetry rule. `a` must be square.
pub(super) fn first_asymmetry(a: &Dense, cancel: &CancelToken) -> Result<Option<(usize, usize)>, LinalgError> {
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
