//! The row-major matrix every operation takes and returns, and its shape in error messages.

use faer::MatRef;

/// A dense row-major matrix of `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) data: Vec<f64>,
}

impl Dense {
    /// Wraps row-major `data` as a `rows×cols` matrix.
    ///
    /// # Panics
    ///
    /// If `data.len() != rows * cols`. Callers validate the request first.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Self {
        assert!(
            rows.checked_mul(cols) == Some(data.len()),
            "Dense::new: a {rows}×{cols} matrix needs rows·cols elements, got {}",
            data.len()
        );
        Self { rows, cols, data }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// Consumes the matrix, returning its row-major elements.
    pub fn into_data(self) -> Vec<f64> {
        self.data
    }

    /// Whether `rows == cols`.
    pub fn is_square(&self) -> bool {
        self.rows == self.cols
    }

    /// A zero-copy faer view of the matrix (row-major strides).
    pub(super) fn view(&self) -> MatRef<'_, f64> {
        MatRef::from_row_major_slice(&self.data, self.rows, self.cols)
    }

    pub(super) fn shape(&self) -> Shape {
        Shape(self.rows, self.cols)
    }
}

/// Formats a shape as `2×3` in error messages.
pub(super) struct Shape(usize, usize);

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}", self.0, self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::test_support::*;

    #[test]
    fn dense_new_keeps_shape_and_row_major_data() {
        let a = mat(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!((a.rows(), a.cols(), a.is_square()), (2, 3, false));
        assert_eq!(get(&a, 1, 0), 4.0);
        assert!(mat(2, 2, &[0.0; 4]).is_square());
        assert_eq!(a.into_data(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    #[should_panic(expected = "Dense::new")]
    fn dense_new_panics_when_the_data_length_does_not_match_the_shape() {
        let _ = Dense::new(2, 2, vec![1.0; 3]);
    }
}
