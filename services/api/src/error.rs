//! Every error answer of the api, built in this one place: the gRPC code, the human message
//! docs/contracts.md §2 promises, and the standard `google.rpc` details a caller reads instead of the
//! message (AIP-193): an `ErrorInfo` with a stable [`Reason`] in [`DOMAIN`], a `BadRequest` field
//! violation naming the request field at fault, and `RetryInfo` when the call may be retried.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

use crate::linalg::{Dense, LinalgError};

/// `ErrorInfo.domain` of every error the api answers.
pub const DOMAIN: &str = "matrix.axiom25";

/// How long a shed or refused call should wait before it is retried (`RetryInfo.retry_delay`):
/// about the time a slot takes to free up under load.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// The stable machine-readable reason of an error (`ErrorInfo.reason`). The strings never change;
/// new reasons may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A request matrix is absent.
    MatrixMissing,
    /// A matrix has zero rows or columns.
    ZeroDimension,
    /// `data` is not rows·cols long.
    DataLengthMismatch,
    /// A value is NaN or infinite.
    NonFiniteValue,
    /// The shapes of `a` and `b` do not fit the operation.
    ShapeMismatch,
    /// The operation needs a square `a`.
    NotSquare,
    /// The operation needs a symmetric `a`.
    NotSymmetric,
    /// Solve was given an `a` with fewer rows than columns.
    Underdetermined,
    /// `kind` is `DECOMPOSITION_UNSPECIFIED` or no known value.
    InvalidDecomposition,
    /// `a` is singular to working precision.
    SingularMatrix,
    /// `a` is symmetric but not positive definite.
    NotPositiveDefinite,
    /// A dimension is above the configured limit.
    DimensionTooLarge,
    /// The request message is above the configured limit.
    MessageTooLarge,
    /// The server is at its concurrency limit; retry after `RetryInfo`.
    Overloaded,
    /// The server is shutting down; retry (another replica) after `RetryInfo`.
    ShuttingDown,
    /// The client's deadline passed.
    DeadlineExceeded,
}

impl Reason {
    /// Every reason, for documentation and tests.
    pub const ALL: [Self; 16] = [
        Self::MatrixMissing,
        Self::ZeroDimension,
        Self::DataLengthMismatch,
        Self::NonFiniteValue,
        Self::ShapeMismatch,
        Self::NotSquare,
        Self::NotSymmetric,
        Self::Underdetermined,
        Self::InvalidDecomposition,
        Self::SingularMatrix,
        Self::NotPositiveDefinite,
        Self::DimensionTooLarge,
        Self::MessageTooLarge,
        Self::Overloaded,
        Self::ShuttingDown,
        Self::DeadlineExceeded,
    ];

    /// The UPPER_SNAKE string sent as `ErrorInfo.reason`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MatrixMissing => "MATRIX_MISSING",
            Self::ZeroDimension => "ZERO_DIMENSION",
            Self::DataLengthMismatch => "DATA_LENGTH_MISMATCH",
            Self::NonFiniteValue => "NON_FINITE_VALUE",
            Self::ShapeMismatch => "SHAPE_MISMATCH",
            Self::NotSquare => "NOT_SQUARE",
            Self::NotSymmetric => "NOT_SYMMETRIC",
            Self::Underdetermined => "UNDERDETERMINED",
            Self::InvalidDecomposition => "INVALID_DECOMPOSITION",
            Self::SingularMatrix => "SINGULAR_MATRIX",
            Self::NotPositiveDefinite => "NOT_POSITIVE_DEFINITE",
            Self::DimensionTooLarge => "DIMENSION_TOO_LARGE",
            Self::MessageTooLarge => "MESSAGE_TOO_LARGE",
            Self::Overloaded => "OVERLOADED",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
        }
    }

    /// The gRPC code every error of this reason has (docs/contracts.md §2).
    #[must_use]
    pub const fn code(self) -> Code {
        match self {
            Self::MatrixMissing
            | Self::ZeroDimension
            | Self::DataLengthMismatch
            | Self::NonFiniteValue
            | Self::ShapeMismatch
            | Self::NotSquare
            | Self::NotSymmetric
            | Self::Underdetermined
            | Self::InvalidDecomposition => Code::InvalidArgument,
            Self::SingularMatrix | Self::NotPositiveDefinite => Code::FailedPrecondition,
            Self::DimensionTooLarge | Self::MessageTooLarge => Code::ResourceExhausted,
            Self::Overloaded | Self::ShuttingDown => Code::Unavailable,
            Self::DeadlineExceeded => Code::DeadlineExceeded,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The shape of a matrix, written `2x3` in `ErrorInfo` metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
}

impl Shape {
    /// The shape of `matrix`.
    #[must_use]
    pub fn of(matrix: &Dense) -> Self {
        Self { rows: matrix.rows(), cols: matrix.cols() }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.rows, self.cols)
    }
}

