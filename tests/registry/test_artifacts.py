"""Walking an artifact and its digest (the model_signing root digest)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from warden.errors import ConfigError, DataError
from warden.registry.artifacts import artifact_digest, check_relative, manifest_for, walk_artifact
from warden.supplychain.signing import hash_model


def test_directory_digest_equals_model_signing_root_digest(model_dir: Path) -> None:
    files = walk_artifact(model_dir)
    assert [f[0] for f in files] == ["config.json", "sub/head.npy", "weights.npy"]
    reference = hash_model(model_dir)
    pairs = [(rel, reference.digests()[rel]) for rel, _, _ in files]
    assert (
        artifact_digest(manifest_for("dir", pairs, name="x")) == f"sha256:{reference.root_digest}"
    )


def test_one_file_is_named_dot_like_model_signing(model_file: Path) -> None:
    files = walk_artifact(model_file)
    assert [(f[0], f[2]) for f in files] == [("weights.npy", model_file.stat().st_size)]
    reference = hash_model(model_file)
    manifest = manifest_for("file", [("weights.npy", reference.digests()["."])], name="w")
    assert [f.name for f in manifest.files] == ["."]
    assert manifest.root_digest == reference.root_digest


def test_git_paths_and_signature_are_skipped(model_dir: Path) -> None:
    (model_dir / ".git").mkdir()
    (model_dir / ".git" / "HEAD").write_text("ref")
    (model_dir / "model.sig").write_text("{}")
    assert "model.sig" not in [f[0] for f in walk_artifact(model_dir)]
    assert "model.sig" in [f[0] for f in walk_artifact(model_dir, skip=())]


def test_symlinks_and_specials_are_refused(tmp_path: Path, model_dir: Path) -> None:
    (model_dir / "link.npy").symlink_to(model_dir / "weights.npy")
    with pytest.raises(DataError, match=r"link\.npy is a symbolic link"):
        walk_artifact(model_dir)
    (model_dir / "link.npy").unlink()
    os.mkfifo(model_dir / "pipe")
    with pytest.raises(DataError, match="pipe is not a regular file"):
        walk_artifact(model_dir)
    top = tmp_path / "top-link"
    top.symlink_to(model_dir)
    with pytest.raises(DataError, match="is a symbolic link"):
        walk_artifact(top)


def test_empty_and_missing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no files"):
        walk_artifact(tmp_path / "empty")
    with pytest.raises(ConfigError, match="no such file or directory"):
        walk_artifact(tmp_path / "missing")


@pytest.mark.parametrize("name", ["", "/abs", "a/../b", "./a", "a//b", "a\\b", "..", "a/"])
def test_check_relative_refuses_escapes(name: str) -> None:
    with pytest.raises(DataError, match="not a plain relative path"):
        check_relative(name)
