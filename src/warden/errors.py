"""Warden's one error tree.

Every error Warden raises on purpose is a :class:`WardenError`; third-party errors are
translated at the boundary (``raise DataError(...) from exc``). The CLI turns any
``WardenError`` into a one-line message and exit code 2.

::

    WardenError
    ├── ConfigError              a setting, suite file or option is invalid
    ├── DataError                a dataset file or array is malformed (names the file/row)
    ├── ModelError               a model cannot be loaded, built or queried
    │   ├── ModelLoadError           the artifact is unreadable or its spec is wrong
    │   ├── UnsafeModelError         loading would execute code (pickle) and was refused
    │   ├── ModelQueryError          a remote model answered with an error or garbage
    │   └── QueryBudgetExceeded      a model's query budget is spent
    ├── InputShapeError          an input batch does not match the model (shape/dtype/NaN)
    ├── AttackError              attack settings are invalid or the attack cannot run
    ├── NotFittedError           a detector was used before ``fit``
    ├── RegistryError            a name is registered twice or is unknown
    ├── ReportError              a report cannot be rendered or written
    └── SignatureError           a signature, key or signed manifest is invalid or does not verify

Messages say what was expected, what was found, and what to do.
"""

from __future__ import annotations

__all__ = [
    "AttackError",
    "ConfigError",
    "DataError",
    "InputShapeError",
    "ModelError",
    "ModelLoadError",
    "ModelQueryError",
    "NotFittedError",
    "QueryBudgetExceeded",
    "RegistryError",
    "ReportError",
    "SignatureError",
    "UnsafeModelError",
    "WardenError",
]


class WardenError(Exception):
    """Base class of every error Warden raises on purpose."""


class ConfigError(WardenError):
    """A setting, suite file or option is invalid."""


class DataError(WardenError):
    """A dataset file or array is malformed."""


class ModelError(WardenError):
    """A model cannot be loaded, built or queried."""


class ModelLoadError(ModelError):
    """A model artifact is unreadable or its spec is wrong."""


class UnsafeModelError(ModelError):
    """Loading the artifact would execute code (pickle) and was refused."""


class ModelQueryError(ModelError):
    """A remote model answered with an error status or an unreadable body."""


class QueryBudgetExceeded(ModelError):
    """A model's query budget is spent; no query was sent."""


class InputShapeError(WardenError, ValueError):
    """An input batch does not match what the model expects."""


class AttackError(WardenError):
    """Attack settings are invalid or the attack cannot run on this model."""


class NotFittedError(WardenError):
    """A fitted object (detector) was used before ``fit``."""


class RegistryError(WardenError, KeyError):
    """A name is registered twice, or looked up and not found."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ReportError(WardenError):
    """A report cannot be rendered or written."""


class SignatureError(WardenError):
    """A signature, key or signed manifest is invalid, or the signed files do not verify."""
