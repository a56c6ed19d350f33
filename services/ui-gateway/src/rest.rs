//! The REST API of docs/contracts.md §3: `POST /api/v1/matrix/{op}` translated to `MatrixService` calls,
//! and its OpenAPI 3.1 document, generated from these handlers by utoipa so it cannot drift.

use std::collections::BTreeMap;
use std::fmt;

use axiom25_proto::matrix::v1 as pb;
use axum::Json;
use axum::extract::{Request, State};
use bytes::Bytes;
use http::{StatusCode, header};
use http_body_util::{BodyExt as _, Limited};
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use tonic::Code;
use tonic_types::StatusExt as _;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::backend::{Backend, BackendError};
use crate::problem::{Problem, ProblemSchema};
use crate::settings::LimitSettings;

/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// What the REST handlers share.
#[derive(Debug, Clone)]
pub struct RestState {
    backend: Backend,
    limits: LimitSettings,
}

impl RestState {
    /// Handlers calling `backend` under `limits`.
    #[must_use]
    pub fn new(backend: Backend, limits: &LimitSettings) -> Self {
        Self { backend, limits: limits.clone() }
    }
}

/// A matrix in JSON: an array of rows of equal length, e.g. `[[1, 2], [3, 4]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonMatrix(pub pb::Matrix);

impl utoipa::PartialSchema for JsonMatrix {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
        let row = ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::Number)).min_items(Some(1));
        ArrayBuilder::new()
            .items(row)
            .min_items(Some(1))
            .description(Some("Rows of equal length, each an array of numbers"))
            .examples([serde_json::json!([[1.0, 2.0], [3.0, 4.0]])])
            .into()
    }
}

impl ToSchema for JsonMatrix {}

impl<'de> Deserialize<'de> for JsonMatrix {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(RowsVisitor)
    }
}

struct RowsVisitor;

impl<'de> Visitor<'de> for RowsVisitor {
    type Value = JsonMatrix;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array of rows, each an array of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut rows: A) -> Result<JsonMatrix, A::Error> {
        let mut data = Vec::new();
        let mut cols: Option<usize> = None;
        let mut count = 0_usize;
        while let Some(len) = rows.next_element_seed(RowSeed { data: &mut data, row: count })? {
            match cols {
                None if len == 0 => {
                    return Err(de::Error::custom("row 0 is empty; a matrix needs at least one column"));
                }
                None => cols = Some(len),
                Some(first) if first != len => {
                    return Err(de::Error::custom(format!(
                        "row {count} has {len} values but row 0 has {first}; rows must be equally long"
                    )));
                }
                Some(_) => {}
            }
            count += 1;
        }
        let Some(cols) = cols else { return Err(de::Error::custom("a matrix needs at least one row")) };
        let (Ok(rows), Ok(cols)) = (u32::try_from(count), u32::try_from(cols)) else {
            return Err(de::Error::custom("the matrix has more rows or columns than a matrix can have"));
        };
        Ok(JsonMatrix(pb::Matrix { rows, cols, data }))
    }
}

/// Appends one row's numbers to the matrix data; yields the row's length.
struct RowSeed<'a> {
    data: &'a mut Vec<f64>,
    row: usize,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = usize;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "row {} as an array of numbers", self.row)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut values: A) -> Result<usize, A::Error> {
        let before = self.data.len();
        while let Some(value) = values.next_element::<f64>()? {
            self.data.push(value);
        }
        Ok(self.data.len() - before)
    }
}

/// Rows of a result matrix.
type Rows = Vec<Vec<f64>>;

fn rows_of(field: &str, matrix: Option<pb::Matrix>) -> Result<Rows, Problem> {
    let matrix = matrix.ok_or_else(|| bad_gateway(&format!("the api's answer has no {field}")))?;
    let cols = matrix.cols as usize;
    if cols == 0 || matrix.data.len() != matrix.rows as usize * cols {
        return Err(bad_gateway(&format!(
            "the api's {field} has {} values for shape {}×{cols}",
            matrix.data.len(),
            matrix.rows
        )));
    }
    if let Some(index) = matrix.data.iter().position(|value| !value.is_finite()) {
        return Err(overflow(&format!("{field}[{}][{}]", index / cols, index % cols)));
    }
    Ok(matrix.data.chunks(cols).map(<[f64]>::to_vec).collect())
}

