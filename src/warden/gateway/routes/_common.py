"""What the route modules share: the gateway behind a request, JSON bodies read after auth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from warden.gateway.errors import InvalidRequest
from warden.gateway.validation import parse_json

if TYPE_CHECKING:
    from warden.gateway.app import Gateway

__all__ = ["body_schema", "client_address", "gateway_of", "json_body"]

M = TypeVar("M", bound=BaseModel)

_MAX_DEPTH = 16


def gateway_of(request: Request) -> Gateway:
    """The :class:`~warden.gateway.app.Gateway` serving this request."""
    gateway: Gateway = request.app.state.gateway
    return gateway


def client_address(request: Request) -> str:
    """The client's address as the socket saw it (empty when unknown)."""
    return request.client.host if request.client else ""


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency reading the body as ``model``. Declare it *after* the route's
    ``Requires``: credentials are checked before the body is even parsed (FastAPI parses
    declared body parameters before running dependencies, so bodies are read this way)."""

    async def read(request: Request) -> M:
        doc = parse_json(await request.body(), max_depth=_MAX_DEPTH)
        try:
            return model.model_validate(doc)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            raise InvalidRequest(
                f"body.{where}: {first.get('msg', 'invalid')}"
                if where != "body"
                else f"body: {first.get('msg', 'invalid')}"
            ) from None

    read.__name__ = f"read_{model.__name__}"
    return read


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a body read with :func:`json_body`."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
