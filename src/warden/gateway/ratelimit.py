"""Per-key rate limits (token bucket) and daily quotas (UTC day), in one decision.

A key's :class:`RatePlan` gives a refill ``rate`` (cost units per second), a ``burst`` (the
bucket's capacity) and an optional ``daily_quota`` (cost units per UTC calendar day). A request
of ``cost`` units (a batch costs its number of rows) is admitted only when both the bucket holds
``cost`` tokens and the day's quota has room for it; a refused request consumes nothing.

The arithmetic is the pure function :func:`step`; :class:`InProcessLimiter` keeps its state in a
dict behind a lock (one worker), :class:`~warden.gateway.ratelimit_redis.RedisLimiter` runs the
same arithmetic as one atomic Lua script (several workers or hosts) and gives the same answers
on the same sequence of calls. :func:`enforce` turns a refusal into :class:`RateLimited` (429
with an integer ``Retry-After``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from warden.errors import ConfigError
from warden.gateway.errors import RateLimited

__all__ = [
    "Decision",
    "InProcessLimiter",
    "RateLimiter",
    "RatePlan",
    "Refusal",
    "State",
    "enforce",
    "plans_from_config",
    "rate_limit_headers",
    "retry_after_header",
    "step",
]

DAY_S = 86400
"""Seconds in a UTC day: quotas reset at ``floor(unix_time / DAY_S)`` boundaries."""

Refusal = Literal["rate", "quota", "cost"]
"""Why a request was refused: the bucket is short (``rate``), the day's quota is spent
(``quota``), or the request costs more than the plan can ever admit (``cost``)."""


@dataclass(frozen=True)
class RatePlan:
    """How much one key may ask for."""

    rate: float
    """Refill rate of the bucket, in cost units (rows) per second; > 0."""
    burst: int
    """Capacity of the bucket: the most cost units admitted at once after a quiet spell; >= 1."""
    daily_quota: int | None = None
    """Cost units admitted per UTC day (reset at midnight UTC); ``None`` for no daily quota."""

    def __post_init__(self) -> None:
        rate_ok = isinstance(self.rate, int | float) and not isinstance(self.rate, bool)
        if not rate_ok or not math.isfinite(self.rate) or self.rate <= 0:
            raise ConfigError(f"rate plan: rate must be a finite number > 0, found {self.rate!r}")
        if not _is_int(self.burst) or self.burst < 1:
            raise ConfigError(f"rate plan: burst must be an integer >= 1, found {self.burst!r}")
        if self.daily_quota is not None and (not _is_int(self.daily_quota) or self.daily_quota < 1):
            raise ConfigError(
                f"rate plan: daily_quota must be an integer >= 1 or absent, "
                f"found {self.daily_quota!r}"
            )
        object.__setattr__(self, "rate", float(self.rate))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def plans_from_config(config: Mapping[str, Any]) -> dict[str, RatePlan]:
    """Read named plans, e.g. ``{"free": {"rate": 1, "burst": 10, "daily_quota": 1000}}``.

    Unknown fields, missing fields and an empty table are refused (:class:`ConfigError`).
    """
    if not isinstance(config, Mapping) or not config:
        raise ConfigError("rate plans: expected a non-empty table of named plans, found none")
    plans: dict[str, RatePlan] = {}
    for name, fields in config.items():
        if not isinstance(fields, Mapping):
            raise ConfigError(f"rate plan {name!r}: expected a table, found {fields!r}")
        unknown = set(fields) - {"rate", "burst", "daily_quota"}
        if unknown:
            raise ConfigError(
                f"rate plan {name!r}: unknown field(s) {sorted(unknown)}; "
                "expected rate, burst and optionally daily_quota"
            )
        missing = {"rate", "burst"} - set(fields)
        if missing:
            raise ConfigError(f"rate plan {name!r}: missing field(s) {sorted(missing)}")
        try:
            plans[str(name)] = RatePlan(**fields)
        except ConfigError as exc:
            raise ConfigError(f"rate plan {name!r}: {exc}") from exc
    return plans


@dataclass(frozen=True)
class Decision:
    """The answer to one :meth:`RateLimiter.check`."""

    allowed: bool
    """Whether the request was admitted (and its cost consumed)."""
    retry_after_s: float | None
    """Seconds until the same request could be admitted; 0 when allowed; ``None`` when it never
    can (``reason == "cost"``)."""
    remaining: int
    """Cost units that could be admitted right now after this decision: whole tokens left in
    the bucket, capped by what is left of the day's quota."""
    quota_remaining: int | None
    """Cost units left in today's quota after this decision; ``None`` without a quota."""
    reason: Refusal | None = None
    """Why it was refused; ``None`` when allowed."""


@dataclass(frozen=True)
class State:
    """One key's limiter state (what the Redis hash holds)."""

    tokens: float
    """Tokens in the bucket at time ``ts``."""
    ts: float
    """When ``tokens`` was last computed (seconds, the limiter's clock)."""
    day: int
    """UTC day number (``floor(unix_time / 86400)``) that ``used`` counts for."""
    used: int
    """Cost units admitted on ``day``."""