fn overflow(what: &str) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "overflow",
        "Result out of range",
        format!("{what} is not a finite double (the computation overflowed); scale the input down"),
    )
}

fn bad_gateway(detail: &str) -> Problem {
    Problem::new(StatusCode::BAD_GATEWAY, "bad-gateway", "Bad Gateway", detail)
}

/// Body of `multiply` and `solve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TwoMatrices {
    /// Left operand (multiply) or coefficient matrix (solve).
    pub a: JsonMatrix,
    /// Right operand (multiply) or right-hand side (solve).
    pub b: JsonMatrix,
}

/// Body of `invert`, `determinant` and `analyze`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OneMatrix {
    /// The matrix.
    pub a: JsonMatrix,
}

/// A decomposition of `decompose`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// p·a = l·u (factors `p`, `l`, `u`).
    Lu,
    /// a = q·r (factors `q`, `r`).
    Qr,
    /// a = l·lᵀ of a symmetric positive-definite a (factor `l`).
    Cholesky,
    /// a = u·diag(s)·vᵀ, thin (factors `u`, `s`, `v`).
    Svd,
    /// Of a symmetric a: `values` ascending, `vectors` one per column.
    Eigen,
}

impl From<Kind> for pb::Decomposition {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Lu => Self::Lu,
            Kind::Qr => Self::Qr,
            Kind::Cholesky => Self::Cholesky,
            Kind::Svd => Self::Svd,
            Kind::Eigen => Self::Eigen,
        }
    }
}

/// Body of `decompose`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecomposeBody {
    /// The matrix.
    pub a: JsonMatrix,
    /// Which decomposition.
    pub kind: Kind,
}

/// A matrix result.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatrixResult {
    /// The result, as rows.
    pub result: Rows,
}

/// A scalar result.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValueResult {
    /// The value.
    pub value: f64,
}

/// The factors of a decomposition, by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct Factors {
    /// Factor name (as in gRPC) to matrix.
    pub factors: BTreeMap<String, Rows>,
}

/// Properties of a matrix. `null` where a value is not defined (trace and determinant of a
/// non-square matrix) or infinite (the condition number of a singular matrix).
#[derive(Debug, Serialize, ToSchema)]
pub struct Analysis {
    /// Row count.
    pub rows: u32,
    /// Column count.
    pub cols: u32,
    /// Numerical rank.
    pub rank: u32,
    /// Frobenius norm.
    pub frobenius_norm: Option<f64>,
    /// 2-norm condition number; `null` when infinite (singular).
    pub condition_number: Option<f64>,
    /// Whether a equals its transpose.
    pub symmetric: bool,
    /// Trace of a square matrix.
    pub trace: Option<f64>,
    /// Determinant of a square matrix.
    pub determinant: Option<f64>,
}

/// Error answers every operation may give.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ErrorResponses {
    /// Malformed JSON, ragged rows, a value that is not a number, shapes that do not fit.
    #[response(status = 400, content_type = "application/problem+json", headers(("x-trace-id" = String, description = "Trace of this request")))]
    BadRequest(#[to_schema] ProblemSchema),
    /// Missing or invalid API key (only when keys are configured).
    #[response(status = 401, content_type = "application/problem+json", headers(("x-trace-id" = String, description = "Trace of this request"), ("www-authenticate" = String, description = "Bearer")))]
    Unauthorized(ProblemSchema),
    /// Body or matrix over the limits.
    #[response(status = 413, content_type = "application/problem+json", headers(("x-trace-id" = String, description = "Trace of this request")))]
    TooLarge(ProblemSchema),
    /// The body is not JSON.
    #[response(status = 415, content_type = "application/problem+json", headers(("x-trace-id" = String, description = "Trace of this request")))]
    UnsupportedMediaType(ProblemSchema),
    /// Singular, not positive definite, or a result that overflows.
    #[response(status = 422, content_type = "application/problem+json", headers(("x-trace-id" = String, description = "Trace of this request")))]
    Unprocessable(ProblemSchema),
    /// Over the request rate.
    #[response(status = 429, content_type = "application/problem+json", headers(("x-trace-id" = String, description = "Trace of this request"), ("retry-after" = u64, description = "Seconds to wait")))]
    TooManyRequests(ProblemSchema),
    /// The api answered with an unexpected error.
    #[response(status = 502, content_type = "application/problem+json", headers(("x-trace-id" = String, description = "Trace of this request")))]
    BadGateway(ProblemSchema),
    /// The api is unavailable or shedding load.
    #[response(status = 503, content_type = "application/problem+json", headers(("x-trace-id" = String, description = "Trace of this request"), ("retry-after" = u64, description = "Seconds to wait")))]
    Unavailable(ProblemSchema),
    /// The api did not answer within the deadline.
    #[response(status = 504, content_type = "application/problem+json", headers(("x-trace-id" = String, description = "Trace of this request")))]
    GatewayTimeout(ProblemSchema),
}

