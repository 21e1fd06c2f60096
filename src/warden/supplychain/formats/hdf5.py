"""HDF5 (Keras ``.h5``): read the model config attributes and look for links to other files.

Legacy Keras saves the whole model as HDF5 with the architecture as JSON in the root
attributes ``model_config`` and ``training_config``; loading rebuilds every layer from it, so
a ``Lambda`` layer with marshalled bytecode runs on load (CVE-2024-3660). The attributes are
read with h5py (which reads; it executes nothing) and checked with
:func:`warden.supplychain.formats.keras.inspect_config`.

HDF5 can also point outside the file: external links, external raw storage and virtual
datasets name other files that reading a dataset opens. Those are reported
(``hdf5.external-link``, ``hdf5.external-storage``) and never followed. h5py is imported only
when an HDF5 stream is scanned.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from typing import Any, BinaryIO

from warden.assess.finding import Finding, Severity
from warden.supplychain.formats.keras import inspect_config, issue_findings, parse_json
from warden.supplychain.scanner import FormatScanner, ScanContext, ScanLimitExceeded

__all__ = ["MAGIC", "SCANNERS", "HDF5Scanner"]

log = logging.getLogger(__name__)

MAGIC = b"\x89HDF\r\n\x1a\n"
"""The HDF5 superblock signature."""
_OFFSETS = (0, 512, 1024, 2048)
"""Where the signature may sit within the sniffed head (after a user block)."""
_CONFIG_ATTRS = ("model_config", "training_config")
MAX_OBJECTS = 1_000_000
"""Links visited per file before the walk stops (reported)."""
IMAGE_BYTES = 64 << 20
"""In-memory streams up to this size are handed to HDF5 as a file image (its core driver)
rather than read through Python callbacks."""
_MAX_EXAMPLES = 10


class HDF5Scanner:
    """``hdf5``: superblock signature at 0, 512, 1024 or 2048."""

    name = "hdf5"

    def sniff(self, head: bytes) -> bool:
        return (
            head[:8] == MAGIC
            or head[512:520] == MAGIC
            or head[1024:1032] == MAGIC
            or head[2048:2056] == MAGIC
        )

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        try:
            handle = _open(stream)
        except Exception as exc:  # noqa: BLE001 - h5py raises OSError, ValueError, KeyError…
            yield _malformed(ctx, f"h5py cannot open it ({type(exc).__name__}: {exc})")
            return
        with handle:
            for attr in _CONFIG_ATTRS:
                yield from _config_findings(handle, attr, ctx)
            yield from _link_findings(handle, ctx)


def _open(stream: BinaryIO) -> Any:
    """An ``h5py.File`` reading ``stream``; read-only, nothing is written anywhere.

    Bytes already in memory become a file image for HDF5's core driver (no backing store):
    the library then parses them without a call back into Python for every read. The driver
    refuses an image whose name is an existing file, so the name is one that cannot exist.
    """
    import h5py

    if isinstance(stream, io.BytesIO) and len(data := stream.getvalue()) <= IMAGE_BYTES:
        from h5py import h5f, h5p

        fapl = h5p.create(h5p.FILE_ACCESS)
        fapl.set_fapl_core(backing_store=False)
        fapl.set_file_image(data)
        return h5py.File(h5f.open(_IMAGE_NAME, h5f.ACC_RDONLY, fapl=fapl))
    return h5py.File(stream, "r")


_IMAGE_NAME = os.fsencode(os.path.join(os.devnull, "warden-hdf5-image"))
"""A path under the null device: never an existing file."""


def _config_findings(handle: Any, attr: str, ctx: ScanContext) -> Iterator[Finding]:
    import numpy as np
    from h5py import h5a

    try:
        if not h5a.exists(handle.id, attr.encode()):
            return
        value = handle.attrs[attr]
    except Exception as exc:  # noqa: BLE001 - unreadable attribute types
        yield _malformed(ctx, f"attribute {attr} is unreadable ({type(exc).__name__}: {exc})")
        return
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        yield _malformed(ctx, f"attribute {attr} is a {type(value).__name__}, not JSON text")
        return
    try:
        obj, shadowed = parse_json(value)
    except (ValueError, RecursionError) as exc:
        yield _malformed(ctx, f"attribute {attr} is not valid JSON ({exc})")
        return
    issues = inspect_config([obj, *shadowed], ctx.check_time)
    yield from issue_findings(ctx, issues, f"HDF5 attribute {attr}")


def _name(raw: bytes) -> str:
    """A link name as h5py shows it (UTF-8; undecodable names as their bytes' repr)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return repr(raw)


def _link_findings(handle: Any, ctx: ScanContext) -> Iterator[Finding]:
    """Walk every link with h5py's low-level API (link types from the walk itself; datasets
    opened only to read their creation properties): a fraction of the high-level cost."""
    from h5py import h5d, h5l, h5o

    fid = handle.id
    links: list[dict[str, str]] = []
    storage: list[dict[str, Any]] = []
    visited = 0
    stopped = False

    def visit(raw: bytes, info: Any) -> bool | None:
        nonlocal visited, stopped
        visited += 1
        if visited % 1024 == 0:
            ctx.check_time()
        if visited > MAX_OBJECTS:
            stopped = True
            return True  # stop the walk
        kind = info.type
        if kind == h5l.TYPE_EXTERNAL:
            file, target = fid.links.get_val(raw)
            links.append({"name": _name(raw), "file": os.fsdecode(file), "target": _name(target)})
            return None
        if kind != h5l.TYPE_HARD or h5o.get_info(fid, raw).type != h5o.TYPE_DATASET:
            return None
        dcpl = h5d.open(fid, raw).get_create_plist()
        count = dcpl.get_external_count()
        if count > 0:
            files = [os.fsdecode(dcpl.get_external(i)[0]) for i in range(min(count, _MAX_EXAMPLES))]
            storage.append({"name": _name(raw), "kind": "external raw storage", "files": files})
        if dcpl.get_layout() == h5d.VIRTUAL:
            names = {
                os.fsdecode(dcpl.get_virtual_filename(j)) for j in range(dcpl.get_virtual_count())
            }
            storage.append(
                {
                    "name": _name(raw),
                    "kind": "virtual dataset",
                    "files": sorted(names)[:_MAX_EXAMPLES],
                }
            )
        return None

    try:
        fid.links.visit(visit, info=True)
    except ScanLimitExceeded:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt object table is a finding, not a crash
        yield _malformed(ctx, f"object table is unreadable ({type(exc).__name__}: {exc})")
    if links:
        yield _outside_file(
            ctx,
            "hdf5.external-link",
            "HDF5: external links to other files",
            f"{len(links)} link(s); following them opens the named files.",
            "links",
            links,
            "linked files",
        )
    if storage:
        yield _outside_file(
            ctx,
            "hdf5.external-storage",
            "HDF5: datasets stored in other files",
            f"{len(storage)} dataset(s) read their data from files outside this one.",
            "datasets",
            storage,
            "referenced files",
        )
    if stopped:
        yield ctx.finding(
            "hdf5.too-many-objects",
            Severity.LOW,
            f"HDF5: more than {MAX_OBJECTS} links; the rest was not checked",
            remediation="The file was only partly analysed: treat it as unverified.",
        )


def _outside_file(
    ctx: ScanContext,
    rule: str,
    title: str,
    summary: str,
    key: str,
    found: list[dict[str, Any]],
    what: str,
) -> Finding:
    """The MEDIUM finding for objects that make a reader open other files (``found``, kept
    under ``key`` in the evidence up to the first few)."""
    return ctx.finding(
        rule,
        Severity.MEDIUM,
        title,
        summary=summary,
        evidence={"count": len(found), key: found[:_MAX_EXAMPLES]},
        remediation=f"Check the {what}; a model file should be self-contained.",
    )


def _malformed(ctx: ScanContext, message: str) -> Finding:
    return ctx.finding(
        "hdf5.malformed",
        Severity.MEDIUM,
        f"HDF5: {message}"[:300],
        remediation="A file that cannot be read cannot be vouched for; obtain it from a "
        "trusted source.",
    )


SCANNERS: list[FormatScanner] = [HDF5Scanner()]
