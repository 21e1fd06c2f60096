"""Model signing: manifests, sign/verify round trips, tampering, keys."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from warden.errors import ConfigError, DataError, SignatureError
from warden.supplychain.keys import (
    KEY_KINDS,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
)
from warden.supplychain.signing import (
    BUNDLE_MEDIA_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    FileDigest,
    Manifest,
    hash_model,
    make_bundle,
    pae,
    sign,
    verify,
)

FILES = {
    "config.json": b'{"layers": 2}',
    "weights/layer0.bin": bytes(range(256)) * 300,
    "weights/layer1.bin": b"\x00" * 70_000,
    "a.txt": b"alpha",
    "a/b.txt": b"nested",
    "tokenizer/vocab.txt": "héllo\n".encode(),
}
GIT_FILES = {".git/HEAD": b"ref: refs/heads/main\n", ".gitignore": b"*.tmp\n"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "my-model", {**FILES, **GIT_FILES})


@pytest.fixture(scope="module", params=KEY_KINDS)
def keypair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("keys") / request.param
    generate_key(request.param, prefix, prefix.with_suffix(".pub"))
    return prefix


def pub(prefix: Path) -> Path:
    return prefix.with_suffix(".pub")


def read_bundle(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_bytes())
    return doc


def payload_of(bundle: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return doc


def resign(path: Path, statement: dict[str, Any], key: Path) -> None:
    """Write a correctly signed bundle over an arbitrary (possibly bad) statement."""
    payload = json.dumps(statement).encode()
    path.write_text(json.dumps(make_bundle(payload, load_private_key(key))))


# --- manifests --------------------------------------------------------------------------------


def test_hash_model_names_digests_order_and_git_ignores(model: Path) -> None:
    m = hash_model(model)
    assert m.model_name == "my-model"
    # sorted by path component, like model_signing: "a/b.txt" before "a.txt"
    assert [f.name for f in m.files] == [
        "a/b.txt",
        "a.txt",
        "config.json",
        "tokenizer/vocab.txt",
        "weights/layer0.bin",
        "weights/layer1.bin",
    ]
    assert m.digests() == {name: sha(data) for name, data in FILES.items()}
    assert m.ignore_paths == (".git", ".gitattributes", ".github", ".gitignore")
    expected_root = hashlib.sha256(b"".join(bytes.fromhex(f.digest) for f in m.files))
    assert m.root_digest == expected_root.hexdigest()


def test_hash_model_workers_and_ignores(model: Path) -> None:
    one = hash_model(model, workers=1)
    assert hash_model(model, workers=4) == one
    partial = hash_model(model, ignore_paths=["weights", model / "a.txt"], ignore_git_paths=False)
    names = [f.name for f in partial.files]
    assert names == [".git/HEAD", ".gitignore", "a/b.txt", "config.json", "tokenizer/vocab.txt"]
    assert partial.ignore_paths == ("a.txt", "weights")


def test_hash_model_refuses_bad_names_and_worker_counts(model: Path) -> None:
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        hash_model(model, workers=0)
    (Path(os.fsdecode(bytes(model) + b"/\xff.bin"))).write_bytes(b"latin-1 name")
    with pytest.raises(DataError, match="not valid UTF-8"):
        hash_model(model)


def test_hash_model_single_file_is_named_dot(model: Path) -> None:
    m = hash_model(model / "config.json")
    assert m.model_name == "config.json"
    assert m.files == (FileDigest(".", sha(FILES["config.json"])),)


def test_manifest_statement_layout(model: Path) -> None:
    m = hash_model(model)
    st = m.statement()
    assert st["_type"] == STATEMENT_TYPE and st["predicateType"] == PREDICATE_TYPE
    assert st["subject"] == [{"name": "my-model", "digest": {"sha256": m.root_digest}}]
    assert st["predicate"]["serialization"] == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": [".git", ".gitattributes", ".github", ".gitignore"],
    }
    assert st["predicate"]["resources"][0] == {
        "name": "a/b.txt",
        "algorithm": "sha256",
        "digest": sha(b"nested"),
    }
    with pytest.raises(ValueError, match="sorted"):
        Manifest("x", (FileDigest("b", "00" * 32), FileDigest("a", "00" * 32)))


def test_pae_matches_the_dsse_spec_vector() -> None:
    # https://github.com/secure-systems-lab/dsse/blob/v1.0.0/protocol.md#test-vectors
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_symlinks_and_special_files_are_refused(model: Path, tmp_path: Path) -> None:
    (model / "link.bin").symlink_to(model / "config.json")
    with pytest.raises(DataError, match=r"link\.bin: is a symbolic link"):
        hash_model(model)
    (model / "link.bin").unlink()
    (model / "linkdir").symlink_to(model / "weights", target_is_directory=True)
    with pytest.raises(DataError, match="linkdir: is a symbolic link"):
        hash_model(model)
    (model / "linkdir").unlink()
    os.mkfifo(model / "pipe")
    with pytest.raises(DataError, match="pipe: not a regular file"):
        hash_model(model)
    outside = tmp_path / "alias"
    outside.symlink_to(model, target_is_directory=True)
    with pytest.raises(DataError, match="symbolic link"):
        hash_model(outside)


# --- round trips ------------------------------------------------------------------------------


def test_round_trip_directory(model: Path, keypair: Path) -> None:
    sig = sign(model, keypair)
    assert sig == model / "model.sig"
    bundle = read_bundle(sig)
    assert bundle["mediaType"] == BUNDLE_MEDIA_TYPE
    assert bundle["verificationMaterial"] == {
        "publicKey": {"hint": key_id(load_public_key(pub(keypair)))},
        "tlogEntries": [],
    }
    assert payload_of(bundle)["predicate"]["serialization"]["ignore_paths"] == [
        ".git",
        ".gitattributes",
        ".github",
        ".gitignore",
        "model.sig",
    ]
    result = verify(model, pub(keypair))
    assert result.ok
    assert (result.modified, result.missing, result.extra) == ((), (), ())
    assert result.model_name == "my-model" and result.signed_files == len(FILES)
    assert result.key_id == key_id(load_public_key(pub(keypair)))
    assert result.root_digest == hash_model(model, ignore_paths=["model.sig"]).root_digest
    # re-signing a signed model leaves the old signature out of the manifest
    sign(model, keypair)
    assert verify(model, pub(keypair)).signed_files == len(FILES)


def test_round_trip_single_file_and_custom_out(model: Path, keypair: Path, tmp_path: Path) -> None:
    target = model / "weights" / "layer0.bin"
    sig = sign(target, keypair)
    assert sig == model / "weights" / "layer0.bin.sig"
    result = verify(target, pub(keypair))
    assert result.ok and result.model_name == "layer0.bin" and result.signed_files == 1
    target.write_bytes(b"changed")
    assert verify(target, pub(keypair)).modified == (".",)
    elsewhere = sign(model, keypair, out=tmp_path / "detached.sig")
    assert not (model / "model.sig").exists()
    assert (
        "model.sig"
        not in payload_of(read_bundle(elsewhere))["predicate"]["serialization"]["ignore_paths"]
    )
    assert verify(model, pub(keypair), signature=elsewhere).ok


def test_empty_model_is_not_signed(tmp_path: Path, keypair: Path) -> None:
    write_tree(tmp_path / "m", GIT_FILES)
    with pytest.raises(SignatureError, match="nothing to sign"):
        sign(tmp_path / "m", keypair)


# --- tampering --------------------------------------------------------------------------------


def test_changed_files_are_named(model: Path, keypair: Path) -> None:
    sign(model, keypair)
    (model / "weights/layer1.bin").write_bytes(b"\x00" * 69_999 + b"\x01")
    (model / "a/b.txt").unlink()
    (model / "weights/extra.bin").write_bytes(b"new")
    (model / ".git/ORIG_HEAD").write_bytes(b"ignored: under .git")
    result = verify(model, pub(keypair))
    assert not result.ok
    assert result.modified == ("weights/layer1.bin",)
    assert result.missing == ("a/b.txt",)
    assert result.extra == ("weights/extra.bin",)


def test_edited_payload_is_refused(model: Path, keypair: Path) -> None:
    sig = sign(model, keypair)
    bundle = read_bundle(sig)
    statement = payload_of(bundle)
    statement["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig.write_text(json.dumps(bundle))
    with pytest.raises(SignatureError, match=r"does not verify .* altered"):
        verify(model, pub(keypair))


def test_swapped_signature_bytes_are_refused(model: Path, keypair: Path) -> None:
    sig = sign(model, keypair)
    bundle = read_bundle(sig)
    raw = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[-1] ^= 0x01
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    sig.write_text(json.dumps(bundle))
    with pytest.raises(SignatureError, match="does not verify"):
        verify(model, pub(keypair))


def test_wrong_public_key_is_refused(model: Path, keypair: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    generate_key("ed25519", other, pub(other))
    sig = sign(model, keypair)
    with pytest.raises(SignatureError, match=r"signed by key [0-9a-f]{64}, but the given public"):
        verify(model, pub(other))
    bundle = read_bundle(sig)
    del bundle["verificationMaterial"]["publicKey"]["hint"]  # no hint: the signature decides
    sig.write_text(json.dumps(bundle))
    with pytest.raises(SignatureError, match="does not verify with key"):
        verify(model, pub(other))
    assert verify(model, pub(keypair)).ok


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: "{" + json.dumps(b)[: len(json.dumps(b)) // 2], "not valid JSON"),
        (lambda b: "[]", "root must be a JSON object"),
        (lambda b: {**b, "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1"},
         "expected a sigstore bundle of type"),
        (lambda b: {k: v for k, v in b.items() if k != "dsseEnvelope"},
         "dsseEnvelope must be a JSON object"),
        (lambda b: {**b, "verificationMaterial": {"certificate": {"rawBytes": "AA=="}}},
         "not key-signed .* certificate"),
        (lambda b: {**b, "dsseEnvelope": {**b["dsseEnvelope"], "payloadType": "text/plain"}},
         "expected DSSE payload type"),
        (lambda b: {**b, "dsseEnvelope": {**b["dsseEnvelope"], "signatures": []}},
         "exactly one DSSE signature, found 0"),
        (lambda b: {**b, "dsseEnvelope": {**b["dsseEnvelope"], "payload": "%%%"}},
         "payload is not valid base64"),
    ],
)  # fmt: skip
def test_malformed_bundles_are_refused(
    model: Path, keypair: Path, mutate: Any, message: str
) -> None:
    sig = sign(model, keypair)
    changed = mutate(read_bundle(sig))
    sig.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    with pytest.raises(SignatureError, match=message):
        verify(model, pub(keypair))


def edit(statement: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    node: Any = statement
    *path, last = dotted.split(".")
    for part in path:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value
    return statement


@pytest.mark.parametrize(
    ("dotted", "value", "message"),
    [
        ("predicateType", "https://model_signing/Digests/v0.1", "expected predicate type"),
        ("_type", "https://in-toto.io/Statement/v0.1", "expected an in-toto statement"),
        ("predicate.resources", [], "covers no files"),
        ("predicate.serialization.hash_type", "blake3", "unsupported hash type 'blake3'"),
        ("predicate.serialization.method", "shards", "unsupported serialization method"),
        ("predicate.resources.0.algorithm", "md5", "unsupported digest algorithm 'md5'"),
        ("predicate.resources.0.name", "../../etc/passwd", "not a plain relative POSIX path"),
        ("predicate.resources.1.name", "a/b.txt", "lists a file twice"),
        ("predicate.resources.0.digest", "ab" * 32, "manifest is inconsistent"),
        ("subject", [], "exactly one subject"),
    ],
)
def test_signed_but_unacceptable_statements_are_refused(
    model: Path, keypair: Path, dotted: str, value: Any, message: str
) -> None:
    """Each bundle below verifies cryptographically; its content must still be refused."""
    sig = sign(model, keypair)
    statement = edit(payload_of(read_bundle(sig)), dotted, value)
    resign(sig, statement, keypair)
    with pytest.raises(SignatureError, match=message):
        verify(model, pub(keypair))


def test_missing_inputs_are_config_errors(model: Path, keypair: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no signature at .*model\.sig"):
        verify(model, pub(keypair))
    with pytest.raises(ConfigError, match="not found"):
        sign(tmp_path / "nope", keypair)
    with pytest.raises(ConfigError, match=r"public key .* not found"):
        verify(model, tmp_path / "missing.pub")


# --- keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_generated_keys_are_pem_and_private(tmp_path: Path, kind: str) -> None:
    prefix = tmp_path / "k"
    kid = generate_key(kind, prefix, pub(prefix))
    assert stat.S_IMODE(prefix.stat().st_mode) == 0o600
    assert prefix.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pub(prefix).read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert kid == hashlib.sha256(pub(prefix).read_bytes()).hexdigest()
    assert key_id(load_private_key(prefix)) == kid
    with pytest.raises(ConfigError, match="already exists"):
        generate_key(kind, prefix, tmp_path / "other.pub")
    with pytest.raises(ConfigError, match="unknown key kind"):
        generate_key("rsa", tmp_path / "r", tmp_path / "r.pub")


def test_password_protected_key(model: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "enc"
    generate_key("ecdsa-p256", prefix, pub(prefix), password="s3cret")
    assert stat.S_IMODE(prefix.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in prefix.read_bytes()
    with pytest.raises(ConfigError, match="encrypted; give its password"):
        load_private_key(prefix)
    with pytest.raises(ConfigError, match="wrong password"):
        load_private_key(prefix, password="guess")
    sign(model, prefix, password="s3cret")
    assert verify(model, pub(prefix)).ok


def test_bad_key_files_are_explained(tmp_path: Path, keypair: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM file"):
        load_private_key(junk)
    with pytest.raises(ConfigError, match="expected a PEM private key"):
        load_private_key(pub(keypair))
    with pytest.raises(ConfigError, match="this is a private key"):
        load_public_key(keypair)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    rsa_pem = tmp_path / "rsa.pem"
    rsa_pem.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ConfigError, match="unsupported key type"):
        load_private_key(rsa_pem)
    k1 = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(ConfigError, match="unsupported elliptic curve secp256k1"):
        load_private_key(k1)
