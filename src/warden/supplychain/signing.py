"""Sign and verify model files, in the format of OpenSSF model_signing v1.x (key-based).

A model (a directory, or one file) is summarised by a :class:`Manifest`: the SHA-256 of every
regular file, named by its POSIX path relative to the model. The manifest becomes an in-toto
Statement v1 whose predicate (type ``https://model_signing/signature/v1.0``) lists the files
and how they were serialised, and whose one subject is the model's name with a *root digest*:
SHA-256 over the raw file digests in manifest order. The statement is signed as a DSSE envelope
(the signature covers the DSSE pre-authentication encoding, PAE) and written as a sigstore
bundle v0.3 JSON file, ``model.sig`` by default. This is the layout model_signing's key
signer writes (same fields, names, order of resources, PAE and key hint; JSON whitespace and
key order may differ, which the signature covers but no verifier compares), so either tool
verifies the other's ECDSA signatures.

Verification fails closed: the bundle must parse, name the in-toto payload type and the v1.0
predicate, carry exactly one signature that verifies with the given public key, list at least
one file, use only SHA-256, and its root digest must match its resources. Only then is the
model re-hashed, and files that differ are reported by name (modified, missing, extra).

::

    path --hash_model--> Manifest --statement--> in-toto JSON --PAE--> signature
                                                       |                   |
                                                       +--- DSSE envelope -+--> sigstore bundle

Not supported (refused with a clear error): Sigstore keyless/certificate bundles, shard
serialisation (``method: "shards"``), hashes other than SHA-256, symbolic links.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import stat
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final, TypeAlias

from warden.errors import ConfigError, DataError, SignatureError
from warden.supplychain.keys import (
    KeySource,
    Password,
    PrivateKey,
    PublicKey,
    key_id,
    load_private_key,
    load_public_key,
    sign_message,
    verify_message,
)

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "DEFAULT_IGNORE_PATHS",
    "DEFAULT_SIGNATURE_NAME",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "FileDigest",
    "Manifest",
    "SignatureError",
    "VerifyResult",
    "default_signature_path",
    "hash_model",
    "make_bundle",
    "manifest_from_statement",
    "open_bundle",
    "pae",
    "sign",
    "verify",
]

log = logging.getLogger(__name__)

PathLike: TypeAlias = str | os.PathLike[str]

STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE: Final = "https://model_signing/signature/v1.0"
PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
BUNDLE_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"
HASH_TYPE: Final = "sha256"
DEFAULT_SIGNATURE_NAME: Final = "model.sig"
"""Where :func:`sign` writes a directory's signature, inside it (model_signing's default)."""
DEFAULT_IGNORE_PATHS: Final[tuple[str, ...]] = (".git", ".gitattributes", ".github", ".gitignore")
"""model_signing's default ignored paths (its ``ignore_git_paths``), relative to the model."""
SINGLE_FILE_NAME: Final = "."
"""The resource name of a one-file model: model_signing names it by its path relative to
itself."""

READ_BUFFER: Final = 1 << 20
"""Bytes per ``readinto`` into one reused buffer per thread. hashlib drops the GIL for each
update, so every worker hashes in parallel; 1 MiB still sits in the CPU cache between the copy
and the hash. Measured on 2 cores, page cache warm: 1 MiB about 4 MiB, 5% ahead of 8 MiB."""
MAX_BUNDLE_BYTES: Final = 256 << 20
"""A bundle larger than this is refused before parsing (about two million files)."""


@dataclass(frozen=True)
class FileDigest:
    """One file of a model and its SHA-256."""

    name: str
    """POSIX path relative to the model root (``"."`` for a one-file model)."""
    digest: str
    """Lower-case hex SHA-256 of the whole file."""


def _order_key(name: str) -> tuple[str, ...]:
    """model_signing sorts resources as paths (by component), so ``a/b`` < ``a.txt``."""
    return tuple(name.split("/"))


