"""A version's artifact: which files it is made of, and its digest.

The *artifact digest* is ``sha256:`` + the OpenSSF model_signing root digest — SHA-256 over the
files' raw SHA-256 digests in path-component order — so a signature made with ``warden sign``
(or model_signing) over the same directory signs exactly this digest. Each file's SHA-256 is
also its blob id in the encrypted store, so the digest is recomputed from the database without
decrypting anything. A one-file artifact is named ``"."`` in the manifest, as model_signing
names a single-file model.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Final

from warden.errors import ConfigError, DataError
from warden.supplychain.signing import (
    DEFAULT_IGNORE_PATHS,
    DEFAULT_SIGNATURE_NAME,
    SINGLE_FILE_NAME,
    FileDigest,
    Manifest,
)

__all__ = [
    "DEFAULT_SKIP",
    "MAX_PATH",
    "ArtifactFile",
    "artifact_digest",
    "check_relative",
    "manifest_for",
    "order_key",
    "walk_artifact",
]

DEFAULT_SKIP: Final[tuple[str, ...]] = (*DEFAULT_IGNORE_PATHS, DEFAULT_SIGNATURE_NAME)
"""Paths left out when registering a directory: git metadata (as model_signing leaves them out)
and the signature file ``model.sig`` that ``warden sign`` writes inside a directory (attach it
with ``attach-signature`` instead)."""

MAX_PATH: Final = 1000
"""The longest relative file name a version may hold (the database column's width)."""

ArtifactFile = tuple[str, Path, int]
"""(relative POSIX path, file on disk, size)."""


def order_key(name: str) -> tuple[str, ...]:
    """model_signing's sort order: by path component, so ``a/b`` sorts before ``a.txt``."""
    return tuple(name.split("/"))


def check_relative(name: str) -> str:
    """``name`` if it is a plain relative POSIX path inside the artifact; DataError otherwise."""
    parts = PurePosixPath(name).parts
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\0" in name
        or any(p in ("", ".", "..") for p in parts)
        or "/".join(parts) != name
    ):
        raise DataError(f"artifact file name {name!r} is not a plain relative path")
    if len(name) > MAX_PATH:
        raise DataError(f"artifact file name {name[:60]!r}… is longer than {MAX_PATH} characters")
    return name


def _skipped(parts: tuple[str, ...], skip: Iterable[tuple[str, ...]]) -> bool:
    return any(parts[: len(s)] == s for s in skip)


def walk_artifact(path: Path, *, skip: Iterable[str] = DEFAULT_SKIP) -> list[ArtifactFile]:
    """The regular files of a file or directory artifact, sorted by path component.

    A one-file artifact gives one entry named after the file. Symbolic links anywhere, and
    special files (devices, FIFOs, sockets), are refused with a :class:`DataError`; nothing is
    followed. ``skip`` lists paths (relative, POSIX) left out of a directory.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file or directory") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise DataError(
            f"{path}: is a symbolic link; register the real file or directory (links are never "
            "followed into the registry)"
        )
    if stat.S_ISREG(st.st_mode):
        return [(check_relative(path.name), path, st.st_size)]
    if not stat.S_ISDIR(st.st_mode):
        raise DataError(f"{path}: not a regular file or directory")
    skipped = [tuple(s.split("/")) for s in skip]
    found: list[ArtifactFile] = []
    stack: list[tuple[Path, tuple[str, ...]]] = [(path, ())]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as exc:
            raise DataError(f"{directory}: cannot list: {exc.strerror or exc}") from exc
        for entry in entries:
            parts = (*prefix, entry.name)
            if _skipped(parts, skipped):
                continue
            name = "/".join(parts)
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise DataError(f"{name!r}: the file name is not valid UTF-8") from None
            if entry.is_symlink():
                raise DataError(
                    f"{path}: {name} is a symbolic link; links are never followed into the "
                    "registry: replace it with the file it points to, or remove it"
                )
            est = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(est.st_mode):
                stack.append((Path(entry.path), parts))
            elif stat.S_ISREG(est.st_mode):
                found.append((check_relative(name), Path(entry.path), est.st_size))
            else:
                raise DataError(f"{path}: {name} is not a regular file (device, FIFO, socket)")
    if not found:
        raise DataError(f"{path}: the directory holds no files to register")
    return sorted(found, key=lambda f: order_key(f[0]))


def manifest_for(kind: str, files: Iterable[tuple[str, str]], *, name: str) -> Manifest:
    """The model_signing manifest of an artifact from its ``(path, sha256 hex)`` pairs."""
    pairs = list(files)
    if kind == "file":
        if len(pairs) != 1:
            raise DataError(f"a one-file artifact has exactly one file, found {len(pairs)}")
        entries = [FileDigest(SINGLE_FILE_NAME, pairs[0][1])]
    elif kind == "dir":
        entries = sorted((FileDigest(p, d) for p, d in pairs), key=lambda f: order_key(f.name))
    else:
        raise DataError(f"artifact kind {kind!r}: expected 'file' or 'dir'")
    if not entries:
        raise DataError("an artifact needs at least one file")
    return Manifest(model_name=name, files=tuple(entries))


def artifact_digest(manifest: Manifest) -> str:
    """``sha256:`` + the manifest's root digest."""
    return f"sha256:{manifest.root_digest}"
