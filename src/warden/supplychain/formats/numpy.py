"""NumPy ``.npy`` arrays (format versions 1.0, 2.0 and 3.0).

The header is a Python dict literal, parsed with :func:`ast.literal_eval` only (never
``eval``), then checked the way ``numpy.lib.format`` checks it: exactly the keys ``descr``,
``fortran_order`` and ``shape``; non-negative integer dimensions; a dtype descriptor numpy
accepts. Plain arrays must hold exactly ``prod(shape) * itemsize`` bytes after the header. An
array whose dtype holds Python objects (``|O``, or a structured dtype with an ``O`` field) is a
pickle after the header: ``np.load(allow_pickle=True)`` unpickles it, so it is reported
(``numpy.object-array``) and analysed with
:func:`~warden.supplychain.formats.pickle.scan_pickle_stream`.

``.npz`` files are zip archives of ``.npy`` members; the zip scanner dispatches each member
here.

Rule ids (``scan.`` + id): ``numpy.header-invalid`` (MEDIUM), ``numpy.header-oversized``
(LOW), ``numpy.truncated`` (MEDIUM), ``numpy.trailing-bytes`` (MEDIUM),
``numpy.object-array`` (MEDIUM).
"""

from __future__ import annotations

import ast
import os
import re
import struct
import warnings
from collections.abc import Iterator
from typing import Any, BinaryIO, Final

from warden.assess.finding import Finding, Severity
from warden.supplychain.formats.pickle import scan_pickle_stream
from warden.supplychain.scanner import FormatScanner, ScanContext

__all__ = ["SCANNERS", "NumpyFormat", "parse_header"]

MAGIC: Final = b"\x93NUMPY"
NUMPY_MAX_HEADER: Final = 10_000
"""numpy refuses longer headers unless ``allow_pickle=True`` (``max_header_size``)."""
MAX_HEADER: Final = 1 << 20
"""Longest header this scanner parses at all."""
_HEADER_INFO: Final = {(1, 0): ("<H", "latin1"), (2, 0): ("<I", "latin1"), (3, 0): ("<I", "utf8")}
_PY2_LONG = re.compile(r"(?<=\d)L\b")


class HeaderError(ValueError):
    """The ``.npy`` header is not what numpy would accept."""


def parse_header(text: str, version: tuple[int, int]) -> tuple[Any, bool, tuple[int, ...]]:
    """``(descr, fortran_order, shape)`` from a header literal; :class:`HeaderError` if bad."""
    try:
        d = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as exc:
        if version > (2, 0):
            raise HeaderError(f"cannot parse header: {exc}") from None
        try:  # Python 2 writers left "L" suffixes on ints (numpy's _filter_header)
            d = ast.literal_eval(_PY2_LONG.sub("", text))
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
            raise HeaderError(f"cannot parse header: {exc}") from None
    if not isinstance(d, dict):
        raise HeaderError(f"header is not a dict but a {type(d).__name__}")
    if set(d) != {"descr", "fortran_order", "shape"}:
        raise HeaderError(f"header keys are {sorted(map(str, d))}, not descr/fortran_order/shape")
    shape = d["shape"]
    if not isinstance(shape, tuple) or not all(type(x) is int for x in shape):
        raise HeaderError(f"shape is not a tuple of ints: {shape!r}"[:200])
    if any(x < 0 for x in shape):
        raise HeaderError(f"shape has negative dimensions: {shape!r}"[:200])
    if not isinstance(d["fortran_order"], bool):
        raise HeaderError(f"fortran_order is not a bool: {d['fortran_order']!r}"[:200])
    return d["descr"], d["fortran_order"], shape


def _dtype(descr: Any) -> tuple[int, bool]:
    """(itemsize, hasobject) of a header ``descr``, as numpy builds it (a pure constructor)."""
    import numpy as np  # lazily: only .npy files need it

    try:
        from numpy.lib.format import descr_to_dtype

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dt = descr_to_dtype(descr)
    except (TypeError, ValueError, KeyError, IndexError, RecursionError) as exc:
        raise HeaderError(f"descr is not a valid dtype: {exc}"[:200]) from None
    return int(np.dtype(dt).itemsize), bool(dt.hasobject)


