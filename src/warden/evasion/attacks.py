"""Registers Warden's built-in evasion attacks (imported on first registry use)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from warden.errors import AttackError
from warden.evasion.apgd import APGD, APGDT
from warden.evasion.base import Attack
from warden.evasion.cw import CarliniWagnerL2
from warden.evasion.deepfool import DeepFool
from warden.evasion.fab import FAB
from warden.evasion.fgsm import FGSM
from warden.evasion.hopskipjump import HopSkipJump
from warden.evasion.pgd import L2PGD, PGD
from warden.evasion.registry import AttackInfo, register_attack
from warden.evasion.square import SquareAttack


def preset(cls: Callable[..., Attack], **fixed: Any) -> Callable[..., Attack]:
    """A factory for ``cls`` with ``fixed`` settings that callers may not override."""

    def factory(**settings: Any) -> Attack:
        clash = sorted(set(settings) & set(fixed))
        if clash:
            raise AttackError(f"{', '.join(clash)} is fixed by the attack's name")
        return cls(**fixed, **settings)

    return factory


_BUILTIN: tuple[AttackInfo, ...] = (
    AttackInfo("fgsm", FGSM, "whitebox", "linf", summary="FGSM, one L-inf step"),
    AttackInfo("pgd-linf", PGD, "whitebox", "linf", summary="PGD L-inf, random start, restarts"),
    AttackInfo("pgd-l2", L2PGD, "whitebox", "l2", summary="PGD L2, random start, restarts"),
    AttackInfo(
        "apgd-ce",
        preset(APGD, loss="ce", norm="linf"),
        "whitebox",
        "linf",
        summary="APGD, cross-entropy, L-inf (Croce & Hein 2020)",
    ),
    AttackInfo(
        "apgd-dlr",
        preset(APGD, loss="dlr", norm="linf"),
        "whitebox",
        "linf",
        summary="APGD, DLR loss, L-inf (Croce & Hein 2020)",
        min_classes=3,
    ),
    AttackInfo(
        "apgd-ce-l2",
        preset(APGD, loss="ce", norm="l2"),
        "whitebox",
        "l2",
        summary="APGD, cross-entropy, L2 (Croce & Hein 2020)",
    ),
    AttackInfo(
        "apgd-dlr-l2",
        preset(APGD, loss="dlr", norm="l2"),
        "whitebox",
        "l2",
        summary="APGD, DLR loss, L2 (Croce & Hein 2020)",
        min_classes=3,
    ),
    AttackInfo(
        "apgd-t",
        preset(APGDT, norm="linf"),
        "whitebox",
        "linf",
        summary="APGD-T, targeted DLR toward the top-k classes, L-inf",
        min_classes=4,
    ),
    AttackInfo(
        "apgd-t-l2",
        preset(APGDT, norm="l2"),
        "whitebox",
        "l2",
        summary="APGD-T, targeted DLR toward the top-k classes, L2",
        min_classes=4,
    ),
    AttackInfo(
        "cw-l2",
        CarliniWagnerL2,
        "whitebox",
        "l2",
        minimal=True,
        summary="Carlini-Wagner L2, binary search over c, minimal L2",
    ),
    AttackInfo(
        "deepfool",
        preset(DeepFool, norm="l2"),
        "whitebox",
        "l2",
        minimal=True,
        summary="DeepFool L2, linearised closest boundary, minimal L2",
    ),
    AttackInfo(
        "deepfool-linf",
        preset(DeepFool, norm="linf"),
        "whitebox",
        "linf",
        minimal=True,
        summary="DeepFool L-inf (lp dual step), minimal L-inf",
    ),
    AttackInfo(
        "fab-t-linf",
        preset(FAB, norm="linf"),
        "whitebox",
        "linf",
        minimal=True,
        summary="FAB-T (as in AutoAttack): targeted fast adaptive boundary, minimal L-inf",
    ),
    AttackInfo(
        "fab-t-l2",
        preset(FAB, norm="l2"),
        "whitebox",
        "l2",
        minimal=True,
        summary="FAB-T: targeted fast adaptive boundary, minimal L2",
    ),
    AttackInfo(
        "square-linf",
        preset(SquareAttack, norm="linf"),
        "score",
        "linf",
        summary="Square Attack L-inf: score-based random search, query budget per sample",
    ),
    AttackInfo(
        "square-l2",
        preset(SquareAttack, norm="l2"),
        "score",
        "l2",
        summary="Square Attack L2: score-based random search, query budget per sample",
    ),
    AttackInfo(
        "hsj-l2",
        preset(HopSkipJump, norm="l2"),
        "decision",
        "l2",
        minimal=True,
        summary="HopSkipJump L2: labels only, minimal perturbation",
    ),
    AttackInfo(
        "hsj-linf",
        preset(HopSkipJump, norm="linf"),
        "decision",
        "linf",
        minimal=True,
        summary="HopSkipJump L-inf: labels only, minimal perturbation",
    ),
)

for _info in _BUILTIN:
    register_attack(_info)
