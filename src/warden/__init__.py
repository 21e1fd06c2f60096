"""Warden: a security platform for machine-learning models.

Importing ``warden`` has no side effects: it writes no files, configures no logging and loads
no heavy dependency. The public names below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # models
    "Bounds": "warden.models.base",
    "CallableModel": "warden.models.callable",
    "HttpModel": "warden.models.http",
    "Model": "warden.models.base",
    "OnnxModel": "warden.models.onnx",
    "SklearnModel": "warden.models.sklearn",
    "TorchModel": "warden.models.torch",
    "TrainConfig": "warden.models.zoo",
    "export_onnx": "warden.models.export",
    "export_torchscript": "warden.models.export",
    "load_model": "warden.models.loading",
    "save_torch_model": "warden.models.loading",
    "train_model": "warden.models.zoo",
    # data
    "Dataset": "warden.data.dataset",
    "load_dataset": "warden.data.loaders",
    # evasion
    "AttackResult": "warden.evasion.base",
    "FGSM": "warden.evasion.fgsm",
    "L2PGD": "warden.evasion.pgd",
    "PGD": "warden.evasion.pgd",
    "APGD": "warden.evasion.apgd",
    "APGDT": "warden.evasion.apgd",
    "AutoEvaluate": "warden.evasion.autoeval",
    "CarliniWagnerL2": "warden.evasion.cw",
    "DeepFool": "warden.evasion.deepfool",
    "FAB": "warden.evasion.fab",
    "HopSkipJump": "warden.evasion.hopskipjump",
    "SquareAttack": "warden.evasion.square",
    "TransferAttack": "warden.evasion.transfer",
    "create_attack": "warden.evasion.registry",
    "attack_names": "warden.evasion.registry",
    # assessment
    "Assessment": "warden.assess.result",
    "CheckSpec": "warden.assess.suite",
    "Finding": "warden.assess.finding",
    "Scorecard": "warden.assess.scorecard",
    "Severity": "warden.assess.finding",
    "Suite": "warden.assess.suite",
    # reports
    "write_reports": "warden.report",
    # supply chain
    "ScanLimits": "warden.supplychain.scanner",
    "ScanReport": "warden.supplychain.scan",
    "VerifyResult": "warden.supplychain.signing",
    "build_sbom": "warden.supplychain.sbom",
    "generate_key": "warden.supplychain.keys",
    "scan_file": "warden.supplychain.scanner",
    "scan_paths": "warden.supplychain.scan",
    # store, registry, governance
    "Registry": "warden.registry.core",
    "Settings": "warden.config",
    "Store": "warden.store.home",
    "build_model_card": "warden.registry.modelcard",
    "compliance_report": "warden.registry.compliance",
    "create_backup": "warden.registry.backup",
    "load_settings": "warden.config",
    "restore_backup": "warden.registry.backup",
    "verify_backup": "warden.registry.backup",
    # errors
    "WardenError": "warden.errors",
}

__all__ = [
    "APGD",
    "APGDT",
    "Assessment",
    "AttackResult",
    "AutoEvaluate",
    "Bounds",
    "CallableModel",
    "CarliniWagnerL2",
    "CheckSpec",
    "Dataset",
    "DeepFool",
    "FAB",
    "FGSM",
    "Finding",
    "HopSkipJump",
    "HttpModel",
    "L2PGD",
    "Model",
    "OnnxModel",
    "PGD",
    "Registry",
    "ScanLimits",
    "ScanReport",
    "Scorecard",
    "Settings",
    "Severity",
    "SklearnModel",
    "SquareAttack",
    "Store",
    "Suite",
    "TorchModel",
    "TrainConfig",
    "TransferAttack",
    "VerifyResult",
    "WardenError",
    "__version__",
    "attack_names",
    "build_model_card",
    "build_sbom",
    "compliance_report",
    "create_attack",
    "create_backup",
    "export_onnx",
    "export_torchscript",
    "generate_key",
    "load_dataset",
    "load_model",
    "load_settings",
    "restore_backup",
    "save_torch_model",
    "scan_file",
    "scan_paths",
    "train_model",
    "verify_backup",
    "write_reports",
]

if TYPE_CHECKING:
    from warden.assess.finding import Finding, Severity
    from warden.assess.result import Assessment
    from warden.assess.scorecard import Scorecard
    from warden.assess.suite import CheckSpec, Suite
    from warden.config import Settings, load_settings
    from warden.data.dataset import Dataset
    from warden.data.loaders import load_dataset
    from warden.errors import WardenError
    from warden.evasion.apgd import APGD, APGDT
    from warden.evasion.autoeval import AutoEvaluate
    from warden.evasion.base import AttackResult
    from warden.evasion.cw import CarliniWagnerL2
    from warden.evasion.deepfool import DeepFool
    from warden.evasion.fab import FAB
    from warden.evasion.fgsm import FGSM
    from warden.evasion.hopskipjump import HopSkipJump
    from warden.evasion.pgd import L2PGD, PGD
    from warden.evasion.registry import attack_names, create_attack
    from warden.evasion.square import SquareAttack
    from warden.evasion.transfer import TransferAttack
    from warden.models.base import Bounds, Model
    from warden.models.callable import CallableModel
    from warden.models.export import export_onnx, export_torchscript
    from warden.models.http import HttpModel
    from warden.models.loading import load_model, save_torch_model
    from warden.models.onnx import OnnxModel
    from warden.models.sklearn import SklearnModel
    from warden.models.torch import TorchModel
    from warden.models.zoo import TrainConfig, train_model
    from warden.registry.backup import create_backup, restore_backup, verify_backup
    from warden.registry.compliance import compliance_report
    from warden.registry.core import Registry
    from warden.registry.modelcard import build_model_card
    from warden.report import write_reports
    from warden.store.home import Store
    from warden.supplychain.keys import generate_key
    from warden.supplychain.sbom import build_sbom
    from warden.supplychain.scan import ScanReport, scan_paths
    from warden.supplychain.scanner import ScanLimits, scan_file
    from warden.supplychain.signing import VerifyResult


_SUBPACKAGES = frozenset(
    {
        "assess",
        "cli",
        "config",
        "data",
        "errors",
        "evasion",
        "models",
        "registry",
        "report",
        "store",
        "supplychain",
    }
)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"warden.{name}")
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'warden' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module_name), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
