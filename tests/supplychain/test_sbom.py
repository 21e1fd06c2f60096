"""CycloneDX 1.6 ML-BOM: valid against the official schema, and every field from its source."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
import zipfile
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from tests.report.conftest import make_assessment

from warden.data.loaders import load_dataset
from warden.errors import ConfigError, ModelLoadError
from warden.report.json import assessment_to_dict
from warden.supplychain.sbom import (
    ModelCardFacts,
    PerformanceMetric,
    Risk,
    build_sbom,
    facts_from_assessment,
    inspect_model,
    read_assessment,
    validate_sbom,
    write_sbom,
)

CDX = "http://cyclonedx.org/schema/"
FIXED_TIME = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
FIXED_SERIAL = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.fixture(scope="module")
def cdx_validator() -> Draft7Validator:
    """The CycloneDX 1.6 schema shipped in cyclonedx-python-lib, references resolved locally."""
    res = resources.files("cyclonedx.schema._res")
    names = [
        "bom-1.6.SNAPSHOT.schema.json",
        "spdx.SNAPSHOT.schema.json",
        "jsf-0.82.SNAPSHOT.schema.json",
    ]
    docs = {n: json.loads(res.joinpath(n).read_text("utf-8")) for n in names}
    registry: Registry[Any] = Registry().with_resources(
        (CDX + n, Resource.from_contents(d, default_specification=DRAFT7)) for n, d in docs.items()
    )
    schema = docs[names[0]]
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, registry=registry)


def assert_valid(bom: dict[str, Any], validator: Draft7Validator) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(bom)]
    assert errors == []
    refs = [c["bom-ref"] for c in _all_components(bom)]
    assert len(refs) == len(set(refs)), "bom-refs must be unique"
    for dep in bom["dependencies"]:
        assert dep["ref"] in refs
        assert set(dep["dependsOn"]) <= set(refs)


def _all_components(bom: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    stack = list(bom["components"])
    while stack:
        c = stack.pop()
        out.append(c)
        stack.extend(c.get("components", []))
    return out


def _props(component: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in component.get("properties", [])}


# --- fixtures: models written as bytes, never loaded -----------------------------------------


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spec_model(folder: Path, *, sha: str | None = None) -> Path:
    """A Warden spec + safetensors weights (digits-cnn shaped), written with numpy."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "model.safetensors"
    save_file(
        {
            "features.0.weight": np.zeros((8, 1, 3, 3), np.float32),
            "features.0.bias": np.zeros(8, np.float32),
            "head.weight": np.zeros((10, 32), np.float32),
        },
        str(weights),
    )
    spec = {
        "warden_model": 1,
        "format": "safetensors",
        "path": "model.safetensors",
        "sha256": sha or _sha(weights),
        "architecture": "digits-cnn",
        "arguments": {"n_classes": 10},
        "input_shape": [1, 8, 8],
        "n_classes": 10,
        "bounds": {"lower": 0.0, "upper": 1.0},
        "version": "1.2.0",
    }
    path = folder / "model.json"
    path.write_text(json.dumps(spec))
    return path


def onnx_model(path: Path) -> Path:
    """A tiny Gemm + Softmax classifier built with onnx.helper (4 features, 3 classes)."""
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 3], [0.1] * 12)
    b = helper.make_tensor("B", TensorProto.FLOAT, [3], [0.0] * 3)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "W", "B"], ["z"]),
            helper.make_node("Softmax", ["z"], ["p"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["batch", 3])],
        [w, b],
    )
    model = helper.make_model(
        graph, producer_name="warden-tests", opset_imports=[helper.make_opsetid("", 17)]
    )
    onnx.save_model(model, str(path))
    return path


def canary_pickle(marker: Path) -> bytes:
    """Protocol-2 pickle that would create ``marker`` (builtins.open(marker, 'w')) if loaded."""
    text = str(marker).encode()
    return (
        b"\x80\x02cbuiltins\nopen\n"
        + b"X"
        + len(text).to_bytes(4, "little")
        + text
        + b"X\x01\x00\x00\x00w\x86R."
    )


