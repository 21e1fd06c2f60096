"""Corpus part: container formats (zip, tar, gzip/bzip2/xz, 7z) — hostile and benign.

Everything is built as bytes in memory. Hostile zips are written by a small raw writer
(:func:`raw_zip`) so that headers can lie in the ways published scanner bypasses do. The
malicious pickle inside is assembled opcode by opcode (:func:`evil_pickle`) and never loaded.

``EXPECTED`` maps each malicious sample to the archive-level finding ids it must produce;
``PICKLE_REACHABLE`` lists the samples whose malicious pickle the scanner must reach (and the
pickle analyser flag) through the container.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import shlex
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EXPECTED",
    "PICKLE_REACHABLE",
    "Member",
    "benign",
    "evil_pickle",
    "malicious",
    "raw_zip",
    "seven_zip_bytes",
    "seven_zip_with_name",
    "tar_bytes",
    "tar_link",
    "zip_bytes",
]

EXPECTED: dict[str, frozenset[str]] = {
    "zip_pickle_as_txt.zip": frozenset(),
    "torch_evil.pt": frozenset(),
    "zip_name_mismatch.zip": frozenset({"scan.zip.name-mismatch"}),
    "zip_fake_encrypted.zip": frozenset({"scan.zip.encrypted"}),
    "zip_odd_flags.zip": frozenset({"scan.zip.odd-flags"}),
    "zip_bad_crc.zip": frozenset({"scan.zip.bad-crc"}),
    "zip_duplicate.zip": frozenset({"scan.zip.duplicate-name"}),
    "zip_overlap.zip": frozenset({"scan.zip.overlap"}),
    "zip_traversal.zip": frozenset({"scan.zip.path-traversal"}),
    "zip_symlink.zip": frozenset({"scan.zip.symlink"}),
    "zip_unlisted.zip": frozenset({"scan.zip.unlisted-member"}),
    "zip_empty_directory.zip": frozenset({"scan.zip.unlisted-member"}),
    "zip_deflate64.zip": frozenset({"scan.zip.unsupported-method"}),
    "zip_truncated.zip": frozenset({"scan.zip.malformed"}),
    "zip_header_mismatch.zip": frozenset({"scan.zip.header-mismatch"}),
    "zip64.zip": frozenset(),
    "nested.zip": frozenset(),
    "bomb.zip": frozenset({"scan.archive.bomb"}),
    "polyglot.pkl": frozenset({"scan.zip.polyglot"}),
    "evil_pickle.7z": frozenset(),
    "encrypted.7z": frozenset({"scan.sevenzip.encrypted"}),
    "traversal.7z": frozenset({"scan.sevenzip.path-traversal"}),
    "evil_pickle.tar.gz": frozenset(),
    "traversal.tar": frozenset({"scan.tar.path-traversal"}),
    "tar_symlink.tar": frozenset({"scan.tar.symlink", "scan.tar.path-traversal"}),
    "tar_bad_header.tar": frozenset({"scan.tar.malformed"}),
    "evil.pkl.bz2": frozenset(),
    "evil.pkl.xz": frozenset(),
    "gzip_trailing.gz": frozenset({"scan.compressed.trailing-data"}),
}
"""Archive-level finding ids each malicious sample must produce (at least these)."""

PICKLE_REACHABLE: frozenset[str] = frozenset(EXPECTED) - {
    "bomb.zip",
    "encrypted.7z",
    "zip_deflate64.zip",
    "tar_bad_header.tar",
    "traversal.7z",
}
"""Samples whose malicious pickle is readable through the container (so must be flagged)."""


def evil_pickle(marker: str) -> bytes:
    """Protocol-2 pickle calling ``os.system("touch <marker>")``: GLOBAL, BINUNICODE, REDUCE."""
    cmd = f"touch {shlex.quote(marker)}".encode()
    return (
        b"\x80\x02cos\nsystem\nq\x00X"
        + struct.pack("<I", len(cmd))
        + cmd
        + b"q\x01\x85q\x02Rq\x03."
    )


# --- a raw zip writer whose headers can lie ----------------------------------------------


@dataclass(frozen=True)
class Member:
    """One member for :func:`raw_zip`; every override makes one header lie."""

    name: str
    data: bytes
    method: int = 0
    """0 stored, 8 deflate; other values are written as given (payload stored)."""
    flags: int = 0x0800
    local_name: str | None = None
    local_flags: int | None = None
    crc: int | None = None
    central_size: int | None = None
    """Uncompressed size declared in the directory (default: the real one)."""
    made_by: int = 20
    external_attr: int = 0
    listed: bool = True
    alias_of: int | None = None
    """Index of an earlier member whose local header this directory record points at."""


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def raw_zip(members: list[Member], *, zip64: bool = False, prefix: bytes = b"") -> bytes:
    """A zip built header by header (offsets relative to the end of ``prefix``)."""
    out = bytearray()
    central = bytearray()
    placed: list[tuple[int, int, int, int]] = []  # offset, crc, csize, usize
    count = 0
    for m in members:
        name = m.name.encode()
        if m.alias_of is not None:
            offset, crc, csize, usize = placed[m.alias_of]
        else:
            payload = _deflate(m.data) if m.method == 8 else m.data
            crc = zlib.crc32(m.data) if m.crc is None else m.crc
            csize, usize = len(payload), len(m.data)
            offset = len(out)
            local_name = (m.local_name if m.local_name is not None else m.name).encode()
            lflags = m.flags if m.local_flags is None else m.local_flags
            out += struct.pack(
                "<4sHHHHHIIIHH",
                b"PK\x03\x04",
                20,
                lflags,
                m.method,
                0,
                0x21,
                crc,
                csize,
                usize,
                len(local_name),
                0,
            )
            out += local_name + payload
        placed.append((offset, crc, csize, usize))
        if not m.listed:
            continue
        count += 1
        declared = usize if m.central_size is None else m.central_size
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            m.made_by,
            20,
            m.flags,
            m.method,
            0,
            0x21,
            crc,
            csize,
            declared,
            len(name),
            0,
            0,
            0,
            0,
            m.external_attr,
            offset,
        )
        central += name
    cd_offset = len(out)
    out += central
    if zip64:
        rec = len(out)
        out += struct.pack(
            "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(central), cd_offset
        )
        out += struct.pack("<4sIQI", b"PK\x06\x07", 0, rec, 1)
        out += struct.pack(
            "<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 2**32 - 1, 2**32 - 1, 0
        )
    else:
        out += struct.pack(
            "<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(central), cd_offset, 0
        )
    return prefix + bytes(out)


def zip_bytes(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of ``files`` written by :mod:`zipfile`, every member with ``method``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_bytes(
    entries: Iterable[tarfile.TarInfo | tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT
) -> bytes:
    """A tar of ``entries`` in format ``fmt``: ``(name, data)`` files (mtime 0) and data-less
    members such as :func:`tar_link` makes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tf.addfile(entry)
                continue
            info = tarfile.TarInfo(entry[0])
            info.size = len(entry[1])
            tf.addfile(info, io.BytesIO(entry[1]))
    return buf.getvalue()


