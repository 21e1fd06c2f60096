"""Prometheus metrics of the gateway, in their own registry (never the process-global one).

:class:`GatewayMetrics` owns a :class:`~prometheus_client.CollectorRegistry` and these series
(namespace ``warden_gateway``):

=======================================  ============================  =========================
series                                   labels                        incremented by
=======================================  ============================  =========================
``requests_total``                       route, method, model, status  :class:`MetricsMiddleware`
``request_duration_seconds`` (histogram) route, model                  :class:`MetricsMiddleware`
``requests_in_flight`` (gauge)           —                             :class:`MetricsMiddleware`
``rate_limit_rejections_total``          plan, reason                  :meth:`rate_limited`
``guard_verdicts_total``                 model, guard, action          :meth:`guard_verdicts`
``auth_failures_total``                  reason                        :meth:`auth_failure`
=======================================  ============================  =========================

Labels stay bounded: ``route`` is the route template (``/v1/models/{name}/predict``, or
``<unmatched>``), never the raw path; ``model`` is only what the app sets with
:func:`set_model_label` after resolving a model it serves; methods and auth-failure reasons
outside fixed sets read ``other``.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from warden.gateway.guards.base import Verdict

__all__ = [
    "AUTH_FAILURE_REASONS",
    "LATENCY_BUCKETS",
    "MODEL_LABEL_KEY",
    "GatewayMetrics",
    "set_model_label",
]

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Histogram buckets in seconds: the gateway's overhead is measured in milliseconds."""

AUTH_FAILURE_REASONS = frozenset(
    {
        "missing_credentials",
        "bad_credentials",
        "expired",
        "revoked",
        "locked",
        "mfa_required",
        "mfa_failed",
        "forbidden",
    }
)
"""Auth failure reasons kept as label values; anything else is counted as ``other``."""

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

MODEL_LABEL_KEY = "warden.model"
"""ASGI scope key the app sets (via :func:`set_model_label`) to label a request's model."""


def set_model_label(scope: MutableMapping[str, Any], model: str) -> None:
    """Label this request's metrics with ``model`` (call only for a model being served)."""
    scope[MODEL_LABEL_KEY] = model


class GatewayMetrics:
    """The gateway's Prometheus series in a registry of their own (see the module docstring)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        buckets: Iterable[float] = LATENCY_BUCKETS,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        ns, reg = "warden_gateway", self.registry
        self.requests = Counter(
            "requests",
            "HTTP requests answered, by route template, method, model and status",
            ["route", "method", "model", "status"],
            namespace=ns,
            registry=reg,
        )
        self.latency = Histogram(
            "request_duration_seconds",
            "Time from request start to the end of the response",
            ["route", "model"],
            namespace=ns,
            registry=reg,
            buckets=tuple(buckets),
        )
        self.in_flight = Gauge(
            "requests_in_flight", "Requests being handled", namespace=ns, registry=reg
        )
        self.rate_limit_rejections = Counter(
            "rate_limit_rejections",
            "Requests refused by rate limits or quotas, by plan and reason",
            ["plan", "reason"],
            namespace=ns,
            registry=reg,
        )
        self.guard_verdict_count = Counter(
            "guard_verdicts",
            "Input guard verdicts, by model, guard and action",
            ["model", "guard", "action"],
            namespace=ns,
            registry=reg,
        )
        self.auth_failures = Counter(
            "auth_failures",
            "Failed authentications and authorizations, by reason",
            ["reason"],
            namespace=ns,
            registry=reg,
        )

    def observe_request(
        self, route: str, method: str, model: str, status: int, seconds: float
    ) -> None:
        """Count one answered request and its latency."""
        method = method if method in _METHODS else "other"
        self.requests.labels(route, method, model, str(status)).inc()
        self.latency.labels(route, model).observe(seconds)

    def rate_limited(self, plan: str, reason: str) -> None:
        """Count a rate-limit or quota refusal (``reason``: rate, quota, cost, unavailable)."""
        self.rate_limit_rejections.labels(plan, reason).inc()

    def guard_verdicts(self, model: str, verdicts: Iterable[Verdict]) -> None:
        """Count each input guard's verdict for one request."""
        for verdict in verdicts:
            self.guard_verdict_count.labels(model, verdict.guard, verdict.action).inc()

    def auth_failure(self, reason: str) -> None:
        """Count an authentication or authorization failure (see ``AUTH_FAILURE_REASONS``)."""
        self.auth_failures.labels(reason if reason in AUTH_FAILURE_REASONS else "other").inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, for a ``/metrics`` route."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