@dataclass(frozen=True)
class Manifest:
    """Every file of a model with its digest, and how the list was made."""

    model_name: str
    """The model's name (the directory or file name); informative, never checked."""
    files: tuple[FileDigest, ...]
    """The files, sorted by path component, each once."""
    ignore_paths: tuple[str, ...] = ()
    """Paths (relative, POSIX) left out of the manifest; a directory covers its contents."""
    hash_type: str = HASH_TYPE
    """The digest algorithm; Warden makes and checks only ``sha256``."""
    allow_symlinks: bool = False
    """Recorded as model_signing does; Warden always refuses symbolic links."""

    def __post_init__(self) -> None:
        names = [f.name for f in self.files]
        if len(set(names)) != len(names):
            raise ValueError("a manifest names each file once")
        if [_order_key(n) for n in names] != sorted(_order_key(n) for n in names):
            raise ValueError("manifest files must be sorted by path component")

    @property
    def root_digest(self) -> str:
        """SHA-256 over the raw file digests in manifest order (the statement's subject)."""
        return _root_digest(f.digest for f in self.files)

    def digests(self) -> dict[str, str]:
        """File name to hex digest."""
        return {f.name: f.digest for f in self.files}

    def statement(self) -> dict[str, Any]:
        """The in-toto Statement v1 model_signing signs for this manifest."""
        serialization: dict[str, Any] = {
            "method": "files",
            "hash_type": self.hash_type,
            "allow_symlinks": self.allow_symlinks,
        }
        if self.ignore_paths:
            serialization["ignore_paths"] = list(self.ignore_paths)
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": self.model_name, "digest": {"sha256": self.root_digest}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "serialization": serialization,
                "resources": [
                    {"name": f.name, "algorithm": self.hash_type, "digest": f.digest}
                    for f in self.files
                ],
            },
        }


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found: the signature verified; do the files still match it?"""

    model_name: str
    """The model name recorded in the signature."""
    key_id: str
    """SHA-256 of the public key PEM that verified the signature."""
    root_digest: str
    """The signed root digest (subject digest)."""
    signed_files: int
    """How many files the signature covers."""
    modified: tuple[str, ...] = ()
    """Signed files whose content changed."""
    missing: tuple[str, ...] = ()
    """Signed files that are gone."""
    extra: tuple[str, ...] = ()
    """Files present but not signed (and not in the signed ignore paths)."""
    ignore_paths: tuple[str, ...] = ()
    """Paths the signer left out (plus this signature file), not compared."""

    @property
    def ok(self) -> bool:
        """The signature verified and every file matches it."""
        return not (self.modified or self.missing or self.extra)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "verified": self.ok,
            "model_name": self.model_name,
            "key_id": self.key_id,
            "root_digest": self.root_digest,
            "signed_files": self.signed_files,
            "modified": list(self.modified),
            "missing": list(self.missing),
            "extra": list(self.extra),
            "ignore_paths": list(self.ignore_paths),
        }


# --- pure pieces ------------------------------------------------------------------------------


def _root_digest(hex_digests: Iterable[str]) -> str:
    h = hashlib.sha256()
    for d in hex_digests:
        h.update(bytes.fromhex(d))
    return h.hexdigest()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature actually covers.

    ``"DSSEv1" SP len(type) SP type SP len(payload) SP payload`` with byte lengths in decimal
    (https://github.com/secure-systems-lab/dsse/blob/v1.0.0/protocol.md).
    """
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def make_bundle(payload: bytes, private_key: PrivateKey) -> dict[str, Any]:
    """Sign ``payload`` (an in-toto statement) into a sigstore bundle, as model_signing does.

    The verification material is a public-key hint (the key id); the DSSE signature's ``keyid``
    is empty, exactly as model_signing's key signer writes it.
    """
    sig = sign_message(private_key, pae(PAYLOAD_TYPE, payload))
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_id(private_key)}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(sig).decode("ascii"), "keyid": ""}],
        },
    }


_URLSAFE: Final = str.maketrans("-_", "+/")


