//! Reference implementations, assertions and proptest strategies shared by the linalg unit tests.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{CancelToken, DecompositionKind, Dense, decompose};

pub(super) fn mat(rows: usize, cols: usize, data: &[f64]) -> Dense {
    Dense::new(rows, cols, data.to_vec())
}

pub(super) fn live() -> CancelToken {
    CancelToken::new()
}

pub(super) fn cancelled() -> CancelToken {
    let token = CancelToken::new();
    token.cancel();
    token
}

pub(super) fn get(a: &Dense, i: usize, j: usize) -> f64 {
    a.data()[i * a.cols() + j]
}

/// Reference product, independent of faer.
pub(super) fn product(a: &Dense, b: &Dense) -> Dense {
    assert_eq!(a.cols(), b.rows());
    let mut out = vec![0.0; a.rows() * b.cols()];
    for i in 0..a.rows() {
        for j in 0..b.cols() {
            out[i * b.cols() + j] = (0..a.cols()).map(|k| get(a, i, k) * get(b, k, j)).sum();
        }
    }
    Dense::new(a.rows(), b.cols(), out)
}

pub(super) fn transpose(a: &Dense) -> Dense {
    let mut out = vec![0.0; a.rows() * a.cols()];
    for i in 0..a.rows() {
        for j in 0..a.cols() {
            out[j * a.rows() + i] = get(a, i, j);
        }
    }
    Dense::new(a.cols(), a.rows(), out)
}

pub(super) fn identity(n: usize) -> Dense {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        out[i * n + i] = 1.0;
    }
    Dense::new(n, n, out)
}

/// `a · diag(d)` (scales columns).
pub(super) fn scale_columns(a: &Dense, d: &Dense) -> Dense {
    let mut out = a.clone();
    for i in 0..a.rows() {
        for j in 0..a.cols() {
            out.data[i * a.cols() + j] *= d.data()[j];
        }
    }
    out
}

pub(super) fn norm(a: &Dense) -> f64 {
    a.data().iter().map(|x| x * x).sum::<f64>().sqrt()
}

pub(super) fn distance(a: &Dense, b: &Dense) -> f64 {
    assert_eq!((a.rows(), a.cols()), (b.rows(), b.cols()), "shapes differ");
    a.data().iter().zip(b.data()).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}

/// `‖actual − expected‖_F ≤ rtol · max(‖expected‖_F, 1e-300)`.
pub(super) fn assert_close(actual: &Dense, expected: &Dense, rtol: f64) {
    let error = distance(actual, expected);
    let bound = rtol * norm(expected).max(1e-300);
    assert!(error <= bound, "error {error:e} exceeds {bound:e}\nactual:   {actual:?}\nexpected: {expected:?}");
}

pub(super) fn assert_orthonormal_columns(q: &Dense, rtol: f64) {
    let gram = product(&transpose(q), q);
    assert_close(&gram, &identity(q.cols()), rtol);
}

pub(super) fn assert_upper_triangular(u: &Dense) {
    for i in 0..u.rows() {
        for j in 0..i.min(u.cols()) {
            assert_eq!(get(u, i, j), 0.0, "element [{i}][{j}] below the diagonal");
        }
    }
}

pub(super) fn assert_lower_triangular(l: &Dense) {
    for i in 0..l.rows() {
        for j in i + 1..l.cols() {
            assert_eq!(get(l, i, j), 0.0, "element [{i}][{j}] above the diagonal");
        }
    }
}

pub(super) fn assert_permutation_matrix(p: &Dense) {
    assert!(p.is_square());
    let n = p.rows();
    for i in 0..n {
        let row: Vec<f64> = (0..n).map(|j| get(p, i, j)).collect();
        let col: Vec<f64> = (0..n).map(|j| get(p, j, i)).collect();
        for line in [row, col] {
            assert!(line.iter().all(|&x| x == 0.0 || x == 1.0), "{p:?}");
            assert_eq!(line.iter().filter(|&&x| x == 1.0).count(), 1, "{p:?}");
        }
    }
}

pub(super) fn factor<'a>(factors: &'a BTreeMap<&'static str, Dense>, name: &str) -> &'a Dense {
    factors.get(name).unwrap_or_else(|| panic!("missing factor {name}"))
}

pub(super) fn check_lu(a: &Dense, rtol: f64) {
    let f = decompose(a, DecompositionKind::Lu, &live()).expect("lu");
    let (p, l, u) = (factor(&f, "p"), factor(&f, "l"), factor(&f, "u"));
    let k = a.rows().min(a.cols());
    assert_eq!((p.rows(), p.cols()), (a.rows(), a.rows()));
    assert_eq!((l.rows(), l.cols()), (a.rows(), k));
    assert_eq!((u.rows(), u.cols()), (k, a.cols()));
    assert_permutation_matrix(p);
    assert_lower_triangular(l);
    assert_upper_triangular(u);
    for i in 0..k {
        assert_eq!(get(l, i, i), 1.0);
    }
    // Partial pivoting keeps every multiplier at most 1 in magnitude.
    assert!(l.data().iter().all(|x| x.abs() <= 1.0), "{l:?}");
    assert_close(&product(l, u), &product(p, a), rtol);
}

