"""The ui-gateway's REST contract (docs/contracts.md §3) checked by tools no one here wrote, against the real
binaries (api + telemetry-collector + ui-gateway, see the `gateway` fixture):

- `openapi-spec-validator` validates `/api/v1/openapi.json` as OpenAPI 3.1, and the document must
  describe exactly the six `POST /api/v1/matrix/{op}` routes.
- schemathesis generates requests from that document and checks every answer against it. We use
  its Python API (`schemathesis.openapi.from_url`, `operation.as_strategy()` under Hypothesis'
  `@given`, `case.call_and_validate()`) inside ordinary pytest tests, rather than its CLI or its
  `schema.parametrize()` plugin: the document must come from the gateway a fixture starts, and
  schemathesis 4.32's lazy fixture loader (`schemathesis.pytest.from_fixture`) reads a pytest
  internal that pytest 9 removed (`AttributeError: 'Function' object has no attribute '_nodeid'`).
  Each operation × generation mode (positive: valid per the schema; negative: not) is one pytest
  item, and a failure carries schemathesis' reproduction (a curl command). The checks are named
  explicitly (no 5xx; status code, content type, body and headers as documented), and Hypothesis
  is bounded (50 examples per item, a 5 s deadline per example) so the run stays short.
- numpy cross-checks the numbers, and error answers are RFC 9457 problem documents.
"""

import datetime
import json
import re

import axiom25_testkit
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

OPERATIONS = ("multiply", "solve", "invert", "determinant", "decompose", "analyze")
TRACE_ID = re.compile(r"[0-9a-f]{32}")