def _b64(text: object, what: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise SignatureError(f"bundle {what} must be a non-empty base64 string")
    try:  # DSSE allows standard or URL-safe base64; anything else is refused
        return base64.b64decode(text.translate(_URLSAFE) + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"bundle {what} is not valid base64") from exc


def _obj(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SignatureError(f"bundle {what} must be a JSON object, found {type(value).__name__}")
    return value


def open_bundle(raw: bytes, public_key: PublicKey) -> tuple[dict[str, Any], str]:
    """Check a bundle's signature and return its in-toto statement and the key id.

    Raises :class:`SignatureError` for anything but a well-formed v0.3 bundle whose one DSSE
    signature verifies with ``public_key`` over an in-toto JSON payload.
    """
    try:
        bundle = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SignatureError(f"the signature file is not valid JSON (truncated?): {exc}") from exc
    bundle = _obj(bundle, "root")
    media = bundle.get("mediaType")
    if media != BUNDLE_MEDIA_TYPE:
        raise SignatureError(
            f"expected a sigstore bundle of type {BUNDLE_MEDIA_TYPE}, found {media!r}"
        )
    material = _obj(bundle.get("verificationMaterial"), "verificationMaterial")
    mine = key_id(public_key)
    if "publicKey" not in material:
        found = ", ".join(sorted(k for k in material if k != "tlogEntries")) or "nothing"
        raise SignatureError(
            f"the bundle is not key-signed (its verification material holds {found}); Warden "
            "verifies key-based signatures only (Sigstore keyless: use model_signing)"
        )
    hint = _obj(material["publicKey"], "verificationMaterial.publicKey").get("hint")
    if hint and hint != mine:
        raise SignatureError(
            f"signed by key {hint}, but the given public key is {mine}: wrong public key, "
            "or the bundle was altered"
        )
    if not hint:
        log.warning("the bundle names no key (no publicKey.hint); relying on the signature alone")
    envelope = _obj(bundle.get("dsseEnvelope"), "dsseEnvelope")
    payload_type = envelope.get("payloadType")
    if payload_type != PAYLOAD_TYPE:
        raise SignatureError(f"expected DSSE payload type {PAYLOAD_TYPE}, found {payload_type!r}")
    payload = _b64(envelope.get("payload"), "dsseEnvelope.payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1:
        count = len(signatures) if isinstance(signatures, list) else "no list of"
        raise SignatureError(f"expected exactly one DSSE signature, found {count}")
    sig = _b64(_obj(signatures[0], "signature").get("sig"), "dsseEnvelope.signatures[0].sig")
    if not verify_message(public_key, sig, pae(PAYLOAD_TYPE, payload)):
        raise SignatureError(
            f"the signature does not verify with key {mine}: the bundle was altered "
            "or signed by another key"
        )
    try:
        statement = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SignatureError(f"the signed payload is not valid JSON: {exc}") from exc
    return dict(_obj(statement, "payload")), mine


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise SignatureError(f"resource names must be non-empty strings, found {name!r}")
    if name == SINGLE_FILE_NAME:
        return name
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise SignatureError(f"resource name {name!r} is not a plain relative POSIX path")
    return name


def manifest_from_statement(statement: Mapping[str, Any]) -> Manifest:
    """The manifest a verified statement describes, checked for consistency (fail closed)."""
    kind = statement.get("_type")
    if kind != STATEMENT_TYPE:
        raise SignatureError(f"expected an in-toto statement {STATEMENT_TYPE}, found {kind!r}")
    predicate_type = statement.get("predicateType")
    if predicate_type != PREDICATE_TYPE:
        raise SignatureError(
            f"expected predicate type {PREDICATE_TYPE}, found {predicate_type!r} "
            "(only model_signing v1.0 signatures are supported)"
        )
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise SignatureError("expected exactly one subject (the model) in the statement")
    subject = _obj(subjects[0], "subject")
    model_name = subject.get("name")
    root = _obj(subject.get("digest"), "subject.digest").get("sha256")
    if not isinstance(model_name, str) or not isinstance(root, str):
        raise SignatureError("the subject needs a name and a sha256 digest")
    predicate = _obj(statement.get("predicate"), "predicate")
    ser = _obj(predicate.get("serialization"), "predicate.serialization")
    if ser.get("method") != "files":
        raise SignatureError(
            f"unsupported serialization method {ser.get('method')!r}; Warden verifies "
            "per-file manifests (method 'files') only"
        )
    if ser.get("hash_type") != HASH_TYPE:
        raise SignatureError(
            f"unsupported hash type {ser.get('hash_type')!r}; Warden verifies {HASH_TYPE} only"
        )
    allow_symlinks = ser.get("allow_symlinks")
    if not isinstance(allow_symlinks, bool):
        raise SignatureError("serialization.allow_symlinks must be true or false")
    ignore = ser.get("ignore_paths", [])
    if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
        raise SignatureError("serialization.ignore_paths must be a list of strings")
    resources = predicate.get("resources")
    if not isinstance(resources, list) or not resources:
        raise SignatureError("the signature covers no files; refusing an empty manifest")
    names: list[str] = []
    digests: list[str] = []
    for r in resources:
        res = _obj(r, "resource")
        names.append(_check_name(res.get("name")))
        if res.get("algorithm") != HASH_TYPE:
            raise SignatureError(
                f"{names[-1]}: unsupported digest algorithm {res.get('algorithm')!r}; "
                f"expected {HASH_TYPE}"
            )
        digest = res.get("digest")
        if not isinstance(digest, str) or len(digest) != 64:
            raise SignatureError(f"{names[-1]}: the digest must be 64 hex characters")
        try:
            bytes.fromhex(digest)
        except ValueError:
            raise SignatureError(f"{names[-1]}: the digest is not hex") from None
        digests.append(digest.lower())
    if len(set(names)) != len(names):
        raise SignatureError("the signature lists a file twice")
    computed = _root_digest(digests)  # in the order listed, as model_signing checks it
    if computed != root.lower():
        raise SignatureError(
            f"the manifest is inconsistent: the subject's root digest is {root}, but the listed "
            f"files hash to {computed}"
        )
    order = sorted(range(len(names)), key=lambda i: _order_key(names[i]))
    return Manifest(
        model_name=model_name,
        files=tuple(FileDigest(names[i], digests[i]) for i in order),
        ignore_paths=tuple(ignore),
        allow_symlinks=allow_symlinks,
    )


# --- hashing ----------------------------------------------------------------------------------

_buffers = threading.local()
_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
"""Read-only; no following a link or blocking on a FIFO swapped in after the walk (POSIX)."""


def _hash_file(path: Path) -> str:
    """Whole-file SHA-256 through one reusable buffer per thread."""
    buf: bytearray | None = getattr(_buffers, "buf", None)
    if buf is None:
        buf = _buffers.buf = bytearray(READ_BUFFER)
    view = memoryview(buf)
    h = hashlib.sha256()
    try:
        fd = os.open(path, _OPEN_FLAGS)
        with open(fd, "rb", buffering=0) as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise DataError(f"{path}: is no longer a regular file")
            while n := fh.readinto(view):
                h.update(view[:n])
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    return h.hexdigest()


def _normalise_ignores(root: Path, paths: Iterable[PathLike]) -> list[str]:
    """Ignore paths as relative POSIX strings; ones outside the model are dropped (as upstream)."""
    out: list[str] = []
    for p in paths:
        candidate = Path(p)
        if candidate.is_absolute():
            try:
                candidate = candidate.resolve().relative_to(root.resolve())
            except ValueError:
                continue
        rel = PurePosixPath(candidate.as_posix())
        if rel.parts[:1] == ("..",) or ".." in rel.parts or str(rel) in ("", "."):
            continue
        out.append(str(rel))
    return out


def _is_ignored(parts: tuple[str, ...], ignored: Sequence[tuple[str, ...]]) -> bool:
    return any(parts[: len(ig)] == ig for ig in ignored)


def _walk(root: Path, ignored: Sequence[tuple[str, ...]]) -> list[tuple[str, Path, int]]:
    """Every regular file under ``root`` as (name, path, size); refuses links and devices."""
    found: list[tuple[str, Path, int]] = []
    stack: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            raise DataError(f"{directory}: cannot list: {exc}") from exc
        for entry in entries:
            parts = (*prefix, entry.name)
            if _is_ignored(parts, ignored):
                continue
            name = "/".join(parts)
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise DataError(
                    f"{name!r}: the file name is not valid UTF-8, which signatures require"
                ) from None
            if entry.is_symlink():
                raise DataError(
                    f"{name}: is a symbolic link; model signatures refuse symlinks "
                    "(model_signing's allow_symlinks=false): replace it with the file it "
                    "points to, or remove it"
                )
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                stack.append((Path(entry.path), parts))
            elif stat.S_ISREG(st.st_mode):
                found.append((name, Path(entry.path), st.st_size))
            else:
                raise DataError(f"{name}: not a regular file or directory (device, FIFO, socket)")
    return found


def _check_root(path: Path) -> None:
    if path.is_symlink():
        raise DataError(
            f"{path}: is a symbolic link; model signatures refuse symlinks (give the real path)"
        )
    if not path.exists():
        raise ConfigError(f"{path} not found")
    if not (path.is_dir() or path.is_file()):
        raise DataError(f"{path}: not a regular file or directory")


def _model_name(path: Path) -> str:
    return path.name if path.name not in ("", "..") else path.resolve().name


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _hash_all(files: Sequence[tuple[str, Path, int]], workers: int | None) -> dict[str, str]:
    """Digest every file; biggest first, so the last one to finish is a small one."""
    n = _default_workers() if workers is None else workers
    if n < 1:
        raise ConfigError(f"workers must be >= 1, got {n}")
    todo = sorted(files, key=lambda f: -f[2])
    if n == 1 or len(todo) <= 1:
        return {name: _hash_file(p) for name, p, _ in todo}
    with ThreadPoolExecutor(
        max_workers=min(n, len(todo)), thread_name_prefix="warden-hash"
    ) as pool:
        digests = pool.map(_hash_file, [p for _, p, _ in todo])
        return {name: d for (name, _, _), d in zip(todo, digests, strict=True)}


def _scan(path: Path, ignore: Sequence[str]) -> list[tuple[str, Path, int]]:
    _check_root(path)
    if path.is_file():
        return [(SINGLE_FILE_NAME, path, path.stat().st_size)]
    return _walk(path, [tuple(p.split("/")) for p in ignore])


def hash_model(
    path: PathLike,
    *,
    ignore_paths: Iterable[PathLike] = (),
    ignore_git_paths: bool = True,
    workers: int | None = None,
) -> Manifest:
    """SHA-256 of every regular file of a model directory (or of one file), in parallel.

    Names are POSIX paths relative to the model, sorted by component; a one-file model's only
    name is ``"."`` (as model_signing names it). ``ignore_paths`` (relative to the model, or
    absolute inside it) and, unless ``ignore_git_paths`` is false, :data:`DEFAULT_IGNORE_PATHS`
    are left out and recorded. Symbolic links and special files raise :class:`DataError`.
    ``workers`` threads hash one file each (default: the CPUs this process may use).
    """
    root = Path(path)
    ignore = _normalise_ignores(root, ignore_paths)
    if ignore_git_paths:
        ignore += DEFAULT_IGNORE_PATHS
    ignore = sorted(set(ignore))
    files = _scan(root, ignore)
    digests = _hash_all(files, workers)
    names = sorted(digests, key=_order_key)
    log.info("hashed %d files (%d bytes) of %s", len(names), sum(f[2] for f in files), root)
    return Manifest(
        model_name=_model_name(root),
        files=tuple(FileDigest(n, digests[n]) for n in names),
        ignore_paths=tuple(ignore),
    )


# --- sign / verify ----------------------------------------------------------------------------


def default_signature_path(path: PathLike) -> Path:
    """``<dir>/model.sig`` for a directory; ``<file>.sig`` next to a single file."""
    p = Path(path)
    return p / DEFAULT_SIGNATURE_NAME if p.is_dir() else p.with_name(p.name + ".sig")


def _inside(root: Path, target: Path) -> str | None:
    """``target`` relative to directory ``root`` as POSIX, or None when outside it."""
    if not root.is_dir():
        return None
    try:
        rel = target.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return rel.as_posix() if rel.parts else None


def sign(
    path: PathLike,
    private_key: PrivateKey | KeySource,
    *,
    out: PathLike | None = None,
    password: Password = None,
    ignore_paths: Iterable[PathLike] = (),
    workers: int | None = None,
) -> Path:
    """Hash a model and write its signature bundle; return the bundle's path.

    ``out`` defaults to :func:`default_signature_path`. A signature inside the model directory
    is left out of the manifest and listed in its ``ignore_paths``, so verifiers (Warden's and
    model_signing's) skip it. Refuses to sign a model with no files.
    """
    root = Path(path)
    key = load_private_key(private_key, password=password)
    target = Path(out) if out is not None else default_signature_path(root)
    _check_root(root)
    ignores = [*ignore_paths]
    sig_rel = _inside(root, target)
    if sig_rel is not None:
        ignores.append(sig_rel)
    manifest = hash_model(root, ignore_paths=ignores, workers=workers)
    if not manifest.files:
        raise SignatureError(
            f"{root}: nothing to sign: no files left after ignoring "
            f"{', '.join(manifest.ignore_paths)}"
        )
    payload = json.dumps(manifest.statement(), indent=2, ensure_ascii=False).encode("utf-8")
    bundle = make_bundle(payload, key)
    data = json.dumps(bundle, separators=(",", ":")).encode("ascii")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the signature {target}: {exc}") from exc
    log.info("signed %d files of %s with key %s", len(manifest.files), root, key_id(key)[:16])
    return target


def verify(
    path: PathLike,
    public_key: PublicKey | KeySource,
    *,
    signature: PathLike | None = None,
    workers: int | None = None,
) -> VerifyResult:
    """Check a model against its signature bundle and name every file that differs.

    Raises :class:`SignatureError` when the bundle is malformed, of an unsupported kind, or its
    signature does not verify with ``public_key``; returns a :class:`VerifyResult` otherwise
    (``ok`` false when files were modified, are missing or were added). Paths the signer
    ignored, and the signature file itself, are not compared.
    """
    root = Path(path)
    key = load_public_key(public_key)
    sig_path = Path(signature) if signature is not None else default_signature_path(root)
    _check_root(root)
    try:
        size = sig_path.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise SignatureError(f"{sig_path}: {size} bytes is too large for a signature bundle")
        raw = sig_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"no signature at {sig_path}; sign the model first or give the signature's path"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the signature {sig_path}: {exc}") from exc
    statement, kid = open_bundle(raw, key)
    signed = manifest_from_statement(statement)
    ignores = _normalise_ignores(root, signed.ignore_paths)
    sig_rel = _inside(root, sig_path)
    if sig_rel is not None:
        ignores.append(sig_rel)
    ignores = sorted(set(ignores))
    present = _scan(root, ignores)
    expected = signed.digests()
    digests = _hash_all([f for f in present if f[0] in expected], workers)
    result = VerifyResult(
        model_name=signed.model_name,
        key_id=kid,
        root_digest=signed.root_digest,
        signed_files=len(signed.files),
        modified=tuple(
            f.name for f in signed.files if f.name in digests and digests[f.name] != f.digest
        ),
        missing=tuple(f.name for f in signed.files if f.name not in digests),
        extra=tuple(sorted((n for n, _, _ in present if n not in expected), key=_order_key)),
        ignore_paths=tuple(ignores),
    )
    if result.ok:
        log.info("verified %d files of %s (key %s)", result.signed_files, root, kid[:16])
    return result