/// The shapes of a computation's operands, for the details of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operands {
    /// Shape of `a`.
    pub a: Shape,
    /// Shape of `b`, for the operations that take one.
    pub b: Option<Shape>,
}

impl Operands {
    /// A computation on `a` alone.
    #[must_use]
    pub fn one(a: &Dense) -> Self {
        Self { a: Shape::of(a), b: None }
    }

    /// A computation on `a` and `b`.
    #[must_use]
    pub fn two(a: &Dense, b: &Dense) -> Self {
        Self { a: Shape::of(a), b: Some(Shape::of(b)) }
    }
}

/// An error answer: a [`Reason`], its message and its details. Becomes a [`Status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct ApiError {
    reason: Reason,
    message: String,
    field: Option<String>,
    metadata: HashMap<String, String>,
    retry_delay: Option<Duration>,
}

impl ApiError {
    /// An error of `reason` with the human `message` (which names the field and shape).
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into(), field: None, metadata: HashMap::new(), retry_delay: None }
    }

    /// Names the request field at fault: a `BadRequest` violation with the field path (`a`,
    /// `b.data`, `a.data[5]`, `kind`), and the top-level field as `field` metadata.
    pub fn field(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        let top = path.split(['.', '[']).next().unwrap_or_default().to_owned();
        self.field = Some(path);
        self.meta("field", top)
    }

    /// Adds `key` (lowerCamelCase) to the `ErrorInfo` metadata.
    pub fn meta(mut self, key: &str, value: impl ToString) -> Self {
        self.metadata.insert(key.to_owned(), value.to_string());
        self
    }

    /// Names the element at fault: `row` and `col` metadata.
    pub fn element(self, row: usize, col: usize) -> Self {
        self.meta("row", row).meta("col", col)
    }

    /// Asks the caller to retry after `delay` (`RetryInfo`).
    pub const fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_delay = Some(delay);
        self
    }

    /// The reason.
    #[must_use]
    pub const fn reason(&self) -> Reason {
        self.reason
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let ApiError { reason, message, field, metadata, retry_delay } = error;
        let mut details = ErrorDetails::new();
        details.set_error_info(reason.as_str(), DOMAIN, metadata);
        if let Some(field) = field {
            let mut violation = FieldViolation::new(field, message.clone());
            violation.reason = reason.as_str().to_owned();
            details.set_bad_request(vec![violation]);
        }
        if retry_delay.is_some() {
            details.set_retry_info(retry_delay);
        }
        Self::with_error_details(reason.code(), message, details)
    }
}