/// Reads and decodes a JSON body: 415 unless JSON, 413 over the limit, 400 naming the place of
/// the first problem.
async fn json_body<T: for<'de> Deserialize<'de>>(limits: &LimitSettings, request: Request) -> Result<T, Problem> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase())
        .is_some_and(|essence| {
            essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
        });
    if !is_json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported Media Type",
            "the body must be JSON, sent with Content-Type: application/json",
        ));
    }
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Content Too Large",
            format!("the body is over the limit of {} bytes", limits.max_body_bytes),
        )
    };
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_body_bytes as u64) {
        return Err(too_large());
    }
    let body: Bytes = match Limited::new(request.into_body(), limits.max_body_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(error) => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-body",
                "Bad Request",
                format!("reading the body failed: {error}"),
            ));
        }
    };
    let mut deserializer = serde_json::Deserializer::from_slice(&body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let pointer = json_pointer(error.path());
        body_problem(&pointer, &error.into_inner())
    })?;
    deserializer.end().map_err(|error| body_problem("", &error))?;
    Ok(value)
}

fn body_problem(pointer: &str, error: &serde_json::Error) -> Problem {
    let (slug, title) = if error.is_syntax() || error.is_eof() {
        ("invalid-json", "Malformed JSON")
    } else {
        ("invalid-body", "Invalid request body")
    };
    let at = if pointer.is_empty() { String::new() } else { format!("{pointer}: ") };
    // serde_json appends " at line L column C"; kept, it locates the problem in the text.
    let problem = Problem::new(StatusCode::BAD_REQUEST, slug, title, format!("{at}{error}"));
    if pointer.is_empty() { problem } else { problem.at(pointer) }
}

fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(format!("/{index}")),
            Segment::Map { key } => Some(format!("/{}", key.replace('~', "~0").replace('/', "~1"))),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

/// 413 for a matrix over the configured shape limits.
fn check_shape(limits: &LimitSettings, field: &str, matrix: &JsonMatrix) -> Result<(), Problem> {
    let (rows, cols) = (matrix.0.rows as usize, matrix.0.cols as usize);
    if rows > limits.max_rows || cols > limits.max_cols {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Matrix too large",
            format!("{field}: shape {rows}×{cols} exceeds the limit of {}×{}", limits.max_rows, limits.max_cols),
        )
        .at(format!("/{field}")));
    }
    Ok(())
}

/// The REST answer for an api failure.
fn problem_from(error: BackendError) -> Problem {
    match error {
        BackendError::NoEndpoint { reason, retry_after } => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "backend-unavailable",
            "Service Unavailable",
            format!("the api is unavailable: {reason}"),
        )
        .retry_after(retry_after),
        BackendError::Deadline(after) => Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "deadline-exceeded",
            "Gateway Timeout",
            format!("the api did not answer within {} ms", after.as_millis()),
        ),
        BackendError::Status(status) => problem_from_status(&status),
    }
}

