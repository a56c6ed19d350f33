//! Every RPC's successful answer, checked against hand-computed values.

use axiom25_proto::matrix::v1::{
    AnalyzeRequest, DecomposeRequest, Decomposition, DeterminantRequest, InvertRequest, Matrix, MultiplyRequest,
    SolveRequest,
};

use crate::helpers::{matrix, spawn_app};

fn assert_close(actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() <= 1e-9 * (1.0 + e.abs()), "{actual:?} vs {expected:?}");
    }
}

fn product(a: &Matrix, b: &Matrix) -> Vec<f64> {
    let (n, k, m) = (a.rows as usize, a.cols as usize, b.cols as usize);
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            out[i * m + j] = (0..k).map(|p| a.data[i * k + p] * b.data[p * m + j]).sum();
        }
    }
    out
}

fn transpose(a: &Matrix) -> Matrix {
    let (r, c) = (a.rows as usize, a.cols as usize);
    let data = (0..c).flat_map(|j| (0..r).map(move |i| (i, j))).map(|(i, j)| a.data[i * c + j]).collect();
    Matrix { rows: a.cols, cols: a.rows, data }
}

#[tokio::test]
async fn multiply_returns_the_product_with_its_shape() {
    let mut app = spawn_app().await;
    let request = MultiplyRequest { a: matrix(2, 3, &[1., 2., 3., 4., 5., 6.]), b: matrix(3, 1, &[1., 0., -1.]) };
    let result = app.client.multiply(request).await.expect("ok").into_inner().result.expect("result");
    assert_eq!((result.rows, result.cols), (2, 1));
    assert_close(&result.data, &[-2., -2.]);
    app.stop().await;
}

#[tokio::test]
async fn solve_returns_the_exact_solution_for_square_a_and_least_squares_for_tall_a() {
    let mut app = spawn_app().await;
    let square = SolveRequest { a: matrix(2, 2, &[2., 1., 1., 3.]), b: matrix(2, 1, &[3., 5.]) };
    let x = app.client.solve(square).await.expect("ok").into_inner().result.expect("result");
    assert_close(&x.data, &[0.8, 1.4]);
    // Fit y = c0 + c1·t through (0,1), (1,3), (2,5), (3,7): exactly c0 = 1, c1 = 2.
    let tall = SolveRequest { a: matrix(4, 2, &[1., 0., 1., 1., 1., 2., 1., 3.]), b: matrix(4, 1, &[1., 3., 5., 7.]) };
    let x = app.client.solve(tall).await.expect("ok").into_inner().result.expect("result");
    assert_eq!((x.rows, x.cols), (2, 1));
    assert_close(&x.data, &[1., 2.]);
    app.stop().await;
}

#[tokio::test]
async fn invert_and_determinant_match_hand_computed_values() {
    let mut app = spawn_app().await;
    let a = matrix(2, 2, &[4., 7., 2., 6.]);
    let inverse = app.client.invert(InvertRequest { a: a.clone() }).await.expect("ok").into_inner().result.expect("r");
    assert_close(&inverse.data, &[0.6, -0.7, -0.2, 0.4]);
    let det = app.client.determinant(DeterminantRequest { a }).await.expect("ok").into_inner().value;
    assert!((det - 10.0).abs() < 1e-12, "{det}");
    let one = app.client.determinant(DeterminantRequest { a: matrix(1, 1, &[-3.5]) }).await.expect("ok");
    assert_eq!(one.into_inner().value, -3.5);
    app.stop().await;
}

#[tokio::test]
async fn every_decomposition_returns_factors_that_reconstruct_the_input() {
    let mut app = spawn_app().await;
    let spd = Matrix { rows: 3, cols: 3, data: vec![4., 2., 0.6, 2., 5., 1., 0.6, 1., 3.] };
    let tall = Matrix { rows: 3, cols: 2, data: vec![1., 2., 3., 4., 5., 6.] };
    let cases = [
        (Decomposition::Lu, spd.clone(), vec!["l", "p", "u"]),
        (Decomposition::Qr, tall.clone(), vec!["q", "r"]),
        (Decomposition::Cholesky, spd.clone(), vec!["l"]),
        (Decomposition::Svd, tall.clone(), vec!["s", "u", "v"]),
        (Decomposition::Eigen, spd.clone(), vec!["values", "vectors"]),
    ];
    for (kind, a, names) in cases {
        let request = DecomposeRequest { a: Some(a.clone()), kind: kind as i32 };
        let factors = app.client.decompose(request).await.expect("ok").into_inner().factors;
        let mut got: Vec<&str> = factors.keys().map(String::as_str).collect();
        got.sort_unstable();
        assert_eq!(got, names, "{kind:?}");
        let f = |name: &str| factors[name].clone();
        let rebuilt = match kind {
            Decomposition::Lu => {
                assert_close(&product(&f("p"), &a), &product(&f("l"), &f("u")));
                continue;
            }
            Decomposition::Qr => product(&f("q"), &f("r")),
            Decomposition::Cholesky => product(&f("l"), &transpose(&f("l"))),
            Decomposition::Svd => {
                let (u, s) = (f("u"), f("s"));
                assert_eq!((s.rows, s.cols), (1, 2));
                assert!(s.data[0] >= s.data[1], "descending: {:?}", s.data);
                let mut us = u.clone();
                for (i, value) in us.data.iter_mut().enumerate() {
                    *value *= s.data[i % u.cols as usize];
                }
                product(&us, &transpose(&f("v")))
            }
            Decomposition::Eigen => {
                let (values, vectors) = (f("values"), f("vectors"));
                assert_eq!((values.rows, values.cols), (1, 3));
                assert!(values.data.windows(2).all(|w| w[0] <= w[1]), "ascending: {:?}", values.data);
                let mut vd = vectors.clone();
                for (i, value) in vd.data.iter_mut().enumerate() {
                    *value *= values.data[i % 3];
                }
                product(&vd, &transpose(&vectors))
            }
            Decomposition::Unspecified => unreachable!(),
        };
        assert_close(&rebuilt, &a.data);
    }
    app.stop().await;
}

#[tokio::test]
async fn analyze_reports_shape_rank_norms_and_square_only_fields() {
    let mut app = spawn_app().await;
    let square = app.client.analyze(AnalyzeRequest { a: matrix(2, 2, &[2., 0., 0., 1.]) }).await.expect("ok");
    let square = square.into_inner();
    assert_eq!((square.rows, square.cols, square.rank), (2, 2, 2));
    assert!((square.frobenius_norm - 5f64.sqrt()).abs() < 1e-12);
    assert!((square.condition_number - 2.0).abs() < 1e-12);
    assert!(square.symmetric);
    assert_eq!(square.trace, Some(3.0));
    assert!((square.determinant.expect("square") - 2.0).abs() < 1e-12);

    let wide = app.client.analyze(AnalyzeRequest { a: matrix(1, 3, &[1., 2., 2.]) }).await.expect("ok").into_inner();
    assert_eq!((wide.rows, wide.cols, wide.rank), (1, 3, 1));
    assert!(!wide.symmetric);
    assert_eq!((wide.trace, wide.determinant), (None, None));
    assert!((wide.condition_number - 1.0).abs() < 1e-12);

    let singular = app.client.analyze(AnalyzeRequest { a: matrix(2, 2, &[1., 2., 2., 4.]) }).await.expect("ok");
    let singular = singular.into_inner();
    assert_eq!(singular.rank, 1);
    assert_eq!(singular.condition_number, f64::INFINITY);
    app.stop().await;
}
