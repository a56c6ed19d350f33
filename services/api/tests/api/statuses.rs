//! Every status-code row of docs/contracts.md §2, each with a message naming the field and shape, and the
//! `google.rpc` details a caller reads instead: `ErrorInfo` (reason, domain, metadata), the
//! `BadRequest` field violation, `RetryInfo` when shed.

use std::time::Duration;

use axiom25_proto::matrix::v1::{
    AnalyzeRequest, DecomposeRequest, Decomposition, DeterminantRequest, InvertRequest, MultiplyRequest, SolveRequest,
};
use tonic::{Code, Request};
use tonic_types::{ErrorDetails, StatusExt as _};

use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;

use crate::helpers::{ApiProcess, connect, dominant, http_get, matrix, raw_client, spawn_app, spawn_app_with};

fn expect_status<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, text: &str) -> ErrorDetails {
    let status = result.expect_err("an error status");
    assert_eq!(status.code(), code, "{}", status.message());
    assert!(status.message().contains(text), "{:?} does not mention {text:?}", status.message());
    status.check_error_details().expect("the details decode")
}

/// Asserts the details name `reason` in the api's domain and, when given, `field` as the one
/// field violation (with the same reason) and as the `field` metadata.
fn expect_details(details: &ErrorDetails, reason: &str, field: Option<&str>) {
    let info = details.error_info().unwrap_or_else(|| panic!("no ErrorInfo for {reason}: {details:?}"));
    assert_eq!((info.reason.as_str(), info.domain.as_str()), (reason, "matrix.axiom25"));
    match field {
        Some(field) => {
            let violations = &details.bad_request().expect("a BadRequest").field_violations;
            assert_eq!(violations.len(), 1, "{violations:?}");
            assert_eq!((violations[0].field.as_str(), violations[0].reason.as_str()), (field, reason));
            assert!(!violations[0].description.is_empty());
            let top = field.split(['.', '[']).next().unwrap();
            assert_eq!(info.metadata.get("field").map(String::as_str), Some(top), "{info:?}");
        }
        None => assert!(details.bad_request().is_none(), "{reason} names no field: {details:?}"),
    }
}

fn metadata<'a>(details: &'a ErrorDetails, key: &str) -> Option<&'a str> {
    details.error_info()?.metadata.get(key).map(String::as_str)
}