/// The REST answer for an api error status. The code chooses the HTTP status; the `google.rpc`
/// details, never the message text, give the `pointer` (the `BadRequest` field violation, down to
/// the element when `ErrorInfo` names its row and column), the `detail` (the violation's
/// description) and the `reason`, and `RetryInfo` gives `Retry-After`.
fn problem_from_status(status: &tonic::Status) -> Problem {
    let details = status.get_error_details();
    let violation = details.bad_request().and_then(|bad_request| bad_request.field_violations.first());
    let info = details.error_info();
    let detail = violation.map_or_else(|| status.message().to_owned(), |violation| violation.description.clone());
    let problem = match status.code() {
        Code::InvalidArgument => Problem::new(StatusCode::BAD_REQUEST, "invalid-argument", "Invalid matrix", detail),
        Code::FailedPrecondition => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", "Unprocessable matrix", detail)
        }
        Code::ResourceExhausted => Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "Matrix too large", detail),
        Code::Unavailable => {
            let retry_after = details.retry_info().and_then(|retry| retry.retry_delay).unwrap_or(DEFAULT_RETRY_AFTER);
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "backend-unavailable",
                "Service Unavailable",
                format!("the api is unavailable: {detail}"),
            )
            .retry_after(retry_after)
        }
        Code::DeadlineExceeded => {
            Problem::new(StatusCode::GATEWAY_TIMEOUT, "deadline-exceeded", "Gateway Timeout", detail)
        }
        code => return bad_gateway(&format!("the api failed with {code:?}: {}", status.message())),
    };
    let problem = match info {
        Some(info) if !info.reason.is_empty() => problem.because(info.reason.clone()),
        _ => problem,
    };
    match violation.and_then(|violation| pointer_of(&violation.field, info.map(|info| &info.metadata))) {
        Some(pointer) => problem.at(pointer),
        None => problem,
    }
}

/// `Retry-After` of a 503 from an api that gave no `RetryInfo`.
const DEFAULT_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The JSON pointer into the REST body of a gRPC field path (`a`, `b.data[3]`, `kind`): the REST
/// body names its members as the gRPC request does, and a matrix's element is `/{field}/{row}/{col}`
/// when the `ErrorInfo` metadata names its `row` and `col`.
fn pointer_of(field_path: &str, metadata: Option<&std::collections::HashMap<String, String>>) -> Option<String> {
    let top = field_path.split(['.', '[']).next().filter(|top| matches!(*top, "a" | "b" | "kind"))?;
    let index = |key: &str| metadata?.get(key)?.parse::<u32>().ok();
    Some(match (index("row"), index("col")) {
        (Some(row), Some(col)) if top != "kind" => format!("/{top}/{row}/{col}"),
        _ => format!("/{top}"),
    })
}

impl RestState {
    /// Calls the api; its failures become the contract's problems.
    async fn call<Req, Resp, F, Fut>(&self, request: Req, call: F) -> Result<Resp, Problem>
    where
        Req: Clone,
        F: Fn(crate::backend::MatrixClient, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        self.backend.call(request, call).await.map_err(problem_from)
    }

    /// Reads `{"a": M, "b": M}` with both matrices within the shape limits.
    async fn two_matrices(&self, request: Request) -> Result<(pb::Matrix, pb::Matrix), Problem> {
        let TwoMatrices { a, b } = json_body(&self.limits, request).await?;
        check_shape(&self.limits, "a", &a)?;
        check_shape(&self.limits, "b", &b)?;
        Ok((a.0, b.0))
    }

    /// Reads `{"a": M}` with the matrix within the shape limits.
    async fn one_matrix(&self, request: Request) -> Result<pb::Matrix, Problem> {
        let OneMatrix { a } = json_body(&self.limits, request).await?;
        check_shape(&self.limits, "a", &a)?;
        Ok(a.0)
    }
}

fn matrix_result(matrix: Option<pb::Matrix>) -> Result<Json<MatrixResult>, Problem> {
    Ok(Json(MatrixResult { result: rows_of("result", matrix)? }))
}

/// Multiplies a·b (requires a.cols == b.rows).
#[utoipa::path(post, path = "/api/v1/matrix/multiply", tag = "matrix", request_body = TwoMatrices,
    responses((status = 200, description = "a·b", body = MatrixResult, headers(("x-trace-id" = String, description = "Trace of this request"))), ErrorResponses))]
