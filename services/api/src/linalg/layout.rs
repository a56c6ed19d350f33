//! Row-major and column-major copies and views of matrices, and the parallelism of faer calls.

use faer::{MatMut, MatRef, Par};

use super::Dense;
use super::scaling::scale_in_place;

pub(super) fn par() -> Par {
    faer::get_global_parallelism()
}

/// A column-major working copy (element `(i, j)` at `data[j * rows + i]`).
pub(super) struct ColMajor {
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) data: Vec<f64>,
}

impl ColMajor {
    /// Transposes `2^scale_exp · a` into column-major order in one pass.
    pub(super) fn from_dense(a: &Dense, scale_exp: i32) -> Self {
        let (m, n) = (a.rows, a.cols);
        let mut data = vec![0.0; m * n];
        transpose_into(&a.data, m, n, &mut data);
        scale_in_place(&mut data, scale_exp);
        Self { rows: m, cols: n, data }
    }

    pub(super) fn as_ref(&self) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.data, self.rows, self.cols)
    }

    /// The same matrix in row-major order (one blocked transpose).
    pub(super) fn to_row_major(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.data.len()];
        // Column-major rows×cols data is the row-major cols×rows transpose.
        transpose_into(&self.data, self.cols, self.rows, &mut out);
        out
    }

    pub(super) fn as_mut(&mut self) -> MatMut<'_, f64> {
        MatMut::from_column_major_slice_mut(&mut self.data, self.rows, self.cols)
    }
}

/// `Some(column-major 2ᵏ·a)` when `a` needs rescaling, `None` otherwise (use
/// the zero-copy view).
pub(super) fn scaled_copy(a: &Dense, scale_exp: i32) -> Option<ColMajor> {
    (scale_exp != 0).then(|| ColMajor::from_dense(a, scale_exp))
}

/// `src` is `rows×cols` row-major; writes it column-major into `dst`
/// (equivalently, writes the `cols×rows` transpose row-major). Cache-blocked.
pub(super) fn transpose_into(src: &[f64], rows: usize, cols: usize, dst: &mut [f64]) {
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
pub(super) fn dense_from(mat: MatRef<'_, f64>) -> Dense {
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