def torchscript_like(path: Path, marker: Path) -> Path:
    """A zip with TorchScript's layout (code/ modules, data.pkl); data.pkl is a canary pickle."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", canary_pickle(marker))
        zf.writestr("archive/constants.pkl", canary_pickle(marker))
        zf.writestr("archive/code/__torch__/torch/nn/modules/conv.py", "class Conv2d: ...\n")
        zf.writestr("archive/code/__torch__/___torch_mangle_0.py", "class Net: ...\n")
        zf.writestr("archive/version", "3\n")
    return path


def fake_site(root: Path) -> list[metadata.Distribution]:
    """Installed-looking distributions: warden, torch, numpy, safetensors, a lib with deps."""

    def dist(
        name: str, version: str, *requires: str, record: bool = True, license_expr: str = ""
    ) -> None:
        folder = root / f"{name.replace('-', '_')}-{version}.dist-info"
        folder.mkdir(parents=True)
        lines = ["Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}"]
        if license_expr:
            lines.append(f"License-Expression: {license_expr}")
        lines += [f"Requires-Dist: {r}" for r in requires]
        (folder / "METADATA").write_text("\n".join(lines) + "\n")
        if record:
            (folder / "RECORD").write_text(f"{folder.name}/METADATA,sha256=abc,10\n")

    dist("warden", "0.1.0", "numpy>=1.26", "safetensors", "torch>=2.2; extra == 'torch'")
    dist("torch", "2.13.0+cpu", "numpy", "typing_extensions>=4")
    dist("numpy", "2.4.6", license_expr="BSD-3-Clause")
    dist("safetensors", "0.8.0", "numpy; python_version < '3'", record=False)
    dist("Typing_Extensions", "4.12.2")
    return list(metadata.distributions(path=[str(root)]))


@pytest.fixture
def site(tmp_path: Path) -> list[metadata.Distribution]:
    return fake_site(tmp_path / "site")


@pytest.fixture
def report_json(tmp_path: Path) -> Path:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(assessment_to_dict(make_assessment())))
    return path


def _build(model: Path, site: list[metadata.Distribution], **kwargs: Any) -> dict[str, Any]:
    return build_sbom(
        model, distributions=site, timestamp=FIXED_TIME, serial_number=FIXED_SERIAL, **kwargs
    )


# --- the document ----------------------------------------------------------------------------


def test_full_bom_validates_and_has_the_expected_shape(
    tmp_path: Path,
    site: list[metadata.Distribution],
    report_json: Path,
    cdx_validator: Draft7Validator,
) -> None:
    spec = spec_model(tmp_path / "m")
    bom = _build(
        spec,
        site,
        assessment=report_json,
        datasets=["digits"],
        intended_use=["demo"],
        limitations=["8x8 digits only"],
    )
    assert_valid(bom, cdx_validator)
    assert validate_sbom(bom) == []
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.6")
    assert bom["serialNumber"] == f"urn:uuid:{FIXED_SERIAL}"
    assert bom["metadata"]["timestamp"] == "2025-01-02T03:04:05Z"
    (tool,) = bom["metadata"]["tools"]["components"]
    assert tool["name"] == "warden"
    types = [c["type"] for c in bom["components"]]
    assert types[0] == "machine-learning-model"
    assert types.count("data") == 2  # digits (given) + the report's evaluation data
    assert types.count("library") == 5


def test_spec_model_files_are_nested_components_with_their_hashes(
    tmp_path: Path, site: list[metadata.Distribution]
) -> None:
    spec = spec_model(tmp_path / "m")
    model = _build(spec, site)["components"][0]
    assert (model["name"], model["version"]) == ("model", "1.2.0")
    assert "hashes" not in model
    files = {f["name"]: f for f in model["components"]}
    assert set(files) == {"model.json", "model.safetensors"}
    weights = tmp_path / "m" / "model.safetensors"
    assert files["model.safetensors"]["hashes"] == [{"alg": "SHA-256", "content": _sha(weights)}]
    assert files["model.json"]["hashes"][0]["content"] == _sha(spec)
    assert _props(files["model.safetensors"]) == {
        "warden:file:size": str(weights.stat().st_size),
        "warden:file:role": "weights",
    }
    assert all(f["type"] == "file" for f in files.values())


def test_model_card_parameters_come_from_the_spec_and_header(
    tmp_path: Path, site: list[metadata.Distribution]
) -> None:
    model = _build(spec_model(tmp_path / "m"), site)["components"][0]
    params = model["modelCard"]["modelParameters"]
    assert params["task"] == "classification"
    assert params["modelArchitecture"] == "digits-cnn"
    assert params["architectureFamily"] == "convolutional neural network"
    assert params["inputs"] == [{"format": "tensor(float32) [batch, 1, 8, 8] in [0, 1]"}]
    assert params["outputs"] == [{"format": "tensor(float32) [batch, 10] class scores"}]
    props = _props(model)
    assert props["warden:model:format"] == "spec:safetensors"
    assert props["warden:model:parameters"] == str(8 * 9 + 8 + 320)


def test_quantitative_analysis_and_considerations_come_from_the_assessment(
    tmp_path: Path, site: list[metadata.Distribution], report_json: Path
) -> None:
    card = _build(
        spec_model(tmp_path / "m"),
        site,
        assessment=report_json,
        intended_use=["demo"],
        limitations=["toy"],
    )["components"][0]["modelCard"]
    metrics = card["quantitativeAnalysis"]["performanceMetrics"]
    assert {"type": "accuracy", "value": "0.966", "slice": "clean inputs, digits"} in metrics
    pgd = [m for m in metrics if m["type"] == "robust-accuracy" and "attack=pgd" in m["slice"]]
    assert [(m["slice"], m["value"]) for m in pgd] == [
        ("attack=pgd, eps=0", "0.966"),
        ("attack=pgd, eps=0.5", "0.61"),
        ("attack=pgd, eps=1", "0.299"),
        ("attack=pgd, eps=2", "0.08"),
        ("attack=pgd, eps=4", "0"),
    ]
    assert {"type": "grade", "value": "F", "slice": "overall"} in metrics
    assert {"type": "grade", "value": "D", "slice": "ML01 Input Manipulation Attack"} in metrics
    considerations = card["considerations"]
    assert considerations["useCases"] == ["demo"]
    assert considerations["technicalLimitations"] == ["toy"]
    risks = considerations["ethicalConsiderations"]
    assert len(risks) == 4  # every finding but the info one
    pickle_risk = next(r for r in risks if "supplychain.pickle" in r["name"])
    assert pickle_risk["name"].startswith("ML06 AI Supply Chain Attacks: ")
    assert "severity critical" in pickle_risk["name"]
    assert pickle_risk["mitigationStrategy"].startswith("Do not load the file")
    props = {p["name"]: p["value"] for p in card["properties"]}
    assert props["warden:assessment:suite"] == "standard"
    assert props["warden:assessment:sha256"] == _sha(report_json)
    assert props["warden:assessment:model-source"] == "models/digits cnn.pt"


def test_datasets_are_data_components_linked_from_the_model_card(
    tmp_path: Path, site: list[metadata.Distribution], report_json: Path
) -> None:
    npz = tmp_path / "data.npz"
    rng = np.random.default_rng(0)
    np.savez(npz, x=rng.random((20, 4)).astype(np.float32), y=np.arange(20) % 3)
    bom = _build(
        spec_model(tmp_path / "m"), site, assessment=report_json, datasets=[str(npz), "digits"]
    )
    data = {c["bom-ref"]: c for c in bom["components"] if c["type"] == "data"}
    links = [d["ref"] for d in bom["components"][0]["modelCard"]["modelParameters"]["datasets"]]
    assert links == list(data)
    npz_comp = next(c for c in data.values() if c["name"] == str(npz))
    assert npz_comp["hashes"] == [{"alg": "SHA-256", "content": _sha(npz)}]
    assert npz_comp["data"] == [{"type": "dataset", "name": str(npz)}]
    assert _props(npz_comp)["warden:dataset:fingerprint"] == load_dataset(npz).fingerprint
    assert _props(npz_comp)["warden:dataset:samples"] == "20"
    digits = next(c for c in data.values() if c["name"] == "digits")
    assert "hashes" not in digits  # a bundled set has no file to hash
    evaluation = [c for c in data.values() if _props(c).get("warden:dataset:role") == "evaluation"]
    assert [c["name"] for c in evaluation] == ["digits"]  # the fixture's fingerprint is not digits'
    assert evaluation[0] is not digits


def test_a_given_dataset_matching_the_report_is_marked_evaluation(
    tmp_path: Path, site: list[metadata.Distribution]
) -> None:
    doc = assessment_to_dict(make_assessment())
    doc["dataset"]["fingerprint"] = load_dataset("digits").fingerprint
    bom = _build(spec_model(tmp_path / "m"), site, assessment=doc, datasets=["digits"])
    data = [c for c in bom["components"] if c["type"] == "data"]
    assert len(data) == 1
    assert _props(data[0])["warden:dataset:role"] == "evaluation"


def test_libraries_purls_record_hashes_and_dependency_graph(
    tmp_path: Path, site: list[metadata.Distribution]
) -> None:
    bom = _build(spec_model(tmp_path / "m"), site)
    libs = {c["name"]: c for c in bom["components"] if c["type"] == "library"}
    assert libs["torch"]["purl"] == "pkg:pypi/torch@2.13.0%2Bcpu"
    assert libs["Typing_Extensions"]["purl"] == "pkg:pypi/typing-extensions@4.12.2"
    assert libs["numpy"]["licenses"] == [{"expression": "BSD-3-Clause"}]
    assert all("hashes" not in c for c in libs.values())  # no wheel hash offline: none invented
    record = tmp_path / "site" / "warden-0.1.0.dist-info" / "RECORD"
    assert _props(libs["warden"])["warden:dist:record-sha256"] == _sha(record)
    assert "warden:dist:record-sha256" not in _props(libs["safetensors"])
    deps = {d["ref"]: d["dependsOn"] for d in bom["dependencies"]}
    model_ref = bom["components"][0]["bom-ref"]
    assert deps[model_ref] == [
        "pkg:pypi/warden@0.1.0",
        "pkg:pypi/torch@2.13.0%2Bcpu",
        "pkg:pypi/safetensors@0.8.0",
        "pkg:pypi/numpy@2.4.6",
    ]
    # extras and false markers are not runtime edges
    assert deps["pkg:pypi/warden@0.1.0"] == ["pkg:pypi/numpy@2.4.6", "pkg:pypi/safetensors@0.8.0"]
    assert deps["pkg:pypi/torch@2.13.0%2Bcpu"] == [
        "pkg:pypi/numpy@2.4.6",
        "pkg:pypi/typing-extensions@4.12.2",
    ]
    assert deps["pkg:pypi/safetensors@0.8.0"] == []


def test_requirements_pins_become_the_libraries(
    tmp_path: Path, site: list[metadata.Distribution], cdx_validator: Draft7Validator
) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("torch==2.13.0+cpu --hash=sha256:" + "a" * 64 + "\nnumpy==2.4.6\nloose>=1\n")
    bom = _build(spec_model(tmp_path / "m"), site, requirements=req)
    assert_valid(bom, cdx_validator)
    libs = {c["name"]: c for c in bom["components"] if c["type"] == "library"}
    assert set(libs) == {"torch", "numpy"}
    assert _props(libs["torch"])["warden:requirements:artifact-hashes"] == "sha256:" + "a" * 64
    assert _props(libs["numpy"])["warden:requirements:line"] == f"{req}:2"
    deps = {d["ref"]: d["dependsOn"] for d in bom["dependencies"]}
    assert deps["pkg:pypi/torch@2.13.0%2Bcpu"] == ["pkg:pypi/numpy@2.4.6"]  # from installed torch
    meta = {p["name"]: p["value"] for p in bom["metadata"]["properties"]}
    assert meta["warden:sbom:unaudited-requirements"] == "1"


def test_single_file_onnx_model(
    tmp_path: Path, site: list[metadata.Distribution], cdx_validator: Draft7Validator
) -> None:
    path = onnx_model(tmp_path / "tiny.onnx")
    bom = _build(path, site, name="tiny-clf", version="3")
    assert_valid(bom, cdx_validator)
    model = bom["components"][0]
    assert (model["name"], model["version"], model["bom-ref"]) == (
        "tiny-clf",
        "3",
        "model:tiny-clf@3",
    )
    assert model["hashes"] == [{"alg": "SHA-256", "content": _sha(path)}]
    assert "components" not in model
    params = model["modelCard"]["modelParameters"]
    assert params["architectureFamily"] == "feed-forward neural network"
    assert params["inputs"] == [{"format": "tensor(float) [batch, 4] 'x'"}]
    assert params["outputs"] == [{"format": "tensor(float) [batch, 3] 'p'"}]
    props = _props(model)
    assert props["warden:model:producer"] == "warden-tests"
    assert props["warden:model:parameters"] == "15"
    assert props["warden:model:format"] == "onnx"


def test_pickle_based_models_are_hashed_never_loaded(
    tmp_path: Path, site: list[metadata.Distribution], cdx_validator: Draft7Validator
) -> None:
    marker = tmp_path / "PWNED"
    ts = torchscript_like(tmp_path / "net.pt", marker)
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(canary_pickle(marker))
    ts_bom = _build(ts, site)
    pkl_bom = _build(pkl, site)
    assert not marker.exists()
    assert_valid(ts_bom, cdx_validator)
    assert_valid(pkl_bom, cdx_validator)
    ts_model = ts_bom["components"][0]
    assert _props(ts_model)["warden:model:format"] == "torchscript"
    assert (
        ts_model["modelCard"]["modelParameters"]["architectureFamily"]
        == "convolutional neural network"
    )
    pkl_model = pkl_bom["components"][0]
    assert _props(pkl_model)["warden:model:executes-code-on-load"] == "true"
    assert pkl_model["hashes"][0]["content"] == _sha(pkl)


def test_directory_model_lists_every_regular_file(
    tmp_path: Path, site: list[metadata.Distribution]
) -> None:
    spec_model(tmp_path / "bundle")
    (tmp_path / "bundle" / "README.md").write_text("card\n")
    (tmp_path / "bundle" / "extra").mkdir()
    (tmp_path / "bundle" / "extra" / "labels.txt").write_text("0\n1\n")
    (tmp_path / "bundle" / "link").symlink_to(tmp_path / "bundle" / "README.md")
    art = inspect_model(tmp_path / "bundle")
    assert art.name == "bundle"
    assert art.format == "spec:safetensors"
    assert [(f.path, f.role) for f in art.files] == [
        ("README.md", ""),
        ("extra/labels.txt", ""),
        ("model.json", "spec"),
        ("model.safetensors", "weights"),
    ]
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "weights.bin").write_bytes(b"\x00" * 10)
    assert inspect_model(plain).format == "directory"


def test_model_errors(tmp_path: Path, site: list[metadata.Distribution]) -> None:
    with pytest.raises(ModelLoadError, match="SHA-256 does not match the spec"):
        _build(spec_model(tmp_path / "tampered", sha="0" * 64), site)
    with pytest.raises(ModelLoadError, match="no such model file"):
        inspect_model(tmp_path / "missing.onnx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no regular file"):
        inspect_model(tmp_path / "empty")
    spec = spec_model(tmp_path / "gone")
    (tmp_path / "gone" / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="not found"):
        inspect_model(spec)


def test_assessment_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match="not JSON"):
        read_assessment(bad)
    with pytest.raises(ConfigError, match=r"schema_version '2\.0' is not supported"):
        read_assessment({"schema_version": "2.0"})
    with pytest.raises(ConfigError, match="findings or scorecard missing"):
        read_assessment({"schema_version": "1.0"})
    with pytest.raises(ConfigError, match="cannot read assessment report"):
        read_assessment(tmp_path / "missing.json")
    assert read_assessment(make_assessment())["suite"] == "standard"


def test_facts_merge_and_registry_override(
    tmp_path: Path, site: list[metadata.Distribution]
) -> None:
    base = ModelCardFacts(
        task="classification", inputs=("a",), metrics=(PerformanceMetric("accuracy", "0.9"),)
    )
    other = ModelCardFacts(
        task="detection", metrics=(PerformanceMetric("f1", "0.8"),), risks=(Risk("r", "m"),)
    )
    merged = base.merged(other)
    assert merged.task == "detection"
    assert merged.inputs == ("a",)
    assert [m.type for m in merged.metrics] == ["accuracy", "f1"]
    assert merged.merged(other).metrics == merged.metrics  # no duplicates
    with pytest.raises(ConfigError, match="approach 'magic'"):
        ModelCardFacts(approach="magic")
    registry = ModelCardFacts(
        approach="supervised", model_architecture="registry-arch", users=("analysts",)
    )
    card = _build(spec_model(tmp_path / "m"), site, facts=registry)["components"][0]["modelCard"]
    assert card["modelParameters"]["approach"] == {"type": "supervised"}
    assert card["modelParameters"]["modelArchitecture"] == "registry-arch"
    assert card["considerations"]["users"] == ["analysts"]


def test_facts_from_assessment_without_baseline_uses_clean_accuracy() -> None:
    doc = assessment_to_dict(make_assessment())
    doc["findings"] = [f for f in doc["findings"] if f["id"] != "baseline.accuracy"]
    facts = facts_from_assessment(doc)
    assert facts.metrics[0] == PerformanceMetric("accuracy", "0.966", "clean inputs, digits")


def test_the_validator_rejects_broken_boms(
    tmp_path: Path, site: list[metadata.Distribution], cdx_validator: Draft7Validator
) -> None:
    bom = _build(spec_model(tmp_path / "m"), site)
    for edit in (
        lambda b: b["components"][0].update(type="neural-net"),
        lambda b: b["components"][0]["components"][0]["hashes"][0].update(content="xyz"),
        lambda b: b["components"][0]["modelCard"]["modelParameters"].update(
            approach={"type": "magic"}
        ),
        lambda b: b.update(serialNumber="12345"),
    ):
        broken = copy.deepcopy(bom)
        edit(broken)
        assert not cdx_validator.is_valid(broken)
        assert validate_sbom(broken) != []


def test_output_is_deterministic_given_time_and_serial(
    tmp_path: Path, site: list[metadata.Distribution]
) -> None:
    spec = spec_model(tmp_path / "m")
    first = _build(spec, site)
    assert _build(spec, site) == first
    out = write_sbom(first, tmp_path / "out" / "bom.json")
    assert json.loads(out.read_text("utf-8")) == first
    assert build_sbom(spec, include_libraries=False)["serialNumber"] != first["serialNumber"]
