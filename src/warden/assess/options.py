"""Reading a check's options from a suite: known keys only, with types checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from warden.errors import ConfigError

__all__ = ["Options"]


class Options:
    """A check's options; every key must be read, so typos are errors, not silent defaults."""

    def __init__(self, check: str, raw: Mapping[str, Any]) -> None:
        self.check = check
        self._raw = dict(raw)
        self._used: set[str] = set()

    def _get(self, key: str, default: Any) -> Any:
        self._used.add(key)
        return self._raw.get(key, default)

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        """An integer option, at least ``minimum``."""
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{self.check}: option {key!r} must be an integer >= {minimum}")
        return value

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        """A finite number option, at least ``minimum``."""
        value = self._get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (minimum <= value < float("inf"))
        ):
            raise ConfigError(f"{self.check}: option {key!r} must be a number >= {minimum}")
        return float(value)

    def numbers(self, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        """A non-empty list of finite, non-negative numbers."""
        value = self._get(key, default)
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{self.check}: option {key!r} must be a non-empty list of numbers")
        out = []
        for v in value:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
                raise ConfigError(f"{self.check}: option {key!r} has a bad value {v!r}")
            out.append(float(v))
        return tuple(out)

    def text(self, key: str, default: str | None) -> str | None:
        """A string option (``default`` when absent)."""
        value = self._get(key, default)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{self.check}: option {key!r} must be a string")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        """One of ``choices``."""
        value = self._get(key, default)
        if value not in choices:
            raise ConfigError(f"{self.check}: option {key!r} must be one of {', '.join(choices)}")
        return str(value)

    def done(self) -> None:
        """Refuse keys that no reader asked for."""
        unknown = sorted(set(self._raw) - self._used)
        if unknown:
            raise ConfigError(
                f"{self.check}: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self._used))}"
            )