#[tokio::test]
async fn invalid_argument_for_malformed_matrices_and_shapes_that_do_not_fit() {
    let app = spawn_app().await;
    let mut c = app.client.clone();
    let sq = || matrix(2, 2, &[1., 2., 3., 4.]);
    let details = expect_status(
        c.determinant(DeterminantRequest { a: matrix(0, 3, &[]) }).await,
        Code::InvalidArgument,
        "a: shape 0×3",
    );
    expect_details(&details, "ZERO_DIMENSION", Some("a"));
    assert_eq!(metadata(&details, "shape"), Some("0x3"));
    let details = expect_status(
        c.invert(InvertRequest { a: matrix(2, 2, &[1., 2., 3.]) }).await,
        Code::InvalidArgument,
        "a: data has 3 values",
    );
    expect_details(&details, "DATA_LENGTH_MISMATCH", Some("a.data"));
    let details = expect_status(
        c.multiply(MultiplyRequest { a: sq(), b: matrix(2, 1, &[1., f64::NAN]) }).await,
        Code::InvalidArgument,
        "b: data[1] (row 1, col 0) is NaN",
    );
    expect_details(&details, "NON_FINITE_VALUE", Some("b.data[1]"));
    assert_eq!((metadata(&details, "row"), metadata(&details, "col")), (Some("1"), Some("0")));
    let details = expect_status(
        c.analyze(AnalyzeRequest { a: matrix(1, 1, &[f64::INFINITY]) }).await,
        Code::InvalidArgument,
        "is inf",
    );
    expect_details(&details, "NON_FINITE_VALUE", Some("a.data[0]"));
    let details = expect_status(
        c.multiply(MultiplyRequest { a: sq(), b: matrix(3, 1, &[1., 2., 3.]) }).await,
        Code::InvalidArgument,
        "2×2",
    );
    expect_details(&details, "SHAPE_MISMATCH", Some("b"));
    assert_eq!((metadata(&details, "aShape"), metadata(&details, "shape")), (Some("2x2"), Some("3x1")));
    let details = expect_status(
        c.solve(SolveRequest { a: sq(), b: matrix(3, 1, &[1., 2., 3.]) }).await,
        Code::InvalidArgument,
        "b",
    );
    expect_details(&details, "SHAPE_MISMATCH", Some("b"));
    let details = expect_status(
        c.solve(SolveRequest { a: matrix(1, 2, &[1., 2.]), b: matrix(1, 1, &[1.]) }).await,
        Code::InvalidArgument,
        "1×2",
    );
    expect_details(&details, "UNDERDETERMINED", Some("a"));
    let details =
        expect_status(c.invert(InvertRequest { a: matrix(2, 3, &[1.; 6]) }).await, Code::InvalidArgument, "2×3");
    expect_details(&details, "NOT_SQUARE", Some("a"));
    assert_eq!((metadata(&details, "shape"), metadata(&details, "operation")), (Some("2x3"), Some("invert")));
    let details = expect_status(
        c.determinant(DeterminantRequest { a: matrix(3, 2, &[1.; 6]) }).await,
        Code::InvalidArgument,
        "3×2",
    );
    expect_details(&details, "NOT_SQUARE", Some("a"));
    let details =
        expect_status(c.multiply(MultiplyRequest { a: None, b: sq() }).await, Code::InvalidArgument, "a: required");
    expect_details(&details, "MATRIX_MISSING", Some("a"));
    for kind in [Decomposition::Eigen, Decomposition::Cholesky] {
        // sq() first differs from its transpose at a[0][1], element 1 of the row-major data.
        let request = DecomposeRequest { a: sq(), kind: kind as i32 };
        let details = expect_status(c.decompose(request).await, Code::InvalidArgument, "symmetric");
        expect_details(&details, "NOT_SYMMETRIC", Some("a.data[1]"));
        assert_eq!((metadata(&details, "row"), metadata(&details, "col")), (Some("0"), Some("1")));
    }
    let request = DecomposeRequest { a: matrix(2, 3, &[1.; 6]), kind: Decomposition::Cholesky as i32 };
    expect_details(&expect_status(c.decompose(request).await, Code::InvalidArgument, "2×3"), "NOT_SQUARE", Some("a"));
    let request = DecomposeRequest { a: sq(), kind: Decomposition::Unspecified as i32 };
    let details = expect_status(c.decompose(request).await, Code::InvalidArgument, "kind");
    expect_details(&details, "INVALID_DECOMPOSITION", Some("kind"));
    let request = DecomposeRequest { a: sq(), kind: 42 };
    let details = expect_status(c.decompose(request).await, Code::InvalidArgument, "kind");
    expect_details(&details, "INVALID_DECOMPOSITION", Some("kind"));
    assert_eq!(metadata(&details, "value"), Some("42"));
    app.stop().await;
}

#[tokio::test]
async fn failed_precondition_for_singular_and_not_positive_definite_matrices() {
    let app = spawn_app().await;
    let mut c = app.client.clone();
    let singular = || matrix(2, 2, &[1., 2., 2., 4.]);
    let details = expect_status(c.invert(InvertRequest { a: singular() }).await, Code::FailedPrecondition, "singular");
    expect_details(&details, "SINGULAR_MATRIX", Some("a"));
    assert_eq!((metadata(&details, "shape"), metadata(&details, "operation")), (Some("2x2"), Some("invert")));
    let solve = SolveRequest { a: singular(), b: matrix(2, 1, &[1., 1.]) };
    let details = expect_status(c.solve(solve).await, Code::FailedPrecondition, "singular");
    expect_details(&details, "SINGULAR_MATRIX", Some("a"));
    let indefinite = DecomposeRequest { a: matrix(2, 2, &[1., 2., 2., 1.]), kind: Decomposition::Cholesky as i32 };
    let details = expect_status(c.decompose(indefinite).await, Code::FailedPrecondition, "positive definite");
    expect_details(&details, "NOT_POSITIVE_DEFINITE", Some("a"));
    app.stop().await;
}

