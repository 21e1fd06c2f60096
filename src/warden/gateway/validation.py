"""Parse and validate a predict request body against a model version's registered input spec.

Input spec (the version's ``input_spec`` JSON object in the registry)::

    {"shape": [1, 8, 8],          # one input's shape, without the batch axis (required)
     "dtype": "float32",          # float16/32/64, int8/16/32/64, uint8/16/32/64 (default float32)
     "min": 0, "max": 1,          # bounds for every feature (optional), or
     "bounds": [0, 1],            # the same as [min, max], or per feature:
     "bounds": {"lower": [...], "upper": [...]},   # scalars or nested lists of ``shape``
     "max_batch": 256}            # most inputs per request (default 256)

Unknown keys, a missing shape, bounds given twice or inverted are refused
(:class:`~warden.errors.ConfigError`): a spec that cannot be enforced must not be served.

Request body: a JSON object ``{"inputs": [...]}`` (a batch: a list of inputs of ``shape``), plus
any keys the route allows. Every refusal is an
:class:`~warden.gateway.errors.InvalidRequest` with its status and a message that points at
the first bad element:

* 400 — not JSON, not UTF-8, ``NaN``/``Infinity`` literals, nesting deeper than ``max_depth``;
* 413 — more inputs than ``max_batch``;
* 422 — wrong top-level shape or keys, wrong types (booleans, strings, null are not numbers),
  non-finite values, out-of-bounds values, non-integers for an integer dtype; e.g.
  ``inputs[3][0][2][5]: expected a number in [0, 1], found 7.5`` or
  ``inputs: expected shape (N, 1, 8, 8), found (2, 64)``.

Fast path: ``json.loads`` and one ``np.asarray`` over the batch, then vectorised finite and bounds
checks; only a failing request is walked element by element to name the culprit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import ConfigError
from warden.gateway.errors import InvalidRequest

__all__ = [
    "InputSpec",
    "PredictRequest",
    "parse_json",
    "parse_predict_request",
    "predict_request_from_doc",
    "validate_batch",
]

_DTYPES = {
    "float16", "float32", "float64",
    "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64",
}  # fmt: skip
_SPEC_KEYS = {"shape", "dtype", "min", "max", "bounds", "max_batch"}
_MAX_RANK = 8
DEFAULT_MAX_DEPTH = 32
"""Deepest JSON nesting accepted anywhere in a request body (beyond what the spec needs)."""


@dataclass(frozen=True, eq=False)
class InputSpec:
    """What one model version accepts (read with :meth:`from_dict`)."""

    shape: tuple[int, ...]
    """Shape of one input, without the batch axis."""
    dtype: str = "float32"
    """Numpy dtype name the batch is converted to."""
    lower: NDArray[np.float64] | None = None
    """Lowest valid value of each feature (shape ``shape``), or ``None`` for no lower bound."""
    upper: NDArray[np.float64] | None = None
    """Highest valid value of each feature (shape ``shape``), or ``None`` for no upper bound."""
    max_batch: int = 256
    """Most inputs one request may carry."""

    def __post_init__(self) -> None:
        shape = self.shape
        if (
            not isinstance(shape, tuple)
            or not 1 <= len(shape) <= _MAX_RANK
            or not all(_is_int(d) and d >= 1 for d in shape)
        ):
            raise ConfigError(
                f"input spec: shape must be a list of 1 to {_MAX_RANK} positive integers, "
                f"found {shape!r}"
            )
        if self.dtype not in _DTYPES:
            raise ConfigError(
                f"input spec: dtype must be one of {sorted(_DTYPES)}, found {self.dtype!r}"
            )
        if not _is_int(self.max_batch) or self.max_batch < 1:
            raise ConfigError(
                f"input spec: max_batch must be an integer >= 1, found {self.max_batch!r}"
            )
        lo, hi = _dtype_range(self.dtype)
        lower = _bound(self.lower, lo, shape, "lower")
        upper = _bound(self.upper, hi, shape, "upper")
        if np.any(lower > upper):
            raise ConfigError("input spec: some lower bound is above its upper bound")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> InputSpec:
        """Read a registered ``input_spec`` (format in the module docstring)."""
        if not isinstance(spec, Mapping):
            raise ConfigError(f"input spec: expected a JSON object, found {type(spec).__name__}")
        unknown = set(spec) - _SPEC_KEYS
        if unknown:
            raise ConfigError(
                f"input spec: unknown key(s) {sorted(unknown)}; expected {sorted(_SPEC_KEYS)}"
            )
        if "shape" not in spec:
            raise ConfigError("input spec: 'shape' is required (one input's shape, e.g. [1, 8, 8])")
        if "bounds" in spec and ("min" in spec or "max" in spec):
            raise ConfigError("input spec: give either 'bounds' or 'min'/'max', not both")
        lower, upper = spec.get("min"), spec.get("max")
        bounds = spec.get("bounds")
        if isinstance(bounds, Mapping):
            if set(bounds) != {"lower", "upper"}:
                raise ConfigError("input spec: bounds object must have exactly 'lower' and 'upper'")
            lower, upper = bounds["lower"], bounds["upper"]
        elif bounds is not None:
            if not isinstance(bounds, list | tuple) or len(bounds) != 2:
                raise ConfigError(f"input spec: bounds must be [min, max], found {bounds!r}")
            lower, upper = bounds
        shape = spec["shape"]
        if not isinstance(shape, list | tuple):
            raise ConfigError(f"input spec: shape must be a list of integers, found {shape!r}")
        return cls(
            shape=tuple(shape),
            dtype=spec.get("dtype", "float32"),
            lower=lower,
            upper=upper,
            max_batch=spec.get("max_batch", 256),
        )

    @property
    def expected(self) -> str:
        """The batch shape as messages show it, e.g. ``(N, 1, 8, 8)``."""
        return "(N, " + ", ".join(str(d) for d in self.shape) + ")"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dtype_range(dtype: str) -> tuple[float, float]:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        info = np.finfo(dt)
        return float(info.min), float(info.max)
    iinfo = np.iinfo(dt)
    return float(iinfo.min), float(iinfo.max)


def _bound(value: Any, default: float, shape: tuple[int, ...], name: str) -> NDArray[np.float64]:
    if value is None:
        value = default
    if isinstance(value, bool) or _contains_bool(value):
        raise ConfigError(f"input spec: {name} bound must be numbers, found a boolean")
    try:
        arr = np.broadcast_to(np.asarray(value, dtype=np.float64), shape).copy()
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"input spec: {name} bound must be a number or nested lists of shape {shape}: {exc}"
        ) from exc
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"input spec: {name} bound must be finite numbers")
    arr.setflags(write=False)
    return arr


def _contains_bool(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return any(_contains_bool(v) for v in value)
    return isinstance(value, bool)


@dataclass(frozen=True, eq=False)
class PredictRequest:
    """A validated predict request body."""

    inputs: NDArray[Any]
    """The batch, of shape ``(n, *spec.shape)`` and the spec's dtype; finite and in bounds."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """The other top-level keys of the body (only those the route allows)."""

    @property
    def rows(self) -> int:
        """Number of inputs in the batch (the request's rate-limit cost)."""
        return int(self.inputs.shape[0])