async fn multiply(State(state): State<RestState>, request: Request) -> Result<Json<MatrixResult>, Problem> {
    let (a, b) = state.two_matrices(request).await?;
    let request = pb::MultiplyRequest { a: Some(a), b: Some(b) };
    let answer = state.call(request, |mut client, request| async move { client.multiply(request).await }).await?;
    matrix_result(answer.result)
}

/// Solves a·X = b: exactly for a square a, in the least-squares sense for a tall a.
#[utoipa::path(post, path = "/api/v1/matrix/solve", tag = "matrix", request_body = TwoMatrices,
    responses((status = 200, description = "X", body = MatrixResult, headers(("x-trace-id" = String, description = "Trace of this request"))), ErrorResponses))]
async fn solve(State(state): State<RestState>, request: Request) -> Result<Json<MatrixResult>, Problem> {
    let (a, b) = state.two_matrices(request).await?;
    let request = pb::SolveRequest { a: Some(a), b: Some(b) };
    let answer = state.call(request, |mut client, request| async move { client.solve(request).await }).await?;
    matrix_result(answer.result)
}

/// Inverts a square, non-singular a.
#[utoipa::path(post, path = "/api/v1/matrix/invert", tag = "matrix", request_body = OneMatrix,
    responses((status = 200, description = "a⁻¹", body = MatrixResult, headers(("x-trace-id" = String, description = "Trace of this request"))), ErrorResponses))]
async fn invert(State(state): State<RestState>, request: Request) -> Result<Json<MatrixResult>, Problem> {
    let request = pb::InvertRequest { a: Some(state.one_matrix(request).await?) };
    let answer = state.call(request, |mut client, request| async move { client.invert(request).await }).await?;
    matrix_result(answer.result)
}

/// The determinant of a square a.
#[utoipa::path(post, path = "/api/v1/matrix/determinant", tag = "matrix", request_body = OneMatrix,
    responses((status = 200, description = "det(a)", body = ValueResult, headers(("x-trace-id" = String, description = "Trace of this request"))), ErrorResponses))]
async fn determinant(State(state): State<RestState>, request: Request) -> Result<Json<ValueResult>, Problem> {
    let request = pb::DeterminantRequest { a: Some(state.one_matrix(request).await?) };
    let answer = state.call(request, |mut client, request| async move { client.determinant(request).await }).await?;
    if answer.value.is_finite() { Ok(Json(ValueResult { value: answer.value })) } else { Err(overflow("value")) }
}

/// Decomposes a: LU, QR, Cholesky, thin SVD, or the symmetric eigendecomposition.
#[utoipa::path(post, path = "/api/v1/matrix/decompose", tag = "matrix", request_body = DecomposeBody,
    responses((status = 200, description = "The factors", body = Factors, headers(("x-trace-id" = String, description = "Trace of this request"))), ErrorResponses))]
async fn decompose(State(state): State<RestState>, request: Request) -> Result<Json<Factors>, Problem> {
    let DecomposeBody { a, kind } = json_body(&state.limits, request).await?;
    check_shape(&state.limits, "a", &a)?;
    let request = pb::DecomposeRequest { a: Some(a.0), kind: pb::Decomposition::from(kind).into() };
    let answer = state.call(request, |mut client, request| async move { client.decompose(request).await }).await?;
    let mut factors = BTreeMap::new();
    for (name, matrix) in answer.factors {
        let rows = rows_of(&name, Some(matrix))?;
        factors.insert(name, rows);
    }
    Ok(Json(Factors { factors }))
}

/// Rank, norms, condition number, symmetry, trace and determinant of a.
#[utoipa::path(post, path = "/api/v1/matrix/analyze", tag = "matrix", request_body = OneMatrix,
    responses((status = 200, description = "The analysis", body = Analysis, headers(("x-trace-id" = String, description = "Trace of this request"))), ErrorResponses))]
async fn analyze(State(state): State<RestState>, request: Request) -> Result<Json<Analysis>, Problem> {
    let request = pb::AnalyzeRequest { a: Some(state.one_matrix(request).await?) };
    let answer = state.call(request, |mut client, request| async move { client.analyze(request).await }).await?;
    let finite = |value: f64| value.is_finite().then_some(value);
    Ok(Json(Analysis {
        rows: answer.rows,
        cols: answer.cols,
        rank: answer.rank,
        frobenius_norm: finite(answer.frobenius_norm),
        condition_number: finite(answer.condition_number),
        symmetric: answer.symmetric,
        trace: answer.trace.and_then(finite),
        determinant: answer.determinant.and_then(finite),
    }))
}