pub(super) fn check_qr(a: &Dense, rtol: f64) {
    let f = decompose(a, DecompositionKind::Qr, &live()).expect("qr");
    let (q, r) = (factor(&f, "q"), factor(&f, "r"));
    let k = a.rows().min(a.cols());
    assert_eq!((q.rows(), q.cols()), (a.rows(), k));
    assert_eq!((r.rows(), r.cols()), (k, a.cols()));
    assert_upper_triangular(r);
    assert_orthonormal_columns(q, rtol);
    assert_close(&product(q, r), a, rtol);
}

pub(super) fn check_svd(a: &Dense, rtol: f64) {
    let f = decompose(a, DecompositionKind::Svd, &live()).expect("svd");
    let (u, s, v) = (factor(&f, "u"), factor(&f, "s"), factor(&f, "v"));
    let k = a.rows().min(a.cols());
    assert_eq!((u.rows(), u.cols()), (a.rows(), k));
    assert_eq!((s.rows(), s.cols()), (1, k));
    assert_eq!((v.rows(), v.cols()), (a.cols(), k));
    assert!(s.data().windows(2).all(|w| w[0] >= w[1]), "not descending: {s:?}");
    assert!(s.data().iter().all(|&x| x >= 0.0));
    assert_orthonormal_columns(u, rtol);
    assert_orthonormal_columns(v, rtol);
    assert_close(&product(&scale_columns(u, s), &transpose(v)), a, rtol);
}

pub(super) fn check_eigen(a: &Dense, rtol: f64) {
    let f = decompose(a, DecompositionKind::Eigen, &live()).expect("eigen");
    let (values, vectors) = (factor(&f, "values"), factor(&f, "vectors"));
    let n = a.rows();
    assert_eq!((values.rows(), values.cols()), (1, n));
    assert_eq!((vectors.rows(), vectors.cols()), (n, n));
    assert!(values.data().windows(2).all(|w| w[0] <= w[1]), "not ascending: {values:?}");
    assert_orthonormal_columns(vectors, rtol);
    let rebuilt = product(&scale_columns(vectors, values), &transpose(vectors));
    assert_close(&rebuilt, a, rtol);
}

/// Every decomposition the api offers.
pub(super) const EVERY_DECOMPOSITION: [DecompositionKind; 5] = [
    DecompositionKind::Lu,
    DecompositionKind::Qr,
    DecompositionKind::Cholesky,
    DecompositionKind::Svd,
    DecompositionKind::Eigen,
];

/// Deterministic matrix with entries in [-1, 1).
pub(super) fn pseudo_random(rows: usize, cols: usize, seed: u64) -> Dense {
    Dense::new(rows, cols, axiom25_testkit::Xorshift::new(seed).take(rows * cols, |x| 2.0 * x - 1.0))
}

pub(super) fn matrix(rows: usize, cols: usize) -> impl Strategy<Value = Dense> {
    proptest::collection::vec(-1.0..1.0f64, rows * cols).prop_map(move |data| Dense::new(rows, cols, data))
}

pub(super) fn any_matrix() -> impl Strategy<Value = Dense> {
    (1..=12usize, 1..=12usize).prop_flat_map(|(m, n)| matrix(m, n))
}

pub(super) fn square_matrix() -> impl Strategy<Value = Dense> {
    (1..=12usize).prop_flat_map(|n| matrix(n, n))
}

/// Strictly diagonally dominant, hence well conditioned.
pub(super) fn dominant_matrix() -> impl Strategy<Value = Dense> {
    square_matrix().prop_map(|mut a| {
        let n = a.rows;
        for i in 0..n {
            let diagonal = &mut a.data[i * n + i];
            *diagonal += if *diagonal < 0.0 { -(n as f64) } else { n as f64 };
        }
        a
    })
}

pub(super) fn symmetric_matrix() -> impl Strategy<Value = Dense> {
    square_matrix().prop_map(|a| {
        let at = transpose(&a);
        let data = a.data().iter().zip(at.data()).map(|(x, y)| (x + y) / 2.0).collect();
        Dense::new(a.rows(), a.cols(), data)
    })
}

/// A tall system (rows > cols) and a right-hand side.
pub(super) fn tall_system() -> impl Strategy<Value = (Dense, Dense)> {
    (1..=11usize, 1..=3usize)
        .prop_flat_map(|(n, p)| (n + 1..=12usize, Just(n), Just(p)))
        .prop_flat_map(|(m, n, p)| (matrix(m, n), matrix(m, p)))
}