def _refuse_constant(name: str) -> Any:
    raise InvalidRequest(
        f"body: {name} is not valid JSON; send finite numbers only", status_code=400
    )


def parse_json(body: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse a JSON body (UTF-8); 400 for anything that is not JSON or nests too deeply.

    Nesting of the parsed document is checked only beyond the point ``json`` itself refuses;
    callers that need a tighter limit on a part of the document check that part (see
    :func:`parse_predict_request`).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"body: expected UTF-8 JSON, found an invalid byte at offset {exc.start}",
            status_code=400,
        ) from exc
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"body: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            status_code=400,
        ) from exc
    except RecursionError as exc:
        raise InvalidRequest(
            f"body: JSON nested too deeply (the limit is {max_depth} levels)", status_code=400
        ) from exc


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | dict):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def parse_predict_request(
    body: bytes,
    spec: InputSpec,
    *,
    allowed_options: Collection[str] = (),
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> PredictRequest:
    """Parse ``{"inputs": [...], <allowed options>}`` and validate the batch against ``spec``."""
    doc = parse_json(body, max_depth=max_depth)
    # Booleans would silently become 0/1 in numpy; their absence from the body proves the
    # fast path safe, otherwise the batch is walked element by element.
    bools_possible = b"true" in body or b"false" in body
    return predict_request_from_doc(
        doc,
        spec,
        allowed_options=allowed_options,
        max_depth=max_depth,
        bools_possible=bools_possible,
    )


def predict_request_from_doc(
    doc: Any,
    spec: InputSpec,
    *,
    allowed_options: Collection[str] = (),
    max_depth: int = DEFAULT_MAX_DEPTH,
    bools_possible: bool = True,
) -> PredictRequest:
    """:func:`parse_predict_request` for a body already parsed with :func:`parse_json` (the
    gateway reads the ``version`` option before it knows which spec applies).

    ``bools_possible=False`` (the JSON text holds no ``true``/``false``) enables the fast path.
    """
    if not isinstance(doc, dict):
        raise InvalidRequest(
            f'body: expected a JSON object {{"inputs": [...]}}, found {_describe(doc)}'
        )
    if "inputs" not in doc:
        raise InvalidRequest(f'body: missing "inputs" (a list of inputs of shape {spec.expected})')
    unknown = sorted(set(doc) - {"inputs"} - set(allowed_options))
    if unknown:
        allowed = ", ".join(["inputs", *sorted(allowed_options)])
        raise InvalidRequest(f"body: unknown field(s) {unknown}; expected {allowed}")
    options = {k: v for k, v in doc.items() if k != "inputs"}
    if _depth_exceeds(options, max_depth):
        raise InvalidRequest(
            f"body: JSON nested too deeply (the limit is {max_depth} levels)", status_code=400
        )
    return PredictRequest(
        validate_batch(doc["inputs"], spec, bools_possible=bools_possible), options
    )


def validate_batch(
    inputs: Any, spec: InputSpec, *, field: str = "inputs", bools_possible: bool = True
) -> NDArray[Any]:
    """Check a parsed batch against ``spec``; return it as an array of the spec's dtype.

    ``bools_possible=False`` (the JSON text holds no ``true``/``false``) enables the fast path.
    """
    if not isinstance(inputs, list):
        raise InvalidRequest(
            f"{field}: expected a list of inputs of shape {spec.expected}, "
            f"found {_describe(inputs)}"
        )
    if not inputs:
        raise InvalidRequest(f"{field}: expected at least one input, found an empty list")
    if len(inputs) > spec.max_batch:
        raise InvalidRequest(
            f"{field}: a batch holds at most {spec.max_batch} inputs, found {len(inputs)}; "
            "split it into smaller requests",
            status_code=413,
        )
    arr = None if bools_possible else _as_numeric(inputs)
    if arr is None:
        _walk(inputs, spec, field)  # raises on the first bad element
        arr = _as_numeric(inputs)
        if arr is None:  # mixed huge and negative integers: numpy keeps them as objects
            arr = np.asarray(inputs, dtype=np.float64)
    if arr.shape[1:] != spec.shape:
        raise InvalidRequest(f"{field}: expected shape {spec.expected}, found {tuple(arr.shape)}")
    return _check_values(arr, spec, field)


def _as_numeric(inputs: list[Any]) -> NDArray[Any] | None:
    try:
        arr = np.asarray(inputs)
    except (ValueError, TypeError, OverflowError, RecursionError):
        return None
    return arr if arr.dtype.kind in "fiu" else None


def _check_values(arr: NDArray[Any], spec: InputSpec, field: str) -> NDArray[Any]:
    assert spec.lower is not None and spec.upper is not None
    values = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(values)
    if bad.any():
        idx = _first(bad)
        raise InvalidRequest(
            f"{field}{_path(idx)}: expected a finite number, found {_found(values[idx])}"
        )
    bad = (values < spec.lower) | (values > spec.upper)
    if bad.any():
        idx = _first(bad)
        lo, hi = spec.lower[idx[1:]], spec.upper[idx[1:]]
        raise InvalidRequest(
            f"{field}{_path(idx)}: expected a number in [{lo:.7g}, {hi:.7g}], "
            f"found {_found(values[idx])}"
        )
    target = np.dtype(spec.dtype)
    if target.kind in "iu":
        bad = values != np.floor(values)
        if bad.any():
            idx = _first(bad)
            raise InvalidRequest(
                f"{field}{_path(idx)}: expected an integer ({spec.dtype}), "
                f"found {_found(values[idx])}"
            )
        if arr.dtype.kind in "iu":
            return arr.astype(target)
    return values.astype(target)  # in bounds, and bounds lie within the dtype's range


def _first(mask: NDArray[np.bool_]) -> tuple[int, ...]:
    flat = int(np.argmax(mask.ravel()))
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


def _path(idx: tuple[int, ...]) -> str:
    return "".join(f"[{i}]" for i in idx)


def _found(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | np.integer):
        text = str(int(value))
        return text if len(text) <= 24 else text[:20] + f"... ({len(text)} digits)"
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "infinity" if number > 0 else "-infinity"
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    return f"the number {_found(value)}"


def _walk(inputs: list[Any], spec: InputSpec, field: str) -> None:
    """Raise for the first structural or type error, naming its path.

    A batch whose first-element chain is a rectangle of numbers of the wrong shape gets one
    shape message; anything ragged or mistyped gets the exact element.
    """
    dims, leaf = [], inputs
    while isinstance(leaf, list) and leaf:
        dims.append(len(leaf))
        leaf = leaf[0]
    if _is_number(leaf) and tuple(dims[1:]) != spec.shape:
        raise InvalidRequest(f"{field}: expected shape {spec.expected}, found {tuple(dims)}")
    for i, item in enumerate(inputs):
        _walk_item(item, spec, spec.shape, f"{field}[{i}]")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _walk_item(value: Any, spec: InputSpec, shape: tuple[int, ...], path: str) -> None:
    if not shape:
        if not _is_number(value):
            raise InvalidRequest(f"{path}: expected a number, found {_describe(value)}")
        if isinstance(value, int) and abs(value) > 2**1000:  # float() would overflow
            lo, hi = _dtype_range(spec.dtype)
            raise InvalidRequest(
                f"{path}: expected a number in [{lo:.7g}, {hi:.7g}], found {_found(value)}"
            )
        return
    want = shape[0]
    what = "numbers" if len(shape) == 1 else "lists"
    if not isinstance(value, list) or len(value) != want:
        raise InvalidRequest(f"{path}: expected a list of {want} {what}, found {_describe(value)}")
    for j, item in enumerate(value):
        _walk_item(item, spec, shape[1:], f"{path}[{j}]")
