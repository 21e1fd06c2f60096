"""One audit record per request; a 2xx response starts only once its record is durable.

When the app starts its response, this middleware builds an
:class:`~warden.audit.AuditEvent` for the request and

* for a 2xx answer, awaits :meth:`AuditLog.append_async` (committed, fsynced) **before** the
  response start is passed on; if the record cannot be written the client gets 503 instead
  and the app's answer is dropped (fail closed: nothing is served unrecorded);
* for any other answer (401, 403, 404, 413, 422, 429, 5xx …), appends without waiting
  (``durable=False``): refusals are recorded, but do not pay for an fsync each. An app that
  raises before answering is recorded as ``error``.

The record: ``action`` ``gateway.<route name>`` (``gateway.unmatched`` when no route
matched), ``actor`` the authenticated principal (``alice``, ``key:ID``) or ``anonymous``,
``source`` the client address, ``latency_ms`` up to the response start, ``outcome`` from the
status (``ok``, ``unauthenticated``, ``denied``, ``invalid``, ``not-found``, ``rate-limited``,
``unavailable``, ``error``, ``refused``), and ``details`` with the listener, method, route
template and status. Routes add what only they know with :func:`audit_note` (the resource,
the input digest, guard verdicts, an outcome such as ``blocked``).

Paths in ``exempt`` (``/healthz``: probes every few seconds) are not recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, MutableMapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Final

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warden.audit.events import AuditEvent

if TYPE_CHECKING:
    from warden.audit import AuditLog
    from warden.audit.events import AuditReceipt

__all__ = ["AUDIT_KEY", "RequestAuditMiddleware", "audit_note", "outcome_of"]

log = logging.getLogger(__name__)

AUDIT_KEY: Final = "warden.audit"
"""ASGI scope key of the fields a route adds to its request's audit record."""
_PRINCIPAL_KEY: Final = "warden.principal"  # warden.gateway.auth.PRINCIPAL_KEY
_FIELDS: Final = frozenset({"resource", "outcome", "input_digest", "verdicts", "details"})
_MAX_TEXT: Final = 300

_OUTCOMES: Final = {
    400: "invalid",
    401: "unauthenticated",
    403: "denied",
    404: "not-found",
    405: "invalid",
    409: "refused",
    413: "invalid",
    422: "invalid",
    429: "rate-limited",
    503: "unavailable",
}


def outcome_of(status: int) -> str:
    """The audit outcome a status code stands for."""
    if 200 <= status < 300:
        return "ok"
    if status in _OUTCOMES:
        return _OUTCOMES[status]
    return "error" if status >= 500 else "refused"


def audit_note(scope: MutableMapping[str, Any], **fields: Any) -> None:
    """Add fields to this request's audit record: ``resource``, ``outcome``,
    ``input_digest``, ``verdicts`` (a dict) or ``details`` (a dict, merged)."""
    unknown = set(fields) - _FIELDS
    if unknown:
        raise ValueError(f"audit_note: unknown field(s) {sorted(unknown)}")
    note: dict[str, Any] = scope.setdefault(AUDIT_KEY, {})
    details = fields.pop("details", None)
    if details:
        note.setdefault("details", {}).update(details)
    note.update(fields)


def _clean(text: object) -> str:
    """Printable ASCII of bounded length (paths and names come from clients)."""
    value = str(text)
    if not (value.isascii() and value.isprintable()):
        value = ascii(value)[1:-1]
    return value[:_MAX_TEXT]


def _log_failure(future: Future[AuditReceipt]) -> None:
    error = future.exception()
    if error is not None:
        log.error("an audit record of a refused request could not be written: %s", error)


class RequestAuditMiddleware:
    """Records every request in ``audit`` (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        audit: AuditLog,
        *,
        listener: str,
        exempt: Collection[str] = ("/healthz",),
    ) -> None:
        self.app = app
        self.audit = audit
        self.listener = listener
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        started = False
        withheld = False

        async def audited_send(message: Message) -> None:
            nonlocal started, withheld
            if withheld:
                return
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                event = self._event(scope, status, start)
                if 200 <= status < 300:
                    try:
                        await self.audit.append_async(event)
                    except Exception:
                        log.exception(
                            "the audit record of a %d answer could not be written", status
                        )
                        withheld = True
                        await _withhold(send)
                        return
                else:
                    self._append_quietly(event)
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not started:
                self._append_quietly(self._event(scope, 500, start))
            raise

    def _append_quietly(self, event: AuditEvent) -> None:
        try:
            self.audit.append(event, durable=False).add_done_callback(_log_failure)
        except Exception:
            log.exception("an audit record of a refused request could not be queued")

    def _event(self, scope: Scope, status: int, start: float) -> AuditEvent:
        note: dict[str, Any] = scope.get(AUDIT_KEY) or {}
        route = scope.get("route")
        name = getattr(route, "name", None)
        template = getattr(route, "path", None)
        principal = scope.get(_PRINCIPAL_KEY)
        actor = getattr(principal, "actor", None) or "anonymous"
        client = scope.get("client")
        details: dict[str, Any] = {
            "listener": self.listener,
            "method": _clean(scope.get("method", "")),
            "route": _clean(template) if isinstance(template, str) else "<unmatched>",
            "status": status,
        }
        details.update(note.get("details") or {})
        outcome = note.get("outcome") if 200 <= status < 300 or status == 403 else None
        return AuditEvent(
            action=f"gateway.{_clean(name)}" if isinstance(name, str) else "gateway.unmatched",
            actor=_clean(actor),
            resource=_clean(note.get("resource", "")),
            outcome=outcome or outcome_of(status),
            source=_clean(client[0]) if client else "",
            input_digest=_clean(note.get("input_digest", "")),
            latency_ms=round((time.perf_counter() - start) * 1000.0, 3),
            verdicts=note.get("verdicts") or {},
            details=details,
        )


async def _withhold(send: Send) -> None:
    response = JSONResponse(
        {"detail": "the request's audit record could not be written; the answer was withheld"},
        status_code=503,
        headers={"Retry-After": "1"},
    )
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:  # pragma: no cover - responses do not read the request
    return {"type": "http.disconnect"}
