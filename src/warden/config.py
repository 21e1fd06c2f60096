"""Settings for the persistent parts of Warden: defaults < ``warden.toml`` < ``WARDEN_*`` env.

Only the edges (the CLI, ``warden serve``) call :func:`load_settings`; library code receives a
:class:`Settings` (or the paths and URLs it holds) as an argument and never reads the
environment itself.

==========================  ===========================================  ======================
environment variable        ``warden.toml`` key (in ``WARDEN_HOME``)     default
==========================  ===========================================  ======================
``WARDEN_HOME``             (none: the file lives there)                 ``./.warden``
``WARDEN_DATABASE_URL``     ``database_url``                             SQLite in the home
``WARDEN_MASTER_KEY``       (never in a file Warden reads as settings)   ``HOME/master.key``
``WARDEN_POLICY``           ``policy``                                   ``HOME/policy.toml``
==========================  ===========================================  ======================
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from warden.errors import ConfigError

__all__ = ["DEFAULT_HOME", "Settings", "load_settings"]

DEFAULT_HOME = Path(".warden")
"""Where Warden keeps its database, blobs and keys when ``WARDEN_HOME`` is not set."""

_FILE_KEYS = frozenset({"database_url", "policy"})


@dataclass(frozen=True)
class Settings:
    """Where Warden's state lives."""

    home: Path
    """The Warden home directory (created 0700)."""
    database_url: str | None = None
    """A SQLAlchemy URL; ``None`` means the SQLite database inside ``home``."""
    master_key: str | None = None
    """The master key from ``WARDEN_MASTER_KEY`` (base64 of 32 bytes); ``None``: the key file."""
    policy: Path | None = None
    """The approval-policy file; ``None`` means ``home/policy.toml`` when it exists."""

    def __post_init__(self) -> None:
        if self.database_url is not None and not self.database_url.strip():
            raise ConfigError("database_url is empty; leave it unset to use SQLite in the home")


def _read_file(home: Path) -> dict[str, str]:
    path = home / "warden.toml"
    if not path.is_file():
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML file ({exc})") from exc
    unknown = sorted(set(doc) - _FILE_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; "
            f"expected only {', '.join(sorted(_FILE_KEYS))}"
        )
    values: dict[str, str] = {}
    for key, value in doc.items():
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {key} must be a string, found {type(value).__name__}")
        values[key] = value
    return values


def load_settings(
    env: Mapping[str, str] | None = None, *, home: str | os.PathLike[str] | None = None
) -> Settings:
    """Settings from ``env`` (default ``os.environ``), the home's ``warden.toml`` and defaults.

    ``home`` (a ``--home`` option) wins over ``WARDEN_HOME``.
    """
    env = os.environ if env is None else env
    root = Path(home) if home is not None else Path(env.get("WARDEN_HOME") or DEFAULT_HOME)
    file_values = _read_file(root)
    database_url = env.get("WARDEN_DATABASE_URL") or file_values.get("database_url")
    policy = env.get("WARDEN_POLICY") or file_values.get("policy")
    policy_path = None
    if policy:
        policy_path = Path(policy)
        if not policy_path.is_absolute() and "WARDEN_POLICY" not in env:
            policy_path = root / policy_path
    return Settings(
        home=root,
        database_url=database_url or None,
        master_key=env.get("WARDEN_MASTER_KEY") or None,
        policy=policy_path,
    )