/// The document's fixed parts; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(title = "AXIOM-25 Matrix REST API", description = "Dense linear algebra over HTTP (docs/contracts.md §3). Errors are RFC 9457 problem documents."),
    modifiers(&Security),
    components(schemas(ProblemSchema)),
    security((), ("bearer" = []), ("apiKey" = [])),
    tags((name = "matrix", description = "Matrix operations"))
)]
struct ApiDoc;

/// Declares the two ways to send an API key (needed only when the gateway has keys configured).
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(crate::security::API_KEY_HEADER))),
        );
    }
}

/// The matrix routes and their document.
pub fn router(state: RestState) -> OpenApiRouter {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(multiply))
        .routes(routes!(solve))
        .routes(routes!(invert))
        .routes(routes!(determinant))
        .routes(routes!(decompose))
        .routes(routes!(analyze))
        .with_state(state)
}

/// Serves the document at [`OPENAPI_PATH`].
pub fn openapi_router(mut openapi: utoipa::openapi::OpenApi) -> axum::Router {
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let document: Bytes = openapi.to_json().map(Bytes::from).unwrap_or_default();
    axum::Router::new().route(
        OPENAPI_PATH,
        axum::routing::get(async move || ([(header::CONTENT_TYPE, "application/json")], document.clone())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TwoMatrices, (String, String)> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|error| (json_pointer(error.path()), error.into_inner().to_string()))
    }

    #[test]
    fn rows_become_a_row_major_matrix() {
        let body = parse(r#"{"a": [[1, 2.5], [3, -4e2]], "b": [[7]]}"#).unwrap();
        assert_eq!(body.a.0, pb::Matrix { rows: 2, cols: 2, data: vec![1.0, 2.5, 3.0, -400.0] });
        assert_eq!(body.b.0, pb::Matrix { rows: 1, cols: 1, data: vec![7.0] });
    }

    #[test]
    fn a_ragged_row_is_named_with_both_lengths() {
        let (pointer, message) = parse(r#"{"a": [[1, 2], [3, 4], [5]], "b": [[1]]}"#).unwrap_err();
        assert_eq!(pointer, "/a");
        assert!(message.starts_with("row 2 has 1 values but row 0 has 2"), "{message}");
    }

    #[test]
    fn a_value_that_is_not_a_number_is_located() {
        let (pointer, message) = parse(r#"{"a": [[1, 2], [3, "x"]], "b": [[1]]}"#).unwrap_err();
        assert_eq!(pointer, "/a/1/1");
        assert!(message.contains("invalid type: string \"x\", expected f64"), "{message}");
    }

    #[test]
    fn empty_matrices_and_rows_are_refused() {
        assert!(parse(r#"{"a": [], "b": [[1]]}"#).unwrap_err().1.starts_with("a matrix needs at least one row"));
        assert!(parse(r#"{"a": [[]], "b": [[1]]}"#).unwrap_err().1.starts_with("row 0 is empty"));
        assert_eq!(parse(r#"{"a": [[1]], "b": [[1], 2]}"#).unwrap_err().0, "/b/1");
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        assert!(parse(r#"{"a": [[1]], "b": [[1]], "c": 1}"#).unwrap_err().1.contains("unknown field `c`"));
        assert!(parse(r#"{"a": [[1]]}"#).unwrap_err().1.contains("missing field `b`"));
    }

    /// A status as the api builds it: `ErrorInfo` with `reason` and `metadata`, and a
    /// `BadRequest` violation of `field` when one is given.
    fn detailed(
        code: Code,
        message: &str,
        reason: &str,
        field: Option<&str>,
        metadata: &[(&str, &str)],
    ) -> tonic::Status {
        let mut details = tonic_types::ErrorDetails::new();
        let metadata: std::collections::HashMap<String, String> =
            metadata.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
        details.set_error_info(reason, "matrix.axiom25", metadata);
        if let Some(field) = field {
            details.add_bad_request_violation(field, format!("{field} is at fault: {message}"));
        }
        tonic::Status::with_error_details(code, message, details)
    }

    #[test]
    fn api_statuses_become_the_contract_s_http_statuses() {
        let cases = [
            (detailed(Code::InvalidArgument, "zero", "ZERO_DIMENSION", Some("a"), &[]), 400, Some("/a")),
            (detailed(Code::InvalidArgument, "misfit", "SHAPE_MISMATCH", Some("b"), &[]), 400, Some("/b")),
            (detailed(Code::FailedPrecondition, "singular", "SINGULAR_MATRIX", Some("a"), &[]), 422, Some("/a")),
            (detailed(Code::ResourceExhausted, "big", "DIMENSION_TOO_LARGE", Some("a"), &[]), 413, Some("/a")),
            (detailed(Code::ResourceExhausted, "big", "MESSAGE_TOO_LARGE", None, &[]), 413, None),
            (detailed(Code::Unavailable, "shedding", "OVERLOADED", None, &[]), 503, None),
            (tonic::Status::deadline_exceeded("late"), 504, None),
            (tonic::Status::internal("bug"), 502, None),
        ];
        for (status, expected, pointer) in cases {
            let problem = problem_from(BackendError::Status(status));
            assert_eq!(problem.status, expected, "{problem:?}");
            assert_eq!(problem.pointer.as_deref(), pointer, "{problem:?}");
        }
    }

    #[test]
    fn the_pointer_and_detail_come_from_the_details_not_the_message() {
        // The message names another field, or none: only the details count.
        let status = detailed(Code::InvalidArgument, "a is wrong", "SHAPE_MISMATCH", Some("b"), &[]);
        let problem = problem_from_status(&status);
        assert_eq!(problem.pointer.as_deref(), Some("/b"));
        assert_eq!(problem.detail, "b is at fault: a is wrong");
        assert_eq!(problem.reason.as_deref(), Some("SHAPE_MISMATCH"));

        let element = detailed(
            Code::InvalidArgument,
            "not symmetric",
            "NOT_SYMMETRIC",
            Some("a.data[5]"),
            &[("row", "1"), ("col", "2")],
        );
        assert_eq!(problem_from_status(&element).pointer.as_deref(), Some("/a/1/2"));
        let kind =
            detailed(Code::InvalidArgument, "no", "INVALID_DECOMPOSITION", Some("kind"), &[("row", "1"), ("col", "2")]);
        assert_eq!(problem_from_status(&kind).pointer.as_deref(), Some("/kind"));

        // A message that names a field but no details: no pointer is guessed from the text.
        let bare = problem_from_status(&tonic::Status::invalid_argument("a: shape 0×1 has a zero dimension"));
        assert_eq!((bare.pointer, bare.reason), (None, None));
        assert_eq!(bare.detail, "a: shape 0×1 has a zero dimension");
        // A field the REST body does not have is not pointed at.
        let unknown = detailed(Code::InvalidArgument, "x", "X", Some("options.tolerance"), &[]);
        assert_eq!(problem_from_status(&unknown).pointer, None);
    }

    #[test]
    fn retry_after_of_a_shed_call_is_the_api_s_retry_info() {
        let mut details = tonic_types::ErrorDetails::new();
        details.set_retry_info(Some(std::time::Duration::from_millis(2500)));
        let shed = tonic::Status::with_error_details(Code::Unavailable, "at the limit", details);
        let problem = problem_from_status(&shed);
        assert_eq!((problem.status, problem.retry_after_seconds()), (503, Some(3)));
        let without = problem_from_status(&tonic::Status::unavailable("x"));
        assert_eq!(without.retry_after_seconds(), Some(DEFAULT_RETRY_AFTER.as_secs()));
    }

    #[test]
    fn a_non_finite_result_is_refused_rather_than_sent_as_null() {
        let matrix = pb::Matrix { rows: 1, cols: 2, data: vec![1.0, f64::INFINITY] };
        let problem = rows_of("result", Some(matrix)).unwrap_err();
        assert_eq!(problem.status, 422);
        assert!(problem.detail.starts_with("result[0][1] is not a finite double"), "{}", problem.detail);
    }
}