def tar_link(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    """A data-less tar member: a link (``tarfile.SYMTYPE``, ``LNKTYPE``) or a device, FIFO …"""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def seven_zip_bytes(files: dict[str, bytes], **options: Any) -> bytes:
    """A 7z of ``files`` written by py7zr (``options``: ``password``, ``header_encryption`` …)."""
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", **options) as sz:
        for name, data in files.items():
            sz.writestr(data, name)
    return buf.getvalue()


def seven_zip_with_name(files: dict[str, bytes], name: str, replacement: str) -> bytes:
    """A 7z whose member ``name`` is renamed to ``replacement`` (same length) after writing:
    py7zr refuses to write unsafe names, so the plain (unencoded) header is patched and its
    CRCs recomputed."""
    import py7zr

    assert len(name) == len(replacement)
    buf = io.BytesIO()
    sz = py7zr.SevenZipFile(buf, "w")
    sz.encoded_header_mode = False
    for member, data in files.items():
        sz.writestr(data, member)
    sz.close()
    out = bytearray(buf.getvalue())
    at = out.find(name.encode("utf-16-le"))
    out[at : at + 2 * len(name)] = replacement.encode("utf-16-le")
    offset, size = struct.unpack_from("<QQ", out, 12)
    struct.pack_into("<I", out, 28, zlib.crc32(out[32 + offset : 32 + offset + size]))
    struct.pack_into("<I", out, 8, zlib.crc32(out[12:32]))
    return bytes(out)


README = b"# Model card\n\nA small demo model used by Warden's tests.\n"


def malicious(marker: str) -> dict[str, bytes]:
    """Hostile containers; each hides :func:`evil_pickle` (or is a bomb / unreadable)."""
    evil = evil_pickle(marker)
    torch_like = {
        "archive/data.pkl": evil,
        "archive/version": b"3\n",
        "archive/byteorder": b"little",
        "archive/data/0": bytes(range(64)),
    }
    truncated = raw_zip([Member("readme.txt", README, 8), Member("data.pkl", evil, 8)])
    tar_ok = tar_bytes([("readme.txt", README)])
    bad_block = b"\xde\xad\xbe\xef" * 128
    # header + one data block + tar_bytes([("model.pkl", evil)])
    hidden_tar = tar_ok[:1024] + bad_block
    return {
        "zip_pickle_as_txt.zip": zip_bytes({"data.txt": evil}),
        "torch_evil.pt": zip_bytes(torch_like, zipfile.ZIP_STORED),
        "zip_name_mismatch.zip": raw_zip(
            [Member("weights.bin", evil, local_name="archive/data.pkl")]
        ),
        "zip_fake_encrypted.zip": raw_zip([Member("data.pkl", evil, flags=0x0801)]),
        "zip_odd_flags.zip": raw_zip([Member("data.pkl", evil, 8, flags=0x2010)]),
        "zip_bad_crc.zip": raw_zip([Member("data.pkl", evil, crc=0x12345678)]),
        "zip_duplicate.zip": raw_zip(
            [Member("data.pkl", b"\x80\x02K\x01."), Member("data.pkl", evil)]
        ),
        "zip_overlap.zip": raw_zip(
            [Member("data.pkl", evil, 8), Member("data.pkl.bak", b"", 8, alias_of=0)]
        ),
        "zip_traversal.zip": raw_zip([Member("../../.config/evil.pkl", evil)]),
        "zip_symlink.zip": raw_zip(
            [
                Member("link", b"/etc/passwd", made_by=(3 << 8) | 20, external_attr=0o120777 << 16),
                Member("data.pkl", evil),
            ]
        ),
        "zip_unlisted.zip": raw_zip(
            [
                Member("readme.txt", README),
                Member("hidden.pkl", evil, listed=False),
                Member("weights.txt", b"# weights\n"),
            ]
        ),
        "zip_empty_directory.zip": raw_zip([Member("data.pkl", evil, 8, listed=False)]),
        "zip_deflate64.zip": raw_zip([Member("data.pkl", evil, 9)]),
        "zip_truncated.zip": truncated[: truncated.index(b"PK\x01\x02")],
        "zip_header_mismatch.zip": raw_zip([Member("data.pkl", evil, 8, central_size=3)]),
        "zip64.zip": raw_zip([Member("data.pkl", evil, 8)], zip64=True),
        "nested.zip": zip_bytes(
            {"readme.txt": README, "inner.zip": zip_bytes({"inner/data.pkl": evil})}
        ),
        "bomb.zip": zip_bytes({"zeros.bin": bytes(16 << 20)}),
        "polyglot.pkl": evil + zip_bytes({"data.pkl": evil}),
        "evil_pickle.7z": seven_zip_bytes({"readme.txt": README, "model/data.pkl": evil}),
        "encrypted.7z": seven_zip_bytes({"model/data.pkl": evil}, password="hunter2"),
        "traversal.7z": seven_zip_with_name(
            {"readme.txt": README, "xx/xx/evil.pkl": evil}, "xx/xx/", "../../"
        ),
        "evil_pickle.tar.gz": gzip.compress(
            tar_bytes([("readme.txt", README), ("model/data.pkl", evil)]), mtime=0
        ),
        "traversal.tar": tar_bytes([("../../evil.pkl", evil)]),
        "tar_symlink.tar": tar_bytes(
            [("data.pkl", evil), tar_link("config", tarfile.SYMTYPE, "/etc/passwd")]
        ),
        "tar_bad_header.tar": hidden_tar,
        "evil.pkl.bz2": bz2.compress(evil),
        "evil.pkl.xz": lzma.compress(evil),
        "gzip_trailing.gz": gzip.compress(README, mtime=0) + evil,
    }


def benign() -> dict[str, bytes]:
    """Ordinary containers of harmless content: none may produce a finding."""
    import numpy as np
    import torch

    npy = io.BytesIO()
    np.save(npy, np.arange(12, dtype=np.float32).reshape(3, 4))
    npz = io.BytesIO()
    np.savez(npz, w=np.ones((4, 4), np.float32), b=np.zeros(4, np.int64))
    npz_c = io.BytesIO()
    np.savez_compressed(npz_c, w=np.linspace(0, 1, 64), idx=np.arange(10))
    gen = torch.Generator().manual_seed(0)
    state = {"fc.weight": torch.randn(4, 3, generator=gen), "fc.bias": torch.zeros(4)}
    pt = io.BytesIO()
    torch.save(state, pt)
    text_npy = {"readme.txt": README, "weights.npy": npy.getvalue()}
    return {
        "text_npy.zip": zip_bytes(text_npy),
        "text_npy_stored.zip": zip_bytes(text_npy, zipfile.ZIP_STORED),
        "text_npy.tar.gz": gzip.compress(tar_bytes(text_npy.items()), mtime=0),
        "text.tar.bz2": bz2.compress(tar_bytes([("notes/readme.txt", README)])),
        "torch_state.pt": pt.getvalue(),
        "arrays.npz": npz.getvalue(),
        "arrays_compressed.npz": npz_c.getvalue(),
        "notes.7z": seven_zip_bytes({"readme.txt": README, "weights.npy": npy.getvalue()}),
        "notes.txt.xz": lzma.compress(README),
        "nested_ok.zip": zip_bytes({"inner.zip": zip_bytes({"readme.txt": README})}),
        "empty.zip": zip_bytes({}),
    }