/// The answer for a domain error of a computation on `operands`.
#[must_use]
pub fn linalg_status(error: LinalgError, operands: Operands) -> Status {
    let message = error.to_string();
    let a_shape = operands.a;
    let error = match error {
        LinalgError::ShapeMismatch { .. } => {
            // Both shape rules (multiply's a.cols == b.rows, solve's b.rows == a.rows) are about
            // whether b fits a: b is the operand at fault.
            let error = ApiError::new(Reason::ShapeMismatch, message).field("b").meta("aShape", a_shape);
            match operands.b {
                Some(b) => error.meta("shape", b),
                None => error,
            }
        }
        LinalgError::NotSquare { operation, .. } => {
            ApiError::new(Reason::NotSquare, message).field("a").meta("shape", a_shape).meta("operation", operation)
        }
        LinalgError::NotSymmetric { operation, row, col } => ApiError::new(Reason::NotSymmetric, message)
            .field(format!("a.data[{}]", row * a_shape.cols + col))
            .meta("shape", a_shape)
            .meta("operation", operation)
            .element(row, col),
        LinalgError::Underdetermined { .. } => {
            ApiError::new(Reason::Underdetermined, message).field("a").meta("shape", a_shape)
        }
        LinalgError::Singular { operation } => ApiError::new(Reason::SingularMatrix, message)
            .field("a")
            .meta("shape", a_shape)
            .meta("operation", operation),
        LinalgError::NotPositiveDefinite => {
            ApiError::new(Reason::NotPositiveDefinite, message).field("a").meta("shape", a_shape)
        }
        LinalgError::Cancelled => return Status::cancelled(message),
        LinalgError::NoConvergence { .. } => {
            tracing::error!(%message, "Computation failed");
            return Status::internal(message);
        }
    };
    error.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operands(a: (usize, usize), b: Option<(usize, usize)>) -> Operands {
        let shape = |(rows, cols)| Shape { rows, cols };
        Operands { a: shape(a), b: b.map(shape) }
    }

    #[test]
    fn reasons_are_unique_upper_snake_and_have_the_contract_s_codes() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            let text = reason.as_str();
            assert!(text.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "{text}");
            assert!(seen.insert(text), "{text} twice");
        }
        assert_eq!(Reason::SingularMatrix.code(), Code::FailedPrecondition);
        assert_eq!(Reason::DimensionTooLarge.code(), Code::ResourceExhausted);
        assert_eq!(Reason::Overloaded.code(), Code::Unavailable);
    }

    #[test]
    fn a_status_carries_error_info_the_field_violation_and_retry_info() {
        let status: Status = ApiError::new(Reason::NonFiniteValue, "b: data[1] (row 1, col 0) is NaN")
            .field("b.data[1]")
            .element(1, 0)
            .retry_after(Duration::from_millis(1500))
            .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "b: data[1] (row 1, col 0) is NaN");
        let details = status.get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("NON_FINITE_VALUE", DOMAIN));
        let metadata = |key: &str| info.metadata.get(key).map(String::as_str);
        assert_eq!((metadata("field"), metadata("row"), metadata("col")), (Some("b"), Some("1"), Some("0")));
        let violations = &details.bad_request().expect("BadRequest").field_violations;
        assert_eq!(violations.len(), 1);
        assert_eq!((violations[0].field.as_str(), violations[0].reason.as_str()), ("b.data[1]", "NON_FINITE_VALUE"));
        assert_eq!(violations[0].description, status.message());
        assert_eq!(details.retry_info().expect("RetryInfo").retry_delay, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn without_a_field_there_is_no_bad_request_and_without_a_delay_no_retry_info() {
        let status: Status = ApiError::new(Reason::MessageTooLarge, "too large").into();
        let details = status.get_error_details();
        assert!(details.bad_request().is_none() && details.retry_info().is_none());
        assert_eq!(details.error_info().expect("ErrorInfo").reason, "MESSAGE_TOO_LARGE");
    }

    #[test]
    fn domain_errors_name_the_field_and_shapes_at_fault() {
        let status = linalg_status(LinalgError::ShapeMismatch { message: "x".into() }, operands((2, 3), Some((2, 2))));
        let details = status.get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "SHAPE_MISMATCH");
        assert_eq!((info.metadata["shape"].as_str(), info.metadata["aShape"].as_str()), ("2x2", "2x3"));
        assert_eq!(details.bad_request().expect("BadRequest").field_violations[0].field, "b");

        let status = linalg_status(
            LinalgError::NotSymmetric { operation: "eigendecomposition", row: 1, col: 2 },
            operands((3, 3), None),
        );
        let details = status.get_error_details();
        assert_eq!(details.bad_request().expect("BadRequest").field_violations[0].field, "a.data[5]");
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!((info.metadata["row"].as_str(), info.metadata["col"].as_str()), ("1", "2"));

        let status = linalg_status(LinalgError::Singular { operation: "invert" }, operands((2, 2), None));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.get_error_details().error_info().expect("ErrorInfo").reason, "SINGULAR_MATRIX");
        assert!(status.message().contains("singular"), "the human message stays");
    }

    #[test]
    fn cancellation_and_server_faults_carry_no_client_reason() {
        let cancelled = linalg_status(LinalgError::Cancelled, operands((1, 1), None));
        assert_eq!(cancelled.code(), Code::Cancelled);
        let fault = linalg_status(LinalgError::NoConvergence { operation: "svd" }, operands((1, 1), None));
        assert_eq!(fault.code(), Code::Internal);
        assert!(fault.get_error_details().error_info().is_none());
    }

    #[test]
    fn the_gateway_docs_list_every_reason_with_its_code() {
        let docs = include_str!("../../../docs/ui-gateway.md");
        for reason in Reason::ALL {
            let code = format!("{:?}", reason.code());
            let row = docs
                .lines()
                .find(|line| line.starts_with(&format!("| `{reason}` |")))
                .unwrap_or_else(|| panic!("docs/ui-gateway.md has no row for {reason}"));
            let upper_snake: String = code
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    let lead = (i > 0 && c.is_ascii_uppercase()).then_some('_');
                    lead.into_iter().chain(std::iter::once(c.to_ascii_uppercase()))
                })
                .collect();
            assert!(row.contains(&upper_snake), "{reason}'s row does not say {upper_snake}: {row}");
        }
    }
}
