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

import logging
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
_MAX_EXAMPLES = 10


class HDF5Scanner:
    """``hdf5``: superblock signature at 0, 512, 1024 or 2048."""

    name = "hdf5"

    def sniff(self, head: bytes) -> bool:
        return any(head[o : o + 8] == MAGIC for o in _OFFSETS)

    def scan(self, stream: BinaryIO, ctx: ScanContext) -> Iterator[Finding]:
        import h5py

        try:
            handle = h5py.File(stream, "r")
        except Exception as exc:  # noqa: BLE001 - h5py raises OSError, ValueError, KeyError…
            yield _malformed(ctx, f"h5py cannot open it ({type(exc).__name__}: {exc})")
            return
        with handle:
            for attr in _CONFIG_ATTRS:
                yield from _config_findings(handle, attr, ctx)
            yield from _link_findings(handle, ctx)


def _config_findings(handle: Any, attr: str, ctx: ScanContext) -> Iterator[Finding]:
    import numpy as np

    try:
        if attr not in handle.attrs:
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


def _link_findings(handle: Any, ctx: ScanContext) -> Iterator[Finding]:
    import h5py

    links: list[dict[str, str]] = []
    storage: list[dict[str, Any]] = []
    visited = 0
    stopped = False

    def visit(name: str) -> bool | None:
        nonlocal visited, stopped
        visited += 1
        if visited % 1024 == 0:
            ctx.check_time()
        if visited > MAX_OBJECTS:
            stopped = True
            return True  # stop the walk
        link = handle.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            links.append({"name": name, "file": link.filename, "target": link.path})
            return None
        if not isinstance(link, h5py.HardLink):
            return None
        obj = handle.get(name)
        if isinstance(obj, h5py.Dataset):
            if obj.external:
                files = [str(entry[0]) for entry in obj.external][:_MAX_EXAMPLES]
                storage.append({"name": name, "kind": "external raw storage", "files": files})
            if obj.is_virtual:
                files = sorted({str(m.file_name) for m in obj.virtual_sources()})
                storage.append(
                    {"name": name, "kind": "virtual dataset", "files": files[:_MAX_EXAMPLES]}
                )
        return None

    try:
        handle.visit_links(visit)
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
