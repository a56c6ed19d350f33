//! The boundary between the wire and the domain: validates proto matrices into [`Dense`] and
//! converts results back (docs/contracts.md §2 status table; the answers are built by [`crate::error`]).

use axiom25_proto::matrix::v1::Matrix;
use tonic::Status;

use crate::error::{ApiError, Reason};
use crate::linalg::Dense;

/// Size limits every input matrix is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest row count.
    pub max_rows: u32,
    /// Largest column count.
    pub max_cols: u32,
}

/// Validates the matrix in request field `field` and takes its data without copying.
///
/// # Errors
/// INVALID_ARGUMENT for a missing matrix, a zero dimension, a `data` length that is not
/// rows·cols or a value that is not finite; RESOURCE_EXHAUSTED for a dimension above the limits.
/// Each with its [`Reason`] and the field at fault (see [`crate::error`]).
pub fn dense_from_proto(field: &str, matrix: Option<Matrix>, limits: Limits) -> Result<Dense, Status> {
    let Some(Matrix { rows, cols, data }) = matrix else {
        return Err(ApiError::new(Reason::MatrixMissing, format!("{field}: required matrix is missing"))
            .field(field)
            .into());
    };
    let shape = format!("{rows}x{cols}");
    if rows == 0 || cols == 0 {
        return Err(ApiError::new(
            Reason::ZeroDimension,
            format!("{field}: shape {rows}×{cols} has a zero dimension; rows and cols must be at least 1"),
        )
        .field(field)
        .meta("shape", shape)
        .into());
    }
    if rows > limits.max_rows || cols > limits.max_cols {
        return Err(ApiError::new(
            Reason::DimensionTooLarge,
            format!("{field}: shape {rows}×{cols} exceeds the limit of {}×{}", limits.max_rows, limits.max_cols),
        )
        .field(field)
        .meta("shape", shape)
        .meta("maxShape", format!("{}x{}", limits.max_rows, limits.max_cols))
        .into());
    }
    let expected = u64::from(rows) * u64::from(cols);
    if data.len() as u64 != expected {
        return Err(ApiError::new(
            Reason::DataLengthMismatch,
            format!("{field}: data has {} values but shape {rows}×{cols} needs {expected}", data.len()),
        )
        .field(format!("{field}.data"))
        .meta("shape", shape)
        .meta("length", data.len())
        .into());
    }
    if let Some(index) = data.iter().position(|value| !value.is_finite()) {
        let (row, col) = (index / cols as usize, index % cols as usize);
        return Err(ApiError::new(
            Reason::NonFiniteValue,
            format!("{field}: data[{index}] (row {row}, col {col}) is {}; every value must be finite", data[index]),
        )
        .field(format!("{field}.data[{index}]"))
        .meta("shape", shape)
        .element(row, col)
        .into());
    }
    Ok(Dense::new(rows as usize, cols as usize, data))
}

/// The wire form of a result.
#[must_use]
pub fn dense_to_proto(matrix: Dense) -> Matrix {
    // Shapes come from validated inputs (≤ the u32 limits), so they fit.
    let (rows, cols) = (matrix.rows() as u32, matrix.cols() as u32);
    Matrix { rows, cols, data: matrix.into_data() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    const LIMITS: Limits = Limits { max_rows: 4, max_cols: 4 };

    fn matrix(rows: u32, cols: u32, data: Vec<f64>) -> Option<Matrix> {
        Some(Matrix { rows, cols, data })
    }

    #[test]
    fn a_valid_matrix_converts_without_loss() {
        let dense = dense_from_proto("a", matrix(2, 2, vec![1.0, 2.0, 3.0, 4.0]), LIMITS).expect("valid");
        assert_eq!((dense.rows(), dense.cols(), dense.data()), (2, 2, &[1.0, 2.0, 3.0, 4.0][..]));
        assert_eq!(dense_to_proto(dense), Matrix { rows: 2, cols: 2, data: vec![1.0, 2.0, 3.0, 4.0] });
    }

    #[test]
    fn each_invalid_input_gets_its_code_and_names_the_field() {
        let cases = [
            (None, Code::InvalidArgument, "b: required"),
            (matrix(0, 2, vec![]), Code::InvalidArgument, "b: shape 0×2 has a zero dimension"),
            (matrix(5, 1, vec![0.0; 5]), Code::ResourceExhausted, "b: shape 5×1 exceeds the limit of 4×4"),
            (matrix(2, 2, vec![1.0; 3]), Code::InvalidArgument, "b: data has 3 values but shape 2×2 needs 4"),
            (matrix(1, 2, vec![1.0, f64::NAN]), Code::InvalidArgument, "b: data[1] (row 0, col 1) is NaN"),
            (matrix(2, 1, vec![f64::NEG_INFINITY, 1.0]), Code::InvalidArgument, "b: data[0] (row 0, col 0) is -inf"),
            (matrix(1, 1, vec![f64::INFINITY]), Code::InvalidArgument, "is inf"),
        ];
        for (input, code, text) in cases {
            let status = dense_from_proto("b", input, LIMITS).expect_err("invalid");
            assert_eq!(status.code(), code, "{}", status.message());
            assert!(status.message().contains(text), "{:?} lacks {text:?}", status.message());
        }
    }

    #[test]
    fn each_invalid_input_names_its_reason_and_field_path_in_the_details() {
        use tonic_types::StatusExt as _;
        let cases = [
            (None, "MATRIX_MISSING", "b"),
            (matrix(0, 2, vec![]), "ZERO_DIMENSION", "b"),
            (matrix(5, 1, vec![0.0; 5]), "DIMENSION_TOO_LARGE", "b"),
            (matrix(2, 2, vec![1.0; 3]), "DATA_LENGTH_MISMATCH", "b.data"),
            (matrix(2, 2, vec![1.0, 1.0, 1.0, f64::NAN]), "NON_FINITE_VALUE", "b.data[3]"),
        ];
        for (input, reason, field) in cases {
            let details = dense_from_proto("b", input, LIMITS).expect_err("invalid").get_error_details();
            let info = details.error_info().expect("ErrorInfo");
            assert_eq!((info.reason.as_str(), info.domain.as_str()), (reason, crate::error::DOMAIN));
            assert_eq!(info.metadata["field"], "b", "{reason}");
            assert_eq!(details.bad_request().expect("BadRequest").field_violations[0].field, field, "{reason}");
        }
        let nan = dense_from_proto("a", matrix(2, 2, vec![1.0, 1.0, 1.0, f64::NAN]), LIMITS).expect_err("NaN");
        let metadata = nan.get_error_details().error_info().expect("ErrorInfo").metadata.clone();
        assert_eq!((metadata["row"].as_str(), metadata["col"].as_str(), metadata["shape"].as_str()), ("1", "1", "2x2"));
    }
}
