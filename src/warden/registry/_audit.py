"""Audit records for registry actions.

Every registry method that changes something (or hands out decrypted bytes) is wrapped with
:func:`audited`: after it returns, one event goes to the registry's :class:`AuditSink` with the
actor, the resource (``model:NAME@vN`` or ``dataset:NAME``), outcome ``ok`` and a short summary
of the result; when it raises a :class:`~warden.errors.WardenError`, the attempt is recorded
with outcome ``refused`` (a lifecycle move or policy gate said no) or ``error`` and the message,
and the error propagates. A failure to write the audit record is an error of the call: a
change that cannot be audited is never reported as done quietly.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from warden.errors import LifecycleError, StoreError, WardenError

if TYPE_CHECKING:
    from warden.audit.events import AuditEvent

__all__ = ["audited"]

P = ParamSpec("P")
R = TypeVar("R")

_MAX_MESSAGE = 2000

_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar(
    "warden_registry_audit_depth", default=0
)
"""How many audited registry calls are running in this context: only the outermost records
(``sign_version`` attaching its signature is one action, not two)."""


def _summary(result: Any) -> dict[str, Any]:
    """A few fields of a registry record worth keeping in the log."""
    from warden.registry import records as r

    if isinstance(result, r.TransitionInfo):
        out: dict[str, Any] = {
            "from": result.from_state,
            "to": result.to_state,
            "reason": result.reason,
        }
        if result.override:
            out["override"] = True
            out["failures"] = result.evidence.get("failures", [])
        return out
    if isinstance(result, r.VersionInfo):
        return {"artifact_digest": result.artifact_digest, "files": len(result.files)}
    if isinstance(result, r.ScanInfo):
        return {"clean": result.clean, "max_severity": result.max_severity, "scan": result.id}
    if isinstance(result, r.SignatureInfo):
        return {"key_id": result.key_id, "verified": result.verified, "signature": result.id}
    if isinstance(result, r.AssessmentInfo):
        return {"grade": result.grade, "assessment": result.id}
    if isinstance(result, r.DatasetInfo):
        return {"fingerprint": result.fingerprint}
    if isinstance(result, r.LineageInfo):
        return {"kind": result.kind, "target": result.target}
    if isinstance(result, r.AliasInfo):
        return {"alias": result.name, "version": result.version}
    if isinstance(result, Path):
        return {"path": str(result)}
    return {}


def _version_of(result: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    for attr in ("number", "version"):
        value = getattr(result, attr, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    ref = args[1] if len(args) > 1 else kwargs.get("ref")
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ref
    if isinstance(ref, str) and ref.lstrip("vV").isdigit():
        return int(ref.lstrip("vV"))
    return None


def audited(action: str, *, subject: str = "model") -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record every call of the wrapped registry method as ``action`` (see module doc)."""

    def wrap(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            registry, rest = args[0], args[1:]
            name = rest[0] if rest else kwargs.get("model", kwargs.get("name", ""))
            outermost = _DEPTH.get() == 0
            token = _DEPTH.set(_DEPTH.get() + 1)
            try:
                result = method(*args, **kwargs)
            except WardenError as exc:
                if not outermost:
                    raise
                outcome = "refused" if isinstance(exc, LifecycleError) else "error"
                details: dict[str, Any] = {"error": str(exc)[:_MAX_MESSAGE]}
                failures = getattr(exc, "failures", ())
                if failures:
                    details["failures"] = list(failures)
                _emit(registry, action, subject, name, None, outcome, details)
                raise
            finally:
                _DEPTH.reset(token)
            if not outermost:
                return result
            version = _version_of(result, rest, dict(kwargs)) if subject == "model" else None
            details = _summary(result)
            reason = kwargs.get("reason") or kwargs.get("override_reason")
            if isinstance(reason, str) and reason and "reason" not in details:
                details["reason"] = reason
            _emit(registry, action, subject, name, version, "ok", details)
            return result

        return inner

    return wrap


def _emit(
    registry: Any,
    action: str,
    subject: str,
    name: object,
    version: int | None,
    outcome: str,
    details: dict[str, Any],
) -> None:
    sink = getattr(registry, "audit", None)
    if sink is None:
        return
    from warden.audit.events import AuditEvent, model_resource

    text = str(name)
    resource = model_resource(text, version) if subject == "model" else f"{subject}:{text}"
    digest = details.get("artifact_digest")
    event: AuditEvent = AuditEvent(
        action=action,
        actor=registry.actor,
        resource=resource,
        outcome=outcome,
        input_digest=digest if isinstance(digest, str) else "",
        details=details,
    )
    try:
        sink.record(event)
    except Exception as exc:
        done = "was made" if outcome == "ok" else "was refused"
        raise StoreError(
            f"{action} on {resource}: the change {done} but its audit record could not be "
            f"written ({exc}); check the database and run `warden audit verify`"
        ) from exc