def step(
    state: State | None, plan: RatePlan, cost: int, now: float, wall: float
) -> tuple[Decision, State]:
    """One limiter decision: refill the bucket to ``now``, then admit ``cost`` or refuse.

    ``now`` is the bucket clock (seconds; monotonic in process), ``wall`` the unix time that
    decides the UTC day. A new key starts with a full bucket and an unused quota. The Lua
    script in ``ratelimit_redis`` is this function line for line (with ``now == wall``).
    """
    day = math.floor(wall / DAY_S)
    if state is None:
        tokens, ts, used = float(plan.burst), now, 0
    else:
        tokens, ts = state.tokens, state.ts
        used = state.used if state.day == day else 0
    elapsed = now - ts
    if elapsed < 0:
        elapsed = 0.0
    tokens = min(float(plan.burst), tokens + elapsed * plan.rate)
    quota = plan.daily_quota
    reason: Refusal | None = None
    retry: float | None = 0.0
    if cost > plan.burst or (quota is not None and cost > quota):
        reason, retry = "cost", None
    elif quota is not None and used + cost > quota:
        reason, retry = "quota", (day + 1) * DAY_S - wall
    elif tokens < cost:
        reason, retry = "rate", (cost - tokens) / plan.rate
    else:
        tokens -= cost
        used += cost
    quota_left = None if quota is None else quota - used
    remaining = math.floor(tokens)
    if quota_left is not None:
        remaining = min(remaining, quota_left)
    decision = Decision(reason is None, retry, remaining, quota_left, reason)
    return decision, State(tokens, now, day, used)


@runtime_checkable
class RateLimiter(Protocol):
    """Admit or refuse ``cost`` units for ``key_id`` under ``plan``; consume them if admitted.

    ``acheck`` is the same for async callers (the gateway): it never blocks the event loop.
    A backend that cannot decide raises :class:`~warden.gateway.errors.BackendUnavailable`
    (the gateway answers 503): it never admits on error.
    """

    def check(self, key_id: str, plan: RatePlan, cost: int = 1) -> Decision: ...

    async def acheck(self, key_id: str, plan: RatePlan, cost: int = 1) -> Decision: ...


def _check_cost(cost: int) -> int:
    if not _is_int(cost) or cost < 1:
        raise ConfigError(f"rate limit cost must be an integer >= 1, found {cost!r}")
    return cost


class InProcessLimiter:
    """Rate limits for one process: a dict of per-key :class:`State` behind a lock.

    ``clock`` (default ``time.monotonic``) drives the bucket; ``wall_clock`` (default
    ``time.time``, unix seconds) decides the UTC day. Both are injectable for tests. State of
    keys idle long enough to be back at a full bucket on a past day is dropped every
    ``prune_every`` decisions, so memory follows the active keys.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        prune_every: int = 10_000,
    ) -> None:
        self._clock = clock
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._states: dict[str, tuple[State, float]] = {}
        self._prune_every = prune_every
        self._calls = 0

    def check(self, key_id: str, plan: RatePlan, cost: int = 1) -> Decision:
        """Admit or refuse ``cost`` units for ``key_id`` (see :func:`step`)."""
        _check_cost(cost)
        with self._lock:
            now, wall = self._clock(), self._wall()
            previous = self._states.get(key_id)
            decision, state = step(None if previous is None else previous[0], plan, cost, now, wall)
            full_at = now + (plan.burst - state.tokens) / plan.rate
            self._states[key_id] = (state, full_at)
            self._calls += 1
            if self._calls % self._prune_every == 0:
                self._prune(now, state.day)
            return decision

    async def acheck(self, key_id: str, plan: RatePlan, cost: int = 1) -> Decision:
        """:meth:`check` for async callers (it only takes a lock; it does not block)."""
        return self.check(key_id, plan, cost)

    def _prune(self, now: float, day: int) -> None:
        stale = [k for k, (s, full_at) in self._states.items() if full_at <= now and s.day < day]
        for key in stale:
            del self._states[key]


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """Headers telling the client where it stands: ``RateLimit-Remaining`` and, when refused
    and a retry can help, ``Retry-After``."""
    headers = {"RateLimit-Remaining": str(max(0, decision.remaining))}
    if not decision.allowed and decision.retry_after_s is not None:
        headers["Retry-After"] = retry_after_header(decision.retry_after_s)
    return headers


_MESSAGES: dict[Refusal, str] = {
    "rate": "rate limit exceeded for this key; retry after the Retry-After delay",
    "quota": "daily quota exhausted for this key; it resets at 00:00 UTC (see Retry-After)",
    "cost": "request costs {cost} units, more than this key's plan admits at once "
    "(burst or daily quota); send smaller batches",
}


def enforce(decision: Decision, cost: int = 1) -> Decision:
    """Return an admitting ``decision``; raise :class:`RateLimited` (429) for a refusal."""
    if decision.allowed:
        return decision
    reason = decision.reason or "rate"
    raise RateLimited(_MESSAGES[reason].format(cost=cost), headers=rate_limit_headers(decision))
