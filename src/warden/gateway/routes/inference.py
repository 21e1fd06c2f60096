"""The inference listener's routes: predict, the models a caller may use, health.

``POST /v1/models/{name}/predict`` runs the request path (docs/gateway.md):

    authenticate → authorize (models:predict + a grant for the model) → resolve the version
    (champion unless asked; only servable states) → load it (verified at first load)
    → validate the batch against its input spec → rate limit and quota (cost = rows)
    → input guards → model → output filters for the caller's clearance → response,
    which leaves only after its audit record is durable (RequestAuditMiddleware)

Authentication runs in the thread pool (the route dependency); everything from resolving the
version to the output filters runs in one more worker-thread call (:func:`_serve`), so a
request hands off to threads twice, not once per step.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Annotated, Any

import anyio.from_thread
import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from warden.access.roles import MODELS_PREDICT, MODELS_READ, Principal
from warden.audit.events import model_resource
from warden.errors import BackendUnavailable, GatewayError
from warden.gateway.auth import PUBLIC, Requires
from warden.gateway.guards.base import GuardContext
from warden.gateway.metrics import set_model_label
from warden.gateway.middleware.audit import audit_note
from warden.gateway.ratelimit import Decision, InProcessLimiter, enforce, rate_limit_headers
from warden.gateway.routes._common import gateway_of
from warden.gateway.serving import parse_version_ref
from warden.gateway.validation import parse_json, predict_request_from_doc

if TYPE_CHECKING:
    from warden.gateway.app import Gateway

__all__ = ["PREDICT_BODY", "router"]

router = APIRouter()

PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "additionalProperties": False,
                    "properties": {
                        "inputs": {
                            "type": "array",
                            "minItems": 1,
                            "description": "A batch of inputs, each of the version's input "
                            "shape (see GET /v1/models)",
                            "items": {},
                        },
                        "version": {
                            "description": "A version number, 'vN', or an alias; default champion",
                            "oneOf": [
                                {"type": "integer", "minimum": 1},
                                {"type": "string"},
                            ],
                        },
                    },
                }
            }
        },
    }
}
"""The predict body as OpenAPI describes it (the route reads it itself, after auth)."""


@router.get("/healthz", name="healthz", dependencies=[Depends(PUBLIC)])
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. No credentials, no audit record."""
    return {"status": "ok"}


@router.get("/v1/models", name="list_models")
def list_models(
    request: Request, principal: Annotated[Principal, Depends(Requires(MODELS_READ))]
) -> dict[str, Any]:
    """The served models (their champions) the caller has a grant for."""
    served = gateway_of(request).models.served()
    return {
        "models": [
            {"name": v.model, "version": v.number, "input_spec": v.input_spec}
            for v in served
            if principal.may_use(v.model)
        ]
    }


def _decide(gw: Gateway, principal: Principal, rows: int) -> Decision:
    """The rate-limit decision for ``rows`` (in this worker thread: an in-process limiter
    directly, any other on the event loop through its async client)."""
    plan_name, plan = gw.plan_of(principal)
    try:
        if isinstance(gw.limiter, InProcessLimiter):
            decision = gw.limiter.check(principal.actor, plan, rows)
        else:
            decision = anyio.from_thread.run(gw.limiter.acheck, principal.actor, plan, rows)
    except BackendUnavailable:
        gw.metrics.rate_limited(plan_name, "unavailable")
        raise
    if not decision.allowed:
        gw.metrics.rate_limited(plan_name, decision.reason or "rate")
    return enforce(decision, rows)


def _serve(
    gw: Gateway, scope: MutableMapping[str, Any], name: str, principal: Principal, body: bytes
) -> tuple[int, np.ndarray[Any, Any], Decision]:
    """Everything after authentication, in ONE worker thread (one hand-off per request):
    resolve → load → validate → rate limit → guards → model → output filters."""
    doc = parse_json(body)
    ref = parse_version_ref(doc.get("version")) if isinstance(doc, dict) else None
    served = gw.models.resolve(name, ref)
    set_model_label(scope, name)
    audit_note(scope, resource=model_resource(name, served.number))
    loaded = gw.models.cached(served) or gw.models.load(served)
    batch = predict_request_from_doc(
        doc,
        loaded.spec,
        allowed_options=("version",),
        bools_possible=b"true" in body or b"false" in body,
    )
    decision = _decide(gw, principal, batch.rows)
    clearance = gw.clearance_of(principal)
    ctx = GuardContext(
        model=name, version=served.number, key_id=principal.actor, clearance=clearance
    )
    verdict = loaded.pipeline.inspect(batch.inputs, ctx)
    outputs = None
    if not verdict.blocked:
        outputs = loaded.pipeline.filter(np.asarray(loaded.model(batch.inputs)), ctx)
    gw.metrics.guard_verdicts(name, verdict.verdicts)
    audit_note(
        scope,
        verdicts={v.guard: v.action for v in verdict.verdicts},
        details={
            "rows": batch.rows,
            "clearance": clearance,
            "guards": verdict.action,
            "reasons": {v.guard: v.reason[:300] for v in verdict.verdicts if v.reason},
        },
    )
    if verdict.blocked:
        audit_note(scope, outcome="blocked")
        verdict.raise_if_blocked()
    if verdict.action == "flag":
        audit_note(scope, outcome="flagged")
    if outputs is None or not np.all(np.isfinite(outputs)):
        raise GatewayError(
            "the model produced non-finite outputs; nothing was returned", status_code=500
        )
    return served.number, outputs, decision


@router.post("/v1/models/{name}/predict", name="predict", openapi_extra=PREDICT_BODY)
async def predict(
    name: str,
    request: Request,
    principal: Annotated[Principal, Depends(Requires(MODELS_PREDICT, model_param="name"))],
) -> JSONResponse:
    """Predict a batch with the model's champion (or the version asked for)."""
    gw = gateway_of(request)
    body = await request.body()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    audit_note(request.scope, resource=model_resource(name), input_digest=digest)
    number, outputs, decision = await run_in_threadpool(
        _serve, gw, request.scope, name, principal, body
    )
    return JSONResponse(
        {
            "model": name,
            "version": number,
            "outputs": outputs.tolist(),
            "labels": np.argmax(outputs, axis=1).tolist(),
        },
        headers=rate_limit_headers(decision),
    )
