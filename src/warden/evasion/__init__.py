"""Evasion (OWASP ML01): adversarial-input attacks and the checks that run them.

Importing this package does not import torch: white-box attacks load it when they run.
"""

from __future__ import annotations

from warden.evasion.apgd import APGD, APGDT
from warden.evasion.autoeval import AutoEvalResult, AutoEvaluate
from warden.evasion.base import Attack, AttackResult, AttackSettings
from warden.evasion.budget import QueryCounter
from warden.evasion.cw import CarliniWagnerL2
from warden.evasion.deepfool import DeepFool
from warden.evasion.fab import FAB
from warden.evasion.fgsm import FGSM
from warden.evasion.gradient import GradientAttack
from warden.evasion.hopskipjump import HopSkipJump
from warden.evasion.pgd import L2PGD, PGD
from warden.evasion.registry import (
    AttackInfo,
    attack_info,
    attack_names,
    create_attack,
    register_attack,
)
from warden.evasion.square import SquareAttack
from warden.evasion.transfer import TransferAttack

__all__ = [
    "APGD",
    "APGDT",
    "FAB",
    "FGSM",
    "L2PGD",
    "PGD",
    "Attack",
    "AttackInfo",
    "AttackResult",
    "AttackSettings",
    "AutoEvalResult",
    "AutoEvaluate",
    "CarliniWagnerL2",
    "DeepFool",
    "GradientAttack",
    "HopSkipJump",
    "QueryCounter",
    "SquareAttack",
    "TransferAttack",
    "attack_info",
    "attack_names",
    "create_attack",
    "register_attack",
]
