"""Models, versions, artifacts, datasets, lineage and notes through the Registry API."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest
from tests.registry._helpers import npy_bytes

from warden.errors import ConfigError, DataError, RegistryError
from warden.registry import Registry
from warden.store import Store
from warden.supplychain.signing import hash_model


def test_models(registry: Registry) -> None:
    m = registry.create_model("digits", description="a CNN", owner="ml-team")
    assert (m.name, m.description, m.owner, m.created_by, m.versions) == (
        "digits",
        "a CNN",
        "ml-team",
        "alice",
        0,
    )
    registry.create_model("abc")
    assert [x.name for x in registry.list_models()] == ["abc", "digits"]
    with pytest.raises(RegistryError, match="a model named 'digits' already exists"):
        registry.create_model("digits")
    with pytest.raises(RegistryError, match="no model named 'nope'"):
        registry.get_model("nope")
    with pytest.raises(ConfigError, match="model name 'bad name'"):
        registry.create_model("bad name")
    updated = registry.update_model("digits", intended_use="digits only", limitations="8x8")
    assert (updated.intended_use, updated.limitations, updated.description) == (
        "digits only",
        "8x8",
        "a CNN",
    )
    assert json.loads(json.dumps(updated.to_dict()))["owner"] == "ml-team"


def test_register_file_and_directory(registry: Registry, model_file: Path, model_dir: Path) -> None:
    registry.create_model("m")
    v1 = registry.register_version("m", model_file, framework="numpy", input_spec={"shape": [16]})
    assert (v1.number, v1.state, v1.artifact_kind, v1.framework) == (
        1,
        "registered",
        "file",
        "numpy",
    )
    assert v1.input_spec == {"shape": [16]} and v1.created_by == "alice"
    reference = hash_model(model_file)
    assert v1.artifact_digest == f"sha256:{reference.root_digest}"
    assert [(f.path, f.blob_id) for f in v1.files] == [("weights.npy", reference.digests()["."])]

    (model_dir / "model.sig").write_text("{}")  # skipped: attach signatures separately
    v2 = registry.register_version("m", model_dir)
    assert v2.number == 2 and v2.artifact_kind == "dir"
    assert [f.path for f in v2.files] == ["config.json", "sub/head.npy", "weights.npy"]
    assert v2.attributes == {"skipped": ["model.sig"]}
    signed_view = hash_model(model_dir, ignore_paths=["model.sig"])
    assert v2.artifact_digest == f"sha256:{signed_view.root_digest}"
    assert [v.number for v in registry.list_versions("m")] == [1, 2]
    assert registry.get_model("m").versions == 2
    doc = json.loads(json.dumps(v2.to_dict()))
    assert doc["version"] == 2 and len(doc["files"]) == 3


def test_register_refuses(registry: Registry, model_file: Path, model_dir: Path) -> None:
    with pytest.raises(RegistryError, match="no model named 'm'"):
        registry.register_version("m", model_file)
    v = registry.register_version("m", model_file, create_model=True)
    assert v.number == 1
    (model_dir / "ln").symlink_to(model_file)
    with pytest.raises(DataError, match="ln is a symbolic link"):
        registry.register_version("m", model_dir)
    with pytest.raises(ConfigError, match="input_spec is not plain JSON"):
        registry.register_version("m", model_file, input_spec={"x": object()})
    with pytest.raises(ConfigError, match="at most 50 characters"):
        registry.register_version("m", model_file, framework="x" * 51)
    assert [v.number for v in registry.list_versions("m")] == [1], "nothing half-registered"


def test_version_references(registry: Registry, model_file: Path) -> None:
    for _ in range(3):
        registry.register_version("m", model_file, create_model=True)
    assert registry.get_version("m", 2).number == 2
    assert registry.get_version("m", "v3").number == 3
    assert registry.get_version("m", "V1").number == 1
    assert registry.get_version("m", "latest").number == 3
    assert registry.get_version("m").number == 3
    registry.set_alias("m", "staging", 2)
    assert registry.get_version("m", "staging").number == 2
    assert registry.get_version("m", 2).aliases == ("staging",)
    assert registry.get_model("m").aliases == {"staging": 2}
    with pytest.raises(RegistryError, match="m has no version 9"):
        registry.get_version("m", "v9")
    with pytest.raises(RegistryError, match="m has no version or alias 'prod'"):
        registry.get_version("m", "prod")
    registry.create_model("empty")
    with pytest.raises(RegistryError, match="empty has no versions yet"):
        registry.get_version("empty", "latest")


def test_same_bytes_share_blobs(registry: Registry, store: Store, model_file: Path) -> None:
    a = registry.register_version("m", model_file, create_model=True)
    b = registry.register_version("m", model_file)
    assert a.artifact_digest == b.artifact_digest and a.files[0].blob_id == b.files[0].blob_id
    assert store.blobs.ids() == [a.files[0].blob_id]


def test_export_round_trip(
    registry: Registry, tmp_path: Path, model_dir: Path, model_file: Path
) -> None:
    registry.register_version("m", model_dir, create_model=True)
    registry.register_version("m", model_file)
    out = registry.export_version("m", 1, tmp_path / "out")
    assert out == tmp_path / "out"
    for rel in ("config.json", "sub/head.npy", "weights.npy"):
        assert (out / rel).read_bytes() == (model_dir / rel).read_bytes()
    assert stat.S_IMODE((out / "weights.npy").stat().st_mode) == 0o600
    (tmp_path / "empty").mkdir()
    single = registry.export_version("m", 2, tmp_path / "empty")
    assert single == tmp_path / "empty" / "weights.npy"
    assert single.read_bytes() == model_file.read_bytes()
    with pytest.raises(ConfigError, match="exists and is not an empty directory"):
        registry.export_version("m", 2, tmp_path / "out")


def test_export_of_tampered_blob_leaves_nothing(
    registry: Registry, store: Store, tmp_path: Path, model_dir: Path
) -> None:
    v = registry.register_version("m", model_dir, create_model=True)
    victim = store.blobs.path_of(v.files[-1].blob_id)
    data = bytearray(victim.read_bytes())
    data[-5] ^= 1
    victim.write_bytes(bytes(data))
    with pytest.raises(Exception, match="fails authentication"):
        registry.export_version("m", 1, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_no_plaintext_in_the_store(registry: Registry, store: Store, tmp_path: Path) -> None:
    marker = b"PLAINTEXT-MARKER-7f3a9c"
    path = tmp_path / "secret.bin"
    path.write_bytes(marker * 100)
    registry.register_version("m", path, create_model=True)
    registry.scan_version("m", 1)
    for f in store.home.rglob("*"):
        if f.is_file():
            assert marker not in f.read_bytes(), f


def test_datasets(registry: Registry, tmp_path: Path) -> None:
    fp = "sha256:" + "ab" * 32
    d = registry.register_dataset(
        "digits",
        fingerprint=fp.upper().replace("SHA256:", ""),
        source="sklearn",
        license="BSD-3",
        n_rows=1797,
        attributes={"columns": ["p0", "p1"]},
    )
    assert (d.fingerprint, d.n_rows, d.attributes["columns"]) == (fp, 1797, ["p0", "p1"])
    again = registry.register_dataset(
        "digits",
        fingerprint=fp,
        source="sklearn",
        license="BSD-3",
        n_rows=1797,
        attributes={"columns": ["p0", "p1"]},
    )
    assert again.id == d.id, "registering the same facts again is idempotent"
    with pytest.raises(RegistryError, match="already registered with other facts"):
        registry.register_dataset("digits", fingerprint=fp, source="elsewhere")
    with pytest.raises(ConfigError, match="expected 'sha256:' followed by 64 hex"):
        registry.register_dataset("x", fingerprint="md5:abc")
    with pytest.raises(ConfigError, match="n_rows must be a non-negative integer"):
        registry.register_dataset("x", fingerprint=fp, n_rows=-1)

    csv = tmp_path / "data.csv"
    csv.write_text("a,b,label\n0.1,0.2,0\n0.3,0.4,1\n0.5,0.6,1\n")
    from_file = registry.register_dataset_from("tab", csv, license="CC0")
    from warden.data.loaders import load_dataset

    assert from_file.fingerprint == load_dataset(csv).fingerprint
    assert (from_file.n_rows, from_file.attributes["columns"], from_file.source) == (
        3,
        ["a", "b"],
        str(csv),
    )
    npz = tmp_path / "d.npz"
    np.savez(npz, x=np.zeros((4, 2), np.float32), y=np.array([0, 1, 0, 1]))
    assert registry.register_dataset_from("arr", npz).n_rows == 4
    assert [x.name for x in registry.list_datasets()] == ["arr", "digits", "tab"]
    assert registry.get_dataset("digits").id == d.id
    assert registry.get_dataset(f"digits@{fp[:15]}").id == d.id
    assert registry.get_dataset("digits@abab").id == d.id
    with pytest.raises(RegistryError, match="no dataset 'digits@ffff'"):
        registry.get_dataset("digits@ffff")


def test_lineage_and_cycles(registry: Registry, model_file: Path) -> None:
    for _ in range(3):
        registry.register_version("m", model_file, create_model=True)
    registry.register_version("other", model_file, create_model=True)
    registry.register_dataset("train", fingerprint="1" * 64, source="s3://bucket/train")
    registry.register_dataset("test", fingerprint="2" * 64)
    e = registry.add_lineage("m", 1, "trained-on", dataset="train")
    assert (e.kind, e.dataset and e.dataset.name, e.target) == (
        "trained-on",
        "train",
        e.dataset and e.dataset.ref,
    )
    registry.add_lineage("m", 1, "evaluated-on", dataset="test")
    again = registry.add_lineage("m", 1, "trained-on", dataset="train")
    assert again.created_at == e.created_at, "the same edge again is the same edge"
    d = registry.add_lineage(
        "m", 2, "derived-from", parent="v1", details={"hardening": "adv-train"}
    )
    assert (d.parent_model, d.parent_version, d.details) == ("m", 1, {"hardening": "adv-train"})
    registry.add_lineage("m", 3, "derived-from", parent="m:v2")
    registry.add_lineage("other", 1, "derived-from", parent=("m", 3))
    with pytest.raises(RegistryError, match="would make a cycle"):
        registry.add_lineage("m", 1, "derived-from", parent="other:v1")
    with pytest.raises(RegistryError, match="would make a cycle"):
        registry.add_lineage("m", 2, "derived-from", parent="v2")
    with pytest.raises(ConfigError, match="lineage kind 'copied-from'"):
        registry.add_lineage("m", 1, "copied-from", dataset="train")
    with pytest.raises(ConfigError, match="names a dataset and no parent"):
        registry.add_lineage("m", 1, "trained-on", parent="v2")
    with pytest.raises(ConfigError, match="names a parent version and no dataset"):
        registry.add_lineage("m", 1, "derived-from", dataset="train")
    with pytest.raises(RegistryError, match="no dataset 'nope'"):
        registry.add_lineage("m", 1, "trained-on", dataset="nope")

    assert [(x.kind, x.target) for x in registry.lineage("m", 3)] == [("derived-from", "m v2")]
    deep = registry.lineage("other", 1, recursive=True)
    assert (deep[0].model, deep[0].version) == ("other", 1), "the version's own edges first"
    assert {(x.model, x.version, x.kind) for x in deep} == {
        ("other", 1, "derived-from"),
        ("m", 1, "trained-on"),
        ("m", 1, "evaluated-on"),
        ("m", 2, "derived-from"),
        ("m", 3, "derived-from"),
    }
    assert [v.label for v in registry.derived_versions("m", 1)] == ["m v2"]
    assert json.loads(json.dumps(deep[0].to_dict()))["parent"] == {"model": "m", "version": 3}


def test_notes(registry: Registry, model_file: Path) -> None:
    registry.register_version("m", model_file, create_model=True)
    registry.add_note("m", "about the model")
    registry.add_note("m", "about v1", ref="v1")
    assert [(n.version, n.text, n.author) for n in registry.notes("m")] == [
        (None, "about the model", "alice"),
        (1, "about v1", "alice"),
    ]
    assert [n.text for n in registry.notes("m", 1)] == ["about v1"]
    with pytest.raises(ConfigError, match="the note is empty"):
        registry.add_note("m", "  ")


def test_records_are_snapshots(registry: Registry, model_file: Path) -> None:
    v = registry.register_version("m", model_file, create_model=True)
    registry.set_alias("m", "staging", 1)
    assert v.aliases == () and registry.get_version("m", 1).aliases == ("staging",)


def test_actor_is_required(store: Store) -> None:
    with pytest.raises(ConfigError, match="actor must be a non-empty name"):
        Registry(store, actor=" ")


def test_large_file_is_streamed(registry: Registry, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        for i in range(3):
            fh.write(npy_bytes(seed=i, n=200_000))  # ~2.4 MB: several 1 MiB chunks
    v = registry.register_version("m", big, create_model=True)
    out = registry.export_version("m", 1, tmp_path / "out")
    assert out.read_bytes() == big.read_bytes() and v.size == big.stat().st_size