def _size(stream: BinaryIO) -> int | None:
    try:
        pos = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(pos)
    except (OSError, ValueError):
        return None
    return end


class NumpyFormat:
    """``.npy`` arrays: header validation, size check, object arrays analysed as pickles."""

    name = "numpy"
    first_bytes = MAGIC[:1]

    def sniff(self, head: bytes) -> bool:
        """The ``\\x93NUMPY`` magic."""
        return head.startswith(MAGIC)

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        """Validate the header and the data size; analyse object arrays' pickles."""
        head = stream.read(8)
        version = (head[6], head[7]) if len(head) == 8 else (0, 0)
        info = _HEADER_INFO.get(version)
        if info is None:
            yield self._invalid(ctx, f"unsupported .npy format version {version[0]}.{version[1]}")
            return
        fmt, encoding = info
        raw_len = stream.read(struct.calcsize(fmt))
        if len(raw_len) != struct.calcsize(fmt):
            yield self._invalid(ctx, "file ends inside the header length")
            return
        hlen = struct.unpack(fmt, raw_len)[0]
        if hlen > MAX_HEADER:
            yield self._invalid(ctx, f"header of {hlen} bytes is far beyond numpy's limits")
            return
        raw = stream.read(hlen)
        if len(raw) != hlen:
            yield ctx.finding(
                "numpy.truncated",
                Severity.MEDIUM,
                f".npy file ends inside its {hlen}-byte header",
                evidence={"header_length": hlen, "read": len(raw)},
            )
            return
        try:
            text = raw.decode(encoding)
            descr, _fortran, shape = parse_header(text, version)
            itemsize, hasobject = _dtype(descr)
        except (UnicodeDecodeError, HeaderError) as exc:
            yield self._invalid(ctx, str(exc))
            return
        if len(text) > NUMPY_MAX_HEADER:
            yield ctx.finding(
                "numpy.header-oversized",
                Severity.LOW,
                f".npy header of {len(text)} characters exceeds numpy's {NUMPY_MAX_HEADER} "
                "limit; numpy only loads it with allow_pickle=True",
                evidence={"header_length": len(text)},
            )
        data_at = len(head) + len(raw_len) + hlen
        if hasobject:
            yield ctx.finding(
                "numpy.object-array",
                Severity.MEDIUM,
                "numpy array of Python objects: its data is a pickle that "
                "np.load(allow_pickle=True) unpickles",
                summary="The pickle was analysed; anything it imports or calls is reported "
                "separately.",
                evidence={"descr": repr(descr)[:200], "shape": list(shape[:8]), "offset": data_at},
                remediation="Store numeric arrays only (np.save without object dtype), or "
                "safetensors; never load object arrays from untrusted sources.",
            )
            yield from scan_pickle_stream(stream, ctx, label="numpy-object-array")
            return
        count = 1
        for dim in shape:
            count *= dim
        nbytes = count * itemsize
        size = _size(stream)
        if size is None:
            return
        have = size - data_at
        if have < nbytes:
            yield ctx.finding(
                "numpy.truncated",
                Severity.MEDIUM,
                f".npy data is truncated: header promises {nbytes} bytes, {have} present",
                evidence={"expected": nbytes, "present": have, "offset": data_at},
                remediation="Regenerate the file; a truncated array cannot be vouched for.",
            )
        elif have > nbytes:
            yield ctx.finding(
                "numpy.trailing-bytes",
                Severity.MEDIUM,
                f"{have - nbytes} bytes follow the .npy array data",
                summary="numpy ignores them; data appended to an array can carry a payload for "
                "another parser (a polyglot file).",
                evidence={"expected": nbytes, "present": have, "offset": data_at + nbytes},
                remediation="Regenerate the file with np.save; strip anything after the data.",
            )

    def _invalid(self, ctx: ScanContext, message: str) -> Finding:
        return ctx.finding(
            "numpy.header-invalid",
            Severity.MEDIUM,
            f".npy header is invalid: {message}"[:200],
            remediation="Regenerate the file with np.save; numpy refuses a malformed header, "
            "and a file that cannot be parsed cannot be vouched for.",
        )


SCANNERS: list[FormatScanner] = [NumpyFormat()]
