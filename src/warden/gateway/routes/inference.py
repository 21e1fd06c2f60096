"""The inference listener's routes: predict, the models a caller may use, health.

``POST /v1/models/{name}/predict`` runs the request path (docs/gateway.md):

    authenticate → authorize (models:predict + a grant for the model) → resolve the version
    (champion unless asked; only servable states) → load it (verified at first load)
    → validate the batch against its input spec → rate limit and quota (cost = rows)
    → input guards → model → output filters for the caller's clearance → response,
    which leaves only after its audit record is durable (RequestAuditMiddleware)
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

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
from warden.gateway.ratelimit import enforce, rate_limit_headers
from warden.gateway.routes._common import gateway_of
from warden.gateway.serving import LoadedModel, parse_version_ref
from warden.gateway.validation import parse_json, predict_request_from_doc

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


def _infer(
    loaded: LoadedModel, inputs: np.ndarray[Any, Any], ctx: GuardContext
) -> tuple[Any, np.ndarray[Any, Any] | None]:
    verdict = loaded.pipeline.inspect(inputs, ctx)
    if verdict.blocked:
        return verdict, None
    outputs = np.asarray(loaded.model(inputs))
    return verdict, loaded.pipeline.filter(outputs, ctx)


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
    doc = parse_json(body)
    ref = parse_version_ref(doc.get("version")) if isinstance(doc, dict) else None
    served = await run_in_threadpool(gw.models.resolve, name, ref)
    set_model_label(request.scope, name)
    audit_note(request.scope, resource=model_resource(name, served.number))
    loaded = gw.models.cached(served)
    if loaded is None:
        loaded = await run_in_threadpool(gw.models.load, served)
    batch = predict_request_from_doc(
        doc,
        loaded.spec,
        allowed_options=("version",),
        bools_possible=b"true" in body or b"false" in body,
    )
    plan_name, plan = gw.plan_of(principal)
    try:
        decision = await gw.limiter.acheck(principal.actor, plan, batch.rows)
    except BackendUnavailable:
        gw.metrics.rate_limited(plan_name, "unavailable")
        raise
    if not decision.allowed:
        gw.metrics.rate_limited(plan_name, decision.reason or "rate")
    enforce(decision, batch.rows)
    clearance = gw.clearance_of(principal)
    ctx = GuardContext(
        model=name, version=served.number, key_id=principal.actor, clearance=clearance
    )
    verdict, outputs = await run_in_threadpool(_infer, loaded, batch.inputs, ctx)
    gw.metrics.guard_verdicts(name, verdict.verdicts)
    audit_note(
        request.scope,
        verdicts={v.guard: v.action for v in verdict.verdicts},
        details={
            "rows": batch.rows,
            "clearance": clearance,
            "guards": verdict.action,
            "reasons": {v.guard: v.reason[:300] for v in verdict.verdicts if v.reason},
        },
    )
    if verdict.blocked:
        audit_note(request.scope, outcome="blocked")
        verdict.raise_if_blocked()
    if verdict.action == "flag":
        audit_note(request.scope, outcome="flagged")
    if outputs is None or not np.all(np.isfinite(outputs)):
        raise GatewayError(
            "the model produced non-finite outputs; nothing was returned", status_code=500
        )
    return JSONResponse(
        {
            "model": name,
            "version": served.number,
            "outputs": outputs.tolist(),
            "labels": np.argmax(outputs, axis=1).tolist(),
        },
        headers=rate_limit_headers(decision),
    )
