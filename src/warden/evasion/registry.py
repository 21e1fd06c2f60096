"""The registry of evasion attacks, by name, with their kind (what access they need)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from warden.errors import AttackError, RegistryError
from warden.evasion.base import Attack

__all__ = ["AttackInfo", "attack_info", "attack_names", "create_attack", "register_attack"]

KINDS = ("whitebox", "score", "decision")
"""``whitebox``: needs a TorchModel; ``score``: any model's scores; ``decision``: labels only."""


@dataclass(frozen=True)
class AttackInfo:
    """A registered attack."""

    name: str
    """Registry name, e.g. ``apgd-ce``."""
    factory: Callable[..., Attack]
    """Builds the attack from keyword settings (``eps`` among them when ``bounded``)."""
    kind: str
    """``whitebox``, ``score`` or ``decision``."""
    norm: str
    """``linf`` or ``l2``."""
    minimal: bool = False
    """A minimal-perturbation attack: ``eps`` is optional and caps the result."""
    summary: str = ""
    """One line for ``warden attack --help`` and the docs."""
    min_classes: int = 2
    """Fewest classes the attack works with (the DLR losses need 3, targeted DLR 4)."""


_ATTACKS: dict[str, AttackInfo] = {}


def register_attack(info: AttackInfo) -> None:
    """Register an attack; duplicate names are refused."""
    if info.kind not in KINDS:
        raise RegistryError(f"attack {info.name!r}: kind must be one of {', '.join(KINDS)}")
    if info.name in _ATTACKS:
        raise RegistryError(f"attack {info.name!r} is already registered")
    _ATTACKS[info.name] = info


def _load_builtin() -> None:
    import warden.evasion.attacks  # noqa: F401  (registers the built-in attacks)


def attack_names() -> list[str]:
    """Registered attack names, sorted."""
    _load_builtin()
    return sorted(_ATTACKS)


def attack_info(name: str) -> AttackInfo:
    """The registration of ``name``."""
    _load_builtin()
    try:
        return _ATTACKS[name]
    except KeyError:
        raise RegistryError(
            f"unknown attack {name!r}; registered: {', '.join(sorted(_ATTACKS))}"
        ) from None


def create_attack(name: str, **settings: Any) -> Attack:
    """Build the attack registered as ``name`` with ``settings``; bad settings are refused."""
    info = attack_info(name)
    try:
        return info.factory(**settings)
    except TypeError as exc:
        raise AttackError(f"{name}: {exc}") from exc
