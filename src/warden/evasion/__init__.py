"""Evasion (OWASP ML01): adversarial-input attacks and the checks that run them."""

from __future__ import annotations

from warden.evasion.base import Attack, AttackResult
from warden.evasion.fgsm import FGSM
from warden.evasion.gradient import GradientAttack
from warden.evasion.pgd import L2PGD, PGD

__all__ = ["FGSM", "PGD", "Attack", "AttackResult", "GradientAttack", "L2PGD"]