#[tokio::test]
async fn resource_exhausted_for_dimensions_and_messages_above_the_limits() {
    let app = spawn_app_with(|s| {
        s.limits.max_rows = 8;
        s.limits.max_cols = 8;
        s.limits.max_message_bytes = 4096;
    })
    .await;
    let mut c = app.client.clone();
    let details = expect_status(
        c.analyze(AnalyzeRequest { a: matrix(9, 1, &[1.; 9]) }).await,
        Code::ResourceExhausted,
        "a: shape 9×1 exceeds the limit of 8×8",
    );
    expect_details(&details, "DIMENSION_TOO_LARGE", Some("a"));
    assert_eq!((metadata(&details, "shape"), metadata(&details, "maxShape")), (Some("9x1"), Some("8x8")));
    // 8×8 fits the shape limit, but 1000 doubles do not fit 4 KiB.
    let oversize = AnalyzeRequest { a: matrix(8, 125, &[1.; 1000]) };
    let details = expect_status(c.analyze(oversize).await, Code::ResourceExhausted, "exceeds the limit of 4096 bytes");
    expect_details(&details, "MESSAGE_TOO_LARGE", None);
    assert_eq!(metadata(&details, "maxMessageBytes"), Some("4096"));
    let details = expect_status(
        c.analyze(AnalyzeRequest { a: matrix(1, 9, &[1.; 9]) }).await,
        Code::ResourceExhausted,
        "exceeds the limit",
    );
    expect_details(&details, "DIMENSION_TOO_LARGE", Some("a"));
    app.stop().await;
}

#[tokio::test]
async fn unavailable_when_the_server_is_at_its_concurrency_limit() {
    let app = spawn_app_with(|s| {
        s.limits.max_in_flight = 1;
        s.compute.workers = 1;
    })
    .await;
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let mut client = app.client.clone();
            tokio::spawn(async move {
                let request = DecomposeRequest { a: dominant(256), kind: Decomposition::Svd as i32 };
                client.decompose(request).await.map(|_| ())
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for call in calls {
        outcomes.push(call.await.expect("join"));
    }
    let codes: Vec<_> = outcomes.iter().map(|o| o.as_ref().map_err(tonic::Status::code).copied()).collect();
    assert!(codes.contains(&Ok(())), "{codes:?}");
    assert!(codes.contains(&Err(Code::Unavailable)), "{codes:?}");
    assert!(codes.iter().all(|o| matches!(o, Ok(()) | Err(Code::Unavailable))), "{codes:?}");
    for shed in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        let details = shed.check_error_details().expect("the details decode");
        expect_details(&details, "OVERLOADED", None);
        assert_eq!(metadata(&details, "maxInFlight"), Some("1"));
        let delay = details.retry_info().and_then(|retry| retry.retry_delay);
        assert_eq!(delay, Some(Duration::from_secs(1)), "a shed call says when to retry");
    }
    app.stop().await;
}

#[tokio::test]
async fn deadline_exceeded_when_the_clients_deadline_passes() {
    // Its own process, so the saturation gauge below counts only this test's calls.
    let api = ApiProcess::start(&[("AXIOM25__COMPUTE__WORKERS", "1")]).await;
    let channel = connect(api.grpc_addr).await;
    let mut busy_client = MatrixServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20);
    let busy = tokio::spawn(async move {
        let request = DecomposeRequest { a: dominant(1024), kind: Decomposition::Svd as i32 };
        busy_client.decompose(request).await.map(|_| ())
    });
    // Wait until the only worker is computing, so the next call's deadline passes while it waits.
    tokio::time::timeout(Duration::from_secs(20), async {
        while !http_get(api.admin_addr, "/metrics").await.1.contains("axiom25_api_computations_running 1") {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the long call starts computing");
    // Big enough to need a worker (tiny work runs in place and would not wait).
    let mut request = Request::new(DecomposeRequest { a: dominant(64), kind: Decomposition::Svd as i32 });
    request.set_timeout(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let details = expect_status(raw_client(api.grpc_addr).decompose(request).await, Code::DeadlineExceeded, "deadline");
    expect_details(&details, "DEADLINE_EXCEEDED", None);
    assert!(started.elapsed() < Duration::from_millis(200), "answered at the deadline, not after the long call");
    busy.await.expect("join").expect("the long call is unaffected, and its 16 MiB answer is sent");
    let (_, metrics) = http_get(api.admin_addr, "/metrics").await;
    assert!(metrics.contains("axiom25_api_deadline_exceeded_total 1"), "{metrics}");
}
