"""Registers Warden's built-in evasion attacks (imported on first registry use)."""

from __future__ import annotations

from warden.evasion.fgsm import FGSM
from warden.evasion.pgd import L2PGD, PGD
from warden.evasion.registry import AttackInfo, register_attack

register_attack(AttackInfo("fgsm", FGSM, "whitebox", "linf", summary="FGSM, one L-inf step"))
register_attack(
    AttackInfo("pgd-linf", PGD, "whitebox", "linf", summary="PGD L-inf, random start, restarts")
)
register_attack(
    AttackInfo("pgd-l2", L2PGD, "whitebox", "l2", summary="PGD L2, random start, restarts")
)
