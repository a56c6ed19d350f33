"""Every RPC of the running api, compared with numpy.linalg on random matrices.

The reference is numpy (LAPACK through OpenBLAS): code no one on this project wrote.
"""

import grpc
import numpy as np
import pytest

SHAPES_SQUARE = [1, 2, 3, 8, 33, 64]
RNG = np.random.default_rng(20261127)


def to_pb(pb, a):
    matrix_pb2, _ = pb
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    return matrix_pb2.Matrix(rows=a.shape[0], cols=a.shape[1], data=a.ravel().tolist())


def from_pb(m):
    return np.array(m.data, dtype=np.float64).reshape(m.rows, m.cols)


def well_conditioned(n, m=None):
    m = n if m is None else m
    a = RNG.standard_normal((n, m))
    if n == m:
        a += n * np.eye(n)
    return a


def close(actual, expected, scale=1.0):
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-9 * max(1.0, scale))


@pytest.mark.parametrize("n,k,m", [(1, 1, 1), (2, 3, 4), (17, 5, 9), (64, 64, 64), (100, 3, 1)])
def test_multiply_matches_numpy(pb, stub, n, k, m):
    matrix_pb2, _ = pb
    a, b = RNG.standard_normal((n, k)), RNG.standard_normal((k, m))
    result = from_pb(stub.Multiply(matrix_pb2.MultiplyRequest(a=to_pb(pb, a), b=to_pb(pb, b))).result)
    close(result, a @ b, np.abs(a).max() * np.abs(b).max() * k)


@pytest.mark.parametrize("n", SHAPES_SQUARE)
def test_square_solve_matches_numpy(pb, stub, n):
    matrix_pb2, _ = pb
    a, b = well_conditioned(n), RNG.standard_normal((n, 3))
    result = from_pb(stub.Solve(matrix_pb2.SolveRequest(a=to_pb(pb, a), b=to_pb(pb, b))).result)
    close(result, np.linalg.solve(a, b))


@pytest.mark.parametrize("rows,cols", [(2, 1), (5, 3), (40, 7), (100, 100 - 1)])
def test_tall_solve_matches_numpy_least_squares(pb, stub, rows, cols):
    matrix_pb2, _ = pb
    a, b = RNG.standard_normal((rows, cols)), RNG.standard_normal((rows, 2))
    result = from_pb(stub.Solve(matrix_pb2.SolveRequest(a=to_pb(pb, a), b=to_pb(pb, b))).result)
    expected, *_ = np.linalg.lstsq(a, b, rcond=None)
    np.testing.assert_allclose(result, expected, rtol=1e-7, atol=1e-7)


