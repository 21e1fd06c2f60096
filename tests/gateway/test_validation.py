"""Predict-body parsing and validation: precise 4xx messages, a fast path, a fuzz test."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warden.errors import ConfigError
from warden.gateway.errors import InvalidRequest
from warden.gateway.validation import (
    InputSpec,
    parse_json,
    parse_predict_request,
    validate_batch,
)

DIGITS = InputSpec.from_dict(
    {"shape": [1, 8, 8], "dtype": "float32", "min": 0, "max": 1, "max_batch": 16}
)


def images(n: int, value: Any = 0.5) -> list[Any]:
    return [[[[value] * 8 for _ in range(8)]] for _ in range(n)]


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def refused(raw: bytes, spec: InputSpec = DIGITS, **kw: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse_predict_request(raw, spec, **kw)
    return info.value


def test_valid_batch_becomes_an_array_of_the_spec_dtype() -> None:
    x = np.random.default_rng(0).random((5, 1, 8, 8))
    req = parse_predict_request(body({"inputs": x.tolist()}), DIGITS)
    assert req.inputs.dtype == np.float32 and req.inputs.shape == (5, 1, 8, 8)
    np.testing.assert_allclose(req.inputs, x.astype(np.float32))
    assert req.rows == 5 and req.options == {}


def test_allowed_options_are_returned_and_others_refused() -> None:
    raw = body({"inputs": images(1), "version": "champion"})
    assert parse_predict_request(raw, DIGITS, allowed_options={"version"}).options == {
        "version": "champion"
    }
    err = refused(raw)
    assert (err.status_code, str(err)) == (
        422,
        "body: unknown field(s) ['version']; expected inputs",
    )


def with_value(path: tuple[int, ...], value: Any, n: int = 4) -> bytes:
    x = images(n)
    x[path[0]][path[1]][path[2]][path[3]] = value
    return body({"inputs": x})


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (with_value((3, 0, 2, 5), 7.5), 422,
         "inputs[3][0][2][5]: expected a number in [0, 1], found 7.5"),
        (with_value((1, 0, 0, 0), -0.25), 422,
         "inputs[1][0][0][0]: expected a number in [0, 1], found -0.25"),
        (with_value((1, 0, 2, 5), True), 422,
         "inputs[1][0][2][5]: expected a number, found true (a boolean)"),
        (with_value((0, 0, 7, 7), "0.5"), 422,
         "inputs[0][0][7][7]: expected a number, found a string"),
        (with_value((0, 0, 1, 1), None), 422, "inputs[0][0][1][1]: expected a number, found null"),
        (with_value((0, 0, 1, 1), [0.5]), 422,
         "inputs[0][0][1][1]: expected a number, found a list of 1 item"),
        (with_value((2, 0, 3, 3), 0.125).replace(b"0.125", b"1e400"), 422,
         "inputs[2][0][3][3]: expected a finite number, found infinity"),
        (body({"inputs": [[0.1] * 64] * 2}), 422,
         "inputs: expected shape (N, 1, 8, 8), found (2, 64)"),
        (body({"inputs": images(2)[0]}), 422,
         "inputs: expected shape (N, 1, 8, 8), found (1, 8, 8)"),
        (body({"inputs": []}), 422, "inputs: expected at least one input, found an empty list"),
        (body({"inputs": "x"}), 422,
         "inputs: expected a list of inputs of shape (N, 1, 8, 8), found a string"),
        (body({"inputs": images(17)}), 413, "inputs: a batch holds at most 16 inputs, found 17"),
        (body([1, 2]), 422,
         'body: expected a JSON object {"inputs": [...]}, found a list of 2 items'),
        (body({"x": 1}), 422, 'body: missing "inputs"'),
        (b'{"inputs": [NaN]}', 400, "body: NaN is not valid JSON"),
        (b'{"inputs": [-Infinity]}', 400, "body: -Infinity is not valid JSON"),
        (b'{"inputs": [1, }', 400, "body: malformed JSON at line 1 column 16"),
        (b"", 400, "body: malformed JSON at line 1 column 1"),
        (b'{"inputs": "\xff"}', 400,
         "body: expected UTF-8 JSON, found an invalid byte at offset 12"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "body: JSON nested too deeply"),
    ],
)  # fmt: skip
def test_refusals_are_precise(raw: bytes, status: int, message: str) -> None:
    err = refused(raw)
    assert err.status_code == status
    assert str(err).startswith(message), str(err)


def test_ragged_rows_name_the_short_row() -> None:
    x = images(3)
    x[1][0][4] = [0.5] * 7
    assert str(refused(body({"inputs": x}))) == (
        "inputs[1][0][4]: expected a list of 8 numbers, found a list of 7 items"
    )


def test_deep_options_are_refused() -> None:
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    err = refused(body({"inputs": images(1), "meta": deep}), allowed_options={"meta"})
    assert (err.status_code, str(err)) == (
        400,
        "body: JSON nested too deeply (the limit is 32 levels)",
    )


def test_booleans_mixed_with_numbers_are_caught_even_though_numpy_would_cast_them() -> None:
    spec = InputSpec.from_dict({"shape": [3]})
    err = refused(b'{"inputs": [[0.5, 1, false]]}', spec)
    assert str(err) == "inputs[0][2]: expected a number, found false (a boolean)"
    # a boolean elsewhere in the body only costs the slow path, the answer is the same
    req = parse_predict_request(
        b'{"inputs": [[0.5, 1, 2]], "explain": true}', spec, allowed_options={"explain"}
    )
    np.testing.assert_array_equal(req.inputs, [[0.5, 1, 2]])


def test_per_feature_bounds() -> None:
    spec = InputSpec.from_dict(
        {"shape": [3], "bounds": {"lower": [0, -1, 10], "upper": [1, 1, 20]}, "dtype": "float64"}
    )
    assert validate_batch([[0.5, -1, 20]], spec).dtype == np.float64
    with pytest.raises(
        InvalidRequest, match=r"^inputs\[1\]\[2\]: expected a number in \[10, 20\], found 9$"
    ):
        validate_batch([[0.5, 0, 15], [0, 0, 9]], spec)


def test_integer_dtypes_need_integers_in_range() -> None:
    spec = InputSpec.from_dict({"shape": [2], "dtype": "uint8"})
    assert validate_batch([[0, 255]], spec, bools_possible=False).dtype == np.uint8
    assert validate_batch([[3.0, 4]], spec).tolist() == [[3, 4]]
    with pytest.raises(
        InvalidRequest, match=r"inputs\[0\]\[1\]: expected a number in \[0, 255\], found 256"
    ):
        validate_batch([[0, 256]], spec)
    with pytest.raises(
        InvalidRequest, match=r"inputs\[0\]\[0\]: expected an integer \(uint8\), found 2.5"
    ):
        validate_batch([[2.5, 1]], spec)


def test_huge_integers_are_refused_not_crashed() -> None:
    spec = InputSpec.from_dict({"shape": [2]})
    with pytest.raises(
        InvalidRequest, match=r"inputs\[0\]\[0\]: expected a number in .*\(401 digits\)"
    ):
        validate_batch([[10**400, 1]], spec)
    int64 = InputSpec.from_dict({"shape": [2], "dtype": "int64"})
    with pytest.raises(InvalidRequest, match=r"inputs\[0\]\[0\]: expected a number in \[-9.2"):
        validate_batch([[2**64 - 1, -2]], int64)


def test_default_spec_keeps_values_within_float32() -> None:
    spec = InputSpec.from_dict({"shape": [1]})
    with pytest.raises(InvalidRequest, match="expected a number in"):
        validate_batch([[1e39]], spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"dtype": "float32"}, "'shape' is required"),
        ({"shape": [0]}, "shape must be a list of 1 to 8 positive integers"),
        ({"shape": "8"}, "shape must be a list of integers"),
        ({"shape": [8], "dtype": "object"}, "dtype must be one of"),
        ({"shape": [8], "colour": "red"}, r"unknown key\(s\) \['colour'\]"),
        ({"shape": [8], "min": 0, "bounds": [0, 1]}, "either 'bounds' or 'min'/'max'"),
        ({"shape": [8], "min": 1, "max": 0}, "lower bound is above its upper bound"),
        ({"shape": [8], "bounds": [0]}, r"bounds must be \[min, max\]"),
        ({"shape": [8], "bounds": {"lower": 0}}, "exactly 'lower' and 'upper'"),
        ({"shape": [2], "bounds": {"lower": [0, 1, 2], "upper": 5}}, "nested lists of shape"),
        ({"shape": [2], "max": True}, "must be numbers, found a boolean"),
        ({"shape": [2], "max": float("nan")}, "must be finite"),
        ({"shape": [2], "max_batch": 0}, "max_batch must be an integer >= 1"),
    ],
)
def test_bad_specs_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        InputSpec.from_dict(spec)


def test_registry_style_spec_is_read() -> None:
    spec = InputSpec.from_dict({"shape": [1, 8, 8], "dtype": "float32", "bounds": [0.0, 1.0]})
    assert spec.expected == "(N, 1, 8, 8)" and float(spec.upper.max()) == 1.0  # type: ignore[union-attr]


def test_parse_json_plain() -> None:
    assert parse_json(b'{"a": [1, 2.5]}') == {"a": [1, 2.5]}


# --- fuzz: any JSON (or bytes) gives an array that meets the spec or an InvalidRequest ----------

SMALL = InputSpec.from_dict({"shape": [2, 2], "min": -1, "max": 1, "max_batch": 4})

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=40,
)  # fmt: skip
near_valid = st.lists(
    st.lists(
        st.lists(
            st.one_of(st.floats(-2, 2), st.integers(-2, 2), st.booleans(), st.floats(), st.none()),
            min_size=1, max_size=3,
        ),
        min_size=1, max_size=3,
    ),
    min_size=0, max_size=6,
)  # fmt: skip


def check_outcome(raw: bytes) -> None:
    try:
        req = parse_predict_request(raw, SMALL)
    except InvalidRequest as exc:
        assert exc.status_code in (400, 413, 422)
        assert str(exc)
        return
    x = req.inputs
    assert x.dtype == np.float32 and x.shape[1:] == (2, 2) and 1 <= x.shape[0] <= 4
    assert np.all(np.isfinite(x)) and np.all((x >= -1) & (x <= 1))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=json_values)
def test_fuzz_any_json_document(doc: Any) -> None:
    check_outcome(json.dumps(doc).encode())
    check_outcome(json.dumps({"inputs": doc}).encode())


@settings(max_examples=300, deadline=None)
@given(inputs=near_valid)
def test_fuzz_near_valid_batches(inputs: Any) -> None:
    check_outcome(json.dumps({"inputs": inputs}).encode())


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=64))
def test_fuzz_arbitrary_bytes(raw: bytes) -> None:
    check_outcome(raw)