def request(url, method="GET", body=None, content_type="application/json"):
    """One HTTP exchange: (status, headers, parsed JSON body or raw text)."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"content-type": content_type} if data is not None else {}
    answer = axiom25_testkit.request(url, method, data, headers)
    kind = answer.headers.get("content-type", "")
    return answer.status, answer.headers, answer.json() if "json" in kind else answer.text


def post(gateway, op, body, **kwargs):
    return request(f"{gateway.url}/api/v1/matrix/{op}", "POST", body, **kwargs)


@pytest.fixture(scope="module")
def openapi_document(gateway):
    status, headers, document = request(f"{gateway.url}/api/v1/openapi.json")
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    return document


def references(node):
    """Every `$ref` in a JSON document."""
    if isinstance(node, dict):
        yield from ([node["$ref"]] if isinstance(node.get("$ref"), str) else [])
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def test_every_reference_in_the_openapi_document_resolves(openapi_document):
    dangling = set()
    for reference in references(openapi_document):
        node = openapi_document
        for part in reference.removeprefix("#/").split("/"):
            node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
        if not reference.startswith("#/") or node is None:
            dangling.add(reference)
    assert not dangling, f"references to nothing: {sorted(dangling)}"


def test_the_openapi_document_is_valid_openapi_3_1(openapi_document):
    assert openapi_document["openapi"].startswith("3.1.")
    problem = None
    try:
        validate(openapi_document, cls=OpenAPIV31SpecValidator)
    except Exception as error:  # the validator's errors embed the whole document: keep the head
        problem = f"{type(error).__name__}: {str(error).split(' within ')[0][:300]}"
    assert problem is None, f"openapi-spec-validator: {problem}"


def test_the_openapi_document_describes_exactly_the_six_matrix_routes(openapi_document):
    described = {(path, method) for path, item in openapi_document["paths"].items() for method in item}
    assert described == {(f"/api/v1/matrix/{op}", "post") for op in OPERATIONS}


@pytest.fixture(scope="module")
def gateway_schema(gateway):
    return schemathesis.openapi.from_url(f"{gateway.url}/api/v1/openapi.json", timeout=10)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("op", OPERATIONS)
def test_every_generated_request_gets_a_documented_answer(gateway, gateway_schema, op, mode):
    operation = gateway_schema[f"/api/v1/matrix/{op}"]["POST"]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=50,
        deadline=datetime.timedelta(seconds=5),
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def exchange(case):
        case.call_and_validate(base_url=gateway.url, timeout=30, checks=CHECKS)

    exchange()


def rectangular(min_side=1, max_side=5):
    """Hypothesis strategy: rectangular matrices of small finite values (the shapes the schema
    cannot express, so schemathesis alone seldom reaches the 200 and 422 answers)."""
    values = st.one_of(st.integers(-9, 9).map(float), st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False))
    return st.tuples(st.integers(min_side, max_side), st.integers(min_side, max_side)).flatmap(
        lambda shape: st.lists(
            st.lists(values, min_size=shape[1], max_size=shape[1]), min_size=shape[0], max_size=shape[0]
        )
    )


WELL_FORMED_BODIES = {
    "multiply": st.integers(1, 4).flatmap(
        lambda k: st.fixed_dictionaries({"a": rectangular().filter(lambda a: len(a[0]) == k) | st.just([[1.0] * k]),
                                         "b": rectangular().filter(lambda b: len(b) == k) | st.just([[2.0]] * k)})
    ),
    "solve": st.fixed_dictionaries({"a": rectangular(), "b": rectangular()}),
    "invert": st.fixed_dictionaries({"a": rectangular()}),
    "determinant": st.fixed_dictionaries({"a": rectangular()}),
    "decompose": st.fixed_dictionaries(
        {"a": rectangular(), "kind": st.sampled_from(["lu", "qr", "cholesky", "svd", "eigen"])}
    ),
    "analyze": st.fixed_dictionaries({"a": rectangular()}),
}


@pytest.mark.parametrize("op", OPERATIONS)
def test_every_well_formed_matrix_request_gets_a_documented_answer(gateway, gateway_schema, op):
    operation = gateway_schema[f"/api/v1/matrix/{op}"]["POST"]

    @given(data=st.data())
    @settings(
        max_examples=50,
        deadline=datetime.timedelta(seconds=5),
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def exchange(data):
        body = data.draw(WELL_FORMED_BODIES[op], label="body")
        case = data.draw(operation.as_strategy(body=body), label="case")
        case.call_and_validate(base_url=gateway.url, timeout=30, checks=CHECKS)

    exchange()


def matrix(rng, rows, cols):
    return rng.uniform(-10.0, 10.0, size=(rows, cols))


def well_conditioned(rng, n):
    return matrix(rng, n, n) + n * 10.0 * np.eye(n)


def answered(gateway, op, body):
    status, headers, answer = post(gateway, op, body)
    assert status == 200, answer
    assert headers["content-type"].startswith("application/json")
    assert TRACE_ID.fullmatch(headers["x-trace-id"]), headers["x-trace-id"]
    return answer


def test_multiply_matches_numpy(gateway):
    rng = np.random.default_rng(1)
    a, b = matrix(rng, 3, 5), matrix(rng, 5, 4)
    answer = answered(gateway, "multiply", {"a": a.tolist(), "b": b.tolist()})
    np.testing.assert_allclose(np.array(answer["result"]), a @ b, rtol=1e-12, atol=1e-12)


def test_solve_matches_numpy_for_square_and_tall_systems(gateway):
    rng = np.random.default_rng(2)
    a, b = well_conditioned(rng, 6), matrix(rng, 6, 2)
    answer = answered(gateway, "solve", {"a": a.tolist(), "b": b.tolist()})
    np.testing.assert_allclose(np.array(answer["result"]), np.linalg.solve(a, b), rtol=1e-10, atol=1e-12)
    tall, rhs = matrix(rng, 8, 3), matrix(rng, 8, 1)
    answer = answered(gateway, "solve", {"a": tall.tolist(), "b": rhs.tolist()})
    expected = np.linalg.lstsq(tall, rhs, rcond=None)[0]
    np.testing.assert_allclose(np.array(answer["result"]), expected, rtol=1e-9, atol=1e-12)


def test_invert_matches_numpy(gateway):
    rng = np.random.default_rng(3)
    a = well_conditioned(rng, 5)
    answer = answered(gateway, "invert", {"a": a.tolist()})
    np.testing.assert_allclose(np.array(answer["result"]), np.linalg.inv(a), rtol=1e-10, atol=1e-14)


def test_determinant_matches_numpy(gateway):
    rng = np.random.default_rng(4)
    a = matrix(rng, 4, 4)
    answer = answered(gateway, "determinant", {"a": a.tolist()})
    assert answer["value"] == pytest.approx(np.linalg.det(a), rel=1e-10)


def assert_problem(answer, status, headers, expected_status):
    assert status == expected_status, answer
    assert headers["content-type"].startswith("application/problem+json"), headers["content-type"]
    assert {"type", "title", "status", "detail"} <= answer.keys(), answer
    assert answer["status"] == expected_status
    assert answer["title"] and answer["detail"] and answer["type"]


@pytest.mark.parametrize(
    ("op", "body", "content_type", "expected_status"),
    [
        pytest.param("multiply", b'{"a": [[1, 2]], "b": ', "application/json", 400, id="malformed-json"),
        pytest.param("multiply", {"a": [[1, 2], [3]], "b": [[1], [2]]}, "application/json", 400, id="ragged-rows"),
        pytest.param("multiply", {"a": [[1, 2]], "b": [[1, 2]]}, "application/json", 400, id="shapes-do-not-fit"),
        pytest.param("invert", {"a": [[1, 2], [2, 4]]}, "application/json", 422, id="singular"),
        pytest.param("decompose", {"a": [[1, 2], [2, 1]], "kind": "cholesky"}, "application/json", 422,
                     id="not-positive-definite"),
        pytest.param("determinant", b"a=1", "application/x-www-form-urlencoded", 415, id="not-json"),
        pytest.param("transpose", {"a": [[1]]}, "application/json", 404, id="unknown-route"),
    ],
)
def test_errors_are_problem_documents(gateway, op, body, content_type, expected_status):
    status, headers, answer = post(gateway, op, body, content_type=content_type)
    assert_problem(answer, status, headers, expected_status)


def test_a_wrong_method_is_a_405_problem_document(gateway):
    status, headers, answer = request(f"{gateway.url}/api/v1/matrix/multiply", "GET")
    assert_problem(answer, status, headers, 405)