def test_rank_deficient_tall_solve_gives_numpys_minimum_norm_solution(pb, stub):
    matrix_pb2, _ = pb
    a = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    b = np.array([[1.0], [2.0], [2.0]])
    result = from_pb(stub.Solve(matrix_pb2.SolveRequest(a=to_pb(pb, a), b=to_pb(pb, b))).result)
    expected, *_ = np.linalg.lstsq(a, b, rcond=None)
    np.testing.assert_allclose(result, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n", SHAPES_SQUARE)
def test_invert_matches_numpy(pb, stub, n):
    matrix_pb2, _ = pb
    a = well_conditioned(n)
    result = from_pb(stub.Invert(matrix_pb2.InvertRequest(a=to_pb(pb, a))).result)
    close(result, np.linalg.inv(a))


@pytest.mark.parametrize("n", SHAPES_SQUARE)
def test_determinant_matches_numpy(pb, stub, n):
    matrix_pb2, _ = pb
    a = RNG.standard_normal((n, n))
    value = stub.Determinant(matrix_pb2.DeterminantRequest(a=to_pb(pb, a))).value
    np.testing.assert_allclose(value, np.linalg.det(a), rtol=1e-9, atol=1e-12)


def decompose(pb, stub, a, kind):
    matrix_pb2, _ = pb
    request = matrix_pb2.DecomposeRequest(a=to_pb(pb, a), kind=kind)
    return {name: from_pb(m) for name, m in stub.Decompose(request).factors.items()}


@pytest.mark.parametrize("rows,cols", [(1, 1), (4, 4), (33, 33), (6, 3), (3, 6)])
def test_lu_satisfies_pa_equals_lu_with_a_permutation_and_triangular_factors(pb, stub, rows, cols):
    matrix_pb2, _ = pb
    a = RNG.standard_normal((rows, cols))
    try:
        f = decompose(pb, stub, a, matrix_pb2.DECOMPOSITION_LU)
    except grpc.RpcError as error:
        assert rows != cols and error.code() == grpc.StatusCode.INVALID_ARGUMENT
        return
    p, l, u = f["p"], f["l"], f["u"]
    assert sorted(p.sum(axis=0)) == [1.0] * rows and set(np.unique(p)) <= {0.0, 1.0}
    np.testing.assert_allclose(np.diag(l), 1.0)
    assert np.allclose(np.triu(l, 1), 0) and np.allclose(np.tril(u, -1), 0)
    close(p @ a, l @ u, np.abs(a).max())
    # Partial pivoting bounds every multiplier by 1.
    assert np.abs(l).max() <= 1.0 + 1e-12


@pytest.mark.parametrize("rows,cols", [(1, 1), (5, 5), (40, 6), (6, 40)])
def test_qr_matches_numpy_up_to_column_signs(pb, stub, rows, cols):
    matrix_pb2, _ = pb
    a = RNG.standard_normal((rows, cols))
    f = decompose(pb, stub, a, matrix_pb2.DECOMPOSITION_QR)
    q, r = f["q"], f["r"]
    eq, er = np.linalg.qr(a, mode="reduced")
    signs = np.sign(np.diag(r)) * np.sign(np.diag(er))
    close(q * signs, eq)
    close(r * signs[:, None], er)
    close(q @ r, a)


@pytest.mark.parametrize("n", SHAPES_SQUARE)
def test_cholesky_matches_numpy(pb, stub, n):
    matrix_pb2, _ = pb
    b = RNG.standard_normal((n, n))
    a = b @ b.T + n * np.eye(n)
    a = (a + a.T) / 2
    f = decompose(pb, stub, a, matrix_pb2.DECOMPOSITION_CHOLESKY)
    close(f["l"], np.linalg.cholesky(a), np.abs(a).max())


@pytest.mark.parametrize("rows,cols", [(1, 1), (6, 6), (50, 8), (8, 50)])
def test_svd_singular_values_match_numpy_and_factors_reconstruct(pb, stub, rows, cols):
    matrix_pb2, _ = pb
    a = RNG.standard_normal((rows, cols))
    f = decompose(pb, stub, a, matrix_pb2.DECOMPOSITION_SVD)
    u, s, v = f["u"], f["s"].ravel(), f["v"]
    k = min(rows, cols)
    assert u.shape == (rows, k) and v.shape == (cols, k) and f["s"].shape == (1, k)
    close(s, np.linalg.svd(a, compute_uv=False))
    close(u @ np.diag(s) @ v.T, a)
    close(u.T @ u, np.eye(k))
    close(v.T @ v, np.eye(k))


@pytest.mark.parametrize("n", SHAPES_SQUARE)
def test_eigen_matches_numpy_eigh(pb, stub, n):
    matrix_pb2, _ = pb
    b = RNG.standard_normal((n, n))
    a = (b + b.T) / 2
    f = decompose(pb, stub, a, matrix_pb2.DECOMPOSITION_EIGEN)
    values, vectors = f["values"].ravel(), f["vectors"]
    expected_values, expected_vectors = np.linalg.eigh(a)
    close(values, expected_values, np.abs(a).max())
    # Eigenvectors are defined up to sign (values here are distinct with probability 1).
    signs = np.sign(np.sum(vectors * expected_vectors, axis=0))
    close(vectors * signs, expected_vectors, n)


@pytest.mark.parametrize("rows,cols", [(1, 1), (3, 3), (20, 20), (30, 4), (4, 30)])
def test_analyze_matches_numpy(pb, stub, rows, cols):
    matrix_pb2, _ = pb
    a = RNG.standard_normal((rows, cols))
    out = stub.Analyze(matrix_pb2.AnalyzeRequest(a=to_pb(pb, a)))
    assert (out.rows, out.cols) == (rows, cols)
    assert out.rank == np.linalg.matrix_rank(a)
    np.testing.assert_allclose(out.frobenius_norm, np.linalg.norm(a), rtol=1e-12)
    np.testing.assert_allclose(out.condition_number, np.linalg.cond(a), rtol=1e-8)
    assert out.symmetric == (rows == cols and np.allclose(a, a.T))
    if rows == cols:
        np.testing.assert_allclose(out.trace, np.trace(a), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(out.determinant, np.linalg.det(a), rtol=1e-9, atol=1e-12)
    else:
        assert not out.HasField("trace") and not out.HasField("determinant")


def test_analyze_of_a_rank_deficient_matrix_matches_numpy_rank_and_infinite_condition(pb, stub):
    matrix_pb2, _ = pb
    a = RNG.standard_normal((6, 2)) @ RNG.standard_normal((2, 5))
    out = stub.Analyze(matrix_pb2.AnalyzeRequest(a=to_pb(pb, a)))
    assert out.rank == np.linalg.matrix_rank(a) == 2
    assert out.condition_number == float("inf")


def test_singular_matrices_are_refused_where_numpy_raises(pb, stub):
    matrix_pb2, _ = pb
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    a[2] = a[0] + a[1]
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.inv(np.array([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(grpc.RpcError) as error:
        stub.Invert(matrix_pb2.InvertRequest(a=to_pb(pb, [[1.0, 2.0], [2.0, 4.0]])))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as error:
        stub.Solve(matrix_pb2.SolveRequest(a=to_pb(pb, a), b=to_pb(pb, np.ones((3, 1)))))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(grpc.RpcError) as error:
        stub.Decompose(
            matrix_pb2.DecomposeRequest(a=to_pb(pb, [[1.0, 2.0], [2.0, 1.0]]), kind=matrix_pb2.DECOMPOSITION_CHOLESKY)
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
