//! Every status-code row of CONTRACTS §2, each with a message naming the field and shape.

use std::time::Duration;

use axiom25_proto::matrix::v1::{
    AnalyzeRequest, DecomposeRequest, Decomposition, DeterminantRequest, InvertRequest, MultiplyRequest, SolveRequest,
};
use tonic::{Code, Request};

use axiom25_proto::matrix::v1::matrix_service_client::MatrixServiceClient;

use crate::helpers::{ApiProcess, connect, dominant, http_get, matrix, raw_client, spawn_app, spawn_app_with};

fn expect_status<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, text: &str) {
    let status = result.expect_err("an error status");
    assert_eq!(status.code(), code, "{}", status.message());
    assert!(status.message().contains(text), "{:?} does not mention {text:?}", status.message());
}

#[tokio::test]
async fn invalid_argument_for_malformed_matrices_and_shapes_that_do_not_fit() {
    let app = spawn_app().await;
    let mut c = app.client.clone();
    let sq = || matrix(2, 2, &[1., 2., 3., 4.]);
    expect_status(
        c.determinant(DeterminantRequest { a: matrix(0, 3, &[]) }).await,
        Code::InvalidArgument,
        "a: shape 0×3",
    );
    expect_status(
        c.invert(InvertRequest { a: matrix(2, 2, &[1., 2., 3.]) }).await,
        Code::InvalidArgument,
        "a: data has 3 values",
    );
    expect_status(
        c.multiply(MultiplyRequest { a: sq(), b: matrix(2, 1, &[1., f64::NAN]) }).await,
        Code::InvalidArgument,
        "b: data[1] (row 1, col 0) is NaN",
    );
    expect_status(
        c.analyze(AnalyzeRequest { a: matrix(1, 1, &[f64::INFINITY]) }).await,
        Code::InvalidArgument,
        "is inf",
    );
    expect_status(
        c.multiply(MultiplyRequest { a: sq(), b: matrix(3, 1, &[1., 2., 3.]) }).await,
        Code::InvalidArgument,
        "2×2",
    );
    expect_status(c.solve(SolveRequest { a: sq(), b: matrix(3, 1, &[1., 2., 3.]) }).await, Code::InvalidArgument, "b");
    expect_status(
        c.solve(SolveRequest { a: matrix(1, 2, &[1., 2.]), b: matrix(1, 1, &[1.]) }).await,
        Code::InvalidArgument,
        "1×2",
    );
    expect_status(c.invert(InvertRequest { a: matrix(2, 3, &[1.; 6]) }).await, Code::InvalidArgument, "2×3");
    expect_status(c.determinant(DeterminantRequest { a: matrix(3, 2, &[1.; 6]) }).await, Code::InvalidArgument, "3×2");
    expect_status(c.multiply(MultiplyRequest { a: None, b: sq() }).await, Code::InvalidArgument, "a: required");
    for kind in [Decomposition::Eigen, Decomposition::Cholesky] {
        let request = DecomposeRequest { a: sq(), kind: kind as i32 };
        expect_status(c.decompose(request).await, Code::InvalidArgument, "symmetric");
    }
    let request = DecomposeRequest { a: matrix(2, 3, &[1.; 6]), kind: Decomposition::Cholesky as i32 };
    expect_status(c.decompose(request).await, Code::InvalidArgument, "2×3");
    let request = DecomposeRequest { a: sq(), kind: Decomposition::Unspecified as i32 };
    expect_status(c.decompose(request).await, Code::InvalidArgument, "kind");
    app.stop().await;
}

#[tokio::test]
async fn failed_precondition_for_singular_and_not_positive_definite_matrices() {
    let app = spawn_app().await;
    let mut c = app.client.clone();
    let singular = || matrix(2, 2, &[1., 2., 2., 4.]);
    expect_status(c.invert(InvertRequest { a: singular() }).await, Code::FailedPrecondition, "singular");
    let solve = SolveRequest { a: singular(), b: matrix(2, 1, &[1., 1.]) };
    expect_status(c.solve(solve).await, Code::FailedPrecondition, "singular");
    let indefinite = DecomposeRequest { a: matrix(2, 2, &[1., 2., 2., 1.]), kind: Decomposition::Cholesky as i32 };
    expect_status(c.decompose(indefinite).await, Code::FailedPrecondition, "positive definite");
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
    expect_status(
        c.analyze(AnalyzeRequest { a: matrix(9, 1, &[1.; 9]) }).await,
        Code::ResourceExhausted,
        "a: shape 9×1 exceeds the limit of 8×8",
    );
    // 8×8 fits the shape limit, but 1000 doubles do not fit 4 KiB.
    let oversize = AnalyzeRequest { a: matrix(8, 125, &[1.; 1000]) };
    expect_status(c.analyze(oversize).await, Code::ResourceExhausted, "exceeds the limit of 4096 bytes");
    expect_status(
        c.analyze(AnalyzeRequest { a: matrix(1, 9, &[1.; 9]) }).await,
        Code::ResourceExhausted,
        "exceeds the limit",
    );
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
                client.decompose(request).await.map(|_| ()).map_err(|status| status.code())
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for call in calls {
        outcomes.push(call.await.expect("join"));
    }
    assert!(outcomes.contains(&Ok(())), "{outcomes:?}");
    assert!(outcomes.contains(&Err(Code::Unavailable)), "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Ok(()) | Err(Code::Unavailable))), "{outcomes:?}");
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
    expect_status(raw_client(api.grpc_addr).decompose(request).await, Code::DeadlineExceeded, "deadline");
    assert!(started.elapsed() < Duration::from_millis(200), "answered at the deadline, not after the long call");
    busy.await.expect("join").expect("the long call is unaffected, and its 16 MiB answer is sent");
    let (_, metrics) = http_get(api.admin_addr, "/metrics").await;
    assert!(metrics.contains("axiom25_api_deadline_exceeded_total 1"), "{metrics}");
}
